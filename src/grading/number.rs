//! Numbers: reading what students write (`0.5`, `1/2`, `5e-1`, `50%`,
//! `34,944`, `2 log 2`, `ln(4)`, `sqrt(2)/2`, `≈ 0.556`, `σ(2.32)`, `x = 8`)
//! and comparing with a key under PrairieLearn's tolerance definitions.

use crate::compute::expr::{self, Expr, ExprLimits};
use crate::compute::steps::fmt_num;

use super::model::{DecimalComma, Tolerance};
use super::text;

/// A number read from an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedNumber {
    /// The value.
    pub value: f64,
    /// How it was read, e.g. `0.5`, `ln(4) = 1.38629436112`.
    pub normalized: String,
    /// Whether the answer was written as a percentage.
    pub percent: bool,
}

/// Options for reading numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberFormat {
    /// Read `50%` as 0.5 (else: not gradable).
    pub allow_percent: bool,
    /// Comma rule.
    pub decimal_comma: DecimalComma,
}

/// Renders a number so that reading it back gives the same f64: the short
/// human form of [`fmt_num`] when exact, else Rust's shortest round-trip form.
pub fn render_num(x: f64) -> String {
    let short = fmt_num(x);
    if short.parse::<f64>().ok() == Some(x) {
        short
    } else {
        format!("{x}")
    }
}

/// Reads one number. Errors name what could not be read.
pub fn parse_number(src: &str, fmt: NumberFormat) -> Result<ParsedNumber, String> {
    text::check_len(src, "answer")?;
    let ascii = text::ascii_lookalikes(src);
    let side = text::strip_approx(text::last_side(&ascii)).trim();
    let side = side.strip_suffix('.').unwrap_or(side).trim_end();
    if side.is_empty() {
        return Err(if src.trim().is_empty() {
            "the answer is empty".into()
        } else {
            "there is no value after the last '='".into()
        });
    }
    let (body, percent) = match side.strip_suffix('%') {
        Some(b) => {
            if !fmt.allow_percent {
                return Err(
                    "this part does not accept percentages: write 0.5 instead of 50%".into(),
                );
            }
            (b.trim_end(), true)
        }
        None => (side, false),
    };
    let body = strip_trailing_words(body);
    let scale = if percent { 0.01 } else { 1.0 };
    if let Some(v) = literal(body, fmt.decimal_comma)? {
        let value = v * scale;
        return Ok(ParsedNumber {
            value,
            normalized: if percent {
                format!("{}% = {}", render_num(v), render_num(value))
            } else {
                render_num(value)
            },
            percent,
        });
    }
    // Fast path for a plain fraction such as `1/2` or `14/3`.
    if let Some((n, d)) = body.split_once('/')
        && let (Ok(Some(a)), Ok(Some(b))) = (
            literal(n.trim(), fmt.decimal_comma),
            literal(d.trim(), fmt.decimal_comma),
        )
        && b != 0.0
        && !d.contains('/')
    {
        let v = a / b;
        let value = v * scale;
        return Ok(ParsedNumber {
            value,
            normalized: format!(
                "{}/{} = {}",
                render_num(a),
                render_num(b),
                render_num(value)
            ),
            percent,
        });
    }
    let e = parse_const_expr(body)?;
    let v = eval_const(&e)?;
    let value = v * scale;
    Ok(ParsedNumber {
        value,
        normalized: if percent {
            format!("({e})% = {}", render_num(value))
        } else {
            format!("{e} = {}", render_num(value))
        },
        percent,
    })
}

/// `34944 parameters` -> `34944`: drops trailing words after a plain literal.
fn strip_trailing_words(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | ' ')))
        .unwrap_or(s.len());
    let (num, tail) = s.split_at(end);
    if !num.trim().is_empty()
        && !tail.is_empty()
        && tail.chars().all(|c| c.is_alphabetic() || c == ' ')
        && tail.chars().any(|c| c.is_alphabetic())
        && num.ends_with(' ')
        && tail
            .split_whitespace()
            .all(|w| w.chars().count() > 1 && expr::Func::from_name(w).is_none())
    {
        num.trim_end()
    } else {
        s
    }
}

/// A plain decimal literal (with the comma and digit-group rules), or `None`
/// when the text is not a plain literal (it may be an expression).
fn literal(s: &str, comma: DecimalComma) -> Result<Option<f64>, String> {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | 'e' | 'E' | ' ' | '\''));
    if !plain || !s.chars().any(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest.trim_start()),
        None => ("", s.strip_prefix('+').unwrap_or(s).trim_start()),
    };
    let cleaned: String = if digits.contains(',') {
        match comma {
            DecimalComma::Always => {
                if digits.contains('.') || digits.matches(',').count() > 1 {
                    return Err(format!(
                        "'{s}' mixes separators; this part reads a comma as the decimal point"
                    ));
                }
                digits.replace(',', ".")
            }
            DecimalComma::Never => ungroup(digits, ',').ok_or_else(|| {
                format!("'{s}': commas must separate groups of three digits (e.g. 34,944)")
            })?,
            DecimalComma::Auto => match ungroup(digits, ',') {
                Some(u) => u,
                None if digits.matches(',').count() == 1 && !digits.contains('.') => {
                    digits.replace(',', ".")
                }
                None => {
                    return Err(format!(
                        "'{s}' is ambiguous: use a point for decimals (0.5) and commas only between groups of three digits (34,944)"
                    ));
                }
            },
        }
    } else if digits.contains(' ') || digits.contains('\'') {
        let sep = if digits.contains(' ') { ' ' } else { '\'' };
        match ungroup(digits, sep) {
            Some(u) => u,
            None => return Ok(None),
        }
    } else {
        digits.to_string()
    };
    if cleaned.contains(['-', '+']) && !cleaned.contains(['e', 'E']) {
        return Ok(None);
    }
    match format!("{sign}{cleaned}").parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(_) => Err(format!("'{s}' is too large")),
        Err(_) => Ok(None),
    }
}

/// Removes digit-group separators: `34,944.5` -> `34944.5`; `None` unless
/// every group after the first has exactly three digits (1-3 in the first).
fn ungroup(s: &str, sep: char) -> Option<String> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut groups = int.split(sep);
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = first.to_string();
    let mut n = 0;
    for g in groups {
        if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push_str(g);
        n += 1;
    }
    if n == 0 {
        return None;
    }
    if let Some(f) = frac {
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// Parses an expression that must not contain variables (after LaTeX cleanup).
pub fn parse_const_expr(s: &str) -> Result<Expr, String> {
    let e = parse_expr(s)?;
    let vars = e.variables();
    if !vars.is_empty() {
        let names: Vec<String> = vars.into_iter().collect();
        return Err(format!(
            "could not read '{}' as a number: unknown name(s) {}",
            s.trim(),
            names.join(", ")
        ));
    }
    Ok(e)
}

/// Parses an expression with the shared limits (LaTeX converted first).
pub fn parse_expr(s: &str) -> Result<Expr, String> {
    let plain = text::delatex(s)?;
    expr::parse(&plain, &ExprLimits::default())
        .map_err(|err| format!("could not read '{}': {err}", s.trim()))
}

/// Evaluates a variable-free expression to a finite number.
pub fn eval_const(e: &Expr) -> Result<f64, String> {
    match e.eval(&|_: &str| None) {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{e} does not evaluate to a finite number")),
        Err(err) => Err(format!("could not evaluate {e}: {err}")),
    }
}

/// Whether `a` (student) equals `b` (key) under `tol`.
pub fn is_close(a: f64, b: f64, tol: Tolerance) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return a == b;
    }
    let d = (a - b).abs();
    match tol {
        Tolerance::Relative { rtol } => d <= rtol * b.abs(),
        Tolerance::Absolute { atol } => d <= atol,
        Tolerance::Relabs { rtol, atol } => d <= atol + rtol * b.abs(),
        Tolerance::Sigfig { digits } => {
            let n = if b == 0.0 {
                f64::from(digits) - 1.0
            } else {
                -b.abs().log10().floor() + f64::from(digits) - 1.0
            };
            d < 0.51 * 10f64.powf(-n)
        }
        Tolerance::Decdig { digits } => d < 0.51 * 10f64.powi(-(digits as i32)),
        Tolerance::Exact => a == b,
    }
}

/// Describes a tolerance for feedback, e.g. `to 3 significant figures`.
pub fn describe_tolerance(tol: Tolerance) -> String {
    match tol {
        Tolerance::Relative { rtol } => format!("within {}% relative", render_num(rtol * 100.0)),
        Tolerance::Absolute { atol } => format!("within ±{}", render_num(atol)),
        Tolerance::Relabs { rtol, atol } => format!(
            "within {}% relative (+{} absolute)",
            render_num(rtol * 100.0),
            render_num(atol)
        ),
        Tolerance::Sigfig { digits } => format!("to {digits} significant figures"),
        Tolerance::Decdig { digits } => format!("to {digits} decimal places"),
        Tolerance::Exact => "exactly".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(s: &str) -> Result<f64, String> {
        parse_number(s, NumberFormat::default()).map(|p| p.value)
    }

    #[test]
    fn plain_literals_and_prefixes() {
        assert_eq!(read("0.5"), Ok(0.5));
        assert_eq!(read("5e-1"), Ok(0.5));
        assert_eq!(read("x = 8"), Ok(8.0));
        assert_eq!(read("≈ 0.556"), Ok(0.556));
        assert_eq!(read("y ≈ 0.556"), Ok(0.556));
        assert_eq!(read("−3"), Ok(-3.0));
        assert_eq!(read("８"), Ok(8.0));
        assert_eq!(read("34944 parameters"), Ok(34944.0));
        assert_eq!(read("8."), Ok(8.0));
    }

    #[test]
    fn commas_and_groups() {
        assert_eq!(read("34,944"), Ok(34944.0));
        assert_eq!(read("1,234,567.5"), Ok(1234567.5));
        assert_eq!(read("0,5"), Ok(0.5));
        assert_eq!(read("34 944"), Ok(34944.0));
        assert!(read("1,23,4").is_err());
        let always = NumberFormat {
            decimal_comma: DecimalComma::Always,
            ..Default::default()
        };
        assert_eq!(parse_number("1,234", always).map(|p| p.value), Ok(1.234));
        let never = NumberFormat {
            decimal_comma: DecimalComma::Never,
            ..Default::default()
        };
        assert!(parse_number("0,5", never).is_err());
    }

    #[test]
    fn percent_only_where_allowed() {
        assert!(read("50%").unwrap_err().contains("percent"));
        let pct = NumberFormat {
            allow_percent: true,
            ..Default::default()
        };
        let p = parse_number("50 %", pct).unwrap();
        assert_eq!(p.value, 0.5);
        assert!(p.percent);
    }

    #[test]
    fn expressions() {
        assert_eq!(read("1/2"), Ok(0.5));
        assert!((read("2 log 2").unwrap() - 2.0 * 2f64.ln()).abs() < 1e-15);
        assert!((read("ln(4)").unwrap() - 4f64.ln()).abs() < 1e-15);
        assert!((read("14/3").unwrap() - 14.0 / 3.0).abs() < 1e-15);
        assert!((read("sqrt(2)/2").unwrap() - 0.5f64.sqrt()).abs() < 1e-15);
        assert!((read("√2/2").unwrap() - 0.5f64.sqrt()).abs() < 1e-15);
        let s = 1.0 / (1.0 + (-2.32f64).exp());
        assert!((read("σ(2.32)").unwrap() - s).abs() < 1e-15);
        assert_eq!(read("(11*11*3+1)*96"), Ok(34944.0));
        assert_eq!(read("\\frac{1}{2}"), Ok(0.5));
        assert_eq!(read("3 × 3 × 16"), Ok(144.0));
    }

    #[test]
    fn unreadable_answers_say_why() {
        assert!(read("").unwrap_err().contains("empty"));
        assert!(read("x =").unwrap_err().contains("no value"));
        assert!(read("two").unwrap_err().contains("two"));
        assert!(read("1/0").is_err());
        assert!(read("inf").is_err());
        assert!(read("NaN").is_err());
        assert!(read(&"9".repeat(100_000)).is_err());
        assert!(read(&"(".repeat(50_000)).is_err());
        assert!(read(&"((".repeat(1000)).is_err());
    }

    #[test]
    fn prairielearn_tolerances() {
        let sf3 = Tolerance::Sigfig { digits: 3 };
        assert!(is_close(0.556, 0.556275, sf3));
        assert!(!is_close(0.55, 0.556275, sf3));
        // 0 key: n = digits - 1, eps = 0.51e-2 for 3 digits.
        assert!(is_close(0.005, 0.0, sf3));
        assert!(!is_close(0.0052, 0.0, sf3));
        assert!(is_close(1.005, 1.0, Tolerance::Decdig { digits: 2 }));
        assert!(!is_close(1.0052, 1.0, Tolerance::Decdig { digits: 2 }));
        assert!(is_close(101.0, 100.0, Tolerance::Relative { rtol: 0.01 }));
        assert!(!is_close(101.1, 100.0, Tolerance::Relative { rtol: 0.01 }));
        assert!(is_close(0.1, 0.0, Tolerance::Absolute { atol: 0.1 }));
        assert!(is_close(
            1e-9,
            0.0,
            Tolerance::Relabs {
                rtol: 0.01,
                atol: 1e-8
            }
        ));
        assert!(!is_close(1.0, 1.0 + 1e-15, Tolerance::Exact));
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let s = render_num(x);
            let p = parse_number(&s, NumberFormat::default()).unwrap();
            prop_assert_eq!(p.value, x);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_number(&s, NumberFormat::default());
        }
    }
}
