//! From rubric JSON to a compiled, concrete rubric: computed keys are replaced
//! by the values a [`KeyResolver`] returns, every key and rule value is parsed
//! once into its typed form, phrases are normalized, follow-through formulas
//! are parsed. Grading then never re-reads the rubric. Also the key audit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::compute::expr::Expr;

use super::expression::{EquivOptions, Equivalence, equivalent as expr_equivalent};
use super::matrix::{Matrix, equivalent as matrix_equivalent, parse_matrix};
use super::model::{
    AnswerSpec, ChoiceScoring, ComputeSpec, Convention, CreditRule, DeductionCondition, DimOrder,
    ExpectedValue, ExprList, MatrixEquivalence, PartFeedback, Plausible, Recognizer, Rubric,
    RubricProblem, Selector, Tolerance,
};
use super::number::{NumberFormat, is_close, parse_expr, parse_number, render_num};
use super::shape::{WeightKey, parse_shape, render_shape};
use super::text;

/// Computes keys with dlgrade's compute engines (implemented by the API layer).
pub trait KeyResolver {
    /// Runs `engine` on `request` and returns its JSON response, or a reason.
    fn resolve(&self, engine: &str, request: &Value) -> Result<Value, String>;
}

/// A resolver for rubrics without computed keys: every computation fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEngines;

impl KeyResolver for NoEngines {
    fn resolve(&self, engine: &str, _request: &Value) -> Result<Value, String> {
        Err(format!(
            "no compute engine is available here (engine '{engine}'); resolve computed keys first"
        ))
    }
}

/// A key or rule value parsed into its typed form.
#[derive(Debug, Clone)]
pub(crate) enum Typed {
    Num(f64),
    Dims(Vec<u64>),
    Mat(Matrix),
    Ex(Expr),
}

impl Typed {
    pub(crate) fn render(&self, vector: bool) -> String {
        match self {
            Typed::Num(x) => render_num(*x),
            Typed::Dims(d) => render_shape(d),
            Typed::Mat(m) => super::matrix::render_matrix(m, vector),
            Typed::Ex(e) => e.to_string(),
        }
    }
}

/// Answer-type options after compilation.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Number {
        tol: Tolerance,
        fmt: NumberFormat,
    },
    Integer {
        fmt: NumberFormat,
    },
    Shape {
        order: DimOrder,
        scalar_shorthand: bool,
    },
    Weight {
        key: WeightKey,
        /// (convention, points, feedback), in the rubric's order.
        accept: Vec<(Convention, f64, Option<String>)>,
    },
    Matrix {
        vector: bool,
        tol: Tolerance,
        eq: Vec<MatrixEquivalence>,
        per_entry: Option<f64>,
    },
    Expression {
        opts: EquivOptions,
    },
    Choice {
        /// (id, normalized option text words).
        options: Vec<(String, Vec<String>)>,
        correct: Vec<bool>,
        multiple: bool,
        scoring: ChoiceScoring,
    },
    Concepts {
        groups: Vec<CGroup>,
    },
    FreeText,
}

/// A phrase: word sequences that must all occur (`a + b`).
pub(crate) type Phrase = Vec<Vec<String>>;

#[derive(Debug, Clone)]
pub(crate) struct CGroup {
    pub id: String,
    pub points: f64,
    pub phrases: Vec<Phrase>,
    /// (phrases, points, feedback) of lesser synonyms.
    pub partial: Vec<(Vec<Phrase>, f64, Option<String>)>,
    pub misspelled: Option<f64>,
    pub feedback: Option<String>,
    pub missing_feedback: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Value(Typed),
    Recognize(Recognizer),
    Dims(Vec<usize>),
}

#[derive(Debug, Clone)]
pub(crate) struct CRule {
    pub id: String,
    pub label: Option<String>,
    pub points: f64,
    pub feedback: Option<String>,
    pub matcher: Matcher,
}

#[derive(Debug, Clone)]
pub(crate) enum CCond {
    Scalar,
    Rank(usize),
    Contains(Vec<Vec<String>>),
    Missing(Vec<Vec<String>>),
    NoWorking,
}

#[derive(Debug, Clone)]
pub(crate) struct CDeduction {
    pub id: String,
    pub points: f64,
    pub cond: CCond,
    pub feedback: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CMethod {
    pub id: String,
    pub value: f64,
    pub points: f64,
    pub tol: Tolerance,
    pub feedback: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CFollow {
    pub from_index: usize,
    pub from_id: String,
    pub exprs: Vec<Expr>,
    pub points: f64,
    pub plausible: Option<Plausible>,
    pub feedback: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPart {
    pub id: String,
    pub max: f64,
    pub kind: Kind,
    pub key: Option<Typed>,
    pub alternatives: Vec<CRule>,
    pub mistakes: Vec<CRule>,
    pub deductions: Vec<CDeduction>,
    pub method: Vec<CMethod>,
    pub follow: Option<CFollow>,
    pub feedback: PartFeedback,
}

/// A rubric whose keys are all concrete and compiled, ready for [`grade`].
///
/// [`grade`]: super::grade::grade
#[derive(Debug, Clone)]
pub struct ResolvedRubric {
    pub(crate) rubric: Rubric,
    pub(crate) parts: Vec<CompiledPart>,
}

impl ResolvedRubric {
    /// The concrete rubric: computed keys and patched mistakes replaced by
    /// literal values (store this; it compiles again without engines).
    pub fn rubric(&self) -> &Rubric {
        &self.rubric
    }

    /// Sum of the parts' maximum points.
    pub fn max_score(&self) -> f64 {
        self.parts.iter().map(|p| p.max).sum()
    }
}

/// A disagreement between a printed key and its `check` computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditFinding {
    /// Pointer of the checked value in the rubric, e.g. `/parts/2/answer/expected`.
    pub pointer: String,
    /// The printed value (any JSON).
    #[schema(value_type = serde_json::Value)]
    pub printed: Value,
    /// The computed value (any JSON; null when the computation failed).
    #[schema(value_type = serde_json::Value)]
    pub computed: Value,
    /// Plain explanation, e.g. `printed 0.556 but the computation gives 0.5995`.
    pub message: String,
}

impl Rubric {
    /// Validates, resolves computed keys with `resolver` and compiles the
    /// rubric. All problems found are returned together.
    pub fn resolve_keys(
        &self,
        resolver: &dyn KeyResolver,
    ) -> Result<ResolvedRubric, Vec<RubricProblem>> {
        if self.template.is_some() {
            // The printed question: the template's default parameters.
            return self.with_defaults()?.resolve_keys(resolver);
        }
        self.validate()?;
        let mut problems = Vec::new();
        let mut concrete = self.clone();
        let mut parts = Vec::with_capacity(self.parts.len());
        for (i, slot) in concrete.parts.iter_mut().enumerate() {
            let base = format!("/parts/{i}");
            match compile_part(self, i, resolver, &base, slot) {
                Ok(p) => parts.push(p),
                Err(mut e) => problems.append(&mut e),
            }
        }
        if problems.is_empty() {
            Ok(ResolvedRubric {
                rubric: concrete,
                parts,
            })
        } else {
            Err(problems)
        }
    }

    /// Compiles a rubric without computed keys (see [`NoEngines`]).
    pub fn compile(&self) -> Result<ResolvedRubric, Vec<RubricProblem>> {
        self.resolve_keys(&NoEngines)
    }

    /// For every expected value written as `{"value": ..., "check": {...}}`,
    /// runs the check and reports where the printed value disagrees with the
    /// computed one under the part's equivalence (or the check fails).
    pub fn audit(&self, resolver: &dyn KeyResolver) -> Vec<AuditFinding> {
        if self.template.is_some() {
            return match self.with_defaults() {
                Ok(printed) => printed.audit(resolver),
                Err(problems) => problems
                    .into_iter()
                    .map(|p| AuditFinding {
                        pointer: p.pointer,
                        printed: Value::Null,
                        computed: Value::Null,
                        message: format!("the default parameters cannot be used: {}", p.message),
                    })
                    .collect(),
            };
        }
        let mut out = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            let base = format!("/parts/{i}");
            let mut checked: Vec<(String, &ExpectedValue)> = Vec::new();
            if let Some(e) = expected_of(&part.answer) {
                checked.push((format!("{base}/answer/expected"), e));
            }
            for (list, name) in [
                (&part.alternatives, "alternatives"),
                (&part.mistakes, "mistakes"),
            ] {
                for (j, r) in list.iter().enumerate() {
                    if let Some(v) = &r.value {
                        checked.push((format!("{base}/{name}/{j}/value"), v));
                    }
                }
            }
            for (j, m) in part.method_credit.iter().enumerate() {
                checked.push((format!("{base}/method_credit/{j}/value"), &m.value));
            }
            if let AnswerSpec::Choice(c) = &part.answer
                && !c.correct.is_empty()
                && let Some(spec) = &c.compute
            {
                let ptr = format!("{base}/answer/correct");
                let printed = {
                    let mut ids = c.correct.clone();
                    ids.sort();
                    ids
                };
                let computed = run_compute(spec, None, resolver, &ptr)
                    .and_then(|v| choice_ids(c, &v, &ptr).map(|ids| (v, ids)));
                match computed {
                    Ok((_, ids)) if ids == printed => {}
                    Ok((v, ids)) => out.push(AuditFinding {
                        pointer: ptr,
                        printed: Value::from(printed.clone()),
                        computed: Value::from(ids.clone()),
                        message: format!(
                            "the printed key {} disagrees with the computed {} (the computation gives {v})",
                            printed.join(", "),
                            ids.join(", ")
                        ),
                    }),
                    Err(p) => out.push(AuditFinding {
                        pointer: ptr,
                        printed: Value::from(printed),
                        computed: Value::Null,
                        message: format!("the check could not run: {}", p.message),
                    }),
                }
            }
            let is_method = |p: &str| p.contains("/method_credit/");
            for (ptr, ev) in checked {
                let ExpectedValue::Checked(ck) = ev else {
                    continue;
                };
                let computed = match run_compute(&ck.check, None, resolver, &ptr) {
                    Ok(v) => v,
                    Err(p) => {
                        out.push(AuditFinding {
                            pointer: ptr.clone(),
                            printed: ck.value.clone(),
                            computed: Value::Null,
                            message: format!("the check could not run: {}", p.message),
                        });
                        continue;
                    }
                };
                let spec = if is_method(&ptr) {
                    &AnswerSpec::Number(super::model::NumberSpec {
                        expected: ExpectedValue::Literal(Value::Null),
                        tolerance: Tolerance::Relabs {
                            rtol: 1e-6,
                            atol: 1e-9,
                        },
                        allow_percent: false,
                        decimal_comma: Default::default(),
                    })
                } else {
                    &part.answer
                };
                let message = match (
                    typed_value(spec, &ck.value, &ptr),
                    typed_value(spec, &computed, &ptr),
                ) {
                    (Ok(a), Ok(b)) => {
                        if same_key(spec, &a, &b) {
                            continue;
                        }
                        let vector = matches!(spec, AnswerSpec::Vector(_));
                        format!(
                            "the printed key {} disagrees with the computed {}",
                            a.render(vector),
                            b.render(vector)
                        )
                    }
                    (Err(p), _) => format!("the printed key cannot be read: {}", p.message),
                    (_, Err(p)) => format!("the computed value cannot be read: {}", p.message),
                };
                out.push(AuditFinding {
                    pointer: ptr,
                    printed: ck.value.clone(),
                    computed,
                    message,
                });
            }
        }
        out
    }
}

/// Whether two keys agree under the part's equivalence.
fn same_key(spec: &AnswerSpec, a: &Typed, b: &Typed) -> bool {
    match (spec, a, b) {
        (AnswerSpec::Number(n), Typed::Num(x), Typed::Num(y)) => is_close(*x, *y, n.tolerance),
        (_, Typed::Num(x), Typed::Num(y)) => x == y,
        (AnswerSpec::Shape(s), Typed::Dims(x), Typed::Dims(y)) => match s.order {
            DimOrder::Exact => x == y,
            DimOrder::Any => super::shape::is_permutation(x, y),
        },
        (_, Typed::Dims(x), Typed::Dims(y)) => x == y,
        (AnswerSpec::Matrix(m) | AnswerSpec::Vector(m), Typed::Mat(x), Typed::Mat(y)) => {
            matrix_equivalent(x, y, m.tolerance, &[]).is_some()
        }
        (AnswerSpec::Expression(e), Typed::Ex(x), Typed::Ex(y)) => matches!(
            expr_equivalent(x, y, &equiv_options(e)),
            Equivalence::Equal { .. }
        ),
        _ => false,
    }
}

pub(crate) fn expected_of(spec: &AnswerSpec) -> Option<&ExpectedValue> {
    match spec {
        AnswerSpec::Number(s) => Some(&s.expected),
        AnswerSpec::Integer(s) => Some(&s.expected),
        AnswerSpec::Shape(s) => Some(&s.expected),
        AnswerSpec::WeightShape(s) => Some(&s.expected),
        AnswerSpec::Vector(s) | AnswerSpec::Matrix(s) => Some(&s.expected),
        AnswerSpec::Expression(s) => Some(&s.expected),
        AnswerSpec::Choice(_) | AnswerSpec::Concepts(_) | AnswerSpec::FreeText(_) => None,
    }
}

fn expected_of_mut(spec: &mut AnswerSpec) -> Option<&mut ExpectedValue> {
    match spec {
        AnswerSpec::Number(s) => Some(&mut s.expected),
        AnswerSpec::Integer(s) => Some(&mut s.expected),
        AnswerSpec::Shape(s) => Some(&mut s.expected),
        AnswerSpec::WeightShape(s) => Some(&mut s.expected),
        AnswerSpec::Vector(s) | AnswerSpec::Matrix(s) => Some(&mut s.expected),
        AnswerSpec::Expression(s) => Some(&mut s.expected),
        AnswerSpec::Choice(_) | AnswerSpec::Concepts(_) | AnswerSpec::FreeText(_) => None,
    }
}

pub(crate) fn equiv_options(e: &super::model::ExpressionSpec) -> EquivOptions {
    EquivOptions {
        samples: e.samples,
        min_defined: e.min_defined,
        seed: e.seed,
        rtol: e.rtol,
        atol: e.atol,
        ranges: e.ranges.clone(),
    }
}

/// Runs a computation (with optional patches) and selects the key.
fn run_compute(
    spec: &ComputeSpec,
    patch: Option<&BTreeMap<String, Value>>,
    resolver: &dyn KeyResolver,
    ptr: &str,
) -> Result<Value, RubricProblem> {
    let mut req = spec.request.clone();
    if let Some(patch) = patch {
        for (p, v) in patch {
            apply_patch(&mut req, p, v.clone())
                .map_err(|m| RubricProblem::new(format!("{ptr}/patch"), m))?;
        }
    }
    let resp = resolver
        .resolve(&spec.engine, &req)
        .map_err(|m| RubricProblem::new(ptr, format!("engine '{}' failed: {m}", spec.engine)))?;
    let pick = |sel: &str| {
        if sel.is_empty() {
            return Ok(resp.clone());
        }
        resp.pointer(sel).cloned().ok_or_else(|| {
            RubricProblem::new(
                ptr,
                format!(
                    "select pointer '{sel}' is not in the response of engine '{}'",
                    spec.engine
                ),
            )
        })
    };
    match &spec.select {
        None => Ok(resp.clone()),
        Some(Selector::One(sel)) => pick(sel),
        Some(Selector::Many(sels)) if sels.is_empty() => Err(RubricProblem::new(
            ptr,
            "select lists no pointer: give one or more",
        )),
        Some(Selector::Many(sels)) => sels
            .iter()
            .map(|s| pick(s))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}

/// The ids of the options whose `value` equals `computed` (or one of its
/// elements, for an array).
fn choice_ids(
    c: &super::model::ChoiceSpec,
    computed: &Value,
    ptr: &str,
) -> Result<Vec<String>, RubricProblem> {
    let wanted: Vec<&Value> = match computed {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    let mut ids = Vec::new();
    for w in wanted {
        let matching: Vec<&str> = c
            .options
            .iter()
            .filter(|o| o.value.as_ref().is_some_and(|v| same(v, w)))
            .map(|o| o.id.as_str())
            .collect();
        match matching.as_slice() {
            [id] => ids.push((*id).to_owned()),
            [] => {
                return Err(RubricProblem::new(
                    ptr,
                    format!("the computed value {w} is the value of no option"),
                ));
            }
            _ => {
                return Err(RubricProblem::new(
                    ptr,
                    format!(
                        "the computed value {w} is the value of several options: {}",
                        matching.join(", ")
                    ),
                ));
            }
        }
    }
    if !c.multiple && ids.len() != 1 {
        return Err(RubricProblem::new(
            ptr,
            format!(
                "a single choice needs one computed value, got {}",
                ids.len()
            ),
        ));
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Sets `value` at RFC 6901 `pointer`, creating the last object member.
fn apply_patch(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, last) = pointer
        .rsplit_once('/')
        .ok_or_else(|| format!("'{pointer}' is not a JSON pointer"))?;
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            Ok(())
        }
        _ => Err(format!("patch pointer '{pointer}' is not in the request")),
    }
}

/// Reads a JSON value as a key of the answer type.
pub(crate) fn typed_value(spec: &AnswerSpec, v: &Value, ptr: &str) -> Result<Typed, RubricProblem> {
    let bad = |m: String| RubricProblem::new(ptr, m);
    match spec {
        AnswerSpec::Number(_) | AnswerSpec::Integer(_) => {
            let x = match v {
                Value::Number(n) => n.as_f64().ok_or_else(|| bad("not a number".into()))?,
                Value::String(s) => parse_number(s, NumberFormat::default()).map_err(bad)?.value,
                _ => return Err(bad("expected a number or an expression string".into())),
            };
            if matches!(spec, AnswerSpec::Integer(_)) && x.fract() != 0.0 {
                return Err(bad(format!("{} is not an integer", render_num(x))));
            }
            Ok(Typed::Num(x))
        }
        AnswerSpec::Shape(_) | AnswerSpec::WeightShape(_) => match v {
            Value::Array(a) => {
                let mut dims = Vec::with_capacity(a.len());
                for x in a {
                    dims.push(
                        x.as_u64()
                            .ok_or_else(|| bad("sizes must be non-negative integers".into()))?,
                    );
                }
                if dims.is_empty() || dims.len() > super::shape::MAX_DIMS {
                    return Err(bad("a shape needs 1 to 16 sizes".into()));
                }
                Ok(Typed::Dims(dims))
            }
            Value::String(s) => Ok(Typed::Dims(parse_shape(s).map_err(bad)?.dims)),
            _ => Err(bad("expected an array of sizes or a shape string".into())),
        },
        AnswerSpec::Vector(_) | AnswerSpec::Matrix(_) => {
            let m = match v {
                Value::Array(rows) if rows.iter().all(Value::is_array) => {
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(numbers(r).map_err(bad)?);
                    }
                    Matrix::from_rows(out).map_err(bad)?
                }
                Value::Array(_) => {
                    Matrix::from_rows(vec![numbers(v).map_err(bad)?]).map_err(bad)?
                }
                Value::String(s) => parse_matrix(s).map_err(bad)?,
                _ => return Err(bad("expected rows of numbers or a matrix string".into())),
            };
            if matches!(spec, AnswerSpec::Vector(_)) {
                return m
                    .as_vector()
                    .map(Typed::Mat)
                    .ok_or_else(|| bad("a vector needs one row or one column".into()));
            }
            Ok(Typed::Mat(m))
        }
        AnswerSpec::Expression(_) => match v {
            Value::String(s) => Ok(Typed::Ex(parse_expr(s).map_err(bad)?)),
            Value::Number(n) => Ok(Typed::Ex(Expr::Num(
                n.as_f64().ok_or_else(|| bad("not a number".into()))?,
            ))),
            _ => Err(bad("expected an expression string".into())),
        },
        AnswerSpec::Choice(_) | AnswerSpec::Concepts(_) | AnswerSpec::FreeText(_) => {
            Err(bad("this answer type has no expected value".into()))
        }
    }
}

fn numbers(v: &Value) -> Result<Vec<f64>, String> {
    let Value::Array(a) = v else {
        return Err("expected an array of numbers".into());
    };
    if a.len() > super::matrix::MAX_ENTRIES {
        return Err("too many entries".into());
    }
    a.iter()
        .map(|x| match x {
            Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string()),
            Value::String(s) => parse_number(s, NumberFormat::default()).map(|p| p.value),
            _ => Err("entries must be numbers".to_string()),
        })
        .collect()
}

fn weight_key(v: &Value, conv: Convention, ptr: &str) -> Result<WeightKey, RubricProblem> {
    let bad = |m: &str| RubricProblem::new(ptr, m.to_string());
    if let Value::Object(o) = v {
        let get = |k: &str| o.get(k).and_then(Value::as_u64);
        let out_channels = get("out_channels").ok_or_else(|| bad("out_channels is missing"))?;
        let in_channels = get("in_channels").ok_or_else(|| bad("in_channels is missing"))?;
        let kernel = match o.get("kernel_size") {
            None => Vec::new(),
            Some(Value::Number(n)) => vec![n.as_u64().ok_or_else(|| bad("bad kernel_size"))?],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().ok_or_else(|| bad("bad kernel_size")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("kernel_size must be a size or a list of sizes")),
        };
        for k in o.keys() {
            if !matches!(k.as_str(), "out_channels" | "in_channels" | "kernel_size") {
                return Err(bad(&format!("unknown weight field '{k}'")));
            }
        }
        return Ok(WeightKey {
            out_channels,
            in_channels,
            kernel,
        });
    }
    let spec = AnswerSpec::Shape(super::model::ShapeSpec {
        expected: ExpectedValue::Literal(Value::Null),
        order: DimOrder::Exact,
        scalar_shorthand: false,
    });
    let Typed::Dims(d) = typed_value(&spec, v, ptr)? else {
        return Err(bad("expected a weight shape"));
    };
    WeightKey::from_layout(&d, conv).ok_or_else(|| bad("a weight shape has at least 2 sizes"))
}

fn resolve_value(
    ev: &ExpectedValue,
    resolver: &dyn KeyResolver,
    ptr: &str,
) -> Result<Value, RubricProblem> {
    match ev {
        ExpectedValue::Literal(v) => Ok(v.clone()),
        ExpectedValue::Checked(c) => Ok(c.value.clone()),
        ExpectedValue::Computed(c) => {
            run_compute(&c.compute, None, resolver, &format!("{ptr}/compute"))
        }
    }
}

fn compile_part(
    rubric: &Rubric,
    index: usize,
    resolver: &dyn KeyResolver,
    base: &str,
    concrete: &mut super::model::Part,
) -> Result<CompiledPart, Vec<RubricProblem>> {
    let mut part = &rubric.parts[index];
    let mut problems = Vec::new();
    // A computed choice key: the ids of the options matching the computation.
    let computed_choice;
    if let AnswerSpec::Choice(c) = &part.answer
        && c.correct.is_empty()
        && let Some(spec) = &c.compute
    {
        let ptr = format!("{base}/answer/compute");
        let ids = run_compute(spec, None, resolver, &ptr)
            .and_then(|v| choice_ids(c, &v, &ptr))
            .map_err(|p| vec![p])?;
        let mut with_ids = part.clone();
        if let AnswerSpec::Choice(c) = &mut with_ids.answer {
            c.correct = ids.clone();
        }
        if let AnswerSpec::Choice(c) = &mut concrete.answer {
            c.correct = ids;
        }
        computed_choice = with_ids;
        part = &computed_choice;
    }
    let max = part.max_points;
    // The key.
    let mut key = None;
    let mut weight = None;
    if let Some(ev) = expected_of(&part.answer) {
        let ptr = format!("{base}/answer/expected");
        match resolve_value(ev, resolver, &ptr) {
            Ok(v) => {
                if matches!(ev, ExpectedValue::Computed(_))
                    && let Some(slot) = expected_of_mut(&mut concrete.answer)
                {
                    *slot = ExpectedValue::Literal(v.clone());
                }
                if let AnswerSpec::WeightShape(w) = &part.answer {
                    match weight_key(&v, w.key_convention, &ptr) {
                        Ok(k) => {
                            key = Some(Typed::Dims(k.layout(Convention::Pytorch)));
                            weight = Some(k);
                        }
                        Err(p) => problems.push(p),
                    }
                } else {
                    match typed_value(&part.answer, &v, &ptr) {
                        Ok(t) => key = Some(t),
                        Err(p) => problems.push(p),
                    }
                }
            }
            Err(p) => problems.push(p),
        }
    }
    let kind = match compile_kind(part, weight, base) {
        Ok(k) => Some(k),
        Err(mut e) => {
            problems.append(&mut e);
            None
        }
    };
    // Rules.
    let mut rules =
        |list: &[CreditRule], name: &str, out: &mut Vec<CRule>, conc: &mut Vec<CreditRule>| {
            for (j, r) in list.iter().enumerate() {
                let ptr = format!("{base}/{name}/{j}");
                let matcher = if let Some(v) = &r.value {
                    resolve_value(v, resolver, &format!("{ptr}/value")).and_then(|val| {
                        if matches!(v, ExpectedValue::Computed(_)) {
                            conc[j].value = Some(ExpectedValue::Literal(val.clone()));
                        }
                        typed_value(&part.answer, &val, &format!("{ptr}/value")).map(Matcher::Value)
                    })
                } else if let Some(patch) = &r.patch {
                    match expected_of(&part.answer) {
                        Some(ExpectedValue::Computed(c)) => {
                            run_compute(&c.compute, Some(patch), resolver, &ptr).and_then(|val| {
                                conc[j].value = Some(ExpectedValue::Literal(val.clone()));
                                conc[j].patch = None;
                                typed_value(&part.answer, &val, &format!("{ptr}/patch"))
                                    .map(Matcher::Value)
                            })
                        }
                        _ => Err(RubricProblem::new(
                            format!("{ptr}/patch"),
                            "a patch needs the part's expected value to be computed",
                        )),
                    }
                } else if let Some(rec) = r.recognize {
                    Ok(Matcher::Recognize(rec))
                } else if let Some(d) = &r.dims {
                    match &key {
                        Some(Typed::Dims(k)) if d.iter().all(|&i| i < k.len()) => {
                            Ok(Matcher::Dims(d.clone()))
                        }
                        Some(Typed::Dims(k)) => Err(RubricProblem::new(
                            format!("{ptr}/dims"),
                            format!("the key has {} dimensions", k.len()),
                        )),
                        _ => Err(RubricProblem::new(
                            format!("{ptr}/dims"),
                            "dims needs a shape key",
                        )),
                    }
                } else {
                    Err(RubricProblem::new(
                        &ptr,
                        "give one of value, patch, recognize, dims",
                    ))
                };
                match matcher {
                    Ok(m) => out.push(CRule {
                        id: r.id.clone(),
                        label: r.label.clone(),
                        points: r.points,
                        feedback: r.feedback.clone(),
                        matcher: m,
                    }),
                    Err(p) => problems.push(p),
                }
            }
        };
    let mut alternatives = Vec::new();
    let mut mistakes = Vec::new();
    rules(
        &part.alternatives,
        "alternatives",
        &mut alternatives,
        &mut concrete.alternatives,
    );
    rules(
        &part.mistakes,
        "mistakes",
        &mut mistakes,
        &mut concrete.mistakes,
    );
    // Deductions.
    let deductions = part
        .deductions
        .iter()
        .map(|d| CDeduction {
            id: d.id.clone(),
            points: d.points,
            cond: match &d.when {
                DeductionCondition::Scalar => CCond::Scalar,
                DeductionCondition::Rank { rank } => CCond::Rank(*rank),
                DeductionCondition::Contains { phrases } => {
                    CCond::Contains(phrases.iter().map(|p| text::words(p)).collect())
                }
                DeductionCondition::NoWorking => CCond::NoWorking,
                DeductionCondition::Missing { phrases } => {
                    CCond::Missing(phrases.iter().map(|p| text::words(p)).collect())
                }
            },
            feedback: d.feedback.clone(),
        })
        .collect();
    // Method credit.
    let mut method = Vec::new();
    for (j, m) in part.method_credit.iter().enumerate() {
        let ptr = format!("{base}/method_credit/{j}/value");
        let num = AnswerSpec::Number(super::model::NumberSpec {
            expected: ExpectedValue::Literal(Value::Null),
            tolerance: m.tolerance,
            allow_percent: false,
            decimal_comma: Default::default(),
        });
        match resolve_value(&m.value, resolver, &ptr).and_then(|v| {
            if matches!(m.value, ExpectedValue::Computed(_)) {
                concrete.method_credit[j].value = ExpectedValue::Literal(v.clone());
            }
            typed_value(&num, &v, &ptr)
        }) {
            Ok(Typed::Num(value)) => method.push(CMethod {
                id: m.id.clone(),
                value,
                points: m.points,
                tol: m.tolerance,
                feedback: m.feedback.clone(),
            }),
            Ok(_) => problems.push(RubricProblem::new(ptr, "expected a number")),
            Err(p) => problems.push(p),
        }
    }
    // Follow-through.
    let mut follow = None;
    if let Some(ft) = &part.follow_through {
        let ptr = format!("{base}/follow_through");
        let from_index = rubric.parts.iter().position(|p| p.id == ft.from);
        let srcs: Vec<&String> = match &ft.expr {
            ExprList::One(s) => vec![s],
            ExprList::Many(v) => v.iter().collect(),
        };
        let mut exprs = Vec::new();
        for (j, s) in srcs.iter().enumerate() {
            match parse_expr(s) {
                Ok(e) => {
                    let stray: Vec<String> = e
                        .variables()
                        .into_iter()
                        .filter(|v| {
                            v != &ft.from
                                && v.strip_prefix(ft.from.as_str())
                                    .and_then(|r| r.strip_prefix('_'))
                                    .is_none_or(|n| n.parse::<usize>().is_err())
                        })
                        .collect();
                    if !stray.is_empty() {
                        problems.push(RubricProblem::new(
                            match &ft.expr {
                                ExprList::One(_) => format!("{ptr}/expr"),
                                ExprList::Many(_) => format!("{ptr}/expr/{j}"),
                            },
                            format!(
                                "unknown variable(s) {}: use {f} or {f}_0, {f}_1, ...",
                                stray.join(", "),
                                f = ft.from
                            ),
                        ));
                    }
                    exprs.push(e);
                }
                Err(m) => problems.push(RubricProblem::new(
                    match &ft.expr {
                        ExprList::One(_) => format!("{ptr}/expr"),
                        ExprList::Many(_) => format!("{ptr}/expr/{j}"),
                    },
                    m,
                )),
            }
        }
        if let Some(from_index) = from_index {
            follow = Some(CFollow {
                from_index,
                from_id: ft.from.clone(),
                exprs,
                points: ft.points.unwrap_or(max),
                plausible: ft.plausible.clone(),
                feedback: ft.feedback.clone(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let Some(kind) = kind else {
        return Err(vec![RubricProblem::new(
            base,
            "the part could not be compiled",
        )]);
    };
    Ok(CompiledPart {
        id: part.id.clone(),
        max,
        kind,
        key,
        alternatives,
        mistakes,
        deductions,
        method,
        follow,
        feedback: part.feedback.clone(),
    })
}

fn compile_kind(
    part: &super::model::Part,
    weight: Option<WeightKey>,
    base: &str,
) -> Result<Kind, Vec<RubricProblem>> {
    let max = part.max_points;
    Ok(match &part.answer {
        AnswerSpec::Number(s) => Kind::Number {
            tol: s.tolerance,
            fmt: NumberFormat {
                allow_percent: s.allow_percent,
                decimal_comma: s.decimal_comma,
            },
        },
        AnswerSpec::Integer(s) => Kind::Integer {
            fmt: NumberFormat {
                allow_percent: false,
                decimal_comma: s.decimal_comma,
            },
        },
        AnswerSpec::Shape(s) => Kind::Shape {
            order: s.order,
            scalar_shorthand: s.scalar_shorthand,
        },
        AnswerSpec::WeightShape(w) => {
            let Some(key) = weight else {
                return Err(vec![RubricProblem::new(
                    format!("{base}/answer/expected"),
                    "the weight key could not be read",
                )]);
            };
            Kind::Weight {
                key,
                accept: w
                    .accept
                    .iter()
                    .map(|c| (c.convention, c.points.unwrap_or(max), c.feedback.clone()))
                    .collect(),
            }
        }
        AnswerSpec::Vector(m) | AnswerSpec::Matrix(m) => Kind::Matrix {
            vector: matches!(part.answer, AnswerSpec::Vector(_)),
            tol: m.tolerance,
            eq: m.equivalences.clone(),
            per_entry: m.per_entry.as_ref().map(|p| p.points),
        },
        AnswerSpec::Expression(e) => Kind::Expression {
            opts: equiv_options(e),
        },
        AnswerSpec::Choice(c) => Kind::Choice {
            options: c
                .options
                .iter()
                .map(|o| (o.id.clone(), text::words(&o.text)))
                .collect(),
            correct: c
                .options
                .iter()
                .map(|o| c.correct.contains(&o.id))
                .collect(),
            multiple: c.multiple,
            scoring: c.scoring,
        },
        AnswerSpec::Concepts(c) => Kind::Concepts {
            groups: c
                .groups
                .iter()
                .map(|g| CGroup {
                    id: g.id.clone(),
                    points: g.points,
                    phrases: g.phrases.iter().map(|p| conjunction(p)).collect(),
                    partial: g
                        .partial
                        .iter()
                        .map(|p| {
                            (
                                p.phrases.iter().map(|s| conjunction(s)).collect(),
                                p.points,
                                p.feedback.clone(),
                            )
                        })
                        .collect(),
                    misspelled: g.misspelled,
                    feedback: g.feedback.clone(),
                    missing_feedback: g.missing_feedback.clone(),
                })
                .collect(),
        },
        AnswerSpec::FreeText(_) => Kind::FreeText,
    })
}

/// `upsampling + convolution` -> both word sequences must occur.
fn conjunction(p: &str) -> Phrase {
    p.split(" + ")
        .map(text::words)
        .filter(|w| !w.is_empty())
        .collect()
}
