//! Architecture arithmetic: output shapes, parameter counts (trainable and
//! not), weight shapes in PyTorch / Keras / (in, out) order, receptive
//! fields, multiply-adds and memory of a sequential model, each with worked
//! steps; and the inverse questions ([`solve()`]).
//!
//! The model is a [`crate::compute::model::ModelSpec`] read from
//! the request body; every convention that decides a number is echoed in the
//! answer (see [`ConventionUsed`]).
//!
//! Definitions used for the totals:
//! * `mult_adds`: multiply-accumulate operations of one forward pass of one
//!   sample: Dense `out_elements * in_features`, convolution
//!   `out_elements * (in_channels/groups) * prod(kernel)`, transposed
//!   convolution `in_positions * weight_count`, recurrent layers
//!   `T * directions * gates * h * (in + h)` per stacked layer. Pooling,
//!   normalization, activations and embeddings count 0. With
//!   `conventions.mult_adds_include_bias` one add per biased output is added.
//! * `torchinfo_mult_adds`: torchinfo's "Total mult-adds" for batch 1 (its
//!   rule: PyTorch parameters, bias included, times output positions for
//!   convolutions including transposed ones, times timesteps for recurrent
//!   layers, times 1 for every other layer with parameters).
//! * `activation_elements`: sum of the output elements of every layer (input
//!   excluded); `forward_activation_bytes` = 4 bytes (f32) each.
//! * `activation_bytes`: torchinfo's "Forward/backward pass size" for batch 1:
//!   2 * 4 bytes per output element of every layer that has parameters.
//! * `param_bytes`: 4 bytes (f32) per counted parameter, trainable or not.

mod layers;
pub mod receptive;
pub mod request;
pub mod solve;
#[cfg(test)]
mod tests;
pub mod window;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::limits::Limits;
use crate::compute::model::{
    CeilModeRule, DenseInput, Framework, Layout, ModelSpec, OutputPaddingRule, PoolStrideDefault,
    ReceptiveFieldOrigin, RecurrentBias, SamePadding,
};
use crate::compute::steps::Step;

pub use receptive::ReceptiveField;
pub use request::{ArchitectureRequest, SolveRequest};
pub use solve::{SolveReport, solve};

/// Parameter count of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParamCount {
    /// Trainable + non-trainable.
    pub total: u64,
    /// Parameters updated by the optimizer.
    pub trainable: u64,
    /// Counted but not trained (Keras batch-norm moving statistics, frozen layers).
    pub non_trainable: u64,
    /// The count as an exam writes it, e.g. `(11*11*3 + 1) * 96 = 34944`.
    pub formula: String,
}

/// One weight tensor of a layer with its shape in three conventions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WeightShape {
    /// Name in the selected framework (`weight`, `kernel`, `weight_ih_l0`, `moving_mean`, ...).
    pub name: String,
    /// Number of elements.
    pub count: u64,
    /// Whether the optimizer updates it.
    pub trainable: bool,
    /// Whether it is included in the parameter count under the conventions used.
    pub counted: bool,
    /// Batch-norm running statistic (a PyTorch buffer, Keras non-trainable weight).
    pub running_stat: bool,
    /// PyTorch shape, e.g. `(out, in/groups, kH, kW)`, `(out_features, in_features)`.
    pub pytorch: Vec<u64>,
    /// Keras shape, e.g. `(kH, kW, in/groups, out)`, `(in, units)`.
    pub keras: Vec<u64>,
    /// `(in, out, kH, kW)` order used by some exam keys.
    pub in_out: Vec<u64>,
}

/// The analysis of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LayerReport {
    /// Position in `layers` (0-based).
    pub index: usize,
    /// Canonical type, e.g. `Conv2D`, `MaxPool2D`, `Bidirectional(LSTM)`.
    #[serde(rename = "type")]
    pub layer_type: String,
    /// The layer's `name`, if given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Input shape (batch axis excluded).
    pub input_shape: Vec<u64>,
    /// Output shape (batch axis excluded).
    pub output_shape: Vec<u64>,
    /// Parameter count.
    pub params: ParamCount,
    /// Weight tensors.
    pub weights: Vec<WeightShape>,
    /// Receptive field of one output unit in the network input (absent when
    /// the input has no spatial axes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receptive_field: Option<ReceptiveField>,
    /// Multiply-adds of this layer for one sample.
    pub mult_adds: u64,
    /// Elements of the output tensor.
    pub output_elements: u64,
    /// Worked steps.
    pub steps: Vec<Step>,
}

/// Whole-network totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Totals {
    /// All counted parameters.
    pub params: u64,
    /// Trainable parameters.
    pub trainable: u64,
    /// Non-trainable parameters.
    pub non_trainable: u64,
    /// Multiply-adds of one forward pass of one sample.
    pub mult_adds: u64,
    /// torchinfo's "Total mult-adds" (batch 1): for every layer with
    /// parameters, its PyTorch parameter count times the output positions
    /// (convolutions), the timesteps (recurrent layers) or 1 (others); bias
    /// included.
    pub torchinfo_mult_adds: u64,
    /// Sum of every layer's output elements.
    pub activation_elements: u64,
    /// `4 * activation_elements`: f32 forward activations of one sample.
    pub forward_activation_bytes: u64,
    /// torchinfo's "Forward/backward pass size" (batch 1, f32): 2 * 4 bytes
    /// per output element of every layer that has parameters.
    pub activation_bytes: u64,
    /// `4 * params` (f32).
    pub param_bytes: u64,
}

/// One convention the answer depends on, with the value used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConventionUsed {
    /// Name as accepted in `conventions`.
    pub name: String,
    /// Value used.
    pub value: String,
    /// `request` if the request set it, else `default`.
    pub source: String,
    /// What it means.
    pub meaning: String,
}

/// The answer of POST /v1/architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArchitectureReport {
    /// Input shape (batch axis excluded).
    pub input_shape: Vec<u64>,
    /// Layout used: `CHW` (channels first) or `HWC` (channels last).
    pub layout: String,
    /// Per-layer analysis.
    pub layers: Vec<LayerReport>,
    /// Shape of the last layer's output.
    pub output_shape: Vec<u64>,
    /// Totals.
    pub totals: Totals,
    /// Every convention used, with its value.
    pub conventions: Vec<ConventionUsed>,
    /// Network-level worked steps (totals).
    pub steps: Vec<Step>,
}

/// Analyses a model description (the body of POST /v1/architecture).
pub fn analyze(req: &Value, limits: &Limits) -> ComputeResult<ArchitectureReport> {
    let spec = ModelSpec::from_json(req)?;
    analyze_spec(&spec, limits)
}

/// Analyses an already parsed model.
pub fn analyze_spec(spec: &ModelSpec, limits: &Limits) -> ComputeResult<ArchitectureReport> {
    run(spec, limits, true)
}

pub(crate) fn run(
    spec: &ModelSpec,
    limits: &Limits,
    with_steps: bool,
) -> ComputeResult<ArchitectureReport> {
    if spec.layers.len() > limits.max_layers {
        return Err(ComputeError::new(
            "/layers",
            format!(
                "{} layers exceed the limit of {}",
                spec.layers.len(),
                limits.max_layers
            ),
        ));
    }
    for (i, d) in spec.input_shape.iter().enumerate() {
        if *d as u128 > limits.max_tensor_elements as u128 {
            return Err(ComputeError::new(
                format!("/input_shape/{i}"),
                format!(
                    "dimension {d} exceeds the limit of {}",
                    limits.max_tensor_elements
                ),
            ));
        }
    }
    let conv = &spec.conventions;
    let rank = spec.input_shape.len();
    let spatial: Vec<(usize, u64)> = if rank >= 2 {
        match spec.layout {
            Layout::ChannelsFirst => (1..rank).map(|a| (a, spec.input_shape[a])).collect(),
            Layout::ChannelsLast => (0..rank - 1).map(|a| (a, spec.input_shape[a])).collect(),
        }
    } else {
        Vec::new()
    };
    let origin = match conv.receptive_field_origin {
        ReceptiveFieldOrigin::PixelIndex => 0.0,
        ReceptiveFieldOrigin::PixelEdge => 0.5,
    };
    let mut rf = receptive::RfTracker::new(rank, &spatial, origin);
    let mut shape = spec.input_shape.clone();
    let mut reports = Vec::with_capacity(spec.layers.len());
    let mut totals = Totals {
        params: 0,
        trainable: 0,
        non_trainable: 0,
        mult_adds: 0,
        torchinfo_mult_adds: 0,
        activation_elements: 0,
        forward_activation_bytes: 0,
        activation_bytes: 0,
        param_bytes: 0,
    };
    let overflow = || ComputeError::new("", "a total overflows 64 bits");
    for (i, layer) in spec.layers.iter().enumerate() {
        let type_name = layer.kind.type_name();
        let ctx = layers::Ctx {
            conv,
            layout: spec.layout,
            limits,
            with_steps,
            what: format!("layer {i} ({type_name})"),
            ptr: &layer.pointer,
            layer,
        };
        let calc = layers::analyze_layer(&ctx, &layer.kind, layer.trainable, &shape)?;
        let mut steps = calc.steps;
        if with_steps {
            steps.extend(rf.window_steps(&calc.rf, &calc.axis_names));
        }
        rf.apply(&calc.rf, calc.output_shape.len());
        let output_elements = calc
            .output_shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(overflow)?;
        let total = calc
            .trainable
            .checked_add(calc.non_trainable)
            .ok_or_else(overflow)?;
        totals.params = totals.params.checked_add(total).ok_or_else(overflow)?;
        totals.trainable = totals
            .trainable
            .checked_add(calc.trainable)
            .ok_or_else(overflow)?;
        totals.non_trainable = totals
            .non_trainable
            .checked_add(calc.non_trainable)
            .ok_or_else(overflow)?;
        totals.mult_adds = totals
            .mult_adds
            .checked_add(calc.mult_adds)
            .ok_or_else(overflow)?;
        totals.activation_elements = totals
            .activation_elements
            .checked_add(output_elements)
            .ok_or_else(overflow)?;
        // torchinfo counts PyTorch parameters (not batch-norm buffers).
        let torch_params = calc
            .weights
            .iter()
            .filter(|w| !w.running_stat)
            .map(|w| w.count)
            .sum::<u64>();
        if torch_params > 0 {
            let macs = torch_params
                .checked_mul(calc.torchinfo_positions)
                .ok_or_else(overflow)?;
            totals.torchinfo_mult_adds = totals
                .torchinfo_mult_adds
                .checked_add(macs)
                .ok_or_else(overflow)?;
            let bytes = calc
                .torch_output_elements
                .unwrap_or(output_elements)
                .checked_mul(8)
                .ok_or_else(overflow)?;
            totals.activation_bytes = totals
                .activation_bytes
                .checked_add(bytes)
                .ok_or_else(overflow)?;
        }
        reports.push(LayerReport {
            index: i,
            layer_type: type_name,
            name: layer.name.clone(),
            input_shape: std::mem::take(&mut shape),
            output_shape: calc.output_shape.clone(),
            params: ParamCount {
                total,
                trainable: calc.trainable,
                non_trainable: calc.non_trainable,
                formula: calc.formula,
            },
            weights: calc.weights,
            receptive_field: (!rf.is_empty()).then(|| rf.report()),
            mult_adds: calc.mult_adds,
            output_elements,
            steps,
        });
        shape = calc.output_shape;
    }
    totals.forward_activation_bytes = totals
        .activation_elements
        .checked_mul(4)
        .ok_or_else(overflow)?;
    totals.param_bytes = totals.params.checked_mul(4).ok_or_else(overflow)?;
    let steps = if with_steps {
        total_steps(&reports, &totals)
    } else {
        Vec::new()
    };
    Ok(ArchitectureReport {
        input_shape: spec.input_shape.clone(),
        layout: spec.layout.name().to_string(),
        layers: reports,
        output_shape: shape,
        totals,
        conventions: conventions_used(conv),
        steps,
    })
}

fn total_steps(reports: &[LayerReport], t: &Totals) -> Vec<Step> {
    let nonzero: Vec<&LayerReport> = reports.iter().filter(|r| r.params.total > 0).collect();
    let terms: Vec<String> = nonzero.iter().map(|r| r.params.total.to_string()).collect();
    let sum = if terms.is_empty() {
        "0".to_string()
    } else {
        terms.join(" + ")
    };
    let mut steps = vec![Step::new(
        format!("total params = {sum} = {}", t.params),
        format!("{} = {}", sum, t.params),
    )];
    if t.non_trainable > 0 {
        steps.push(Step::new(
            format!(
                "trainable = {}, non-trainable = {} (total {})",
                t.trainable, t.non_trainable, t.params
            ),
            format!("{} + {} = {}", t.trainable, t.non_trainable, t.params),
        ));
    }
    steps.push(Step::new(
        format!(
            "memory (f32): params {} * 4 B = {} B; forward activations {} * 4 B = {} B; \
             torchinfo forward/backward pass size {} B",
            t.params,
            t.param_bytes,
            t.activation_elements,
            t.forward_activation_bytes,
            t.activation_bytes
        ),
        format!(
            "{} \\cdot 4 = {}\\,\\mathrm{{B}},\\; {} \\cdot 4 = {}\\,\\mathrm{{B}}",
            t.params, t.param_bytes, t.activation_elements, t.forward_activation_bytes
        ),
    ));
    steps
}

/// The conventions as echoed in answers.
pub fn conventions_used(c: &crate::compute::model::Conventions) -> Vec<ConventionUsed> {
    let src = |n: &str| {
        if c.given.contains(&n) {
            "request".to_string()
        } else {
            "default".to_string()
        }
    };
    let item = |name: &str, value: &str, meaning: &str| ConventionUsed {
        name: name.to_string(),
        value: value.to_string(),
        source: src(name),
        meaning: meaning.to_string(),
    };
    vec![
        item(
            "framework",
            match c.framework {
                Framework::PyTorch => "pytorch",
                Framework::Keras => "keras",
            },
            "framework whose counting rules and weight names are used",
        ),
        item(
            "recurrent_bias",
            match c.recurrent_bias {
                RecurrentBias::Double => "double",
                RecurrentBias::Single => "single",
            },
            "bias vectors per recurrent gate block: double = b_ih + b_hh (PyTorch), single = one (Keras)",
        ),
        item(
            "gru_reset_after",
            if c.gru_reset_after { "true" } else { "false" },
            "Keras GRU reset_after default (true adds a second bias vector)",
        ),
        item(
            "count_bn_running_stats",
            if c.count_bn_running_stats {
                "true"
            } else {
                "false"
            },
            "batch-norm moving mean/variance counted as non-trainable parameters (Keras) or not (PyTorch buffers)",
        ),
        item(
            "same_padding",
            match c.same_padding {
                SamePadding::PyTorch => "pytorch",
                SamePadding::Keras => "keras",
            },
            "convolution padding='same': pytorch = stride 1 only, out = n; keras = out = ceil(n/s); \
             pooling and transposed 'same' always follow Keras",
        ),
        item(
            "pool_stride_default",
            match c.pool_stride_default {
                PoolStrideDefault::Kernel => "kernel",
                PoolStrideDefault::One => "one",
            },
            "pooling stride when none is given",
        ),
        item(
            "ceil_mode_rule",
            match c.ceil_mode_rule {
                CeilModeRule::LastWindowStartsInside => "last_window_starts_inside",
                CeilModeRule::Plain => "plain",
            },
            "with ceil_mode, drop a last window that would start in the right padding (PyTorch) or not",
        ),
        item(
            "output_padding_rule",
            match c.output_padding_rule {
                OutputPaddingRule::LessThanStrideOrDilation => "stride_or_dilation",
                OutputPaddingRule::LessThanStride => "stride",
            },
            "transposed convolution output_padding must be < stride or < dilation (PyTorch), or < stride (Keras)",
        ),
        item(
            "receptive_field_origin",
            match c.receptive_field_origin {
                ReceptiveFieldOrigin::PixelIndex => "pixel_index",
                ReceptiveFieldOrigin::PixelEdge => "pixel_edge",
            },
            "receptive-field start: centre of input pixel i at i (pixel_index) or i + 0.5 (pixel_edge)",
        ),
        item(
            "mult_adds_include_bias",
            if c.mult_adds_include_bias {
                "true"
            } else {
                "false"
            },
            "count one add per biased output in mult_adds",
        ),
        item(
            "dense_input",
            match c.dense_input {
                DenseInput::LastAxis => "last_axis",
                DenseInput::RequireFlat => "require_flat",
            },
            "Dense/Linear on a rank>1 tensor acts on the last axis (both frameworks) or is rejected",
        ),
        item(
            "return_sequences",
            if c.return_sequences { "true" } else { "false" },
            "default output of recurrent layers: every step (PyTorch) or the last step (Keras)",
        ),
    ]
}
