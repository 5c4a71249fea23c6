//! The perceptron learning rule, traced sample by sample as exam solutions
//! do, on a named truth table (AND, OR, NAND, NOR, XOR, XNOR with n inputs)
//! or on given samples, plus an exact linear-separability test.
//!
//! Rule: with net input `net = w·x + b` (bias convention) the output fires
//! when `net >= 0`; with the threshold convention `net = w·x` and the output
//! fires when `net >= θ`. Outputs are 1 / 0 (binary) or 1 / -1 (bipolar).
//! After each sample, `w ← w + η (t − y) x`, `b ← b + η (t − y)` (and, when
//! the threshold is learned, `θ ← θ − η (t − y)`). Training stops after the
//! first epoch without any update (converged) or at the epoch limit.
//!
//! Separability is decided exactly (not by whether the perceptron happened to
//! converge): the data are linearly separable iff the polyhedron
//! `{(w, b) : s_i (w·x_i + b) ≥ 1}` (s_i = ±1 by class) is non-empty. After
//! dropping dependent columns it is pointed, so if it is non-empty it has a
//! vertex where r linearly independent constraints are tight; all r-subsets
//! of samples are tried (r ≤ inputs + 1). This is exhaustive for up to
//! `MAX_SEPARABILITY_SUBSETS` subsets (every truth table with ≤ 4 inputs);
//! larger data get `linearly_separable: null`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::steps::{Step, fmt_num};

/// Most inputs of a named gate (2^10 truth-table rows).
pub const MAX_GATE_INPUTS: usize = 10;
/// Most samples in a data set.
pub const MAX_SAMPLES: usize = 4096;
/// Most inputs per sample.
pub const MAX_SAMPLE_INPUTS: usize = 64;
/// Most trace rows (epochs × samples) one request may produce.
pub const MAX_TRACE_ROWS: usize = 100_000;
/// Most sample subsets the exact separability test enumerates.
pub const MAX_SEPARABILITY_SUBSETS: u64 = 200_000;

/// A named logic gate; with n inputs XOR is odd parity and XNOR its negation
/// (even parity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    And,
    Or,
    Nand,
    Nor,
    Xor,
    Xnor,
}

impl Gate {
    fn truth(self, bits: &[bool]) -> bool {
        let ones = bits.iter().filter(|b| **b).count();
        match self {
            Gate::And => ones == bits.len(),
            Gate::Or => ones > 0,
            Gate::Nand => ones < bits.len(),
            Gate::Nor => ones == 0,
            Gate::Xor => ones % 2 == 1,
            Gate::Xnor => ones % 2 == 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Gate::And => "AND",
            Gate::Or => "OR",
            Gate::Nand => "NAND",
            Gate::Nor => "NOR",
            Gate::Xor => "XOR",
            Gate::Xnor => "XNOR",
        }
    }
}

/// How the decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = PerceptronConvention)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// y = step(w·x + b), firing when w·x + b >= 0; the bias is learned.
    #[default]
    Bias,
    /// y fires when w·x >= θ; θ is fixed unless `learn_threshold`.
    Threshold,
}

/// Value set of inputs or outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// 0 / 1.
    #[default]
    Binary,
    /// -1 / +1.
    Bipolar,
}

impl Encoding {
    fn low(self) -> f64 {
        match self {
            Encoding::Binary => 0.0,
            Encoding::Bipolar => -1.0,
        }
    }
}

/// One training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerceptronSample {
    /// Input vector.
    pub x: Vec<f64>,
    /// Target output: 0 or 1 (binary outputs) or -1 or 1 (bipolar outputs).
    pub target: f64,
}

fn one() -> f64 {
    1.0
}

fn default_epochs() -> usize {
    100
}

/// A perceptron training run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerceptronRequest {
    /// Train on this gate's truth table (rows in binary counting order, the
    /// first input most significant). Give exactly one of `gate` and
    /// `samples`.
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Number of gate inputs, 1 to 10. Default: 2. Only with `gate`.
    #[serde(default)]
    pub inputs: Option<usize>,
    /// Train on these samples instead of a gate.
    #[serde(default)]
    pub samples: Option<Vec<PerceptronSample>>,
    /// Learning rate η > 0. Default: 1.
    #[serde(default = "one")]
    pub learning_rate: f64,
    /// Bias (`step(w·x + b)`) or threshold (`w·x >= θ`) convention.
    /// Default: bias.
    #[serde(default)]
    pub convention: Convention,
    /// Output values: binary (0/1) or bipolar (-1/+1). Default: binary.
    #[serde(default)]
    pub output_encoding: Encoding,
    /// Values of a gate's inputs: binary (0/1) or bipolar (-1/+1).
    /// Default: binary. Only with `gate`.
    #[serde(default)]
    pub input_encoding: Encoding,
    /// Initial weights, one per input. Default: all 0.
    #[serde(default)]
    pub initial_weights: Option<Vec<f64>>,
    /// Initial bias b (bias convention). Default: 0.
    #[serde(default)]
    pub initial_bias: f64,
    /// Threshold θ (threshold convention). Default: 0.
    #[serde(default)]
    pub threshold: f64,
    /// Learn the threshold too (θ ← θ − η (t − y)); threshold convention
    /// only. Default: false (a fixed θ, as in "threshold = 0.2").
    #[serde(default)]
    pub learn_threshold: bool,
    /// Stop after this many epochs if not converged. Default: 100; at most
    /// the server's epoch limit.
    #[serde(default = "default_epochs")]
    pub max_epochs: usize,
}

/// One sample presented to the perceptron.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PerceptronTraceRow {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Index of the sample in `samples`.
    pub sample: usize,
    /// The input x.
    pub input: Vec<f64>,
    /// w·x + b (bias convention) or w·x (threshold convention), with the
    /// weights before the update.
    pub net: f64,
    /// The perceptron's output y.
    pub output: f64,
    /// The target t.
    pub target: f64,
    /// t − y.
    pub error: f64,
    /// Whether the weights changed (error ≠ 0).
    pub updated: bool,
    /// Δw = η (t − y) x.
    pub weight_update: Vec<f64>,
    /// Δb = η (t − y) (bias convention) or Δθ = −η (t − y) (learned threshold), else 0.
    pub bias_update: f64,
    /// Weights after this sample.
    pub weights: Vec<f64>,
    /// Bias b (or threshold θ) after this sample.
    pub bias: f64,
}

/// Summary of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PerceptronEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Samples that caused an update.
    pub updates: usize,
    /// Weights at the end of the epoch.
    pub weights: Vec<f64>,
    /// Bias (or threshold) at the end of the epoch.
    pub bias: f64,
}

/// A hyperplane w·x + b = 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hyperplane {
    /// Normal vector w.
    pub weights: Vec<f64>,
    /// Offset b.
    pub bias: f64,
}

/// The result of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PerceptronReport {
    /// The training data used (the expanded truth table for a gate).
    pub samples: Vec<PerceptronSample>,
    /// Every sample of every epoch, in order.
    pub trace: Vec<PerceptronTraceRow>,
    /// Per-epoch summaries.
    pub epochs: Vec<PerceptronEpoch>,
    /// Whether an epoch passed without any update.
    pub converged: bool,
    /// Epochs run (including the final update-free epoch when converged).
    pub epochs_run: usize,
    /// Final weights.
    pub weights: Vec<f64>,
    /// Final bias b (bias convention) or threshold θ (threshold convention).
    pub bias: f64,
    /// Whether some hyperplane w·x + b = 0 separates the classes (exact test,
    /// see the module docs); null when the data set is too large to decide.
    pub linearly_separable: Option<bool>,
    /// A separating hyperplane (with s_i (w·x_i + b) ≥ 1) when one exists.
    pub separator: Option<Hyperplane>,
    /// Plain-language conclusion.
    pub conclusion: String,
    /// Worked steps: one line per presented sample, then the conclusion.
    pub steps: Vec<Step>,
}

/// A number for a product or sum in a worked step: negatives in parentheses.
fn factor(x: f64) -> String {
    let s = fmt_num(x);
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

fn vec_text(v: &[f64]) -> String {
    format!(
        "({})",
        v.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(", ")
    )
}

fn build_samples(req: &PerceptronRequest) -> ComputeResult<Vec<PerceptronSample>> {
    let low = req.output_encoding.low();
    match (&req.gate, &req.samples) {
        (Some(_), Some(_)) => Err(ComputeError::new(
            "/samples",
            "give either `gate` or `samples`, not both",
        )),
        (None, None) => Err(ComputeError::new("", "give a `gate` or `samples`")),
        (Some(gate), None) => {
            let n = req.inputs.unwrap_or(2);
            if n == 0 || n > MAX_GATE_INPUTS {
                return Err(ComputeError::new(
                    "/inputs",
                    format!("a gate needs 1 to {MAX_GATE_INPUTS} inputs, got {n}"),
                ));
            }
            let in_low = req.input_encoding.low();
            Ok((0..1usize << n)
                .map(|row| {
                    let bits: Vec<bool> = (0..n).map(|k| row >> (n - 1 - k) & 1 == 1).collect();
                    PerceptronSample {
                        x: bits.iter().map(|b| if *b { 1.0 } else { in_low }).collect(),
                        target: if gate.truth(&bits) { 1.0 } else { low },
                    }
                })
                .collect())
        }
        (None, Some(samples)) => {
            if req.inputs.is_some() {
                return Err(ComputeError::new(
                    "/inputs",
                    "`inputs` only applies to a `gate`",
                ));
            }
            if samples.is_empty() || samples.len() > MAX_SAMPLES {
                return Err(ComputeError::new(
                    "/samples",
                    format!("give 1 to {MAX_SAMPLES} samples, got {}", samples.len()),
                ));
            }
            let d = samples.first().map_or(0, |s| s.x.len());
            for (i, s) in samples.iter().enumerate() {
                if s.x.is_empty() || s.x.len() > MAX_SAMPLE_INPUTS {
                    return Err(ComputeError::new(
                        format!("/samples/{i}/x"),
                        format!("a sample needs 1 to {MAX_SAMPLE_INPUTS} inputs"),
                    ));
                }
                if s.x.len() != d {
                    return Err(ComputeError::new(
                        format!("/samples/{i}/x"),
                        format!("sample has {} inputs but sample 0 has {d}", s.x.len()),
                    ));
                }
                if let Some(k) = s.x.iter().position(|v| !v.is_finite()) {
                    return Err(ComputeError::new(
                        format!("/samples/{i}/x/{k}"),
                        "inputs must be finite numbers",
                    ));
                }
                if s.target != 1.0 && s.target != low {
                    return Err(ComputeError::new(
                        format!("/samples/{i}/target"),
                        format!(
                            "target must be {} or 1 with {} outputs, got {}",
                            fmt_num(low),
                            if low == 0.0 { "binary" } else { "bipolar" },
                            fmt_num(s.target)
                        ),
                    ));
                }
            }
            Ok(samples.clone())
        }
    }
}

/// Solves the square system `a z = 1` by Gaussian elimination with partial
/// pivoting; None when singular.
fn solve_ones(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = a.len();
    let mut rhs = vec![1.0; n];
    let scale = a
        .iter()
        .flatten()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| {
            let vi = a.get(i).and_then(|r| r.get(col)).map_or(0.0, |x| x.abs());
            let vj = a.get(j).and_then(|r| r.get(col)).map_or(0.0, |x| x.abs());
            vi.total_cmp(&vj)
        })?;
        let pv = a.get(pivot).and_then(|r| r.get(col)).copied()?;
        if pv.abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(pivot, col);
        rhs.swap(pivot, col);
        let prow = a.get(col).cloned()?;
        let prhs = rhs.get(col).copied()?;
        for (row, r) in a.iter_mut().zip(rhs.iter_mut()).skip(col + 1) {
            let f = row.get(col).copied().unwrap_or(0.0) / pv;
            for (x, p) in row.iter_mut().zip(&prow).skip(col) {
                *x -= f * p;
            }
            *r -= f * prhs;
        }
    }
    let mut z = vec![0.0; n];
    for i in (0..n).rev() {
        let row = a.get(i)?;
        let s: f64 = (i + 1..n)
            .map(|j| row.get(j).copied().unwrap_or(0.0) * z.get(j).copied().unwrap_or(0.0))
            .sum();
        let v = (rhs.get(i).copied()? - s) / row.get(i).copied()?;
        if let Some(zi) = z.get_mut(i) {
            *zi = v;
        }
    }
    Some(z)
}

/// Indices of a maximal set of linearly independent columns of `a`.
fn independent_columns(a: &[Vec<f64>], cols: usize) -> Vec<usize> {
    let mut basis: Vec<Vec<f64>> = Vec::new(); // orthogonalized columns
    let mut chosen = Vec::new();
    for c in 0..cols {
        let mut v: Vec<f64> = a.iter().map(|r| r.get(c).copied().unwrap_or(0.0)).collect();
        let norm0 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for _ in 0..2 {
            for b in &basis {
                let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-9 * norm0.max(1.0) {
            v.iter_mut().for_each(|x| *x /= norm);
            basis.push(v);
            chosen.push(c);
        }
    }
    chosen
}

fn binomial(n: usize, k: usize) -> u64 {
    let mut r: u64 = 1;
    for i in 0..k.min(n.saturating_sub(k)) {
        r = r.saturating_mul((n - i) as u64) / (i as u64 + 1);
    }
    r
}

/// Exact linear-separability test (see the module docs). Returns
/// `Some(Some(plane))`, `Some(None)` (not separable) or `None` (too large).
pub fn separating_hyperplane(
    samples: &[PerceptronSample],
    positive: f64,
) -> Option<Option<Hyperplane>> {
    let d = samples.first().map_or(0, |s| s.x.len());
    let rows: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| {
            let sign = if s.target == positive { 1.0 } else { -1.0 };
            s.x.iter()
                .chain(std::iter::once(&1.0))
                .map(|v| sign * v)
                .collect()
        })
        .collect();
    let cols = independent_columns(&rows, d + 1);
    let r = cols.len();
    let m = rows.len();
    if binomial(m, r) > MAX_SEPARABILITY_SUBSETS {
        return None;
    }
    let reduced: Vec<Vec<f64>> = rows
        .iter()
        .map(|row| {
            cols.iter()
                .map(|&c| row.get(c).copied().unwrap_or(0.0))
                .collect()
        })
        .collect();
    let mut idx: Vec<usize> = (0..r).collect();
    loop {
        let sub: Vec<Vec<f64>> = idx
            .iter()
            .filter_map(|&i| reduced.get(i).cloned())
            .collect();
        if let Some(z) = solve_ones(sub) {
            let feasible = reduced
                .iter()
                .all(|row| row.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>() >= 1.0 - 1e-9);
            if feasible {
                let mut full = vec![0.0; d + 1];
                for (&c, v) in cols.iter().zip(&z) {
                    if let Some(x) = full.get_mut(c) {
                        *x = *v;
                    }
                }
                let bias = full.pop().unwrap_or(0.0);
                return Some(Some(Hyperplane {
                    weights: full,
                    bias,
                }));
            }
        }
        // next r-combination of 0..m
        let mut k = r;
        loop {
            if k == 0 {
                return Some(None);
            }
            k -= 1;
            if idx.get(k).copied().unwrap_or(m) < m - r + k {
                break;
            }
        }
        if let Some(v) = idx.get_mut(k) {
            *v += 1;
        }
        let base = idx.get(k).copied().unwrap_or(0);
        for (off, j) in (k + 1..r).enumerate() {
            if let Some(v) = idx.get_mut(j) {
                *v = base + off + 1;
            }
        }
    }
}

/// Trains a perceptron and traces every step.
pub fn perceptron(req: &PerceptronRequest, limits: &Limits) -> ComputeResult<PerceptronReport> {
    let samples = build_samples(req)?;
    if !(req.learning_rate.is_finite() && req.learning_rate > 0.0) {
        return Err(ComputeError::new(
            "/learning_rate",
            "learning rate must be a positive number",
        ));
    }
    if !req.initial_bias.is_finite() || !req.threshold.is_finite() {
        return Err(ComputeError::new(
            "/threshold",
            "bias and threshold must be finite",
        ));
    }
    if req.convention == Convention::Bias && (req.learn_threshold || req.threshold != 0.0) {
        return Err(ComputeError::new(
            if req.learn_threshold {
                "/learn_threshold"
            } else {
                "/threshold"
            },
            "`threshold` and `learn_threshold` belong to the threshold convention; with the bias convention use `initial_bias`",
        ));
    }
    if req.convention == Convention::Threshold && req.initial_bias != 0.0 {
        return Err(ComputeError::new(
            "/initial_bias",
            "`initial_bias` belongs to the bias convention; with the threshold convention use `threshold`",
        ));
    }
    if req.max_epochs == 0 || req.max_epochs > limits.max_epochs {
        return Err(ComputeError::new(
            "/max_epochs",
            format!("max_epochs must be 1 to {}", limits.max_epochs),
        ));
    }
    let d = samples.first().map_or(0, |s| s.x.len());
    if req.max_epochs.saturating_mul(samples.len()) > MAX_TRACE_ROWS {
        return Err(ComputeError::new(
            "/max_epochs",
            format!(
                "{} epochs of {} samples exceed the trace limit of {MAX_TRACE_ROWS} rows",
                req.max_epochs,
                samples.len()
            ),
        ));
    }
    let mut w = match &req.initial_weights {
        Some(w0) if w0.len() != d => {
            return Err(ComputeError::new(
                "/initial_weights",
                format!("expected {d} weights (one per input), got {}", w0.len()),
            ));
        }
        Some(w0) => w0.clone(),
        None => vec![0.0; d],
    };
    let threshold_conv = req.convention == Convention::Threshold;
    let mut b = if threshold_conv {
        req.threshold
    } else {
        req.initial_bias
    };
    let eta = req.learning_rate;
    let low = req.output_encoding.low();
    let bname = if threshold_conv { "theta" } else { "b" };
    let mut trace = Vec::new();
    let mut epochs = Vec::new();
    let mut steps = Vec::new();
    let mut converged = false;
    for epoch in 1..=req.max_epochs {
        let mut updates = 0;
        for (i, s) in samples.iter().enumerate() {
            let mut dot = 0.0;
            for (wi, xi) in w.iter().zip(&s.x) {
                dot += wi * xi;
            }
            let (net, fires) = if threshold_conv {
                (dot, dot >= b)
            } else {
                let net = dot + b;
                (net, net >= 0.0)
            };
            let y = if fires { 1.0 } else { low };
            let err = s.target - y;
            let updated = err != 0.0;
            let dw: Vec<f64> =
                s.x.iter()
                    .map(|x| if updated { eta * err * x } else { 0.0 })
                    .collect();
            let db = match (updated, threshold_conv, req.learn_threshold) {
                (false, _, _) | (true, true, false) => 0.0,
                (true, false, _) => eta * err,
                (true, true, true) => -eta * err,
            };
            let w_before = w.clone();
            let b_before = b;
            if updated {
                updates += 1;
                w.iter_mut().zip(&dw).for_each(|(wi, d)| *wi += d);
                b += db;
            }
            let net_text = if threshold_conv {
                format!("w.x = {}", fmt_num(net))
            } else {
                format!("w.x + b = {}", fmt_num(net))
            };
            let cmp = if threshold_conv {
                format!(
                    "{} {} theta = {}",
                    fmt_num(net),
                    if fires { ">=" } else { "<" },
                    fmt_num(b_before)
                )
            } else {
                format!("{} {} 0", fmt_num(net), if fires { ">=" } else { "<" })
            };
            let update_text = if updated {
                let mut t = format!(
                    "w = {} + {}*{}*{} = {}",
                    vec_text(&w_before),
                    factor(eta),
                    factor(err),
                    vec_text(&s.x),
                    vec_text(&w)
                );
                if db != 0.0 {
                    t.push_str(&format!(
                        ", {bname} = {} + {} = {}",
                        fmt_num(b_before),
                        factor(db),
                        fmt_num(b)
                    ));
                }
                t
            } else {
                "no update".to_string()
            };
            let text = format!(
                "epoch {epoch}, x = {}: {net_text}; {cmp} => y = {}, t = {}, t - y = {}; {update_text}",
                vec_text(&s.x),
                fmt_num(y),
                fmt_num(s.target),
                fmt_num(err)
            );
            let latex = format!(
                "\\text{{epoch {epoch}: }} x = {},\\ \\mathrm{{net}} = {},\\ y = {},\\ t = {},\\ w \\leftarrow {}{}",
                vec_text(&s.x),
                fmt_num(net),
                fmt_num(y),
                fmt_num(s.target),
                vec_text(&w),
                if threshold_conv && !req.learn_threshold {
                    String::new()
                } else {
                    format!(
                        ",\\ {} \\leftarrow {}",
                        if threshold_conv { "\\theta" } else { "b" },
                        fmt_num(b)
                    )
                }
            );
            steps.push(Step::new(text, latex));
            trace.push(PerceptronTraceRow {
                epoch,
                sample: i,
                input: s.x.clone(),
                net,
                output: y,
                target: s.target,
                error: err,
                updated,
                weight_update: dw,
                bias_update: db,
                weights: w.clone(),
                bias: b,
            });
        }
        epochs.push(PerceptronEpoch {
            epoch,
            updates,
            weights: w.clone(),
            bias: b,
        });
        if updates == 0 {
            converged = true;
            break;
        }
    }
    let epochs_run = epochs.len();
    let sep = separating_hyperplane(&samples, 1.0);
    let (linearly_separable, separator) = match sep {
        Some(Some(h)) => (Some(true), Some(h)),
        Some(None) => (Some(false), None),
        None => (None, None),
    };
    let what = match req.gate {
        Some(g) => format!("the {} truth table", g.name()),
        None => "the data".to_string(),
    };
    let mut conclusion = if converged {
        format!(
            "converged after {epochs_run} epochs (the last one without updates): w = {}, {bname} = {}",
            vec_text(&w),
            fmt_num(b)
        )
    } else {
        format!(
            "not converged after {epochs_run} epochs: w = {}, {bname} = {}",
            vec_text(&w),
            fmt_num(b)
        )
    };
    match (linearly_separable, &separator) {
        (Some(false), _) => conclusion.push_str(&format!(
            "; {what} is not linearly separable (no w, b with w.x + b >= 0 exactly on the positive samples), so no perceptron can learn it"
        )),
        (Some(true), Some(h)) => {
            conclusion.push_str(&format!(
                "; {what} is linearly separable, e.g. by w = {}, b = {}",
                vec_text(&h.weights),
                fmt_num(h.bias)
            ));
            if threshold_conv && !req.learn_threshold {
                conclusion.push_str(" (with a fixed threshold only hyperplanes w.x = theta are reachable, so convergence also depends on theta)");
            }
        }
        _ => conclusion.push_str("; the data set is too large for the exact separability test"),
    }
    steps.push(Step::new(
        conclusion.clone(),
        format!("\\text{{{conclusion}}}"),
    ));
    Ok(PerceptronReport {
        samples,
        trace,
        epochs,
        converged,
        epochs_run,
        weights: w,
        bias: b,
        linearly_separable,
        separator,
        conclusion,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_req(gate: Gate) -> PerceptronRequest {
        PerceptronRequest {
            gate: Some(gate),
            inputs: None,
            samples: None,
            learning_rate: 1.0,
            convention: Convention::Bias,
            output_encoding: Encoding::Binary,
            input_encoding: Encoding::Binary,
            initial_weights: None,
            initial_bias: 0.0,
            threshold: 0.0,
            learn_threshold: false,
            max_epochs: 100,
        }
    }

    fn run(r: &PerceptronRequest) -> PerceptronReport {
        match perceptron(r, &Limits::default()) {
            Ok(rep) => rep,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn and_converges_by_hand_trace() {
        // Bias convention, eta = 1, zero init, fires at net >= 0.
        // epoch 1: (0,0): net 0 -> y 1, t 0: w=(0,0), b=-1
        //          (0,1): net -1 -> 0 ok; (1,0): ok; (1,1): net -1 -> 0, t 1: w=(1,1), b=0
        let rep = run(&gate_req(Gate::And));
        let first = &rep.trace[0];
        assert_eq!((first.net, first.output, first.error), (0.0, 1.0, -1.0));
        assert_eq!(rep.epochs[0].weights, vec![1.0, 1.0]);
        assert_eq!(rep.epochs[0].bias, 0.0);
        assert!(rep.converged);
        assert_eq!(rep.linearly_separable, Some(true));
        // the final weights classify every sample
        for s in &rep.samples {
            let net: f64 = rep
                .weights
                .iter()
                .zip(&s.x)
                .map(|(a, b)| a * b)
                .sum::<f64>()
                + rep.bias;
            assert_eq!(if net >= 0.0 { 1.0 } else { 0.0 }, s.target);
        }
    }

    #[test]
    fn xor_and_xnor_are_not_separable() {
        for g in [Gate::Xor, Gate::Xnor] {
            let mut r = gate_req(g);
            r.max_epochs = 50;
            let rep = run(&r);
            assert!(!rep.converged);
            assert_eq!(rep.epochs_run, 50);
            assert_eq!(rep.linearly_separable, Some(false));
            assert!(rep.conclusion.contains("not linearly separable"));
        }
    }

    #[test]
    fn separability_of_all_gates_up_to_four_inputs() {
        for n in 1..=4 {
            for g in [
                Gate::And,
                Gate::Or,
                Gate::Nand,
                Gate::Nor,
                Gate::Xor,
                Gate::Xnor,
            ] {
                let mut r = gate_req(g);
                r.inputs = Some(n);
                let samples = build_samples(&r).unwrap_or_default();
                let sep = separating_hyperplane(&samples, 1.0);
                // parity of one input is the identity / negation: separable
                let want = n == 1 || !matches!(g, Gate::Xor | Gate::Xnor);
                assert_eq!(sep.as_ref().map(|s| s.is_some()), Some(want), "{g:?} {n}");
                if let Some(Some(h)) = sep {
                    for s in &samples {
                        let v: f64 =
                            h.weights.iter().zip(&s.x).map(|(a, b)| a * b).sum::<f64>() + h.bias;
                        assert!(if s.target == 1.0 {
                            v >= 1.0 - 1e-9
                        } else {
                            v <= -1.0 + 1e-9
                        });
                    }
                }
            }
        }
    }

    #[test]
    fn exam_xnor_with_threshold() {
        let mut r = gate_req(Gate::Xnor);
        r.convention = Convention::Threshold;
        r.learning_rate = 0.02;
        r.threshold = 0.2;
        r.max_epochs = 20;
        let rep = run(&r);
        assert!(!rep.converged);
        // (0,0) has w.x = 0 < 0.2 -> y = 0 but t = 1 every epoch
        assert!(
            rep.trace
                .iter()
                .filter(|t| t.sample == 0)
                .all(|t| t.output == 0.0 && t.updated)
        );
        assert_eq!(rep.bias, 0.2);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let err =
            |r: &PerceptronRequest| perceptron(r, &Limits::default()).err().map(|e| e.pointer);
        let mut r = gate_req(Gate::And);
        r.initial_weights = Some(vec![1.0]);
        assert_eq!(err(&r), Some("/initial_weights".into()));
        let mut r = gate_req(Gate::And);
        r.learning_rate = 0.0;
        assert_eq!(err(&r), Some("/learning_rate".into()));
        let mut r = gate_req(Gate::And);
        r.inputs = Some(11);
        assert_eq!(err(&r), Some("/inputs".into()));
        let mut r = gate_req(Gate::And);
        r.gate = None;
        r.samples = Some(vec![
            PerceptronSample {
                x: vec![0.0, 1.0],
                target: 1.0,
            },
            PerceptronSample {
                x: vec![1.0],
                target: 0.0,
            },
        ]);
        assert_eq!(err(&r), Some("/samples/1/x".into()));
        r.samples = Some(vec![PerceptronSample {
            x: vec![0.0],
            target: 2.0,
        }]);
        assert_eq!(err(&r), Some("/samples/0/target".into()));
        let mut r = gate_req(Gate::And);
        r.max_epochs = 1_000_000;
        assert_eq!(err(&r), Some("/max_epochs".into()));
    }
}
