//! Recursive-descent parser with an explicit nesting-depth cap, so hostile
//! input (100 000 nested parentheses) fails fast with an [`ExprError`]
//! instead of overflowing the stack. Every token is looked at a bounded number
//! of times: linear time.
//!
//! Grammar (lowest precedence first):
//!
//! ```text
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary | implicit)*      implicit: juxtaposition
//! unary   := ('-' | '+') unary | power                   -x^2 = -(x^2)
//! power   := postfix ('^' unary)?                        right-associative
//! postfix := primary superscript*                        x² = x^2
//! primary := number | constant | variable | '(' sum ')' | '[' sum ']'
//!          | function '(' sum (',' sum)* ')' | function power   (ln 4, sin x^2)
//! ```
//!
//! Juxtaposition multiplies when the next token starts a variable, constant,
//! function, `√` or an opening bracket (`2x`, `2 log 2`, `2(x+1)`, `x y`); a
//! number never starts an implicit factor (`2 3` is an error). A function
//! applied without parentheses takes one factor (a number, variable, constant
//! or call, with an optional power): `ln 2x` is `ln(2)*x`, `sin x^2` is
//! `sin(x^2)`. A multi-letter ASCII name directly followed by `(` that is not
//! a known function is reported as an unknown function (`sinh(x)`); any other
//! name followed by a bracket multiplies (`x(x+1)`, `w_1(x)`).

use super::ast::{Expr, Func};
use super::lexer::{Tok, Token, tokenize};
use super::{ExprError, ExprLimits};

/// Hard ceiling on the nesting depth whatever the configuration says, so a
/// misconfigured limit cannot make parsing (or the recursive tree walks
/// afterwards) overflow the stack: one level costs about 6 KiB of stack in an
/// unoptimized build, so 128 levels stay far below a 2 MiB thread stack.
pub const HARD_MAX_DEPTH: usize = 128;

pub(crate) fn parse(src: &str, limits: &ExprLimits) -> Result<Expr, ExprError> {
    if src.len() > limits.max_len {
        // Byte length bounds the character count from above; count exactly.
        if let Some((pos, _)) = src.char_indices().nth(limits.max_len) {
            let chars = src.chars().count();
            return Err(ExprError::new(
                pos,
                format!(
                    "expression is {chars} characters long; at most {} are allowed",
                    limits.max_len
                ),
            ));
        }
    }
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return Err(ExprError::new(0, "expression is empty"));
    }
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
        src,
    };
    let e = p.sum()?;
    if let Some(t) = p.toks.get(p.i) {
        return Err(p.unexpected(t));
    }
    Ok(e)
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    max_depth: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(self.src.len(), |t| t.start)
    }

    #[cold]
    #[inline(never)]
    fn unexpected(&self, t: &Token) -> ExprError {
        let text = self.src.get(t.start..t.end).unwrap_or("?");
        let what = match t.tok {
            Tok::Num(_) => format!("number `{text}`"),
            _ => format!("`{text}`"),
        };
        ExprError::new(
            t.start,
            format!("unexpected {what} at position {}", t.start),
        )
    }

    #[cold]
    #[inline(never)]
    fn error_here(&self) -> ExprError {
        match self.toks.get(self.i) {
            Some(t) => self.unexpected(t),
            None => ExprError::new(
                self.src.len(),
                format!(
                    "expression ends unexpectedly at position {}",
                    self.src.len()
                ),
            ),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.too_deep());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self) -> ExprError {
        let pos = self.pos();
        ExprError::new(
            pos,
            format!(
                "expression nested deeper than {} levels (at position {pos})",
                self.max_depth
            ),
        )
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.product()?];
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.i += 1;
                    terms.push(self.product()?);
                }
                Some(Tok::Minus) => {
                    self.i += 1;
                    let t = self.product()?;
                    terms.push(negate(t));
                }
                _ => break,
            }
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Expr::Add(terms)
        })
    }

    fn starts_implicit_factor(&self) -> bool {
        matches!(
            self.peek(),
            Some(Tok::Ident(_) | Tok::Const(_) | Tok::Open(_) | Tok::Root)
        )
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut num = vec![self.unary()?];
        let mut den = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Star) => {
                    self.i += 1;
                    num.push(self.unary()?);
                }
                Some(Tok::Slash) => {
                    self.i += 1;
                    den.push(self.unary()?);
                }
                _ if self.starts_implicit_factor() => num.push(self.power()?),
                _ => break,
            }
        }
        Ok(if num.len() == 1 && den.is_empty() {
            num.swap_remove(0)
        } else {
            Expr::Mul { num, den }
        })
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some(Tok::Minus) => {
                self.enter()?;
                self.i += 1;
                let e = self.unary()?;
                self.leave();
                Ok(negate(e))
            }
            Some(Tok::Plus) => {
                self.enter()?;
                self.i += 1;
                let e = self.unary()?;
                self.leave();
                Ok(e)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.postfix()?;
        if matches!(self.peek(), Some(Tok::Caret)) {
            self.enter()?;
            self.i += 1;
            let exponent = self.unary()?;
            self.leave();
            return Ok(Expr::Pow(Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        while let Some(Tok::Sup(v)) = self.peek() {
            let v = *v;
            self.i += 1;
            e = Expr::Pow(Box::new(e), Box::new(Expr::Num(v)));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some(t) = self.toks.get(self.i) else {
            return Err(self.error_here());
        };
        match &t.tok {
            Tok::Num(v) => {
                let v = *v;
                self.i += 1;
                Ok(Expr::Num(v))
            }
            Tok::Const(c) => {
                let c = *c;
                self.i += 1;
                Ok(Expr::Const(c))
            }
            Tok::Open(open) => {
                let open = *open;
                self.enter()?;
                self.i += 1;
                let e = self.sum()?;
                self.leave();
                self.close(open)?;
                Ok(e)
            }
            Tok::Root => self.call(Func::Sqrt),
            Tok::Ident(name) => {
                if let Some(f) = Func::from_name(name) {
                    return self.call(f);
                }
                let next_is_open = self
                    .toks
                    .get(self.i + 1)
                    .is_some_and(|n| matches!(n.tok, Tok::Open(_)) && n.start == t.end);
                if next_is_open && name.len() >= 2 && name.bytes().all(|b| b.is_ascii_alphabetic())
                {
                    return Err(unknown_function(name, t.start));
                }
                let e = Expr::Var(name.clone());
                self.i += 1;
                Ok(e)
            }
            _ => Err(self.error_here()),
        }
    }

    /// A function call without argument (`count` None) or with the wrong
    /// number of arguments.
    #[cold]
    #[inline(never)]
    fn call_error(&self, name_at: usize, count: Option<usize>) -> ExprError {
        let (start, text) = self.toks.get(name_at).map_or((0, "?"), |t| {
            (t.start, self.src.get(t.start..t.end).unwrap_or("?"))
        });
        match count {
            None => ExprError::new(
                self.pos(),
                format!("function `{text}` at position {start} needs an argument"),
            ),
            Some(n) => ExprError::new(
                start,
                format!("function `{text}` at position {start} takes 1 argument, got {n}"),
            ),
        }
    }

    /// Expects the bracket closing `open`.
    fn close(&mut self, open: char) -> Result<(), ExprError> {
        let want = if open == '[' { ']' } else { ')' };
        match self.peek() {
            Some(Tok::Close(c)) if *c == want => {
                self.i += 1;
                Ok(())
            }
            Some(Tok::Close(_)) => Err(mismatched(want, self.pos())),
            Some(_) => Err(self.error_here()),
            None => Err(missing(want, self.src.len())),
        }
    }

    /// A function application; the current token is the function name.
    fn call(&mut self, f: Func) -> Result<Expr, ExprError> {
        let name_at = self.i;
        self.i += 1;
        let mut sup = None;
        if let Some(Tok::Sup(v)) = self.peek() {
            sup = Some(*v);
            self.i += 1;
        }
        self.enter()?;
        let args = match self.peek() {
            Some(Tok::Open(open)) => {
                let open = *open;
                self.i += 1;
                let mut args = vec![self.sum()?];
                while matches!(self.peek(), Some(Tok::Comma)) {
                    self.i += 1;
                    args.push(self.sum()?);
                }
                self.close(open)?;
                args
            }
            Some(Tok::Num(_) | Tok::Ident(_) | Tok::Const(_) | Tok::Root) => vec![self.power()?],
            _ => return Err(self.call_error(name_at, None)),
        };
        self.leave();
        if f.is_unary() && args.len() != 1 {
            return Err(self.call_error(name_at, Some(args.len())));
        }
        let e = Expr::Call(f, args);
        Ok(match sup {
            Some(v) => Expr::Pow(Box::new(e), Box::new(Expr::Num(v))),
            None => e,
        })
    }
}

#[cold]
#[inline(never)]
fn unknown_function(name: &str, pos: usize) -> ExprError {
    ExprError::new(pos, format!("unknown function `{name}` at position {pos}"))
}

#[cold]
#[inline(never)]
fn mismatched(want: char, pos: usize) -> ExprError {
    ExprError::new(
        pos,
        format!("mismatched bracket at position {pos}: expected `{want}`"),
    )
}

#[cold]
#[inline(never)]
fn missing(want: char, pos: usize) -> ExprError {
    ExprError::new(
        pos,
        format!("missing `{want}` at position {pos} (the expression ends first)"),
    )
}

/// Unary minus; a number literal absorbs the sign (`-2` is `Num(-2)`).
pub(crate) fn negate(e: Expr) -> Expr {
    match e {
        Expr::Num(v) => Expr::Num(-v),
        other => Expr::Neg(Box::new(other)),
    }
}
