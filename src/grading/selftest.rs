//! Running a rubric's own self-tests (`tests` in the rubric JSON).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::grade::{GradeOptions, grade};
use super::number::render_num;
use super::resolve::ResolvedRubric;

/// One self-test that did not give the expected points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SelfTestFailure {
    /// Pointer of the test in the rubric, e.g. `/tests/2`.
    pub pointer: String,
    /// The test's name.
    pub name: String,
    /// The score the test expects.
    pub expected_score: f64,
    /// The score the rubric gives.
    pub actual_score: f64,
    /// Each disagreement, e.g. `part b: expected 1, got 2 (rule full)`.
    pub mismatches: Vec<String>,
}

/// The outcome of a rubric's self-tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SelfTestReport {
    /// Tests run.
    pub total: usize,
    /// Tests that gave the expected points.
    pub passed: usize,
    /// The others.
    pub failures: Vec<SelfTestFailure>,
}

impl ResolvedRubric {
    /// Grades every self-test of the rubric (default options) and lists the
    /// cases whose total or per-part points differ from the expected ones
    /// by more than 1e-9.
    pub fn run_self_tests(&self) -> SelfTestReport {
        let tests = &self.rubric().tests;
        let mut failures = Vec::new();
        for (i, t) in tests.iter().enumerate() {
            let r = grade(self, &t.answers, &GradeOptions::default());
            let mut mismatches = Vec::new();
            if (r.score - t.expected_score).abs() > 1e-9 {
                mismatches.push(format!(
                    "total: expected {}, got {}",
                    render_num(t.expected_score),
                    render_num(r.score)
                ));
            }
            for (id, want) in &t.expected_parts {
                if let Some(p) = r.parts.iter().find(|p| &p.part_id == id)
                    && (p.points - want).abs() > 1e-9
                {
                    mismatches.push(format!(
                        "part {id}: expected {}, got {} (rule {}; {})",
                        render_num(*want),
                        render_num(p.points),
                        p.matched_rule.as_deref().unwrap_or("none"),
                        p.feedback.join(" ")
                    ));
                }
            }
            if !mismatches.is_empty() {
                failures.push(SelfTestFailure {
                    pointer: format!("/tests/{i}"),
                    name: t.name.clone(),
                    expected_score: t.expected_score,
                    actual_score: r.score,
                    mismatches,
                });
            }
        }
        SelfTestReport {
            total: tests.len(),
            passed: tests.len() - failures.len(),
            failures,
        }
    }
}

impl ResolvedRubric {
    /// The rubric's own self-tests followed by the generated ones (see
    /// [`ResolvedRubric::run_generated_tests`]): what must pass before a
    /// rubric or a variant is used.
    pub fn run_all_self_tests(&self) -> SelfTestReport {
        let mut report = self.run_self_tests();
        let generated = self.run_generated_tests();
        report.total += generated.total;
        report.passed += generated.passed;
        report.failures.extend(generated.failures);
        report
    }
}
