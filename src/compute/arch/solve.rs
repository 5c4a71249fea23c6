//! Inverse questions: which integer value of one layer hyperparameter makes a
//! layer or the network reach a parameter count or an output shape?
//!
//! The unknown is marked by the string `"?"` as a layer field (also inside a
//! `Bidirectional`'s `layer`), or named by `unknown: {layer, field}`. Every
//! integer in the search range (default `1..=4096`, `0..=4096` for padding
//! fields) is tried with the exact arithmetic of [`super::analyze`]; every
//! value that hits the target is returned with its check. When none does and
//! the parameter count is a polynomial of degree <= 2 in the unknown (verified
//! on every candidate), the real roots of `params(x) = target` are given;
//! otherwise the nearest candidates on either side.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ArchitectureReport, ConventionUsed, conventions_used, layers::shape_str, run};
use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::limits::Limits;
use crate::compute::model::{
    ConvKind, Conventions, Layer, LayerKind, Layout, ModelSpec, Padding, escape_pointer_token,
};
use crate::compute::steps::{Step, fmt_num};

/// Default upper end of the search range.
pub const DEFAULT_SEARCH_MAX: u64 = 4096;
/// Most candidates one request may try.
pub const MAX_CANDIDATES: u64 = 100_000;
/// Most layer evaluations (candidates x layers) one request may cost.
pub const MAX_LAYER_EVALUATIONS: u64 = 4_000_000;

/// One candidate value with what it produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    /// The value of the unknown.
    pub value: u64,
    /// Parameter count it gives (of the target layer or the network).
    pub params: u64,
    /// Trainable parameter count it gives.
    pub trainable: u64,
    /// Output shape it gives (of the target layer or the network).
    pub output_shape: Vec<u64>,
    /// The check, e.g. `4*(5*(3 + 5) + 5) = 180 = target`.
    pub check: String,
}

/// The closed form solved over the reals: `params(x) = a x^2 + b x + c` when
/// it holds on every candidate, or the output-size formula without the floor
/// when the target is the output shape of the unknown's own window layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClosedForm {
    /// Coefficients `[a, b, c]` of the parameter polynomial (empty for a shape equation).
    pub coefficients: Vec<f64>,
    /// The equation solved, e.g. `4x^2 + 16x = 180`.
    pub equation: String,
    /// Real roots of `params(x) = target` (ascending).
    pub real_roots: Vec<f64>,
}

/// The unknown as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnknownInfo {
    /// Layer index.
    pub layer: usize,
    /// Field name as written in the request.
    pub field: String,
    /// JSON pointer of the field.
    pub pointer: String,
}

/// The answer of POST /v1/architecture/solve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SolveReport {
    /// The unknown.
    pub unknown: UnknownInfo,
    /// The target in words, e.g. `total params = 180`.
    pub target: String,
    /// Smallest value tried.
    pub search_min: u64,
    /// Largest value tried.
    pub search_max: u64,
    /// Every value in the range that reaches the target exactly (ascending).
    pub solutions: Vec<Candidate>,
    /// Closest candidates below/above the target when there is no solution.
    pub nearest: Vec<Candidate>,
    /// The polynomial and its real roots, when the parameter count is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_form: Option<ClosedForm>,
    /// Plain-language conclusion.
    pub message: String,
    /// Conventions used.
    pub conventions: Vec<ConventionUsed>,
    /// Worked steps.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Params(u64),
    Trainable(u64),
    Shape(Vec<u64>),
}

struct Located {
    layer: usize,
    /// Path inside the layer object (one key, or `layer`/key for Bidirectional).
    path: Vec<String>,
    pointer: String,
}

fn find_marks(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>, depth: usize) {
    if depth > 2 {
        return;
    }
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            path.push(k.clone());
            if x.as_str() == Some("?") {
                out.push(path.clone());
            } else if x.is_object() {
                find_marks(x, path, out, depth + 1);
            }
            path.pop();
        }
    }
}

fn set_path(v: &mut Value, path: &[String], x: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(m) = v.as_object_mut() else {
        return false;
    };
    if rest.is_empty() {
        m.insert(first.clone(), x);
        true
    } else {
        m.get_mut(first).is_some_and(|c| set_path(c, rest, x))
    }
}

fn get_u64(m: &serde_json::Map<String, Value>, key: &str, ptr: &str) -> ComputeResult<Option<u64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ComputeError::new(
                format!("{ptr}/{key}"),
                format!("`{key}` must be a whole number"),
            )
        }),
    }
}

/// Solves an inverse architecture question (the body of POST /v1/architecture/solve).
pub fn solve(req: &Value, limits: &Limits) -> ComputeResult<SolveReport> {
    let body = req
        .as_object()
        .ok_or_else(|| ComputeError::new("", "the request must be a JSON object"))?;
    for k in body.keys() {
        if !["model", "unknown", "target", "search"].contains(&k.as_str()) {
            return Err(ComputeError::new(
                format!("/{}", escape_pointer_token(k)),
                format!("unknown field `{k}`; expected model, unknown, target, search"),
            ));
        }
    }
    let model = body
        .get("model")
        .ok_or_else(|| ComputeError::new("/model", "`model` is required"))?;
    let layers_v = model
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| ComputeError::new("/model/layers", "`layers` must be an array"))?;
    if layers_v.len() > limits.max_layers {
        return Err(ComputeError::new(
            "/model/layers",
            format!(
                "{} layers exceed the limit of {}",
                layers_v.len(),
                limits.max_layers
            ),
        ));
    }

    // Locate the unknown.
    let mut marks = Vec::new();
    for (i, l) in layers_v.iter().enumerate() {
        let mut found = Vec::new();
        find_marks(l, &mut Vec::new(), &mut found, 0);
        marks.extend(found.into_iter().map(|p| (i, p)));
    }
    if marks.len() > 1 {
        let (i, p) = &marks[1];
        return Err(ComputeError::new(
            format!(
                "/model/layers/{i}/{}",
                p.iter()
                    .map(|s| escape_pointer_token(s))
                    .collect::<Vec<_>>()
                    .join("/")
            ),
            "only one field may be the unknown `?`",
        ));
    }
    let located = match (body.get("unknown"), marks.pop()) {
        (Some(u), mark) => {
            let um = u.as_object().ok_or_else(|| {
                ComputeError::new("/unknown", "`unknown` must be an object {layer, field}")
            })?;
            for k in um.keys() {
                if k != "layer" && k != "field" {
                    return Err(ComputeError::new(
                        format!("/unknown/{}", escape_pointer_token(k)),
                        format!("unknown field `{k}`; expected layer, field"),
                    ));
                }
            }
            let layer = get_u64(um, "layer", "/unknown")?
                .ok_or_else(|| ComputeError::new("/unknown/layer", "`layer` is required"))?
                as usize;
            let field = um
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| ComputeError::new("/unknown/field", "`field` must be a string"))?
                .to_string();
            if layer >= layers_v.len() {
                return Err(ComputeError::new(
                    "/unknown/layer",
                    format!(
                        "there is no layer {layer} (the model has {})",
                        layers_v.len()
                    ),
                ));
            }
            if let Some((mi, mp)) = mark
                && (mi != layer || mp.last() != Some(&field))
            {
                return Err(ComputeError::new(
                    "/unknown",
                    "`unknown` names a different field than the `?` in the model",
                ));
            }
            Located {
                layer,
                pointer: format!("/model/layers/{layer}/{}", escape_pointer_token(&field)),
                path: vec![field],
            }
        }
        (None, Some((layer, path))) => Located {
            layer,
            pointer: format!(
                "/model/layers/{layer}/{}",
                path.iter()
                    .map(|s| escape_pointer_token(s))
                    .collect::<Vec<_>>()
                    .join("/")
            ),
            path,
        },
        (None, None) => {
            return Err(ComputeError::new(
                "/unknown",
                "mark the unknown field with \"?\" or give unknown: {layer, field}",
            ));
        }
    };
    let field_name = located.path.last().cloned().unwrap_or_default();

    // Target.
    let tv = body
        .get("target")
        .and_then(Value::as_object)
        .ok_or_else(|| ComputeError::new("/target", "`target` must be an object"))?;
    for k in tv.keys() {
        if !["layer", "params", "trainable", "output_shape"].contains(&k.as_str()) {
            return Err(ComputeError::new(
                format!("/target/{}", escape_pointer_token(k)),
                format!("unknown field `{k}`; expected layer, params, trainable, output_shape"),
            ));
        }
    }
    let target_layer = get_u64(tv, "layer", "/target")?.map(|x| x as usize);
    if let Some(tl) = target_layer
        && tl >= layers_v.len()
    {
        return Err(ComputeError::new(
            "/target/layer",
            format!("there is no layer {tl} (the model has {})", layers_v.len()),
        ));
    }
    let mut targets = Vec::new();
    if let Some(p) = get_u64(tv, "params", "/target")? {
        targets.push(Target::Params(p));
    }
    if let Some(p) = get_u64(tv, "trainable", "/target")? {
        targets.push(Target::Trainable(p));
    }
    if let Some(s) = tv.get("output_shape") {
        let arr = s.as_array().ok_or_else(|| {
            ComputeError::new("/target/output_shape", "must be a list of whole numbers")
        })?;
        let mut shape = Vec::with_capacity(arr.len());
        for (i, d) in arr.iter().enumerate() {
            shape.push(d.as_u64().ok_or_else(|| {
                ComputeError::new(
                    format!("/target/output_shape/{i}"),
                    "must be a whole number",
                )
            })?);
        }
        targets.push(Target::Shape(shape));
    }
    let [target] = <[Target; 1]>::try_from(targets).map_err(|_| {
        ComputeError::new(
            "/target",
            "give exactly one of params, trainable, output_shape",
        )
    })?;

    // Search range.
    let is_padding = field_name.to_lowercase().contains("padding");
    let (mut lo, mut hi) = (u64::from(!is_padding), DEFAULT_SEARCH_MAX);
    if let Some(s) = body.get("search") {
        let sm = s
            .as_object()
            .ok_or_else(|| ComputeError::new("/search", "`search` must be an object {min, max}"))?;
        for k in sm.keys() {
            if k != "min" && k != "max" {
                return Err(ComputeError::new(
                    format!("/search/{}", escape_pointer_token(k)),
                    format!("unknown field `{k}`; expected min, max"),
                ));
            }
        }
        if let Some(x) = get_u64(sm, "min", "/search")? {
            lo = x;
        }
        if let Some(x) = get_u64(sm, "max", "/search")? {
            hi = x;
        }
    }
    if lo > hi {
        return Err(ComputeError::new(
            "/search",
            format!("min ({lo}) is above max ({hi})"),
        ));
    }
    let n_cand = hi - lo + 1;
    if n_cand > MAX_CANDIDATES {
        return Err(ComputeError::new(
            "/search",
            format!("{n_cand} candidates exceed the limit of {MAX_CANDIDATES}; narrow min..max"),
        ));
    }
    let work = n_cand.saturating_mul(layers_v.len() as u64 + 1);
    if work > MAX_LAYER_EVALUATIONS {
        return Err(ComputeError::new(
            "/search",
            format!(
                "{n_cand} candidates x {} layers exceed the limit of {MAX_LAYER_EVALUATIONS} layer evaluations; narrow min..max",
                layers_v.len()
            ),
        ));
    }

    // Parse everything except the unknown layer once.
    let unknown_layer = layers_v[located.layer].clone();
    let mut model_fixed = model.clone();
    if let Some(l) = model_fixed
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.get_mut(located.layer))
    {
        *l = serde_json::json!({"type": "Dropout"});
    }
    let mut spec = ModelSpec::from_json_at(&model_fixed, "/model")?;
    let conv: Conventions = spec.conventions.clone();
    let layer_ptr = format!("/model/layers/{}", located.layer);

    let mut evaluated: Vec<Candidate> = Vec::new();
    let mut first_err: Option<(u64, ComputeError)> = None;
    let mut unknown_input: Option<Vec<u64>> = None;
    for x in lo..=hi {
        let mut lv = unknown_layer.clone();
        if !set_path(&mut lv, &located.path, Value::from(x)) {
            return Err(ComputeError::new(
                &located.pointer,
                "the unknown field could not be set",
            ));
        }
        let outcome = Layer::from_json(&lv, &layer_ptr, &conv).and_then(|layer| {
            if let Some(slot) = spec.layers.get_mut(located.layer) {
                *slot = layer;
            }
            run(&spec, limits, false)
        });
        match outcome {
            Ok(rep) => {
                if unknown_input.is_none() {
                    unknown_input = rep.layers.get(located.layer).map(|l| l.input_shape.clone());
                }
                evaluated.push(candidate(x, &rep, target_layer));
            }
            Err(e) => {
                if e.message.contains("unknown field") && e.pointer == located.pointer {
                    return Err(e);
                }
                if first_err.is_none() {
                    first_err = Some((x, e));
                }
            }
        }
    }

    let target_text = describe_target(&target, target_layer);
    let hits = |c: &Candidate| match &target {
        Target::Params(p) => c.params == *p,
        Target::Trainable(p) => c.trainable == *p,
        Target::Shape(s) => c.output_shape == *s,
    };
    let target_value = match &target {
        Target::Params(p) | Target::Trainable(p) => Some(*p),
        Target::Shape(_) => None,
    };
    let metric = |c: &Candidate| match &target {
        Target::Trainable(_) => c.trainable,
        _ => c.params,
    };
    let mut closed_form =
        target_value.and_then(|t| fit_quadratic(&evaluated, metric, t, &field_name));
    if let Target::Shape(want) = &target
        && (target_layer == Some(located.layer)
            || (target_layer.is_none() && located.layer + 1 == spec.layers.len()))
        && let (Some(input), Some(layer)) = (&unknown_input, spec.layers.get(located.layer))
    {
        closed_form = shape_relaxation(&layer.kind, spec.layout, input, want, &field_name);
    }

    let mut steps = vec![Step::new(
        format!(
            "unknown x = `{field_name}` of layer {}; target: {target_text}; tried every integer x in {lo}..={hi} \
             ({} gave a valid architecture)",
            located.layer,
            evaluated.len()
        ),
        format!("x \\in \\{{{lo}, \\dots, {hi}\\}}"),
    )];
    if let Some(cf) = &closed_form {
        steps.push(Step::new(
            if cf.coefficients.is_empty() {
                format!(
                    "output size without the floor, solved for x: {}",
                    cf.equation
                )
            } else {
                format!("the parameter count is a polynomial in x: {}", cf.equation)
            },
            cf.equation.replace('*', " \\cdot "),
        ));
        let roots: Vec<String> = cf.real_roots.iter().map(|r| fmt_num(*r)).collect();
        steps.push(Step::new(
            if roots.is_empty() {
                "it has no real root".to_string()
            } else {
                format!("real root(s): x = {}", roots.join(", "))
            },
            if roots.is_empty() {
                "\\text{no real root}".to_string()
            } else {
                format!("x = {}", roots.join(",\\; "))
            },
        ));
    }
    let solutions: Vec<Candidate> = evaluated.iter().filter(|c| hits(c)).cloned().collect();
    for s in &solutions {
        steps.push(Step::new(
            format!("x = {}: {} (matches the target)", s.value, s.check),
            format!("x = {}: \\checkmark", s.value),
        ));
    }
    let mut nearest = Vec::new();
    if solutions.is_empty() {
        match &target {
            Target::Params(t) | Target::Trainable(t) => {
                let below = evaluated
                    .iter()
                    .filter(|c| metric(c) < *t)
                    .max_by_key(|c| (metric(c), c.value));
                let above = evaluated
                    .iter()
                    .filter(|c| metric(c) > *t)
                    .min_by_key(|c| (metric(c), c.value));
                nearest.extend(below.cloned());
                nearest.extend(above.cloned());
            }
            Target::Shape(s) => {
                let dist = |c: &Candidate| -> u64 {
                    if c.output_shape.len() != s.len() {
                        return u64::MAX;
                    }
                    c.output_shape
                        .iter()
                        .zip(s)
                        .map(|(a, b)| a.abs_diff(*b))
                        .fold(0u64, u64::saturating_add)
                };
                if let Some(best) = evaluated.iter().map(dist).min() {
                    nearest.extend(
                        evaluated
                            .iter()
                            .filter(|c| dist(c) == best)
                            .take(4)
                            .cloned(),
                    );
                }
            }
        }
        for c in &nearest {
            steps.push(Step::new(
                format!("nearest: x = {}: {}", c.value, c.check),
                format!("x = {}", c.value),
            ));
        }
    }
    let message = if !solutions.is_empty() {
        let vals: Vec<String> = solutions.iter().map(|s| s.value.to_string()).collect();
        format!("{field_name} = {} reaches {target_text}", vals.join(" or "))
    } else if evaluated.is_empty() {
        match first_err {
            Some((x, e)) => format!(
                "no value in {lo}..={hi} gives a valid architecture (e.g. x = {x}: {})",
                e.message
            ),
            None => format!("no value in {lo}..={hi} gives a valid architecture"),
        }
    } else {
        let roots = closed_form
            .as_ref()
            .map(|cf| {
                let r: Vec<String> = cf.real_roots.iter().map(|r| fmt_num(*r)).collect();
                if r.is_empty() {
                    "; the equation has no real root".to_string()
                } else {
                    format!(
                        "; the real root(s) x = {} are not whole numbers in range",
                        r.join(", ")
                    )
                }
            })
            .unwrap_or_default();
        format!("no integer {field_name} in {lo}..={hi} reaches {target_text}{roots}")
    };
    Ok(SolveReport {
        unknown: UnknownInfo {
            layer: located.layer,
            field: field_name,
            pointer: located.pointer,
        },
        target: target_text,
        search_min: lo,
        search_max: hi,
        solutions,
        nearest,
        closed_form,
        message,
        conventions: conventions_used(&conv),
        steps,
    })
}

/// Solves the output-size formula without the floor for the unknown (first
/// spatial axis): `out = (n + p_total - d(k - 1) - 1) / s + 1`.
fn shape_relaxation(
    kind: &LayerKind,
    layout: Layout,
    input: &[u64],
    want: &[u64],
    field: &str,
) -> Option<ClosedForm> {
    let (kernel, strides, dilation, padding) = match kind {
        LayerKind::Conv(c) if c.kind != ConvKind::Transposed => {
            (&c.kernel, Some(&c.strides), &c.dilation, &c.padding)
        }
        LayerKind::Pool(p) => (&p.kernel, p.strides.as_ref(), &p.dilation, &p.padding),
        _ => return None,
    };
    let axis = match layout {
        Layout::ChannelsFirst => 1,
        Layout::ChannelsLast => 0,
    };
    let (n, o) = (*input.get(axis)? as f64, *want.get(axis)? as f64);
    let k = *kernel.first()? as f64;
    let s = strides
        .and_then(|v| v.first().copied())
        .unwrap_or(*kernel.first()?) as f64;
    let d = *dilation.first()? as f64;
    let p_total = match padding {
        Padding::Valid => 0.0,
        Padding::Explicit(v) => v.first().map_or(0.0, |(a, b)| (*a + *b) as f64),
        Padding::Same => return None,
    };
    let f = field.to_lowercase().replace('_', "");
    let (equation, root) = if f.starts_with("stride") {
        if o <= 1.0 {
            return None;
        }
        let ke = d * (k - 1.0) + 1.0;
        (
            format!("({n} + {p_total} - {ke}) / s + 1 = {o}"),
            (n + p_total - ke) / (o - 1.0),
        )
    } else if f == "padding" {
        let ke = d * (k - 1.0) + 1.0;
        (
            format!("({n} + 2p - {ke}) / {s} + 1 = {o}"),
            ((o - 1.0) * s + ke - n) / 2.0,
        )
    } else if f == "kernelsize" || f == "poolsize" {
        (
            format!("({n} + {p_total} - {d}*(k - 1) - 1) / {s} + 1 = {o}"),
            (n + p_total - (o - 1.0) * s - 1.0) / d + 1.0,
        )
    } else {
        return None;
    };
    Some(ClosedForm {
        coefficients: Vec::new(),
        equation,
        real_roots: vec![root],
    })
}

fn describe_target(t: &Target, layer: Option<usize>) -> String {
    let scope = layer.map_or_else(|| "network".to_string(), |l| format!("layer {l}"));
    match t {
        Target::Params(p) => format!("{scope} params = {p}"),
        Target::Trainable(p) => format!("{scope} trainable params = {p}"),
        Target::Shape(s) => format!("{scope} output shape = {}", shape_str(s)),
    }
}

fn candidate(x: u64, rep: &ArchitectureReport, layer: Option<usize>) -> Candidate {
    match layer.and_then(|l| rep.layers.get(l)) {
        Some(l) => Candidate {
            value: x,
            params: l.params.total,
            trainable: l.params.trainable,
            output_shape: l.output_shape.clone(),
            check: format!(
                "layer {} params = {}; output {}",
                l.index,
                l.params.formula,
                shape_str(&l.output_shape)
            ),
        },
        None => {
            let with_params: Vec<&super::LayerReport> =
                rep.layers.iter().filter(|l| l.params.total > 0).collect();
            let sum = match with_params.as_slice() {
                [] => "0".to_string(),
                [one] => one
                    .params
                    .formula
                    .rsplit_once(" = ")
                    .map_or_else(|| one.params.formula.clone(), |(lhs, _)| lhs.to_string()),
                many => many
                    .iter()
                    .map(|l| l.params.total.to_string())
                    .collect::<Vec<_>>()
                    .join(" + "),
            };
            Candidate {
                value: x,
                params: rep.totals.params,
                trainable: rep.totals.trainable,
                output_shape: rep.output_shape.clone(),
                check: format!(
                    "params = {sum} = {}; output {}",
                    rep.totals.params,
                    shape_str(&rep.output_shape)
                ),
            }
        }
    }
}

/// Fits `2*f(x) = A x^2 + B x + C` exactly (integers) through three
/// consecutive candidates and keeps it only if it holds on every candidate
/// (at least four).
fn fit_quadratic(
    cands: &[Candidate],
    metric: impl Fn(&Candidate) -> u64,
    target: u64,
    name: &str,
) -> Option<ClosedForm> {
    if cands.len() < 4 {
        return None;
    }
    let i = cands
        .windows(3)
        .position(|w| w[1].value == w[0].value + 1 && w[2].value == w[1].value + 1)?;
    let x0 = i128::from(cands[i].value);
    let (f0, f1, f2) = (
        i128::from(metric(&cands[i])),
        i128::from(metric(&cands[i + 1])),
        i128::from(metric(&cands[i + 2])),
    );
    let a2 = f0 - 2 * f1 + f2;
    let b2 = 2 * (f1 - f0) - a2 * (2 * x0 + 1);
    let c2 = 2 * f0 - a2 * x0 * x0 - b2 * x0;
    for c in cands {
        let x = i128::from(c.value);
        if a2 * x * x + b2 * x + c2 != 2 * i128::from(metric(c)) {
            return None;
        }
    }
    let (a, b, c) = (a2 as f64 / 2.0, b2 as f64 / 2.0, c2 as f64 / 2.0);
    let t = target as f64;
    let mut roots = Vec::new();
    let cc = c - t;
    if a2 != 0 {
        let disc = b * b - 4.0 * a * cc;
        if disc >= 0.0 {
            let sq = disc.sqrt();
            // Numerically stable pair.
            let q = -0.5 * (b + b.signum() * sq);
            let r1 = if q != 0.0 { cc / q } else { -b / (2.0 * a) };
            let r2 = if q != 0.0 { q / a } else { r1 };
            roots.push(r1);
            if (r2 - r1).abs() > 0.0 {
                roots.push(r2);
            }
        }
    } else if b2 != 0 {
        roots.push(-cc / b);
    }
    roots.sort_by(f64::total_cmp);
    let mut terms = Vec::new();
    if a2 != 0 {
        terms.push(format!("{}*{name}^2", fmt_num(a)));
    }
    if b2 != 0 {
        terms.push(format!("{}*{name}", fmt_num(b)));
    }
    if c2 != 0 || terms.is_empty() {
        terms.push(fmt_num(c));
    }
    let equation = format!("{} = {target}", terms.join(" + ").replace("+ -", "- "));
    Some(ClosedForm {
        coefficients: vec![a, b, c],
        equation,
        real_roots: roots,
    })
}
