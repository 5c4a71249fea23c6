//! The rubric JSON model: a question with parts, each part with an answer type,
//! an expected answer (literal, checked or computed), credit rules, feedback and
//! self-tests. See `docs/rubrics.md` for the format with worked examples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A graded question: a title, the prompt shown to students, its parts and the
/// rubric's own self-tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Problem 4b: convolution output size",
    "prompt": "5 filters, kernel 7, stride 3, padding 1 on a 26x26x26 input: output size?",
    "parts": [{
        "id": "b",
        "max_points": 2,
        "answer": {"type": "shape", "expected": [8, 8, 5]},
        "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": 1,
                          "feedback": "Spatial size right; the depth is the number of filters (5)."}]
    }],
    "tests": [{"name": "full", "answers": {"b": "8x8x5"}, "expected_score": 2}]
}))]
pub struct Rubric {
    /// Short title of the question, e.g. `Problem 4b`.
    pub title: String,
    /// The question text shown to students (Markdown). Default: empty.
    #[serde(default)]
    pub prompt: String,
    /// The gradable parts, graded independently (except follow-through).
    pub parts: Vec<Part>,
    /// Self-test cases: answers with the score the rubric must give them.
    /// With a template they run on the default parameters only. Default: none.
    #[serde(default)]
    pub tests: Vec<RubricTest>,
    /// Makes the rubric a question template: parameters, constraints and
    /// variant self-tests; `{{expr}}` placeholders in the rubric's strings
    /// are replaced per variant. Default: none (a fixed question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<super::template::Template>,
}

/// One gradable answer field of a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Identifier, unique in the rubric; `[A-Za-z][A-Za-z0-9_]*`, at most 64
    /// characters (it names the part's value in follow-through expressions).
    pub id: String,
    /// The sub-question text. Default: empty.
    #[serde(default)]
    pub prompt: String,
    /// Points for a fully correct answer (> 0, at most 1000).
    pub max_points: f64,
    /// What kind of answer is expected, the key and the equivalences accepted.
    pub answer: AnswerSpec,
    /// Step (2): other accepted answers earning (partial) points, tried in order.
    #[serde(default)]
    pub alternatives: Vec<CreditRule>,
    /// Step (3): recognized common mistakes with their points and feedback,
    /// tried in order after the alternatives.
    #[serde(default)]
    pub mistakes: Vec<CreditRule>,
    /// Step (4): deductions applied to a score above zero.
    #[serde(default)]
    pub deductions: Vec<Deduction>,
    /// Method credit: points for intermediate values stated in the student's
    /// working (`"working"` of the answer). The part scores the larger of the
    /// rule score and the sum of the method credit found.
    #[serde(default)]
    pub method_credit: Vec<MethodCredit>,
    /// Error carried forward from an earlier part. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_through: Option<FollowThrough>,
    /// Feedback texts shown with the verdict. Default: built-in texts.
    #[serde(default)]
    pub feedback: PartFeedback,
}

/// Feedback texts for a part's verdicts; each replaces the built-in line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartFeedback {
    /// Shown when the answer earns full points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<String>,
    /// Shown when the answer earns some but not all points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Shown when the answer earns nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incorrect: Option<String>,
}

/// An expected value: a literal, a literal with a `check` computation (audited
/// against the computed value), or a value computed by a compute engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ExpectedValue {
    /// `{"compute": {...}}`: the key is computed by a compute engine.
    Computed(ComputedKey),
    /// `{"value": ..., "check": {...}}`: a printed key that the audit compares
    /// with the computed value.
    Checked(CheckedKey),
    /// A literal in the answer type's syntax: a number, a string in answer
    /// syntax (`"8x8x5"`, `"2 log 2"`), an array (shape, vector, matrix rows)
    /// or an object (weight keys).
    Literal(Value),
}

/// A key computed by a compute engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputedKey {
    /// The computation.
    pub compute: ComputeSpec,
}

/// A printed key with the computation that should reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckedKey {
    /// The printed key; used for grading (any JSON: a number, a string in
    /// answer syntax, an array, an object).
    #[schema(value_type = serde_json::Value)]
    pub value: Value,
    /// The computation used by the audit to detect wrong printed keys.
    pub check: ComputeSpec,
}

/// A request to one of dlgrade's compute engines and the part of its response
/// that is the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"engine": "architecture",
    "request": {"input_shape": [26, 26, 26], "layers": [{"type": "conv2d", "filters": 5, "kernel_size": 7, "stride": 3, "padding": 1}]},
    "select": "/layers/0/output_shape"}))]
pub struct ComputeSpec {
    /// Engine name, e.g. `architecture`, `receptive_field`, `expression`.
    pub engine: String,
    /// The engine's request body.
    #[schema(value_type = Object)]
    pub request: Value,
    /// RFC 6901 pointer into the engine's response selecting the key, or a
    /// list of pointers whose values make the key as a JSON array (e.g. the
    /// three unknowns of a solved filter as one vector). Default: the whole
    /// response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
}

/// One pointer, or several gathered into an array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Selector {
    /// One value.
    One(String),
    /// Several values, gathered into a JSON array in this order.
    Many(Vec<String>),
}

/// The answer type of a part, with its key and options. Tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerSpec {
    /// A real number compared with a tolerance.
    Number(NumberSpec),
    /// An integer compared exactly.
    Integer(IntegerSpec),
    /// A tensor shape / tuple of sizes such as `8x8x5`.
    Shape(ShapeSpec),
    /// A weight tensor shape, accepted in the listed layout conventions.
    WeightShape(WeightShapeSpec),
    /// A vector of numbers.
    Vector(MatrixSpec),
    /// A matrix of numbers.
    Matrix(MatrixSpec),
    /// A symbolic expression, compared by evaluation at random points.
    Expression(ExpressionSpec),
    /// Single or multiple choice.
    Choice(ChoiceSpec),
    /// Short text graded by concept groups.
    Concepts(ConceptsSpec),
    /// Free text, always left for manual review.
    FreeText(FreeTextSpec),
}

/// How a number compares with the key (PrairieLearn's definitions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Tolerance {
    /// `|a - b| <= rtol * |b|` (b = key).
    Relative {
        /// Relative tolerance, >= 0.
        rtol: f64,
    },
    /// `|a - b| <= atol`.
    Absolute {
        /// Absolute tolerance, >= 0.
        atol: f64,
    },
    /// `|a - b| <= atol + rtol * |b|` (numpy `allclose`, PrairieLearn `relabs`).
    Relabs {
        /// Relative tolerance, >= 0.
        rtol: f64,
        /// Absolute tolerance, >= 0.
        atol: f64,
    },
    /// PrairieLearn `is_correct_scalar_sf`: with `n = digits - 1` if b = 0 else
    /// `n = -floor(log10 |b|) + digits - 1`, correct iff `|a - b| < 0.51 * 10^-n`.
    Sigfig {
        /// Significant figures, 1..=15.
        digits: u32,
    },
    /// PrairieLearn `is_correct_scalar_dd`: correct iff `|a - b| < 0.51 * 10^-digits`.
    Decdig {
        /// Digits after the decimal point, 0..=15.
        digits: u32,
    },
    /// `a == b` exactly.
    Exact,
}

impl Default for Tolerance {
    /// PrairieLearn's `pl-number-input` default: relabs, rtol 0.01, atol 1e-8.
    fn default() -> Self {
        Tolerance::Relabs {
            rtol: 1e-2,
            atol: 1e-8,
        }
    }
}

/// How commas in a number are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecimalComma {
    /// Default. `34,944` and `1,234,567.5` (groups of exactly three digits)
    /// are thousands separators; a single comma otherwise (`0,5`, `3,14`) is a
    /// decimal comma; anything else is not gradable.
    #[default]
    Auto,
    /// A comma is always a decimal comma (`0,5` = 0.5; `1,234` = 1.234).
    Always,
    /// A comma is only ever a thousands separator (groups of three digits).
    Never,
}

/// A real-number part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberSpec {
    /// The key: a number, an expression string (`"2 log 2"`) or a computed key.
    pub expected: ExpectedValue,
    /// Comparison. Default: relabs, rtol 0.01, atol 1e-8.
    #[serde(default)]
    pub tolerance: Tolerance,
    /// Whether `50%` is read as 0.5. Default: false (not gradable, with a hint).
    #[serde(default)]
    pub allow_percent: bool,
    /// Comma rule. Default: `auto`.
    #[serde(default)]
    pub decimal_comma: DecimalComma,
}

/// An integer part (compared exactly; the answer may be an expression such as
/// `(11*11*3+1)*96`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegerSpec {
    /// The key: an integer, an integer expression string or a computed key.
    pub expected: ExpectedValue,
    /// Comma rule. Default: `auto`.
    #[serde(default)]
    pub decimal_comma: DecimalComma,
}

/// Whether the order of dimensions matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DimOrder {
    /// Default: dimensions must be in the key's order.
    #[default]
    Exact,
    /// Any permutation of the key's dimensions is accepted.
    Any,
}

/// A shape / tuple part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapeSpec {
    /// The key: an array of sizes, a string such as `"8x8x5"`, or computed.
    pub expected: ExpectedValue,
    /// Default: `exact`.
    #[serde(default)]
    pub order: DimOrder,
    /// If true, a single number `n` is read as `(n, n, ...)` of the key's rank
    /// (e.g. `7` for a `7x7` receptive field); such answers trigger the
    /// `scalar` deduction condition. Default: false.
    #[serde(default)]
    pub scalar_shorthand: bool,
}

/// A weight layout convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// PyTorch: `(out, in, k1, k2, ...)`; dense `(out, in)`.
    Pytorch,
    /// Keras/TensorFlow: `(k1, k2, ..., in, out)`; dense `(in, out)`.
    Keras,
    /// `(in, out, k1, k2, ...)`; dense `(in, out)`.
    InOut,
}

/// Credit for answering a weight shape in one convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConventionCredit {
    /// The convention.
    pub convention: Convention,
    /// Points for this layout. Default: the part's `max_points` (full credit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
    /// Feedback shown when this layout is recognized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// A weight tensor shape part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightShapeSpec {
    /// The key: `{"out_channels": 4, "in_channels": 3, "kernel_size": [5, 5]}`
    /// (empty `kernel_size` for a dense layer), or an array in
    /// `key_convention` layout, or computed.
    pub expected: ExpectedValue,
    /// Layout of an array key. Default: `pytorch`.
    #[serde(default = "default_convention")]
    pub key_convention: Convention,
    /// Layouts accepted and their credit; a layout with full points is a full
    /// match, others are alternatives. Default: all three, full credit.
    #[serde(default = "default_conventions")]
    pub accept: Vec<ConventionCredit>,
}

fn default_convention() -> Convention {
    Convention::Pytorch
}

fn default_conventions() -> Vec<ConventionCredit> {
    [Convention::Pytorch, Convention::Keras, Convention::InOut]
        .into_iter()
        .map(|convention| ConventionCredit {
            convention,
            points: None,
            feedback: None,
        })
        .collect()
}

/// A transformation of a matrix key that is also accepted as correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatrixEquivalence {
    /// Columns reversed (left-right mirror).
    HorizontalFlip,
    /// Rows reversed (up-down mirror).
    VerticalFlip,
    /// Both flips (rotation by 180 degrees; what a true convolution does).
    Rotate180,
    /// The key negated (`-K`).
    Sign,
    /// `c * K` for any `c > 0`.
    PositiveScaling,
    /// `c * K` for any `c != 0`.
    AnyScaling,
}

/// Per-entry partial credit for matrices and vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerEntryCredit {
    /// Points for a fully matching matrix; a partially matching one earns
    /// `points * (correct entries / entries)`. Only when dimensions agree.
    pub points: f64,
}

/// A vector or matrix part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// The key: rows `[[1, 0, -1], ...]` (a flat array for vectors), a string
    /// in any accepted matrix syntax, or computed.
    pub expected: ExpectedValue,
    /// Per-entry comparison. Default: relabs, rtol 1e-6, atol 1e-9.
    #[serde(default = "default_matrix_tolerance")]
    pub tolerance: Tolerance,
    /// Transformations of the key also accepted as fully correct, e.g.
    /// `["horizontal_flip", "vertical_flip", "rotate180", "any_scaling"]` for
    /// "flipping & scaling are OK". Default: none.
    #[serde(default)]
    pub equivalences: Vec<MatrixEquivalence>,
    /// Per-entry partial credit (tried after the mistakes). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_entry: Option<PerEntryCredit>,
}

fn default_matrix_tolerance() -> Tolerance {
    Tolerance::Relabs {
        rtol: 1e-6,
        atol: 1e-9,
    }
}

/// An expression part (symbolic equivalence by evaluation, like STACK AlgEquiv).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpressionSpec {
    /// The key: an expression string such as `"(w_3*w_2 + 1)*w_1*x"`.
    pub expected: ExpectedValue,
    /// Random evaluation points. Default 12, at most 200.
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Points at which both sides must be defined. Default 6; at most `samples`.
    #[serde(default = "default_min_defined")]
    pub min_defined: u32,
    /// RNG seed (results are reproducible). Default 5.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Relative tolerance at each point: `|a - b| <= rtol * max(|a|, |b|, 1e-300)`
    /// or both within `atol`. Default 1e-9.
    #[serde(default = "default_expr_rtol")]
    pub rtol: f64,
    /// Absolute tolerance at each point. Default 1e-12.
    #[serde(default = "default_expr_atol")]
    pub atol: f64,
    /// Sampling interval per variable, `[lo, hi]`. Default `[0.5, 2.5]`.
    #[serde(default)]
    pub ranges: BTreeMap<String, [f64; 2]>,
}

fn default_samples() -> u32 {
    12
}
fn default_min_defined() -> u32 {
    6
}
fn default_seed() -> u64 {
    5
}
fn default_expr_rtol() -> f64 {
    1e-9
}
fn default_expr_atol() -> f64 {
    1e-12
}

/// One option of a choice part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// Option identifier the student may type, e.g. `a`.
    pub id: String,
    /// Option text (also accepted as the answer, ignoring case/punctuation).
    #[serde(default)]
    pub text: String,
    /// The value of a computation this option stands for (e.g.
    /// `"local_maximum"`, `false`), for keys computed with `compute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Value>,
}

/// Scoring of multiple-choice parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceScoring {
    /// Default: full points iff exactly the correct options are selected.
    #[default]
    AllOrNothing,
    /// `max * (options decided right / options)`: every option counts.
    PerOption,
    /// `max * max(0, (correct selected - wrong selected) / correct options)`.
    RightMinusWrong,
}

/// A single or multiple choice part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    /// The options.
    pub options: Vec<ChoiceOption>,
    /// Ids of the correct options (exactly one unless `multiple`). May be
    /// left empty when `compute` gives the key.
    #[serde(default)]
    pub correct: Vec<String>,
    /// Computes the key: the correct options are those whose `value` equals
    /// the computed value (each element of it, for an array). With `correct`
    /// also given, `correct` is the printed key, used for grading, and the
    /// audit reports where the computation disagrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<ComputeSpec>,
    /// Whether several options may be selected. Default: false.
    #[serde(default)]
    pub multiple: bool,
    /// Scoring for multiple selections. Default: `all_or_nothing`.
    #[serde(default)]
    pub scoring: ChoiceScoring,
}

/// Phrases worth fewer points than the group's full synonyms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartialSynonyms {
    /// Phrases, e.g. `["mean", "average"]` instead of "blur".
    pub phrases: Vec<String>,
    /// Points when only one of these is found.
    pub points: f64,
    /// Feedback when only these are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// A concept worth points when any of its phrases occurs in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConceptGroup {
    /// Identifier, unique within the part.
    pub id: String,
    /// Points for the concept (negative for a penalized concept).
    pub points: f64,
    /// Synonyms / phrases; case, plurals, punctuation and hyphens are ignored.
    pub phrases: Vec<String>,
    /// Lesser synonyms. Default: none.
    #[serde(default)]
    pub partial: Vec<PartialSynonyms>,
    /// Points when a phrase occurs only misspelled: every differing word has
    /// at least 5 letters and is one edit (insertion, deletion, substitution
    /// or swap of neighbours) from the phrase's word. Positive groups only,
    /// at most `points`. Default: none (misspellings earn nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misspelled: Option<f64>,
    /// Feedback when the concept is found (or, for negative groups, penalized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// Feedback when the concept is missing (positive groups only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_feedback: Option<String>,
}

/// A short-text part graded by concept groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConceptsSpec {
    /// The concept groups; each counts once. The sum is clamped to `[0, max]`.
    pub groups: Vec<ConceptGroup>,
    /// A model answer shown to students. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_answer: Option<String>,
}

/// A free-text part: left for manual review.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreeTextSpec {
    /// Notes for the human grader. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grader_notes: Option<String>,
}

/// A named mistake recognized structurally rather than by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recognizer {
    /// Matrix: the key transposed.
    Transpose,
    /// Number, vector or matrix: the key negated.
    SignFlip,
    /// Number: 100 times or 1/100 of the key (percent confusion).
    PercentScale,
    /// Number or integer: off by exactly one.
    OffByOne,
    /// Shape: the key's dimensions reversed.
    Reversed,
    /// Shape: a permutation of the key's dimensions (but not the key).
    Permutation,
    /// Shape: the key with some dimensions left out, order kept.
    Subsequence,
}

/// An alternative answer or a recognized mistake, with its points.
/// Exactly one of `value`, `patch`, `recognize`, `dims` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "no_padding", "label": "no padding", "patch": {"/layers/0/padding": 0},
    "points": 1, "feedback": "You forgot the padding of 1."}))]
pub struct CreditRule {
    /// Identifier, unique within the part (reported as `matched_rule`).
    pub id: String,
    /// Short name of the alternative / mistake. Alias: `mistake`.
    #[serde(default, alias = "mistake", skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Points awarded (0 ..= max_points).
    pub points: f64,
    /// Feedback shown when this rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// Another key compared with the part's equivalence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ExpectedValue>,
    /// JSON-pointer patches applied to the part's computed key request; the
    /// result of the patched computation is the value (computed keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub patch: Option<BTreeMap<String, Value>>,
    /// A structural mistake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognize: Option<Recognizer>,
    /// Shapes: the answer matches the key at these 0-based dimensions (either
    /// a full-rank answer, or an answer giving exactly these dimensions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dims: Option<Vec<usize>>,
}

/// When a deduction applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeductionCondition {
    /// A shape answer written as a single number (`scalar_shorthand`).
    Scalar,
    /// A shape answer with this many dimensions.
    Rank {
        /// The rank that triggers the deduction.
        rank: usize,
    },
    /// The answer or working contains one of the phrases (normalized text).
    Contains {
        /// Phrases.
        phrases: Vec<String>,
    },
    /// Neither the answer nor the working contains any of the phrases
    /// ("−0.5 if feature extraction is not mentioned"; with `points` equal
    /// to `max_points`: "no Sequential model, 0 marks for the answer").
    Missing {
        /// Phrases, any of which satisfies the requirement.
        phrases: Vec<String>,
    },
    /// No working was submitted: the `working` field is empty and the answer
    /// itself shows no calculation (no `=` or `≈`).
    NoWorking,
}

/// Points taken off a positive score when a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deduction {
    /// Identifier, unique within the part.
    pub id: String,
    /// Points deducted (> 0).
    pub points: f64,
    /// The condition.
    pub when: DeductionCondition,
    /// Feedback shown when deducted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// Points for an intermediate value stated in the working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodCredit {
    /// Identifier, unique within the part.
    pub id: String,
    /// The intermediate value (number, expression string or computed key).
    pub value: ExpectedValue,
    /// Points when the value is stated (as a result after `=`, `≈` or `→`).
    pub points: f64,
    /// Comparison. Default: relabs, rtol 1e-6, atol 1e-9.
    #[serde(default = "default_matrix_tolerance")]
    pub tolerance: Tolerance,
    /// Feedback when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// Error carried forward: the part's key recomputed from the student's own
/// answer to an earlier part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "b", "expr": "(b_0 - 3)/2 + 1", "points": 1,
    "plausible": {"min": 1, "max": 64}}))]
pub struct FollowThrough {
    /// The earlier part whose answer is used. Its values are the variables:
    /// a number/integer part `b` is `b`; a shape/vector part gives `b_0`,
    /// `b_1`, ... (and `b` = `b_0`).
    pub from: String,
    /// The expression(s) giving this part's key: one string for number,
    /// integer and expression parts; one per dimension/entry for shapes and
    /// vectors.
    pub expr: ExprList,
    /// Points awarded at most under follow-through. Default: `max_points`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
    /// Every earlier value must lie in this range, or no follow-through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plausible: Option<Plausible>,
    /// Feedback when applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
}

/// One expression or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ExprList {
    /// A single expression.
    One(String),
    /// One expression per dimension / entry.
    Many(Vec<String>),
}

/// A closed range of plausible earlier values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plausible {
    /// Lower bound (inclusive). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound (inclusive). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Whether the earlier values must be integers. Default: false.
    #[serde(default)]
    pub integer: bool,
}

/// A student's answer to one part: the answer text, optionally with working.
/// LMS integrations may also send numbers and JSON lists; they are read as
/// the equivalent text (see [`AnswerInput`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, from = "AnswerInput")]
pub enum StudentAnswer {
    /// Just the answer text.
    Text(String),
    /// The answer with the working that led to it.
    WithWorking {
        /// The final answer.
        answer: String,
        /// The working (for method credit and deductions). Default: none.
        #[serde(default)]
        working: Option<String>,
    },
}

/// An answer value as sent: text, a number, or a list.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AnswerValue {
    /// Text in the part's answer syntax, e.g. `8x8x5`, `1/2`, `a, c`.
    Text(String),
    /// A number, read as its decimal text.
    #[schema(value_type = f64)]
    Number(serde_json::Number),
    /// A list: a shape or vector `[8, 8, 5]`, matrix rows `[[1, 0], [0, 1]]`,
    /// or the chosen options `["a", "c"]`.
    #[schema(value_type = Vec<serde_json::Value>)]
    List(Vec<Value>),
}

/// A student's answer as an LMS sends it.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AnswerInput {
    /// The answer alone.
    Value(AnswerValue),
    /// The answer with the working that led to it.
    WithWorking(AnswerWithWorking),
}

/// An answer with the working that led to it.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerWithWorking {
    /// The final answer.
    pub answer: AnswerValue,
    /// The working (for method credit and deductions). Default: none.
    #[serde(default)]
    pub working: Option<String>,
}

impl AnswerValue {
    /// The equivalent text: numbers as written, a list of strings joined by
    /// `, ` (chosen options), other lists as compact JSON (shapes, matrices).
    fn into_text(self) -> String {
        match self {
            AnswerValue::Text(s) => s,
            AnswerValue::Number(n) => n.to_string(),
            AnswerValue::List(items) => {
                let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                match strings {
                    Some(strings) if !strings.is_empty() => strings.join(", "),
                    _ => Value::Array(items).to_string(),
                }
            }
        }
    }
}

impl From<AnswerInput> for StudentAnswer {
    fn from(input: AnswerInput) -> Self {
        match input {
            AnswerInput::Value(v) => StudentAnswer::Text(v.into_text()),
            AnswerInput::WithWorking(AnswerWithWorking { answer, working }) => {
                StudentAnswer::WithWorking {
                    answer: answer.into_text(),
                    working,
                }
            }
        }
    }
}

impl utoipa::PartialSchema for StudentAnswer {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <AnswerInput as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for StudentAnswer {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "AnswerValue".into(),
            <AnswerValue as utoipa::PartialSchema>::schema(),
        ));
        schemas.push((
            "AnswerWithWorking".into(),
            <AnswerWithWorking as utoipa::PartialSchema>::schema(),
        ));
    }
}

impl StudentAnswer {
    /// The final answer text.
    pub fn answer(&self) -> &str {
        match self {
            StudentAnswer::Text(s) => s,
            StudentAnswer::WithWorking { answer, .. } => answer,
        }
    }

    /// The working, if any.
    pub fn working(&self) -> Option<&str> {
        match self {
            StudentAnswer::Text(_) => None,
            StudentAnswer::WithWorking { working, .. } => working.as_deref(),
        }
    }
}

/// A submission: part id -> answer. Parts without an answer score 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(example = json!({"b": "8x8x5", "c": {"answer": "(4, 3, 5, 5)", "working": "out, in, kh, kw"}}))]
pub struct Answers(pub BTreeMap<String, StudentAnswer>);

impl Answers {
    /// Builds a submission of plain answers.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Answers(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), StudentAnswer::Text(v.to_string())))
                .collect(),
        )
    }
}

/// A self-test of a rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RubricTest {
    /// Name of the case, e.g. `only spatial size`.
    pub name: String,
    /// The submission.
    pub answers: Answers,
    /// The total the rubric must give (compared within 1e-9).
    pub expected_score: f64,
    /// Optional expected points per part. Default: none.
    #[serde(default)]
    pub expected_parts: BTreeMap<String, f64>,
}

/// A problem found in a rubric: where (RFC 6901 pointer into the rubric JSON)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RubricProblem {
    /// Pointer to the offending field, e.g. `/parts/1/alternatives/0/points`.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl RubricProblem {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RubricProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn schemas_render() {
        for schema in [
            Rubric::schema(),
            Answers::schema(),
            ExpectedValue::schema(),
            AnswerSpec::schema(),
            crate::grading::GradeResult::schema(),
            crate::grading::GradescopeResults::schema(),
            crate::grading::SelfTestReport::schema(),
            crate::grading::AuditFinding::schema(),
        ] {
            let json = serde_json::to_string(&schema).unwrap();
            assert!(json.len() > 20, "{json}");
        }
        let rubric = serde_json::to_string(&Rubric::schema()).unwrap();
        assert!(
            rubric.contains("Problem 4b"),
            "the example is in the schema"
        );
    }

    #[test]
    fn the_schema_example_is_a_working_rubric() {
        let r: Rubric = serde_json::from_value(serde_json::json!({
            "title": "Problem 4b: convolution output size",
            "prompt": "5 filters, kernel 7, stride 3, padding 1 on a 26x26x26 input: output size?",
            "parts": [{
                "id": "b",
                "max_points": 2,
                "answer": {"type": "shape", "expected": [8, 8, 5]},
                "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": 1,
                                  "feedback": "Spatial size right; the depth is the number of filters (5)."}]
            }],
            "tests": [{"name": "full", "answers": {"b": "8x8x5"}, "expected_score": 2}]
        }))
        .unwrap();
        let resolved = r.compile().unwrap();
        assert_eq!(resolved.run_self_tests().passed, 1);
        let round: Rubric = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(round, r);
    }

    #[test]
    fn answers_with_unknown_fields_are_rejected() {
        let ok: Answers =
            serde_json::from_value(serde_json::json!({"a": {"answer": "1", "working": "x = 1"}}))
                .unwrap();
        assert_eq!(ok.0["a"].working(), Some("x = 1"));
        assert!(
            serde_json::from_value::<Answers>(serde_json::json!({"a": {"answer": "1", "wrk": ""}}))
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = serde_json::json!({"title": "t", "parts": [], "extra": 1});
        assert!(serde_json::from_value::<Rubric>(bad).is_err());
        let bad = serde_json::json!({"title": "t", "parts": [{"id": "a", "max_points": 1,
            "answer": {"type": "number", "expected": 1, "tolernce": {"mode": "exact"}}}]});
        assert!(serde_json::from_value::<Rubric>(bad).is_err());
    }
}

#[cfg(test)]
mod answer_input_tests {
    use super::*;

    fn read(json: serde_json::Value) -> StudentAnswer {
        serde_json::from_value(json).expect("an answer")
    }

    #[test]
    fn numbers_and_lists_are_read_as_their_text() {
        assert_eq!(read(serde_json::json!(34944)).answer(), "34944");
        assert_eq!(read(serde_json::json!(0.5)).answer(), "0.5");
        assert_eq!(read(serde_json::json!([8, 8, 5])).answer(), "[8,8,5]");
        assert_eq!(
            read(serde_json::json!([[1, 0], [0, 1]])).answer(),
            "[[1,0],[0,1]]"
        );
        assert_eq!(read(serde_json::json!(["a", "c"])).answer(), "a, c");
        let with = read(serde_json::json!({"answer": 8, "working": "(26-7+2)/3+1"}));
        assert_eq!(with.answer(), "8");
        assert_eq!(with.working(), Some("(26-7+2)/3+1"));
        assert!(serde_json::from_value::<StudentAnswer>(serde_json::json!({"x": 1})).is_err());
        assert!(serde_json::from_value::<StudentAnswer>(serde_json::json!(true)).is_err());
    }
}
