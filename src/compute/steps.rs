//! Worked steps: the lines an exam solution shows, in plain text and LaTeX.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One line of working: the formula, the substituted numbers and the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    /// Human-readable line, e.g. `(26 - 7 + 2*1) / 3 + 1 = 8`.
    pub text: String,
    /// The same line as a LaTeX string an LMS can render.
    pub latex: String,
}

impl Step {
    pub fn new(text: impl Into<String>, latex: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            latex: latex.into(),
        }
    }
}

/// Formats an f64 for worked steps and normalized answers: integers without a
/// fraction part, others with up to 12 significant digits, no trailing zeros.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let s = format!("{x:.11e}");
    let v: f64 = s.parse().unwrap_or(x);
    let mut out = format!("{v}");
    if out.contains('e') {
        return out;
    }
    if out.contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fmt_num;

    #[test]
    fn formats_numbers_for_humans() {
        assert_eq!(fmt_num(8.0), "8");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.0 / 3.0), "0.333333333333");
        assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
    }
}
