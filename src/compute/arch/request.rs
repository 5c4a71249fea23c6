//! Request types for the OpenAPI documentation of POST /v1/architecture and
//! POST /v1/architecture/solve, in the canonical snake_case spelling.
//!
//! The endpoints parse the body by hand ([`ModelSpec::from_json`](crate::compute::model::ModelSpec::from_json))
//! so that PyTorch spellings (`out_channels`, `stride`, `dilation`,
//! `hidden_size`, `in_features`, `p`, ...) and any letter case are accepted
//! too; these structs describe the canonical form and deserialize it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of POST /v1/architecture: a sequential model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchitectureRequest {
    /// Input shape without the batch axis, e.g. `[3, 224, 224]` (CHW) or `[224, 224, 3]` (HWC).
    pub input_shape: Vec<u64>,
    /// `CHW` (default; also `CL`, `CDHW`, `channels_first`) or `HWC` (`LC`, `DHWC`, `channels_last`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// The layers, applied in order.
    pub layers: Vec<LayerRequest>,
    /// Counting conventions; all optional (defaults follow `framework`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conventions: Option<ConventionsRequest>,
}

/// An int applied to every spatial axis, or one int per axis.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IntOrList {
    /// Same value on every axis.
    Int(u64),
    /// One value per spatial axis.
    List(Vec<u64>),
}

/// Padding: `"same"`, `"valid"`, `"causal"` (convolutions: `d(k-1)` zeros before),
/// an int, one int per axis, or `[before, after]` per axis.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PaddingRequest {
    /// `"same"`, `"valid"` or `"causal"`.
    Mode(String),
    /// Symmetric padding on every axis.
    Int(u64),
    /// Symmetric padding per axis.
    List(Vec<u64>),
    /// `[before, after]` per axis.
    Pairs(Vec<[u64; 2]>),
}

/// One layer. Only the fields of its `type` are allowed (an unknown field is an error).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerRequest {
    /// Layer type, case-insensitive, Keras or PyTorch name: Dense/Linear, Conv1D-3D
    /// (Conv2d), Conv2DTranspose (ConvTranspose2d), DepthwiseConv2D, SeparableConv2D,
    /// MaxPooling2D (MaxPool2d), AveragePooling2D (AvgPool2d), GlobalAveragePooling2D,
    /// GlobalMaxPooling2D, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Flatten, Dropout,
    /// BatchNormalization (BatchNorm2d), LayerNormalization (LayerNorm), Embedding,
    /// Activation, ReLU, Sigmoid, Tanh, Softmax, LeakyReLU, ELU, GELU, SimpleRNN (RNN),
    /// LSTM, GRU, Bidirectional, ZeroPadding2D (ZeroPad2d), UpSampling2D (Upsample).
    #[serde(rename = "type")]
    pub layer_type: String,
    /// Optional name echoed in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `false` makes every parameter non-trainable (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable: Option<bool>,
    /// Dense: output features (`out_features`). Recurrent: hidden size (`hidden_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Bias present (`bias`; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_bias: Option<bool>,
    /// Fused activation of Dense/Conv, or the function of an `Activation` layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    /// Dense: declared input features, checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<u64>,
    /// Convolution: output channels (`out_channels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<u64>,
    /// Convolution kernel size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_size: Option<IntOrList>,
    /// Stride (`stride`; convolutions default 1, pooling default the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<IntOrList>,
    /// Padding (default `"valid"`). ZeroPadding: pixels per axis or `[before, after]`
    /// pairs (PyTorch `ZeroPad2d`: `(left, right, top, bottom)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<PaddingRequest>,
    /// Convolution dilation (`dilation`; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation_rate: Option<IntOrList>,
    /// PyTorch max-pooling dilation (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<IntOrList>,
    /// Convolution groups (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u64>,
    /// Depthwise/separable: filters per input channel (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_multiplier: Option<u64>,
    /// Transposed convolution: extra output size (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_padding: Option<IntOrList>,
    /// Convolution: declared input channels, checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<u64>,
    /// Pooling window (`kernel_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<IntOrList>,
    /// PyTorch pooling `ceil_mode` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceil_mode: Option<bool>,
    /// PyTorch average pooling `count_include_pad` (default true; values only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_include_pad: Option<bool>,
    /// Adaptive pooling output size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_size: Option<IntOrList>,
    /// Global pooling: keep the pooled axes as size 1 (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepdims: Option<bool>,
    /// Flatten: first axis, counted with the batch axis (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_dim: Option<i64>,
    /// Flatten: last axis, counted with the batch axis (default -1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_dim: Option<i64>,
    /// Dropout probability (`p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// BatchNorm: declared features, checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_features: Option<u64>,
    /// Keras axis (counted with the batch axis): BatchNorm feature axis, LayerNorm axes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub axis: Option<Value>,
    /// Norm layers: learnable gamma (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<bool>,
    /// Norm layers: learnable beta (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<bool>,
    /// BatchNorm: keep running statistics (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_running_stats: Option<bool>,
    /// LayerNorm: PyTorch normalized trailing shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_shape: Option<Vec<u64>>,
    /// Embedding: vocabulary size (`num_embeddings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dim: Option<u64>,
    /// Embedding: vector size (`embedding_dim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dim: Option<u64>,
    /// LeakyReLU slope (`alpha`; default 0.3 Keras, 0.01 PyTorch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_slope: Option<f64>,
    /// Recurrent: return every step (default: PyTorch true, Keras false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_sequences: Option<bool>,
    /// GRU: Keras `reset_after` (default from conventions, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after: Option<bool>,
    /// Recurrent: stacked layers (PyTorch; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_layers: Option<u64>,
    /// Recurrent: two directions (PyTorch flag; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidirectional: Option<bool>,
    /// Recurrent: declared input features, checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<u64>,
    /// UpSampling: integer factor per axis (Keras `size`; PyTorch `scale_factor`).
    /// PyTorch `Upsample` reads `size` as the output size instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<IntOrList>,
    /// PyTorch `Upsample`: integer factor per axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_factor: Option<IntOrList>,
    /// Bidirectional: the wrapped recurrent layer (a layer object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub layer: Option<Value>,
    /// Bidirectional: `concat` (default), `sum`, `mul` or `ave`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_mode: Option<String>,
}

/// Counting conventions; every one is echoed in the answer with its value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConventionsRequest {
    /// `pytorch` (default) or `keras`; sets the defaults below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// `double` (b_ih + b_hh, PyTorch default) or `single` (Keras default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_bias: Option<String>,
    /// Default Keras GRU `reset_after` (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gru_reset_after: Option<bool>,
    /// Count batch-norm running mean/variance as non-trainable (Keras true, PyTorch false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_bn_running_stats: Option<bool>,
    /// Convolution `padding="same"`: `pytorch` (stride 1 only) or `keras` (out = ceil(n/s)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_padding: Option<String>,
    /// Pooling stride when none is given: `kernel` (default) or `one`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_stride_default: Option<String>,
    /// `last_window_starts_inside` (PyTorch, default) or `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceil_mode_rule: Option<String>,
    /// `stride_or_dilation` (PyTorch) or `stride` (Keras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_padding_rule: Option<String>,
    /// `pixel_index` (default: first pixel centre at 0) or `pixel_edge` (at 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receptive_field_origin: Option<String>,
    /// Count bias adds in mult_adds (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mult_adds_include_bias: Option<bool>,
    /// Dense on rank > 1: `last_axis` (default) or `require_flat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_input: Option<String>,
    /// Default `return_sequences` of recurrent layers (PyTorch true, Keras false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_sequences: Option<bool>,
}

/// Body of POST /v1/architecture/solve.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SolveRequest {
    /// The model; the unknown field may be written as the string `"?"`.
    pub model: ArchitectureRequest,
    /// The unknown, if not marked with `"?"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<UnknownRequest>,
    /// What the model must reach.
    pub target: TargetRequest,
    /// Integer range searched (default 1..=4096; 0..=4096 for padding fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchRange>,
}

/// Which layer field is unknown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnknownRequest {
    /// Layer index.
    pub layer: usize,
    /// Field name in any accepted spelling (`units`, `hidden_size`, `filters`, `kernel_size`, `padding`, `strides`, ...).
    pub field: String,
}

/// The target: exactly one of `params`, `trainable`, `output_shape`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    /// Restrict the target to one layer (default: the whole network / its output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Total parameter count to reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
    /// Trainable parameter count to reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable: Option<u64>,
    /// Output shape to reach (batch axis excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_shape: Option<Vec<u64>>,
}

/// Inclusive integer search range.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRange {
    /// Smallest candidate.
    pub min: u64,
    /// Largest candidate.
    pub max: u64,
}
