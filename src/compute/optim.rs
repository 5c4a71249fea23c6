//! Optimizer steps with the full optimizer state after every step: SGD (plain,
//! momentum in the PyTorch and the classic convention, Nesterov), Adagrad,
//! RMSprop (plain/centered, eps inside or outside the square root), Adam and
//! AdamW (PyTorch or Keras epsilon placement, optional AMSGrad), with L2 or
//! decoupled weight decay.
//!
//! Gradients come from the request (one per step, or the same every step) or
//! from a caller-supplied gradient function ([`run_with`]) that another engine
//! provides (loss and gradients of a model, or of an expression).
//!
//! The formulas replicate `torch.optim` and Keras 3 exactly (including the
//! PyTorch quirk that the momentum buffer of SGD is initialised to the first
//! gradient, without dampening).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::steps::{Step, StepLog, fmt_num};

/// Worked-step lines written per request; beyond this a single note says the
/// rest was omitted (the numbers are still all in the report).
const MAX_STEP_LINES: usize = 4_000;

/// One named parameter tensor, flattened in row-major order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// Name of the parameter, e.g. `w` or `b` (unique within the set).
    pub name: String,
    /// Its values, flattened row-major; a scalar is a one-element list.
    pub values: Vec<f64>,
}

/// An ordered set of named parameter tensors (also used for gradients, which
/// must list the same names with the same lengths).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct ParamSet(pub Vec<Param>);

impl ParamSet {
    /// Total number of scalar parameters.
    pub fn len_elements(&self) -> usize {
        self.0.iter().map(|p| p.values.len()).sum()
    }

    /// The values of the parameter called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.0
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.values.as_slice())
    }
}

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Stochastic gradient descent, optionally with momentum / Nesterov.
    Sgd,
    /// Adagrad: accumulated squared gradients.
    Adagrad,
    /// RMSprop: exponential moving average of squared gradients.
    Rmsprop,
    /// Adam with bias correction.
    Adam,
    /// AdamW: Adam with decoupled weight decay.
    Adamw,
}

/// How the momentum buffer is defined (SGD and RMSprop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MomentumConvention {
    /// PyTorch: `v = mu*v + (1-dampening)*g; p -= lr*v` (first step `v = g`).
    /// RMSprop: `v = mu*v + g/denom; p -= lr*v`.
    #[default]
    Pytorch,
    /// Classic / Keras: `v = mu*v - lr*g; p += v` (`v0 = 0`).
    /// RMSprop (Keras): `v = mu*v + lr*g/denom; p -= v`.
    Classic,
}

/// How Nesterov momentum is computed (SGD only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NesterovFormulation {
    /// What PyTorch and Keras implement: the gradient at the current point,
    /// PyTorch `p -= lr*(g + mu*v)`, classic/Keras `p += mu*v - lr*g` (with the
    /// already updated `v`).
    #[default]
    Reformulated,
    /// The textbook look-ahead: the gradient is evaluated at the look-ahead
    /// point (`p + mu*v` classic, `p - lr*mu*v` PyTorch), then an ordinary
    /// momentum step is taken. Needs a gradient function (an expression or a
    /// model), not given gradients.
    Lookahead,
}

/// Where epsilon goes in Adagrad / RMSprop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EpsPlacement {
    /// PyTorch: `g / (sqrt(s) + eps)`.
    #[default]
    OutsideSqrt,
    /// Keras: `g / sqrt(s + eps)`.
    InsideSqrt,
}

/// Where epsilon goes in Adam / AdamW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdamEpsStyle {
    /// PyTorch (and the Adam paper's algorithm 1):
    /// `p -= lr * m_hat / (sqrt(v_hat) + eps)`.
    #[default]
    Pytorch,
    /// Keras (the paper's "efficient version"):
    /// `lr_t = lr*sqrt(1-b2^t)/(1-b1^t); p -= lr_t * m / (sqrt(v) + eps_hat)`.
    Keras,
}

/// How weight decay enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeightDecayMode {
    /// L2 penalty added to the gradient: `g = g + wd*p` (PyTorch SGD, Adagrad,
    /// RMSprop, Adam).
    L2,
    /// Decoupled: `p = p - lr*wd*p` before the update (PyTorch AdamW, every
    /// Keras 3 optimizer).
    Decoupled,
}

/// The optimizer and its hyper-parameters. Defaults are PyTorch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The update rule.
    pub algorithm: Algorithm,
    /// Learning rate `lr` (eta), > 0. Alias `learning_rate`.
    #[serde(alias = "learning_rate")]
    pub lr: f64,
    /// Momentum factor `mu` (SGD, RMSprop), in [0, 1). Default 0.
    #[serde(default)]
    pub momentum: f64,
    /// Dampening of the PyTorch SGD momentum buffer, in [0, 1]. Default 0.
    #[serde(default)]
    pub dampening: f64,
    /// Nesterov momentum (SGD; needs momentum > 0). Default false.
    #[serde(default)]
    pub nesterov: bool,
    /// Momentum buffer convention (SGD, RMSprop). Default `pytorch`.
    #[serde(default)]
    pub momentum_convention: MomentumConvention,
    /// Nesterov formulation (SGD). Default `reformulated`.
    #[serde(default)]
    pub nesterov_formulation: NesterovFormulation,
    /// RMSprop decay of the squared-gradient average (PyTorch `alpha`, Keras
    /// `rho`, accepted as an alias). Default 0.99 (PyTorch; Keras uses 0.9).
    #[serde(default, alias = "rho")]
    pub alpha: Option<f64>,
    /// Centered RMSprop (divide by the estimated variance). Default false.
    #[serde(default)]
    pub centered: bool,
    /// Adam `beta1` (alias `beta_1`). Default 0.9.
    #[serde(default, alias = "beta_1")]
    pub beta1: Option<f64>,
    /// Adam `beta2` (alias `beta_2`). Default 0.999.
    #[serde(default, alias = "beta_2")]
    pub beta2: Option<f64>,
    /// Epsilon. Default: Adagrad 1e-10, RMSprop/Adam 1e-8 (PyTorch; Keras
    /// uses 1e-7 everywhere). Alias `epsilon`.
    #[serde(default, alias = "epsilon")]
    pub eps: Option<f64>,
    /// Epsilon placement for Adagrad and RMSprop. Default `outside_sqrt`.
    #[serde(default)]
    pub eps_placement: EpsPlacement,
    /// Epsilon placement for Adam and AdamW. Default `pytorch`.
    #[serde(default)]
    pub adam_eps_style: AdamEpsStyle,
    /// AMSGrad variant of Adam / AdamW (running maximum of `v`). Default false.
    #[serde(default)]
    pub amsgrad: bool,
    /// Weight decay factor `wd`. Default 0 (AdamW: 0.01, PyTorch's default).
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// How weight decay enters. Default `l2`; AdamW is always `decoupled`.
    #[serde(default)]
    pub weight_decay_mode: Option<WeightDecayMode>,
    /// Adagrad initial accumulator value. Default 0 (PyTorch; Keras uses 0.1).
    #[serde(default)]
    pub initial_accumulator_value: f64,
    /// Adagrad learning-rate decay (PyTorch `lr_decay`):
    /// `clr = lr / (1 + (t-1)*lr_decay)`. Default 0.
    #[serde(default)]
    pub lr_decay: f64,
}

/// Request: run `steps` optimizer steps from `params`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizerRequest {
    /// Optimizer and hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Initial parameter values.
    pub params: ParamSet,
    /// Number of steps. Default: the number of entries in `gradients`; required
    /// with `gradient` or `expression`.
    #[serde(default)]
    pub steps: Option<usize>,
    /// The same gradient used at every step (exactly one of `gradient`,
    /// `gradients`, `expression`).
    #[serde(default)]
    pub gradient: Option<ParamSet>,
    /// One gradient per step, in order.
    #[serde(default)]
    pub gradients: Option<Vec<ParamSet>>,
    /// A scalar loss as an expression in the parameter names, e.g.
    /// `w^2 + 3*b`; its gradient is recomputed at every step by the expression
    /// engine.
    #[serde(default)]
    pub expression: Option<String>,
}

/// Optimizer state of one parameter tensor after a step. Only the entries the
/// algorithm uses are present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParamState {
    /// Parameter name.
    pub name: String,
    /// SGD / RMSprop momentum buffer `v` (convention per `conventions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub velocity: Option<Vec<f64>>,
    /// Adam first moment `m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<Vec<f64>>,
    /// Adam second moment `v`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<Vec<f64>>,
    /// Adam bias-corrected first moment `m_hat = m / (1 - beta1^t)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m_hat: Option<Vec<f64>>,
    /// Adam bias-corrected second moment `v_hat = v / (1 - beta2^t)` (with
    /// AMSGrad: of the running maximum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v_hat: Option<Vec<f64>>,
    /// AMSGrad running maximum of `v`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v_max: Option<Vec<f64>>,
    /// Adagrad sum of squared gradients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accumulator: Option<Vec<f64>>,
    /// RMSprop moving average of squared gradients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub square_avg: Option<Vec<f64>>,
    /// Centered RMSprop moving average of gradients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_avg: Option<Vec<f64>>,
}

/// Everything after one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepRecord {
    /// Step number `t` (1-based).
    pub t: usize,
    /// Loss at the point where the gradient was taken (gradient-function mode
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Gradient used in this step, as given (before any L2 term).
    pub gradient: ParamSet,
    /// Effective learning rate of this step when it differs from `lr`
    /// (Adagrad with `lr_decay`, Adam with Keras epsilon style `lr_t`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_lr: Option<f64>,
    /// Parameters after the step.
    pub params: ParamSet,
    /// Optimizer state after the step, one entry per parameter.
    pub state: Vec<ParamState>,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OptimizerReport {
    /// The update rule used.
    pub algorithm: Algorithm,
    /// Every convention and hyper-parameter in force, with its formula.
    pub conventions: Vec<String>,
    /// Parameters before the first step.
    pub initial_params: ParamSet,
    /// One record per step.
    pub history: Vec<StepRecord>,
    /// Parameters after the last step.
    pub final_params: ParamSet,
    /// Worked steps, as an exam solution writes them.
    pub steps: Vec<Step>,
}

/// Runs an optimizer on given gradients (`gradient` or `gradients`).
/// Requests with `expression` need the expression engine: use [`run_with`].
pub fn optimizer_steps(req: &OptimizerRequest, limits: &Limits) -> ComputeResult<OptimizerReport> {
    if req.expression.is_some() {
        return Err(ComputeError::new(
            "/expression",
            "expression-driven runs need the expression engine; this entry point only takes given gradients",
        ));
    }
    let n_steps = match (&req.gradient, &req.gradients) {
        (Some(_), Some(_)) => {
            return Err(ComputeError::new(
                "/gradients",
                "give either `gradient` (same every step) or `gradients` (one per step), not both",
            ));
        }
        (None, None) => {
            return Err(ComputeError::new(
                "/gradient",
                "no gradients: give `gradient`, `gradients` or `expression`",
            ));
        }
        (Some(_), None) => req.steps.ok_or_else(|| {
            ComputeError::new("/steps", "`steps` is required with a constant `gradient`")
        })?,
        (None, Some(gs)) => match req.steps {
            Some(s) if s != gs.len() => {
                return Err(ComputeError::new(
                    "/steps",
                    format!("steps = {s} but {} gradients were given", gs.len()),
                ));
            }
            _ => gs.len(),
        },
    };
    if req.optimizer.nesterov
        && req.optimizer.nesterov_formulation == NesterovFormulation::Lookahead
    {
        return Err(ComputeError::new(
            "/optimizer/nesterov_formulation",
            "the look-ahead formulation needs the gradient at the look-ahead point: give an expression, not fixed gradients",
        ));
    }
    if let Some(g) = &req.gradient {
        check_same_shape(&req.params, g, "/gradient")?;
    }
    if let Some(gs) = &req.gradients {
        for (i, g) in gs.iter().enumerate() {
            check_same_shape(&req.params, g, &format!("/gradients/{i}"))?;
        }
    }
    let mut k = 0usize;
    run_with(&req.optimizer, &req.params, n_steps, limits, |_p| {
        let g = match (&req.gradient, &req.gradients) {
            (Some(g), _) => g.clone(),
            (None, Some(gs)) => gs
                .get(k)
                .cloned()
                .ok_or_else(|| ComputeError::new("/gradients", "fewer gradients than steps"))?,
            (None, None) => return Err(ComputeError::new("/gradient", "no gradients")),
        };
        k += 1;
        Ok((f64::NAN, g))
    })
}

/// Runs a request whose gradients come from `grad_fn` instead of the request
/// (the API layer builds `grad_fn` from `expression` with the expression
/// engine: loss value and gradient at the given point, one scalar parameter
/// per variable). `steps` is required; `gradient`/`gradients` must be absent.
pub fn optimizer_steps_with<F: FnMut(&ParamSet) -> ComputeResult<(f64, ParamSet)>>(
    req: &OptimizerRequest,
    limits: &Limits,
    grad_fn: F,
) -> ComputeResult<OptimizerReport> {
    if req.gradient.is_some() {
        return Err(ComputeError::new(
            "/gradient",
            "give either gradients or an expression, not both",
        ));
    }
    if req.gradients.is_some() {
        return Err(ComputeError::new(
            "/gradients",
            "give either gradients or an expression, not both",
        ));
    }
    let steps = req
        .steps
        .ok_or_else(|| ComputeError::new("/steps", "`steps` is required with an expression"))?;
    run_with(&req.optimizer, &req.params, steps, limits, grad_fn)
}

/// Runs `steps` optimizer steps from `initial`, asking `grad_fn` for the loss
/// and the gradient at the current point (for the Nesterov look-ahead
/// formulation: at the look-ahead point). `grad_fn` must return gradients with
/// the same names and lengths as `initial`; a NaN loss is reported as absent.
/// Errors in the configuration carry pointers under `/optimizer`.
pub fn run_with<F: FnMut(&ParamSet) -> ComputeResult<(f64, ParamSet)>>(
    config: &OptimizerConfig,
    initial: &ParamSet,
    steps: usize,
    limits: &Limits,
    mut grad_fn: F,
) -> ComputeResult<OptimizerReport> {
    let cfg = Resolved::new(config)?;
    validate_params(initial, limits)?;
    if steps > limits.max_optimizer_steps {
        return Err(ComputeError::new(
            "/steps",
            format!(
                "{steps} steps exceed the limit max_optimizer_steps = {}",
                limits.max_optimizer_steps
            ),
        ));
    }
    let total = steps.saturating_mul(initial.len_elements().max(1));
    if total > limits.max_tensor_elements {
        return Err(ComputeError::new(
            "/steps",
            format!(
                "steps × parameter elements = {total} exceeds the limit max_tensor_elements = {} (every step's state is reported)",
                limits.max_tensor_elements
            ),
        ));
    }
    let mut params: Vec<Vec<f64>> = initial.0.iter().map(|p| p.values.clone()).collect();
    let mut state: Vec<TensorState> = params
        .iter()
        .map(|p| TensorState::new(&cfg, p.len()))
        .collect();
    let mut out = StepLog::new(MAX_STEP_LINES);
    out.push(
        format!("Optimizer: {}", cfg.conventions.join("; ")),
        format!(
            "\\text{{Optimizer: {}}}",
            latex_escape(&cfg.conventions.join("; "))
        ),
    );
    let mut history = Vec::with_capacity(steps);
    for t in 1..=steps {
        let probe = if cfg.lookahead {
            let mut lp = initial.clone();
            for ((dst, p), st) in lp.0.iter_mut().zip(&params).zip(&state) {
                dst.values = p
                    .iter()
                    .zip(&st.velocity)
                    .map(|(&p, &v)| match cfg.convention {
                        MomentumConvention::Classic => p + cfg.momentum * v,
                        MomentumConvention::Pytorch => p - cfg.lr * cfg.momentum * v,
                    })
                    .collect();
            }
            lp
        } else {
            to_set(initial, &params)
        };
        let (loss, grad) = grad_fn(&probe)?;
        check_same_shape(initial, &grad, "/params").map_err(|e| {
            ComputeError::new(e.pointer, format!("gradient of step {t}: {}", e.message))
        })?;
        for (pi, g) in grad.0.iter().enumerate() {
            if let Some(j) = g.values.iter().position(|v| !v.is_finite()) {
                return Err(ComputeError::new(
                    format!("/params/{pi}/values/{j}"),
                    format!(
                        "the gradient of step {t} is not finite here ({})",
                        fmt_num(g.values[j])
                    ),
                ));
            }
        }
        if loss.is_finite() {
            out.push(
                format!("Step {t}: loss = {}", fmt_num(loss)),
                format!("\\text{{Step }}{t}:\\ L = {}", fmt_num(loss)),
            );
        } else {
            out.push(format!("Step {t}"), format!("\\text{{Step }}{t}"));
        }
        let mut eff_lr = None;
        for (pi, param) in initial.0.iter().enumerate() {
            let (Some(p), Some(st), Some(g)) =
                (params.get_mut(pi), state.get_mut(pi), grad.0.get(pi))
            else {
                continue;
            };
            let probe_p = probe.0.get(pi).map(|x| x.values.as_slice()).unwrap_or(&[]);
            let tensor = Tensor {
                name: &param.name,
                params: p,
                probe: probe_p,
                grad: &g.values,
                state: st,
            };
            eff_lr = update_tensor(&cfg, t, tensor, &mut out);
        }
        for (pi, p) in params.iter().enumerate() {
            if let Some(j) = p.iter().position(|v| !v.is_finite()) {
                return Err(ComputeError::new(
                    format!("/params/{pi}/values/{j}"),
                    format!("the parameter diverged to a non-finite value at step {t}"),
                ));
            }
        }
        history.push(StepRecord {
            t,
            loss: loss.is_finite().then_some(loss),
            gradient: grad,
            effective_lr: eff_lr,
            params: to_set(initial, &params),
            state: initial
                .0
                .iter()
                .zip(&state)
                .map(|(p, s)| s.report(&cfg, &p.name))
                .collect(),
        });
    }
    Ok(OptimizerReport {
        algorithm: cfg.algorithm,
        conventions: cfg.conventions.clone(),
        initial_params: initial.clone(),
        history,
        final_params: to_set(initial, &params),
        steps: out.finish(),
    })
}

// ---------------------------------------------------------------------------
// Validation and resolved configuration

fn validate_params(p: &ParamSet, limits: &Limits) -> ComputeResult<()> {
    if p.0.is_empty() {
        return Err(ComputeError::new("/params", "no parameters given"));
    }
    if p.len_elements() > limits.max_tensor_elements {
        return Err(ComputeError::new(
            "/params",
            format!(
                "{} parameter elements exceed the limit max_tensor_elements = {}",
                p.len_elements(),
                limits.max_tensor_elements
            ),
        ));
    }
    for (i, prm) in p.0.iter().enumerate() {
        if prm.values.is_empty() {
            return Err(ComputeError::new(
                format!("/params/{i}/values"),
                "a parameter needs at least one value",
            ));
        }
        if p.0.iter().take(i).any(|q| q.name == prm.name) {
            return Err(ComputeError::new(
                format!("/params/{i}/name"),
                format!("duplicate parameter name `{}`", prm.name),
            ));
        }
        if let Some(j) = prm.values.iter().position(|v| !v.is_finite()) {
            return Err(ComputeError::new(
                format!("/params/{i}/values/{j}"),
                "value is not a finite number",
            ));
        }
    }
    Ok(())
}

/// Checks that `g` has the names and lengths of `p`, in the same order, and
/// finite values.
fn check_same_shape(p: &ParamSet, g: &ParamSet, ptr: &str) -> ComputeResult<()> {
    if g.0.len() != p.0.len() {
        return Err(ComputeError::new(
            ptr,
            format!(
                "{} gradient tensors given for {} parameters",
                g.0.len(),
                p.0.len()
            ),
        ));
    }
    for (i, (a, b)) in p.0.iter().zip(&g.0).enumerate() {
        if a.name != b.name {
            return Err(ComputeError::new(
                format!("{ptr}/{i}/name"),
                format!(
                    "expected the gradient of `{}` here, got `{}`",
                    a.name, b.name
                ),
            ));
        }
        if a.values.len() != b.values.len() {
            return Err(ComputeError::new(
                format!("{ptr}/{i}/values"),
                format!(
                    "`{}` has {} values but its gradient has {}",
                    a.name,
                    a.values.len(),
                    b.values.len()
                ),
            ));
        }
        if let Some(j) = b.values.iter().position(|v| !v.is_finite()) {
            return Err(ComputeError::new(
                format!("{ptr}/{i}/values/{j}"),
                "value is not a finite number",
            ));
        }
    }
    Ok(())
}

fn to_set(template: &ParamSet, values: &[Vec<f64>]) -> ParamSet {
    ParamSet(
        template
            .0
            .iter()
            .zip(values)
            .map(|(p, v)| Param {
                name: p.name.clone(),
                values: v.clone(),
            })
            .collect(),
    )
}

#[derive(Debug, Clone)]
struct Resolved {
    algorithm: Algorithm,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    lookahead: bool,
    convention: MomentumConvention,
    alpha: f64,
    centered: bool,
    beta1: f64,
    beta2: f64,
    eps: f64,
    eps_placement: EpsPlacement,
    adam_eps: AdamEpsStyle,
    amsgrad: bool,
    wd: f64,
    wd_mode: WeightDecayMode,
    init_acc: f64,
    lr_decay: f64,
    conventions: Vec<String>,
}

fn finite_in(v: f64, lo: f64, hi: f64, hi_incl: bool, ptr: &str, what: &str) -> ComputeResult<f64> {
    let ok = v.is_finite() && v >= lo && if hi_incl { v <= hi } else { v < hi };
    if ok {
        Ok(v)
    } else {
        let close = if hi_incl { "]" } else { ")" };
        Err(ComputeError::new(
            format!("/optimizer/{ptr}"),
            format!(
                "{what} must be a finite number in [{}, {}{close}, got {}",
                fmt_num(lo),
                fmt_num(hi),
                fmt_num(v)
            ),
        ))
    }
}

impl Resolved {
    fn new(c: &OptimizerConfig) -> ComputeResult<Self> {
        use Algorithm::*;
        let a = c.algorithm;
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(ComputeError::new(
                "/optimizer/lr",
                "the learning rate must be a finite number > 0",
            ));
        }
        let momentum = finite_in(c.momentum, 0.0, 1.0, false, "momentum", "momentum")?;
        let dampening = finite_in(c.dampening, 0.0, 1.0, true, "dampening", "dampening")?;
        let alpha = finite_in(
            c.alpha.unwrap_or(0.99),
            0.0,
            1.0,
            false,
            "alpha",
            "alpha (rho)",
        )?;
        let beta1 = finite_in(c.beta1.unwrap_or(0.9), 0.0, 1.0, false, "beta1", "beta1")?;
        let beta2 = finite_in(c.beta2.unwrap_or(0.999), 0.0, 1.0, false, "beta2", "beta2")?;
        let default_eps = match a {
            Adagrad => 1e-10,
            _ => 1e-8,
        };
        let eps = finite_in(
            c.eps.unwrap_or(default_eps),
            0.0,
            f64::MAX,
            true,
            "eps",
            "eps",
        )?;
        let wd = finite_in(
            c.weight_decay
                .unwrap_or(if a == Adamw { 0.01 } else { 0.0 }),
            0.0,
            f64::MAX,
            true,
            "weight_decay",
            "weight_decay",
        )?;
        let init_acc = finite_in(
            c.initial_accumulator_value,
            0.0,
            f64::MAX,
            true,
            "initial_accumulator_value",
            "initial_accumulator_value",
        )?;
        let lr_decay = finite_in(c.lr_decay, 0.0, f64::MAX, true, "lr_decay", "lr_decay")?;
        let wd_mode = match (a, c.weight_decay_mode) {
            (Adamw, Some(WeightDecayMode::L2)) => {
                return Err(ComputeError::new(
                    "/optimizer/weight_decay_mode",
                    "AdamW always decouples weight decay; use algorithm `adam` for an L2 penalty",
                ));
            }
            (Adamw, _) => WeightDecayMode::Decoupled,
            (_, m) => m.unwrap_or(WeightDecayMode::L2),
        };
        // Reject settings the chosen algorithm does not have.
        let not_for = |field: &str, set: bool, allowed: &[Algorithm]| -> ComputeResult<()> {
            if set && !allowed.contains(&a) {
                Err(ComputeError::new(
                    format!("/optimizer/{field}"),
                    format!("`{field}` does not apply to {a:?}"),
                ))
            } else {
                Ok(())
            }
        };
        not_for("momentum", momentum != 0.0, &[Sgd, Rmsprop])?;
        not_for("dampening", dampening != 0.0, &[Sgd])?;
        not_for("nesterov", c.nesterov, &[Sgd])?;
        not_for("alpha", c.alpha.is_some(), &[Rmsprop])?;
        not_for("centered", c.centered, &[Rmsprop])?;
        not_for("beta1", c.beta1.is_some(), &[Adam, Adamw])?;
        not_for("beta2", c.beta2.is_some(), &[Adam, Adamw])?;
        not_for("eps", c.eps.is_some(), &[Adagrad, Rmsprop, Adam, Adamw])?;
        not_for("amsgrad", c.amsgrad, &[Adam, Adamw])?;
        not_for("initial_accumulator_value", init_acc != 0.0, &[Adagrad])?;
        not_for("lr_decay", lr_decay != 0.0, &[Adagrad])?;
        if c.nesterov && momentum == 0.0 {
            return Err(ComputeError::new(
                "/optimizer/nesterov",
                "Nesterov momentum needs momentum > 0",
            ));
        }
        if c.nesterov && dampening != 0.0 {
            return Err(ComputeError::new(
                "/optimizer/dampening",
                "Nesterov momentum needs zero dampening (as in PyTorch)",
            ));
        }
        if dampening != 0.0 && c.momentum_convention == MomentumConvention::Classic {
            return Err(ComputeError::new(
                "/optimizer/dampening",
                "dampening exists only in the PyTorch momentum convention",
            ));
        }
        let lookahead = c.nesterov && c.nesterov_formulation == NesterovFormulation::Lookahead;
        let n = fmt_num;
        let mut conv = vec![format!("{a:?}"), format!("lr = {}", n(c.lr))];
        match a {
            Sgd => {
                if momentum == 0.0 {
                    conv.push("plain SGD: p = p - lr*g".into());
                } else {
                    match c.momentum_convention {
                        MomentumConvention::Pytorch => conv.push(format!(
                            "momentum (PyTorch convention): v_1 = g, v_t = mu*v + (1-dampening)*g, mu = {}, dampening = {}, p = p - lr*v",
                            n(momentum),
                            n(dampening)
                        )),
                        MomentumConvention::Classic => conv.push(format!(
                            "momentum (classic/Keras convention): v_0 = 0, v = mu*v - lr*g, mu = {}, p = p + v",
                            n(momentum)
                        )),
                    }
                    if c.nesterov {
                        conv.push(match (lookahead, c.momentum_convention) {
                            (false, MomentumConvention::Pytorch) => {
                                "Nesterov (PyTorch reformulation): p = p - lr*(g + mu*v)".into()
                            }
                            (false, MomentumConvention::Classic) => {
                                "Nesterov (Keras reformulation): p = p + mu*v - lr*g".into()
                            }
                            (true, MomentumConvention::Pytorch) => {
                                "Nesterov (look-ahead): g taken at p - lr*mu*v".into()
                            }
                            (true, MomentumConvention::Classic) => {
                                "Nesterov (look-ahead): g taken at p + mu*v".into()
                            }
                        });
                    }
                }
            }
            Adagrad => {
                conv.push(format!(
                    "s_0 = {}, s = s + g^2, {}, eps = {}",
                    n(init_acc),
                    match c.eps_placement {
                        EpsPlacement::OutsideSqrt =>
                            "p = p - clr*g/(sqrt(s) + eps) (eps outside the sqrt, PyTorch)",
                        EpsPlacement::InsideSqrt =>
                            "p = p - clr*g/sqrt(s + eps) (eps inside the sqrt, Keras)",
                    },
                    n(eps)
                ));
                conv.push(format!(
                    "clr = lr/(1 + (t-1)*lr_decay), lr_decay = {}",
                    n(lr_decay)
                ));
            }
            Rmsprop => {
                conv.push(format!("s = alpha*s + (1-alpha)*g^2, alpha = {}", n(alpha)));
                if c.centered {
                    conv.push(
                        "centered: gbar = alpha*gbar + (1-alpha)*g, denominator uses s - gbar^2"
                            .into(),
                    );
                }
                conv.push(format!(
                    "{}, eps = {}",
                    match c.eps_placement {
                        EpsPlacement::OutsideSqrt =>
                            "denom = sqrt(s) + eps (eps outside the sqrt, PyTorch)",
                        EpsPlacement::InsideSqrt =>
                            "denom = sqrt(s + eps) (eps inside the sqrt, Keras)",
                    },
                    n(eps)
                ));
                if momentum != 0.0 {
                    conv.push(match c.momentum_convention {
                        MomentumConvention::Pytorch => format!(
                            "momentum (PyTorch): v = mu*v + g/denom, p = p - lr*v, mu = {}",
                            n(momentum)
                        ),
                        MomentumConvention::Classic => format!(
                            "momentum (Keras): v = mu*v + lr*g/denom, p = p - v, mu = {}",
                            n(momentum)
                        ),
                    });
                } else {
                    conv.push("p = p - lr*g/denom".into());
                }
            }
            Adam | Adamw => {
                conv.push(format!(
                    "m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g^2, b1 = {}, b2 = {}",
                    n(beta1),
                    n(beta2)
                ));
                if c.amsgrad {
                    conv.push(
                        "AMSGrad: v_max = max(v_max, v) replaces v in the denominator".into(),
                    );
                }
                conv.push(match c.adam_eps_style {
                    AdamEpsStyle::Pytorch => format!(
                        "bias correction (PyTorch): m_hat = m/(1-b1^t), v_hat = v/(1-b2^t), p = p - lr*m_hat/(sqrt(v_hat) + eps), eps = {}",
                        n(eps)
                    ),
                    AdamEpsStyle::Keras => format!(
                        "bias correction (Keras): lr_t = lr*sqrt(1-b2^t)/(1-b1^t), p = p - lr_t*m/(sqrt(v) + eps_hat), eps_hat = {}",
                        n(eps)
                    ),
                });
            }
        }
        if wd != 0.0 {
            conv.push(match wd_mode {
                WeightDecayMode::L2 => format!("L2 weight decay: g = g + wd*p, wd = {}", n(wd)),
                WeightDecayMode::Decoupled => format!(
                    "decoupled weight decay: p = p - lr*wd*p before the update, wd = {}",
                    n(wd)
                ),
            });
        }
        Ok(Self {
            algorithm: a,
            lr: c.lr,
            momentum,
            dampening,
            nesterov: c.nesterov,
            lookahead,
            convention: c.momentum_convention,
            alpha,
            centered: c.centered,
            beta1,
            beta2,
            eps,
            eps_placement: c.eps_placement,
            adam_eps: c.adam_eps_style,
            amsgrad: c.amsgrad,
            wd,
            wd_mode,
            init_acc,
            lr_decay,
            conventions: conv,
        })
    }
}

// ---------------------------------------------------------------------------
// State and the update

#[derive(Debug, Clone)]
struct TensorState {
    velocity: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    m_hat: Vec<f64>,
    v_hat: Vec<f64>,
    v_max: Vec<f64>,
    acc: Vec<f64>,
    grad_avg: Vec<f64>,
}

impl TensorState {
    fn new(cfg: &Resolved, n: usize) -> Self {
        let acc0 = if cfg.algorithm == Algorithm::Adagrad {
            cfg.init_acc
        } else {
            0.0
        };
        Self {
            velocity: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            m_hat: vec![0.0; n],
            v_hat: vec![0.0; n],
            v_max: vec![0.0; n],
            acc: vec![acc0; n],
            grad_avg: vec![0.0; n],
        }
    }

    fn report(&self, cfg: &Resolved, name: &str) -> ParamState {
        use Algorithm::*;
        let a = cfg.algorithm;
        let some = |b: bool, v: &Vec<f64>| b.then(|| v.clone());
        let adam = matches!(a, Adam | Adamw);
        ParamState {
            name: name.to_string(),
            velocity: some(
                matches!(a, Sgd | Rmsprop) && cfg.momentum != 0.0,
                &self.velocity,
            ),
            m: some(adam, &self.m),
            v: some(adam, &self.v),
            m_hat: some(adam, &self.m_hat),
            v_hat: some(adam, &self.v_hat),
            v_max: some(adam && cfg.amsgrad, &self.v_max),
            accumulator: some(a == Adagrad, &self.acc),
            square_avg: some(a == Rmsprop, &self.acc),
            grad_avg: some(a == Rmsprop && cfg.centered, &self.grad_avg),
        }
    }
}

fn latex_escape(s: &str) -> String {
    s.replace('_', "\\_").replace('^', "\\^{}")
}

/// Formats a number for a formula, in parentheses when negative.
fn p(x: f64) -> String {
    let s = fmt_num(x);
    if x < 0.0 { format!("({s})") } else { s }
}

/// One step on one tensor. `probe` is the point where the gradient was taken
/// (the look-ahead point, or the current parameters). Returns the effective
/// learning rate when it differs from `lr`.
/// One parameter tensor during a step.
struct Tensor<'a> {
    name: &'a str,
    /// Current values, updated in place.
    params: &'a mut [f64],
    /// Where the gradient was taken (look-ahead point or current values).
    probe: &'a [f64],
    /// The gradient (same length as `params`).
    grad: &'a [f64],
    /// Optimizer state (vectors of the same length as `params`).
    state: &'a mut TensorState,
}

fn update_tensor(cfg: &Resolved, t: usize, tensor: Tensor<'_>, out: &mut StepLog) -> Option<f64> {
    let Tensor {
        name,
        params,
        probe,
        grad,
        state: st,
    } = tensor;
    let n = params.len();
    let tf = t as f64;
    let mut eff = None;
    for i in 0..n {
        let label = if n == 1 {
            name.to_string()
        } else {
            format!("{name}[{i}]")
        };
        let write = !out.full();
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut pv = params[i];
        let mut g = grad[i];
        lines.push((
            format!("{label}: g = {}", fmt_num(g)),
            format!("g_{{{label}}} = {}", fmt_num(g)),
        ));
        if cfg.wd != 0.0 {
            match cfg.wd_mode {
                WeightDecayMode::L2 => {
                    let at = probe.get(i).copied().unwrap_or(pv);
                    let ng = g + cfg.wd * at;
                    lines.push((
                        format!(
                            "g = g + wd*p = {} + {}*{} = {}",
                            fmt_num(g),
                            fmt_num(cfg.wd),
                            p(at),
                            fmt_num(ng)
                        ),
                        format!(
                            "g = g + \\lambda p = {} + {}\\cdot{} = {}",
                            fmt_num(g),
                            fmt_num(cfg.wd),
                            p(at),
                            fmt_num(ng)
                        ),
                    ));
                    g = ng;
                }
                WeightDecayMode::Decoupled => {
                    let np = pv - pv * cfg.wd * cfg.lr;
                    lines.push((
                        format!(
                            "p = p - p*wd*lr = {} - {}*{}*{} = {}",
                            fmt_num(pv),
                            p(pv),
                            fmt_num(cfg.wd),
                            fmt_num(cfg.lr),
                            fmt_num(np)
                        ),
                        format!(
                            "p = p - \\eta\\lambda p = {} - {}\\cdot{}\\cdot{} = {}",
                            fmt_num(pv),
                            fmt_num(cfg.lr),
                            fmt_num(cfg.wd),
                            p(pv),
                            fmt_num(np)
                        ),
                    ));
                    pv = np;
                }
            }
        }
        let (lr, mu) = (cfg.lr, cfg.momentum);
        match cfg.algorithm {
            Algorithm::Sgd => {
                if mu == 0.0 {
                    let np = pv - lr * g;
                    lines.push((
                        format!(
                            "{label} = p - lr*g = {} - {}*{} = {}",
                            fmt_num(pv),
                            fmt_num(lr),
                            p(g),
                            fmt_num(np)
                        ),
                        format!(
                            "{label} = {} - {}\\cdot{} = {}",
                            fmt_num(pv),
                            fmt_num(lr),
                            p(g),
                            fmt_num(np)
                        ),
                    ));
                    pv = np;
                } else {
                    let v0 = st.velocity[i];
                    match cfg.convention {
                        MomentumConvention::Pytorch => {
                            let v = if t == 1 {
                                g
                            } else {
                                mu * v0 + (1.0 - cfg.dampening) * g
                            };
                            if t == 1 {
                                lines.push((
                                    format!("v{t} = g = {} (PyTorch initialises the buffer to the first gradient)", fmt_num(v)),
                                    format!("v_{{{t}}} = g = {}", fmt_num(v)),
                                ));
                            } else {
                                lines.push((
                                    format!(
                                        "v{t} = mu*v + (1-dampening)*g = {}*{} + {}*{} = {}",
                                        fmt_num(mu),
                                        p(v0),
                                        fmt_num(1.0 - cfg.dampening),
                                        p(g),
                                        fmt_num(v)
                                    ),
                                    format!(
                                        "v_{{{t}}} = {}\\cdot{} + {}\\cdot{} = {}",
                                        fmt_num(mu),
                                        p(v0),
                                        fmt_num(1.0 - cfg.dampening),
                                        p(g),
                                        fmt_num(v)
                                    ),
                                ));
                            }
                            st.velocity[i] = v;
                            let d = if cfg.nesterov && !cfg.lookahead {
                                let d = g + mu * v;
                                lines.push((
                                    format!(
                                        "n = g + mu*v{t} = {} + {}*{} = {}",
                                        fmt_num(g),
                                        fmt_num(mu),
                                        p(v),
                                        fmt_num(d)
                                    ),
                                    format!(
                                        "n = g + \\mu v_{{{t}}} = {} + {}\\cdot{} = {}",
                                        fmt_num(g),
                                        fmt_num(mu),
                                        p(v),
                                        fmt_num(d)
                                    ),
                                ));
                                d
                            } else {
                                v
                            };
                            let np = pv - lr * d;
                            lines.push((
                                format!(
                                    "{label} = p - lr*{} = {} - {}*{} = {}",
                                    if cfg.nesterov && !cfg.lookahead {
                                        "n"
                                    } else {
                                        "v"
                                    },
                                    fmt_num(pv),
                                    fmt_num(lr),
                                    p(d),
                                    fmt_num(np)
                                ),
                                format!(
                                    "{label} = {} - {}\\cdot{} = {}",
                                    fmt_num(pv),
                                    fmt_num(lr),
                                    p(d),
                                    fmt_num(np)
                                ),
                            ));
                            pv = np;
                        }
                        MomentumConvention::Classic => {
                            let v = v0 * mu - g * lr;
                            lines.push((
                                format!(
                                    "v{t} = mu*v - lr*g = {}*{} - {}*{} = {}",
                                    fmt_num(mu),
                                    p(v0),
                                    fmt_num(lr),
                                    p(g),
                                    fmt_num(v)
                                ),
                                format!(
                                    "v_{{{t}}} = \\mu v - \\eta g = {}\\cdot{} - {}\\cdot{} = {}",
                                    fmt_num(mu),
                                    p(v0),
                                    fmt_num(lr),
                                    p(g),
                                    fmt_num(v)
                                ),
                            ));
                            st.velocity[i] = v;
                            let np = if cfg.nesterov && !cfg.lookahead {
                                let np = pv + (v * mu - g * lr);
                                lines.push((
                                    format!(
                                        "{label} = p + mu*v{t} - lr*g = {} + {}*{} - {}*{} = {}",
                                        fmt_num(pv),
                                        fmt_num(mu),
                                        p(v),
                                        fmt_num(lr),
                                        p(g),
                                        fmt_num(np)
                                    ),
                                    format!(
                                        "{label} = {} + {}\\cdot{} - {}\\cdot{} = {}",
                                        fmt_num(pv),
                                        fmt_num(mu),
                                        p(v),
                                        fmt_num(lr),
                                        p(g),
                                        fmt_num(np)
                                    ),
                                ));
                                np
                            } else {
                                let np = pv + v;
                                lines.push((
                                    format!(
                                        "{label} = p + v{t} = {} + {} = {}",
                                        fmt_num(pv),
                                        p(v),
                                        fmt_num(np)
                                    ),
                                    format!(
                                        "{label} = {} + {} = {}",
                                        fmt_num(pv),
                                        p(v),
                                        fmt_num(np)
                                    ),
                                ));
                                np
                            };
                            pv = np;
                        }
                    }
                }
            }
            Algorithm::Adagrad => {
                let clr = lr / (1.0 + (tf - 1.0) * cfg.lr_decay);
                if cfg.lr_decay != 0.0 {
                    eff = Some(clr);
                }
                let s0 = st.acc[i];
                let s = s0 + g * g;
                st.acc[i] = s;
                lines.push((
                    format!(
                        "s{t} = s + g^2 = {} + {}^2 = {}",
                        fmt_num(s0),
                        p(g),
                        fmt_num(s)
                    ),
                    format!("s_{{{t}}} = {} + {}^2 = {}", fmt_num(s0), p(g), fmt_num(s)),
                ));
                let (den, dt, dl) = denom(s, "s", cfg.eps, cfg.eps_placement);
                let np = pv - clr * g / den;
                let lr_sym = if cfg.lr_decay != 0.0 { "clr" } else { "lr" };
                lines.push((
                    format!(
                        "{label} = p - {lr_sym}*g/{dt} = {} - {}*{}/{} = {}",
                        fmt_num(pv),
                        fmt_num(clr),
                        p(g),
                        fmt_num(den),
                        fmt_num(np)
                    ),
                    format!(
                        "{label} = {} - \\frac{{{}\\cdot{}}}{{{dl}}} = {}",
                        fmt_num(pv),
                        fmt_num(clr),
                        p(g),
                        fmt_num(np)
                    ),
                ));
                pv = np;
            }
            Algorithm::Rmsprop => {
                let a = cfg.alpha;
                let s0 = st.acc[i];
                let s = a * s0 + (1.0 - a) * g * g;
                st.acc[i] = s;
                lines.push((
                    format!(
                        "s{t} = alpha*s + (1-alpha)*g^2 = {}*{} + {}*{}^2 = {}",
                        fmt_num(a),
                        fmt_num(s0),
                        fmt_num(1.0 - a),
                        p(g),
                        fmt_num(s)
                    ),
                    format!(
                        "s_{{{t}}} = {}\\cdot{} + {}\\cdot{}^2 = {}",
                        fmt_num(a),
                        fmt_num(s0),
                        fmt_num(1.0 - a),
                        p(g),
                        fmt_num(s)
                    ),
                ));
                let var = if cfg.centered {
                    let ga0 = st.grad_avg[i];
                    let ga = match cfg.eps_placement {
                        // torch: lerp, Keras: rho*gbar + (1-rho)*g (equal up to rounding)
                        EpsPlacement::OutsideSqrt => ga0 + (g - ga0) * (1.0 - a),
                        EpsPlacement::InsideSqrt => a * ga0 + (1.0 - a) * g,
                    };
                    st.grad_avg[i] = ga;
                    let var = s - ga * ga;
                    lines.push((
                        format!("gbar{t} = alpha*gbar + (1-alpha)*g = {}*{} + {}*{} = {}; s - gbar^2 = {}", fmt_num(a), p(ga0), fmt_num(1.0 - a), p(g), fmt_num(ga), fmt_num(var)),
                        format!("\\bar g_{{{t}}} = {}, s - \\bar g^2 = {}", fmt_num(ga), fmt_num(var)),
                    ));
                    var
                } else {
                    s
                };
                let sym = if cfg.centered { "s - gbar^2" } else { "s" };
                let (den, dt, dl) = denom(var, sym, cfg.eps, cfg.eps_placement);
                if mu != 0.0 {
                    let v0 = st.velocity[i];
                    let (v, np) = match cfg.convention {
                        MomentumConvention::Pytorch => {
                            let v = mu * v0 + g / den;
                            (v, pv - lr * v)
                        }
                        MomentumConvention::Classic => {
                            let v = mu * v0 + lr * g / den;
                            (v, pv - v)
                        }
                    };
                    st.velocity[i] = v;
                    let scale = if cfg.convention == MomentumConvention::Classic {
                        format!("{}*", fmt_num(lr))
                    } else {
                        String::new()
                    };
                    lines.push((
                        format!(
                            "v{t} = mu*v + {scale}g/{dt} = {}*{} + {scale}{}/{} = {}",
                            fmt_num(mu),
                            p(v0),
                            p(g),
                            fmt_num(den),
                            fmt_num(v)
                        ),
                        format!(
                            "v_{{{t}}} = {}\\cdot{} + \\frac{{{scale}{}}}{{{dl}}} = {}",
                            fmt_num(mu),
                            p(v0),
                            p(g),
                            fmt_num(v)
                        ),
                    ));
                    let lrs = if cfg.convention == MomentumConvention::Pytorch {
                        format!("{}*", fmt_num(lr))
                    } else {
                        String::new()
                    };
                    lines.push((
                        format!(
                            "{label} = {} - {lrs}{} = {}",
                            fmt_num(pv),
                            p(v),
                            fmt_num(np)
                        ),
                        format!(
                            "{label} = {} - {lrs}{} = {}",
                            fmt_num(pv),
                            p(v),
                            fmt_num(np)
                        ),
                    ));
                    pv = np;
                } else {
                    let np = pv - lr * g / den;
                    lines.push((
                        format!(
                            "{label} = p - lr*g/{dt} = {} - {}*{}/{} = {}",
                            fmt_num(pv),
                            fmt_num(lr),
                            p(g),
                            fmt_num(den),
                            fmt_num(np)
                        ),
                        format!(
                            "{label} = {} - \\frac{{{}\\cdot{}}}{{{dl}}} = {}",
                            fmt_num(pv),
                            fmt_num(lr),
                            p(g),
                            fmt_num(np)
                        ),
                    ));
                    pv = np;
                }
            }
            Algorithm::Adam | Algorithm::Adamw => {
                let (b1, b2) = (cfg.beta1, cfg.beta2);
                let (m0, v0) = (st.m[i], st.v[i]);
                // Both frameworks update m as m + (g - m)*(1 - b1).
                let m = m0 + (g - m0) * (1.0 - b1);
                let v = match cfg.adam_eps {
                    AdamEpsStyle::Pytorch => v0 * b2 + (1.0 - b2) * g * g,
                    AdamEpsStyle::Keras => v0 + (g * g - v0) * (1.0 - b2),
                };
                st.m[i] = m;
                st.v[i] = v;
                lines.push((
                    format!(
                        "m{t} = b1*m + (1-b1)*g = {}*{} + {}*{} = {}",
                        fmt_num(b1),
                        p(m0),
                        fmt_num(1.0 - b1),
                        p(g),
                        fmt_num(m)
                    ),
                    format!(
                        "m_{{{t}}} = {}\\cdot{} + {}\\cdot{} = {}",
                        fmt_num(b1),
                        p(m0),
                        fmt_num(1.0 - b1),
                        p(g),
                        fmt_num(m)
                    ),
                ));
                lines.push((
                    format!(
                        "v{t} = b2*v + (1-b2)*g^2 = {}*{} + {}*{}^2 = {}",
                        fmt_num(b2),
                        fmt_num(v0),
                        fmt_num(1.0 - b2),
                        p(g),
                        fmt_num(v)
                    ),
                    format!(
                        "v_{{{t}}} = {}\\cdot{} + {}\\cdot{}^2 = {}",
                        fmt_num(b2),
                        fmt_num(v0),
                        fmt_num(1.0 - b2),
                        p(g),
                        fmt_num(v)
                    ),
                ));
                let vd = if cfg.amsgrad {
                    let vm = st.v_max[i].max(v);
                    lines.push((
                        format!(
                            "v_max = max({}, {}) = {}",
                            fmt_num(st.v_max[i]),
                            fmt_num(v),
                            fmt_num(vm)
                        ),
                        format!("v^{{max}}_{{{t}}} = {}", fmt_num(vm)),
                    ));
                    st.v_max[i] = vm;
                    vm
                } else {
                    v
                };
                let bc1 = 1.0 - b1.powi(t.min(i32::MAX as usize) as i32);
                let bc2 = 1.0 - b2.powi(t.min(i32::MAX as usize) as i32);
                let m_hat = m / bc1;
                let v_hat = vd / bc2;
                st.m_hat[i] = m_hat;
                st.v_hat[i] = v_hat;
                lines.push((
                    format!(
                        "m_hat = m/(1-b1^{t}) = {}/{} = {}",
                        fmt_num(m),
                        fmt_num(bc1),
                        fmt_num(m_hat)
                    ),
                    format!(
                        "\\hat m_{{{t}}} = \\frac{{{}}}{{1-{}^{{{t}}}}} = {}",
                        fmt_num(m),
                        fmt_num(b1),
                        fmt_num(m_hat)
                    ),
                ));
                lines.push((
                    format!(
                        "v_hat = v/(1-b2^{t}) = {}/{} = {}",
                        fmt_num(vd),
                        fmt_num(bc2),
                        fmt_num(v_hat)
                    ),
                    format!(
                        "\\hat v_{{{t}}} = \\frac{{{}}}{{1-{}^{{{t}}}}} = {}",
                        fmt_num(vd),
                        fmt_num(b2),
                        fmt_num(v_hat)
                    ),
                ));
                let np = match cfg.adam_eps {
                    AdamEpsStyle::Pytorch => {
                        let step_size = lr / bc1;
                        let den = vd.sqrt() / bc2.sqrt() + cfg.eps;
                        let np = pv - step_size * m / den;
                        lines.push((
                            format!("{label} = p - lr*m_hat/(sqrt(v_hat) + eps) = {} - {}*{}/(sqrt({}) + {}) = {}", fmt_num(pv), fmt_num(lr), p(m_hat), fmt_num(v_hat), fmt_num(cfg.eps), fmt_num(np)),
                            format!("{label} = {} - \\frac{{{}\\cdot{}}}{{\\sqrt{{{}}} + {}}} = {}", fmt_num(pv), fmt_num(lr), p(m_hat), fmt_num(v_hat), fmt_num(cfg.eps), fmt_num(np)),
                        ));
                        np
                    }
                    AdamEpsStyle::Keras => {
                        let lr_t = lr * bc2.sqrt() / bc1;
                        eff = Some(lr_t);
                        let np = pv - m * lr_t / (vd.sqrt() + cfg.eps);
                        lines.push((
                            format!(
                                "lr_t = lr*sqrt(1-b2^{t})/(1-b1^{t}) = {}*sqrt({})/{} = {}",
                                fmt_num(lr),
                                fmt_num(bc2),
                                fmt_num(bc1),
                                fmt_num(lr_t)
                            ),
                            format!(
                                "\\eta_{{{t}}} = \\frac{{{}\\sqrt{{{}}}}}{{{}}} = {}",
                                fmt_num(lr),
                                fmt_num(bc2),
                                fmt_num(bc1),
                                fmt_num(lr_t)
                            ),
                        ));
                        lines.push((
                            format!("{label} = p - lr_t*m/(sqrt(v) + eps_hat) = {} - {}*{}/(sqrt({}) + {}) = {}", fmt_num(pv), fmt_num(lr_t), p(m), fmt_num(vd), fmt_num(cfg.eps), fmt_num(np)),
                            format!("{label} = {} - \\frac{{{}\\cdot{}}}{{\\sqrt{{{}}} + {}}} = {}", fmt_num(pv), fmt_num(lr_t), p(m), fmt_num(vd), fmt_num(cfg.eps), fmt_num(np)),
                        ));
                        np
                    }
                };
                pv = np;
            }
        }
        params[i] = pv;
        if write {
            for (text, latex) in lines {
                out.push(text, latex);
            }
        } else {
            out.omit_many(lines.len());
        }
    }
    eff
}

/// The denominator of Adagrad / RMSprop with its text and LaTeX forms.
fn denom(s: f64, sym: &str, eps: f64, placement: EpsPlacement) -> (f64, String, String) {
    match placement {
        EpsPlacement::OutsideSqrt => (
            s.sqrt() + eps,
            format!("(sqrt({sym}) + eps)"),
            format!("\\sqrt{{{}}} + {}", fmt_num(s), fmt_num(eps)),
        ),
        EpsPlacement::InsideSqrt => (
            (s + eps).sqrt(),
            format!("sqrt({sym} + eps)"),
            format!("\\sqrt{{{} + {}}}", fmt_num(s), fmt_num(eps)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(a: Algorithm, lr: f64) -> OptimizerConfig {
        OptimizerConfig {
            algorithm: a,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            momentum_convention: MomentumConvention::Pytorch,
            nesterov_formulation: NesterovFormulation::Reformulated,
            alpha: None,
            centered: false,
            beta1: None,
            beta2: None,
            eps: None,
            eps_placement: EpsPlacement::OutsideSqrt,
            adam_eps_style: AdamEpsStyle::Pytorch,
            amsgrad: false,
            weight_decay: None,
            weight_decay_mode: None,
            initial_accumulator_value: 0.0,
            lr_decay: 0.0,
        }
    }

    fn one(name: &str, v: &[f64]) -> ParamSet {
        ParamSet(vec![Param {
            name: name.into(),
            values: v.to_vec(),
        }])
    }

    fn req(c: OptimizerConfig, p: &[f64], g: &[f64], steps: usize) -> OptimizerRequest {
        OptimizerRequest {
            optimizer: c,
            params: one("w", p),
            steps: Some(steps),
            gradient: Some(one("w", g)),
            gradients: None,
            expression: None,
        }
    }

    #[test]
    fn plain_sgd_step() {
        let r = optimizer_steps(
            &req(cfg(Algorithm::Sgd, 0.1), &[1.0], &[0.5], 2),
            &Limits::default(),
        )
        .unwrap();
        assert!((r.final_params.0[0].values[0] - 0.9).abs() < 1e-15);
        assert!(
            r.steps
                .iter()
                .any(|s| s.text.contains("w = p - lr*g = 1 - 0.1*0.5 = 0.95"))
        );
    }

    #[test]
    fn pytorch_momentum_first_buffer_is_gradient() {
        let mut c = cfg(Algorithm::Sgd, 0.1);
        c.momentum = 0.9;
        c.dampening = 0.5;
        let r = optimizer_steps(&req(c, &[0.0], &[1.0], 2), &Limits::default()).unwrap();
        let v1 = r.history[0].state[0].velocity.clone().unwrap()[0];
        let v2 = r.history[1].state[0].velocity.clone().unwrap()[0];
        assert_eq!(v1, 1.0);
        assert!((v2 - (0.9 + 0.5)).abs() < 1e-15);
        assert!((r.final_params.0[0].values[0] - (-0.1 - 0.14)).abs() < 1e-15);
    }

    #[test]
    fn classic_momentum_matches_formula() {
        let mut c = cfg(Algorithm::Sgd, 0.1);
        c.momentum = 0.9;
        c.momentum_convention = MomentumConvention::Classic;
        let r = optimizer_steps(&req(c, &[0.0], &[1.0], 2), &Limits::default()).unwrap();
        // v1 = -0.1, p1 = -0.1; v2 = -0.09 - 0.1 = -0.19, p2 = -0.29
        assert!((r.final_params.0[0].values[0] + 0.29).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_worked() {
        let mut c = cfg(Algorithm::Adam, 0.1);
        c.beta2 = Some(0.99);
        let r = optimizer_steps(&req(c, &[-2.0], &[0.5], 1), &Limits::default()).unwrap();
        let st = &r.history[0].state[0];
        assert!((st.m.as_ref().unwrap()[0] - 0.05).abs() < 1e-15);
        assert!((st.m_hat.as_ref().unwrap()[0] - 0.5).abs() < 1e-14);
        assert!(r.steps.iter().any(|s| {
            s.text
                .starts_with("m1 = b1*m + (1-b1)*g = 0.9*0 + 0.1*0.5 = 0.05")
        }));
    }

    #[test]
    fn adagrad_and_rmsprop_eps_placement() {
        let mut c = cfg(Algorithm::Adagrad, 1.0);
        c.eps = Some(1.0);
        c.eps_placement = EpsPlacement::InsideSqrt;
        let r = optimizer_steps(&req(c.clone(), &[0.0], &[3.0], 1), &Limits::default()).unwrap();
        assert!((r.final_params.0[0].values[0] + 3.0 / 10f64.sqrt()).abs() < 1e-15);
        c.eps_placement = EpsPlacement::OutsideSqrt;
        let r = optimizer_steps(&req(c, &[0.0], &[3.0], 1), &Limits::default()).unwrap();
        assert!((r.final_params.0[0].values[0] + 3.0 / 4.0).abs() < 1e-15);
        let mut c = cfg(Algorithm::Rmsprop, 1.0);
        c.alpha = Some(0.5);
        c.eps = Some(0.0);
        let r = optimizer_steps(&req(c, &[0.0], &[2.0], 1), &Limits::default()).unwrap();
        // s = 0.5*4 = 2, p = -2/sqrt(2)
        assert!((r.final_params.0[0].values[0] + 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_input_with_pointers() {
        let l = Limits::default();
        let mut r = req(cfg(Algorithm::Sgd, 0.1), &[1.0], &[f64::NAN], 1);
        assert_eq!(
            optimizer_steps(&r, &l).unwrap_err().pointer,
            "/gradient/0/values/0"
        );
        r.gradient = Some(one("w", &[1.0, 2.0]));
        assert_eq!(
            optimizer_steps(&r, &l).unwrap_err().pointer,
            "/gradient/0/values"
        );
        r.gradient = Some(one("v", &[1.0]));
        assert_eq!(
            optimizer_steps(&r, &l).unwrap_err().pointer,
            "/gradient/0/name"
        );
        let mut r = req(cfg(Algorithm::Adam, 0.1), &[1.0], &[1.0], 1);
        r.optimizer.momentum = 0.9;
        assert_eq!(
            optimizer_steps(&r, &l).unwrap_err().pointer,
            "/optimizer/momentum"
        );
        let mut r = req(cfg(Algorithm::Sgd, 0.1), &[1.0], &[1.0], 20);
        let small = Limits {
            max_optimizer_steps: 10,
            ..Limits::default()
        };
        let e = optimizer_steps(&r, &small).unwrap_err();
        assert!(e.message.contains("max_optimizer_steps"));
        r.optimizer.lr = -1.0;
        assert_eq!(
            optimizer_steps(&r, &l).unwrap_err().pointer,
            "/optimizer/lr"
        );
    }

    #[test]
    fn gradient_function_requests_need_steps_and_no_given_gradients() {
        let l = Limits::default();
        let f = |ps: &ParamSet| Ok((0.0, ps.clone()));
        let mut r = req(cfg(Algorithm::Sgd, 0.1), &[1.0], &[1.0], 1);
        r.expression = Some("w^2".into());
        assert_eq!(optimizer_steps(&r, &l).unwrap_err().pointer, "/expression");
        assert_eq!(
            optimizer_steps_with(&r, &l, f).unwrap_err().pointer,
            "/gradient"
        );
        r.gradient = None;
        r.steps = None;
        assert_eq!(
            optimizer_steps_with(&r, &l, f).unwrap_err().pointer,
            "/steps"
        );
        r.steps = Some(3);
        // gradient = parameter value: p_t = 0.9^t
        let rep = optimizer_steps_with(&r, &l, f).unwrap();
        assert!((rep.final_params.0[0].values[0] - 0.729).abs() < 1e-15);
    }

    #[test]
    fn plain_sgd_l2_and_decoupled_weight_decay_coincide() {
        let l = Limits::default();
        let mut c = cfg(Algorithm::Sgd, 0.1);
        c.weight_decay = Some(0.3);
        let a = optimizer_steps(&req(c.clone(), &[2.0, -1.0], &[0.5, 0.25], 3), &l).unwrap();
        c.weight_decay_mode = Some(WeightDecayMode::Decoupled);
        let b = optimizer_steps(&req(c, &[2.0, -1.0], &[0.5, 0.25], 3), &l).unwrap();
        for (x, y) in a.final_params.0[0]
            .values
            .iter()
            .zip(&b.final_params.0[0].values)
        {
            assert!((x - y).abs() < 1e-15);
        }
        assert!(
            a.steps
                .iter()
                .any(|s| s.text.starts_with("g = g + wd*p = 0.5 + 0.3*2 = 1.1"))
        );
    }

    #[test]
    fn lookahead_nesterov_uses_gradient_at_lookahead_point() {
        let mut c = cfg(Algorithm::Sgd, 0.1);
        c.momentum = 0.9;
        c.nesterov = true;
        c.momentum_convention = MomentumConvention::Classic;
        c.nesterov_formulation = NesterovFormulation::Lookahead;
        // f(w) = w^2, grad 2w
        let mut seen = Vec::new();
        let r = run_with(&c, &one("w", &[1.0]), 2, &Limits::default(), |ps| {
            let w = ps.0[0].values[0];
            seen.push(w);
            Ok((w * w, one("w", &[2.0 * w])))
        })
        .unwrap();
        // step 1: v=0 -> g at 1 = 2, v1 = -0.2, w1 = 0.8; step 2: probe 0.8 - 0.18 = 0.62
        assert!((seen[1] - 0.62).abs() < 1e-15);
        let v2 = 0.9 * -0.2 - 0.1 * 1.24;
        assert!((r.final_params.0[0].values[0] - (0.8 + v2)).abs() < 1e-15);
        assert_eq!(r.history[1].loss, Some(0.62 * 0.62));
    }
}
