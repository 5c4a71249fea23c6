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

/// Worked steps with a cap: past `cap` lines, further lines are counted, not
/// kept, and [`StepLog::finish`] ends with one line saying how many were left
/// out (every value is still in the report itself).
#[derive(Debug, Clone)]
pub struct StepLog {
    lines: Vec<Step>,
    omitted: usize,
    cap: usize,
}

impl StepLog {
    pub fn new(cap: usize) -> Self {
        Self {
            lines: Vec::new(),
            omitted: 0,
            cap,
        }
    }

    /// Keeps the line if the cap allows, else counts it as omitted.
    pub fn push(&mut self, text: String, latex: String) {
        if self.lines.len() < self.cap {
            self.lines.push(Step::new(text, latex));
        } else {
            self.omitted += 1;
        }
    }

    /// Counts a line that was not written (e.g. a vector too long to show).
    pub fn omit(&mut self) {
        self.omit_many(1);
    }

    /// Counts `n` lines that were not written.
    pub fn omit_many(&mut self, n: usize) {
        self.omitted += n;
    }

    pub fn full(&self) -> bool {
        self.lines.len() >= self.cap
    }

    /// The lines, with a closing line counting the omitted ones.
    pub fn finish(mut self) -> Vec<Step> {
        if self.omitted > 0 {
            let text = format!(
                "... {} further lines omitted (all values are in the report)",
                self.omitted
            );
            let latex = format!("\\text{{{text}}}");
            self.lines.push(Step::new(text, latex));
        }
        self.lines
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
    fn step_log_caps_and_counts() {
        let mut log = super::StepLog::new(2);
        for i in 0..5 {
            log.push(format!("line {i}"), String::new());
        }
        log.omit();
        assert!(log.full());
        let lines = log.finish();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].text, "line 1");
        assert!(lines[2].text.starts_with("... 4 further lines omitted"));
    }

    #[test]
    fn formats_numbers_for_humans() {
        assert_eq!(fmt_num(8.0), "8");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.0 / 3.0), "0.333333333333");
        assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
    }
}
