//! The pure rubric engine: rubric JSON model and validation, answer parsers
//! with normalized echoes, equivalences, ordered credit rules, error carried
//! forward, computed keys (through [`KeyResolver`]), key audit, grading and
//! the Gradescope mapping. Depends on `crate::compute` only: no HTTP, no
//! database, no async.
//!
//! ```text
//! let rubric: Rubric = serde_json::from_str(json)?;
//! let resolved = rubric.resolve_keys(&engines)?;     // once per rubric
//! let result = grade(&resolved, &answers, &GradeOptions::default());
//! ```
//!
//! The format, the credit rule order and the tolerance definitions are
//! documented in `docs/rubrics.md`.

pub mod engines;
pub mod expression;
pub mod grade;
pub mod matrix;
pub mod model;
pub mod number;
pub mod resolve;
pub mod selftest;
pub mod shape;
pub mod stats;
pub mod template;
pub mod text;
pub mod validate;

pub use grade::{
    GradeOptions, GradeResult, GradeStatus, GradescopeResults, GradescopeTest, PartResult, Verdict,
    grade,
};
pub use model::{Answers, Rubric, RubricProblem, StudentAnswer};
pub use resolve::{AuditFinding, KeyResolver, NoEngines, ResolvedRubric};
pub use selftest::{SelfTestFailure, SelfTestReport};
pub use template::{Template, Variant, VariantError};
