//! Question templates and their variants.
//!
//! A rubric with a `template` is a question with parameters: each parameter
//! has the value printed in the exam (`default`) and a domain (a list of
//! values, or a range with a step). Strings of the rubric may hold
//! placeholders `{{expr}}`: an expression over the parameters and the
//! template's derived values. A string that is exactly one placeholder
//! becomes a JSON number (so compute requests can be parametrized); a
//! placeholder inside text is replaced by the number's shortest exact decimal.
//!
//! A variant is drawn from a seed: parameters are sampled with a SplitMix64
//! stream (defined here, so that the same rubric version and the same seed
//! give the same variant on every machine and in every release), the
//! constraints are checked, the rubric is instantiated, its keys computed,
//! and its self-tests run: the template's own `tests` (with placeholders) and
//! the generated ones (the model answer of every part scores full marks;
//! every alternative and mistake with a value scores its stated points). The
//! first draw that passes everything is the variant; a draw that fails is
//! never handed out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::compute::expr::Expr;

use super::grade::{GradeOptions, grade};
use super::model::{
    AnswerSpec, Answers, Convention, DeductionCondition, Rubric, RubricProblem, RubricTest,
    StudentAnswer,
};
use super::number::{parse_expr, render_num};
use super::resolve::{KeyResolver, Kind, Matcher, ResolvedRubric, Typed};
use super::selftest::{SelfTestFailure, SelfTestReport};
use super::shape::render_shape;
use super::validate::is_ident;

/// Most parameters of a template.
pub const MAX_PARAMETERS: usize = 64;
/// Most values in one parameter's domain.
pub const MAX_DOMAIN: u64 = 1_000_000;
/// Most draws while looking for an acceptable variant.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Largest seed: 2^53 - 1, exact in every JSON implementation.
pub const MAX_SEED: u64 = (1 << 53) - 1;

/// The parameters of a question template and the rules its variants obey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "parameters": {
        "n": {"default": 26, "min": 20, "max": 40},
        "k": {"default": 7, "values": [3, 5, 7]},
        "s": {"default": 3, "values": [1, 2, 3]}
    },
    "derived": {"out": "(n - k + 2)/s + 1"},
    "constraints": [{"expr": "out", "integer": true, "min": 2,
                     "message": "the output size is a whole number"}],
    "tests": [{"name": "spatial only", "answers": {"b": "{{out}}x{{out}}x3"}, "expected_score": 1}]
}))]
pub struct Template {
    /// Parameters by name (`[A-Za-z][A-Za-z0-9_]*`, not a function or
    /// constant name). Sampled in name order.
    pub parameters: BTreeMap<String, Parameter>,
    /// Values computed from the parameters (expressions over parameters
    /// only), usable in placeholders and constraints. Default: none.
    #[serde(default)]
    pub derived: BTreeMap<String, String>,
    /// Conditions every variant satisfies. Default: none.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Self-tests with placeholders, run on every variant (and on the
    /// default parameters). Default: none.
    #[serde(default)]
    pub tests: Vec<RubricTest>,
    /// Draws tried per seed before giving up, 1 to 1000. Default: 200.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    200
}

/// One parameter: the printed value and the domain variants draw from.
/// Give either `values`, or `min` and `max` (with `step`, default 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The value of the printed question (used when no seed is given).
    pub default: f64,
    /// The values a variant may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f64>>,
    /// Smallest value of a range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value of a range (reached when `max - min` is a multiple of `step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Spacing of a range, > 0. Default: 1. Values are `min + i*step`,
    /// rounded to the decimals of `step`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
}

/// A condition on an expression over parameters and derived values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// The expression, e.g. `(n - k + 2*p)/s + 1`.
    pub expr: String,
    /// The value must be a whole number (within 1e-9). Default: false.
    #[serde(default)]
    pub integer: bool,
    /// Smallest allowed value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Why the constraint exists, reported when a draw breaks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A template with its expressions parsed and its domains expanded.
struct Compiled {
    /// (name, domain size, value at index).
    params: Vec<(String, Domain)>,
    derived: Vec<(String, Expr)>,
    constraints: Vec<(usize, Expr, Constraint)>,
}

enum Domain {
    List(Vec<f64>),
    Range {
        min: f64,
        step: f64,
        count: u64,
        decimals: i32,
    },
}

impl Domain {
    fn len(&self) -> u64 {
        match self {
            Domain::List(v) => v.len() as u64,
            Domain::Range { count, .. } => *count,
        }
    }

    fn at(&self, i: u64) -> f64 {
        match self {
            Domain::List(v) => v[i as usize],
            Domain::Range {
                min,
                step,
                decimals,
                ..
            } => round_to(min + i as f64 * step, *decimals),
        }
    }

    fn contains(&self, x: f64) -> bool {
        match self {
            Domain::List(v) => v.iter().any(|y| (x - y).abs() <= 1e-9 * y.abs().max(1.0)),
            Domain::Range {
                min, step, count, ..
            } => {
                let i = ((x - min) / step).round();
                i >= 0.0
                    && (i as u64) < *count
                    && (self.at(i as u64) - x).abs() <= 1e-9 * x.abs().max(1.0)
            }
        }
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    if decimals <= 0 {
        return x.round();
    }
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// Decimal places of a step such as `0.25` (at most 12).
fn decimals_of(step: f64) -> i32 {
    (0..=12)
        .find(|&d| {
            let f = 10f64.powi(d);
            ((step * f).round() - step * f).abs() < 1e-9
        })
        .unwrap_or(12)
}

/// Names that the expression language reserves (functions and constants).
fn reserved(name: &str) -> bool {
    use crate::compute::expr::ast::{Constant, Func};
    Func::from_name(name).is_some()
        || [Constant::Pi, Constant::E].iter().any(|c| c.name() == name)
        || matches!(name, "π" | "inf" | "infinity")
}

impl Template {
    /// Checks the template and compiles it; every problem found is returned.
    fn compile(&self) -> Result<Compiled, Vec<RubricProblem>> {
        let mut v = Vec::new();
        let base = "/template";
        if self.parameters.is_empty() || self.parameters.len() > MAX_PARAMETERS {
            v.push(RubricProblem::new(
                format!("{base}/parameters"),
                format!("a template has 1 to {MAX_PARAMETERS} parameters"),
            ));
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            v.push(RubricProblem::new(
                format!("{base}/max_attempts"),
                format!("max_attempts is 1 to {MAX_ATTEMPTS}"),
            ));
        }
        let mut params = Vec::new();
        for (name, p) in &self.parameters {
            let ptr = format!("{base}/parameters/{name}");
            if !is_ident(name) || reserved(name) {
                v.push(RubricProblem::new(
                    &ptr,
                    format!(
                        "'{name}' cannot name a parameter: use a letter followed by letters, digits or '_' (at most 64), not a function or constant name"
                    ),
                ));
                continue;
            }
            match p.domain() {
                Ok(d) => {
                    if !p.default.is_finite() || !d.contains(p.default) {
                        v.push(RubricProblem::new(
                            format!("{ptr}/default"),
                            format!(
                                "the default {} is not one of the parameter's values",
                                render_num(p.default)
                            ),
                        ));
                    }
                    params.push((name.clone(), d));
                }
                Err((field, m)) => v.push(RubricProblem::new(format!("{ptr}{field}"), m)),
            }
        }
        let mut derived = Vec::new();
        for (name, src) in &self.derived {
            let ptr = format!("{base}/derived/{name}");
            if !is_ident(name) || reserved(name) || self.parameters.contains_key(name) {
                v.push(RubricProblem::new(
                    &ptr,
                    format!("'{name}' cannot name a derived value (invalid, reserved, or a parameter's name)"),
                ));
                continue;
            }
            match parse_over(src, |n| self.parameters.contains_key(n)) {
                Ok(e) => derived.push((name.clone(), e)),
                Err(m) => v.push(RubricProblem::new(&ptr, m)),
            }
        }
        let mut constraints = Vec::new();
        for (i, c) in self.constraints.iter().enumerate() {
            let ptr = format!("{base}/constraints/{i}");
            if c.min.is_some_and(|x| !x.is_finite()) || c.max.is_some_and(|x| !x.is_finite()) {
                v.push(RubricProblem::new(&ptr, "min and max are finite numbers"));
            }
            match parse_over(&c.expr, |n| {
                self.parameters.contains_key(n) || self.derived.contains_key(n)
            }) {
                Ok(e) => constraints.push((i, e, c.clone())),
                Err(m) => v.push(RubricProblem::new(format!("{ptr}/expr"), m)),
            }
        }
        if v.is_empty() {
            Ok(Compiled {
                params,
                derived,
                constraints,
            })
        } else {
            Err(v)
        }
    }
}

impl Parameter {
    fn domain(&self) -> Result<Domain, (&'static str, String)> {
        match (&self.values, self.min, self.max) {
            (Some(values), None, None) if self.step.is_none() => {
                if values.is_empty() || values.len() as u64 > MAX_DOMAIN {
                    return Err(("/values", format!("give 1 to {MAX_DOMAIN} values")));
                }
                if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                    return Err(("/values", format!("value {i} is not a finite number")));
                }
                Ok(Domain::List(values.clone()))
            }
            (None, Some(min), Some(max)) => {
                let step = self.step.unwrap_or(1.0);
                if !(min.is_finite() && max.is_finite() && min <= max) {
                    return Err((
                        "/max",
                        "min and max are finite numbers with min <= max".into(),
                    ));
                }
                if !(step.is_finite() && step > 0.0) {
                    return Err(("/step", "the step is a positive number".into()));
                }
                let n = ((max - min) / step + 1e-9).floor() + 1.0;
                if n > MAX_DOMAIN as f64 {
                    return Err((
                        "/step",
                        format!("the range has more than {MAX_DOMAIN} values; use a larger step"),
                    ));
                }
                Ok(Domain::Range {
                    min,
                    step,
                    count: n as u64,
                    decimals: decimals_of(step).max(decimals_of(min)),
                })
            }
            _ => Err((
                "",
                "give either `values`, or `min` and `max` (and optionally `step`)".into(),
            )),
        }
    }
}

/// Parses an expression whose variables must all satisfy `known`.
fn parse_over(src: &str, known: impl Fn(&str) -> bool) -> Result<Expr, String> {
    let e = parse_expr(src).map_err(|m| format!("the expression '{src}' cannot be read: {m}"))?;
    if let Some(unknown) = e.variables().into_iter().find(|n| !known(n)) {
        return Err(format!(
            "'{unknown}' in '{src}' is not a parameter or derived value of the template"
        ));
    }
    Ok(e)
}

/// A small, fully specified random stream (SplitMix64, Steele, Lea and
/// Flood 2014): the variants of a seed never change with a library update.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An index in `0..n` (Lemire's multiply-shift, no rejection).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// The values of one variant: parameters and derived values.
pub type Values = BTreeMap<String, f64>;

impl Compiled {
    /// Derived values added to `params`; then the first broken constraint.
    fn evaluate(&self, params: &Values) -> Result<Values, String> {
        let mut all = params.clone();
        for (name, e) in &self.derived {
            let x = e
                .eval(&|n| params.get(n).copied())
                .map_err(|err| format!("derived value '{name}' cannot be computed: {err}"))?;
            if !x.is_finite() {
                return Err(format!("derived value '{name}' is not finite"));
            }
            all.insert(name.clone(), x);
        }
        for (i, e, c) in &self.constraints {
            let why = c
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let x = e
                .eval(&|n| all.get(n).copied())
                .map_err(|err| format!("constraint {i} '{}' cannot be evaluated: {err}", c.expr))?;
            let broken = !x.is_finite()
                || (c.integer && (x - x.round()).abs() > 1e-9)
                || c.min.is_some_and(|m| x < m - 1e-9)
                || c.max.is_some_and(|m| x > m + 1e-9);
            if broken {
                return Err(format!(
                    "constraint {i} '{}' fails: it is {}{why}",
                    c.expr,
                    render_num(x)
                ));
            }
        }
        Ok(all)
    }

    fn defaults(template: &Template) -> Values {
        template
            .parameters
            .iter()
            .map(|(n, p)| (n.clone(), p.default))
            .collect()
    }

    fn draw(&self, rng: &mut SplitMix64) -> Values {
        self.params
            .iter()
            .map(|(n, d)| (n.clone(), d.at(rng.below(d.len()))))
            .collect()
    }
}

/// Replaces the placeholders of every string in `doc`.
fn substitute(doc: &mut Value, values: &Values, ptr: &str) -> Result<(), RubricProblem> {
    match doc {
        Value::String(s) => {
            if let Some(new) = substitute_str(s, values).map_err(|m| RubricProblem::new(ptr, m))? {
                *doc = new;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, values, &format!("{ptr}/{i}"))?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.replace('~', "~0").replace('/', "~1");
                substitute(item, values, &format!("{ptr}/{key}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `Some(replacement)` when `s` holds placeholders.
fn substitute_str(s: &str, values: &Values) -> Result<Option<Value>, String> {
    if !s.contains("{{") {
        return Ok(None);
    }
    let eval = |src: &str| -> Result<f64, String> {
        let e = parse_over(src.trim(), |n| values.contains_key(n))?;
        let x = e
            .eval(&|n| values.get(n).copied())
            .map_err(|err| format!("the placeholder {{{{{src}}}}} cannot be evaluated: {err}"))?;
        if x.is_finite() {
            Ok(x)
        } else {
            Err(format!("the placeholder {{{{{src}}}}} is not finite"))
        }
    };
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
    {
        return Ok(Some(number_json(eval(inner)?)));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("a placeholder in '{s}' has no closing '}}}}'"))?;
        out.push_str(&text_num(eval(&after[..end])?));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Some(Value::String(out)))
}

/// A number for text: 12 significant digits, so that `0.2*0.7 + 0.42`
/// reads `0.56`, not `0.5599999999999999`; `-0` reads `0`.
fn text_num(x: f64) -> String {
    let rounded: f64 = format!("{x:.11e}").parse().unwrap_or(x);
    render_num(if rounded == 0.0 { 0.0 } else { rounded })
}

/// A whole number as a JSON integer (so engines reading sizes accept it).
pub fn number_json(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// One concrete question drawn from a template.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The seed (None for the printed question's default parameters).
    pub seed: Option<u64>,
    /// The drawn parameters.
    pub parameters: Values,
    /// The derived values.
    pub derived: Values,
    /// Draws made for this seed, the accepted one included.
    pub draws: u32,
    /// The concrete, compiled rubric of this variant.
    pub resolved: std::sync::Arc<ResolvedRubric>,
    /// Its self-tests (all passed).
    pub self_tests: SelfTestReport,
}

/// Why no variant could be made.
#[derive(Debug, Clone, PartialEq)]
pub enum VariantError {
    /// The rubric has no template.
    NotATemplate,
    /// The template itself is invalid.
    Invalid(Vec<RubricProblem>),
    /// No draw passed within `max_attempts`; the first few reasons.
    Exhausted { attempts: u32, reasons: Vec<String> },
}

impl std::fmt::Display for VariantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VariantError::NotATemplate => write!(f, "the rubric has no template"),
            VariantError::Invalid(p) => write!(
                f,
                "the template is not valid: {}",
                p.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            VariantError::Exhausted { attempts, reasons } => write!(
                f,
                "no acceptable variant in {attempts} draws; for example: {}",
                reasons.join("; ")
            ),
        }
    }
}

impl Rubric {
    /// This rubric with the placeholders replaced by `values` and no
    /// template; `tests` are the rubric's own tests (only when `keep_tests`)
    /// followed by the template's.
    fn instantiate(&self, values: &Values, keep_tests: bool) -> Result<Rubric, Vec<RubricProblem>> {
        let template = self.template.as_ref();
        let mut plain = self.clone();
        plain.template = None;
        if !keep_tests {
            plain.tests.clear();
        }
        if let Some(t) = template {
            plain.tests.extend(t.tests.iter().cloned());
        }
        let mut doc = serde_json::to_value(&plain).map_err(|e| {
            vec![RubricProblem::new(
                "",
                format!("cannot encode the rubric: {e}"),
            )]
        })?;
        substitute(&mut doc, values, "").map_err(|p| vec![p])?;
        serde_json::from_value(doc).map_err(|e| {
            vec![RubricProblem::new(
                "",
                format!("the rubric with placeholders replaced is not valid: {e}"),
            )]
        })
    }

    /// The rubric of the printed question: placeholders replaced by the
    /// parameters' defaults (the rubric itself when it has no template).
    pub fn with_defaults(&self) -> Result<std::borrow::Cow<'_, Rubric>, Vec<RubricProblem>> {
        let Some(t) = &self.template else {
            return Ok(std::borrow::Cow::Borrowed(self));
        };
        let compiled = t.compile()?;
        let values = compiled.evaluate(&Compiled::defaults(t)).map_err(|m| {
            vec![RubricProblem::new(
                "/template/parameters",
                format!("the default parameters break the template: {m}"),
            )]
        })?;
        Ok(std::borrow::Cow::Owned(self.instantiate(&values, true)?))
    }

    /// Draws the variant of `seed` (deterministic for a given rubric).
    pub fn variant(&self, seed: u64, resolver: &dyn KeyResolver) -> Result<Variant, VariantError> {
        self.variant_capped(seed, resolver, MAX_ATTEMPTS)
    }

    /// [`Rubric::variant`] with at most `cap` draws: a template asking for
    /// more `max_attempts` is invalid.
    pub fn variant_capped(
        &self,
        seed: u64,
        resolver: &dyn KeyResolver,
        cap: u32,
    ) -> Result<Variant, VariantError> {
        let t = self.template.as_ref().ok_or(VariantError::NotATemplate)?;
        if t.max_attempts > cap {
            return Err(VariantError::Invalid(vec![RubricProblem::new(
                "/template/max_attempts",
                format!("this server draws at most {cap} times per seed (max_variant_attempts)"),
            )]));
        }
        let compiled = t.compile().map_err(VariantError::Invalid)?;
        let mut rng = SplitMix64(seed);
        let mut reasons = Vec::new();
        let note = |reasons: &mut Vec<String>, attempt: u32, m: String| {
            if reasons.len() < 5 {
                reasons.push(format!("draw {attempt}: {m}"));
            }
        };
        for attempt in 1..=t.max_attempts {
            let params = compiled.draw(&mut rng);
            let values = match compiled.evaluate(&params) {
                Ok(v) => v,
                Err(m) => {
                    note(&mut reasons, attempt, m);
                    continue;
                }
            };
            match self.checked_variant(&values, resolver) {
                Ok((resolved, self_tests)) => {
                    let derived = values
                        .iter()
                        .filter(|(n, _)| !params.contains_key(*n))
                        .map(|(n, x)| (n.clone(), *x))
                        .collect();
                    return Ok(Variant {
                        seed: Some(seed),
                        parameters: params,
                        derived,
                        draws: attempt,
                        resolved: std::sync::Arc::new(resolved),
                        self_tests,
                    });
                }
                Err(m) => note(&mut reasons, attempt, m),
            }
        }
        Err(VariantError::Exhausted {
            attempts: t.max_attempts,
            reasons,
        })
    }

    /// Instantiates, resolves and self-tests one set of values.
    fn checked_variant(
        &self,
        values: &Values,
        resolver: &dyn KeyResolver,
    ) -> Result<(ResolvedRubric, SelfTestReport), String> {
        let describe = |p: Vec<RubricProblem>| {
            p.iter()
                .take(3)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let rubric = self.instantiate(values, false).map_err(describe)?;
        let resolved = rubric.resolve_keys(resolver).map_err(describe)?;
        let report = resolved.run_all_self_tests();
        if let Some(f) = report.failures.first() {
            return Err(format!(
                "self-test '{}' fails: {}",
                f.name,
                f.mismatches.join("; ")
            ));
        }
        Ok((resolved, report))
    }
}

/// A complete answer that matches a typed value, in the part's syntax, with
/// every digit of the value (so any tolerance accepts it).
fn answer_text(kind: &Kind, value: &Typed, max: f64) -> Option<String> {
    Some(match (kind, value) {
        (Kind::Number { .. } | Kind::Integer { .. }, Typed::Num(x)) => format!("{}", x + 0.0),
        (Kind::Shape { .. }, Typed::Dims(d)) => render_shape(d),
        (Kind::Weight { key, accept }, Typed::Dims(_)) => {
            // The key in the first layout accepted at full points.
            let full = accept
                .iter()
                .find(|(_, points, _)| *points >= max)
                .map(|(c, _, _)| *c)
                .or_else(|| accept.first().map(|(c, _, _)| *c))
                .unwrap_or(Convention::Pytorch);
            render_shape(&key.layout(full))
        }
        (Kind::Matrix { vector, .. }, Typed::Mat(m)) => {
            // `+ 0.0` turns -0 into 0.
            let rows: Vec<Vec<f64>> = m
                .to_rows()
                .into_iter()
                .map(|r| r.into_iter().map(|x| x + 0.0).collect())
                .collect();
            if *vector && rows.len() == 1 {
                serde_json::to_string(&rows[0]).ok()?
            } else {
                serde_json::to_string(&rows).ok()?
            }
        }
        (Kind::Expression { .. }, Typed::Ex(e)) => e.to_string(),
        _ => return None,
    })
}

impl ResolvedRubric {
    /// The answers that score full marks on every part whose key can be
    /// written as an answer (all parts but concept, choice-free and
    /// free-text ones), by part id.
    pub fn model_answers(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for p in &self.parts {
            let text = match (&p.kind, &p.key) {
                (
                    Kind::Choice {
                        options, correct, ..
                    },
                    _,
                ) => Some(
                    options
                        .iter()
                        .zip(correct)
                        .filter(|(_, c)| **c)
                        .map(|((id, _), _)| id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                (kind, Some(key)) => answer_text(kind, key, p.max),
                _ => None,
            };
            if let Some(t) = text {
                out.insert(p.id.clone(), t);
            }
        }
        out
    }

    /// Generated self-tests: the model answers score full marks (less the
    /// `no_working` deductions, as no working is sent), and every alternative
    /// and mistake given by a value scores exactly its points.
    pub fn run_generated_tests(&self) -> SelfTestReport {
        let model = self.model_answers();
        let answers = Answers::from_pairs(model.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut cases: Vec<(String, Answers, String, f64)> = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            let no_working: f64 = self.rubric.parts[i]
                .deductions
                .iter()
                .filter(|d| matches!(d.when, DeductionCondition::NoWorking))
                .map(|d| d.points)
                .sum();
            let after = |points: f64| {
                if points > 0.0 {
                    (points - no_working).max(0.0)
                } else {
                    0.0
                }
            };
            if model.contains_key(&p.id) {
                cases.push((
                    format!("model answer of part {}", p.id),
                    answers.clone(),
                    p.id.clone(),
                    after(p.max),
                ));
            }
            if matches!(self.rubric.parts[i].answer, AnswerSpec::WeightShape(_)) {
                continue;
            }
            for rule in p.alternatives.iter().chain(&p.mistakes) {
                let Matcher::Value(v) = &rule.matcher else {
                    continue;
                };
                let Some(text) = answer_text(&p.kind, v, p.max) else {
                    continue;
                };
                let mut a = answers.clone();
                a.0.insert(p.id.clone(), StudentAnswer::Text(text));
                cases.push((
                    format!("rule {} of part {}", rule.id, p.id),
                    a,
                    p.id.clone(),
                    after(rule.points),
                ));
            }
        }
        let mut failures = Vec::new();
        for (i, (name, answers, part, want)) in cases.iter().enumerate() {
            let r = grade(self, answers, &GradeOptions::default());
            let Some(got) = r.parts.iter().find(|p| &p.part_id == part) else {
                continue;
            };
            if (got.points - want).abs() > 1e-9 {
                failures.push(SelfTestFailure {
                    pointer: format!("/generated/{i}"),
                    name: name.clone(),
                    expected_score: *want,
                    actual_score: got.points,
                    mismatches: vec![format!(
                        "part {part}: expected {}, got {} (rule {}; answer {})",
                        render_num(*want),
                        render_num(got.points),
                        got.matched_rule.as_deref().unwrap_or("none"),
                        got.normalized_answer.as_deref().unwrap_or("unread")
                    )],
                });
            }
        }
        SelfTestReport {
            total: cases.len(),
            passed: cases.len() - failures.len(),
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::engines::Engines;
    use proptest::prelude::*;
    use serde_json::json;

    fn conv_template() -> Rubric {
        serde_json::from_value(json!({
            "title": "Convolution output size",
            "prompt": "{{f}} filters of {{k}}x{{k}}, stride {{s}}, padding {{p}} on a {{n}}x{{n}}x3 input: output size?",
            "parts": [{
                "id": "b", "max_points": 2,
                "answer": {"type": "shape", "expected": {"compute": {
                    "engine": "architecture",
                    "request": {"input_shape": ["{{n}}", "{{n}}", 3], "layout": "HWC",
                        "layers": [{"type": "conv2d", "filters": "{{f}}", "kernel_size": "{{k}}",
                                    "stride": "{{s}}", "padding": "{{p}}"}]},
                    "select": "/layers/0/output_shape"}}},
                "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": 1}],
                "mistakes": [{"id": "no_padding", "patch": {"/layers/0/padding": 0}, "points": 0.5}]
            }],
            "tests": [{"name": "printed", "answers": {"b": "8x8x5"}, "expected_score": 2}],
            "template": {
                "parameters": {
                    "n": {"default": 26, "min": 20, "max": 40},
                    "k": {"default": 7, "values": [3, 5, 7]},
                    "s": {"default": 3, "values": [1, 2, 3]},
                    "p": {"default": 1, "values": [0, 1, 2]},
                    "f": {"default": 5, "min": 2, "max": 16, "step": 1}
                },
                "derived": {"out": "(n - k + 2*p)/s + 1"},
                "constraints": [{"expr": "out", "integer": true, "min": 2,
                                 "message": "a whole output size"}],
                "tests": [{"name": "model", "answers": {"b": "{{out}}x{{out}}x{{f}}"}, "expected_score": 2},
                          {"name": "spatial", "answers": {"b": "({{out}}, {{out}}, {{f + 1}})"}, "expected_score": 1}]
            }
        }))
        .expect("a valid template rubric")
    }

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn the_default_parameters_give_the_printed_question() {
        let rubric = conv_template();
        let resolved = rubric.resolve_keys(&Engines::default()).expect("resolves");
        assert_eq!(
            resolved.rubric().prompt,
            "5 filters of 7x7, stride 3, padding 1 on a 26x26x3 input: output size?"
        );
        assert!(resolved.rubric().template.is_none());
        let report = resolved.run_all_self_tests();
        assert_eq!(report.failures, vec![]);
        // printed test + two template tests + model answer + no_padding rule
        assert_eq!(report.total, 5);
        assert_eq!(resolved.model_answers()["b"], "(8, 8, 5)");
    }

    #[test]
    fn a_seed_always_gives_the_same_variant_and_seeds_differ() {
        let rubric = conv_template();
        let engines = Engines::default();
        let a = rubric.variant(7, &engines).expect("variant");
        let b = rubric.variant(7, &engines).expect("variant");
        assert_eq!(a.parameters, b.parameters);
        assert_eq!(a.resolved.rubric(), b.resolved.rubric());
        let distinct: std::collections::BTreeSet<String> = (0..20)
            .map(|s| {
                format!(
                    "{:?}",
                    rubric.variant(s, &engines).expect("variant").parameters
                )
            })
            .collect();
        assert!(
            distinct.len() >= 15,
            "only {} distinct variants",
            distinct.len()
        );
    }

    #[test]
    fn a_variant_where_a_mistake_gives_the_key_is_never_handed_out() {
        // With padding 0 the no-padding mistake equals the key: such draws
        // fail the generated self-test of rule no_padding.
        let rubric = conv_template();
        let engines = Engines::default();
        let mut rejected_some = false;
        for seed in 0..40 {
            let v = rubric.variant(seed, &engines).expect("variant");
            assert_ne!(v.parameters["p"], 0.0, "seed {seed}");
            rejected_some |= v.draws > 1;
        }
        assert!(rejected_some);
    }

    #[test]
    fn no_acceptable_draw_is_an_error_naming_the_constraint() {
        let mut rubric = conv_template();
        let t = rubric.template.as_mut().expect("template");
        t.constraints.push(Constraint {
            expr: "n".into(),
            integer: false,
            min: Some(100.0),
            max: None,
            message: Some("a large input".into()),
        });
        t.max_attempts = 10;
        match rubric.variant(1, &Engines::default()) {
            Err(VariantError::Exhausted { attempts, reasons }) => {
                assert_eq!(attempts, 10);
                assert_eq!(reasons.len(), 5);
                assert!(
                    reasons
                        .iter()
                        .any(|r| r.contains("constraint 1 'n' fails")
                            && r.contains("(a large input)")),
                    "{reasons:?}"
                );
            }
            other => panic!("expected exhaustion, got {other:?}"),
        }
    }

    #[test]
    fn invalid_templates_are_reported_with_pointers() {
        let mut rubric = conv_template();
        let t = rubric.template.as_mut().expect("template");
        t.parameters.get_mut("k").expect("k").default = 4.0;
        t.parameters.insert(
            "sin".into(),
            Parameter {
                default: 1.0,
                values: Some(vec![1.0]),
                min: None,
                max: None,
                step: None,
            },
        );
        t.parameters.insert(
            "q".into(),
            Parameter {
                default: 1.0,
                values: Some(vec![1.0]),
                min: Some(0.0),
                max: Some(2.0),
                step: None,
            },
        );
        t.derived.insert("bad".into(), "n + zz".into());
        let problems = t.compile().err().expect("invalid");
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert!(
            pointers.contains(&"/template/parameters/k/default"),
            "{problems:?}"
        );
        assert!(
            pointers.contains(&"/template/parameters/sin"),
            "{problems:?}"
        );
        assert!(pointers.contains(&"/template/parameters/q"), "{problems:?}");
        assert!(pointers.contains(&"/template/derived/bad"), "{problems:?}");
        assert!(matches!(
            rubric.variant(0, &Engines::default()),
            Err(VariantError::Invalid(_))
        ));
        let plain: Rubric = serde_json::from_value(json!({"title": "t",
            "parts": [{"id": "a", "max_points": 1, "answer": {"type": "integer", "expected": 1}}]}))
        .expect("rubric");
        assert!(matches!(
            plain.variant(0, &Engines::default()),
            Err(VariantError::NotATemplate)
        ));
    }

    #[test]
    fn placeholders_become_numbers_or_text() {
        let values: Values = [("n".to_string(), 26.0), ("w".to_string(), 0.25)].into();
        assert_eq!(substitute_str("{{n}}", &values), Ok(Some(json!(26))));
        assert_eq!(substitute_str(" {{ w*2 }} ", &values), Ok(Some(json!(0.5))));
        assert_eq!(
            substitute_str("a {{n}}x{{n}} input, w = {{w}}", &values),
            Ok(Some(json!("a 26x26 input, w = 0.25")))
        );
        assert_eq!(substitute_str("no placeholder", &values), Ok(None));
        assert_eq!(
            substitute_str("{{0.2*0.7 + 0.42}} and {{-0*w}} and {{1/3}}", &values),
            Ok(Some(json!("0.56 and 0 and 0.333333333333")))
        );
        assert!(
            substitute_str("{{n", &values)
                .unwrap_err()
                .contains("no closing")
        );
        assert!(
            substitute_str("{{m}}", &values)
                .unwrap_err()
                .contains("'m'")
        );
        let mut doc = json!({"a": [1, {"b/c": "{{n/0}}"}]});
        let err = substitute(&mut doc, &values, "").unwrap_err();
        assert_eq!(err.pointer, "/a/1/b~1c");
    }

    #[test]
    fn ranges_with_decimal_steps_give_exact_decimals() {
        let p = Parameter {
            default: 0.3,
            values: None,
            min: Some(0.1),
            max: Some(0.9),
            step: Some(0.1),
        };
        let d = p.domain().expect("domain");
        assert_eq!(d.len(), 9);
        assert_eq!(d.at(2), 0.3);
        assert!(d.contains(0.3) && !d.contains(0.35) && !d.contains(1.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_variant_obeys_its_constraints_and_its_key_is_the_formula(seed in 0..=MAX_SEED) {
            let v = conv_template().variant(seed, &Engines::default()).expect("variant");
            let [n, k, s, p, f] = ["n", "k", "s", "p", "f"].map(|x| v.parameters[x]);
            let out = (n - k + 2.0 * p) / s + 1.0;
            prop_assert_eq!(out.fract(), 0.0);
            prop_assert!(out >= 2.0 && p > 0.0);
            prop_assert_eq!(v.derived["out"], out);
            prop_assert_eq!(
                v.resolved.model_answers()["b"].clone(),
                format!("({out}, {out}, {f})")
            );
            let start = format!("{f} filters of {k}x{k}");
            prop_assert!(v.resolved.rubric().prompt.starts_with(&start));
            prop_assert!(v.self_tests.failures.is_empty() && v.self_tests.total == 4);
        }
    }
}
