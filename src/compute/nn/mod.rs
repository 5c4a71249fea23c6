//! Forward passes and layer-level reverse-mode gradients of sequential networks.
//!
//! Every layer has a forward (output + what backward needs) and a backward
//! (upstream gradient in, gradient w.r.t. its input out, weight/bias gradients
//! accumulated). The loops run over contiguous f64 buffers; no scalar graph.
//!
//! Layouts ([`Layout`]): `pytorch` (default) takes dense weights `(out, in)`,
//! conv weights `(out, in/groups, kh, kw)` (`(out, in/groups, k)` for conv1d) and
//! NCHW / NCL inputs; `keras` takes dense kernels `(in, out)`, conv kernels
//! `(kh, kw, in/groups, out)` (`(k, in/groups, out)`) and NHWC / NLC inputs.
//! Reported tensors and gradients are in the request's layout.
//!
//! Subgradient conventions (as PyTorch): `relu'(0) = 0`; max-pool ties send the
//! gradient to the first maximal element in row-major window order; with
//! `pad_value: "zero"` a winning pad swallows its gradient.

pub mod activation;
pub mod conv;
pub mod dense;
mod explain;
pub mod from_model;
pub mod pool;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use self::activation::{Activation, axis_split};
use self::conv::{ConvGeom, out_len};
use self::pool::PoolGeom;
use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::losses::{self, LossConfig, LossPointers};
use super::steps::Step;
use super::tensor::{Tensor, checked_numel, shape_str};

/// Weight and input layout conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Dense `(out, in)`, conv `(out, in/groups, kh, kw)`, inputs NCHW (NCL for 1-D).
    #[default]
    Pytorch,
    /// Dense `(in, out)`, conv `(kh, kw, in/groups, out)`, inputs NHWC (NLC for 1-D).
    Keras,
}

// ---------------------------------------------------------------------------
// Request-level layer descriptions
// ---------------------------------------------------------------------------

/// Activation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivationName {
    #[serde(alias = "identity", alias = "none")]
    Linear,
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    Softmax,
    Elu,
    /// Exact GELU `z Φ(z)` (erf form).
    Gelu,
    /// GELU, tanh approximation.
    GeluTanh,
}

/// GELU variants, as PyTorch's `approximate` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GeluApproximation {
    None,
    Tanh,
}

/// An activation with options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationOptions {
    /// The activation.
    pub name: ActivationName,
    /// Negative slope of leaky_relu (default 0.01 in PyTorch layout, 0.2 in
    /// Keras layout as `keras.activations.leaky_relu`) or alpha of elu (default 1).
    #[serde(default, alias = "negative_slope")]
    pub alpha: Option<f64>,
    /// Softmax axis; negative counts from the end. Default -1. A non-negative
    /// axis counts the dimensions of the tensor as given (without the batch
    /// dimension when `batched` is false).
    #[serde(default, alias = "dim")]
    pub axis: Option<isize>,
    /// GELU form: `none` (exact, default) or `tanh`.
    #[serde(default)]
    pub approximate: Option<GeluApproximation>,
}

/// An activation: a bare name (`"relu"`) or an object with options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ActivationSpec {
    Name(ActivationName),
    Options(ActivationOptions),
}

/// A size given as one number (all spatial dimensions) or one per dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SizeSpec {
    One(usize),
    PerDim(Vec<usize>),
}

/// Padding modes by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    /// No padding.
    Valid,
    /// Output size `ceil(in / stride)`; total padding split with the extra
    /// element at the bottom/right (TensorFlow/Keras and PyTorch agree).
    Same,
}

/// Padding: a mode, one number for every side, `[ph, pw]` (symmetric per
/// dimension) or `[top, bottom, left, right]` (1-D: `p`, `[p]` or `[left, right]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PaddingSpec {
    Mode(PaddingMode),
    One(usize),
    PerSide(Vec<usize>),
}

/// Value of padded positions in max pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum PadValue {
    /// Padding never wins (PyTorch and Keras).
    #[serde(rename = "-inf", alias = "neg_inf")]
    NegInf,
    /// Padding is 0 (as many hand-worked exam keys assume).
    #[serde(rename = "zero", alias = "0")]
    Zero,
}

/// Fully connected layer on the last axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    /// Weight matrix: `(out, in)` in PyTorch layout, `(in, out)` in Keras layout.
    #[serde(alias = "kernel")]
    #[schema(value_type = Object)]
    pub weight: Value,
    /// Bias vector `(out,)`; omitted means no bias.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub bias: Option<Value>,
    /// Fused activation (default linear); its input is reported as `pre_activation`.
    #[serde(default)]
    pub activation: Option<ActivationSpec>,
}

/// 1-D or 2-D convolution (cross-correlation, as every framework computes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Filters: PyTorch `(out, in/groups, kh, kw)` / `(out, in/groups, k)`;
    /// Keras `(kh, kw, in/groups, out)` / `(k, in/groups, out)`.
    #[serde(alias = "kernel")]
    #[schema(value_type = Object)]
    pub weight: Value,
    /// Bias `(out,)`; omitted means no bias.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub bias: Option<Value>,
    /// Stride (default 1).
    #[serde(default, alias = "strides")]
    pub stride: Option<SizeSpec>,
    /// Zero padding (default 0 / "valid").
    #[serde(default)]
    pub padding: Option<PaddingSpec>,
    /// Dilation (default 1).
    #[serde(default, alias = "dilation_rate")]
    pub dilation: Option<SizeSpec>,
    /// Groups (default 1); input and output channels must be divisible by it.
    #[serde(default)]
    pub groups: Option<usize>,
    /// Fused activation (default linear).
    #[serde(default)]
    pub activation: Option<ActivationSpec>,
}

/// Max or average pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Window size.
    #[serde(alias = "pool_size")]
    pub kernel_size: SizeSpec,
    /// Stride (default: the window size, as both frameworks).
    #[serde(default, alias = "strides")]
    pub stride: Option<SizeSpec>,
    /// Padding (default 0).
    #[serde(default)]
    pub padding: Option<PaddingSpec>,
    /// Max pooling only: value of padded positions, `"-inf"` (default, as the
    /// frameworks) or `"zero"`.
    #[serde(default)]
    pub pad_value: Option<PadValue>,
    /// Average pooling only: divide by the full window including padding
    /// (default true in PyTorch layout) or by the real elements only (default in
    /// Keras layout).
    #[serde(default)]
    pub count_include_pad: Option<bool>,
}

/// A layer without options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// A standalone activation layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationLayerSpec {
    /// The activation.
    pub activation: ActivationSpec,
}

/// Batch normalization in inference mode: `γ (x - μ) / sqrt(σ² + ε) + β`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchNormSpec {
    /// Running mean μ per channel.
    #[serde(alias = "moving_mean")]
    #[schema(value_type = Object)]
    pub running_mean: Value,
    /// Running variance σ² per channel.
    #[serde(alias = "moving_variance")]
    #[schema(value_type = Object)]
    pub running_var: Value,
    /// Scale γ per channel (default all 1).
    #[serde(default, alias = "weight")]
    #[schema(value_type = Option<Object>)]
    pub gamma: Option<Value>,
    /// Shift β per channel (default all 0).
    #[serde(default, alias = "bias")]
    #[schema(value_type = Option<Object>)]
    pub beta: Option<Value>,
    /// ε (default 1e-5 in PyTorch layout, 1e-3 in Keras layout).
    #[serde(default, alias = "epsilon")]
    pub eps: Option<f64>,
    /// Channel axis (default 1 in PyTorch layout, -1 in Keras layout).
    #[serde(default)]
    pub axis: Option<isize>,
}

/// Dropout: the identity at inference (no scaling, no randomness).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    /// Drop rate (informational; must be in [0, 1)).
    #[serde(default, alias = "p")]
    pub rate: Option<f64>,
}

/// One layer of a sequential network, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    #[serde(alias = "linear")]
    Dense(DenseSpec),
    #[serde(alias = "conv1d_layer")]
    Conv1d(ConvSpec),
    Conv2d(ConvSpec),
    #[serde(alias = "max_pooling1d", alias = "maxpool1d")]
    MaxPool1d(PoolSpec),
    #[serde(alias = "max_pooling2d", alias = "maxpool2d")]
    MaxPool2d(PoolSpec),
    #[serde(alias = "average_pooling1d", alias = "avgpool1d")]
    AvgPool1d(PoolSpec),
    #[serde(alias = "average_pooling2d", alias = "avgpool2d")]
    AvgPool2d(PoolSpec),
    Flatten(NoOptions),
    Activation(ActivationLayerSpec),
    #[serde(
        alias = "batch_normalization",
        alias = "batch_norm1d",
        alias = "batch_norm2d"
    )]
    BatchNorm(BatchNormSpec),
    Dropout(DropoutSpec),
}

// ---------------------------------------------------------------------------
// Parameters (the plain Rust API)
// ---------------------------------------------------------------------------

/// One named parameter tensor, stored flat in the request's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// E.g. `0.weight`, `2.bias`, `3.running_mean` (PyTorch) or `0.kernel`,
    /// `3.moving_mean` (Keras).
    pub name: String,
    /// JSON pointer of the field it came from, e.g. `/layers/0/weight`.
    pub pointer: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    /// False for batch-norm running statistics (their gradient is reported 0).
    pub trainable: bool,
}

/// All parameters of a network, in layer order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamSet {
    pub params: Vec<Param>,
}

impl ParamSet {
    /// Zero gradients shaped like the parameters.
    pub fn zeros_like(&self) -> Vec<Vec<f64>> {
        self.params
            .iter()
            .map(|p| vec![0.0; p.data.len()])
            .collect()
    }

    /// Number of scalar parameters (trainable and not).
    pub fn count(&self) -> usize {
        self.params.iter().map(|p| p.data.len()).sum()
    }
}

// ---------------------------------------------------------------------------
// Internal network
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pad {
    /// top, bottom, left, right
    Explicit([usize; 4]),
    Same,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Dense {
        in_f: usize,
        out_f: usize,
        act: Activation,
    },
    Conv {
        two_d: bool,
        cout: usize,
        cin_g: usize,
        k: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad: Pad,
        groups: usize,
        act: Activation,
    },
    Pool {
        two_d: bool,
        max: bool,
        k: [usize; 2],
        stride: [usize; 2],
        pad: Pad,
        zero_pad: bool,
        count_include_pad: bool,
    },
    Flatten,
    Act(Activation),
    BatchNorm {
        channels: usize,
        axis: isize,
        eps: f64,
    },
    Dropout,
}

#[derive(Debug, Clone, PartialEq)]
struct Layer {
    kind: &'static str,
    op: Op,
    /// Indices into the ParamSet: weight, bias (if any); BN: gamma, beta, mean, var.
    params: Vec<usize>,
    has_bias: bool,
}

/// A sequential network (architecture only; the weights live in a [`ParamSet`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub layout: Layout,
    /// False when the request's tensors had no batch dimension (only affects
    /// how indices are printed in steps).
    pub batched: bool,
    layers: Vec<Layer>,
}

/// Multiply-add budget of one request.
struct Budget<'a> {
    limits: &'a Limits,
    used: u64,
    /// 1 for a forward pass, 3 when a backward pass follows.
    factor: u64,
}

/// What one layer produced in a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTrace {
    /// Output before the fused activation, if the layer has one (not linear).
    pub pre: Option<Tensor>,
    /// Layer output (after the fused activation).
    pub out: Tensor,
    conv: Option<ConvGeom>,
    pool: Option<PoolGeom>,
    argmax: Vec<usize>,
}

/// A whole forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub input: Tensor,
    pub layers: Vec<LayerTrace>,
}

impl Trace {
    /// The network output.
    pub fn output(&self) -> &Tensor {
        self.layers.last().map_or(&self.input, |l| &l.out)
    }

    fn layer_input(&self, i: usize) -> &Tensor {
        if i == 0 {
            &self.input
        } else {
            &self.layers[i - 1].out
        }
    }
}

/// Gradients of a backward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Backward {
    /// dL/d(network input).
    pub input_grad: Tensor,
    /// dL/d(output of layer i) (the upstream gradient arriving at layer i).
    pub output_grads: Vec<Tensor>,
    /// dL/d(pre-activation of layer i), for layers with a fused activation.
    pub pre_grads: Vec<Option<Tensor>>,
    /// dL/d(parameter), aligned with the ParamSet (zeros for non-trainable).
    pub param_grads: Vec<Vec<f64>>,
}

fn lp(i: usize) -> String {
    format!("/layers/{i}")
}

fn err(ptr: impl Into<String>, msg: impl Into<String>) -> ComputeError {
    ComputeError::new(ptr, msg)
}

fn resolve_activation(
    spec: Option<&ActivationSpec>,
    layout: Layout,
    batched: bool,
    ptr: &str,
) -> ComputeResult<Activation> {
    let Some(spec) = spec else {
        return Ok(Activation::Linear);
    };
    let (name, alpha, axis, approx) = match spec {
        ActivationSpec::Name(n) => (*n, None, None, None),
        ActivationSpec::Options(o) => (o.name, o.alpha, o.axis, o.approximate),
    };
    if let Some(a) = alpha
        && !a.is_finite()
    {
        return Err(err(format!("{ptr}/alpha"), "alpha must be a finite number"));
    }
    let used_alpha = matches!(name, ActivationName::LeakyRelu | ActivationName::Elu);
    if alpha.is_some() && !used_alpha {
        return Err(err(
            format!("{ptr}/alpha"),
            "alpha only applies to leaky_relu and elu",
        ));
    }
    if axis.is_some() && name != ActivationName::Softmax {
        return Err(err(format!("{ptr}/axis"), "axis only applies to softmax"));
    }
    if approx.is_some() && name != ActivationName::Gelu {
        return Err(err(
            format!("{ptr}/approximate"),
            "approximate only applies to gelu",
        ));
    }
    Ok(match name {
        ActivationName::Linear => Activation::Linear,
        ActivationName::Relu => Activation::Relu,
        ActivationName::LeakyRelu => Activation::LeakyRelu {
            alpha: alpha.unwrap_or(match layout {
                Layout::Pytorch => 0.01,
                Layout::Keras => 0.2,
            }),
        },
        ActivationName::Sigmoid => Activation::Sigmoid,
        ActivationName::Tanh => Activation::Tanh,
        ActivationName::Softmax => Activation::Softmax {
            axis: shift_axis(axis.unwrap_or(-1), batched),
        },
        ActivationName::Elu => Activation::Elu {
            alpha: alpha.unwrap_or(1.0),
        },
        ActivationName::Gelu => Activation::Gelu {
            tanh_approx: approx == Some(GeluApproximation::Tanh),
        },
        ActivationName::GeluTanh => Activation::Gelu { tanh_approx: true },
    })
}

/// Axes given by users of unbatched inputs count without the batch dimension.
fn shift_axis(axis: isize, batched: bool) -> isize {
    if axis >= 0 && !batched {
        axis.saturating_add(1)
    } else {
        axis
    }
}

fn size_pair(
    spec: Option<&SizeSpec>,
    two_d: bool,
    default: usize,
    ptr: &str,
) -> ComputeResult<[usize; 2]> {
    let v = match spec {
        None => [default, default],
        Some(SizeSpec::One(v)) => [if two_d { *v } else { 1 }, *v],
        Some(SizeSpec::PerDim(v)) => match (two_d, v.as_slice()) {
            (true, [a, b]) => [*a, *b],
            (true, [a]) | (false, [a]) => [if two_d { *a } else { 1 }, *a],
            _ => {
                return Err(err(
                    ptr,
                    format!(
                        "expected {} number(s), got {}",
                        if two_d { "1 or 2" } else { "1" },
                        v.len()
                    ),
                ));
            }
        },
    };
    let checked = if two_d { v } else { [1, v[1]] };
    if checked.contains(&0) {
        return Err(err(ptr, "must be at least 1"));
    }
    if checked.iter().any(|&x| x > 10_000) {
        return Err(err(ptr, "is larger than 10000"));
    }
    Ok(checked)
}

fn padding(spec: Option<&PaddingSpec>, two_d: bool, ptr: &str) -> ComputeResult<Pad> {
    let p = match spec {
        None | Some(PaddingSpec::Mode(PaddingMode::Valid)) => [0; 4],
        Some(PaddingSpec::Mode(PaddingMode::Same)) => return Ok(Pad::Same),
        Some(PaddingSpec::One(p)) => {
            if two_d {
                [*p; 4]
            } else {
                [0, 0, *p, *p]
            }
        }
        Some(PaddingSpec::PerSide(v)) => match (two_d, v.as_slice()) {
            (true, [ph, pw]) => [*ph, *ph, *pw, *pw],
            (true, [t, b, l, r]) => [*t, *b, *l, *r],
            (false, [p]) => [0, 0, *p, *p],
            (false, [l, r]) => [0, 0, *l, *r],
            _ => {
                return Err(err(
                    ptr,
                    if two_d {
                        "expected [ph, pw] or [top, bottom, left, right]"
                    } else {
                        "expected [p] or [left, right]"
                    },
                ));
            }
        },
    };
    if p.iter().any(|&x| x > 10_000) {
        return Err(err(ptr, "padding larger than 10000"));
    }
    Ok(Pad::Explicit(p))
}

/// Resolves "same" padding (TensorFlow rule) for one dimension.
fn same_pad(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    let span = d * (k - 1) + 1;
    let total = ((out - 1) * s + span).saturating_sub(n);
    (total / 2, total - total / 2)
}

fn resolve_pad(
    pad: Pad,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    two_d: bool,
) -> [usize; 4] {
    match pad {
        Pad::Explicit(p) => p,
        Pad::Same => {
            let (t, b) = if two_d {
                same_pad(h, k[0], s[0], d[0])
            } else {
                (0, 0)
            };
            let (l, r) = same_pad(w, k[1], s[1], d[1]);
            [t, b, l, r]
        }
    }
}

impl Network {
    /// Validates the layer descriptions and collects their parameters.
    /// `batched: false` means axes the user gave count without the batch dim.
    pub fn build(
        specs: &[LayerSpec],
        layout: Layout,
        batched: bool,
        limits: &Limits,
    ) -> ComputeResult<(Network, ParamSet)> {
        if specs.len() > limits.max_layers {
            return Err(err(
                "/layers",
                format!(
                    "{} layers is more than the limit of {}",
                    specs.len(),
                    limits.max_layers
                ),
            ));
        }
        let mut params = ParamSet::default();
        let mut layers = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            layers.push(build_layer(i, spec, layout, batched, limits, &mut params)?);
        }
        Ok((
            Network {
                layout,
                batched,
                layers,
            },
            params,
        ))
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer type names, e.g. `conv2d`.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.layers.iter().map(|l| l.kind).collect()
    }

    /// Forward pass. `input` includes the batch dimension. `cost_factor` scales
    /// the multiply-add budget check (3 when a backward pass follows).
    pub fn forward(
        &self,
        params: &ParamSet,
        input: &Tensor,
        limits: &Limits,
    ) -> ComputeResult<Trace> {
        self.forward_costed(params, input, limits, 1)
    }

    fn forward_costed(
        &self,
        params: &ParamSet,
        input: &Tensor,
        limits: &Limits,
        cost_factor: u64,
    ) -> ComputeResult<Trace> {
        if input.rank() < 1 {
            return Err(err("/input", "the input needs at least a batch dimension"));
        }
        let mut traces: Vec<LayerTrace> = Vec::with_capacity(self.layers.len());
        let mut budget = Budget {
            limits,
            used: 0,
            factor: cost_factor,
        };
        for i in 0..self.layers.len() {
            let x = traces.last().map_or(input, |t| &t.out);
            let lt = self.forward_layer(i, params, x, &mut budget)?;
            if let Some(k) = lt.out.first_non_finite() {
                return Err(err(
                    lp(i),
                    format!("output element {k} is not finite (overflow)"),
                ));
            }
            traces.push(lt);
        }
        Ok(Trace {
            input: input.clone(),
            layers: traces,
        })
    }

    fn forward_layer(
        &self,
        i: usize,
        params: &ParamSet,
        x: &Tensor,
        budget: &mut Budget,
    ) -> ComputeResult<LayerTrace> {
        let layer = &self.layers[i];
        let ptr = lp(i);
        let limits = budget.limits;
        let cost = &mut budget.used;
        let factor = budget.factor;
        let mut charge = |macs: u64, out_elems: usize| -> ComputeResult<()> {
            if out_elems > limits.max_tensor_elements {
                return Err(err(
                    &ptr,
                    format!(
                        "the output of this layer would have {out_elems} elements, more than the limit of {}",
                        limits.max_tensor_elements
                    ),
                ));
            }
            *cost = cost.saturating_add(macs.saturating_mul(factor));
            if *cost > limits.max_mult_adds {
                return Err(err(
                    &ptr,
                    format!(
                        "the network needs more than the limit of {} multiply-adds by this layer",
                        limits.max_mult_adds
                    ),
                ));
            }
            Ok(())
        };
        let plain = |out: Tensor| LayerTrace {
            pre: None,
            out,
            conv: None,
            pool: None,
            argmax: Vec::new(),
        };
        match &layer.op {
            Op::Dense { in_f, out_f, act } => {
                let last = x.shape().last().copied().unwrap_or(0);
                if x.rank() < 2 || last != *in_f {
                    return Err(err(
                        format!("{ptr}/weight"),
                        format!(
                            "this dense layer expects {in_f} input features, but its input has shape {}{}",
                            shape_str(x.shape()),
                            if x.rank() < 2 {
                                " (needs a batch dimension and a feature dimension)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                let rows = x.len() / in_f;
                let mut oshape = x.shape().to_vec();
                if let Some(l) = oshape.last_mut() {
                    *l = *out_f;
                }
                charge((rows * in_f * out_f) as u64, rows * out_f)?;
                let w = self.dense_weight(layer, params);
                let b = layer
                    .has_bias
                    .then(|| params.params[layer.params[1]].data.as_slice());
                let z = Tensor::new(oshape, dense::forward(x.data(), &w, b, *in_f, *out_f))?;
                self.activate(z, *act, &ptr)
            }
            Op::Conv {
                two_d,
                cout,
                cin_g,
                k,
                stride,
                dilation,
                pad,
                groups,
                act,
            } => {
                let (n, c, h, w) = self.spatial_dims(x, *two_d, &ptr)?;
                if c != cin_g * groups {
                    return Err(err(
                        format!("{ptr}/weight"),
                        format!(
                            "the filters expect {} input channels ({cin_g} per group x {groups} groups) but the input \
                             has {c} channels (input shape {}, layout {:?})",
                            cin_g * groups,
                            shape_str(x.shape()),
                            self.layout
                        ),
                    ));
                }
                let p = resolve_pad(*pad, h, w, *k, *stride, *dilation, *two_d);
                let (Some(oh), Some(ow)) = (
                    out_len(h, p[0], p[1], k[0], stride[0], dilation[0]),
                    out_len(w, p[2], p[3], k[1], stride[1], dilation[1]),
                ) else {
                    return Err(err(
                        format!("{ptr}/weight"),
                        format!(
                            "the (dilated) kernel {}x{} does not fit the padded input {}x{}",
                            dilation[0] * (k[0] - 1) + 1,
                            dilation[1] * (k[1] - 1) + 1,
                            h + p[0] + p[1],
                            w + p[2] + p[3]
                        ),
                    ));
                };
                let g = ConvGeom {
                    n,
                    cin: c,
                    h,
                    w,
                    cout: *cout,
                    groups: *groups,
                    kh: k[0],
                    kw: k[1],
                    sh: stride[0],
                    sw: stride[1],
                    dh: dilation[0],
                    dw: dilation[1],
                    pad: p,
                    oh,
                    ow,
                };
                let out_elems = checked_numel(&[n, *cout, oh, ow]).unwrap_or(usize::MAX);
                charge(g.mult_adds(), out_elems)?;
                let xc = self.to_nchw(x, *two_d);
                let wc = self.conv_weight(layer, params, *two_d);
                let b = layer
                    .has_bias
                    .then(|| params.params[layer.params[1]].data.as_slice());
                let y = conv::forward(&g, xc.data(), &wc, b);
                let z = self.wrap_nchw(y, n, *cout, oh, ow, *two_d)?;
                let mut lt = self.activate(z, *act, &ptr)?;
                lt.conv = Some(g);
                Ok(lt)
            }
            Op::Pool {
                two_d,
                max,
                k,
                stride,
                pad,
                zero_pad,
                count_include_pad,
            } => {
                let (n, c, h, w) = self.spatial_dims(x, *two_d, &ptr)?;
                let p = resolve_pad(*pad, h, w, *k, *stride, [1, 1], *two_d);
                let (Some(oh), Some(ow)) = (
                    out_len(h, p[0], p[1], k[0], stride[0], 1),
                    out_len(w, p[2], p[3], k[1], stride[1], 1),
                ) else {
                    return Err(err(
                        format!("{ptr}/kernel_size"),
                        format!(
                            "the window {}x{} does not fit the padded input {}x{}",
                            k[0],
                            k[1],
                            h + p[0] + p[1],
                            w + p[2] + p[3]
                        ),
                    ));
                };
                let g = PoolGeom {
                    n,
                    c,
                    h,
                    w,
                    kh: k[0],
                    kw: k[1],
                    sh: stride[0],
                    sw: stride[1],
                    pad: p,
                    oh,
                    ow,
                };
                charge(
                    g.mult_adds(),
                    checked_numel(&[n, c, oh, ow]).unwrap_or(usize::MAX),
                )?;
                let xc = self.to_nchw(x, *two_d);
                let (y, argmax) = if *max {
                    pool::max_forward(&g, xc.data(), *zero_pad).map_err(|[_, oy, ox]| {
                        err(
                            format!("{ptr}/padding"),
                            format!("the window of output ({oy}, {ox}) covers only padding"),
                        )
                    })?
                } else {
                    (
                        pool::avg_forward(&g, xc.data(), *count_include_pad),
                        Vec::new(),
                    )
                };
                let out = self.wrap_nchw(y, n, c, oh, ow, *two_d)?;
                Ok(LayerTrace {
                    pre: None,
                    out,
                    conv: None,
                    pool: Some(g),
                    argmax,
                })
            }
            Op::Flatten => {
                let n = x.shape()[0];
                let rest = x.len() / n.max(1);
                charge(0, x.len())?;
                Ok(plain(x.clone().reshape(vec![n, rest])?))
            }
            Op::Act(a) => {
                charge(x.len() as u64, x.len())?;
                Ok(plain(a.forward(x, &format!("{ptr}/activation"))?))
            }
            Op::Dropout => Ok(plain(x.clone())),
            Op::BatchNorm {
                channels,
                axis,
                eps,
            } => {
                let (outer, len, inner) = axis_split(x.shape(), *axis, &format!("{ptr}/axis"))?;
                if len != *channels {
                    return Err(err(
                        format!("{ptr}/running_mean"),
                        format!(
                            "batch norm has {channels} channels but axis {axis} of the input {} has size {len}",
                            shape_str(x.shape())
                        ),
                    ));
                }
                charge(x.len() as u64, x.len())?;
                let [gm, bt, mu, var] = self.bn_params(layer, params);
                let mut out = x.clone();
                let d = out.data_mut();
                for o in 0..outer {
                    for c in 0..len {
                        let scale = gm[c] / (var[c] + eps).sqrt();
                        for v in &mut d[(o * len + c) * inner..(o * len + c + 1) * inner] {
                            *v = (*v - mu[c]) * scale + bt[c];
                        }
                    }
                }
                Ok(plain(out))
            }
        }
    }

    fn activate(&self, z: Tensor, act: Activation, ptr: &str) -> ComputeResult<LayerTrace> {
        if act == Activation::Linear {
            return Ok(LayerTrace {
                pre: None,
                out: z,
                conv: None,
                pool: None,
                argmax: Vec::new(),
            });
        }
        let out = act.forward(&z, &format!("{ptr}/activation"))?;
        Ok(LayerTrace {
            pre: Some(z),
            out,
            conv: None,
            pool: None,
            argmax: Vec::new(),
        })
    }

    /// (n, c, h, w) of a conv/pool input in the network's layout.
    fn spatial_dims(
        &self,
        x: &Tensor,
        two_d: bool,
        ptr: &str,
    ) -> ComputeResult<(usize, usize, usize, usize)> {
        let s = x.shape();
        let want = if two_d { 4 } else { 3 };
        if s.len() != want {
            let names = match (self.layout, two_d) {
                (Layout::Pytorch, true) => "(N, C, H, W)",
                (Layout::Pytorch, false) => "(N, C, L)",
                (Layout::Keras, true) => "(N, H, W, C)",
                (Layout::Keras, false) => "(N, L, C)",
            };
            return Err(err(
                ptr,
                format!(
                    "expects an input of rank {want} {names} but got shape {}",
                    shape_str(s)
                ),
            ));
        }
        Ok(match (self.layout, two_d) {
            (Layout::Pytorch, true) => (s[0], s[1], s[2], s[3]),
            (Layout::Pytorch, false) => (s[0], s[1], 1, s[2]),
            (Layout::Keras, true) => (s[0], s[3], s[1], s[2]),
            (Layout::Keras, false) => (s[0], s[2], 1, s[1]),
        })
    }

    fn to_nchw<'a>(&self, x: &'a Tensor, two_d: bool) -> Cow<'a, Tensor> {
        match (self.layout, two_d) {
            (Layout::Pytorch, _) => Cow::Borrowed(x),
            (Layout::Keras, true) => Cow::Owned(x.permute(&[0, 3, 1, 2])),
            (Layout::Keras, false) => Cow::Owned(x.permute(&[0, 2, 1])),
        }
    }

    /// Wraps an (n, c, h, w) buffer as a tensor in the network's layout.
    fn wrap_nchw(
        &self,
        y: Vec<f64>,
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        two_d: bool,
    ) -> ComputeResult<Tensor> {
        let t = if two_d {
            Tensor::new(vec![n, c, h, w], y)?
        } else {
            Tensor::new(vec![n, c, w], y)?
        };
        Ok(match (self.layout, two_d) {
            (Layout::Pytorch, _) => t,
            (Layout::Keras, true) => t.permute(&[0, 2, 3, 1]),
            (Layout::Keras, false) => t.permute(&[0, 2, 1]),
        })
    }

    /// Dense weight in (out, in) order.
    fn dense_weight(&self, layer: &Layer, params: &ParamSet) -> Vec<f64> {
        let p = &params.params[layer.params[0]];
        match self.layout {
            Layout::Pytorch => p.data.clone(),
            Layout::Keras => transpose2(&p.data, p.shape[0], p.shape[1]),
        }
    }

    /// Conv weight in (out, in/groups, kh, kw) order.
    fn conv_weight(&self, layer: &Layer, params: &ParamSet, two_d: bool) -> Vec<f64> {
        let p = &params.params[layer.params[0]];
        match self.layout {
            Layout::Pytorch => p.data.clone(),
            Layout::Keras => {
                let t = Tensor::new(p.shape.clone(), p.data.clone())
                    .unwrap_or_else(|_| Tensor::scalar(0.0));
                if two_d {
                    t.permute(&[3, 2, 0, 1])
                } else {
                    t.permute(&[2, 1, 0])
                }
                .into_data()
            }
        }
    }

    fn bn_params<'a>(&self, layer: &Layer, params: &'a ParamSet) -> [&'a [f64]; 4] {
        [0, 1, 2, 3].map(|k| params.params[layer.params[k]].data.as_slice())
    }

    /// Backward pass from dL/d(output), keeping every intermediate gradient.
    pub fn backward(
        &self,
        params: &ParamSet,
        trace: &Trace,
        grad_out: Tensor,
    ) -> ComputeResult<Backward> {
        self.backward_impl(params, trace, grad_out, true)
    }

    /// Backward pass that keeps only the parameter and input gradients
    /// (`output_grads` and `pre_grads` are left empty): the training-loop path.
    pub fn backward_lean(
        &self,
        params: &ParamSet,
        trace: &Trace,
        grad_out: Tensor,
    ) -> ComputeResult<Backward> {
        self.backward_impl(params, trace, grad_out, false)
    }

    fn backward_impl(
        &self,
        params: &ParamSet,
        trace: &Trace,
        grad_out: Tensor,
        keep: bool,
    ) -> ComputeResult<Backward> {
        let nl = self.layers.len();
        let mut param_grads = params.zeros_like();
        let mut output_grads: Vec<Tensor> = Vec::with_capacity(nl);
        let mut pre_grads: Vec<Option<Tensor>> = Vec::with_capacity(nl);
        let mut g = grad_out;
        for i in (0..nl).rev() {
            let layer = &self.layers[i];
            let lt = &trace.layers[i];
            if keep {
                output_grads.push(g.clone());
            }
            let ptr = lp(i);
            let act = match &layer.op {
                Op::Dense { act, .. } | Op::Conv { act, .. } => Some(*act),
                _ => None,
            };
            let gz = match (act, &lt.pre) {
                (Some(a), Some(pre)) => {
                    let gz = a.backward(pre, &lt.out, &g, &format!("{ptr}/activation"))?;
                    if keep {
                        pre_grads.push(Some(gz.clone()));
                    }
                    gz
                }
                _ => {
                    if keep {
                        pre_grads.push(None);
                    }
                    g
                }
            };
            g = self.backward_layer(i, params, trace, gz, &mut param_grads)?;
        }
        output_grads.reverse();
        pre_grads.reverse();
        Ok(Backward {
            input_grad: g,
            output_grads,
            pre_grads,
            param_grads,
        })
    }

    fn backward_layer(
        &self,
        i: usize,
        params: &ParamSet,
        trace: &Trace,
        gz: Tensor,
        grads: &mut [Vec<f64>],
    ) -> ComputeResult<Tensor> {
        let layer = &self.layers[i];
        let x = trace.layer_input(i);
        let lt = &trace.layers[i];
        let ptr = &lp(i);
        match &layer.op {
            Op::Dense { in_f, out_f, .. } => {
                let w = self.dense_weight(layer, params);
                let mut gw = vec![0.0; in_f * out_f];
                let mut gb = vec![0.0; *out_f];
                let gx = dense::backward(
                    x.data(),
                    &w,
                    gz.data(),
                    *in_f,
                    *out_f,
                    &mut gw,
                    Some(&mut gb),
                );
                let gw_user = match self.layout {
                    Layout::Pytorch => gw,
                    Layout::Keras => transpose2(&gw, *out_f, *in_f),
                };
                add_into(&mut grads[layer.params[0]], &gw_user);
                if layer.has_bias {
                    add_into(&mut grads[layer.params[1]], &gb);
                }
                Tensor::new(x.shape().to_vec(), gx)
            }
            Op::Conv { two_d, .. } => {
                let Some(g) = lt.conv else {
                    return Err(err(ptr, "internal: missing convolution geometry"));
                };
                let xc = self.to_nchw(x, *two_d);
                let gzc = self.to_nchw(&gz, *two_d);
                let wc = self.conv_weight(layer, params, *two_d);
                let mut gw = vec![0.0; wc.len()];
                let mut gb = vec![0.0; g.cout];
                let gx = conv::backward(&g, xc.data(), &wc, gzc.data(), &mut gw, Some(&mut gb));
                let gw_user = match self.layout {
                    Layout::Pytorch => gw,
                    Layout::Keras => {
                        let t = if *two_d {
                            Tensor::new(vec![g.cout, g.cin / g.groups, g.kh, g.kw], gw)?
                                .permute(&[2, 3, 1, 0])
                        } else {
                            Tensor::new(vec![g.cout, g.cin / g.groups, g.kw], gw)?
                                .permute(&[2, 1, 0])
                        };
                        t.into_data()
                    }
                };
                add_into(&mut grads[layer.params[0]], &gw_user);
                if layer.has_bias {
                    add_into(&mut grads[layer.params[1]], &gb);
                }
                self.wrap_nchw(gx, g.n, g.cin, g.h, g.w, *two_d)
            }
            Op::Pool {
                two_d,
                max,
                count_include_pad,
                ..
            } => {
                let Some(g) = lt.pool else {
                    return Err(err(ptr, "internal: missing pooling geometry"));
                };
                let gzc = self.to_nchw(&gz, *two_d);
                let gx = if *max {
                    pool::max_backward(g.n * g.c * g.h * g.w, &lt.argmax, gzc.data())
                } else {
                    pool::avg_backward(&g, gzc.data(), *count_include_pad)
                };
                self.wrap_nchw(gx, g.n, g.c, g.h, g.w, *two_d)
            }
            Op::Flatten => gz.reshape(x.shape().to_vec()),
            Op::Act(a) => a.backward(x, &lt.out, &gz, &format!("{ptr}/activation")),
            Op::Dropout => Ok(gz),
            Op::BatchNorm { axis, eps, .. } => {
                let (outer, len, inner) = axis_split(x.shape(), *axis, &format!("{ptr}/axis"))?;
                let [gm, _, mu, var] = self.bn_params(layer, params);
                let mut ggamma = vec![0.0; len];
                let mut gbeta = vec![0.0; len];
                let mut gx = gz.clone();
                let xd = x.data();
                let gd = gx.data_mut();
                for o in 0..outer {
                    for c in 0..len {
                        let inv = 1.0 / (var[c] + eps).sqrt();
                        for k in (o * len + c) * inner..(o * len + c + 1) * inner {
                            let g = gd[k];
                            ggamma[c] += g * (xd[k] - mu[c]) * inv;
                            gbeta[c] += g;
                            gd[k] = g * gm[c] * inv;
                        }
                    }
                }
                add_into(&mut grads[layer.params[0]], &ggamma);
                add_into(&mut grads[layer.params[1]], &gbeta);
                Ok(gx)
            }
        }
    }

    /// Loss and gradients for one (input, target) pair; no JSON, no steps.
    /// `input`/`target` include the batch dimension. Returns the loss and
    /// dL/d(param) aligned with `params` (zeros for non-trainable ones).
    pub fn loss_and_grads(
        &self,
        params: &ParamSet,
        input: &Tensor,
        target: &Tensor,
        loss: &LossConfig,
        limits: &Limits,
    ) -> ComputeResult<(f64, Vec<Vec<f64>>)> {
        let trace = self.forward_costed(params, input, limits, 3)?;
        let ev = losses::evaluate(loss, trace.output(), target, self.layout, &loss_ptrs())?;
        let back = self.backward_lean(params, &trace, ev.grad)?;
        Ok((ev.value, back.param_grads))
    }
}

fn loss_ptrs() -> LossPointers {
    LossPointers {
        predictions: "/layers".into(),
        targets: "/target".into(),
        config: "/loss".into(),
    }
}

fn add_into(acc: &mut [f64], v: &[f64]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

fn transpose2(d: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; d.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = d[r * cols + c];
        }
    }
    out
}

/// Where a parameter comes from and what it is called.
struct Slot {
    pointer: String,
    name: String,
    trainable: bool,
}

fn slot(pointer: String, name: String) -> Slot {
    Slot {
        pointer,
        name,
        trainable: true,
    }
}

fn push_param(
    params: &mut ParamSet,
    value: &Value,
    s: Slot,
    limits: &Limits,
) -> ComputeResult<usize> {
    let t = Tensor::from_json(value, &s.pointer, limits)?;
    params.params.push(Param {
        name: s.name,
        pointer: s.pointer,
        shape: t.shape().to_vec(),
        data: t.into_data(),
        trainable: s.trainable,
    });
    Ok(params.params.len() - 1)
}

/// A per-channel vector parameter (`default` fills it when it is omitted).
fn push_vector(
    params: &mut ParamSet,
    value: Option<&Value>,
    (len, default): (usize, f64),
    s: Slot,
    limits: &Limits,
) -> ComputeResult<usize> {
    let pointer = s.pointer.clone();
    let idx = match value {
        Some(v) => push_param(params, v, s, limits)?,
        None => {
            params.params.push(Param {
                name: s.name,
                pointer: s.pointer,
                shape: vec![len],
                data: vec![default; len],
                trainable: s.trainable,
            });
            params.params.len() - 1
        }
    };
    let p = &params.params[idx];
    if p.shape != [len] {
        return Err(err(
            pointer,
            format!(
                "expected a vector of {len} values, got shape {}",
                shape_str(&p.shape)
            ),
        ));
    }
    Ok(idx)
}

fn build_layer(
    i: usize,
    spec: &LayerSpec,
    layout: Layout,
    batched: bool,
    limits: &Limits,
    params: &mut ParamSet,
) -> ComputeResult<Layer> {
    let ptr = lp(i);
    let (wname, bname) = match layout {
        Layout::Pytorch => ("weight", "bias"),
        Layout::Keras => ("kernel", "bias"),
    };
    match spec {
        LayerSpec::Dense(d) => {
            let act = resolve_activation(
                d.activation.as_ref(),
                layout,
                batched,
                &format!("{ptr}/activation"),
            )?;
            let wi = push_param(
                params,
                &d.weight,
                slot(format!("{ptr}/weight"), format!("{i}.{wname}")),
                limits,
            )?;
            let shape = params.params[wi].shape.clone();
            if shape.len() != 2 {
                return Err(err(
                    format!("{ptr}/weight"),
                    format!(
                        "a dense weight must be a matrix {}, got shape {}",
                        if layout == Layout::Pytorch {
                            "(out, in)"
                        } else {
                            "(in, out)"
                        },
                        shape_str(&shape)
                    ),
                ));
            }
            let (out_f, in_f) = match layout {
                Layout::Pytorch => (shape[0], shape[1]),
                Layout::Keras => (shape[1], shape[0]),
            };
            let mut idx = vec![wi];
            if let Some(b) = &d.bias {
                idx.push(push_vector(
                    params,
                    Some(b),
                    (out_f, 0.0),
                    slot(format!("{ptr}/bias"), format!("{i}.{bname}")),
                    limits,
                )?);
            }
            Ok(Layer {
                kind: "dense",
                op: Op::Dense { in_f, out_f, act },
                has_bias: d.bias.is_some(),
                params: idx,
            })
        }
        LayerSpec::Conv1d(c) | LayerSpec::Conv2d(c) => {
            let two_d = matches!(spec, LayerSpec::Conv2d(_));
            let act = resolve_activation(
                c.activation.as_ref(),
                layout,
                batched,
                &format!("{ptr}/activation"),
            )?;
            let stride = size_pair(c.stride.as_ref(), two_d, 1, &format!("{ptr}/stride"))?;
            let dilation = size_pair(c.dilation.as_ref(), two_d, 1, &format!("{ptr}/dilation"))?;
            let pad = padding(c.padding.as_ref(), two_d, &format!("{ptr}/padding"))?;
            let groups = c.groups.unwrap_or(1);
            if groups == 0 {
                return Err(err(format!("{ptr}/groups"), "groups must be at least 1"));
            }
            let wi = push_param(
                params,
                &c.weight,
                slot(format!("{ptr}/weight"), format!("{i}.{wname}")),
                limits,
            )?;
            let s = params.params[wi].shape.clone();
            let rank = if two_d { 4 } else { 3 };
            if s.len() != rank {
                let want = match (layout, two_d) {
                    (Layout::Pytorch, true) => "(out, in/groups, kh, kw)",
                    (Layout::Pytorch, false) => "(out, in/groups, k)",
                    (Layout::Keras, true) => "(kh, kw, in/groups, out)",
                    (Layout::Keras, false) => "(k, in/groups, out)",
                };
                return Err(err(
                    format!("{ptr}/weight"),
                    format!(
                        "conv filters must have shape {want} in {layout:?} layout, got {}",
                        shape_str(&s)
                    ),
                ));
            }
            let (cout, cin_g, k) = match (layout, two_d) {
                (Layout::Pytorch, true) => (s[0], s[1], [s[2], s[3]]),
                (Layout::Pytorch, false) => (s[0], s[1], [1, s[2]]),
                (Layout::Keras, true) => (s[3], s[2], [s[0], s[1]]),
                (Layout::Keras, false) => (s[2], s[1], [1, s[0]]),
            };
            if cout % groups != 0 {
                return Err(err(
                    format!("{ptr}/groups"),
                    format!("{cout} output channels are not divisible by {groups} groups"),
                ));
            }
            if pad == Pad::Same && (stride[0] > 1 || stride[1] > 1) && layout == Layout::Pytorch {
                return Err(err(
                    format!("{ptr}/padding"),
                    "PyTorch does not allow padding='same' with stride > 1 (use explicit padding)",
                ));
            }
            let mut idx = vec![wi];
            if let Some(b) = &c.bias {
                idx.push(push_vector(
                    params,
                    Some(b),
                    (cout, 0.0),
                    slot(format!("{ptr}/bias"), format!("{i}.{bname}")),
                    limits,
                )?);
            }
            Ok(Layer {
                kind: if two_d { "conv2d" } else { "conv1d" },
                op: Op::Conv {
                    two_d,
                    cout,
                    cin_g,
                    k,
                    stride,
                    dilation,
                    pad,
                    groups,
                    act,
                },
                has_bias: c.bias.is_some(),
                params: idx,
            })
        }
        LayerSpec::MaxPool1d(p)
        | LayerSpec::MaxPool2d(p)
        | LayerSpec::AvgPool1d(p)
        | LayerSpec::AvgPool2d(p) => {
            let two_d = matches!(spec, LayerSpec::MaxPool2d(_) | LayerSpec::AvgPool2d(_));
            let max = matches!(spec, LayerSpec::MaxPool1d(_) | LayerSpec::MaxPool2d(_));
            let k = size_pair(
                Some(&p.kernel_size),
                two_d,
                1,
                &format!("{ptr}/kernel_size"),
            )?;
            let stride = match &p.stride {
                None => k,
                Some(s) => size_pair(Some(s), two_d, 1, &format!("{ptr}/stride"))?,
            };
            let pad = padding(p.padding.as_ref(), two_d, &format!("{ptr}/padding"))?;
            if max && p.count_include_pad.is_some() {
                return Err(err(
                    format!("{ptr}/count_include_pad"),
                    "count_include_pad applies to average pooling only",
                ));
            }
            if !max && p.pad_value.is_some() {
                return Err(err(
                    format!("{ptr}/pad_value"),
                    "pad_value applies to max pooling only (average pooling uses count_include_pad)",
                ));
            }
            Ok(Layer {
                kind: match (max, two_d) {
                    (true, true) => "max_pool2d",
                    (true, false) => "max_pool1d",
                    (false, true) => "avg_pool2d",
                    (false, false) => "avg_pool1d",
                },
                op: Op::Pool {
                    two_d,
                    max,
                    k,
                    stride,
                    pad,
                    zero_pad: p.pad_value == Some(PadValue::Zero),
                    count_include_pad: p.count_include_pad.unwrap_or(layout == Layout::Pytorch),
                },
                has_bias: false,
                params: Vec::new(),
            })
        }
        LayerSpec::Flatten(_) => Ok(Layer {
            kind: "flatten",
            op: Op::Flatten,
            has_bias: false,
            params: Vec::new(),
        }),
        LayerSpec::Activation(a) => Ok(Layer {
            kind: "activation",
            op: Op::Act(resolve_activation(
                Some(&a.activation),
                layout,
                batched,
                &format!("{ptr}/activation"),
            )?),
            has_bias: false,
            params: Vec::new(),
        }),
        LayerSpec::Dropout(d) => {
            if let Some(r) = d.rate
                && !(0.0..1.0).contains(&r)
            {
                return Err(err(format!("{ptr}/rate"), "dropout rate must be in [0, 1)"));
            }
            Ok(Layer {
                kind: "dropout",
                op: Op::Dropout,
                has_bias: false,
                params: Vec::new(),
            })
        }
        LayerSpec::BatchNorm(b) => {
            let names: [&str; 4] = match layout {
                Layout::Pytorch => ["weight", "bias", "running_mean", "running_var"],
                Layout::Keras => ["gamma", "beta", "moving_mean", "moving_variance"],
            };
            let mean_t =
                Tensor::from_json(&b.running_mean, &format!("{ptr}/running_mean"), limits)?;
            if mean_t.rank() != 1 {
                return Err(err(
                    format!("{ptr}/running_mean"),
                    "running_mean must be a vector (one value per channel)",
                ));
            }
            let ch = mean_t.len();
            let fixed = |field: &str, k: usize| Slot {
                pointer: format!("{ptr}/{field}"),
                name: format!("{i}.{}", names[k]),
                trainable: false,
            };
            let gi = push_vector(
                params,
                b.gamma.as_ref(),
                (ch, 1.0),
                slot(format!("{ptr}/gamma"), format!("{i}.{}", names[0])),
                limits,
            )?;
            let bi = push_vector(
                params,
                b.beta.as_ref(),
                (ch, 0.0),
                slot(format!("{ptr}/beta"), format!("{i}.{}", names[1])),
                limits,
            )?;
            let mi = push_vector(
                params,
                Some(&b.running_mean),
                (ch, 0.0),
                fixed("running_mean", 2),
                limits,
            )?;
            let vi = push_vector(
                params,
                Some(&b.running_var),
                (ch, 1.0),
                fixed("running_var", 3),
                limits,
            )?;
            if params.params[vi].data.iter().any(|&v| v < 0.0) {
                return Err(err(
                    format!("{ptr}/running_var"),
                    "variances must be non-negative",
                ));
            }
            let eps = b.eps.unwrap_or(match layout {
                Layout::Pytorch => 1e-5,
                Layout::Keras => 1e-3,
            });
            if !(eps > 0.0 && eps.is_finite()) {
                return Err(err(format!("{ptr}/eps"), "eps must be a positive number"));
            }
            let axis = shift_axis(
                b.axis.unwrap_or(match layout {
                    Layout::Pytorch => 1,
                    Layout::Keras => -1,
                }),
                batched || b.axis.is_none(),
            );
            Ok(Layer {
                kind: "batch_norm",
                op: Op::BatchNorm {
                    channels: ch,
                    axis,
                    eps,
                },
                has_bias: true,
                params: vec![gi, bi, mi, vi],
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Requests and reports
// ---------------------------------------------------------------------------

/// Default and maximal worked-step lines per layer.
pub const DEFAULT_STEPS_PER_LAYER: usize = 32;
pub const MAX_STEPS_PER_LAYER: usize = 10_000;

/// A forward pass through a sequential network.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest {
    /// Weight/input layout: `pytorch` (default) or `keras`.
    #[serde(default)]
    pub layout: Layout,
    /// Whether `input` has a leading batch dimension (default true). When false,
    /// a batch of one is added for the computation and removed in the report.
    #[serde(default = "default_true")]
    pub batched: bool,
    /// The input tensor as nested arrays (NCHW/NCL in PyTorch layout, NHWC/NLC in Keras layout).
    #[schema(value_type = Object)]
    pub input: Value,
    /// The layers, applied in order.
    pub layers: Vec<LayerSpec>,
    /// Most worked-step lines per layer (default 32, at most 10000); larger
    /// layers are summarized and the omission is stated.
    #[serde(default)]
    pub max_steps_per_layer: Option<usize>,
}

fn default_true() -> bool {
    true
}

/// Forward pass result of one layer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LayerForward {
    /// Position in `layers`.
    pub index: usize,
    /// Layer type, e.g. `conv2d`.
    pub kind: String,
    /// Shape of the layer input.
    pub input_shape: Vec<usize>,
    /// Shape of the layer output.
    pub output_shape: Vec<usize>,
    /// Output before the fused activation (z), when the layer has one.
    #[schema(value_type = Option<Object>)]
    pub pre_activation: Option<Value>,
    /// Layer output (after the fused activation).
    #[schema(value_type = Object)]
    pub output: Value,
    /// Worked steps (dot products etc.), capped per layer.
    pub steps: Vec<Step>,
}

/// A forward pass: every layer's output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ForwardReport {
    /// The network output.
    #[schema(value_type = Object)]
    pub output: Value,
    /// Its shape.
    pub output_shape: Vec<usize>,
    /// Per-layer results.
    pub layers: Vec<LayerForward>,
    /// Number of scalar parameters (trainable and not).
    pub parameter_count: usize,
}

/// Loss, gradients of every parameter and of the input.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradientsRequest {
    /// Weight/input layout: `pytorch` (default) or `keras`.
    #[serde(default)]
    pub layout: Layout,
    /// Whether `input` and `target` have a leading batch dimension (default true).
    #[serde(default = "default_true")]
    pub batched: bool,
    /// The input tensor.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The layers, applied in order.
    pub layers: Vec<LayerSpec>,
    /// Target: same shape as the network output, or class indices for the
    /// sparse cross-entropies.
    #[schema(value_type = Object)]
    pub target: Value,
    /// The loss applied to the network output.
    pub loss: LossConfig,
    /// Most worked-step lines per layer (default 32, at most 10000).
    #[serde(default)]
    pub max_steps_per_layer: Option<usize>,
}

/// Gradient of one parameter tensor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParamGradient {
    /// Name, e.g. `0.weight` / `0.kernel`.
    pub name: String,
    /// JSON pointer of the parameter in the request.
    pub pointer: String,
    /// Its shape (request layout).
    pub shape: Vec<usize>,
    /// The value used.
    #[schema(value_type = Object)]
    pub value: Value,
    /// dL/d(parameter), same shape.
    #[schema(value_type = Object)]
    pub gradient: Value,
    /// False for batch-norm running statistics (gradient reported as 0).
    pub trainable: bool,
}

/// Backward-pass result of one layer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LayerGradient {
    /// Position in `layers`.
    pub index: usize,
    /// Layer type.
    pub kind: String,
    /// dL/d(layer output): the upstream gradient arriving at this layer.
    #[schema(value_type = Object)]
    pub output_gradient: Value,
    /// dL/d(pre-activation z), for layers with a fused activation.
    #[schema(value_type = Option<Object>)]
    pub pre_activation_gradient: Option<Value>,
    /// dL/d(layer input).
    #[schema(value_type = Object)]
    pub input_gradient: Value,
    /// Gradients of this layer's parameters.
    pub parameters: Vec<ParamGradient>,
    /// Worked steps (chain rule with numbers), capped per layer.
    pub steps: Vec<Step>,
}

/// Loss value and all gradients, with the forward pass.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GradientsReport {
    /// The loss value.
    pub loss: f64,
    /// Worked steps of the loss and of dL/d(output).
    pub loss_steps: Vec<Step>,
    /// dL/d(network input).
    #[schema(value_type = Object)]
    pub input_gradient: Value,
    /// Per-layer gradients, in layer order.
    pub layers: Vec<LayerGradient>,
    /// The forward pass that was differentiated.
    pub forward: ForwardReport,
}

/// Parses input (adding a batch dimension when `batched` is false).
fn parse_batched(v: &Value, ptr: &str, batched: bool, limits: &Limits) -> ComputeResult<Tensor> {
    let t = Tensor::from_json(v, ptr, limits)?;
    if batched {
        return Ok(t);
    }
    if t.rank() >= super::tensor::MAX_RANK {
        return Err(err(
            ptr,
            "an unbatched tensor can have at most 4 dimensions",
        ));
    }
    let mut s = vec![1];
    s.extend_from_slice(t.shape());
    t.reshape(s)
}

/// Removes the batch dimension of one for unbatched requests.
fn unbatch(t: &Tensor, batched: bool) -> Tensor {
    if batched || t.rank() == 0 {
        return t.clone();
    }
    Tensor::new(t.shape()[1..].to_vec(), t.data().to_vec()).unwrap_or_else(|_| t.clone())
}

fn step_cap(v: Option<usize>) -> usize {
    v.unwrap_or(DEFAULT_STEPS_PER_LAYER)
        .min(MAX_STEPS_PER_LAYER)
}

fn forward_report(
    net: &Network,
    params: &ParamSet,
    trace: &Trace,
    batched: bool,
    cap: usize,
) -> ForwardReport {
    let mut layers = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let lt = &trace.layers[i];
        let x = trace.layer_input(i);
        let out = unbatch(&lt.out, batched);
        layers.push(LayerForward {
            index: i,
            kind: layer.kind.to_string(),
            input_shape: unbatch(x, batched).shape().to_vec(),
            output_shape: out.shape().to_vec(),
            pre_activation: lt.pre.as_ref().map(|p| unbatch(p, batched).to_json()),
            output: out.to_json(),
            steps: explain::forward_steps(net, i, params, x, lt, cap),
        });
    }
    let out = unbatch(trace.output(), batched);
    ForwardReport {
        output: out.to_json(),
        output_shape: out.shape().to_vec(),
        layers,
        parameter_count: params.count(),
    }
}

/// Runs a forward pass and reports every layer's output with worked steps.
pub fn forward(req: &ForwardRequest, limits: &Limits) -> ComputeResult<ForwardReport> {
    let (net, params) = Network::build(&req.layers, req.layout, req.batched, limits)?;
    let input = parse_batched(&req.input, "/input", req.batched, limits)?;
    let trace = net.forward(&params, &input, limits)?;
    Ok(forward_report(
        &net,
        &params,
        &trace,
        req.batched,
        step_cap(req.max_steps_per_layer),
    ))
}

/// Runs forward, the loss and the backward pass; reports the loss, dL/d(every
/// parameter), dL/d(input) and the upstream gradient at every layer output.
/// A network with its parameters, input, target and loss, ready for repeated
/// [`Network::loss_and_grads`] calls (the optimizer's training loop).
pub struct TrainingProblem {
    pub net: Network,
    pub params: ParamSet,
    pub input: Tensor,
    pub target: Tensor,
    pub loss: LossConfig,
}

/// Reads a gradients request into a [`TrainingProblem`].
pub fn training_problem(req: &GradientsRequest, limits: &Limits) -> ComputeResult<TrainingProblem> {
    let (net, params) = Network::build(&req.layers, req.layout, req.batched, limits)?;
    let input = parse_batched(&req.input, "/input", req.batched, limits)?;
    let target = parse_batched(&req.target, "/target", req.batched, limits)?;
    let mut loss = req.loss.clone();
    loss.class_axis = loss.class_axis.map(|a| shift_axis(a, req.batched));
    Ok(TrainingProblem {
        net,
        params,
        input,
        target,
        loss,
    })
}

pub fn gradients(req: &GradientsRequest, limits: &Limits) -> ComputeResult<GradientsReport> {
    let (net, params) = Network::build(&req.layers, req.layout, req.batched, limits)?;
    let input = parse_batched(&req.input, "/input", req.batched, limits)?;
    let target = parse_batched(&req.target, "/target", req.batched, limits)?;
    let mut loss_cfg = req.loss.clone();
    loss_cfg.class_axis = loss_cfg.class_axis.map(|a| shift_axis(a, req.batched));
    let trace = net.forward_costed(&params, &input, limits, 3)?;
    let ev = losses::evaluate(
        &loss_cfg,
        trace.output(),
        &target,
        net.layout,
        &LossPointers {
            predictions: "/layers".into(),
            targets: "/target".into(),
            config: "/loss".into(),
        },
    )?;
    if !ev.value.is_finite() {
        return Err(err("/loss", "the loss is not finite (overflow)"));
    }
    let cap = step_cap(req.max_steps_per_layer);
    let loss_steps = losses::explain(&loss_cfg, trace.output(), &ev, net.layout, cap);
    let back = net.backward(&params, &trace, ev.grad.clone())?;
    let mut layers = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let g_in = if i == 0 {
            &back.input_grad
        } else {
            &back.output_grads[i - 1]
        };
        let parameters = layer
            .params
            .iter()
            .map(|&pi| {
                let p = &params.params[pi];
                let shape_t = |d: &[f64]| {
                    Tensor::new(p.shape.clone(), d.to_vec())
                        .map(|t| t.to_json())
                        .unwrap_or(Value::Null)
                };
                ParamGradient {
                    name: p.name.clone(),
                    pointer: p.pointer.clone(),
                    shape: p.shape.clone(),
                    value: shape_t(&p.data),
                    gradient: shape_t(&back.param_grads[pi]),
                    trainable: p.trainable,
                }
            })
            .collect();
        layers.push(LayerGradient {
            index: i,
            kind: layer.kind.to_string(),
            output_gradient: unbatch(&back.output_grads[i], req.batched).to_json(),
            pre_activation_gradient: back.pre_grads[i]
                .as_ref()
                .map(|t| unbatch(t, req.batched).to_json()),
            input_gradient: unbatch(g_in, req.batched).to_json(),
            parameters,
            steps: explain::backward_steps(&net, i, &params, &trace, &back, cap),
        });
    }
    Ok(GradientsReport {
        loss: ev.value,
        loss_steps,
        input_gradient: unbatch(&back.input_grad, req.batched).to_json(),
        layers,
        forward: forward_report(&net, &params, &trace, req.batched, cap),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(layers: Value, input: Value, layout: &str, batched: bool) -> ForwardReport {
        let req: ForwardRequest = serde_json::from_value(json!({
            "layout": layout, "batched": batched, "input": input, "layers": layers
        }))
        .unwrap();
        forward(&req, &Limits::default()).unwrap()
    }

    #[test]
    fn batch_norm_inference_and_dropout_identity() {
        let rep = run(
            json!([
                {"type": "batch_norm", "running_mean": [1, -1], "running_var": [4, 0.25],
                 "gamma": [2, 1], "beta": [0.5, 0], "eps": 0.0000001},
                {"type": "dropout", "rate": 0.5}
            ]),
            json!([[3, 0]]),
            "pytorch",
            true,
        );
        let out = rep.output.as_array().unwrap()[0]
            .as_array()
            .unwrap()
            .clone();
        let a = out[0].as_f64().unwrap();
        let b = out[1].as_f64().unwrap();
        assert!((a - (2.0 * (3.0 - 1.0) / (4.0f64 + 1e-7).sqrt() + 0.5)).abs() < 1e-12);
        assert!((b - (1.0 / (0.25f64 + 1e-7).sqrt())).abs() < 1e-12);
        assert_eq!(rep.layers[1].output, rep.layers[0].output);
    }

    #[test]
    fn flatten_follows_the_layout() {
        // (1, 2, 2, 1) NHWC vs (1, 1, 2, 2) NCHW of the same image: one channel, same order.
        let k = run(
            json!([{"type": "flatten"}]),
            json!([[[[1], [2]], [[3], [4]]]]),
            "keras",
            true,
        );
        assert_eq!(k.output, json!([[1.0, 2.0, 3.0, 4.0]]));
        // Two channels: NHWC flattens pixel by pixel.
        let k2 = run(
            json!([{"type": "flatten"}]),
            json!([[[[1, 10], [2, 20]]]]),
            "keras",
            true,
        );
        assert_eq!(k2.output, json!([[1.0, 10.0, 2.0, 20.0]]));
    }

    #[test]
    fn unbatched_axes_count_without_the_batch_dimension() {
        let rep = run(
            json!([{"type": "activation", "activation": {"name": "softmax", "axis": 0}}]),
            json!([0, 0]),
            "pytorch",
            false,
        );
        assert_eq!(rep.output, json!([0.5, 0.5]));
        assert_eq!(rep.output_shape, vec![2]);
    }

    #[test]
    fn same_padding_splits_like_tensorflow() {
        assert_eq!(same_pad(5, 3, 1, 1), (1, 1));
        assert_eq!(same_pad(5, 2, 1, 1), (0, 1));
        assert_eq!(same_pad(6, 3, 2, 1), (0, 1));
        assert_eq!(same_pad(7, 3, 2, 2), (2, 2));
    }

    #[test]
    fn options_on_the_wrong_layer_are_rejected() {
        let req: ForwardRequest = serde_json::from_value(json!({
            "input": [[[[1, 2], [3, 4]]]],
            "layers": [{"type": "avg_pool2d", "kernel_size": 2, "pad_value": "zero"}]
        }))
        .unwrap();
        let e = forward(&req, &Limits::default()).unwrap_err();
        assert_eq!(e.pointer, "/layers/0/pad_value");
        let req: ForwardRequest = serde_json::from_value(json!({
            "input": [[1, 2]],
            "layers": [{"type": "dense", "weight": [[1, 1]], "activation": {"name": "relu", "alpha": 0.1}}]
        }))
        .unwrap();
        assert_eq!(
            forward(&req, &Limits::default()).unwrap_err().pointer,
            "/layers/0/activation/alpha"
        );
    }

    #[test]
    fn multiply_add_budget_is_enforced() {
        let tight = Limits {
            max_mult_adds: 10,
            ..Limits::default()
        };
        let req: ForwardRequest = serde_json::from_value(json!({
            "input": [[1, 2, 3, 4]],
            "layers": [{"type": "dense", "weight": [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]}]
        }))
        .unwrap();
        let e = forward(&req, &tight).unwrap_err();
        assert_eq!(e.pointer, "/layers/0");
        assert!(e.message.contains("multiply-adds"));
    }
}
