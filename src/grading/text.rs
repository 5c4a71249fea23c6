//! Text helpers shared by the answer parsers: length caps, unicode lookalikes,
//! `lhs = rhs` prefixes, a small LaTeX-to-plain converter and the word
//! normalization used by concept groups and deductions.

use std::borrow::Cow;

/// Longest answer (or working) read, in bytes; longer ones are not gradable.
pub const MAX_ANSWER_BYTES: usize = 20_000;

/// Rejects over-long input with a reason a student can act on.
pub fn check_len(s: &str, what: &str) -> Result<(), String> {
    if s.len() > MAX_ANSWER_BYTES {
        Err(format!(
            "the {what} is {} bytes long; at most {MAX_ANSWER_BYTES} are read",
            s.len()
        ))
    } else {
        Ok(())
    }
}

/// Maps unicode lookalikes to ASCII: fullwidth forms, minus/dash variants,
/// multiplication dots and crosses (`×` -> `*`), exotic spaces. Keeps `√`, `σ`,
/// `π` for the expression parser. Linear time.
pub fn ascii_lookalikes(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let m = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{2212}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{FE63}' => '-',
            '\u{00D7}' | '\u{2715}' | '\u{2716}' | '\u{2A2F}' | '\u{22C5}' | '\u{00B7}'
            | '\u{2219}' | '\u{2217}' => '*',
            '\u{2044}' | '\u{2215}' | '\u{00F7}' => '/',
            '\u{00A0}' | '\u{2009}' | '\u{202F}' | '\u{2007}' | '\u{2002}' | '\u{2003}'
            | '\u{200A}' => ' ',
            '\u{200B}' | '\u{FEFF}' => continue,
            '\u{2018}' | '\u{2019}' => '\'',
            _ => c,
        };
        out.push(m);
    }
    Cow::Owned(out)
}

/// The text after the last relation sign (`=`, `≈`, `≃`, `→`, `->`, `=>`,
/// `:`): `x = 8` -> `8`, `1x1 → 3x3 → 7x7` -> `7x7`. Relation signs inside
/// brackets are ignored only by position: the last one anywhere wins.
pub fn last_side(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        match c {
            '=' | '\u{2248}' | '\u{2243}' | '\u{2192}' | '\u{21D2}' | ':' => {
                start = i + c.len_utf8();
                if bytes.get(start) == Some(&b'>') {
                    start += 1;
                    iter.next();
                }
            }
            '-' if bytes.get(i + 1) == Some(&b'>') => {
                start = i + 2;
                iter.next();
            }
            _ => {}
        }
    }
    s.get(start..).unwrap_or("")
}

/// Strips `≈`, `~`, `approx.`, `about`, `approximately` in front of a value.
pub fn strip_approx(s: &str) -> &str {
    let mut t = s.trim();
    loop {
        let before = t;
        for p in [
            "approximately",
            "approx.",
            "approx",
            "about",
            "ca.",
            "~",
            "\u{2248}",
        ] {
            if let Some(rest) = t.strip_prefix(p) {
                t = rest.trim_start();
            }
        }
        if t == before {
            return t;
        }
    }
}

/// Converts the LaTeX a student might paste into plain expression syntax:
/// `\frac{a}{b}` -> `((a)/(b))`, `\sqrt{x}` -> `sqrt(x)`, `\cdot`/`\times` ->
/// `*`, `\ln`, `\log`, `\exp`, `\sigma`, `\pi`, `\left`/`\right` dropped, other
/// braces -> parentheses. Brace nesting is limited to 64; deeper input is
/// returned as an error.
pub fn delatex(s: &str) -> Result<String, String> {
    if !s.contains(['\\', '{', '}']) {
        return Ok(s.to_string());
    }
    // Kinds of open brace groups.
    #[derive(Clone, Copy)]
    enum G {
        Plain,
        FracNum,
        FracDen,
        Sqrt,
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut stack: Vec<G> = Vec::new();
    let mut pending_frac_den = false;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let name_len = rest[1..]
                .find(|ch: char| !ch.is_ascii_alphabetic())
                .unwrap_or(rest.len() - 1);
            let name = &rest[1..1 + name_len];
            let mut consumed = 1 + name_len;
            match name {
                "frac" | "dfrac" | "tfrac" => {
                    if rest[consumed..].trim_start().starts_with('{') {
                        let skip = rest[consumed..].len() - rest[consumed..].trim_start().len();
                        consumed += skip + 1;
                        if stack.len() >= 64 {
                            return Err("braces nested more than 64 deep".into());
                        }
                        stack.push(G::FracNum);
                        out.push_str("((");
                    } else {
                        return Err("\\frac must be followed by {numerator}{denominator}".into());
                    }
                }
                "sqrt" => {
                    if rest[consumed..].trim_start().starts_with('{') {
                        let skip = rest[consumed..].len() - rest[consumed..].trim_start().len();
                        consumed += skip + 1;
                        if stack.len() >= 64 {
                            return Err("braces nested more than 64 deep".into());
                        }
                        stack.push(G::Sqrt);
                        out.push_str("sqrt(");
                    } else {
                        out.push_str("sqrt");
                    }
                }
                "cdot" | "times" | "ast" => out.push('*'),
                "div" => out.push('/'),
                "ln" | "log" | "exp" | "tanh" | "sin" | "cos" | "max" | "min" => {
                    out.push(' ');
                    out.push_str(name);
                }
                "sigma" => out.push('\u{03C3}'),
                "pi" => out.push('\u{03C0}'),
                "left" | "right" | "big" | "Big" | "" | "quad" | "qquad" | "mathrm" | "text"
                | "operatorname" => {
                    if name.is_empty() {
                        // `\,`, `\;`, `\!` and `\\`: spacing or row breaks.
                        consumed = 1 + rest[1..].chars().next().map_or(0, char::len_utf8);
                        out.push(' ');
                    }
                }
                _ => return Err(format!("unknown LaTeX command \\{name}")),
            }
            rest = &rest[consumed..];
            continue;
        }
        match c {
            '{' => {
                if pending_frac_den {
                    pending_frac_den = false;
                    stack.push(G::FracDen);
                    out.push_str("/(");
                } else {
                    if stack.len() >= 64 {
                        return Err("braces nested more than 64 deep".into());
                    }
                    stack.push(G::Plain);
                    out.push('(');
                }
            }
            '}' => match stack.pop() {
                Some(G::FracNum) => {
                    out.push(')');
                    pending_frac_den = true;
                }
                Some(G::FracDen) => out.push_str("))"),
                Some(G::Sqrt) | Some(G::Plain) => out.push(')'),
                None => return Err("unbalanced '}'".into()),
            },
            c if pending_frac_den && c.is_whitespace() => {}
            _ => {
                if pending_frac_den {
                    return Err("\\frac needs a {denominator}".into());
                }
                out.push(c);
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    if !stack.is_empty() || pending_frac_den {
        return Err("unbalanced '{'".into());
    }
    Ok(out)
}

/// Normalizes text to words for phrase matching: lowercase, every character
/// that is not a letter or digit separates words (so punctuation and hyphens
/// are ignored), plurals are reduced (`filters` -> `filter`, `boxes` ->
/// `box`, `properties` -> `property`) and `-ing`/`-ed` endings stripped
/// (`affected` -> `affect`, `blurring` -> `blur`, `padding` -> `pad`). Answers
/// and phrases are normalized alike, so matching is symmetric.
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| singular(&w.to_lowercase()))
        .collect()
}

fn singular(w: &str) -> String {
    let w = plural(w);
    let n = w.chars().count();
    let stem = if n > 5 && w.ends_with("ing") {
        &w[..w.len() - 3]
    } else if n > 4 && w.ends_with("ed") && !w.ends_with("eed") {
        &w[..w.len() - 2]
    } else {
        return w;
    };
    // blurr(ed) -> blur, padd(ing) -> pad; keep -ll, -ss, -zz.
    let b = stem.as_bytes();
    if b.len() > 2
        && b[b.len() - 1].is_ascii_alphabetic()
        && b[b.len() - 1] == b[b.len() - 2]
        && !b"lszaeiou".contains(&b[b.len() - 1])
    {
        return stem[..stem.len() - 1].to_string();
    }
    stem.to_string()
}

fn plural(w: &str) -> String {
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if n > 4
        && (w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes") || w.ends_with("sses"))
    {
        return w[..w.len() - 2].to_string();
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w.to_string()
}

/// Whether the word sequence `needle` occurs contiguously in `hay`.
pub fn contains_words(hay: &[String], needle: &[String]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `a` and `b` are equal, or both have at least 5 characters and are
/// one edit apart (insertion, deletion, substitution, adjacent swap).
pub fn near(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.len() < 5 || b.len() < 5 || a.len().abs_diff(b.len()) > 4 {
        return false;
    }
    if a.is_ascii() && b.is_ascii() {
        return one_edit(a.as_bytes(), b.as_bytes());
    }
    let x: Vec<char> = a.chars().collect();
    let y: Vec<char> = b.chars().collect();
    one_edit(&x, &y)
}

fn one_edit<T: PartialEq>(x: &[T], y: &[T]) -> bool {
    if x.len() < 5 || y.len() < 5 || x.len().abs_diff(y.len()) > 1 {
        return false;
    }
    let p = x.iter().zip(y).take_while(|(c, d)| c == d).count();
    let s = x[p..]
        .iter()
        .rev()
        .zip(y[p..].iter().rev())
        .take_while(|(c, d)| c == d)
        .count();
    let (rx, ry) = (x.len() - p - s, y.len() - p - s);
    match (rx, ry) {
        (1, 1) | (1, 0) | (0, 1) => true,
        (2, 2) => x[p] == y[p + 1] && x[p + 1] == y[p],
        _ => false,
    }
}

/// Whether the word sequence `needle` occurs contiguously in `hay` with every
/// word [`near`] the needle's (an exact occurrence included).
pub fn contains_words_near(hay: &[String], needle: &[String]) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    hay.windows(needle.len())
        .any(|w| w.iter().zip(needle).all(|(a, b)| near(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_side_takes_the_final_value() {
        assert_eq!(last_side("x = 8").trim(), "8");
        assert_eq!(last_side("1x1 → 3x3 → 7x7").trim(), "7x7");
        assert_eq!(last_side("a -> b => c").trim(), "c");
        assert_eq!(last_side("8").trim(), "8");
        assert_eq!(last_side("y ≈ 0.556").trim(), "0.556");
    }

    #[test]
    fn lookalikes_become_ascii() {
        assert_eq!(ascii_lookalikes("−3 × ８"), "-3 * 8");
        assert_eq!(ascii_lookalikes("34\u{202F}944"), "34 944");
    }

    #[test]
    fn delatex_converts_fractions_and_roots() {
        assert_eq!(delatex("\\frac{1}{9}").unwrap(), "((1)/(9))");
        assert_eq!(delatex("\\frac{\\sqrt{2}}{2}").unwrap(), "((sqrt(2))/(2))");
        assert_eq!(delatex("2 \\cdot 3").unwrap(), "2 * 3");
        assert!(delatex("\\frac{1}").is_err());
        assert!(delatex("\\foo").is_err());
        assert!(delatex("}").is_err());
        let deep = "{".repeat(100) + &"}".repeat(100);
        assert!(delatex(&deep).is_err());
    }

    #[test]
    fn near_allows_one_edit_in_long_words() {
        assert!(near("convolution", "convoluton"));
        assert!(near("transpos", "transpon"));
        assert!(near("transpose", "tarnspose"));
        assert!(near("kernel", "kernels"));
        assert!(!near("conv", "cons"));
        assert!(!near("convolution", "convolutoin x"));
        assert!(!near("transposed", "transformed"));
        let hay = words("a transposd convolution");
        assert!(contains_words_near(&hay, &words("transposed convolution")));
        assert!(!contains_words_near(&hay, &words("inverse convolution")));
    }

    #[test]
    fn stemming_never_splits_a_character() {
        // U+2082 is E2 82 82: two equal trailing bytes.
        assert_eq!(words("a\u{2082}\u{2082}ed"), vec!["a\u{2082}\u{2082}"]);
        assert_eq!(
            words("\u{2082}\u{2082}\u{2082}ing"),
            vec!["\u{2082}\u{2082}\u{2082}"]
        );
    }

    proptest::proptest! {
        #[test]
        fn words_never_panic(s in "\\PC{0,40}(ed|ing|ies|es|s)?") {
            let w = words(&s);
            proptest::prop_assert!(w.iter().all(|x| !x.is_empty()));
        }
    }

    #[test]
    fn words_ignore_case_plural_punctuation_hyphens() {
        assert_eq!(words("Edge-Detectors!"), vec!["edge", "detector"]);
        assert_eq!(
            words("Boxes, properties; loss"),
            vec!["box", "property", "loss"]
        );
        assert_eq!(
            words("affected blurring padding smoothed called"),
            vec!["affect", "blur", "pad", "smooth", "call"]
        );
        let hay = words("a vertical edge detector");
        assert!(contains_words(&hay, &words("edge detectors")));
        assert!(!contains_words(&hay, &words("horizontal edge")));
    }
}
