//! The shared model description: a sequential network read from JSON.
//!
//! One [`ModelSpec`] is what every engine of dlgrade works from: the
//! architecture arithmetic ([`crate::compute::arch`]) reads shapes and
//! hyperparameters from it, a forward/backprop engine reads the same layers.
//!
//! The JSON is parsed by hand ([`ModelSpec::from_json`]) so that a request may
//! use Keras *or* PyTorch spelling for layer types and fields, in any letter
//! case and with or without underscores (`Conv2D`, `conv2d`, `filters` /
//! `out_channels`, `strides` / `stride`, `units` / `out_features` /
//! `hidden_size`, ...). Unknown layer types and unknown fields are errors
//! whose JSON pointer names the field, with a "did you mean" hint.
//!
//! Shapes never include the batch dimension. `input_shape` is read in the
//! request's `layout`: channels first (`CHW`, also `CL`, `CDHW`,
//! `channels_first`) or channels last (`HWC`, `LC`, `DHWC`, `channels_last`).
//! Recurrent layers read a `(timesteps, features)` tensor in either layout
//! (PyTorch with `batch_first=True`, Keras).
//!
//! Fields that do not change any shape or count (initializers, regularizers,
//! constraints, `dtype`, `momentum`, `eps`, `recurrent_activation`, ...) are
//! accepted and ignored; see [`IGNORED_FIELDS`].

use serde_json::{Map, Value};

use crate::compute::error::{ComputeError, ComputeResult};

/// Largest accepted value of any size or hyperparameter (2^32); keeps every
/// product of a few of them inside `u64`.
pub const MAX_HYPERPARAMETER: u64 = 1 << 32;

/// Fields accepted on any layer and ignored because they change no shape or
/// parameter count (matched after lower-casing and removing underscores;
/// names ending in `initializer`, `regularizer` or `constraint` are ignored too).
pub const IGNORED_FIELDS: &[&str] = &[
    "dtype",
    "device",
    "seed",
    "inplace",
    "momentum",
    "eps",
    "epsilon",
    "recurrent_activation",
    "dropout",
    "recurrent_dropout",
    "unroll",
    "stateful",
    "return_state",
    "go_backwards",
    "batch_first",
    "padding_mode",
    "padding_idx",
    "max_norm",
    "norm_type",
    "scale_grad_by_freq",
    "sparse",
    "mask_zero",
    "input_length",
    "noise_shape",
    "divisor_override",
    "return_indices",
    "nonlinearity",
    "approximate",
    "dim",
    "use_cudnn",
    "synchronized",
];

/// The framework whose counting conventions apply unless overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// PyTorch: `sum(p.numel() for p in model.parameters())`, two recurrent bias vectors.
    PyTorch,
    /// Keras 3: `model.count_params()`, batch-norm moving statistics counted as non-trainable.
    Keras,
}

/// Where the channel axis of an image-like tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `(C, L)`, `(C, H, W)`, `(C, D, H, W)` (PyTorch).
    ChannelsFirst,
    /// `(L, C)`, `(H, W, C)`, `(D, H, W, C)` (Keras default).
    ChannelsLast,
}

impl Layout {
    /// Short name used in reports (`CHW` / `HWC`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::ChannelsFirst => "CHW",
            Layout::ChannelsLast => "HWC",
        }
    }
}

/// How many bias vectors a recurrent gate has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrentBias {
    /// PyTorch: `b_ih` and `b_hh` (LSTM: `4h(in+h) + 8h`).
    Double,
    /// Keras: one bias per gate (LSTM: `4(h(in+h) + h)`); a Keras GRU with
    /// `reset_after=true` still has two.
    Single,
}

/// The rule for `padding="same"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamePadding {
    /// PyTorch: only stride 1; total padding `d(k-1)`, the odd pixel on the right/bottom.
    PyTorch,
    /// Keras/TensorFlow: `out = ceil(n / s)` for any stride, the odd pixel on the right/bottom.
    Keras,
}

/// Default pooling stride when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolStrideDefault {
    /// Stride = pool size (PyTorch and Keras).
    Kernel,
    /// Stride 1.
    One,
}

/// Which `ceil_mode` rule a pooling layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeilModeRule {
    /// PyTorch: `ceil(...)`, then drop the last window if it would start in the right padding.
    LastWindowStartsInside,
    /// Plain `ceil((n + 2p - k) / s) + 1` (Caffe).
    Plain,
}

/// Constraint on a transposed convolution's `output_padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputPaddingRule {
    /// PyTorch: `output_padding < stride` or `output_padding < dilation`.
    LessThanStrideOrDilation,
    /// Keras: `output_padding < stride`.
    LessThanStride,
}

/// Where receptive-field coordinates start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceptiveFieldOrigin {
    /// The centre of input pixel `i` is at coordinate `i` (first pixel centre = 0).
    PixelIndex,
    /// The centre of input pixel `i` is at `i + 0.5` (pixel edges at integers).
    PixelEdge,
}

/// What Dense/Linear does with an input of rank > 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseInput {
    /// Apply to the last axis (what both `torch.nn.Linear` and `keras.layers.Dense` do).
    LastAxis,
    /// Reject: a Flatten must come first.
    RequireFlat,
}

/// Every convention the arithmetic depends on, resolved (framework defaults
/// filled in). `given` lists the ones the request set explicitly.
#[derive(Debug, Clone, PartialEq)]
pub struct Conventions {
    /// `framework`: "pytorch" (default) or "keras".
    pub framework: Framework,
    /// `recurrent_bias`: "double" (PyTorch default) or "single" (Keras default).
    pub recurrent_bias: RecurrentBias,
    /// `gru_reset_after`: Keras GRU `reset_after` default (true, as Keras 3).
    pub gru_reset_after: bool,
    /// `count_bn_running_stats`: count batch-norm running mean/variance as
    /// non-trainable parameters (Keras default true, PyTorch default false).
    pub count_bn_running_stats: bool,
    /// `same_padding`: "pytorch" or "keras" (defaults to the framework).
    pub same_padding: SamePadding,
    /// `pool_stride_default`: "kernel" (default) or "one".
    pub pool_stride_default: PoolStrideDefault,
    /// `ceil_mode_rule`: "last_window_starts_inside" (default, PyTorch) or "plain".
    pub ceil_mode_rule: CeilModeRule,
    /// `output_padding_rule`: "stride_or_dilation" (PyTorch) or "stride" (Keras).
    pub output_padding_rule: OutputPaddingRule,
    /// `receptive_field_origin`: "pixel_index" (default) or "pixel_edge".
    pub receptive_field_origin: ReceptiveFieldOrigin,
    /// `mult_adds_include_bias`: count one add per output for the bias (default false).
    pub mult_adds_include_bias: bool,
    /// `dense_input`: "last_axis" (default, both frameworks) or "require_flat".
    pub dense_input: DenseInput,
    /// `return_sequences`: default for recurrent layers (PyTorch true: the
    /// module returns every step; Keras false).
    pub return_sequences: bool,
    /// Names of conventions set explicitly by the request.
    pub given: Vec<&'static str>,
}

impl Conventions {
    /// All defaults of one framework.
    pub fn for_framework(framework: Framework) -> Self {
        let keras = framework == Framework::Keras;
        Self {
            framework,
            recurrent_bias: if keras {
                RecurrentBias::Single
            } else {
                RecurrentBias::Double
            },
            gru_reset_after: true,
            count_bn_running_stats: keras,
            same_padding: if keras {
                SamePadding::Keras
            } else {
                SamePadding::PyTorch
            },
            pool_stride_default: PoolStrideDefault::Kernel,
            ceil_mode_rule: CeilModeRule::LastWindowStartsInside,
            output_padding_rule: if keras {
                OutputPaddingRule::LessThanStride
            } else {
                OutputPaddingRule::LessThanStrideOrDilation
            },
            receptive_field_origin: ReceptiveFieldOrigin::PixelIndex,
            mult_adds_include_bias: false,
            dense_input: DenseInput::LastAxis,
            return_sequences: !keras,
            given: Vec::new(),
        }
    }

    /// Parses the `conventions` object (pointer `ptr`); `None` means all defaults.
    pub fn from_json(v: Option<&Value>, ptr: &str) -> ComputeResult<Self> {
        let Some(v) = v else {
            return Ok(Self::for_framework(Framework::PyTorch));
        };
        let map = v
            .as_object()
            .ok_or_else(|| ComputeError::new(ptr, "conventions must be an object"))?;
        let mut f = Fields::new(map, ptr, "conventions")?;
        let framework = match f.take(&["framework"])? {
            Some(x) => match x.choice(&["pytorch", "torch", "keras", "tensorflow"])? {
                0 | 1 => Framework::PyTorch,
                _ => Framework::Keras,
            },
            None => Framework::PyTorch,
        };
        let mut c = Self::for_framework(framework);
        if f.was_given("framework") {
            c.given.push("framework");
        }
        if let Some(x) = f.take(&["recurrent_bias"])? {
            c.recurrent_bias = match x.choice(&["double", "pytorch", "single", "keras"])? {
                0 | 1 => RecurrentBias::Double,
                _ => RecurrentBias::Single,
            };
            c.given.push("recurrent_bias");
        }
        if let Some(x) = f.take(&["gru_reset_after", "reset_after"])? {
            c.gru_reset_after = x.boolean()?;
            c.given.push("gru_reset_after");
        }
        if let Some(x) = f.take(&["count_bn_running_stats"])? {
            c.count_bn_running_stats = x.boolean()?;
            c.given.push("count_bn_running_stats");
        }
        if let Some(x) = f.take(&["same_padding"])? {
            c.same_padding = match x.choice(&["pytorch", "keras", "tensorflow"])? {
                0 => SamePadding::PyTorch,
                _ => SamePadding::Keras,
            };
            c.given.push("same_padding");
        }
        if let Some(x) = f.take(&["pool_stride_default"])? {
            c.pool_stride_default = match x.choice(&["kernel", "one"])? {
                0 => PoolStrideDefault::Kernel,
                _ => PoolStrideDefault::One,
            };
            c.given.push("pool_stride_default");
        }
        if let Some(x) = f.take(&["ceil_mode_rule"])? {
            c.ceil_mode_rule = match x.choice(&["last_window_starts_inside", "pytorch", "plain"])? {
                0 | 1 => CeilModeRule::LastWindowStartsInside,
                _ => CeilModeRule::Plain,
            };
            c.given.push("ceil_mode_rule");
        }
        if let Some(x) = f.take(&["output_padding_rule"])? {
            c.output_padding_rule =
                match x.choice(&["stride_or_dilation", "pytorch", "stride", "keras"])? {
                    0 | 1 => OutputPaddingRule::LessThanStrideOrDilation,
                    _ => OutputPaddingRule::LessThanStride,
                };
            c.given.push("output_padding_rule");
        }
        if let Some(x) = f.take(&["receptive_field_origin"])? {
            c.receptive_field_origin = match x.choice(&["pixel_index", "pixel_edge"])? {
                0 => ReceptiveFieldOrigin::PixelIndex,
                _ => ReceptiveFieldOrigin::PixelEdge,
            };
            c.given.push("receptive_field_origin");
        }
        if let Some(x) = f.take(&["mult_adds_include_bias"])? {
            c.mult_adds_include_bias = x.boolean()?;
            c.given.push("mult_adds_include_bias");
        }
        if let Some(x) = f.take(&["dense_input"])? {
            c.dense_input = match x.choice(&["last_axis", "require_flat"])? {
                0 => DenseInput::LastAxis,
                _ => DenseInput::RequireFlat,
            };
            c.given.push("dense_input");
        }
        if let Some(x) = f.take(&["return_sequences"])? {
            c.return_sequences = x.boolean()?;
            c.given.push("return_sequences");
        }
        f.finish(false)?;
        Ok(c)
    }
}

/// A sequential model: input shape (no batch axis), layout, layers, conventions.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Input shape without the batch axis, in `layout`.
    pub input_shape: Vec<u64>,
    /// Channel position of image-like tensors.
    pub layout: Layout,
    /// The layers, applied in order.
    pub layers: Vec<Layer>,
    /// Resolved conventions.
    pub conventions: Conventions,
}

/// One layer with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// JSON pointer of the layer object, e.g. `/layers/3`.
    pub pointer: String,
    /// Optional user-given name.
    pub name: Option<String>,
    /// `trainable: false` freezes every parameter of the layer (default true).
    pub trainable: bool,
    /// What the layer computes.
    pub kind: LayerKind,
    /// JSON pointer of every field given, by canonical name (`kernel_size`,
    /// `strides`, `units`, ...), so errors can name the key the request used.
    pub field_pointers: Vec<(&'static str, String)>,
}

impl Layer {
    /// Pointer of a field by canonical name: the key the request used, or
    /// `<layer>/<canonical>` when the field was not given.
    pub fn field_pointer(&self, canonical: &str) -> String {
        self.field_pointers
            .iter()
            .find(|(c, _)| *c == canonical)
            .map_or_else(
                || format!("{}/{canonical}", self.pointer),
                |(_, p)| p.clone(),
            )
    }
}

/// The kinds of layer dlgrade understands.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    /// Dense / Linear, applied to the last axis.
    Dense(Dense),
    /// Convolution of any flavour and rank.
    Conv(Conv),
    /// Max or average pooling with a window.
    Pool(Pool),
    /// Global max/average pooling over all spatial axes.
    GlobalPool(GlobalPool),
    /// Adaptive pooling to a fixed output size (PyTorch).
    AdaptivePool(AdaptivePool),
    /// Flatten (PyTorch `start_dim`/`end_dim` counted with the batch axis, default 1..-1).
    Flatten(Flatten),
    /// Dropout in any variant (no parameters, shape unchanged).
    Dropout(Dropout),
    /// Batch normalization over the channel axis.
    BatchNorm(BatchNorm),
    /// Layer normalization over trailing axes.
    LayerNorm(LayerNorm),
    /// Embedding lookup table.
    Embedding(Embedding),
    /// Element-wise activation (or softmax) layer.
    Activation(Activation),
    /// SimpleRNN / RNN, LSTM or GRU, optionally bidirectional and stacked.
    Recurrent(Recurrent),
    /// Zero padding of the spatial axes (Keras `ZeroPadding2D`, PyTorch `ZeroPad2d`).
    ZeroPad(ZeroPad),
    /// Upsampling by integer factors or to a size (Keras `UpSampling2D`, PyTorch `Upsample`).
    Upsample(Upsample),
}

/// Zero padding layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroPad {
    /// Spatial rank.
    pub rank: usize,
    /// `(before, after)` per spatial axis, in axis order (D, H, W).
    pub pads: Vec<(u64, u64)>,
}

/// Upsampling layer (no parameters; nearest or bilinear changes values only).
#[derive(Debug, Clone, PartialEq)]
pub struct Upsample {
    /// Spatial rank from the type name (`UpSampling2D`); `None` = from the input.
    pub rank: Option<usize>,
    /// Integer factor per axis (Keras `size`, PyTorch `scale_factor`); one value = every axis.
    pub factors: Option<Vec<u64>>,
    /// PyTorch `size`: the output size per axis; one value = every axis.
    pub output_size: Option<Vec<u64>>,
}

impl LayerKind {
    /// Canonical type name for reports, e.g. `Conv2D`, `MaxPool2D`, `LSTM`.
    pub fn type_name(&self) -> String {
        match self {
            LayerKind::Dense(_) => "Dense".into(),
            LayerKind::Conv(c) => {
                let prefix = match c.kind {
                    ConvKind::Standard => "Conv",
                    ConvKind::Transposed => "ConvTranspose",
                    ConvKind::Depthwise => "DepthwiseConv",
                    ConvKind::Separable => "SeparableConv",
                };
                format!("{prefix}{}D", c.rank)
            }
            LayerKind::Pool(p) => format!("{}Pool{}D", p.op.name(), p.rank),
            LayerKind::GlobalPool(p) => format!("Global{}Pool{}D", p.op.name(), p.rank),
            LayerKind::AdaptivePool(p) => format!("Adaptive{}Pool{}D", p.op.name(), p.rank),
            LayerKind::Flatten(_) => "Flatten".into(),
            LayerKind::Dropout(_) => "Dropout".into(),
            LayerKind::BatchNorm(_) => "BatchNorm".into(),
            LayerKind::LayerNorm(_) => "LayerNorm".into(),
            LayerKind::Embedding(_) => "Embedding".into(),
            LayerKind::Activation(a) => format!("Activation({})", a.name()),
            LayerKind::ZeroPad(z) => format!("ZeroPadding{}D", z.rank),
            LayerKind::Upsample(u) => match u.rank {
                Some(r) => format!("UpSampling{r}D"),
                None => "Upsample".into(),
            },
            LayerKind::Recurrent(r) => {
                let cell = r.cell.name();
                if r.bidirectional {
                    format!("Bidirectional({cell})")
                } else {
                    cell.into()
                }
            }
        }
    }
}

/// Dense / Linear.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Output features (`units`, `out_features`).
    pub units: u64,
    /// Whether a bias vector exists (`use_bias`, `bias`; default true).
    pub use_bias: bool,
    /// Optional fused activation (Keras `activation=`).
    pub activation: Option<Activation>,
    /// Declared input features (`in_features`), checked against the inferred one.
    pub in_features: Option<u64>,
}

/// Flavour of convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// Ordinary (grouped) convolution.
    Standard,
    /// Transposed convolution (`ConvTranspose2d`, `Conv2DTranspose`).
    Transposed,
    /// Depthwise convolution: `depth_multiplier` filters per input channel.
    Depthwise,
    /// Depthwise then 1x1 pointwise convolution (one bias, on the pointwise part).
    Separable,
}

/// Padding of a window layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Keep `ceil(n/s)` (Keras) or `n` with stride 1 (PyTorch); see [`SamePadding`].
    Same,
    /// Explicit `(before, after)` zero padding per spatial axis.
    Explicit(Vec<(u64, u64)>),
}

/// A convolution layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Flavour.
    pub kind: ConvKind,
    /// Spatial rank: 1, 2 or 3.
    pub rank: usize,
    /// Output channels (`filters`, `out_channels`); `None` for depthwise (in x multiplier).
    pub filters: Option<u64>,
    /// Kernel size per spatial axis.
    pub kernel: Vec<u64>,
    /// Stride per spatial axis (default 1).
    pub strides: Vec<u64>,
    /// Padding (default valid).
    pub padding: Padding,
    /// Dilation per spatial axis (default 1).
    pub dilation: Vec<u64>,
    /// Groups (default 1).
    pub groups: u64,
    /// Depth multiplier for depthwise/separable (default 1).
    pub depth_multiplier: u64,
    /// Transposed only: extra size on the right/bottom (default none).
    pub output_padding: Option<Vec<u64>>,
    /// Bias (default true).
    pub use_bias: bool,
    /// Declared input channels (`in_channels`), checked against the inferred one.
    pub in_channels: Option<u64>,
    /// Optional fused activation.
    pub activation: Option<Activation>,
}

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolOp {
    /// Maximum.
    Max,
    /// Average.
    Avg,
}

impl PoolOp {
    /// `Max` or `Avg`.
    pub fn name(self) -> &'static str {
        match self {
            PoolOp::Max => "Max",
            PoolOp::Avg => "Avg",
        }
    }
}

/// Windowed pooling.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Max or average.
    pub op: PoolOp,
    /// Spatial rank.
    pub rank: usize,
    /// Window per spatial axis (`pool_size`, `kernel_size`).
    pub kernel: Vec<u64>,
    /// Stride per axis; `None` = the convention's default (the window).
    pub strides: Option<Vec<u64>>,
    /// Padding (default valid).
    pub padding: Padding,
    /// Dilation (PyTorch max pooling; default 1).
    pub dilation: Vec<u64>,
    /// PyTorch `ceil_mode` (default false).
    pub ceil_mode: bool,
    /// PyTorch `count_include_pad` (average pooling; changes values only; default true).
    pub count_include_pad: bool,
}

/// Global pooling.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalPool {
    /// Max or average.
    pub op: PoolOp,
    /// Spatial rank.
    pub rank: usize,
    /// Keep the pooled axes as size 1 (default false).
    pub keepdims: bool,
}

/// Adaptive pooling.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptivePool {
    /// Max or average.
    pub op: PoolOp,
    /// Spatial rank.
    pub rank: usize,
    /// Target size per axis; `None` keeps the input size.
    pub output_size: Vec<Option<u64>>,
}

/// Flatten.
#[derive(Debug, Clone, PartialEq)]
pub struct Flatten {
    /// PyTorch `start_dim` counted with the batch axis (default 1).
    pub start_dim: i64,
    /// PyTorch `end_dim` counted with the batch axis (default -1).
    pub end_dim: i64,
}

/// Dropout.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropout {
    /// Drop probability (`rate`, `p`), if given.
    pub rate: Option<f64>,
}

/// Batch normalization.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Declared feature count (`num_features`), checked.
    pub num_features: Option<u64>,
    /// Keras `axis` counted with the batch axis; `None` = the layout's channel axis.
    pub axis: Option<i64>,
    /// Learnable scale gamma (`scale`; PyTorch `affine`; default true).
    pub scale: bool,
    /// Learnable shift beta (`center`; PyTorch `affine`; default true).
    pub center: bool,
    /// Running statistics kept (PyTorch `track_running_stats`, default true).
    pub track_running_stats: bool,
}

/// Layer normalization.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// PyTorch `normalized_shape` (trailing dims); `None` = use `axis`.
    pub normalized_shape: Option<Vec<u64>>,
    /// Keras `axis` (counted with the batch axis); default `[-1]`.
    pub axis: Vec<i64>,
    /// Learnable gamma (`scale`, `elementwise_affine`; default true).
    pub scale: bool,
    /// Learnable beta (`center`, `bias`; default true).
    pub center: bool,
}

/// Embedding table.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Vocabulary size (`input_dim`, `num_embeddings`).
    pub input_dim: u64,
    /// Vector size (`output_dim`, `embedding_dim`).
    pub output_dim: u64,
}

/// Element-wise activations (no parameters).
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Log-softmax over the last axis.
    LogSoftmax,
    /// Leaky ReLU with its negative slope (Keras default 0.3, PyTorch 0.01).
    LeakyRelu(f64),
    /// ELU with alpha (default 1).
    Elu(f64),
    /// GELU.
    Gelu,
    /// SELU.
    Selu,
    /// SiLU / swish.
    Silu,
    /// Softplus.
    Softplus,
    /// Softsign.
    Softsign,
    /// ReLU6.
    Relu6,
    /// Hard sigmoid.
    HardSigmoid,
    /// Mish.
    Mish,
    /// exp.
    Exponential,
    /// Identity (`linear`, `Identity`).
    Linear,
}

impl Activation {
    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LogSoftmax => "log_softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::Selu => "selu",
            Activation::Silu => "silu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Relu6 => "relu6",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Mish => "mish",
            Activation::Exponential => "exponential",
            Activation::Linear => "linear",
        }
    }

    fn from_name(s: &str, framework: Framework) -> Option<Self> {
        let leaky = if framework == Framework::Keras {
            0.3
        } else {
            0.01
        };
        Some(match norm(s).as_str() {
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "logsoftmax" => Activation::LogSoftmax,
            "leakyrelu" => Activation::LeakyRelu(leaky),
            "elu" => Activation::Elu(1.0),
            "gelu" => Activation::Gelu,
            "selu" => Activation::Selu,
            "silu" | "swish" => Activation::Silu,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "relu6" => Activation::Relu6,
            "hardsigmoid" => Activation::HardSigmoid,
            "mish" => Activation::Mish,
            "exponential" | "exp" => Activation::Exponential,
            "linear" | "identity" | "none" => Activation::Linear,
            _ => return None,
        })
    }
}

const ACTIVATION_NAMES: &[&str] = &[
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "elu",
    "gelu",
    "selu",
    "silu",
    "swish",
    "softplus",
    "softsign",
    "relu6",
    "hard_sigmoid",
    "mish",
    "exponential",
    "linear",
];

/// Recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Elman RNN (`SimpleRNN`, `RNN`): 1 gate.
    Rnn,
    /// LSTM: 4 gates.
    Lstm,
    /// GRU: 3 gates.
    Gru,
}

impl Cell {
    /// Number of gate blocks.
    pub fn gates(self) -> u64 {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// `SimpleRNN`, `LSTM`, `GRU`.
    pub fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "SimpleRNN",
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        }
    }
}

/// How a bidirectional layer combines the two directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Concatenate (PyTorch always; Keras default): `2h` features.
    Concat,
    /// Sum, product or average: `h` features.
    Elementwise,
}

/// A recurrent layer (possibly bidirectional, possibly stacked).
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrent {
    /// Cell type.
    pub cell: Cell,
    /// Hidden size (`units`, `hidden_size`).
    pub units: u64,
    /// Bias vectors present (`use_bias`, `bias`; default true).
    pub use_bias: bool,
    /// Output every step (`(T, D*h)`) or only the last (`(D*h)`).
    pub return_sequences: bool,
    /// Two directions.
    pub bidirectional: bool,
    /// How directions are merged.
    pub merge_mode: MergeMode,
    /// Stacked layers (PyTorch `num_layers`, default 1).
    pub num_layers: u64,
    /// Bias vectors per gate block: 1 or 2 (resolved from conventions and `reset_after`).
    pub bias_vectors: u64,
    /// GRU `reset_after` as resolved (reported).
    pub reset_after: bool,
    /// Declared input features (`input_size`), checked.
    pub input_size: Option<u64>,
}

impl ModelSpec {
    /// Parses a model description (see the module docs). Pointers are relative
    /// to `v` (e.g. `/layers/3/kernel_size`).
    pub fn from_json(v: &Value) -> ComputeResult<ModelSpec> {
        Self::from_json_at(v, "")
    }

    /// As [`ModelSpec::from_json`], with every pointer prefixed by `base`
    /// (e.g. `/model` when the description is nested in a larger request).
    pub fn from_json_at(v: &Value, base: &str) -> ComputeResult<ModelSpec> {
        let map = v.as_object().ok_or_else(|| {
            ComputeError::new(base, "the model description must be a JSON object")
        })?;
        let mut f = Fields::new(map, base, "model")?;
        let conv_field = f.take(&["conventions"])?;
        let conventions = match &conv_field {
            Some(c) => Conventions::from_json(Some(c.value), &c.ptr)?,
            None => Conventions::for_framework(Framework::PyTorch),
        };
        let input = required(&mut f, &["input_shape"])?;
        let input_shape = input.dims()?;
        let layout = match f.take(&["layout", "data_format"])? {
            Some(x) => match x.choice(&[
                "chw",
                "cl",
                "cdhw",
                "channels_first",
                "ncl",
                "nchw",
                "ncdhw",
                "hwc",
                "lc",
                "dhwc",
                "channels_last",
                "nlc",
                "nhwc",
                "ndhwc",
            ])? {
                0..=6 => Layout::ChannelsFirst,
                _ => Layout::ChannelsLast,
            },
            None => Layout::ChannelsFirst,
        };
        let layers_f = required(&mut f, &["layers"])?;
        let arr = layers_f
            .value
            .as_array()
            .ok_or_else(|| ComputeError::new(&layers_f.ptr, "layers must be an array"))?;
        f.finish(false)?;
        let mut layers = Vec::with_capacity(arr.len());
        for (i, lv) in arr.iter().enumerate() {
            layers.push(Layer::from_json(
                lv,
                &format!("{}/{i}", layers_f.ptr),
                &conventions,
            )?);
        }
        Ok(ModelSpec {
            input_shape,
            layout,
            layers,
            conventions,
        })
    }
}

impl Layer {
    /// Parses one layer object found at pointer `ptr`.
    pub fn from_json(v: &Value, ptr: &str, conv: &Conventions) -> ComputeResult<Layer> {
        Self::parse(v, ptr, conv, true)
    }

    fn parse(
        v: &Value,
        ptr: &str,
        conv: &Conventions,
        allow_wrapper: bool,
    ) -> ComputeResult<Layer> {
        let map = v
            .as_object()
            .ok_or_else(|| ComputeError::new(ptr, "a layer must be a JSON object"))?;
        let mut f = Fields::new(map, ptr, "layer")?;
        let t = f
            .take(&["type", "class_name"])?
            .ok_or_else(|| ComputeError::new(format!("{ptr}/type"), "layer `type` is required"))?;
        let type_raw = t
            .value
            .as_str()
            .ok_or_else(|| ComputeError::new(&t.ptr, "layer `type` must be a string"))?;
        let ty = norm(type_raw);
        f.what = type_raw.to_string();
        f.framework = conv.framework;
        let name = match f.take(&["name"])? {
            Some(x) => Some(x.string()?.to_string()),
            None => None,
        };
        let trainable = match f.take(&["trainable", "requires_grad"])? {
            Some(x) => x.boolean()?,
            None => true,
        };
        let fw = conv.framework;
        let kind = if let Some(kind) = conv_kind(&ty) {
            LayerKind::Conv(parse_conv(&mut f, kind.0, kind.1)?)
        } else if let Some((op, rank)) = pool_kind(
            &ty,
            &["maxpool", "maxpooling"],
            &["avgpool", "averagepooling", "avgpooling"],
        ) {
            LayerKind::Pool(parse_pool(&mut f, op, rank)?)
        } else if let Some((op, rank)) = pool_kind(
            &ty,
            &["globalmaxpool", "globalmaxpooling"],
            &["globalavgpool", "globalaveragepooling", "globalavgpooling"],
        ) {
            let keepdims = opt_bool(&mut f, &["keepdims", "keep_dims"], false)?;
            LayerKind::GlobalPool(GlobalPool { op, rank, keepdims })
        } else if let Some((op, rank)) = pool_kind(
            &ty,
            &["adaptivemaxpool", "adaptivemaxpooling"],
            &[
                "adaptiveavgpool",
                "adaptiveaveragepooling",
                "adaptiveavgpooling",
            ],
        ) {
            let x = f.take(&["output_size"])?.ok_or_else(|| {
                ComputeError::new(format!("{ptr}/output_size"), "output_size is required")
            })?;
            let output_size = x.opt_ints(rank)?;
            LayerKind::AdaptivePool(AdaptivePool {
                op,
                rank,
                output_size,
            })
        } else {
            match ty.as_str() {
                "dense" | "linear" => LayerKind::Dense(Dense {
                    units: required(&mut f, &["units", "out_features"])?.pos()?,
                    use_bias: opt_bool(&mut f, &["use_bias", "bias"], true)?,
                    activation: opt_activation(&mut f, fw)?,
                    in_features: opt_pos(&mut f, &["in_features", "input_dim"])?,
                }),
                "flatten" => {
                    let start_dim = match f.take(&["start_dim"])? {
                        Some(x) => x.int()?,
                        None => 1,
                    };
                    let end_dim = match f.take(&["end_dim"])? {
                        Some(x) => x.int()?,
                        None => -1,
                    };
                    LayerKind::Flatten(Flatten { start_dim, end_dim })
                }
                "dropout"
                | "dropout1d"
                | "dropout2d"
                | "dropout3d"
                | "spatialdropout1d"
                | "spatialdropout2d"
                | "spatialdropout3d"
                | "alphadropout"
                | "gaussiandropout"
                | "featurealphadropout" => {
                    let rate = match f.take(&["rate", "p"])? {
                        Some(x) => Some(x.prob()?),
                        None => None,
                    };
                    LayerKind::Dropout(Dropout { rate })
                }
                "batchnorm" | "batchnorm1d" | "batchnorm2d" | "batchnorm3d"
                | "batchnormalization" => {
                    let num_features = opt_pos(&mut f, &["num_features"])?;
                    let axis = match f.take(&["axis"])? {
                        Some(x) => Some(x.int()?),
                        None => None,
                    };
                    let affine = opt_bool(&mut f, &["affine"], true)?;
                    let scale = opt_bool(&mut f, &["scale"], true)? && affine;
                    let center = opt_bool(&mut f, &["center"], true)? && affine;
                    let track_running_stats = opt_bool(&mut f, &["track_running_stats"], true)?;
                    LayerKind::BatchNorm(BatchNorm {
                        num_features,
                        axis,
                        scale,
                        center,
                        track_running_stats,
                    })
                }
                "layernorm" | "layernormalization" => {
                    let normalized_shape = match f.take(&["normalized_shape"])? {
                        Some(x) => Some(x.dims()?),
                        None => None,
                    };
                    let axis = match f.take(&["axis"])? {
                        Some(x) => x.int_list()?,
                        None => vec![-1],
                    };
                    let affine = opt_bool(&mut f, &["elementwise_affine"], true)?;
                    let scale = opt_bool(&mut f, &["scale"], true)? && affine;
                    let center = opt_bool(&mut f, &["center", "bias"], true)? && affine;
                    LayerKind::LayerNorm(LayerNorm {
                        normalized_shape,
                        axis,
                        scale,
                        center,
                    })
                }
                "zeropadding1d" | "zeropadding2d" | "zeropadding3d" => {
                    let rank = rank_suffix(&ty["zeropadding".len()..]).unwrap_or(2);
                    let pads = match required(&mut f, &["padding"])? {
                        x if x.value.is_string() => {
                            return Err(
                                x.err("`padding` of a zero-padding layer is a number of pixels")
                            );
                        }
                        // Keras ZeroPadding1D reads (left, right) from a pair.
                        x if rank == 1 && x.value.as_array().is_some_and(|a| a.len() == 2) => {
                            let pair = x.ints(2, 0)?;
                            vec![(pair[0], pair[1])]
                        }
                        x => match x.padding(rank)? {
                            Padding::Explicit(p) => p,
                            Padding::Valid | Padding::Same => vec![(0, 0); rank],
                        },
                    };
                    LayerKind::ZeroPad(ZeroPad { rank, pads })
                }
                "zeropad1d" | "zeropad2d" | "zeropad3d" | "constantpad1d" | "constantpad2d"
                | "constantpad3d" => {
                    let rank = ty
                        .strip_prefix("zeropad")
                        .or_else(|| ty.strip_prefix("constantpad"))
                        .and_then(rank_suffix)
                        .unwrap_or(2);
                    f.ignore(&["value"]);
                    let x = required(&mut f, &["padding"])?;
                    // PyTorch order: (left, right, top, bottom, front, back), last axis first.
                    let flat = x
                        .ints(2 * rank, 0)
                        .or_else(|_| x.ints(1, 0).map(|v| v.repeat(2 * rank)))?;
                    let pads = flat
                        .chunks(2)
                        .rev()
                        .map(|c| (c[0], c[c.len() - 1]))
                        .collect();
                    LayerKind::ZeroPad(ZeroPad { rank, pads })
                }
                "upsampling1d"
                | "upsampling2d"
                | "upsampling3d"
                | "upsample"
                | "upsamplingnearest2d"
                | "upsamplingbilinear2d" => {
                    let rank = rank_suffix(
                        ty.trim_start_matches("upsamplingnearest")
                            .trim_start_matches("upsamplingbilinear")
                            .trim_start_matches("upsampling"),
                    );
                    f.ignore(&[
                        "interpolation",
                        "mode",
                        "align_corners",
                        "recompute_scale_factor",
                        "data_format",
                    ]);
                    let pytorch = ty == "upsample"
                        || ty.starts_with("upsamplingnearest")
                        || ty.starts_with("upsamplingbilinear");
                    let list = |x: &Field| -> ComputeResult<Vec<u64>> {
                        match x.value.as_array() {
                            Some(a) => x.ints(a.len(), 1),
                            None => x.ints(1, 1),
                        }
                    };
                    let (factors, output_size) = if pytorch {
                        let fac = match f.take(&["scale_factor"])? {
                            Some(x) if !x.value.is_null() => Some(list(&x)?),
                            _ => None,
                        };
                        let size = match f.take(&["size"])? {
                            Some(x) if !x.value.is_null() => Some(list(&x)?),
                            _ => None,
                        };
                        (fac, size)
                    } else {
                        let fac = match f.take(&["size", "scale_factor"])? {
                            Some(x) => list(&x)?,
                            None => vec![2],
                        };
                        (Some(fac), None)
                    };
                    if factors.is_some() == output_size.is_some() {
                        return Err(ComputeError::new(
                            format!("{ptr}/scale_factor"),
                            "give exactly one of scale_factor and size",
                        ));
                    }
                    LayerKind::Upsample(Upsample {
                        rank,
                        factors,
                        output_size,
                    })
                }
                "embedding" => LayerKind::Embedding(Embedding {
                    input_dim: required(&mut f, &["input_dim", "num_embeddings"])?.pos()?,
                    output_dim: required(&mut f, &["output_dim", "embedding_dim"])?.pos()?,
                }),
                "activation" => {
                    let x = required(&mut f, &["activation"])?;
                    f.ignore(&["negative_slope", "alpha", "axis"]);
                    LayerKind::Activation(x.activation(fw)?)
                }
                "leakyrelu" => {
                    let slope = match f.take(&["negative_slope", "alpha"])? {
                        Some(x) => x.float()?,
                        None if fw == Framework::Keras => 0.3,
                        None => 0.01,
                    };
                    LayerKind::Activation(Activation::LeakyRelu(slope))
                }
                "elu" => {
                    let alpha = match f.take(&["alpha"])? {
                        Some(x) => x.float()?,
                        None => 1.0,
                    };
                    LayerKind::Activation(Activation::Elu(alpha))
                }
                "softmax" | "logsoftmax" => {
                    f.ignore(&["axis"]);
                    LayerKind::Activation(if ty == "softmax" {
                        Activation::Softmax
                    } else {
                        Activation::LogSoftmax
                    })
                }
                "relu" | "sigmoid" | "tanh" | "gelu" | "selu" | "silu" | "swish" | "softplus"
                | "softsign" | "relu6" | "hardsigmoid" | "mish" | "identity" => {
                    f.ignore(&["max_value", "threshold", "beta"]);
                    // Every name in this arm is an activation name.
                    LayerKind::Activation(
                        Activation::from_name(&ty, fw).unwrap_or(Activation::Linear),
                    )
                }
                "simplernn" | "rnn" | "lstm" | "gru" => {
                    LayerKind::Recurrent(parse_recurrent(&mut f, &ty, conv)?)
                }
                "bidirectional" => {
                    if !allow_wrapper {
                        return Err(ComputeError::new(
                            &t.ptr,
                            "Bidirectional cannot wrap another Bidirectional",
                        ));
                    }
                    let inner_f = required(&mut f, &["layer", "forward_layer"])?;
                    let merge = match f.take(&["merge_mode"])? {
                        Some(x) => match x.choice(&["concat", "sum", "mul", "ave"])? {
                            0 => MergeMode::Concat,
                            _ => MergeMode::Elementwise,
                        },
                        None => MergeMode::Concat,
                    };
                    let inner = Layer::parse(inner_f.value, &inner_f.ptr, conv, false)?;
                    f.taken.extend(inner.field_pointers);
                    match inner.kind {
                        LayerKind::Recurrent(mut r) => {
                            if r.bidirectional {
                                return Err(ComputeError::new(
                                    &inner_f.ptr,
                                    "the wrapped layer is already bidirectional",
                                ));
                            }
                            r.bidirectional = true;
                            r.merge_mode = merge;
                            LayerKind::Recurrent(r)
                        }
                        _ => {
                            return Err(ComputeError::new(
                                &inner_f.ptr,
                                "Bidirectional wraps a SimpleRNN, LSTM or GRU layer",
                            ));
                        }
                    }
                }
                _ => {
                    let hint = suggest(&ty, LAYER_TYPES)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(ComputeError::new(
                        &t.ptr,
                        format!("unknown layer type `{type_raw}`{hint}"),
                    ));
                }
            }
        };
        let field_pointers = std::mem::take(&mut f.taken);
        f.finish(true)?;
        Ok(Layer {
            pointer: ptr.to_string(),
            name,
            trainable,
            kind,
            field_pointers,
        })
    }
}

const LAYER_TYPES: &[&str] = &[
    "Dense",
    "Linear",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "Flatten",
    "Dropout",
    "SpatialDropout2D",
    "BatchNormalization",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LayerNormalization",
    "LayerNorm",
    "Embedding",
    "Activation",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SimpleRNN",
    "RNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "ZeroPadding2D",
    "ZeroPad2d",
    "UpSampling2D",
    "Upsample",
];

/// `1d`, `2d`, `3d` -> the rank.
fn rank_suffix(rest: &str) -> Option<usize> {
    match rest {
        "1d" => Some(1),
        "2d" => Some(2),
        "3d" => Some(3),
        _ => None,
    }
}

fn conv_kind(ty: &str) -> Option<(ConvKind, usize)> {
    let table: &[(&str, ConvKind)] = &[
        ("convolution", ConvKind::Standard),
        ("conv", ConvKind::Standard),
        ("depthwiseconv", ConvKind::Depthwise),
        ("separableconvolution", ConvKind::Separable),
        ("separableconv", ConvKind::Separable),
    ];
    for (prefix, kind) in table {
        if let Some(rest) = ty.strip_prefix(prefix) {
            if let Some(r) = rank_suffix(rest) {
                return Some((*kind, r));
            }
            if *kind == ConvKind::Standard
                && let Some(r) = rest.strip_suffix("transpose").and_then(rank_suffix)
            {
                return Some((ConvKind::Transposed, r));
            }
        }
    }
    ty.strip_prefix("convtranspose")
        .or_else(|| ty.strip_prefix("deconvolution"))
        .and_then(rank_suffix)
        .map(|r| (ConvKind::Transposed, r))
}

fn pool_kind(ty: &str, max: &[&str], avg: &[&str]) -> Option<(PoolOp, usize)> {
    for (names, op) in [(max, PoolOp::Max), (avg, PoolOp::Avg)] {
        for n in names {
            if let Some(r) = ty.strip_prefix(n).and_then(rank_suffix) {
                return Some((op, r));
            }
        }
    }
    None
}

fn parse_conv(f: &mut Fields, kind: ConvKind, rank: usize) -> ComputeResult<Conv> {
    let depthwise = kind == ConvKind::Depthwise;
    let filters = if depthwise {
        // PyTorch-style depthwise: out_channels must be in_channels * multiplier; checked later.
        opt_pos(f, &["out_channels"])?
    } else {
        Some(required(f, &["filters", "out_channels"])?.pos()?)
    };
    let kernel = required(f, &["kernel_size"])?.ints(rank, 1)?;
    let strides = match f.take(&["strides", "stride", "subsample"])? {
        Some(x) => x.ints(rank, 1)?,
        None => vec![1; rank],
    };
    let padding_f = f.take(&["padding", "border_mode"])?;
    let dilation = match f.take(&["dilation_rate", "dilation"])? {
        Some(x) => x.ints(rank, 1)?,
        None => vec![1; rank],
    };
    let padding = match padding_f {
        // Keras Conv1D padding="causal": d*(k-1) zeros on the left only.
        Some(x)
            if x.value.as_str().is_some_and(|s| norm(s) == "causal")
                && kind != ConvKind::Transposed =>
        {
            Padding::Explicit(
                kernel
                    .iter()
                    .zip(&dilation)
                    .map(|(k, d)| (d.saturating_mul(k.saturating_sub(1)), 0))
                    .collect(),
            )
        }
        Some(x) => x.padding(rank)?,
        None => Padding::Valid,
    };
    let groups = opt_pos(f, &["groups"])?.unwrap_or(1);
    let depth_multiplier = if matches!(kind, ConvKind::Depthwise | ConvKind::Separable) {
        opt_pos(f, &["depth_multiplier"])?.unwrap_or(1)
    } else {
        1
    };
    let output_padding = if kind == ConvKind::Transposed {
        match f.take(&["output_padding"])? {
            Some(x) if x.value.is_null() => None,
            Some(x) => Some(x.ints(rank, 0)?),
            None => None,
        }
    } else {
        None
    };
    let use_bias = opt_bool(f, &["use_bias", "bias"], true)?;
    let in_channels = opt_pos(f, &["in_channels"])?;
    let activation = opt_activation(f, f.framework)?;
    Ok(Conv {
        kind,
        rank,
        filters,
        kernel,
        strides,
        padding,
        dilation,
        groups,
        depth_multiplier,
        output_padding,
        use_bias,
        in_channels,
        activation,
    })
}

fn parse_pool(f: &mut Fields, op: PoolOp, rank: usize) -> ComputeResult<Pool> {
    let kernel = required(f, &["pool_size", "kernel_size"])?.ints(rank, 1)?;
    let strides = match f.take(&["strides", "stride"])? {
        Some(x) if x.value.is_null() => None,
        Some(x) => Some(x.ints(rank, 1)?),
        None => None,
    };
    let padding = match f.take(&["padding"])? {
        Some(x) => x.padding(rank)?,
        None => Padding::Valid,
    };
    let dilation = match f.take(&["dilation"])? {
        Some(x) => x.ints(rank, 1)?,
        None => vec![1; rank],
    };
    let ceil_mode = opt_bool(f, &["ceil_mode"], false)?;
    let count_include_pad = opt_bool(f, &["count_include_pad"], true)?;
    Ok(Pool {
        op,
        rank,
        kernel,
        strides,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    })
}

fn parse_recurrent(f: &mut Fields, ty: &str, conv: &Conventions) -> ComputeResult<Recurrent> {
    let cell = match ty {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        _ => Cell::Rnn,
    };
    let units = required(f, &["units", "hidden_size"])?.pos()?;
    let use_bias = opt_bool(f, &["use_bias", "bias"], true)?;
    let return_sequences = opt_bool(f, &["return_sequences"], conv.return_sequences)?;
    let bidirectional = opt_bool(f, &["bidirectional"], false)?;
    let num_layers = opt_pos(f, &["num_layers"])?.unwrap_or(1);
    let input_size = opt_pos(f, &["input_size"])?;
    let reset_after = if cell == Cell::Gru {
        opt_bool(f, &["reset_after"], conv.gru_reset_after)?
    } else {
        false
    };
    f.ignore(&["activation"]);
    let bias_vectors = match conv.recurrent_bias {
        RecurrentBias::Double => 2,
        RecurrentBias::Single if reset_after => 2,
        RecurrentBias::Single => 1,
    };
    Ok(Recurrent {
        cell,
        units,
        use_bias,
        return_sequences,
        bidirectional,
        merge_mode: MergeMode::Concat,
        num_layers,
        bias_vectors,
        reset_after,
        input_size,
    })
}

fn required<'a>(f: &mut Fields<'a>, names: &[&'static str]) -> ComputeResult<Field<'a>> {
    let what = f.what.clone();
    if let Some(found) = f.take(names)? {
        return Ok(found);
    }
    // A misspelt required field is reported as the unknown field it is.
    for (i, (_, k, _)) in f.entries.iter().enumerate() {
        if !f.used[i]
            && let Some(s) = suggest(k, names)
        {
            return Err(ComputeError::new(
                format!("{}/{}", f.ptr, escape_pointer_token(k)),
                format!("unknown field `{k}` for {what}; did you mean `{s}`?"),
            ));
        }
    }
    None.ok_or_else(|| {
        ComputeError::new(
            format!("{}/{}", f.ptr, names.first().copied().unwrap_or("")),
            format!("`{}` is required for {what}", names.join("` or `")),
        )
    })
}

fn opt_bool(f: &mut Fields, names: &[&'static str], default: bool) -> ComputeResult<bool> {
    match f.take(names)? {
        Some(x) => x.boolean(),
        None => Ok(default),
    }
}

fn opt_pos(f: &mut Fields, names: &[&'static str]) -> ComputeResult<Option<u64>> {
    match f.take(names)? {
        Some(x) if x.value.is_null() => Ok(None),
        Some(x) => Ok(Some(x.pos()?)),
        None => Ok(None),
    }
}

fn opt_activation(f: &mut Fields, fw: Framework) -> ComputeResult<Option<Activation>> {
    match f.take(&["activation"])? {
        Some(x) if x.value.is_null() => Ok(None),
        Some(x) => Ok(Some(x.activation(fw)?)),
        None => Ok(None),
    }
}

/// Whether `normalized` equals `norm(name)`, without allocating (`name` is
/// one of dlgrade's ASCII field names).
fn eq_norm(normalized: &str, name: &str) -> bool {
    let mut a = normalized.bytes();
    let mut b = name
        .bytes()
        .filter(|c| *c != b'_' && *c != b'-')
        .map(|c| c.to_ascii_lowercase());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

/// Lower-cases and removes `_` and `-`: the key used to match names.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// RFC 6901 escaping of one reference token.
pub fn escape_pointer_token(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) {
        std::borrow::Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

/// `base` + "/" + the escaped `key`.
fn child_pointer(base: &str, key: &str) -> String {
    let esc = escape_pointer_token(key);
    let mut p = String::with_capacity(base.len() + 1 + esc.len());
    p.push_str(base);
    p.push('/');
    p.push_str(&esc);
    p
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `word` (compared normalized), if close enough.
fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let w = norm(word);
    if w.chars().count() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(&w, &norm(c));
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.filter(|(d, c)| *d <= 2.max(norm(c).len() / 3))
        .map(|(_, c)| c)
}

/// The fields of one JSON object, consumed by name (normalized), so that the
/// leftovers can be reported as unknown.
struct Fields<'a> {
    ptr: String,
    what: String,
    framework: Framework,
    entries: Vec<(String, &'a str, &'a Value)>,
    used: Vec<bool>,
    known: Vec<&'static str>,
    taken: Vec<(&'static str, String)>,
}

/// One field found in an object.
#[derive(Clone)]
struct Field<'a> {
    value: &'a Value,
    ptr: String,
    key: &'a str,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, ptr: &str, what: &str) -> ComputeResult<Self> {
        let mut entries: Vec<(String, &'a str, &'a Value)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let n = norm(k);
            if let Some((_, other, _)) = entries.iter().find(|(m, _, _)| *m == n) {
                return Err(ComputeError::new(
                    format!("{ptr}/{}", escape_pointer_token(k)),
                    format!("field `{k}` duplicates `{other}`"),
                ));
            }
            entries.push((n, k.as_str(), v));
        }
        let used = vec![false; entries.len()];
        Ok(Self {
            ptr: ptr.to_string(),
            what: what.to_string(),
            framework: Framework::PyTorch,
            entries,
            used,
            known: Vec::with_capacity(32),
            taken: Vec::with_capacity(8),
        })
    }

    fn was_given(&self, name: &str) -> bool {
        self.entries.iter().any(|(m, _, _)| eq_norm(m, name))
    }

    /// The value of the first of `names` present (any spelling); an error if
    /// two of them are present.
    fn take(&mut self, names: &[&'static str]) -> ComputeResult<Option<Field<'a>>> {
        self.known.extend_from_slice(names);
        let mut found: Option<usize> = None;
        for name in names {
            for (i, (m, k, _)) in self.entries.iter().enumerate() {
                if eq_norm(m, name) {
                    if let Some(j) = found
                        && j != i
                    {
                        return Err(ComputeError::new(
                            format!("{}/{}", self.ptr, escape_pointer_token(k)),
                            format!(
                                "`{k}` and `{}` mean the same thing; give only one",
                                self.entries[j].1
                            ),
                        ));
                    }
                    found = Some(i);
                }
            }
        }
        Ok(found.map(|i| {
            self.used[i] = true;
            let (_, k, v) = self.entries[i];
            let ptr = child_pointer(&self.ptr, k);
            if let Some(canonical) = names.first() {
                self.taken.push((canonical, ptr.clone()));
            }
            Field {
                value: v,
                ptr,
                key: k,
            }
        }))
    }

    /// Marks `names` as accepted without effect.
    fn ignore(&mut self, names: &[&'static str]) {
        for (i, (m, _, _)) in self.entries.iter().enumerate() {
            if !self.used[i] && names.iter().any(|name| eq_norm(m, name)) {
                self.used[i] = true;
            }
        }
    }

    /// Errors on the first field nobody asked for.
    fn finish(mut self, allow_ignored: bool) -> ComputeResult<()> {
        if allow_ignored {
            self.ignore(IGNORED_FIELDS);
        }
        for (i, (n, k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            if allow_ignored
                && (n.ends_with("initializer")
                    || n.ends_with("regularizer")
                    || n.ends_with("constraint"))
            {
                continue;
            }
            let hint = suggest(k, &self.known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(ComputeError::new(
                format!("{}/{}", self.ptr, escape_pointer_token(k)),
                format!("unknown field `{k}` for {}{hint}", self.what),
            ));
        }
        Ok(())
    }
}

impl<'a> Field<'a> {
    fn err(&self, msg: impl Into<String>) -> ComputeError {
        ComputeError::new(&self.ptr, msg)
    }

    fn placeholder_check(&self, v: &Value) -> ComputeResult<()> {
        if v.as_str() == Some("?") {
            return Err(self.err(format!(
                "`{}` is the unknown `?`: use POST /v1/architecture/solve to find it",
                self.key
            )));
        }
        Ok(())
    }

    fn uint_of(&self, v: &Value) -> ComputeResult<u64> {
        self.placeholder_check(v)?;
        let n = if let Some(n) = v.as_u64() {
            n
        } else if let Some(x) = v.as_f64() {
            if x < 0.0 {
                return Err(self.err(format!("`{}` must not be negative (got {x})", self.key)));
            }
            if x.fract() != 0.0 || x > MAX_HYPERPARAMETER as f64 {
                return Err(self.err(format!("`{}` must be a whole number (got {x})", self.key)));
            }
            x as u64
        } else {
            return Err(self.err(format!("`{}` must be a whole number", self.key)));
        };
        if n > MAX_HYPERPARAMETER {
            return Err(self.err(format!(
                "`{}` = {n} exceeds the largest accepted value {MAX_HYPERPARAMETER}",
                self.key
            )));
        }
        Ok(n)
    }

    fn uint(&self) -> ComputeResult<u64> {
        self.uint_of(self.value)
    }

    fn pos(&self) -> ComputeResult<u64> {
        let n = self.uint()?;
        if n == 0 {
            return Err(self.err(format!("`{}` must be at least 1", self.key)));
        }
        Ok(n)
    }

    fn int(&self) -> ComputeResult<i64> {
        self.placeholder_check(self.value)?;
        match self.value.as_i64() {
            Some(n) if n.unsigned_abs() <= MAX_HYPERPARAMETER => Ok(n),
            _ => Err(self.err(format!("`{}` must be an integer", self.key))),
        }
    }

    fn int_list(&self) -> ComputeResult<Vec<i64>> {
        match self.value.as_array() {
            Some(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v.as_i64() {
                    Some(n) if n.unsigned_abs() <= MAX_HYPERPARAMETER => Ok(n),
                    _ => Err(ComputeError::new(
                        format!("{}/{i}", self.ptr),
                        "must be an integer",
                    )),
                })
                .collect(),
            None => Ok(vec![self.int()?]),
        }
    }

    fn float(&self) -> ComputeResult<f64> {
        self.value
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(format!("`{}` must be a number", self.key)))
    }

    fn prob(&self) -> ComputeResult<f64> {
        let p = self.float()?;
        if !(0.0..=1.0).contains(&p) {
            return Err(self.err(format!("`{}` must be in [0, 1] (got {p})", self.key)));
        }
        Ok(p)
    }

    fn boolean(&self) -> ComputeResult<bool> {
        self.placeholder_check(self.value)?;
        self.value
            .as_bool()
            .ok_or_else(|| self.err(format!("`{}` must be true or false", self.key)))
    }

    fn string(&self) -> ComputeResult<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| self.err(format!("`{}` must be a string", self.key)))
    }

    /// Index of the (normalized) choice.
    fn choice(&self, options: &[&str]) -> ComputeResult<usize> {
        let s = self.string()?;
        let n = norm(s);
        options.iter().position(|o| norm(o) == n).ok_or_else(|| {
            self.err(format!(
                "`{}` must be one of {} (got \"{s}\")",
                self.key,
                options
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn activation(&self, fw: Framework) -> ComputeResult<Activation> {
        let s = self.string()?;
        Activation::from_name(s, fw).ok_or_else(|| {
            let hint = suggest(s, ACTIVATION_NAMES)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            self.err(format!("unknown activation `{s}`{hint}"))
        })
    }

    /// A shape: list of positive integers.
    fn dims(&self) -> ComputeResult<Vec<u64>> {
        let a = self.value.as_array().ok_or_else(|| {
            self.err(format!(
                "`{}` must be a list of positive integers",
                self.key
            ))
        })?;
        if a.is_empty() {
            return Err(self.err(format!("`{}` must not be empty", self.key)));
        }
        a.iter()
            .enumerate()
            .map(|(i, v)| {
                let sub = Field {
                    value: v,
                    ptr: format!("{}/{i}", self.ptr),
                    key: self.key,
                };
                sub.pos()
            })
            .collect()
    }

    /// An int (broadcast to `rank` axes) or a list of `rank` ints, each >= `min`.
    fn ints(&self, rank: usize, min: u64) -> ComputeResult<Vec<u64>> {
        let check = |f: &Field, n: u64| -> ComputeResult<u64> {
            if n < min {
                Err(f.err(format!("`{}` must be at least {min}", self.key)))
            } else {
                Ok(n)
            }
        };
        if let Some(a) = self.value.as_array() {
            if a.len() != rank {
                return Err(self.err(format!(
                    "`{}` needs {rank} value(s), one per spatial axis (got {})",
                    self.key,
                    a.len()
                )));
            }
            a.iter()
                .enumerate()
                .map(|(i, v)| {
                    let sub = Field {
                        value: v,
                        ptr: format!("{}/{i}", self.ptr),
                        key: self.key,
                    };
                    let n = sub.uint()?;
                    check(&sub, n)
                })
                .collect()
        } else {
            let n = self.uint()?;
            Ok(vec![check(self, n)?; rank])
        }
    }

    /// Like [`Field::ints`] but entries may be `null` (keep the input size).
    fn opt_ints(&self, rank: usize) -> ComputeResult<Vec<Option<u64>>> {
        if let Some(a) = self.value.as_array() {
            if a.len() != rank {
                return Err(self.err(format!(
                    "`{}` needs {rank} value(s), one per spatial axis (got {})",
                    self.key,
                    a.len()
                )));
            }
            a.iter()
                .enumerate()
                .map(|(i, v)| {
                    if v.is_null() {
                        return Ok(None);
                    }
                    let sub = Field {
                        value: v,
                        ptr: format!("{}/{i}", self.ptr),
                        key: self.key,
                    };
                    sub.pos().map(Some)
                })
                .collect()
        } else {
            Ok(vec![Some(self.pos()?); rank])
        }
    }

    /// `"same"`, `"valid"`, an int, a list of ints (symmetric per axis) or a
    /// list of `[before, after]` pairs.
    fn padding(&self, rank: usize) -> ComputeResult<Padding> {
        if self.value.is_string() {
            self.placeholder_check(self.value)?;
            return match self.choice(&["same", "valid"])? {
                0 => Ok(Padding::Same),
                _ => Ok(Padding::Valid),
            };
        } else if let Some(a) = self.value.as_array()
            && a.iter().any(Value::is_array)
        {
            if a.len() != rank {
                return Err(self.err(format!(
                    "`{}` needs {rank} [before, after] pair(s) (got {})",
                    self.key,
                    a.len()
                )));
            }
            let mut out = Vec::with_capacity(rank);
            for (i, v) in a.iter().enumerate() {
                let sub = Field {
                    value: v,
                    ptr: format!("{}/{i}", self.ptr),
                    key: self.key,
                };
                let pair = sub.ints(2, 0)?;
                out.push((pair[0], pair[1]));
            }
            return Ok(Padding::Explicit(out));
        }
        let p = self.ints(rank, 0)?;
        Ok(Padding::Explicit(p.into_iter().map(|x| (x, x)).collect()))
    }
}
