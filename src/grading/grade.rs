//! Grading a submission against a compiled rubric, the result types and the
//! Gradescope `results.json` mapping.
//!
//! Per part, in this order (documented in `docs/rubrics.md`):
//! 1. full match with the key (under the part's equivalences) -> max points;
//! 2. alternatives: accepted weight conventions with partial points, the
//!    listed alternatives in order, then error carried forward;
//! 3. recognized mistakes in order; then per-entry credit (matrices), choice
//!    and concept scoring; then method credit from the working: the part
//!    scores the larger of the rule score and the method credit found;
//! 4. deductions (only from a score above zero);
//! 5. clamp to `[0, max_points]`.
//!
//! An answer that cannot be read is `not_gradable` (0 points, the reason is
//! given); it is not counted as wrong.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::compute::expr::Expr;

use super::expression::{Equivalence, equivalent as expr_equivalent};
use super::matrix::{
    Matrix, entry_mask, equivalent as matrix_equivalent, parse_matrix, render_matrix,
};
use super::model::{Answers, ChoiceScoring, DimOrder, Recognizer, StudentAnswer};
use super::number::{ParsedNumber, is_close, parse_expr, parse_number, render_num};
use super::resolve::{CCond, CRule, CompiledPart, Kind, Matcher, ResolvedRubric, Typed};
use super::shape::{
    ParsedShape, is_permutation, is_proper_subsequence, layout_names, parse_shape, render_shape,
};
use super::text;

/// Options of one grading run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeOptions {
    /// Apply error carried forward (`follow_through`). Default: true.
    #[serde(default = "yes")]
    pub follow_through: bool,
    /// Award method credit from the working. Default: true.
    #[serde(default = "yes")]
    pub method_credit: bool,
}

fn yes() -> bool {
    true
}

impl Default for GradeOptions {
    fn default() -> Self {
        Self {
            follow_through: true,
            method_credit: true,
        }
    }
}

/// The verdict on one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Full points.
    Correct,
    /// Some points.
    Partial,
    /// No points (including no answer).
    Incorrect,
    /// The answer could not be read; see `reason`. Not counted as an attempt.
    NotGradable,
    /// Left for a human grader.
    PendingManual,
}

/// The status of a whole submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GradeStatus {
    /// Every part was graded automatically.
    FullyGraded,
    /// Some part waits for manual review (and none is unreadable).
    PendingManual,
    /// Some part could not be read.
    NotGradable,
}

/// The grading of one part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartResult {
    /// The part's id.
    pub part_id: String,
    /// Points awarded, in `[0, max_points]`.
    pub points: f64,
    /// The part's maximum.
    pub max_points: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// Id of the rule that set the score: `full`, an alternative or mistake
    /// id, `convention:<name>`, `follow_through`, `per_entry`, `choice`,
    /// `concepts` or `method`. None when nothing matched.
    pub matched_rule: Option<String>,
    /// Feedback lines explaining every point awarded or taken.
    pub feedback: Vec<String>,
    /// The answer as it was read, e.g. `(8, 8, 5)`.
    pub normalized_answer: Option<String>,
    /// Why the answer was not graded automatically: it could not be read
    /// (`not_gradable`) or equivalence could not be decided (`pending_manual`).
    pub reason: Option<String>,
    /// Whether the key was recomputed from the student's earlier answer.
    pub follow_through_applied: bool,
    /// Matrices and vectors: `true` marks a wrong entry (rows of the answer).
    pub mask: Option<Vec<Vec<bool>>>,
}

/// The grading of a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GradeResult {
    /// Total points.
    pub score: f64,
    /// Total available.
    pub max_score: f64,
    /// Overall status.
    pub status: GradeStatus,
    /// Per part, in rubric order.
    pub parts: Vec<PartResult>,
}

/// One test of a Gradescope autograder result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GradescopeTest {
    /// Test name (the part id and verdict).
    pub name: String,
    /// Test number (1-based part index).
    pub number: String,
    /// Points earned.
    pub score: f64,
    /// Points available.
    pub max_score: f64,
    /// `passed` (full points) or `failed`.
    pub status: String,
    /// The feedback lines.
    pub output: String,
}

/// Gradescope autograder `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GradescopeResults {
    /// Total score.
    pub score: f64,
    /// Overall message.
    pub output: String,
    /// One test per part.
    pub tests: Vec<GradescopeTest>,
}

impl GradeResult {
    /// The Gradescope `results.json` for this result.
    pub fn to_gradescope(&self) -> GradescopeResults {
        GradescopeResults {
            score: self.score,
            output: match self.status {
                GradeStatus::FullyGraded => format!(
                    "Score {} / {}.",
                    render_num(self.score),
                    render_num(self.max_score)
                ),
                GradeStatus::PendingManual => format!(
                    "Score so far {} / {}; some parts wait for manual review.",
                    render_num(self.score),
                    render_num(self.max_score)
                ),
                GradeStatus::NotGradable => format!(
                    "Score {} / {}; some answers could not be read (see below) and may be resubmitted.",
                    render_num(self.score),
                    render_num(self.max_score)
                ),
            },
            tests: self
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| GradescopeTest {
                    name: format!("Part {} ({})", p.part_id, verdict_word(p.verdict)),
                    number: (i + 1).to_string(),
                    score: p.points,
                    max_score: p.max_points,
                    status: if p.verdict == Verdict::Correct {
                        "passed".into()
                    } else {
                        "failed".into()
                    },
                    output: p.feedback.join("\n"),
                })
                .collect(),
        }
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Correct => "correct",
        Verdict::Partial => "partially correct",
        Verdict::Incorrect => "incorrect",
        Verdict::NotGradable => "not gradable",
        Verdict::PendingManual => "pending manual review",
    }
}

/// An answer read into its typed form.
enum Parsed {
    Num(ParsedNumber),
    Shape(ParsedShape),
    Mat(Matrix),
    Ex(Expr),
}

/// Grades `answers` against `rubric`.
pub fn grade(rubric: &ResolvedRubric, answers: &Answers, opts: &GradeOptions) -> GradeResult {
    let mut values: Vec<Option<Vec<f64>>> = Vec::with_capacity(rubric.parts.len());
    let mut parts = Vec::with_capacity(rubric.parts.len());
    for p in &rubric.parts {
        let (r, v) = grade_part(p, answers.0.get(&p.id), &values, opts);
        values.push(v);
        parts.push(r);
    }
    let score = round9(parts.iter().map(|p| p.points).sum());
    let status = if parts.iter().any(|p| p.verdict == Verdict::NotGradable) {
        GradeStatus::NotGradable
    } else if parts.iter().any(|p| p.verdict == Verdict::PendingManual) {
        GradeStatus::PendingManual
    } else {
        GradeStatus::FullyGraded
    };
    GradeResult {
        score,
        max_score: round9(rubric.max_score()),
        status,
        parts,
    }
}

fn round9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

fn pts(x: f64) -> String {
    if x >= 0.0 {
        format!("+{}", render_num(round9(x)))
    } else {
        format!("-{}", render_num(round9(-x)))
    }
}

struct Ctx<'a> {
    p: &'a CompiledPart,
    lines: Vec<String>,
    rule: Option<String>,
    points: f64,
    ft: bool,
    mask: Option<Vec<Vec<bool>>>,
    /// Set when equivalence could not be decided (expression parts).
    undecided: Option<String>,
}

impl Ctx<'_> {
    fn award(&mut self, points: f64, rule: &str, line: String) {
        self.points = points;
        self.rule = Some(rule.to_string());
        self.lines.push(line);
    }
}

fn empty_result(p: &CompiledPart, verdict: Verdict) -> PartResult {
    PartResult {
        part_id: p.id.clone(),
        points: 0.0,
        max_points: p.max,
        verdict,
        matched_rule: None,
        feedback: Vec::new(),
        normalized_answer: None,
        reason: None,
        follow_through_applied: false,
        mask: None,
    }
}

fn grade_part(
    p: &CompiledPart,
    ans: Option<&StudentAnswer>,
    earlier: &[Option<Vec<f64>>],
    opts: &GradeOptions,
) -> (PartResult, Option<Vec<f64>>) {
    let text_in = ans.map(StudentAnswer::answer).unwrap_or("").trim();
    let working = ans.and_then(StudentAnswer::working).unwrap_or("");
    if text_in.is_empty() {
        let mut r = empty_result(p, Verdict::Incorrect);
        r.feedback
            .push(format!("No answer was given. 0 / {}.", render_num(p.max)));
        return (r, None);
    }
    if let Err(reason) = text::check_len(working, "working") {
        return (not_gradable(p, reason), None);
    }
    let mut cx = Ctx {
        p,
        lines: Vec::new(),
        rule: None,
        points: 0.0,
        ft: false,
        mask: None,
        undecided: None,
    };
    let normalized: Option<String>;
    let mut ft_values = None;
    let mut parsed_opt = None;
    match &p.kind {
        Kind::FreeText => {
            let mut r = empty_result(p, Verdict::PendingManual);
            r.normalized_answer = Some(text_in.chars().take(500).collect());
            r.feedback.push(
                "This answer is left for manual review; its points are not yet awarded.".into(),
            );
            return (r, None);
        }
        Kind::Choice { .. } => match read_choice(&p.kind, text_in) {
            Ok(sel) => {
                normalized = Some(choice_norm(&p.kind, &sel));
                grade_choice(&mut cx, &sel);
            }
            Err(reason) => return (not_gradable(p, reason), None),
        },
        Kind::Concepts { groups } => {
            if let Err(reason) = text::check_len(text_in, "answer") {
                return (not_gradable(p, reason), None);
            }
            let w = text::words(text_in);
            let joined = w.join(" ");
            normalized = Some(joined.chars().take(500).collect());
            let mut total = 0.0;
            for g in groups {
                let found = |ph: &super::resolve::Phrase| {
                    !ph.is_empty() && ph.iter().all(|seq| text::contains_words(&w, seq))
                };
                if g.phrases.iter().any(found) {
                    total += g.points;
                    let what = if g.points < 0.0 { "penalized" } else { "found" };
                    cx.lines.push(format!(
                        "{} ({}): {what}.{}",
                        pts(g.points),
                        g.id,
                        g.feedback
                            .as_ref()
                            .map(|f| format!(" {f}"))
                            .unwrap_or_default()
                    ));
                } else if let Some((pp, fb)) = lesser(g, &w) {
                    total += pp;
                    cx.lines.push(format!(
                        "{} ({}): only partly.{}",
                        pts(pp),
                        g.id,
                        fb.map(|f| format!(" {f}")).unwrap_or_default()
                    ));
                } else if g.points > 0.0 {
                    cx.lines.push(format!(
                        "+0 ({}): missing.{}",
                        g.id,
                        g.missing_feedback
                            .as_ref()
                            .map(|f| format!(" {f}"))
                            .unwrap_or_default()
                    ));
                }
            }
            cx.points = total;
            cx.rule = Some("concepts".into());
        }
        _ => {
            let parsed = match read_answer(&p.kind, text_in) {
                Ok(x) => x,
                Err(reason) => return (not_gradable(p, reason), None),
            };
            let norm = render_parsed(&p.kind, &parsed);
            cx.lines.push(format!("We read your answer as {norm}."));
            normalized = Some(norm);
            ft_values = parsed_values(&p.kind, &parsed);
            grade_valued(&mut cx, &parsed, earlier, opts);
            parsed_opt = Some(parsed);
        }
    }
    // (3b) Method credit.
    if opts.method_credit && cx.points < p.max && !p.method.is_empty() {
        let stated = stated_values(&format!("{text_in}\n{working}"));
        let mut sum = 0.0;
        let mut found = Vec::new();
        for m in &p.method {
            if let Some(v) = stated.iter().find(|v| is_close(**v, m.value, m.tol)) {
                sum += m.points;
                found.push(format!(
                    "{} (method, {}): you stated {}.{}",
                    pts(m.points),
                    m.id,
                    render_num(*v),
                    m.feedback
                        .as_ref()
                        .map(|f| format!(" {f}"))
                        .unwrap_or_default()
                ));
            }
        }
        let sum = sum.min(p.max);
        if sum > cx.points {
            if cx.points > 0.0 {
                cx.lines.push(format!(
                    "Method credit ({}) replaces the {} above.",
                    render_num(sum),
                    render_num(cx.points)
                ));
            }
            cx.points = sum;
            cx.rule = Some("method".into());
            cx.lines.extend(found);
        }
    }
    // (4) Deductions.
    if cx.points > 0.0 && !p.deductions.is_empty() {
        let all_words = text::words(&format!("{text_in}\n{working}"));
        for d in &p.deductions {
            let applies = match &d.cond {
                CCond::Scalar => matches!(&parsed_opt, Some(Parsed::Shape(s)) if s.scalar),
                CCond::Rank(r) => {
                    matches!(&parsed_opt, Some(Parsed::Shape(s)) if s.dims.len() == *r)
                }
                CCond::Contains(ph) => ph.iter().any(|w| text::contains_words(&all_words, w)),
                CCond::Missing(ph) => !ph.iter().any(|w| text::contains_words(&all_words, w)),
                CCond::NoWorking => {
                    working.trim().is_empty() && !text_in.contains(['=', '\u{2248}'])
                }
            };
            if applies {
                cx.points -= d.points;
                cx.lines.push(format!(
                    "{} ({}){}",
                    pts(-d.points),
                    d.id,
                    d.feedback
                        .as_ref()
                        .map(|f| format!(": {f}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if let Some(why) = cx.undecided {
        let mut r = empty_result(p, Verdict::PendingManual);
        r.normalized_answer = normalized;
        r.feedback = cx.lines;
        r.feedback.push(format!("Left for manual review: {why}."));
        r.reason = Some(why);
        return (r, ft_values);
    }
    // (5) Clamp.
    let points = round9(cx.points.clamp(0.0, p.max));
    if points != round9(cx.points) {
        cx.lines
            .push(format!("Clamped to the range 0 .. {}.", render_num(p.max)));
    }
    let verdict = if points >= p.max - 1e-9 {
        Verdict::Correct
    } else if points > 0.0 {
        Verdict::Partial
    } else {
        Verdict::Incorrect
    };
    let custom = match verdict {
        Verdict::Correct => p.feedback.correct.clone(),
        Verdict::Partial => p.feedback.partial.clone(),
        _ => p.feedback.incorrect.clone(),
    };
    if cx.rule.is_none() && verdict == Verdict::Incorrect && parsed_opt.is_some() {
        cx.lines
            .push("This does not match the expected answer.".into());
    }
    if let Some(c) = custom {
        cx.lines.push(c);
    }
    cx.lines.push(format!(
        "Score: {} / {}.",
        render_num(points),
        render_num(p.max)
    ));
    (
        PartResult {
            part_id: p.id.clone(),
            points,
            max_points: p.max,
            verdict,
            matched_rule: cx.rule,
            feedback: cx.lines,
            normalized_answer: normalized,
            reason: None,
            follow_through_applied: cx.ft,
            mask: cx.mask,
        },
        ft_values,
    )
}

/// The better of a group's partial synonyms and misspelled phrases found.
fn lesser(g: &super::resolve::CGroup, w: &[String]) -> Option<(f64, Option<String>)> {
    let found = |ph: &super::resolve::Phrase| {
        !ph.is_empty() && ph.iter().all(|seq| text::contains_words(w, seq))
    };
    let partial = g
        .partial
        .iter()
        .find(|(phrases, _, _)| phrases.iter().any(found))
        .map(|(_, p, fb)| (*p, fb.clone()));
    let misspelled = g.misspelled.filter(|_| {
        g.phrases
            .iter()
            .any(|ph| !ph.is_empty() && ph.iter().all(|seq| text::contains_words_near(w, seq)))
    });
    match (partial, misspelled) {
        (Some(p), Some(m)) if m > p.0 => Some((m, Some("(misspelled)".into()))),
        (Some(p), _) => Some(p),
        (None, Some(m)) => Some((m, Some("(misspelled)".into()))),
        (None, None) => None,
    }
}

fn not_gradable(p: &CompiledPart, reason: String) -> PartResult {
    let mut r = empty_result(p, Verdict::NotGradable);
    r.feedback.push(format!(
        "Your answer could not be read: {reason}. It was not graded and costs no attempt."
    ));
    r.reason = Some(reason);
    r
}

fn read_answer(kind: &Kind, s: &str) -> Result<Parsed, String> {
    match kind {
        Kind::Number { fmt, .. } => parse_number(s, *fmt).map(Parsed::Num),
        Kind::Integer { fmt } => parse_number(s, *fmt).map(Parsed::Num),
        Kind::Shape { .. } | Kind::Weight { .. } => parse_shape(s).map(Parsed::Shape),
        Kind::Matrix { vector, .. } => {
            let m = parse_matrix(s)?;
            if *vector {
                m.as_vector()
                    .map(Parsed::Mat)
                    .ok_or_else(|| "a vector has one row or one column".to_string())
            } else {
                Ok(Parsed::Mat(m))
            }
        }
        Kind::Expression { .. } => {
            text::check_len(s, "answer")?;
            let side = text::last_side(s).trim();
            if side.is_empty() {
                return Err("there is no expression after the last '='".into());
            }
            parse_expr(side).map(Parsed::Ex)
        }
        Kind::Choice { .. } | Kind::Concepts { .. } | Kind::FreeText => {
            Err("internal: not a valued answer type".into())
        }
    }
}

fn render_parsed(kind: &Kind, parsed: &Parsed) -> String {
    match (kind, parsed) {
        (_, Parsed::Num(n)) => n.normalized.clone(),
        (_, Parsed::Shape(s)) if s.scalar => s.dims[0].to_string(),
        (_, Parsed::Shape(s)) => render_shape(&s.dims),
        (Kind::Matrix { vector, .. }, Parsed::Mat(m)) => render_matrix(m, *vector),
        (_, Parsed::Mat(m)) => render_matrix(m, false),
        (_, Parsed::Ex(e)) => e.to_string(),
    }
}

fn parsed_values(kind: &Kind, parsed: &Parsed) -> Option<Vec<f64>> {
    match (kind, parsed) {
        (_, Parsed::Num(n)) => Some(vec![n.value]),
        (Kind::Shape { .. }, Parsed::Shape(s)) => Some(s.dims.iter().map(|d| *d as f64).collect()),
        (Kind::Matrix { vector: true, .. }, Parsed::Mat(m)) => Some(m.data.clone()),
        _ => None,
    }
}

/// Dimensions of a shape answer, expanding `7` to `(7, 7)` where allowed.
fn shape_dims(kind: &Kind, s: &ParsedShape, rank: usize) -> Vec<u64> {
    match kind {
        Kind::Shape {
            scalar_shorthand: true,
            ..
        } if s.scalar && rank > 1 => vec![s.dims[0]; rank],
        _ => s.dims.clone(),
    }
}

/// Whether the answer equals `target` under the part's equivalence; the
/// string describes how (empty for a plain match).
fn same(kind: &Kind, parsed: &Parsed, target: &Typed) -> Option<String> {
    match (kind, parsed, target) {
        (Kind::Number { tol, .. }, Parsed::Num(a), Typed::Num(t)) => {
            is_close(a.value, *t, *tol).then(String::new)
        }
        (Kind::Integer { .. }, Parsed::Num(a), Typed::Num(t)) => (a.value == *t).then(String::new),
        (Kind::Shape { order, .. }, Parsed::Shape(a), Typed::Dims(t)) => {
            let d = shape_dims(kind, a, t.len());
            if &d == t {
                Some(if a.scalar && t.len() > 1 {
                    format!(" (read {} as {})", a.dims[0], render_shape(&d))
                } else {
                    String::new()
                })
            } else if *order == DimOrder::Any && is_permutation(&d, t) {
                Some(" (dimension order is not graded)".into())
            } else {
                None
            }
        }
        (Kind::Weight { .. }, Parsed::Shape(a), Typed::Dims(t)) => (&a.dims == t).then(String::new),
        (Kind::Matrix { tol, eq, .. }, Parsed::Mat(a), Typed::Mat(t)) => {
            matrix_equivalent(a, t, *tol, eq).map(|m| {
                let mut how = Vec::new();
                if m.transform != "identity" {
                    how.push(m.transform.to_string());
                }
                if m.scale != 1.0 {
                    how.push(format!("scaled by {}", render_num(m.scale)));
                }
                if how.is_empty() {
                    String::new()
                } else {
                    format!(" (up to {}, which is accepted)", how.join(", "))
                }
            })
        }
        (Kind::Expression { opts }, Parsed::Ex(a), Typed::Ex(t)) => {
            match expr_equivalent(a, t, opts) {
                Equivalence::Equal { defined } => {
                    Some(format!(" (equal at {defined} random points)"))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn recognized(kind: &Kind, parsed: &Parsed, key: &Typed, r: Recognizer) -> bool {
    match (r, parsed, key) {
        (Recognizer::Transpose, Parsed::Mat(a), Typed::Mat(k)) => {
            let tol = match kind {
                Kind::Matrix { tol, .. } => *tol,
                _ => return false,
            };
            matrix_equivalent(a, &k.transpose(), tol, &[]).is_some()
        }
        (Recognizer::SignFlip, Parsed::Mat(a), Typed::Mat(k)) => {
            let Kind::Matrix { tol, .. } = kind else {
                return false;
            };
            let neg = Matrix {
                rows: k.rows,
                cols: k.cols,
                data: k.data.iter().map(|x| -x).collect(),
            };
            matrix_equivalent(a, &neg, *tol, &[]).is_some()
        }
        (Recognizer::SignFlip, Parsed::Num(a), Typed::Num(k)) => close_for(kind, a.value, -k),
        (Recognizer::PercentScale, Parsed::Num(a), Typed::Num(k)) => {
            close_for(kind, a.value, k * 100.0) || close_for(kind, a.value, k / 100.0)
        }
        (Recognizer::OffByOne, Parsed::Num(a), Typed::Num(k)) => {
            close_for(kind, a.value, k + 1.0) || close_for(kind, a.value, k - 1.0)
        }
        (Recognizer::Reversed, Parsed::Shape(a), Typed::Dims(_)) => {
            layouts(kind, key).iter().any(|l| {
                let mut r = l.clone();
                r.reverse();
                r == a.dims && &r != l
            })
        }
        (Recognizer::Permutation, Parsed::Shape(a), Typed::Dims(k)) => {
            is_permutation(&a.dims, k) && !layouts(kind, key).contains(&a.dims)
        }
        (Recognizer::Subsequence, Parsed::Shape(a), Typed::Dims(_)) => layouts(kind, key)
            .iter()
            .any(|l| is_proper_subsequence(&a.dims, l)),
        _ => false,
    }
}

fn close_for(kind: &Kind, a: f64, b: f64) -> bool {
    match kind {
        Kind::Number { tol, .. } => is_close(a, b, *tol),
        _ => a == b,
    }
}

/// The key's accepted layouts (weights) or the key itself (shapes).
fn layouts(kind: &Kind, key: &Typed) -> Vec<Vec<u64>> {
    match (kind, key) {
        (Kind::Weight { key, accept }, _) => {
            accept.iter().map(|(c, _, _)| key.layout(*c)).collect()
        }
        (_, Typed::Dims(d)) => vec![d.clone()],
        _ => Vec::new(),
    }
}

fn rule_matches(kind: &Kind, parsed: &Parsed, key: Option<&Typed>, r: &CRule) -> Option<String> {
    match &r.matcher {
        Matcher::Value(t) => same(kind, parsed, t),
        Matcher::Recognize(rec) => key
            .filter(|k| recognized(kind, parsed, k, *rec))
            .map(|_| String::new()),
        Matcher::Dims(idx) => {
            let (Parsed::Shape(a), Some(Typed::Dims(k))) = (parsed, key) else {
                return None;
            };
            let d = shape_dims(kind, a, k.len());
            let full_rank = d.len() == k.len() && idx.iter().all(|&i| d[i] == k[i]);
            let only_these = d.len() == idx.len() && idx.iter().zip(&d).all(|(&i, x)| k[i] == *x);
            (full_rank || only_these).then(String::new)
        }
    }
}

fn rule_line(r: &CRule, how: &str) -> String {
    let label = r.label.as_deref().unwrap_or(&r.id);
    format!(
        "{} ({label}){how}{}",
        pts(r.points),
        r.feedback
            .as_ref()
            .map(|f| format!(": {f}"))
            .unwrap_or_default()
    )
}

fn grade_valued(cx: &mut Ctx, parsed: &Parsed, earlier: &[Option<Vec<f64>>], opts: &GradeOptions) {
    let p = cx.p;
    let key = p.key.as_ref();
    let vector = matches!(p.kind, Kind::Matrix { vector: true, .. });
    // The mask of wrong entries of a same-size matrix answer, whatever matches.
    let entries = match (&p.kind, parsed, key) {
        (Kind::Matrix { tol, .. }, Parsed::Mat(a), Some(Typed::Mat(k))) => entry_mask(a, k, *tol),
        _ => None,
    };
    cx.mask = entries.as_ref().map(|(m, _)| m.clone());
    if let (Kind::Expression { opts: eo }, Parsed::Ex(a), Some(Typed::Ex(k))) =
        (&p.kind, parsed, key)
    {
        match expr_equivalent(a, k, eo) {
            Equivalence::Undecided { defined } => {
                cx.undecided = Some(format!(
                    "your expression and the key are both defined at only {defined} of {} test points, too few to compare; a grader will check it",
                    eo.samples
                ));
                return;
            }
            Equivalence::Equal { defined } => {
                cx.award(
                    p.max,
                    "full",
                    format!(
                        "{}: matches the expected answer (equal at {defined} random points).",
                        pts(p.max)
                    ),
                );
                return;
            }
            Equivalence::Different { .. } => {}
        }
    }
    // (1) Full match.
    if let Kind::Weight { key: w, accept } = &p.kind {
        if let Parsed::Shape(a) = parsed {
            let hit = accept
                .iter()
                .filter(|(c, _, _)| w.layout(*c) == a.dims)
                .max_by(|x, y| x.1.total_cmp(&y.1));
            if let Some((c, points, fb)) = hit {
                let rule = if *points >= p.max {
                    "full".to_string()
                } else {
                    format!("convention:{}", conv_name(*c))
                };
                let line = format!(
                    "{}: matches the {}.{}",
                    pts(*points),
                    layout_names(*c, w.kernel.len()),
                    fb.as_ref().map(|f| format!(" {f}")).unwrap_or_default()
                );
                cx.award(*points, &rule, line);
                if *points >= p.max {
                    return;
                }
            }
        }
    } else if let Some(k) = key
        && !matches!(p.kind, Kind::Expression { .. })
        && let Some(how) = same(&p.kind, parsed, k)
    {
        // Matched under an accepted equivalence (a flip, a scaling): no
        // entry is wrong, though it differs from the key as written.
        if let Some(mask) = cx.mask.as_mut() {
            mask.iter_mut().for_each(|row| row.fill(false));
        }
        cx.award(
            p.max,
            "full",
            format!("{}: matches the expected answer{how}.", pts(p.max)),
        );
        return;
    }
    if cx.rule.is_some() {
        return;
    }
    // (2) Alternatives.
    for r in &p.alternatives {
        if let Some(how) = rule_matches(&p.kind, parsed, key, r) {
            cx.award(r.points, &r.id, rule_line(r, &how));
            return;
        }
    }
    if opts.follow_through
        && let Some(f) = &p.follow
        && let Some(Some(vals)) = earlier.get(f.from_index)
        && let Some(target) = follow_target(&p.kind, f, vals)
        && let Some(how) = same(&p.kind, parsed, &target)
    {
        cx.ft = true;
        cx.award(
            f.points,
            "follow_through",
            format!(
                "{} (follow-through): correct for your answer to part {}, which gives {}{how}.{}",
                pts(f.points),
                f.from_id,
                target.render(vector),
                f.feedback
                    .as_ref()
                    .map(|x| format!(" {x}"))
                    .unwrap_or_default()
            ),
        );
        return;
    }
    // (3) Mistakes.
    for r in &p.mistakes {
        if let Some(how) = rule_matches(&p.kind, parsed, key, r) {
            cx.award(r.points, &r.id, rule_line(r, &how));
            return;
        }
    }
    // Per-entry credit.
    if let (Kind::Matrix { per_entry, .. }, Parsed::Mat(a), Some((_, ok))) =
        (&p.kind, parsed, entries)
    {
        let n = a.data.len();
        if let Some(pe) = per_entry {
            let got = pe * ok as f64 / n as f64;
            if ok > 0 {
                cx.award(
                    got,
                    "per_entry",
                    format!(
                        "{} (per entry): {ok} of {n} entries are right; the wrong ones are marked.",
                        pts(got)
                    ),
                );
            }
        }
    }
}

fn conv_name(c: super::model::Convention) -> &'static str {
    match c {
        super::model::Convention::Pytorch => "pytorch",
        super::model::Convention::Keras => "keras",
        super::model::Convention::InOut => "in_out",
    }
}

/// The key recomputed from the earlier part's values, or `None` when they
/// are implausible or the formula fails.
fn follow_target(kind: &Kind, f: &super::resolve::CFollow, vals: &[f64]) -> Option<Typed> {
    if let Some(pl) = &f.plausible {
        let ok = vals.iter().all(|v| {
            pl.min.is_none_or(|m| *v >= m)
                && pl.max.is_none_or(|m| *v <= m)
                && (!pl.integer || v.fract() == 0.0)
        });
        if !ok {
            return None;
        }
    }
    let name = f.from_id.as_str();
    let lookup = |n: &str| -> Option<f64> {
        if n == name {
            return vals.first().copied();
        }
        let idx: usize = n.strip_prefix(name)?.strip_prefix('_')?.parse().ok()?;
        vals.get(idx).copied()
    };
    let mut out = Vec::with_capacity(f.exprs.len());
    for e in &f.exprs {
        let v = e.eval(&lookup).ok()?;
        if !v.is_finite() {
            return None;
        }
        out.push(v);
    }
    match kind {
        Kind::Number { .. } => out.first().map(|v| Typed::Num(*v)),
        Kind::Integer { .. } => out
            .first()
            .filter(|v| (*v - v.round()).abs() <= 1e-9)
            .map(|v| Typed::Num(v.round())),
        Kind::Shape { .. } => {
            let mut d = Vec::with_capacity(out.len());
            for v in out {
                if !(0.0..1e12).contains(&v) || (v - v.round()).abs() > 1e-9 {
                    return None;
                }
                d.push(v.round() as u64);
            }
            Some(Typed::Dims(d))
        }
        Kind::Matrix { vector: true, .. } => Some(Typed::Mat(Matrix {
            rows: 1,
            cols: out.len(),
            data: out,
        })),
        _ => None,
    }
}

/// Values stated as results in working: every side after a relation sign
/// (`=`, `≈`, `→`) that reads as a number; lines, `;` and `, ` separate
/// statements.
fn stated_values(s: &str) -> Vec<f64> {
    let mut out = Vec::new();
    if s.len() > text::MAX_ANSWER_BYTES * 2 {
        return out;
    }
    let ascii = text::ascii_lookalikes(s);
    for line in ascii.split(['\n', ';']).flat_map(|l| l.split(", ")) {
        let sides = line.split(['=', '\u{2248}', '\u{2192}']);
        for side in sides.skip(1) {
            let side = side.trim_start_matches('>').trim();
            if side.is_empty() || out.len() >= 256 {
                continue;
            }
            if let Ok(n) = parse_number(side, Default::default()) {
                out.push(n.value);
            }
        }
    }
    out
}

fn read_choice(kind: &Kind, s: &str) -> Result<Vec<bool>, String> {
    let Kind::Choice {
        options, multiple, ..
    } = kind
    else {
        return Err("internal: not a choice".into());
    };
    text::check_len(s, "answer")?;
    let mut sel = vec![false; options.len()];
    let whole = text::words(s);
    if let Some(i) = options
        .iter()
        .position(|(_, w)| !w.is_empty() && *w == whole)
    {
        sel[i] = true;
        return Ok(sel);
    }
    let tokens: Vec<&str> = s
        .split(|c: char| c == ',' || c == ';' || c == '/' || c == '&' || c.is_whitespace())
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("and"))
        .collect();
    if tokens.is_empty() {
        return Err("no option was selected".into());
    }
    for t in tokens {
        match options
            .iter()
            .position(|(id, _)| id.eq_ignore_ascii_case(t))
        {
            Some(i) => sel[i] = true,
            None => {
                let ids: Vec<&str> = options.iter().map(|(id, _)| id.as_str()).collect();
                return Err(format!(
                    "'{}' is not one of the options ({})",
                    t.chars().take(40).collect::<String>(),
                    ids.join(", ")
                ));
            }
        }
    }
    if !multiple && sel.iter().filter(|b| **b).count() > 1 {
        return Err("choose exactly one option".into());
    }
    Ok(sel)
}

fn choice_norm(kind: &Kind, sel: &[bool]) -> String {
    let Kind::Choice { options, .. } = kind else {
        return String::new();
    };
    let ids: Vec<&str> = options
        .iter()
        .zip(sel)
        .filter(|(_, s)| **s)
        .map(|((id, _), _)| id.as_str())
        .collect();
    ids.join(", ")
}

fn grade_choice(cx: &mut Ctx, sel: &[bool]) {
    let Kind::Choice {
        correct, scoring, ..
    } = &cx.p.kind
    else {
        return;
    };
    let max = cx.p.max;
    let n = correct.len() as f64;
    let right_sel = sel.iter().zip(correct).filter(|(s, c)| **s && **c).count() as f64;
    let wrong_sel = sel.iter().zip(correct).filter(|(s, c)| **s && !**c).count() as f64;
    let n_correct = correct.iter().filter(|c| **c).count() as f64;
    let decided = sel.iter().zip(correct).filter(|(s, c)| s == c).count() as f64;
    let points = if sel == correct.as_slice() {
        max
    } else {
        match scoring {
            ChoiceScoring::AllOrNothing => 0.0,
            ChoiceScoring::PerOption => max * decided / n,
            ChoiceScoring::RightMinusWrong => max * ((right_sel - wrong_sel) / n_correct).max(0.0),
        }
    };
    cx.points = points;
    cx.rule = Some(if points >= max { "full" } else { "choice" }.into());
    cx.lines.push(format!(
        "{}: {} of {} correct options selected, {} wrong option(s) selected.",
        pts(points),
        right_sel,
        n_correct,
        wrong_sel
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::model::Rubric;
    use proptest::prelude::*;
    use serde_json::json;

    fn rubric(parts: serde_json::Value) -> ResolvedRubric {
        let r: Rubric = serde_json::from_value(json!({"title": "t", "parts": parts})).unwrap();
        r.compile().unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn run(r: &ResolvedRubric, pairs: &[(&str, &str)]) -> GradeResult {
        grade(
            r,
            &Answers::from_pairs(pairs.iter().copied()),
            &GradeOptions::default(),
        )
    }

    fn part<'a>(g: &'a GradeResult, id: &str) -> &'a PartResult {
        g.parts.iter().find(|p| p.part_id == id).unwrap()
    }

    #[test]
    fn rules_apply_in_order_full_alternatives_mistakes() {
        let r = rubric(json!([{"id": "a", "max_points": 2,
            "answer": {"type": "number", "expected": 10, "tolerance": {"mode": "exact"}},
            "alternatives": [{"id": "alt", "value": 12, "points": 1}],
            "mistakes": [{"id": "same_value", "value": 12, "points": 0.5},
                         {"id": "obo", "recognize": "off_by_one", "points": 0.25},
                         {"id": "pct", "recognize": "percent_scale", "points": 0.1},
                         {"id": "neg", "recognize": "sign_flip", "points": 0.2}]}]));
        for (ans, pts, rule) in [
            ("10", 2.0, Some("full")),
            ("x = 10", 2.0, Some("full")),
            ("12", 1.0, Some("alt")),
            ("11", 0.25, Some("obo")),
            ("1000", 0.1, Some("pct")),
            ("-10", 0.2, Some("neg")),
            ("3", 0.0, None),
        ] {
            let g = run(&r, &[("a", ans)]);
            let p = part(&g, "a");
            assert_eq!(p.points, pts, "{ans}: {:?}", p.feedback);
            assert_eq!(p.matched_rule.as_deref(), rule, "{ans}");
            assert!(
                p.feedback
                    .iter()
                    .any(|l| l.starts_with("We read your answer as"))
            );
        }
        let g = run(&r, &[("a", "11")]);
        assert_eq!(part(&g, "a").verdict, Verdict::Partial);
        assert_eq!(
            part(&run(&r, &[("a", "3")]), "a").verdict,
            Verdict::Incorrect
        );
    }

    #[test]
    fn missing_phrases_deduct_and_a_required_phrase_can_cost_everything() {
        let r = rubric(json!([
            {"id": "u", "max_points": 1.5,
             "answer": {"type": "concepts", "groups": [
                 {"id": "pretrain", "points": 1, "phrases": ["pretrain", "autoencoder"]},
                 {"id": "extract", "points": 0.5, "phrases": ["feature extraction"]}]},
             "deductions": [{"id": "no_features", "points": 0.5,
                             "when": {"kind": "missing", "phrases": ["feature extraction", "features"]}}]},
            {"id": "k", "max_points": 3,
             "answer": {"type": "concepts", "groups": [
                 {"id": "conv", "points": 1, "phrases": ["Conv2D"]},
                 {"id": "pool", "points": 1, "phrases": ["MaxPooling2D"]},
                 {"id": "dense", "points": 1, "phrases": ["Dense"]}]},
             "deductions": [{"id": "no_sequential", "points": 3,
                             "when": {"kind": "missing", "phrases": ["Sequential"]},
                             "feedback": "no Sequential model: 0 marks for the answer"}]}]));
        let g = run(
            &r,
            &[("u", "pretrain an autoencoder, then feature extraction")],
        );
        assert_eq!(part(&g, "u").points, 1.5);
        let g = run(
            &r,
            &[("u", "pretrain an autoencoder on the unlabelled data")],
        );
        let p = part(&g, "u");
        assert_eq!(p.points, 0.5, "{:?}", p.feedback);
        assert!(p.feedback.iter().any(|l| l.contains("no_features")));
        let g = run(
            &r,
            &[(
                "k",
                "model = Sequential([Conv2D(...), MaxPooling2D(), Dense(10)])",
            )],
        );
        assert_eq!(part(&g, "k").points, 3.0);
        let g = run(&r, &[("k", "Conv2D, MaxPooling2D, Dense")]);
        let p = part(&g, "k");
        assert_eq!(p.points, 0.0);
        assert!(
            p.feedback
                .iter()
                .any(|l| l.contains("0 marks for the answer"))
        );
        // Nothing to take from a zero score.
        let g = run(&r, &[("u", "no idea")]);
        assert!(
            !part(&g, "u")
                .feedback
                .iter()
                .any(|l| l.contains("no_features"))
        );
    }

    #[test]
    fn deductions_only_take_from_a_positive_score_and_clamp() {
        let r = rubric(json!([{"id": "d", "max_points": 1,
            "answer": {"type": "shape", "expected": [7, 7], "scalar_shorthand": true},
            "deductions": [{"id": "no_tuple", "points": 0.5, "when": {"kind": "scalar"}},
                           {"id": "guess", "points": 1, "when": {"kind": "contains", "phrases": ["guess"]}}]}]));
        assert_eq!(part(&run(&r, &[("d", "7")]), "d").points, 0.5);
        let g = run(&r, &[("d", "7 guess")]);
        assert_eq!(g.parts[0].verdict, Verdict::NotGradable);
        let g = grade(
            &r,
            &Answers(
                [(
                    "d".to_string(),
                    StudentAnswer::WithWorking {
                        answer: "7".into(),
                        working: Some("a guess".into()),
                    },
                )]
                .into_iter()
                .collect(),
            ),
            &GradeOptions::default(),
        );
        let p = part(&g, "d");
        assert_eq!(p.points, 0.0);
        assert!(
            p.feedback.iter().any(|l| l.starts_with("Clamped")),
            "{:?}",
            p.feedback
        );
        // A wrong answer loses nothing more.
        let p = run(&r, &[("d", "5")]);
        assert!(!p.parts[0].feedback.iter().any(|l| l.contains("no_tuple")));
    }

    #[test]
    fn method_credit_replaces_a_smaller_rule_score() {
        let r = rubric(json!([{"id": "b", "max_points": 2,
            "answer": {"type": "shape", "expected": [8, 8, 5]},
            "alternatives": [{"id": "spatial", "dims": [0, 1], "points": 0.5}],
            "method_credit": [{"id": "seven", "value": 7, "points": 1},
                              {"id": "eight", "value": 8, "points": 0.5}]}]));
        let with = |a: &str, w: &str| {
            grade(
                &r,
                &Answers(
                    [(
                        "b".to_string(),
                        StudentAnswer::WithWorking {
                            answer: a.into(),
                            working: Some(w.into()),
                        },
                    )]
                    .into_iter()
                    .collect(),
                ),
                &GradeOptions::default(),
            )
        };
        let g = with("8x8", "(26-7+2)/3 = 7\n7 + 1 = 8");
        assert_eq!(g.parts[0].points, 1.5);
        assert_eq!(g.parts[0].matched_rule.as_deref(), Some("method"));
        let g = with("8x8", "nothing stated");
        assert_eq!(g.parts[0].points, 0.5);
        let g = with("8x8x5", "(26-7+2)/3 = 7");
        assert_eq!(g.parts[0].points, 2.0);
        let off = grade(
            &r,
            &Answers(
                [(
                    "b".to_string(),
                    StudentAnswer::WithWorking {
                        answer: "1x1".into(),
                        working: Some("= 7".into()),
                    },
                )]
                .into_iter()
                .collect(),
            ),
            &GradeOptions {
                method_credit: false,
                ..Default::default()
            },
        );
        assert_eq!(off.parts[0].points, 0.0);
    }

    #[test]
    fn follow_through_uses_the_earlier_answer() {
        let r = rubric(json!([
            {"id": "a", "max_points": 1, "answer": {"type": "number", "expected": 4}},
            {"id": "b", "max_points": 2, "answer": {"type": "number", "expected": 8},
             "follow_through": {"from": "a", "expr": "2*a", "points": 1.5,
                                "plausible": {"min": 0, "max": 10}}},
            {"id": "s", "max_points": 1, "answer": {"type": "shape", "expected": [8, 8, 5]}},
            {"id": "t", "max_points": 1, "answer": {"type": "shape", "expected": [4, 4, 5]},
             "follow_through": {"from": "s", "expr": ["s_0/2", "s_1/2", "s_2"]}}
        ]));
        let g = run(&r, &[("a", "5"), ("b", "10")]);
        let b = part(&g, "b");
        assert_eq!(b.points, 1.5);
        assert!(b.follow_through_applied);
        assert_eq!(b.matched_rule.as_deref(), Some("follow_through"));
        let g = run(&r, &[("a", "50"), ("b", "100")]);
        assert_eq!(part(&g, "b").points, 0.0);
        assert!(!part(&g, "b").follow_through_applied);
        let g = run(&r, &[("a", "4"), ("b", "8")]);
        assert_eq!(part(&g, "b").points, 2.0);
        assert!(!part(&g, "b").follow_through_applied);
        let g = grade(
            &r,
            &Answers::from_pairs([("a", "5"), ("b", "10")]),
            &GradeOptions {
                follow_through: false,
                ..Default::default()
            },
        );
        assert_eq!(part(&g, "b").points, 0.0);
        let g = run(&r, &[("s", "6x6x5"), ("t", "3x3x5")]);
        assert_eq!(part(&g, "t").points, 1.0);
        assert!(part(&g, "t").follow_through_applied);
        let g = run(&r, &[("s", "7x7x5"), ("t", "3x3x5")]);
        assert_eq!(part(&g, "t").points, 0.0);
        // An integer part takes only a whole follow-through value.
        let r = rubric(json!([
            {"id": "a", "max_points": 1, "answer": {"type": "integer", "expected": 4}},
            {"id": "b", "max_points": 1, "answer": {"type": "integer", "expected": 2},
             "follow_through": {"from": "a", "expr": "a/2"}}]));
        assert_eq!(part(&run(&r, &[("a", "6"), ("b", "3")]), "b").points, 1.0);
        assert_eq!(part(&run(&r, &[("a", "5"), ("b", "3")]), "b").points, 0.0);
        assert_eq!(part(&run(&r, &[("a", "5"), ("b", "2")]), "b").points, 1.0);
    }

    #[test]
    fn choice_scoring_modes() {
        let mk = |scoring: &str| {
            rubric(
                json!([{"id": "q", "max_points": 4, "answer": {"type": "choice",
            "multiple": true, "scoring": scoring, "correct": ["a", "c"],
            "options": [{"id": "a", "text": "Vanishing gradients"}, {"id": "b", "text": "Faster training"},
                        {"id": "c", "text": "Overfitting"}, {"id": "d", "text": "Smaller memory"}]}}]),
            )
        };
        let all = mk("all_or_nothing");
        assert_eq!(run(&all, &[("q", "a, c")]).parts[0].points, 4.0);
        assert_eq!(run(&all, &[("q", "(c) and (a)")]).parts[0].points, 4.0);
        assert_eq!(run(&all, &[("q", "a")]).parts[0].points, 0.0);
        assert_eq!(run(&mk("per_option"), &[("q", "a")]).parts[0].points, 3.0);
        assert_eq!(
            run(&mk("right_minus_wrong"), &[("q", "a")]).parts[0].points,
            2.0
        );
        assert_eq!(
            run(&mk("right_minus_wrong"), &[("q", "a b")]).parts[0].points,
            0.0
        );
        assert_eq!(
            run(&all, &[("q", "e")]).parts[0].verdict,
            Verdict::NotGradable
        );
        let single = rubric(
            json!([{"id": "q", "max_points": 1, "answer": {"type": "choice",
            "correct": ["fc"], "options": [{"id": "fc", "text": "Fully-connected layer"},
                                           {"id": "pool", "text": "Pooling layer"}]}}]),
        );
        assert_eq!(
            run(&single, &[("q", "fully connected layers")]).parts[0].points,
            1.0
        );
        assert_eq!(
            run(&single, &[("q", "fc, pool")]).parts[0].verdict,
            Verdict::NotGradable
        );
    }

    #[test]
    fn concept_groups_partial_negative_and_conjunctions() {
        let r = rubric(
            json!([{"id": "t", "max_points": 1, "answer": {"type": "concepts", "groups": [
            {"id": "highway", "points": 1, "phrases": ["highway", "gradient + flow", "identity + gradient"],
             "partial": [{"phrases": ["skip connection"], "points": 0.5}]},
            {"id": "forward_only", "points": -1, "phrases": ["forward pass only", "only forward"]}]}}]),
        );
        assert_eq!(
            run(&r, &[("t", "a highway for gradients")]).parts[0].points,
            1.0
        );
        assert_eq!(
            run(&r, &[("t", "the gradient can flow back")]).parts[0].points,
            1.0
        );
        assert_eq!(run(&r, &[("t", "Skip-connections!")]).parts[0].points, 0.5);
        assert_eq!(
            run(&r, &[("t", "helps the forward pass only, like a highway")]).parts[0].points,
            0.0
        );
        assert_eq!(run(&r, &[("t", "no idea")]).parts[0].points, 0.0);
    }

    #[test]
    fn expressions_by_evaluation() {
        let r = rubric(json!([{"id": "g", "max_points": 3,
            "answer": {"type": "expression", "expected": "(w_3*w_2 + 1)*w_1*x"},
            "alternatives": [{"id": "unexpanded", "value": "(dG + 1)*dF", "points": 1}],
            "mistakes": [{"id": "no_skip", "value": "w_3*w_2*w_1*x", "points": 0,
                          "feedback": "the skip connection adds the +1"}]},
            {"id": "u", "max_points": 1, "answer": {"type": "expression", "expected": "ln(x)",
             "ranges": {"x": [-2, -1]}}}]));
        assert_eq!(
            run(&r, &[("g", "w_1 x (1 + w_2 w_3)")]).parts[0].points,
            3.0
        );
        assert_eq!(
            run(&r, &[("g", "dz/dw_0 = (w_3 w_2 + 1) w_1 x")]).parts[0].points,
            3.0
        );
        assert_eq!(run(&r, &[("g", "(dG+1) dF")]).parts[0].points, 1.0);
        let g = run(&r, &[("g", "w_3 w_2 w_1 x")]);
        assert_eq!(g.parts[0].matched_rule.as_deref(), Some("no_skip"));
        assert_eq!(
            run(&r, &[("g", "(w_3 w_2 + 1")]).parts[0].verdict,
            Verdict::NotGradable
        );
        let g = run(&r, &[("u", "ln(x)")]);
        assert_eq!(g.parts[1].verdict, Verdict::PendingManual);
        assert_eq!(g.status, GradeStatus::PendingManual);
    }

    #[test]
    fn weight_conventions_with_partial_credit() {
        let r = rubric(
            json!([{"id": "w", "max_points": 1, "answer": {"type": "weight_shape",
            "expected": [4, 3, 5, 5],
            "accept": [{"convention": "pytorch"}, {"convention": "keras", "points": 0.5,
                        "feedback": "this course uses PyTorch's layout"}]},
            "mistakes": [{"id": "perm", "recognize": "permutation", "points": 0.25}]},
            {"id": "dense", "max_points": 1, "answer": {"type": "weight_shape",
             "expected": {"out_channels": 640, "in_channels": 1600}}}]),
        );
        let g = run(&r, &[("w", "4x3x5x5")]);
        assert_eq!(
            (g.parts[0].points, g.parts[0].matched_rule.as_deref()),
            (1.0, Some("full"))
        );
        let g = run(&r, &[("w", "5x5x3x4")]);
        assert_eq!(
            (g.parts[0].points, g.parts[0].matched_rule.as_deref()),
            (0.5, Some("convention:keras"))
        );
        assert!(
            g.parts[0]
                .feedback
                .iter()
                .any(|l| l.contains("Keras layout"))
        );
        assert_eq!(run(&r, &[("w", "3x4x5x5")]).parts[0].points, 0.25);
        assert_eq!(run(&r, &[("dense", "1600 x 640")]).parts[1].points, 1.0);
        assert_eq!(run(&r, &[("dense", "(640, 1600)")]).parts[1].points, 1.0);
    }

    #[test]
    fn vectors_with_per_entry_credit_and_mask() {
        let r = rubric(
            json!([{"id": "v", "max_points": 3, "answer": {"type": "vector",
            "expected": [4, 0, 1], "per_entry": {"points": 3}},
            "mistakes": [{"id": "neg", "recognize": "sign_flip", "points": 0.5}]}]),
        );
        let g = run(&r, &[("v", "[4, 1, 1]")]);
        let p = &g.parts[0];
        assert!((p.points - 2.0).abs() < 1e-9);
        assert_eq!(p.mask, Some(vec![vec![false, true, false]]));
        assert_eq!(p.normalized_answer.as_deref(), Some("[4, 1, 1]"));
        let full = run(&r, &[("v", "(4; 0; 1)")]);
        assert_eq!(full.parts[0].points, 3.0);
        assert_eq!(full.parts[0].mask, Some(vec![vec![false; 3]]));
        assert_eq!(run(&r, &[("v", "[-4, 0, -1]")]).parts[0].points, 0.5);
        assert_eq!(
            run(&r, &[("v", "[1 2; 3 4]")]).parts[0].verdict,
            Verdict::NotGradable
        );
    }

    #[test]
    fn an_accepted_flip_marks_no_entry_wrong() {
        let r = rubric(
            json!([{"id": "f", "max_points": 1, "answer": {"type": "matrix",
            "expected": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
            "equivalences": ["horizontal_flip", "positive_scaling"]}}]),
        );
        for flipped in ["[-1 0 1; -1 0 1; -1 0 1]", "[-2 0 2; -2 0 2; -2 0 2]"] {
            let p = &run(&r, &[("f", flipped)]).parts[0];
            assert_eq!(p.points, 1.0, "{flipped}: {:?}", p.feedback);
            assert_eq!(p.mask, Some(vec![vec![false; 3]; 3]), "{flipped}");
        }
        // A wrong answer: its wrong entry is marked.
        let p = &run(&r, &[("f", "[1 0 1; 1 0 -1; 1 0 -1]")]).parts[0];
        assert_eq!(p.points, 0.0);
        assert_eq!(
            p.mask,
            Some(vec![
                vec![false, false, true],
                vec![false; 3],
                vec![false; 3]
            ])
        );
    }

    #[test]
    fn free_text_missing_and_unreadable_answers() {
        let r = rubric(json!([
            {"id": "f", "max_points": 2, "answer": {"type": "free_text"}},
            {"id": "n", "max_points": 1, "answer": {"type": "number", "expected": 0.5}},
            {"id": "m", "max_points": 1, "answer": {"type": "number", "expected": 0.5, "allow_percent": true}}]));
        let g = run(
            &r,
            &[("f", "because gradients flow"), ("n", "1/2"), ("m", "50%")],
        );
        assert_eq!(g.status, GradeStatus::PendingManual);
        assert_eq!(g.parts[0].verdict, Verdict::PendingManual);
        assert_eq!((g.parts[1].points, g.parts[2].points), (1.0, 1.0));
        let g = run(&r, &[("n", "50%")]);
        assert_eq!(g.parts[1].verdict, Verdict::NotGradable);
        assert!(g.parts[1].reason.as_deref().unwrap().contains("percent"));
        assert_eq!(g.parts[0].verdict, Verdict::Incorrect);
        assert_eq!(g.status, GradeStatus::NotGradable);
    }

    #[test]
    fn resolve_problems_have_pointers() {
        let r: Rubric = serde_json::from_value(json!({"title": "t", "parts": [
            {"id": "a", "max_points": 1, "answer": {"type": "shape", "expected": "eight"}},
            {"id": "b", "max_points": 1, "answer": {"type": "number",
                "expected": {"compute": {"engine": "x", "request": {}}}}},
            {"id": "c", "max_points": 1, "answer": {"type": "matrix", "expected": [[1, 2], [3]]}},
            {"id": "d", "max_points": 1, "answer": {"type": "shape", "expected": [2, 2]},
             "alternatives": [{"id": "z", "dims": [5], "points": 1}]},
            {"id": "e", "max_points": 1, "answer": {"type": "number", "expected": 2},
             "follow_through": {"from": "b", "expr": "2*x"}}]}))
        .unwrap();
        let p: Vec<String> = r
            .compile()
            .unwrap_err()
            .into_iter()
            .map(|p| p.pointer)
            .collect();
        assert_eq!(
            p,
            [
                "/parts/0/answer/expected",
                "/parts/1/answer/expected/compute",
                "/parts/2/answer/expected",
                "/parts/3/alternatives/0/dims",
                "/parts/4/follow_through/expr"
            ]
        );
    }

    #[test]
    fn computed_keys_and_patched_mistakes_become_literals() {
        struct Double;
        impl crate::grading::KeyResolver for Double {
            fn resolve(
                &self,
                _: &str,
                req: &serde_json::Value,
            ) -> Result<serde_json::Value, String> {
                let x = req["x"].as_f64().ok_or("x")?;
                Ok(json!({"y": 2.0 * x}))
            }
        }
        let r: Rubric = serde_json::from_value(json!({"title": "t", "parts": [
            {"id": "a", "max_points": 1, "answer": {"type": "number",
                "expected": {"compute": {"engine": "double", "request": {"x": 3}, "select": "/y"}}},
             "mistakes": [{"id": "m", "patch": {"/x": 4}, "points": 0.5}]}]}))
        .unwrap();
        let resolved = r.resolve_keys(&Double).unwrap();
        assert_eq!(part(&run(&resolved, &[("a", "6")]), "a").points, 1.0);
        assert_eq!(part(&run(&resolved, &[("a", "8")]), "a").points, 0.5);
        let concrete = resolved.rubric().clone();
        let again = concrete.compile().unwrap();
        assert_eq!(part(&run(&again, &[("a", "8")]), "a").points, 0.5);
        let bad: Rubric = serde_json::from_value(json!({"title": "t", "parts": [
            {"id": "a", "max_points": 1, "answer": {"type": "number",
                "expected": {"compute": {"engine": "double", "request": {"x": 3}, "select": "/nope"}}}}]})).unwrap();
        assert!(
            bad.resolve_keys(&Double).unwrap_err()[0]
                .message
                .contains("/nope")
        );
    }

    #[test]
    fn gradescope_json_has_the_documented_fields() {
        let r = rubric(
            json!([{"id": "a", "max_points": 1, "answer": {"type": "integer", "expected": 8}}]),
        );
        let g = run(&r, &[("a", "8")]);
        let v = serde_json::to_value(g.to_gradescope()).unwrap();
        assert_eq!(v["score"], json!(1.0));
        assert_eq!(v["tests"][0]["max_score"], json!(1.0));
        assert_eq!(v["tests"][0]["status"], json!("passed"));
        assert!(
            v["tests"][0]["output"]
                .as_str()
                .unwrap()
                .contains("Score: 1 / 1.")
        );
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["status"], json!("fully_graded"));
        assert_eq!(v["parts"][0]["verdict"], json!("correct"));
    }

    fn every_kind() -> ResolvedRubric {
        rubric(json!([
            {"id": "n", "max_points": 1, "answer": {"type": "number", "expected": 0.5}},
            {"id": "i", "max_points": 1, "answer": {"type": "integer", "expected": 8}},
            {"id": "s", "max_points": 1, "answer": {"type": "shape", "expected": [8, 8, 5]}},
            {"id": "w", "max_points": 1, "answer": {"type": "weight_shape", "expected": [4, 3, 5, 5]}},
            {"id": "m", "max_points": 1, "answer": {"type": "matrix", "expected": [[1, 0], [0, 1]]}},
            {"id": "e", "max_points": 1, "answer": {"type": "expression", "expected": "1 + r"}},
            {"id": "c", "max_points": 1, "answer": {"type": "choice", "correct": ["a"],
                "options": [{"id": "a"}, {"id": "b"}]}},
            {"id": "t", "max_points": 1, "answer": {"type": "concepts", "groups": [
                {"id": "g", "points": 1, "phrases": ["edge"]}]}}]))
    }

    #[test]
    fn hostile_answers_never_panic_and_stay_fast() {
        let r = every_kind();
        let ids = ["n", "i", "s", "w", "m", "e", "c", "t"];
        let big = "9".repeat(100_000);
        let nested = "(".repeat(50_000) + &")".repeat(50_000);
        let brackets = "[".repeat(30_000) + &"]".repeat(30_000);
        let lookalike = "８ × ８ × ５ −½ ∕ ０";
        let latex = "\\frac{".repeat(5_000);
        let start = std::time::Instant::now();
        for a in [
            big.as_str(),
            &nested,
            &brackets,
            lookalike,
            &latex,
            "",
            " ",
            "=",
            "[]",
            "\\begin{bmatrix}",
        ] {
            let pairs: Vec<(&str, &str)> = ids.iter().map(|id| (*id, a)).collect();
            let g = run(&r, &pairs);
            assert_eq!(g.parts.len(), 8);
            for p in &g.parts {
                assert!(p.points >= 0.0 && p.points <= p.max_points);
            }
        }
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }

    proptest! {
        #[test]
        fn random_answers_never_panic(a in "\\PC{0,60}") {
            let r = every_kind();
            let pairs: Vec<(&str, &str)> = ["n", "i", "s", "w", "m", "e", "c", "t"].iter().map(|id| (*id, a.as_str())).collect();
            let g = run(&r, &pairs);
            for p in &g.parts {
                prop_assert!(p.points >= 0.0 && p.points <= p.max_points);
            }
        }
    }

    proptest! {
        #[test]
        fn a_rendered_key_earns_full_points(
            x in -1e9f64..1e9,
            dims in proptest::collection::vec(1u64..5000, 1..6),
            rows in proptest::collection::vec(proptest::collection::vec(-1e3f64..1e3, 3), 1..4),
        ) {
            let m = Matrix::from_rows(rows.clone()).unwrap();
            let r = rubric(json!([
                {"id": "n", "max_points": 1, "answer": {"type": "number", "expected": x}},
                {"id": "s", "max_points": 1, "answer": {"type": "shape", "expected": dims}},
                {"id": "m", "max_points": 1, "answer": {"type": "matrix", "expected": rows}}]));
            let answers = [
                ("n", render_num(x)),
                ("s", render_shape(&dims)),
                ("m", render_matrix(&m, false)),
            ];
            let pairs: Vec<(&str, &str)> = answers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let g = run(&r, &pairs);
            prop_assert_eq!(g.score, 3.0, "{:?}", g.parts);
        }
    }

    /// Speed budget: one 8-part rubric graded in < 50 µs. Timing needs an
    /// optimized build: `cargo test --release -- --ignored grading_is_fast`.
    #[test]
    #[ignore]
    fn grading_is_fast() {
        let r = every_kind();
        let answers = Answers::from_pairs([
            ("n", "1/2"),
            ("i", "8"),
            ("s", "8x8x5"),
            ("w", "(4, 3, 5, 5)"),
            ("m", "[1 0; 0 1]"),
            ("e", "r + 1"),
            ("c", "a"),
            ("t", "an edge detector"),
        ]);
        let opts = GradeOptions::default();
        // Best of 20 batches: the machine may be shared.
        let n = 1_000;
        let mut best = std::time::Duration::MAX;
        for _ in 0..20 {
            let start = std::time::Instant::now();
            let mut total = 0.0;
            for _ in 0..n {
                total += grade(&r, &answers, &opts).score;
            }
            best = best.min(start.elapsed() / n);
            assert_eq!(total, 8.0 * f64::from(n));
        }
        assert!(best.as_micros() < 50, "{best:?} per grading");
    }
}
