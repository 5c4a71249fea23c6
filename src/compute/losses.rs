//! Loss functions: value AND gradient with respect to the predictions, with
//! worked steps.
//!
//! Conventions (documented per field of [`LossConfig`]):
//! - `reduction: "mean"` divides by the number of elements for elementwise
//!   losses (mse, sse, mae, bce, bce_with_logits, hinge) and by the number of
//!   samples (positions other than the class axis) for the cross-entropies,
//!   exactly as PyTorch's `reduction="mean"` and Keras' default
//!   `sum_over_batch_size`. `"sum"` adds everything up (PyTorch `"sum"`).
//! - `log_convention: "clamp_log"` (PyTorch `BCELoss`): every `ln` is clamped
//!   below at `log_floor` (default -100) and the BCE gradient is PyTorch's
//!   `(p - y) / max(p(1 - p), 1e-12)`. `"epsilon"` (Keras): probabilities are
//!   clipped to `[epsilon, 1 - epsilon]` (default 1e-7) before the log, and the
//!   categorical ones are first divided by their sum, as Keras does; clipped
//!   entries get zero gradient.
//! - hinge: targets in {-1, 1}; targets that are all 0/1 are mapped to -1/1
//!   first, as Keras does. `hinge'(margin = 0) = 0` (the relu convention).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::nn::Layout;
use super::nn::activation::{axis_split, paren, sigmoid};
use super::steps::{Step, fmt_num};
use super::tensor::{Tensor, shape_str, unravel};

/// Which loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error `(ŷ - y)^2` per element.
    Mse,
    /// Sum of squared errors with the 1/2 factor: `1/2 (ŷ - y)^2` per element
    /// (default reduction `sum`).
    Sse,
    /// Mean absolute error `|ŷ - y|` per element (`sign(0) = 0`).
    Mae,
    /// Binary cross-entropy on probabilities.
    #[serde(alias = "binary_crossentropy")]
    Bce,
    /// Binary cross-entropy on logits (sigmoid fused, numerically stable).
    #[serde(alias = "binary_crossentropy_with_logits")]
    BceWithLogits,
    /// Categorical cross-entropy on probabilities with one-hot/soft targets.
    CategoricalCrossentropy,
    /// Categorical cross-entropy on logits (softmax fused).
    CategoricalCrossentropyWithLogits,
    /// Categorical cross-entropy on probabilities with class-index targets.
    SparseCategoricalCrossentropy,
    /// Categorical cross-entropy on logits with class-index targets (PyTorch
    /// `CrossEntropyLoss` with class indices).
    SparseCategoricalCrossentropyWithLogits,
    /// Binary hinge `max(0, 1 - y ŷ)`.
    Hinge,
}

/// How per-element (or per-sample) losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    Mean,
    Sum,
}

/// How `log(0)` is avoided for losses on probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogConvention {
    /// Clamp every log at `log_floor` (PyTorch BCELoss: -100).
    #[default]
    ClampLog,
    /// Clip probabilities to `[epsilon, 1 - epsilon]` (Keras: 1e-7).
    Epsilon,
}

/// A loss function and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// The loss function.
    pub kind: LossKind,
    /// `mean` or `sum`. Default: `sum` for `sse`, `mean` for every other loss.
    #[serde(default)]
    pub reduction: Option<Reduction>,
    /// `clamp_log` (default, PyTorch) or `epsilon` (Keras). Only used by the
    /// losses on probabilities (bce, categorical/sparse categorical crossentropy).
    #[serde(default)]
    pub log_convention: Option<LogConvention>,
    /// Lower clamp of `ln` for `clamp_log`. Default -100 (PyTorch). Exams that say
    /// "assume log(0) ≈ -10^9" use -1e9.
    #[serde(default)]
    pub log_floor: Option<f64>,
    /// Clipping epsilon for `epsilon`. Default 1e-7 (Keras).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Class axis of the cross-entropies (negative counts from the end).
    /// Default: 1 for PyTorch layout (0 for rank-1 predictions), -1 for Keras.
    #[serde(default)]
    pub class_axis: Option<isize>,
}

impl LossConfig {
    /// A config with every option at its default.
    pub fn new(kind: LossKind) -> Self {
        Self {
            kind,
            reduction: None,
            log_convention: None,
            log_floor: None,
            epsilon: None,
            class_axis: None,
        }
    }

    pub fn reduction(&self) -> Reduction {
        self.reduction.unwrap_or(if self.kind == LossKind::Sse {
            Reduction::Sum
        } else {
            Reduction::Mean
        })
    }

    fn log_floor(&self) -> f64 {
        self.log_floor.unwrap_or(-100.0)
    }

    fn epsilon(&self) -> f64 {
        self.epsilon.unwrap_or(1e-7)
    }

    fn convention(&self) -> LogConvention {
        self.log_convention.unwrap_or_default()
    }

    fn validate(&self, ptr: &str) -> ComputeResult<()> {
        if let Some(f) = self.log_floor
            && !(f.is_finite() && f < 0.0)
        {
            return Err(ComputeError::new(
                format!("{ptr}/log_floor"),
                "log_floor must be a negative number",
            ));
        }
        if let Some(e) = self.epsilon
            && !(e > 0.0 && e < 0.5)
        {
            return Err(ComputeError::new(
                format!("{ptr}/epsilon"),
                "epsilon must be in (0, 0.5)",
            ));
        }
        Ok(())
    }

    fn is_categorical(&self) -> bool {
        matches!(
            self.kind,
            LossKind::CategoricalCrossentropy
                | LossKind::CategoricalCrossentropyWithLogits
                | LossKind::SparseCategoricalCrossentropy
                | LossKind::SparseCategoricalCrossentropyWithLogits
        )
    }

    fn is_sparse(&self) -> bool {
        matches!(
            self.kind,
            LossKind::SparseCategoricalCrossentropy
                | LossKind::SparseCategoricalCrossentropyWithLogits
        )
    }
}

/// Where the pieces of a loss computation sit in the request, for errors.
#[derive(Debug, Clone)]
pub struct LossPointers {
    pub predictions: String,
    pub targets: String,
    pub config: String,
}

/// A loss value, its gradient with respect to the predictions, and the
/// unreduced terms (one per element, or per sample for cross-entropies).
#[derive(Debug, Clone, PartialEq)]
pub struct LossEval {
    pub value: f64,
    pub grad: Tensor,
    pub terms: Vec<f64>,
    /// What the sum of terms was divided by (1 for `sum`).
    pub divisor: f64,
    /// Targets as used (after hinge 0/1 -> -1/1 mapping or sparse one-hot expansion).
    pub targets_used: Tensor,
}

/// Evaluates a loss and its gradient. No steps (cheap; used in training loops).
pub fn evaluate(
    cfg: &LossConfig,
    pred: &Tensor,
    target: &Tensor,
    layout: Layout,
    ptrs: &LossPointers,
) -> ComputeResult<LossEval> {
    cfg.validate(&ptrs.config)?;
    if cfg.is_categorical() {
        categorical(cfg, pred, target, layout, ptrs)
    } else {
        elementwise(cfg, pred, target, ptrs)
    }
}

fn elementwise(
    cfg: &LossConfig,
    pred: &Tensor,
    target: &Tensor,
    ptrs: &LossPointers,
) -> ComputeResult<LossEval> {
    if pred.shape() != target.shape() {
        return Err(ComputeError::new(
            &ptrs.targets,
            format!(
                "targets have shape {} but the predictions have shape {}; they must match",
                shape_str(target.shape()),
                shape_str(pred.shape())
            ),
        ));
    }
    let n = pred.len();
    let divisor = match cfg.reduction() {
        Reduction::Mean => n as f64,
        Reduction::Sum => 1.0,
    };
    let mut y: Vec<f64> = target.data().to_vec();
    if cfg.kind == LossKind::Hinge && y.iter().all(|&v| v == 0.0 || v == 1.0) {
        for v in &mut y {
            *v = 2.0 * *v - 1.0;
        }
    }
    if cfg.kind == LossKind::Bce
        && let Some(i) = pred.data().iter().position(|&p| !(0.0..=1.0).contains(&p))
    {
        return Err(ComputeError::new(
            &ptrs.predictions,
            format!(
                "bce needs probabilities in [0, 1] but element {i} is {} (use bce_with_logits for logits)",
                fmt_num(pred.data()[i])
            ),
        ));
    }
    let floor = cfg.log_floor();
    let eps = cfg.epsilon();
    let conv = cfg.convention();
    let mut terms = Vec::with_capacity(n);
    let mut grad = Vec::with_capacity(n);
    for (&p, &t) in pred.data().iter().zip(&y) {
        let (l, d) = match cfg.kind {
            LossKind::Mse => ((p - t) * (p - t), 2.0 * (p - t)),
            LossKind::Sse => (0.5 * (p - t) * (p - t), p - t),
            LossKind::Mae => ((p - t).abs(), sign(p - t)),
            LossKind::Bce => match conv {
                LogConvention::ClampLog => {
                    let l = -(t * p.ln().max(floor) + (1.0 - t) * (1.0 - p).ln().max(floor));
                    (l, (p - t) / ((1.0 - p) * p).max(1e-12))
                }
                LogConvention::Epsilon => {
                    let pc = p.clamp(eps, 1.0 - eps);
                    let l = -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln());
                    let d = if p > eps && p < 1.0 - eps {
                        -t / pc + (1.0 - t) / (1.0 - pc)
                    } else {
                        0.0
                    };
                    (l, d)
                }
            },
            LossKind::BceWithLogits => {
                let l = p.max(0.0) - p * t + (-p.abs()).exp().ln_1p();
                (l, sigmoid(p) - t)
            }
            LossKind::Hinge => {
                let m = 1.0 - t * p;
                if m > 0.0 { (m, -t) } else { (0.0, 0.0) }
            }
            _ => (0.0, 0.0),
        };
        terms.push(l);
        grad.push(d / divisor);
    }
    let value = terms.iter().sum::<f64>() / divisor;
    Ok(LossEval {
        value,
        grad: Tensor::new(pred.shape().to_vec(), grad)?,
        terms,
        divisor,
        targets_used: Tensor::new(target.shape().to_vec(), y)?,
    })
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Resolves the class axis of the predictions.
pub fn class_axis(cfg: &LossConfig, rank: usize, layout: Layout) -> isize {
    cfg.class_axis.unwrap_or(match layout {
        Layout::Pytorch => {
            if rank >= 2 {
                1
            } else {
                0
            }
        }
        Layout::Keras => -1,
    })
}

fn categorical(
    cfg: &LossConfig,
    pred: &Tensor,
    target: &Tensor,
    layout: Layout,
    ptrs: &LossPointers,
) -> ComputeResult<LossEval> {
    let axis = class_axis(cfg, pred.rank(), layout);
    let (outer, classes, inner) =
        axis_split(pred.shape(), axis, &format!("{}/class_axis", ptrs.config))?;
    let ax = if axis < 0 {
        axis + pred.rank() as isize
    } else {
        axis
    } as usize;
    // Targets as a dense (one-hot for sparse) tensor shaped like the predictions.
    let y: Vec<f64> = if cfg.is_sparse() {
        let mut expect: Vec<usize> = pred.shape().to_vec();
        expect.remove(ax);
        if target.shape() != expect.as_slice() {
            return Err(ComputeError::new(
                &ptrs.targets,
                format!(
                    "class-index targets must have shape {} (the predictions {} without the class axis {ax})",
                    shape_str(&expect),
                    shape_str(pred.shape())
                ),
            ));
        }
        let mut y = vec![0.0; pred.len()];
        for (k, &t) in target.data().iter().enumerate() {
            if t.fract() != 0.0 || t < 0.0 || t >= classes as f64 {
                let idx = unravel(k, target.shape());
                let suffix: String = idx.iter().map(|i| format!("/{i}")).collect();
                return Err(ComputeError::new(
                    format!("{}{suffix}", ptrs.targets),
                    format!(
                        "class index must be an integer in 0..{classes}, got {}",
                        fmt_num(t)
                    ),
                ));
            }
            let (o, i) = (k / inner, k % inner);
            y[(o * classes + t as usize) * inner + i] = 1.0;
        }
        y
    } else {
        if pred.shape() != target.shape() {
            return Err(ComputeError::new(
                &ptrs.targets,
                format!(
                    "targets have shape {} but the predictions have shape {}; they must match",
                    shape_str(target.shape()),
                    shape_str(pred.shape())
                ),
            ));
        }
        target.data().to_vec()
    };
    let on_probs = matches!(
        cfg.kind,
        LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy
    );
    if on_probs && let Some(i) = pred.data().iter().position(|&p| !(0.0..=1.0).contains(&p)) {
        return Err(ComputeError::new(
            &ptrs.predictions,
            format!(
                "{} needs probabilities in [0, 1] but element {i} is {} (use the _with_logits variant for logits)",
                kind_name(cfg.kind),
                fmt_num(pred.data()[i])
            ),
        ));
    }
    let samples = outer * inner;
    let divisor = match cfg.reduction() {
        Reduction::Mean => samples as f64,
        Reduction::Sum => 1.0,
    };
    let p = pred.data();
    let mut grad = vec![0.0; pred.len()];
    let mut terms = Vec::with_capacity(samples);
    let (floor, eps, conv) = (cfg.log_floor(), cfg.epsilon(), cfg.convention());
    for o in 0..outer {
        for i in 0..inner {
            let idx = |c: usize| (o * classes + c) * inner + i;
            let mut l = 0.0;
            if !on_probs {
                let m = (0..classes)
                    .map(|c| p[idx(c)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let lse = m
                    + (0..classes)
                        .map(|c| (p[idx(c)] - m).exp())
                        .sum::<f64>()
                        .ln();
                let ysum: f64 = (0..classes).map(|c| y[idx(c)]).sum();
                for c in 0..classes {
                    let k = idx(c);
                    l -= y[k] * (p[k] - lse);
                    grad[k] = ((p[k] - lse).exp() * ysum - y[k]) / divisor;
                }
            } else if conv == LogConvention::ClampLog {
                for c in 0..classes {
                    let k = idx(c);
                    let lg = p[k].ln();
                    if lg > floor {
                        l -= y[k] * lg;
                        grad[k] = -y[k] / p[k] / divisor;
                    } else {
                        l -= y[k] * floor;
                    }
                }
            } else {
                let s: f64 = (0..classes).map(|c| p[idx(c)]).sum();
                if s <= 0.0 {
                    return Err(ComputeError::new(
                        &ptrs.predictions,
                        "probabilities along the class axis sum to 0",
                    ));
                }
                let mut gq = vec![0.0; classes];
                let mut q = vec![0.0; classes];
                for c in 0..classes {
                    let k = idx(c);
                    q[c] = p[k] / s;
                    let qc = q[c].clamp(eps, 1.0 - eps);
                    l -= y[k] * qc.ln();
                    if q[c] > eps && q[c] < 1.0 - eps {
                        gq[c] = -y[k] / qc;
                    }
                }
                let dotq: f64 = gq.iter().zip(&q).map(|(a, b)| a * b).sum();
                for c in 0..classes {
                    grad[idx(c)] = (gq[c] - dotq) / s / divisor;
                }
            }
            terms.push(l);
        }
    }
    let value = terms.iter().sum::<f64>() / divisor;
    Ok(LossEval {
        value,
        grad: Tensor::new(pred.shape().to_vec(), grad)?,
        terms,
        divisor,
        targets_used: Tensor::new(pred.shape().to_vec(), y)?,
    })
}

fn kind_name(k: LossKind) -> &'static str {
    match k {
        LossKind::Mse => "mse",
        LossKind::Sse => "sse",
        LossKind::Mae => "mae",
        LossKind::Bce => "bce",
        LossKind::BceWithLogits => "bce_with_logits",
        LossKind::CategoricalCrossentropy => "categorical_crossentropy",
        LossKind::CategoricalCrossentropyWithLogits => "categorical_crossentropy_with_logits",
        LossKind::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        LossKind::SparseCategoricalCrossentropyWithLogits => {
            "sparse_categorical_crossentropy_with_logits"
        }
        LossKind::Hinge => "hinge",
    }
}

/// Worked steps for a loss value and its gradient, at most `cap` per-term lines.
pub fn explain(
    cfg: &LossConfig,
    pred: &Tensor,
    ev: &LossEval,
    layout: Layout,
    cap: usize,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let red = cfg.reduction();
    let (formula, latex) = match cfg.kind {
        LossKind::Mse => ("L_i = (ŷ_i - y_i)^2", "L_i = (\\hat y_i - y_i)^2"),
        LossKind::Sse => (
            "L_i = 1/2 (ŷ_i - y_i)^2",
            "L_i = \\tfrac12 (\\hat y_i - y_i)^2",
        ),
        LossKind::Mae => ("L_i = |ŷ_i - y_i|", "L_i = |\\hat y_i - y_i|"),
        LossKind::Bce => (
            "L_i = -[y_i ln(ŷ_i) + (1 - y_i) ln(1 - ŷ_i)]",
            "L_i = -[y_i \\ln \\hat y_i + (1 - y_i) \\ln(1 - \\hat y_i)]",
        ),
        LossKind::BceWithLogits => (
            "L_i = -[y_i ln σ(z_i) + (1 - y_i) ln(1 - σ(z_i))] = max(z_i, 0) - z_i y_i + ln(1 + e^(-|z_i|))",
            "L_i = \\max(z_i,0) - z_i y_i + \\ln(1 + e^{-|z_i|})",
        ),
        LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => (
            "L_n = -Σ_c y_nc ln(ŷ_nc)",
            "L_n = -\\sum_c y_{nc} \\ln \\hat y_{nc}",
        ),
        LossKind::CategoricalCrossentropyWithLogits
        | LossKind::SparseCategoricalCrossentropyWithLogits => (
            "L_n = -Σ_c y_nc ln softmax(z_n)_c = -Σ_c y_nc (z_nc - ln Σ_k e^(z_nk))",
            "L_n = -\\sum_c y_{nc} \\left(z_{nc} - \\ln \\sum_k e^{z_{nk}}\\right)",
        ),
        LossKind::Hinge => (
            "L_i = max(0, 1 - y_i ŷ_i)",
            "L_i = \\max(0, 1 - y_i \\hat y_i)",
        ),
    };
    steps.push(Step::new(
        format!("{}: {formula}", kind_name(cfg.kind)),
        latex,
    ));
    let uses_logs = matches!(
        cfg.kind,
        LossKind::Bce | LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy
    );
    if uses_logs {
        let s = match cfg.convention() {
            LogConvention::ClampLog => format!(
                "log(0) convention: ln is clamped at {} (PyTorch)",
                fmt_num(cfg.log_floor())
            ),
            LogConvention::Epsilon => format!(
                "log(0) convention: probabilities clipped to [{e}, 1 - {e}] (Keras){}",
                if cfg.is_categorical() {
                    ", after dividing by their sum"
                } else {
                    ""
                },
                e = fmt_num(cfg.epsilon())
            ),
        };
        steps.push(Step::new(s.clone(), format!("\\text{{{s}}}")));
    }
    if cfg.kind == LossKind::Hinge {
        steps.push(Step::new(
            "hinge targets taken in {-1, 1} (0/1 targets are mapped to -1/1, as Keras does)",
            "y \\in \\{-1, 1\\}",
        ));
    }
    let p = pred.data();
    let y = ev.targets_used.data();
    if cfg.is_categorical() {
        let axis = class_axis(cfg, pred.rank(), layout);
        if let Ok((_, classes, inner)) = axis_split(pred.shape(), axis, "") {
            for (s, &l) in ev.terms.iter().enumerate().take(cap) {
                let (o, i) = (s / inner, s % inner);
                let parts: Vec<String> = (0..classes)
                    .filter_map(|c| {
                        let k = (o * classes + c) * inner + i;
                        (y[k] != 0.0).then(|| {
                            if matches!(
                                cfg.kind,
                                LossKind::CategoricalCrossentropy
                                    | LossKind::SparseCategoricalCrossentropy
                            ) {
                                format!("{}*ln({})", fmt_num(y[k]), fmt_num(p[k]))
                            } else {
                                format!("{}*ln softmax(z)[{c}]", fmt_num(y[k]))
                            }
                        })
                    })
                    .collect();
                let body = if parts.is_empty() {
                    "0".to_string()
                } else {
                    parts.join(" + ")
                };
                let t = format!("L[{s}] = -({body}) = {}", fmt_num(l));
                steps.push(Step::new(t.clone(), latex_escape(&t)));
            }
        }
    } else {
        for (i, &l) in ev.terms.iter().enumerate().take(cap) {
            let (pi, yi) = (p[i], y[i]);
            let t = match cfg.kind {
                LossKind::Mse => format!(
                    "L[{i}] = ({} - {})^2 = {}",
                    fmt_num(pi),
                    paren(yi),
                    fmt_num(l)
                ),
                LossKind::Sse => format!(
                    "L[{i}] = 1/2*({} - {})^2 = {}",
                    fmt_num(pi),
                    paren(yi),
                    fmt_num(l)
                ),
                LossKind::Mae => format!(
                    "L[{i}] = |{} - {}| = {}",
                    fmt_num(pi),
                    paren(yi),
                    fmt_num(l)
                ),
                LossKind::Bce => format!(
                    "L[{i}] = -[{y}*ln({p}) + (1 - {y})*ln(1 - {p})] = {l}",
                    y = fmt_num(yi),
                    p = fmt_num(pi),
                    l = fmt_num(l)
                ),
                LossKind::BceWithLogits => format!(
                    "L[{i}] = max({z}, 0) - {z}*{y} + ln(1 + e^(-|{z}|)) = {l}",
                    z = fmt_num(pi),
                    y = fmt_num(yi),
                    l = fmt_num(l)
                ),
                _ => format!(
                    "L[{i}] = max(0, 1 - {}*{}) = {}",
                    fmt_num(yi),
                    paren(pi),
                    fmt_num(l)
                ),
            };
            steps.push(Step::new(t.clone(), latex_escape(&t)));
        }
    }
    if ev.terms.len() > cap {
        let t = format!(
            "… {} more terms not shown (step cap {cap})",
            ev.terms.len() - cap
        );
        steps.push(Step::new(t.clone(), format!("\\text{{{t}}}")));
    }
    let sum: f64 = ev.terms.iter().sum();
    let t = match red {
        Reduction::Sum => format!("L = Σ L = {}", fmt_num(ev.value)),
        Reduction::Mean => format!(
            "L = (1/{}) Σ L = {}/{} = {}",
            fmt_num(ev.divisor),
            fmt_num(sum),
            fmt_num(ev.divisor),
            fmt_num(ev.value)
        ),
    };
    steps.push(Step::new(t, format!("L = {}", fmt_num(ev.value))));
    let dformula = match cfg.kind {
        LossKind::Mse => "dL/dŷ_i = 2(ŷ_i - y_i)/D",
        LossKind::Sse => "dL/dŷ_i = (ŷ_i - y_i)/D",
        LossKind::Mae => "dL/dŷ_i = sign(ŷ_i - y_i)/D",
        LossKind::Bce => match cfg.convention() {
            LogConvention::ClampLog => "dL/dŷ_i = (ŷ_i - y_i)/max(ŷ_i(1 - ŷ_i), 1e-12)/D (PyTorch)",
            LogConvention::Epsilon => {
                "dL/dŷ_i = (-y_i/ŷ_i + (1 - y_i)/(1 - ŷ_i))/D (0 where clipped)"
            }
        },
        LossKind::BceWithLogits => "dL/dz_i = (σ(z_i) - y_i)/D",
        LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
            match cfg.convention() {
                LogConvention::ClampLog => "dL/dŷ_nc = -y_nc/ŷ_nc/D (0 where the log is clamped)",
                LogConvention::Epsilon => {
                    "with q = ŷ/Σŷ and g_c = -y_c/q_c (0 where clipped): dL/dŷ_c = (g_c - Σ_k g_k q_k)/Σŷ/D"
                }
            }
        }
        LossKind::CategoricalCrossentropyWithLogits
        | LossKind::SparseCategoricalCrossentropyWithLogits => {
            "dL/dz_nc = (softmax(z_n)_c Σ_k y_nk - y_nc)/D"
        }
        LossKind::Hinge => "dL/dŷ_i = -y_i/D if 1 - y_i ŷ_i > 0 else 0",
    };
    let t = format!("{dformula}, D = {}", fmt_num(ev.divisor));
    steps.push(Step::new(t.clone(), latex_escape(&t)));
    for (i, g) in ev.grad.data().iter().enumerate().take(cap) {
        let t = format!("dL/dŷ[{i}] = {}", fmt_num(*g));
        steps.push(Step::new(t.clone(), latex_escape(&t)));
    }
    if ev.grad.len() > cap {
        let t = format!(
            "… {} more gradient entries not shown (step cap {cap})",
            ev.grad.len() - cap
        );
        steps.push(Step::new(t.clone(), format!("\\text{{{t}}}")));
    }
    steps
}

/// Plain-text step rendered as LaTeX `\text{}` where it has no math markup.
pub fn latex_escape(s: &str) -> String {
    s.replace('*', " \\cdot ")
        .replace("Σ", "\\sum ")
        .replace("ŷ", "\\hat y")
        .replace("σ", "\\sigma")
        .replace("…", "\\ldots")
}

/// Loss-only request: predictions, targets and the loss options.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LossRequest {
    /// Predictions ŷ (probabilities or logits, per the loss kind), a number or
    /// nested array.
    #[schema(value_type = Object)]
    pub predictions: Value,
    /// Targets: same shape as `predictions`, or class indices (shape without
    /// the class axis) for the sparse cross-entropies.
    #[schema(value_type = Object)]
    pub targets: Value,
    /// The loss function and its options.
    pub loss: LossConfig,
    /// Layout used for the default class axis: `pytorch` (axis 1) or `keras`
    /// (last axis). Default `pytorch`.
    #[serde(default)]
    pub layout: Layout,
    /// Most per-term lines in the steps (default 64, at most 10000).
    #[serde(default)]
    pub max_steps: Option<usize>,
}

/// A loss value with its gradient and worked steps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LossReport {
    /// The reduced loss.
    pub value: f64,
    /// dL/d(predictions), same shape as the predictions.
    #[schema(value_type = Object)]
    pub gradient: Value,
    /// Unreduced terms: one per element (elementwise losses) or per sample
    /// (cross-entropies), flattened row-major.
    pub terms: Vec<f64>,
    /// The reduction applied.
    pub reduction: Reduction,
    /// What the sum of terms was divided by (1 for `sum`).
    pub divisor: f64,
    /// Worked steps: formula, per-term values, reduction, gradient.
    pub steps: Vec<crate::compute::steps::Step>,
}

/// Default and maximal per-section step counts.
pub const DEFAULT_STEP_CAP: usize = 64;
pub const MAX_STEP_CAP: usize = 10_000;

/// Computes a loss and its gradient with steps.
pub fn loss(req: &LossRequest, limits: &Limits) -> ComputeResult<LossReport> {
    let pred = Tensor::from_json(&req.predictions, "/predictions", limits)?;
    let targ = Tensor::from_json(&req.targets, "/targets", limits)?;
    let ptrs = LossPointers {
        predictions: "/predictions".into(),
        targets: "/targets".into(),
        config: "/loss".into(),
    };
    let ev = evaluate(&req.loss, &pred, &targ, req.layout, &ptrs)?;
    if !ev.value.is_finite() {
        return Err(ComputeError::new(
            "/predictions",
            "the loss overflows to a non-finite value",
        ));
    }
    let cap = req.max_steps.unwrap_or(DEFAULT_STEP_CAP).min(MAX_STEP_CAP);
    let steps = explain(&req.loss, &pred, &ev, req.layout, cap);
    Ok(LossReport {
        value: ev.value,
        gradient: ev.grad.to_json(),
        terms: ev.terms,
        reduction: req.loss.reduction(),
        divisor: ev.divisor,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], d: &[f64]) -> Tensor {
        Tensor::new(shape.to_vec(), d.to_vec()).unwrap()
    }

    fn ptrs() -> LossPointers {
        LossPointers {
            predictions: "/p".into(),
            targets: "/t".into(),
            config: "/l".into(),
        }
    }

    fn fd_check(cfg: &LossConfig, p: &Tensor, y: &Tensor) {
        let ev = evaluate(cfg, p, y, Layout::Pytorch, &ptrs()).unwrap();
        for k in 0..p.len() {
            let (mut a, mut b) = (p.clone(), p.clone());
            a.data_mut()[k] += 1e-7;
            b.data_mut()[k] -= 1e-7;
            let fa = evaluate(cfg, &a, y, Layout::Pytorch, &ptrs())
                .unwrap()
                .value;
            let fb = evaluate(cfg, &b, y, Layout::Pytorch, &ptrs())
                .unwrap()
                .value;
            let fd = (fa - fb) / 2e-7;
            assert!(
                (fd - ev.grad.data()[k]).abs() < 1e-6,
                "{:?} k={k}: {fd} vs {}",
                cfg.kind,
                ev.grad.data()[k]
            );
        }
    }

    #[test]
    fn sse_exam_value() {
        // BITS 4(b): ŷ = σ(2.32), y = 2.5, SSE = 1/2 (ŷ - y)^2.
        let yhat = sigmoid(2.32);
        let ev = evaluate(
            &LossConfig::new(LossKind::Sse),
            &t(&[1], &[yhat]),
            &t(&[1], &[2.5]),
            Layout::Pytorch,
            &ptrs(),
        )
        .unwrap();
        assert!((ev.value - 0.5 * (yhat - 2.5f64).powi(2)).abs() < 1e-15);
        assert!((ev.value - 1.2629).abs() < 1e-3);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let p = t(&[2, 3], &[0.2, 0.5, 0.3, 0.1, 0.6, 0.3]);
        let y = t(&[2, 3], &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        for kind in [
            LossKind::Mse,
            LossKind::Sse,
            LossKind::Mae,
            LossKind::Bce,
            LossKind::BceWithLogits,
            LossKind::CategoricalCrossentropy,
            LossKind::CategoricalCrossentropyWithLogits,
            LossKind::Hinge,
        ] {
            for red in [Reduction::Mean, Reduction::Sum] {
                for conv in [LogConvention::ClampLog, LogConvention::Epsilon] {
                    let cfg = LossConfig {
                        reduction: Some(red),
                        log_convention: Some(conv),
                        ..LossConfig::new(kind)
                    };
                    fd_check(&cfg, &p, &y);
                }
            }
        }
        let idx = t(&[2], &[1.0, 0.0]);
        fd_check(
            &LossConfig::new(LossKind::SparseCategoricalCrossentropyWithLogits),
            &p,
            &idx,
        );
        fd_check(
            &LossConfig::new(LossKind::SparseCategoricalCrossentropy),
            &p,
            &idx,
        );
    }

    #[test]
    fn log_conventions_differ_at_zero() {
        let p = t(&[1], &[0.0]);
        let y = t(&[1], &[1.0]);
        let clamp = evaluate(
            &LossConfig::new(LossKind::Bce),
            &p,
            &y,
            Layout::Pytorch,
            &ptrs(),
        )
        .unwrap();
        assert_eq!(clamp.value, 100.0);
        let exam = LossConfig {
            log_floor: Some(-1e9),
            ..LossConfig::new(LossKind::Bce)
        };
        assert_eq!(
            evaluate(&exam, &p, &y, Layout::Pytorch, &ptrs())
                .unwrap()
                .value,
            1e9
        );
        let keras = LossConfig {
            log_convention: Some(LogConvention::Epsilon),
            ..LossConfig::new(LossKind::Bce)
        };
        let v = evaluate(&keras, &p, &y, Layout::Pytorch, &ptrs())
            .unwrap()
            .value;
        assert!((v - -(1e-7f64).ln()).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_name_fields() {
        let e = evaluate(
            &LossConfig::new(LossKind::Bce),
            &t(&[1], &[1.5]),
            &t(&[1], &[1.0]),
            Layout::Pytorch,
            &ptrs(),
        )
        .unwrap_err();
        assert_eq!(e.pointer, "/p");
        let e = evaluate(
            &LossConfig::new(LossKind::SparseCategoricalCrossentropyWithLogits),
            &t(&[2, 3], &[0.0; 6]),
            &t(&[2], &[1.0, 3.0]),
            Layout::Pytorch,
            &ptrs(),
        )
        .unwrap_err();
        assert_eq!(e.pointer, "/t/1");
        let e = evaluate(
            &LossConfig::new(LossKind::Mse),
            &t(&[2], &[0.0; 2]),
            &t(&[3], &[0.0; 3]),
            Layout::Pytorch,
            &ptrs(),
        )
        .unwrap_err();
        assert_eq!(e.pointer, "/t");
    }
}
