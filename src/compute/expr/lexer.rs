//! Tokenizer: plain ASCII math plus the unicode students paste from slides.

use super::ExprError;
use super::ast::Constant;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    /// An identifier (variable or function name), normalized to ASCII where
    /// possible (`θ` -> `theta`, `w₁` -> `w_1`).
    Ident(String),
    Const(Constant),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    /// `(` or `[`.
    Open(char),
    /// `)` or `]`.
    Close(char),
    Comma,
    /// A superscript exponent such as `²` or `⁻¹`.
    Sup(f64),
    /// `√`.
    Root,
}

/// A token with its byte span in the source.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Greek letters accepted as single-letter identifiers, with their ASCII names.
const GREEK: [(char, &str); 22] = [
    ('α', "alpha"),
    ('β', "beta"),
    ('γ', "gamma"),
    ('δ', "delta"),
    ('ε', "epsilon"),
    ('ζ', "zeta"),
    ('η', "eta"),
    ('θ', "theta"),
    ('ι', "iota"),
    ('κ', "kappa"),
    ('λ', "lambda"),
    ('μ', "mu"),
    ('ν', "nu"),
    ('ξ', "xi"),
    ('ρ', "rho"),
    ('τ', "tau"),
    ('φ', "phi"),
    ('χ', "chi"),
    ('ψ', "psi"),
    ('ω', "omega"),
    ('Δ', "Delta"),
    ('ϕ', "phi"),
];

/// The ASCII name of a Greek letter, if it is one we accept.
pub(crate) fn greek_name(c: char) -> Option<&'static str> {
    GREEK.iter().find(|(g, _)| *g == c).map(|(_, n)| *n)
}

/// The ASCII names of the Greek letters (for LaTeX output).
pub(crate) fn is_greek_name(name: &str) -> bool {
    GREEK.iter().any(|(_, n)| *n == name)
}

fn superscript_digit(c: char) -> Option<u32> {
    match c {
        '⁰' => Some(0),
        '¹' => Some(1),
        '²' => Some(2),
        '³' => Some(3),
        '⁴'..='⁹' => Some(c as u32 - '⁴' as u32 + 4),
        _ => None,
    }
}

fn subscript_digit(c: char) -> Option<char> {
    match c {
        '₀'..='₉' => char::from_digit(c as u32 - '₀' as u32, 10),
        _ => None,
    }
}

fn ident_continue(c: char) -> bool {
    c == '_'
        || (c.is_alphanumeric()
            && c != 'π'
            && c != 'σ'
            && greek_name(c).is_none()
            && superscript_digit(c).is_none())
}

/// Splits `src` into tokens. Runs in one pass (linear time).
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some(&(start, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let simple = match c {
            '+' => Some(Tok::Plus),
            '-' | '−' | '–' => Some(Tok::Minus),
            '×' | '·' | '⋅' | '∗' => Some(Tok::Star),
            '/' | '÷' => Some(Tok::Slash),
            '^' => Some(Tok::Caret),
            '(' | '[' => Some(Tok::Open(c)),
            ')' | ']' => Some(Tok::Close(c)),
            ',' => Some(Tok::Comma),
            '√' => Some(Tok::Root),
            'π' => Some(Tok::Const(Constant::Pi)),
            'σ' => Some(Tok::Ident("σ".to_string())),
            _ => None,
        };
        if let Some(tok) = simple {
            it.next();
            let end = start + c.len_utf8();
            out.push(Token { tok, start, end });
            continue;
        }
        if c == '*' {
            it.next();
            let mut end = start + 1;
            let tok = if matches!(it.peek(), Some(&(_, '*'))) {
                it.next();
                end += 1;
                Tok::Caret
            } else {
                Tok::Star
            };
            out.push(Token { tok, start, end });
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let (tok, end) = lex_number(src, start)?;
            while matches!(it.peek(), Some(&(i, _)) if i < end) {
                it.next();
            }
            out.push(Token { tok, start, end });
            continue;
        }
        if superscript_digit(c).is_some() || c == '⁻' {
            it.next();
            let mut end = start + c.len_utf8();
            let negative = c == '⁻';
            let mut value: f64 = 0.0;
            let mut digits = 0usize;
            if let Some(d) = superscript_digit(c) {
                value = f64::from(d);
                digits = 1;
            }
            while let Some(&(i, d)) = it.peek() {
                let Some(v) = superscript_digit(d) else { break };
                it.next();
                value = value * 10.0 + f64::from(v);
                digits += 1;
                end = i + d.len_utf8();
            }
            if !value.is_finite() {
                return Err(ExprError::new(
                    start,
                    format!("superscript exponent at position {start} is too large"),
                ));
            }
            if digits == 0 {
                return Err(ExprError::new(
                    start,
                    format!("superscript minus without digits at position {start}"),
                ));
            }
            let value = if negative { -value } else { value };
            out.push(Token {
                tok: Tok::Sup(value),
                start,
                end,
            });
            continue;
        }
        if let Some(name) = greek_name(c) {
            it.next();
            let mut ident = name.to_string();
            let end = lex_ident_tail(&mut it, &mut ident, start + c.len_utf8(), false);
            out.push(Token {
                tok: Tok::Ident(ident),
                start,
                end,
            });
            continue;
        }
        if (c.is_alphabetic() || c == '_') && superscript_digit(c).is_none() {
            it.next();
            let mut ident = c.to_string();
            let end = lex_ident_tail(&mut it, &mut ident, start + c.len_utf8(), true);
            let tok = match ident.as_str() {
                "pi" => Tok::Const(Constant::Pi),
                "e" => Tok::Const(Constant::E),
                _ => Tok::Ident(ident),
            };
            out.push(Token { tok, start, end });
            continue;
        }
        return Err(ExprError::new(
            start,
            format!("unexpected character `{c}` at position {start}"),
        ));
    }
    Ok(out)
}

/// Reads the rest of an identifier; `letters` says whether further letters
/// belong to it (false after a Greek letter, so `θx` is `theta * x`).
fn lex_ident_tail(
    it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    ident: &mut String,
    mut end: usize,
    letters: bool,
) -> usize {
    let mut in_subscript = false;
    while let Some(&(i, d)) = it.peek() {
        if let Some(digit) = subscript_digit(d) {
            if !in_subscript && !ident.ends_with('_') {
                ident.push('_');
            }
            in_subscript = true;
            ident.push(digit);
        } else if d.is_ascii_digit() || d == '_' || (letters && ident_continue(d)) {
            in_subscript = false;
            ident.push(d);
        } else {
            break;
        }
        it.next();
        end = i + d.len_utf8();
    }
    end
}

/// Reads a number literal starting at byte `start`: `12`, `0.5`, `.5`,
/// `5e-1`. An `e` only starts an exponent when digits follow, so `2e` is
/// `2 * e`.
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), ExprError> {
    let bytes = src.as_bytes();
    let mut i = start;
    let digits_from = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits_from(i);
    let mut mantissa_digits = int_end - i;
    i = int_end;
    if i < bytes.len() && bytes[i] == b'.' {
        let frac_end = digits_from(i + 1);
        mantissa_digits += frac_end - (i + 1);
        i = frac_end;
    }
    if mantissa_digits == 0 {
        return Err(ExprError::new(
            start,
            format!("unexpected `.` at position {start}"),
        ));
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        let exp_end = digits_from(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    if i < bytes.len() && bytes[i] == b'.' {
        return Err(ExprError::new(
            i,
            format!("unexpected `.` at position {i} (malformed number)"),
        ));
    }
    let text = &src[start..i];
    let value: f64 = text.parse().map_err(|_| {
        ExprError::new(
            start,
            format!("cannot read number `{text}` at position {start}"),
        )
    })?;
    if !value.is_finite() {
        return Err(ExprError::new(
            start,
            format!("number `{text}` at position {start} is too large"),
        ));
    }
    Ok((Tok::Num(value), i))
}
