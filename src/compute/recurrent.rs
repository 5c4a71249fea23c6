//! Recurrent cells unrolled over a sequence: vanilla RNN, LSTM and GRU, in the
//! weight layouts, gate orders and bias conventions of PyTorch and Keras 3,
//! with every gate, candidate, cell state and hidden state per timestep, an
//! optional output layer `y_t = act(W_hy h_t + b_y)`, and BPTT gradients of a
//! loss on the outputs with respect to every weight, bias, `h0`, `c0` and the
//! inputs.
//!
//! Equations (semantic gate names; `σ` = `recurrent_activation`, default
//! sigmoid; `φ` = `activation`, default tanh):
//! * RNN: `h_t = φ(W_x x_t + b_x + W_h h_{t-1} + b_h)`
//! * LSTM: `i, f, o = σ(W_x· x + b_x· + W_h· h + b_h·)`, `g = φ(...)`,
//!   `c_t = f c_{t-1} + i g`, `h_t = o φ(c_t)`
//! * GRU: `r, z = σ(...)`; reset after (PyTorch, Keras `reset_after=True`):
//!   `n = φ(W_xn x + b_xn + r (W_hn h + b_hn))`; reset before (Keras
//!   `reset_after=False`): `n = φ(W_xn x + b_xn + W_hn (r h))`;
//!   `h_t = (1 - z) n + z h_{t-1}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::steps::{Step, StepLog, fmt_num};

/// Worked-step lines written per request; beyond this a note says how many
/// were omitted (the numbers are all in the report).
const MAX_STEP_LINES: usize = 4_000;
/// Vectors longer than this are not written into the worked steps.
const MAX_VECTOR_IN_STEPS: usize = 64;
/// Dot products are written out term by term up to this many terms.
const MAX_EXPANDED_TERMS: usize = 8;

/// The recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Vanilla (Elman) RNN, PyTorch `nn.RNN`, Keras `SimpleRNN`.
    Rnn,
    /// LSTM, gate order i, f, g (Keras: c), o in both frameworks.
    Lstm,
    /// GRU, gate order r, z, n (PyTorch) or z, r, h (Keras).
    Gru,
}

/// Weight layout, gate order and bias convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// `kernel` = `weight_ih_l0` with shape (G·hidden, input), `recurrent_kernel`
    /// = `weight_hh_l0` (G·hidden, hidden), `bias` = `bias_ih_l0`,
    /// `recurrent_bias` = `bias_hh_l0`; output layer weight (out, hidden) as in
    /// `nn.Linear`. GRU gate order r, z, n (always reset-after semantics).
    #[default]
    Pytorch,
    /// `kernel` (input, G·hidden), `recurrent_kernel` (hidden, G·hidden), one
    /// `bias` (G·hidden); GRU with `reset_after=True` has a (2, 3·hidden) bias:
    /// give row 0 as `bias` and row 1 as `recurrent_bias`. Output layer kernel
    /// (hidden, out) as in `Dense`. GRU gate order z, r, h.
    Keras,
}

/// Element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^{-x})`.
    Sigmoid,
    /// `max(0, x)` (derivative 0 at 0).
    Relu,
    /// Identity.
    Linear,
}

impl Activation {
    fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Relu => x.max(0.0),
            Activation::Linear => x,
        }
    }
    /// Derivative from the pre-activation `x` and the value `y`.
    fn deriv(self, x: f64, y: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - y * y,
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Linear => 1.0,
        }
    }
    fn sym(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "σ",
            Activation::Relu => "relu",
            Activation::Linear => "",
        }
    }
    fn latex(self) -> &'static str {
        match self {
            Activation::Tanh => "\\tanh",
            Activation::Sigmoid => "\\sigma",
            Activation::Relu => "\\mathrm{relu}",
            Activation::Linear => "",
        }
    }
}

/// The weights of the cell (and optionally of the output layer), in the
/// layout of `framework`. Absent biases are zero and are not parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CellWeights {
    /// Input weights: PyTorch `weight_ih_l0` (G·hidden × input), Keras
    /// `kernel` (input × G·hidden); G = 1 (RNN), 4 (LSTM), 3 (GRU).
    pub kernel: Vec<Vec<f64>>,
    /// Recurrent weights: PyTorch `weight_hh_l0` (G·hidden × hidden), Keras
    /// `recurrent_kernel` (hidden × G·hidden).
    pub recurrent_kernel: Vec<Vec<f64>>,
    /// Input bias (G·hidden): PyTorch `bias_ih_l0`, Keras `bias` (row 0 of the
    /// (2, 3·hidden) GRU bias when `reset_after`). Default: none (zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<Vec<f64>>,
    /// Recurrent bias (G·hidden): PyTorch `bias_hh_l0`, Keras row 1 of the
    /// (2, 3·hidden) GRU bias when `reset_after`. Keras RNN/LSTM layers have a
    /// single bias; a recurrent bias given there is simply added to it. Not
    /// allowed for a GRU with `reset_after=false`. Default: none (zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_bias: Option<Vec<f64>>,
    /// Output layer weight: PyTorch (out × hidden), Keras (hidden × out).
    /// Default: no output layer (the outputs are the hidden states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kernel: Option<Vec<Vec<f64>>>,
    /// Output layer bias (out). Default: none (zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bias: Option<Vec<f64>>,
}

/// Where the loss is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossOn {
    /// Every timestep: the per-timestep losses are summed over time.
    #[default]
    AllTimesteps,
    /// Only the last timestep's output.
    LastTimestep,
}

/// The per-timestep loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = RecurrentLossKind)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error over batch and output units (PyTorch `mse_loss`).
    #[default]
    Mse,
    /// Sum of squared errors.
    Sse,
    /// Half the sum of squared errors.
    HalfSse,
}

/// A loss on the outputs (`y_t` with an output layer, else `h_t`); with it the
/// report contains BPTT gradients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// Targets, batch × T' × output size, with T' = timesteps for
    /// `all_timesteps` and T' = 1 for `last_timestep`.
    pub targets: Vec<Vec<Vec<f64>>>,
    /// Which outputs enter the loss. Default `all_timesteps`.
    #[serde(default)]
    pub on: LossOn,
    /// The per-timestep loss. Default `mse`.
    #[serde(default)]
    pub kind: LossKind,
}

/// Request: run a recurrent cell over a batch of sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurrentRequest {
    /// The cell type.
    pub cell: CellKind,
    /// Weight layout, gate order and bias convention. Default `pytorch`.
    #[serde(default)]
    pub framework: Framework,
    /// Input sequences, batch × timesteps × input size (batch first; one
    /// sequence is a batch of one).
    pub inputs: Vec<Vec<Vec<f64>>>,
    /// Weights shared by every timestep (exactly one of `weights`,
    /// `weights_per_step`).
    #[serde(default)]
    pub weights: Option<CellWeights>,
    /// Untied weights, one set per timestep (exam diagrams that label every
    /// unrolled step with its own weights).
    #[serde(default)]
    pub weights_per_step: Option<Vec<CellWeights>>,
    /// Initial hidden state, batch × hidden. Default zeros.
    #[serde(default)]
    pub h0: Option<Vec<Vec<f64>>>,
    /// Initial cell state (LSTM), batch × hidden. Default zeros.
    #[serde(default)]
    pub c0: Option<Vec<Vec<f64>>>,
    /// State activation φ (RNN state, LSTM candidate and cell output, GRU
    /// candidate). Default `tanh`.
    #[serde(default)]
    pub activation: Option<Activation>,
    /// Gate activation σ (LSTM i, f, o; GRU r, z). Default `sigmoid`.
    #[serde(default)]
    pub recurrent_activation: Option<Activation>,
    /// GRU: apply the reset gate after the recurrent matmul (PyTorch, Keras
    /// default) or before it (Keras `reset_after=False`, Cho et al.). Default
    /// true.
    #[serde(default)]
    pub reset_after: Option<bool>,
    /// Output layer activation. Default `linear`.
    #[serde(default)]
    pub output_activation: Option<Activation>,
    /// Loss on the outputs; when given, BPTT gradients are returned.
    #[serde(default)]
    pub loss: Option<LossSpec>,
}

/// One gate (or candidate) at one timestep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateTrace {
    /// Semantic name: RNN `h`; LSTM `i`, `f`, `g`, `o`; GRU `r`, `z`, `n`, and
    /// `hn` = `W_hn h + b_hn` (reset-after only).
    pub name: String,
    /// Pre-activation per hidden unit.
    pub pre_activation: Vec<f64>,
    /// Activated value per hidden unit.
    pub value: Vec<f64>,
}

/// Everything computed at one timestep of one sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimestepTrace {
    /// Timestep, 1-based.
    pub t: usize,
    /// Gates and candidates.
    pub gates: Vec<GateTrace>,
    /// Cell state `c_t` (LSTM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c: Option<Vec<f64>>,
    /// Hidden state `h_t`.
    pub h: Vec<f64>,
    /// Output pre-activation `W_hy h_t + b_y` (with an output layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_pre: Option<Vec<f64>>,
    /// Output `y_t` (with an output layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<Vec<f64>>,
}

/// One sequence of the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SequenceTrace {
    /// One entry per timestep.
    pub timesteps: Vec<TimestepTrace>,
}

/// BPTT gradients of the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecurrentGradients {
    /// Gradients in the layout of the given weights (same fields present);
    /// one entry, or one per timestep for `weights_per_step`.
    pub weights: Vec<CellWeights>,
    /// Gradient w.r.t. `h0`, batch × hidden.
    pub h0: Vec<Vec<f64>>,
    /// Gradient w.r.t. `c0` (LSTM), batch × hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c0: Option<Vec<Vec<f64>>>,
    /// Gradient w.r.t. the inputs, batch × timesteps × input.
    pub inputs: Vec<Vec<Vec<f64>>>,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecurrentReport {
    /// The cell type.
    pub cell: CellKind,
    /// The framework convention used.
    pub framework: Framework,
    /// Every convention in force, with its formula.
    pub conventions: Vec<String>,
    /// Input size.
    pub input_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Output layer size (with an output layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_size: Option<usize>,
    /// One trace per sequence of the batch.
    pub sequences: Vec<SequenceTrace>,
    /// The loss (with `loss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// BPTT gradients (with `loss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradients: Option<RecurrentGradients>,
    /// Worked steps.
    pub steps: Vec<Step>,
}

// ---------------------------------------------------------------------------
// Canonical internal form

/// Weights in semantic gate order, each gate's matrix row-major
/// (hidden × input / hidden × hidden), output weight (out × hidden).
#[derive(Debug, Clone)]
struct Canon {
    wx: Vec<Vec<f64>>,
    wh: Vec<Vec<f64>>,
    bx: Vec<Vec<f64>>,
    bh: Vec<Vec<f64>>,
    wy: Vec<f64>,
    by: Vec<f64>,
}

impl Canon {
    fn zeros(g: usize, n_in: usize, h: usize, n_out: usize) -> Self {
        Self {
            wx: vec![vec![0.0; h * n_in]; g],
            wh: vec![vec![0.0; h * h]; g],
            bx: vec![vec![0.0; h]; g],
            bh: vec![vec![0.0; h]; g],
            wy: vec![0.0; n_out * h],
            by: vec![0.0; n_out],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    kind: CellKind,
    fw: Framework,
    g: usize,
    n_in: usize,
    h: usize,
    n_out: usize,
    has_out: bool,
    act: Activation,
    ract: Activation,
    out_act: Activation,
    reset_after: bool,
}

impl Dims {
    /// Semantic gate index held at framework position `k`.
    fn sem(&self, k: usize) -> usize {
        match (self.kind, self.fw, k) {
            (CellKind::Gru, Framework::Keras, 0) => 1,
            (CellKind::Gru, Framework::Keras, 1) => 0,
            _ => k,
        }
    }
    fn gate_names(&self) -> &'static [&'static str] {
        match self.kind {
            CellKind::Rnn => &["h"],
            CellKind::Lstm => &["i", "f", "g", "o"],
            CellKind::Gru => &["r", "z", "n"],
        }
    }
    /// Activation of semantic gate `s`.
    fn gate_act(&self, s: usize) -> Activation {
        match (self.kind, s) {
            (CellKind::Rnn, _) | (CellKind::Lstm, 2) | (CellKind::Gru, 2) => self.act,
            _ => self.ract,
        }
    }
}

fn shape_err(ptr: &str, msg: String) -> ComputeError {
    ComputeError::new(ptr, msg)
}

/// Checks a matrix is rows × cols with finite entries.
fn check_matrix(
    m: &[Vec<f64>],
    rows: usize,
    cols: usize,
    ptr: &str,
    what: &str,
) -> ComputeResult<()> {
    if m.len() != rows {
        return Err(shape_err(
            ptr,
            format!("{what} must have {rows} rows, got {}", m.len()),
        ));
    }
    for (r, row) in m.iter().enumerate() {
        if row.len() != cols {
            return Err(shape_err(
                &format!("{ptr}/{r}"),
                format!("{what} must have {cols} columns, row {r} has {}", row.len()),
            ));
        }
        if let Some(c) = row.iter().position(|v| !v.is_finite()) {
            return Err(shape_err(
                &format!("{ptr}/{r}/{c}"),
                "value is not a finite number".into(),
            ));
        }
    }
    Ok(())
}

fn check_vector(v: &[f64], len: usize, ptr: &str, what: &str) -> ComputeResult<()> {
    if v.len() != len {
        return Err(shape_err(
            ptr,
            format!("{what} must have {len} entries, got {}", v.len()),
        ));
    }
    if let Some(c) = v.iter().position(|x| !x.is_finite()) {
        return Err(shape_err(
            &format!("{ptr}/{c}"),
            "value is not a finite number".into(),
        ));
    }
    Ok(())
}

/// Reads one weight set into canonical form after checking its shapes.
fn load(w: &CellWeights, d: &Dims, ptr: &str) -> ComputeResult<Canon> {
    let (g, n_in, h) = (d.g, d.n_in, d.h);
    let gh = g * h;
    let mut c = Canon::zeros(g, n_in, h, d.n_out);
    match d.fw {
        Framework::Pytorch => {
            check_matrix(
                &w.kernel,
                gh,
                n_in,
                &format!("{ptr}/kernel"),
                "kernel (weight_ih, G·hidden × input)",
            )?;
            check_matrix(
                &w.recurrent_kernel,
                gh,
                h,
                &format!("{ptr}/recurrent_kernel"),
                "recurrent_kernel (weight_hh, G·hidden × hidden)",
            )?;
        }
        Framework::Keras => {
            check_matrix(
                &w.kernel,
                n_in,
                gh,
                &format!("{ptr}/kernel"),
                "kernel (input × G·hidden)",
            )?;
            check_matrix(
                &w.recurrent_kernel,
                h,
                gh,
                &format!("{ptr}/recurrent_kernel"),
                "recurrent_kernel (hidden × G·hidden)",
            )?;
        }
    }
    for k in 0..g {
        let s = d.sem(k);
        for j in 0..h {
            for i in 0..n_in {
                c.wx[s][j * n_in + i] = match d.fw {
                    Framework::Pytorch => w.kernel[k * h + j][i],
                    Framework::Keras => w.kernel[i][k * h + j],
                };
            }
            for i in 0..h {
                c.wh[s][j * h + i] = match d.fw {
                    Framework::Pytorch => w.recurrent_kernel[k * h + j][i],
                    Framework::Keras => w.recurrent_kernel[i][k * h + j],
                };
            }
        }
    }
    if let Some(b) = &w.bias {
        check_vector(b, gh, &format!("{ptr}/bias"), "bias (G·hidden)")?;
        for k in 0..g {
            c.bx[d.sem(k)].copy_from_slice(&b[k * h..(k + 1) * h]);
        }
    }
    if let Some(b) = &w.recurrent_bias {
        if d.kind == CellKind::Gru && !d.reset_after {
            return Err(ComputeError::new(
                format!("{ptr}/recurrent_bias"),
                "a GRU with reset_after=false has a single bias",
            ));
        }
        check_vector(
            b,
            gh,
            &format!("{ptr}/recurrent_bias"),
            "recurrent_bias (G·hidden)",
        )?;
        for k in 0..g {
            c.bh[d.sem(k)].copy_from_slice(&b[k * h..(k + 1) * h]);
        }
    }
    match (&w.output_kernel, d.has_out) {
        (Some(wy), true) => {
            let o = d.n_out;
            match d.fw {
                Framework::Pytorch => check_matrix(
                    wy,
                    o,
                    h,
                    &format!("{ptr}/output_kernel"),
                    "output_kernel (out × hidden)",
                )?,
                Framework::Keras => check_matrix(
                    wy,
                    h,
                    o,
                    &format!("{ptr}/output_kernel"),
                    "output_kernel (hidden × out)",
                )?,
            }
            // Shapes were checked above, so every index is in range.
            for (a, row) in wy.iter().enumerate() {
                for (b, v) in row.iter().enumerate() {
                    let (oi, j) = match d.fw {
                        Framework::Pytorch => (a, b),
                        Framework::Keras => (b, a),
                    };
                    c.wy[oi * h + j] = *v;
                }
            }
            if let Some(by) = &w.output_bias {
                check_vector(by, o, &format!("{ptr}/output_bias"), "output_bias (out)")?;
                c.by.copy_from_slice(by);
            }
        }
        (None, false) => {
            if w.output_bias.is_some() {
                return Err(ComputeError::new(
                    format!("{ptr}/output_bias"),
                    "output_bias without output_kernel",
                ));
            }
        }
        (Some(_), false) | (None, true) => {
            return Err(ComputeError::new(
                format!("{ptr}/output_kernel"),
                "give output_kernel in every weight set or in none",
            ));
        }
    }
    Ok(c)
}

/// Writes canonical gradients back in the layout of `like`.
fn store(gc: &Canon, like: &CellWeights, d: &Dims) -> CellWeights {
    let (g, n_in, h) = (d.g, d.n_in, d.h);
    let gh = g * h;
    let (mut k_out, mut r_out) = match d.fw {
        Framework::Pytorch => (vec![vec![0.0; n_in]; gh], vec![vec![0.0; h]; gh]),
        Framework::Keras => (vec![vec![0.0; gh]; n_in], vec![vec![0.0; gh]; h]),
    };
    let mut b_out = vec![0.0; gh];
    let mut rb_out = vec![0.0; gh];
    for k in 0..g {
        let s = d.sem(k);
        for j in 0..h {
            for (i, &v) in gc.wx[s][j * n_in..(j + 1) * n_in].iter().enumerate() {
                match d.fw {
                    Framework::Pytorch => k_out[k * h + j][i] = v,
                    Framework::Keras => k_out[i][k * h + j] = v,
                }
            }
            for (i, &v) in gc.wh[s][j * h..(j + 1) * h].iter().enumerate() {
                match d.fw {
                    Framework::Pytorch => r_out[k * h + j][i] = v,
                    Framework::Keras => r_out[i][k * h + j] = v,
                }
            }
            b_out[k * h + j] = gc.bx[s][j];
            rb_out[k * h + j] = gc.bh[s][j];
        }
    }
    let output_kernel = like.output_kernel.as_ref().map(|_| {
        let o = d.n_out;
        match d.fw {
            Framework::Pytorch => (0..o)
                .map(|oi| (0..h).map(|j| gc.wy[oi * h + j]).collect())
                .collect(),
            Framework::Keras => (0..h)
                .map(|j| (0..o).map(|oi| gc.wy[oi * h + j]).collect())
                .collect(),
        }
    });
    CellWeights {
        kernel: k_out,
        recurrent_kernel: r_out,
        bias: like.bias.as_ref().map(|_| b_out),
        recurrent_bias: like.recurrent_bias.as_ref().map(|_| rb_out),
        output_kernel,
        output_bias: like.output_bias.as_ref().map(|_| gc.by.clone()),
    }
}

fn matvec(w: &[f64], rows: usize, cols: usize, x: &[f64]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            w[r * cols..(r + 1) * cols]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// `out += W^T y`.
fn matvec_t_add(w: &[f64], rows: usize, cols: usize, y: &[f64], out: &mut [f64]) {
    for r in 0..rows {
        let yr = y[r];
        for c in 0..cols {
            out[c] += w[r * cols + c] * yr;
        }
    }
}

/// `G += y ⊗ x`.
fn outer_add(g: &mut [f64], y: &[f64], x: &[f64]) {
    let cols = x.len();
    for (r, yr) in y.iter().enumerate() {
        for (c, xc) in x.iter().enumerate() {
            g[r * cols + c] += yr * xc;
        }
    }
}

fn add_into(a: &mut [f64], b: &[f64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Forward cache of one timestep.
#[derive(Debug, Clone)]
struct Cache {
    x: Vec<f64>,
    h_prev: Vec<f64>,
    c_prev: Vec<f64>,
    pre: Vec<Vec<f64>>,
    val: Vec<Vec<f64>>,
    /// GRU reset-after: `W_hn h + b_hn`; reset-before: `r * h_prev`.
    hn: Vec<f64>,
    c: Vec<f64>,
    h: Vec<f64>,
    y_pre: Vec<f64>,
    y: Vec<f64>,
}

/// `w·x + u·h + b` written term by term when short.
fn expand(wrow: &[f64], x: &[f64], urow: &[f64], h: &[f64], b: f64, total: f64) -> String {
    if wrow.len() + urow.len() > MAX_EXPANDED_TERMS {
        return fmt_num(total);
    }
    let mut out = String::new();
    let mut push = |coef: f64, rest: String| {
        let sign = if coef < 0.0 { "-" } else { "+" };
        if out.is_empty() {
            if coef < 0.0 {
                out.push('-');
            }
        } else {
            out.push_str(&format!(" {sign} "));
        }
        out.push_str(&fmt_num(coef.abs()));
        out.push_str(&rest);
    };
    for (a, v) in wrow.iter().zip(x).chain(urow.iter().zip(h)) {
        push(*a, format!("*{}", paren(*v)));
    }
    push(b, String::new());
    out
}

fn paren(x: f64) -> String {
    if x < 0.0 {
        format!("({})", fmt_num(x))
    } else {
        fmt_num(x)
    }
}

fn matstr(m: &[Vec<f64>]) -> String {
    format!(
        "[{}]",
        m.iter().map(|r| vecstr(r)).collect::<Vec<_>>().join(", ")
    )
}

/// One gradient line, skipped (counted as omitted) when the tensor is large.
fn write_grad(lines: &mut StepLog, field: &str, value: &str) {
    if value.len() > 2_000 || lines.full() {
        lines.omit();
        return;
    }
    lines.push(
        format!("dL/d{field} = {value}"),
        format!(
            "\\frac{{\\partial L}}{{\\partial \\mathrm{{{}}}}} = {value}",
            field.replace('_', "\\_")
        ),
    );
}

fn vecstr(v: &[f64]) -> String {
    format!(
        "[{}]",
        v.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(", ")
    )
}

/// Runs the cell over the batch, with BPTT gradients when a loss is given.
pub fn recurrent(req: &RecurrentRequest, limits: &Limits) -> ComputeResult<RecurrentReport> {
    let (d, canon, wsets) = validate(req, limits)?;
    let b_n = req.inputs.len();
    let t_n = req.inputs.first().map_or(0, |s| s.len());
    let mut lines = StepLog::new(MAX_STEP_LINES);
    let conventions = conventions(&d, req.weights_per_step.is_some());
    lines.push(
        format!(
            "{:?} cell, {:?} conventions: {}",
            d.kind,
            d.fw,
            conventions.join("; ")
        ),
        format!("\\text{{{:?} cell}}", d.kind),
    );
    let mut caches: Vec<Vec<Cache>> = Vec::with_capacity(b_n);
    let mut traces = Vec::with_capacity(b_n);
    for b in 0..b_n {
        let mut h = req
            .h0
            .as_ref()
            .and_then(|v| v.get(b))
            .cloned()
            .unwrap_or_else(|| vec![0.0; d.h]);
        let mut c = req
            .c0
            .as_ref()
            .and_then(|v| v.get(b))
            .cloned()
            .unwrap_or_else(|| vec![0.0; d.h]);
        let mut seq_cache = Vec::with_capacity(t_n);
        let mut seq_trace = Vec::with_capacity(t_n);
        if b_n > 1 {
            lines.push(
                format!("Sequence {}", b + 1),
                format!("\\text{{Sequence {}}}", b + 1),
            );
        }
        for t in 0..t_n {
            let w = &canon[if canon.len() > 1 { t } else { 0 }];
            let x = req.inputs[b][t].clone();
            let cache = step_forward(&d, w, &x, &h, &c);
            if cache
                .h
                .iter()
                .chain(&cache.c)
                .chain(&cache.y)
                .any(|v| !v.is_finite())
            {
                return Err(ComputeError::new(
                    format!("/inputs/{b}/{t}"),
                    format!(
                        "the state overflowed to a non-finite value at timestep {}",
                        t + 1
                    ),
                ));
            }
            if !lines.full() {
                write_step(&d, w, &cache, t + 1, &mut lines);
            }
            seq_trace.push(trace_of(&d, &cache, t + 1));
            h = cache.h.clone();
            c = cache.c.clone();
            seq_cache.push(cache);
        }
        caches.push(seq_cache);
        traces.push(SequenceTrace {
            timesteps: seq_trace,
        });
    }
    // Loss and BPTT
    let (loss, gradients) = match &req.loss {
        None => (None, None),
        Some(spec) => {
            let (loss, dout) = loss_and_grad(&d, spec, &caches, &mut lines);
            let mut gcanon: Vec<Canon> = canon
                .iter()
                .map(|_| Canon::zeros(d.g, d.n_in, d.h, d.n_out))
                .collect();
            let mut dh0 = Vec::with_capacity(b_n);
            let mut dc0 = Vec::with_capacity(b_n);
            let mut dx = Vec::with_capacity(b_n);
            for (b, seq) in caches.iter().enumerate() {
                let back = backward(&d, &canon, &mut gcanon, seq, &dout[b]);
                for (t, dh) in back.dh.iter().enumerate() {
                    let seq_note = if b_n > 1 {
                        format!(" (sequence {})", b + 1)
                    } else {
                        String::new()
                    };
                    if d.h > MAX_VECTOR_IN_STEPS || lines.full() {
                        lines.omit();
                        continue;
                    }
                    lines.push(
                        format!("BPTT: dL/dh{}{seq_note} = {}", t + 1, vecstr(dh)),
                        format!(
                            "\\frac{{\\partial L}}{{\\partial h_{{{}}}}} = {}",
                            t + 1,
                            vecstr(dh)
                        ),
                    );
                }
                dh0.push(back.dh0);
                dc0.push(back.dc0);
                dx.push(back.dx);
            }
            if !lines.full() && d.h <= MAX_VECTOR_IN_STEPS {
                for (b, g) in dh0.iter().enumerate() {
                    lines.push(
                        format!("BPTT: dL/dh0 (sequence {}) = {}", b + 1, vecstr(g)),
                        format!("\\frac{{\\partial L}}{{\\partial h_0}} = {}", vecstr(g)),
                    );
                }
            }
            let weights: Vec<CellWeights> = gcanon
                .iter()
                .zip(&wsets)
                .map(|(gc, like)| store(gc, like, &d))
                .collect();
            for (k, gw) in weights.iter().enumerate() {
                let set = if weights.len() > 1 {
                    format!(" (timestep {})", k + 1)
                } else {
                    String::new()
                };
                let mats = [
                    ("kernel", Some(&gw.kernel)),
                    ("recurrent_kernel", Some(&gw.recurrent_kernel)),
                    ("output_kernel", gw.output_kernel.as_ref()),
                ];
                for (field, m) in mats {
                    if let Some(m) = m {
                        write_grad(&mut lines, &format!("{field}{set}"), &matstr(m));
                    }
                }
                let vecs = [
                    ("bias", gw.bias.as_ref()),
                    ("recurrent_bias", gw.recurrent_bias.as_ref()),
                    ("output_bias", gw.output_bias.as_ref()),
                ];
                for (field, v) in vecs {
                    if let Some(v) = v {
                        write_grad(&mut lines, &format!("{field}{set}"), &vecstr(v));
                    }
                }
            }
            (
                Some(loss),
                Some(RecurrentGradients {
                    weights,
                    h0: dh0,
                    c0: (d.kind == CellKind::Lstm).then_some(dc0),
                    inputs: dx,
                }),
            )
        }
    };
    let steps = lines.finish();
    Ok(RecurrentReport {
        cell: d.kind,
        framework: d.fw,
        conventions,
        input_size: d.n_in,
        hidden_size: d.h,
        output_size: d.has_out.then_some(d.n_out),
        sequences: traces,
        loss,
        gradients,
        steps,
    })
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::Tanh => "tanh",
        Activation::Sigmoid => "sigmoid",
        Activation::Relu => "relu",
        Activation::Linear => "linear",
    }
}

fn conventions(d: &Dims, untied: bool) -> Vec<String> {
    let mut v = Vec::new();
    let order = match (d.kind, d.fw) {
        (CellKind::Rnn, _) => "single gate",
        (CellKind::Lstm, Framework::Pytorch) => "gate order i, f, g, o",
        (CellKind::Lstm, Framework::Keras) => "gate order i, f, c, o",
        (CellKind::Gru, Framework::Pytorch) => "gate order r, z, n",
        (CellKind::Gru, Framework::Keras) => "gate order z, r, h",
    };
    v.push(order.to_string());
    v.push(match d.fw {
        Framework::Pytorch => "PyTorch layout: kernel (G·hidden, input), recurrent_kernel (G·hidden, hidden), pre-activation = W_ih x + b_ih + W_hh h + b_hh".into(),
        Framework::Keras => "Keras layout: kernel (input, G·hidden), recurrent_kernel (hidden, G·hidden), pre-activation = x K + h R + b".into(),
    });
    v.push(format!("activation = {}", act_name(d.act)));
    if d.kind != CellKind::Rnn {
        v.push(format!("recurrent_activation = {}", act_name(d.ract)));
    }
    match d.kind {
        CellKind::Rnn => v.push("h_t = act(W_x x_t + b_x + W_h h_{t-1} + b_h)".into()),
        CellKind::Lstm => v.push("c_t = f*c_{t-1} + i*g, h_t = o*act(c_t)".into()),
        CellKind::Gru => {
            v.push(if d.reset_after {
                "reset after: n = act(W_xn x + b_xn + r*(W_hn h + b_hn))".into()
            } else {
                "reset before: n = act(W_xn x + b_xn + W_hn (r*h))".into()
            });
            v.push("h_t = (1-z)*n + z*h_{t-1}".into());
        }
    }
    if d.has_out {
        v.push(format!(
            "output layer y_t = {}(W_hy h_t + b_y)",
            act_name(d.out_act)
        ));
    }
    if untied {
        v.push("untied weights: timestep t uses weights_per_step[t-1]".into());
    }
    v
}

fn validate(
    req: &RecurrentRequest,
    limits: &Limits,
) -> ComputeResult<(Dims, Vec<Canon>, Vec<CellWeights>)> {
    let b_n = req.inputs.len();
    if b_n == 0 {
        return Err(ComputeError::new(
            "/inputs",
            "at least one sequence is needed",
        ));
    }
    let t_n = req.inputs[0].len();
    if t_n == 0 {
        return Err(ComputeError::new(
            "/inputs/0",
            "a sequence needs at least one timestep",
        ));
    }
    if t_n > limits.max_timesteps {
        return Err(ComputeError::new(
            "/inputs/0",
            format!(
                "{t_n} timesteps exceed the limit max_timesteps = {}",
                limits.max_timesteps
            ),
        ));
    }
    let n_in = req.inputs[0][0].len();
    if n_in == 0 {
        return Err(ComputeError::new(
            "/inputs/0/0",
            "the input size must be at least 1",
        ));
    }
    let total = b_n.saturating_mul(t_n).saturating_mul(n_in);
    if total > limits.max_tensor_elements {
        return Err(ComputeError::new(
            "/inputs",
            format!(
                "{total} input elements exceed the limit max_tensor_elements = {}",
                limits.max_tensor_elements
            ),
        ));
    }
    for (b, seq) in req.inputs.iter().enumerate() {
        if seq.len() != t_n {
            return Err(ComputeError::new(
                format!("/inputs/{b}"),
                format!(
                    "all sequences must have {t_n} timesteps, this one has {}",
                    seq.len()
                ),
            ));
        }
        for (t, x) in seq.iter().enumerate() {
            check_vector(x, n_in, &format!("/inputs/{b}/{t}"), "input vector")?;
        }
    }
    let (sets, base): (Vec<CellWeights>, String) = match (&req.weights, &req.weights_per_step) {
        (Some(w), None) => (vec![w.clone()], "/weights".into()),
        (None, Some(ws)) => {
            if ws.len() != t_n {
                return Err(ComputeError::new(
                    "/weights_per_step",
                    format!("{} weight sets for {t_n} timesteps", ws.len()),
                ));
            }
            (ws.clone(), "/weights_per_step".into())
        }
        (Some(_), Some(_)) => {
            return Err(ComputeError::new(
                "/weights_per_step",
                "give either `weights` or `weights_per_step`, not both",
            ));
        }
        (None, None) => return Err(ComputeError::new("/weights", "weights are required")),
    };
    let untied = req.weights_per_step.is_some();
    let g: usize = match req.cell {
        CellKind::Rnn => 1,
        CellKind::Lstm => 4,
        CellKind::Gru => 3,
    };
    let w0 = &sets[0];
    let rk_ptr = if untied {
        format!("{base}/0/recurrent_kernel")
    } else {
        format!("{base}/recurrent_kernel")
    };
    let h = match req.framework {
        Framework::Pytorch => w0.recurrent_kernel.first().map_or(0, |r| r.len()),
        Framework::Keras => w0.recurrent_kernel.len(),
    };
    if h == 0 {
        return Err(ComputeError::new(
            rk_ptr,
            "the recurrent kernel is empty (hidden size 0)",
        ));
    }
    let too_big = |n: usize| n > limits.max_tensor_elements;
    if too_big(g.saturating_mul(h).saturating_mul(h.max(n_in))) {
        return Err(ComputeError::new(
            rk_ptr,
            format!(
                "the weight matrices exceed the limit max_tensor_elements = {}",
                limits.max_tensor_elements
            ),
        ));
    }
    let (has_out, n_out) = match &w0.output_kernel {
        None => (false, h),
        Some(k) => (
            true,
            match req.framework {
                Framework::Pytorch => k.len(),
                Framework::Keras => k.first().map_or(0, |r| r.len()),
            },
        ),
    };
    if has_out && (n_out == 0 || too_big(n_out.saturating_mul(h))) {
        let p = if untied {
            format!("{base}/0/output_kernel")
        } else {
            format!("{base}/output_kernel")
        };
        return Err(ComputeError::new(
            p,
            "the output layer must have between 1 and max_tensor_elements / hidden units",
        ));
    }
    let activations = b_n.saturating_mul(t_n).saturating_mul(g * h + n_out);
    if activations > limits.max_tensor_elements {
        return Err(ComputeError::new(
            "/inputs",
            format!(
                "batch × timesteps × (gates·hidden + outputs) = {activations} activations exceed the limit max_tensor_elements = {}",
                limits.max_tensor_elements
            ),
        ));
    }
    let work = (b_n as u64)
        .saturating_mul(t_n as u64)
        .saturating_mul((g * h) as u64)
        .saturating_mul((n_in + h + n_out) as u64);
    if work > limits.max_mult_adds {
        return Err(ComputeError::new(
            "/inputs",
            format!(
                "{work} multiply-adds exceed the limit max_mult_adds = {}",
                limits.max_mult_adds
            ),
        ));
    }
    if req.reset_after.is_some() && req.cell != CellKind::Gru {
        return Err(ComputeError::new(
            "/reset_after",
            "reset_after applies to GRU cells only",
        ));
    }
    let reset_after = req.reset_after.unwrap_or(true);
    if !reset_after && req.framework == Framework::Pytorch {
        return Err(ComputeError::new(
            "/reset_after",
            "PyTorch's GRU always applies the reset gate after the recurrent matmul; use framework `keras` for reset_after=false",
        ));
    }
    if req.recurrent_activation.is_some() && req.cell == CellKind::Rnn {
        return Err(ComputeError::new(
            "/recurrent_activation",
            "a vanilla RNN has no gates",
        ));
    }
    if req.c0.is_some() && req.cell != CellKind::Lstm {
        return Err(ComputeError::new("/c0", "only an LSTM has a cell state"));
    }
    if req.output_activation.is_some() && !has_out {
        return Err(ComputeError::new(
            "/output_activation",
            "output_activation needs output_kernel",
        ));
    }
    let d = Dims {
        kind: req.cell,
        fw: req.framework,
        g,
        n_in,
        h,
        n_out,
        has_out,
        act: req.activation.unwrap_or(Activation::Tanh),
        ract: req.recurrent_activation.unwrap_or(Activation::Sigmoid),
        out_act: req.output_activation.unwrap_or(Activation::Linear),
        reset_after,
    };
    let mut canon = Vec::with_capacity(sets.len());
    for (i, w) in sets.iter().enumerate() {
        let ptr = if untied {
            format!("{base}/{i}")
        } else {
            base.clone()
        };
        canon.push(load(w, &d, &ptr)?);
        if i > 0
            && (w.bias.is_some() != w0.bias.is_some()
                || w.recurrent_bias.is_some() != w0.recurrent_bias.is_some())
        {
            return Err(ComputeError::new(
                format!("{ptr}/bias"),
                "every weight set must have the same biases",
            ));
        }
    }
    for (field, st) in [("h0", &req.h0), ("c0", &req.c0)] {
        if let Some(s) = st {
            check_matrix(
                s,
                b_n,
                h,
                &format!("/{field}"),
                &format!("{field} (batch × hidden)"),
            )?;
        }
    }
    if let Some(l) = &req.loss {
        let tt = match l.on {
            LossOn::AllTimesteps => t_n,
            LossOn::LastTimestep => 1,
        };
        if l.targets.len() != b_n {
            return Err(ComputeError::new(
                "/loss/targets",
                format!(
                    "targets for {} sequences, the batch has {b_n}",
                    l.targets.len()
                ),
            ));
        }
        for (b, seq) in l.targets.iter().enumerate() {
            check_matrix(
                seq,
                tt,
                n_out,
                &format!("/loss/targets/{b}"),
                &format!("targets (T' = {tt} × output {n_out})"),
            )?;
        }
    }
    Ok((d, canon, sets))
}

fn step_forward(d: &Dims, w: &Canon, x: &[f64], h_prev: &[f64], c_prev: &[f64]) -> Cache {
    let (n_in, h) = (d.n_in, d.h);
    let lin = |s: usize| -> (Vec<f64>, Vec<f64>) {
        let mut ax = matvec(&w.wx[s], h, n_in, x);
        add_into(&mut ax, &w.bx[s]);
        let mut ah = matvec(&w.wh[s], h, h, h_prev);
        add_into(&mut ah, &w.bh[s]);
        (ax, ah)
    };
    let mut pre = Vec::with_capacity(d.g);
    let mut val = Vec::with_capacity(d.g);
    let mut hn = Vec::new();
    let mut c = Vec::new();
    let hnew: Vec<f64>;
    match d.kind {
        CellKind::Rnn | CellKind::Lstm => {
            for s in 0..d.g {
                let (ax, ah) = lin(s);
                let p: Vec<f64> = ax.iter().zip(&ah).map(|(a, b)| a + b).collect();
                let act = d.gate_act(s);
                val.push(p.iter().map(|&z| act.apply(z)).collect::<Vec<f64>>());
                pre.push(p);
            }
            if d.kind == CellKind::Rnn {
                hnew = val[0].clone();
            } else {
                c = (0..h)
                    .map(|j| val[1][j] * c_prev[j] + val[0][j] * val[2][j])
                    .collect();
                hnew = (0..h).map(|j| val[3][j] * d.act.apply(c[j])).collect();
            }
        }
        CellKind::Gru => {
            for s in 0..2 {
                let (ax, ah) = lin(s);
                let p: Vec<f64> = ax.iter().zip(&ah).map(|(a, b)| a + b).collect();
                val.push(p.iter().map(|&z| d.ract.apply(z)).collect::<Vec<f64>>());
                pre.push(p);
            }
            let r = &val[0];
            let mut ax = matvec(&w.wx[2], h, n_in, x);
            add_into(&mut ax, &w.bx[2]);
            let p: Vec<f64> = if d.reset_after {
                let mut ah = matvec(&w.wh[2], h, h, h_prev);
                add_into(&mut ah, &w.bh[2]);
                let p = (0..h).map(|j| ax[j] + r[j] * ah[j]).collect();
                hn = ah;
                p
            } else {
                let rh: Vec<f64> = (0..h).map(|j| r[j] * h_prev[j]).collect();
                let ah = matvec(&w.wh[2], h, h, &rh);
                hn = rh;
                (0..h).map(|j| ax[j] + ah[j] + w.bh[2][j]).collect()
            };
            val.push(p.iter().map(|&z| d.act.apply(z)).collect());
            pre.push(p);
            let z = &val[1];
            let n = &val[2];
            hnew = (0..h)
                .map(|j| (1.0 - z[j]) * n[j] + z[j] * h_prev[j])
                .collect();
        }
    }
    let (y_pre, y) = if d.has_out {
        let mut yp = matvec(&w.wy, d.n_out, h, &hnew);
        add_into(&mut yp, &w.by);
        let y = yp.iter().map(|&v| d.out_act.apply(v)).collect();
        (yp, y)
    } else {
        (Vec::new(), Vec::new())
    };
    Cache {
        x: x.to_vec(),
        h_prev: h_prev.to_vec(),
        c_prev: c_prev.to_vec(),
        pre,
        val,
        hn,
        c,
        h: hnew,
        y_pre,
        y,
    }
}

fn trace_of(d: &Dims, c: &Cache, t: usize) -> TimestepTrace {
    let names = d.gate_names();
    let mut gates: Vec<GateTrace> = names
        .iter()
        .enumerate()
        .map(|(s, n)| GateTrace {
            name: (*n).to_string(),
            pre_activation: c.pre[s].clone(),
            value: c.val[s].clone(),
        })
        .collect();
    if d.kind == CellKind::Gru && d.reset_after {
        gates.push(GateTrace {
            name: "hn".into(),
            pre_activation: c.hn.clone(),
            value: c.hn.clone(),
        });
    }
    TimestepTrace {
        t,
        gates,
        c: (d.kind == CellKind::Lstm).then(|| c.c.clone()),
        h: c.h.clone(),
        y_pre: d.has_out.then(|| c.y_pre.clone()),
        y: d.has_out.then(|| c.y.clone()),
    }
}

fn write_step(d: &Dims, w: &Canon, c: &Cache, t: usize, out: &mut StepLog) {
    let (n_in, h) = (d.n_in, d.h);
    let names = d.gate_names();
    for (s, name) in names.iter().enumerate() {
        let act = d.gate_act(s);
        for j in 0..h {
            let wrow = &w.wx[s][j * n_in..(j + 1) * n_in];
            let urow = &w.wh[s][j * h..(j + 1) * h];
            let inner = if d.kind == CellKind::Gru && s == 2 {
                if d.reset_after {
                    format!(
                        "{} + {}*({})",
                        expand(
                            wrow,
                            &c.x,
                            &[],
                            &[],
                            w.bx[s][j],
                            c.pre[s][j] - c.val[0][j] * c.hn[j]
                        ),
                        fmt_num(c.val[0][j]),
                        expand(urow, &c.h_prev, &[], &[], w.bh[s][j], c.hn[j])
                    )
                } else {
                    expand(
                        wrow,
                        &c.x,
                        urow,
                        &c.hn,
                        w.bx[s][j] + w.bh[s][j],
                        c.pre[s][j],
                    )
                }
            } else {
                expand(
                    wrow,
                    &c.x,
                    urow,
                    &c.h_prev,
                    w.bx[s][j] + w.bh[s][j],
                    c.pre[s][j],
                )
            };
            let lbl = if d.kind == CellKind::Rnn {
                "h".to_string()
            } else {
                (*name).to_string()
            };
            let idx = if h > 1 {
                format!("[{j}]")
            } else {
                String::new()
            };
            out.push(
                format!(
                    "{lbl}{t}{idx} = {}({inner}) = {}({}) = {}",
                    act.sym(),
                    act.sym(),
                    fmt_num(c.pre[s][j]),
                    fmt_num(c.val[s][j])
                ),
                format!(
                    "{lbl}_{{{t}}}{idx} = {}({}) = {}",
                    act.latex(),
                    fmt_num(c.pre[s][j]),
                    fmt_num(c.val[s][j])
                ),
            );
        }
    }
    match d.kind {
        CellKind::Rnn => {}
        CellKind::Lstm => {
            for j in 0..h {
                let idx = if h > 1 {
                    format!("[{j}]")
                } else {
                    String::new()
                };
                out.push(
                    format!(
                        "c{t}{idx} = f*c_prev + i*g = {}*{} + {}*{} = {}",
                        fmt_num(c.val[1][j]),
                        paren(c.c_prev[j]),
                        fmt_num(c.val[0][j]),
                        paren(c.val[2][j]),
                        fmt_num(c.c[j])
                    ),
                    format!("c_{{{t}}}{idx} = {}", fmt_num(c.c[j])),
                );
                out.push(
                    format!(
                        "h{t}{idx} = o*{}(c{t}) = {}*{}({}) = {}",
                        d.act.sym(),
                        fmt_num(c.val[3][j]),
                        d.act.sym(),
                        fmt_num(c.c[j]),
                        fmt_num(c.h[j])
                    ),
                    format!("h_{{{t}}}{idx} = {}", fmt_num(c.h[j])),
                );
            }
        }
        CellKind::Gru => {
            for j in 0..h {
                let idx = if h > 1 {
                    format!("[{j}]")
                } else {
                    String::new()
                };
                out.push(
                    format!(
                        "h{t}{idx} = (1-z)*n + z*h_prev = {}*{} + {}*{} = {}",
                        fmt_num(1.0 - c.val[1][j]),
                        paren(c.val[2][j]),
                        fmt_num(c.val[1][j]),
                        paren(c.h_prev[j]),
                        fmt_num(c.h[j])
                    ),
                    format!("h_{{{t}}}{idx} = {}", fmt_num(c.h[j])),
                );
            }
        }
    }
    if d.has_out {
        for o in 0..d.n_out {
            let idx = if d.n_out > 1 {
                format!("[{o}]")
            } else {
                String::new()
            };
            let inner = expand(
                &w.wy[o * h..(o + 1) * h],
                &c.h,
                &[],
                &[],
                w.by[o],
                c.y_pre[o],
            );
            out.push(
                format!(
                    "y{t}{idx} = {}({inner}) = {}",
                    d.out_act.sym(),
                    fmt_num(c.y[o])
                ),
                format!(
                    "y_{{{t}}}{idx} = {}({}) = {}",
                    d.out_act.latex(),
                    fmt_num(c.y_pre[o]),
                    fmt_num(c.y[o])
                ),
            );
        }
    }
}

/// The loss and dL/d(output) per sequence and timestep (zeros where the loss
/// does not look).
fn loss_and_grad(
    d: &Dims,
    spec: &LossSpec,
    caches: &[Vec<Cache>],
    out: &mut StepLog,
) -> (f64, Vec<Vec<Vec<f64>>>) {
    let b_n = caches.len() as f64;
    let t_n = caches.first().map_or(0, |s| s.len());
    let n_out = d.n_out as f64;
    let (scale, dscale, name) = match spec.kind {
        LossKind::Mse => (1.0 / (b_n * n_out), 2.0 / (b_n * n_out), "MSE"),
        LossKind::Sse => (1.0, 2.0, "SSE"),
        LossKind::HalfSse => (0.5, 1.0, "½SSE"),
    };
    let mut loss = 0.0;
    let mut grads = Vec::with_capacity(caches.len());
    let mut per_t = vec![0.0; t_n];
    for (b, seq) in caches.iter().enumerate() {
        let mut gs = vec![vec![0.0; d.n_out]; seq.len()];
        for (t, c) in seq.iter().enumerate() {
            let tgt_row = match spec.on {
                LossOn::AllTimesteps => Some(t),
                LossOn::LastTimestep => (t + 1 == seq.len()).then_some(0),
            };
            let Some(tr) = tgt_row else { continue };
            let y = if d.has_out { &c.y } else { &c.h };
            let target = &spec.targets[b][tr];
            for o in 0..d.n_out {
                let e = y[o] - target[o];
                per_t[t] += scale * e * e;
                gs[t][o] = dscale * e;
            }
        }
        grads.push(gs);
    }
    for (t, l) in per_t.iter().enumerate() {
        let included = match spec.on {
            LossOn::AllTimesteps => true,
            LossOn::LastTimestep => t + 1 == t_n,
        };
        if included {
            loss += l;
            out.push(
                format!("{name} at t = {}: {}", t + 1, fmt_num(*l)),
                format!("L_{{{}}} = {}", t + 1, fmt_num(*l)),
            );
        }
    }
    out.push(
        format!("L = {}", fmt_num(loss)),
        format!("L = {}", fmt_num(loss)),
    );
    (loss, grads)
}

/// BPTT results of one sequence.
struct Back {
    /// dL/dh0.
    dh0: Vec<f64>,
    /// dL/dc0 (zeros unless LSTM).
    dc0: Vec<f64>,
    /// dL/dx_t per timestep.
    dx: Vec<Vec<f64>>,
    /// Total dL/dh_t per timestep (from the output and from timestep t+1).
    dh: Vec<Vec<f64>>,
}

/// BPTT over one sequence, accumulating weight gradients into `grads`.
fn backward(
    d: &Dims,
    canon: &[Canon],
    grads: &mut [Canon],
    seq: &[Cache],
    dout: &[Vec<f64>],
) -> Back {
    let (n_in, h) = (d.n_in, d.h);
    let mut dh_next = vec![0.0; h];
    let mut dc_next = vec![0.0; h];
    let mut dxs = vec![vec![0.0; n_in]; seq.len()];
    let mut dhs = vec![vec![0.0; h]; seq.len()];
    for t in (0..seq.len()).rev() {
        let wi = if canon.len() > 1 { t } else { 0 };
        let (Some(w), Some(g)) = (canon.get(wi), grads.get_mut(wi)) else {
            continue;
        };
        let c = &seq[t];
        let mut dh = dh_next.clone();
        if d.has_out {
            let day: Vec<f64> = (0..d.n_out)
                .map(|o| dout[t][o] * d.out_act.deriv(c.y_pre[o], c.y[o]))
                .collect();
            outer_add(&mut g.wy, &day, &c.h);
            add_into(&mut g.by, &day);
            matvec_t_add(&w.wy, d.n_out, h, &day, &mut dh);
        } else {
            add_into(&mut dh, &dout[t]);
        }
        dhs[t] = dh.clone();
        let mut dx = vec![0.0; n_in];
        let mut dh_prev = vec![0.0; h];
        let mut dc_prev = vec![0.0; h];
        // Gradient w.r.t. each gate's pre-activation.
        let mut dpre: Vec<Vec<f64>> = vec![vec![0.0; h]; d.g];
        match d.kind {
            CellKind::Rnn => {
                for j in 0..h {
                    dpre[0][j] = dh[j] * d.act.deriv(c.pre[0][j], c.val[0][j]);
                }
            }
            CellKind::Lstm => {
                for j in 0..h {
                    let tc = d.act.apply(c.c[j]);
                    let dc = dc_next[j] + dh[j] * c.val[3][j] * d.act.deriv(c.c[j], tc);
                    let d_i = dc * c.val[2][j];
                    let d_f = dc * c.c_prev[j];
                    let d_g = dc * c.val[0][j];
                    let d_o = dh[j] * tc;
                    dc_prev[j] = dc * c.val[1][j];
                    for (s, dv) in [(0, d_i), (1, d_f), (2, d_g), (3, d_o)] {
                        dpre[s][j] = dv * d.gate_act(s).deriv(c.pre[s][j], c.val[s][j]);
                    }
                }
            }
            CellKind::Gru => {
                let (r, z, n) = (&c.val[0], &c.val[1], &c.val[2]);
                let mut dr = vec![0.0; h];
                for j in 0..h {
                    let dn = dh[j] * (1.0 - z[j]);
                    let dz = dh[j] * (c.h_prev[j] - n[j]);
                    dh_prev[j] += dh[j] * z[j];
                    dpre[2][j] = dn * d.act.deriv(c.pre[2][j], n[j]);
                    dpre[1][j] = dz * d.ract.deriv(c.pre[1][j], z[j]);
                }
                if d.reset_after {
                    let dhn: Vec<f64> = (0..h).map(|j| dpre[2][j] * r[j]).collect();
                    for j in 0..h {
                        dr[j] = dpre[2][j] * c.hn[j];
                    }
                    outer_add(&mut g.wh[2], &dhn, &c.h_prev);
                    add_into(&mut g.bh[2], &dhn);
                    matvec_t_add(&w.wh[2], h, h, &dhn, &mut dh_prev);
                } else {
                    // a_n = W_xn x + b_xn + W_hn (r*h) + b_hn
                    let mut drh = vec![0.0; h];
                    matvec_t_add(&w.wh[2], h, h, &dpre[2], &mut drh);
                    outer_add(&mut g.wh[2], &dpre[2], &c.hn);
                    add_into(&mut g.bh[2], &dpre[2]);
                    for j in 0..h {
                        dr[j] = drh[j] * c.h_prev[j];
                        dh_prev[j] += drh[j] * r[j];
                    }
                }
                outer_add(&mut g.wx[2], &dpre[2], &c.x);
                add_into(&mut g.bx[2], &dpre[2]);
                matvec_t_add(&w.wx[2], h, n_in, &dpre[2], &mut dx);
                for j in 0..h {
                    dpre[0][j] = dr[j] * d.ract.deriv(c.pre[0][j], r[j]);
                }
            }
        }
        // Shared part: gates whose pre-activation is W_x x + b_x + W_h h + b_h.
        let plain = if d.kind == CellKind::Gru { 2 } else { d.g };
        for (s, dp) in dpre.iter().enumerate().take(plain) {
            outer_add(&mut g.wx[s], dp, &c.x);
            outer_add(&mut g.wh[s], dp, &c.h_prev);
            add_into(&mut g.bx[s], dp);
            add_into(&mut g.bh[s], dp);
            matvec_t_add(&w.wx[s], h, n_in, dp, &mut dx);
            matvec_t_add(&w.wh[s], h, h, dp, &mut dh_prev);
        }
        dxs[t] = dx;
        dh_next = dh_prev;
        dc_next = dc_prev;
    }
    Back {
        dh0: dh_next,
        dc0: dc_next,
        dx: dxs,
        dh: dhs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnn_req(act: Activation) -> RecurrentRequest {
        RecurrentRequest {
            cell: CellKind::Rnn,
            framework: Framework::Pytorch,
            inputs: vec![vec![vec![0.5, 0.6]]],
            weights: Some(CellWeights {
                kernel: vec![vec![0.2, 0.2], vec![0.2, 0.2]],
                recurrent_kernel: vec![vec![0.2, 0.2], vec![0.2, 0.2]],
                bias: Some(vec![0.2, 0.2]),
                recurrent_bias: None,
                output_kernel: Some(vec![vec![0.2, 0.2]]),
                output_bias: Some(vec![0.2]),
            }),
            weights_per_step: None,
            h0: Some(vec![vec![0.3, 0.4]]),
            c0: None,
            activation: Some(act),
            recurrent_activation: None,
            reset_after: None,
            output_activation: Some(Activation::Sigmoid),
            loss: None,
        }
    }

    #[test]
    fn exam_rnn_two_tanh_units_one_sigmoid_output() {
        let r = recurrent(&rnn_req(Activation::Tanh), &Limits::default()).unwrap();
        let ts = &r.sequences[0].timesteps[0];
        // pre = 0.2*(0.5+0.6) + 0.2*(0.3+0.4) + 0.2 = 0.56
        let h = 0.56f64.tanh();
        assert!((ts.h[0] - h).abs() < 1e-15);
        let y = 1.0 / (1.0 + (-(0.4 * h + 0.2f64)).exp());
        assert!((ts.y.as_ref().unwrap()[0] - y).abs() < 1e-15);
        assert!(r.steps.iter().any(|s| {
            s.text
                .starts_with("h1[0] = tanh(0.2*0.5 + 0.2*0.6 + 0.2*0.3 + 0.2*0.4 + 0.2)")
        }));
    }

    #[test]
    fn bptt_matches_finite_differences_for_every_cell() {
        for (cell, reset_after, fw) in [
            (CellKind::Rnn, None, Framework::Pytorch),
            (CellKind::Lstm, None, Framework::Keras),
            (CellKind::Gru, Some(true), Framework::Pytorch),
            (CellKind::Gru, Some(false), Framework::Keras),
        ] {
            let g = match cell {
                CellKind::Rnn => 1,
                CellKind::Lstm => 4,
                CellKind::Gru => 3,
            };
            let (n_in, h) = (2, 2);
            let val = |k: usize| ((k as f64) * 0.37).sin() * 0.8;
            let mat = |r: usize, c: usize, off: usize| {
                (0..r)
                    .map(|i| (0..c).map(|j| val(off + i * c + j)).collect())
                    .collect::<Vec<Vec<f64>>>()
            };
            let (kernel, rk) = match fw {
                Framework::Pytorch => (mat(g * h, n_in, 1), mat(g * h, h, 50)),
                Framework::Keras => (mat(n_in, g * h, 1), mat(h, g * h, 50)),
            };
            let req = RecurrentRequest {
                cell,
                framework: fw,
                inputs: vec![mat(3, n_in, 100), mat(3, n_in, 120)],
                weights: Some(CellWeights {
                    kernel,
                    recurrent_kernel: rk,
                    bias: Some((0..g * h).map(|k| val(200 + k)).collect()),
                    recurrent_bias: (reset_after != Some(false))
                        .then(|| (0..g * h).map(|k| val(300 + k)).collect()),
                    output_kernel: None,
                    output_bias: None,
                }),
                weights_per_step: None,
                h0: Some(mat(2, h, 400)),
                c0: (cell == CellKind::Lstm).then(|| mat(2, h, 500)),
                activation: None,
                recurrent_activation: None,
                reset_after,
                output_activation: None,
                loss: Some(LossSpec {
                    targets: vec![mat(3, h, 600), mat(3, h, 700)],
                    on: LossOn::AllTimesteps,
                    kind: LossKind::Mse,
                }),
            };
            let r = recurrent(&req, &Limits::default()).unwrap();
            let grads = r.gradients.unwrap();
            let eps = 1e-6;
            let loss_at =
                |rq: &RecurrentRequest| recurrent(rq, &Limits::default()).unwrap().loss.unwrap();
            for i in 0..n_in {
                for j in 0..g * h {
                    let (a, b) = match fw {
                        Framework::Pytorch => (j, i),
                        Framework::Keras => (i, j),
                    };
                    let mut p = req.clone();
                    let mut m = req.clone();
                    p.weights.as_mut().unwrap().kernel[a][b] += eps;
                    m.weights.as_mut().unwrap().kernel[a][b] -= eps;
                    let fd = (loss_at(&p) - loss_at(&m)) / (2.0 * eps);
                    let an = grads.weights[0].kernel[a][b];
                    assert!(
                        (fd - an).abs() < 1e-7,
                        "{cell:?} kernel[{a}][{b}]: fd {fd} vs {an}"
                    );
                }
            }
            let mut p = req.clone();
            let mut m = req.clone();
            p.h0.as_mut().unwrap()[1][0] += eps;
            m.h0.as_mut().unwrap()[1][0] -= eps;
            let fd = (loss_at(&p) - loss_at(&m)) / (2.0 * eps);
            assert!((fd - grads.h0[1][0]).abs() < 1e-7, "{cell:?} h0");
        }
    }

    #[test]
    fn keras_gru_gate_order_is_z_r_h() {
        // Only the first Keras block (z) gets a large input weight: z ≈ 1, so
        // h_1 ≈ h_0 whatever the candidate is.
        let mut kernel = vec![vec![0.0; 3]];
        kernel[0][0] = 50.0;
        let req = RecurrentRequest {
            cell: CellKind::Gru,
            framework: Framework::Keras,
            inputs: vec![vec![vec![1.0]]],
            weights: Some(CellWeights {
                kernel,
                recurrent_kernel: vec![vec![0.0, 0.0, 3.0]],
                bias: None,
                recurrent_bias: None,
                output_kernel: None,
                output_bias: None,
            }),
            weights_per_step: None,
            h0: Some(vec![vec![0.7]]),
            c0: None,
            activation: None,
            recurrent_activation: None,
            reset_after: None,
            output_activation: None,
            loss: None,
        };
        let r = recurrent(&req, &Limits::default()).unwrap();
        let ts = &r.sequences[0].timesteps[0];
        let z = ts.gates.iter().find(|g| g.name == "z").unwrap().value[0];
        let rr = ts.gates.iter().find(|g| g.name == "r").unwrap().value[0];
        assert!(z >= 1.0 - 1e-15 && (rr - 0.5).abs() < 1e-15);
        assert!((ts.h[0] - 0.7).abs() < 1e-15);
        // n = tanh(r * (3 * 0.7)) with r = 0.5 (reset after)
        let n = ts.gates.iter().find(|g| g.name == "n").unwrap().value[0];
        assert!((n - (0.5f64 * 2.1).tanh()).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_shapes_with_pointers() {
        let l = Limits::default();
        let mut r = rnn_req(Activation::Tanh);
        r.weights.as_mut().unwrap().kernel[1] = vec![0.1];
        assert_eq!(recurrent(&r, &l).unwrap_err().pointer, "/weights/kernel/1");
        let mut r = rnn_req(Activation::Tanh);
        r.inputs[0][0][1] = f64::INFINITY;
        assert_eq!(recurrent(&r, &l).unwrap_err().pointer, "/inputs/0/0/1");
        let mut r = rnn_req(Activation::Tanh);
        r.inputs = vec![vec![vec![0.0, 0.0]; 5]];
        let e = recurrent(
            &r,
            &Limits {
                max_timesteps: 4,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(e.message.contains("max_timesteps"));
        let mut r = rnn_req(Activation::Tanh);
        r.h0 = Some(vec![vec![0.0]]);
        assert_eq!(recurrent(&r, &l).unwrap_err().pointer, "/h0/0");
    }
}
