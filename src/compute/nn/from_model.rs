//! Builds a computable [`Network`] from the shared model description
//! ([`ModelSpec`], `src/compute/model.rs`), for engines that hold a model and
//! train it (e.g. optimizer steps on model + data + loss).
//!
//! A `ModelSpec` carries shapes and hyper-parameters but no weights, so the
//! [`ParamSet`] returned here holds zeros of the right shapes (in the model's
//! layout: channels-first → PyTorch layout, channels-last → Keras layout); the
//! caller writes the weights into `params[k].data`. Layers this engine does not
//! compute (transposed/depthwise/separable/3-D convolutions, global and
//! adaptive pooling, layer norm, embeddings, recurrent layers, ceil-mode or
//! dilated pooling, activations other than the ones in [`Activation`]) are
//! errors naming the layer.

use serde_json::{Value, json};

use super::{
    ActivationName, ActivationOptions, ActivationSpec, BatchNormSpec, ConvSpec, DenseSpec,
    DropoutSpec, LayerSpec, Layout, Network, NoOptions, PaddingMode, PaddingSpec, ParamSet,
    PoolSpec, SizeSpec,
};
use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::limits::Limits;
use crate::compute::model::{self, LayerKind, ModelSpec, PoolOp, PoolStrideDefault};
use crate::compute::tensor::{Tensor, checked_numel};

/// The architecture of `spec` as a [`Network`] plus zero-filled parameters.
/// Returns also the input shape with a batch dimension of one.
pub fn network_from_model(
    spec: &ModelSpec,
    limits: &Limits,
) -> ComputeResult<(Network, ParamSet, Vec<usize>)> {
    let layout = match spec.layout {
        model::Layout::ChannelsFirst => Layout::Pytorch,
        model::Layout::ChannelsLast => Layout::Keras,
    };
    let mut shape: Vec<usize> = vec![1];
    for &d in &spec.input_shape {
        shape.push(
            usize::try_from(d)
                .map_err(|_| ComputeError::new("/input_shape", "dimension too large"))?,
        );
    }
    let n = checked_numel(&shape)
        .filter(|&n| n <= limits.max_tensor_elements)
        .ok_or_else(|| {
            ComputeError::new(
                "/input_shape",
                "the input has more elements than the tensor limit",
            )
        })?;
    let input_shape = shape.clone();
    // Propagate a zero tensor layer by layer to learn each layer's input shape.
    let mut x = Tensor::new(shape, vec![0.0; n])?;
    let mut specs = Vec::with_capacity(spec.layers.len());
    let mut frozen: Vec<usize> = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let ls = convert(layer, x.shape(), layout, spec)?;
        let (one, one_params) = Network::build(std::slice::from_ref(&ls), layout, true, limits)
            .map_err(|e| relocate(e, &layer.pointer))?;
        let trace = one
            .forward(&one_params, &x, limits)
            .map_err(|e| relocate(e, &layer.pointer))?;
        x = trace.output().clone();
        if !layer.trainable {
            frozen.push(i);
        }
        specs.push(ls);
    }
    let (net, mut params) = Network::build(&specs, layout, true, limits)?;
    for p in &mut params.params {
        let layer_index = p
            .name
            .split('.')
            .next()
            .and_then(|s| s.parse::<usize>().ok());
        if layer_index.is_some_and(|li| frozen.contains(&li)) {
            p.trainable = false;
        }
    }
    Ok((net, params, input_shape))
}

/// Re-points an error of a one-layer network at the model's layer.
fn relocate(mut e: ComputeError, layer_ptr: &str) -> ComputeError {
    if let Some(rest) = e.pointer.strip_prefix("/layers/0") {
        e.pointer = format!("{layer_ptr}{rest}");
    }
    e
}

fn unsupported(layer: &model::Layer, what: &str) -> ComputeError {
    ComputeError::new(
        &layer.pointer,
        format!("{what} is not supported by the forward/backprop engine"),
    )
}

fn zeros(shape: &[usize]) -> Value {
    match shape.split_first() {
        None => json!(0.0),
        Some((&d, rest)) => Value::Array((0..d).map(|_| zeros(rest)).collect()),
    }
}

fn activation(layer: &model::Layer, a: &model::Activation) -> ComputeResult<ActivationSpec> {
    let opts = |name, alpha| {
        ActivationSpec::Options(ActivationOptions {
            name,
            alpha,
            axis: None,
            approximate: None,
        })
    };
    Ok(match a {
        model::Activation::Relu => ActivationSpec::Name(ActivationName::Relu),
        model::Activation::Sigmoid => ActivationSpec::Name(ActivationName::Sigmoid),
        model::Activation::Tanh => ActivationSpec::Name(ActivationName::Tanh),
        model::Activation::Softmax => ActivationSpec::Name(ActivationName::Softmax),
        model::Activation::LeakyRelu(alpha) => opts(ActivationName::LeakyRelu, Some(*alpha)),
        model::Activation::Elu(alpha) => opts(ActivationName::Elu, Some(*alpha)),
        model::Activation::Gelu => ActivationSpec::Name(ActivationName::Gelu),
        model::Activation::Linear => ActivationSpec::Name(ActivationName::Linear),
        other => {
            return Err(unsupported(
                layer,
                &format!("the activation {}", other.name()),
            ));
        }
    })
}

fn sizes(v: &[u64], layer: &model::Layer) -> ComputeResult<SizeSpec> {
    let out: Result<Vec<usize>, _> = v.iter().map(|&d| usize::try_from(d)).collect();
    out.map(SizeSpec::PerDim)
        .map_err(|_| ComputeError::new(&layer.pointer, "size too large"))
}

fn padding(p: &model::Padding, layer: &model::Layer) -> ComputeResult<PaddingSpec> {
    Ok(match p {
        model::Padding::Valid => PaddingSpec::Mode(PaddingMode::Valid),
        model::Padding::Same => PaddingSpec::Mode(PaddingMode::Same),
        model::Padding::Explicit(sides) => {
            let mut v = Vec::new();
            for &(a, b) in sides {
                v.push(
                    usize::try_from(a)
                        .map_err(|_| ComputeError::new(&layer.pointer, "padding too large"))?,
                );
                v.push(
                    usize::try_from(b)
                        .map_err(|_| ComputeError::new(&layer.pointer, "padding too large"))?,
                );
            }
            PaddingSpec::PerSide(v)
        }
    })
}

fn convert(
    layer: &model::Layer,
    in_shape: &[usize],
    layout: Layout,
    spec: &ModelSpec,
) -> ComputeResult<LayerSpec> {
    let channels = |rank: usize| -> usize {
        match layout {
            Layout::Pytorch => in_shape.get(1).copied().unwrap_or(0),
            Layout::Keras => in_shape.get(rank + 1).copied().unwrap_or(0),
        }
    };
    Ok(match &layer.kind {
        LayerKind::Dense(d) => {
            let in_f = in_shape.last().copied().unwrap_or(0);
            let out_f = usize::try_from(d.units)
                .map_err(|_| ComputeError::new(&layer.pointer, "units too large"))?;
            let w = match layout {
                Layout::Pytorch => zeros(&[out_f, in_f]),
                Layout::Keras => zeros(&[in_f, out_f]),
            };
            LayerSpec::Dense(DenseSpec {
                weight: w,
                bias: d.use_bias.then(|| zeros(&[out_f])),
                activation: d
                    .activation
                    .as_ref()
                    .map(|a| activation(layer, a))
                    .transpose()?,
            })
        }
        LayerKind::Conv(c) => {
            if c.kind != model::ConvKind::Standard {
                return Err(unsupported(layer, "this convolution flavour"));
            }
            if c.rank > 2 {
                return Err(unsupported(layer, "a 3-D convolution"));
            }
            let cout = c.filters.and_then(|f| usize::try_from(f).ok()).unwrap_or(0);
            let groups = usize::try_from(c.groups).unwrap_or(1).max(1);
            let cin_g = channels(c.rank) / groups;
            let k: Vec<usize> = c
                .kernel
                .iter()
                .map(|&v| usize::try_from(v).unwrap_or(0))
                .collect();
            let wshape: Vec<usize> = match layout {
                Layout::Pytorch => [vec![cout, cin_g], k.clone()].concat(),
                Layout::Keras => [k.clone(), vec![cin_g, cout]].concat(),
            };
            let s = ConvSpec {
                weight: zeros(&wshape),
                bias: c.use_bias.then(|| zeros(&[cout])),
                stride: Some(sizes(&c.strides, layer)?),
                padding: Some(padding(&c.padding, layer)?),
                dilation: Some(sizes(&c.dilation, layer)?),
                groups: Some(groups),
                activation: c
                    .activation
                    .as_ref()
                    .map(|a| activation(layer, a))
                    .transpose()?,
            };
            if c.rank == 1 {
                LayerSpec::Conv1d(s)
            } else {
                LayerSpec::Conv2d(s)
            }
        }
        LayerKind::Pool(p) => {
            if p.rank > 2 {
                return Err(unsupported(layer, "3-D pooling"));
            }
            if p.ceil_mode {
                return Err(unsupported(layer, "ceil_mode pooling"));
            }
            if p.dilation.iter().any(|&d| d != 1) {
                return Err(unsupported(layer, "dilated pooling"));
            }
            let stride = match &p.strides {
                Some(s) => Some(sizes(s, layer)?),
                None if spec.conventions.pool_stride_default == PoolStrideDefault::One => {
                    Some(SizeSpec::One(1))
                }
                None => None,
            };
            let max = p.op == PoolOp::Max;
            let s = PoolSpec {
                kernel_size: sizes(&p.kernel, layer)?,
                stride,
                padding: Some(padding(&p.padding, layer)?),
                pad_value: None,
                count_include_pad: (!max)
                    .then_some(p.count_include_pad && layout == Layout::Pytorch),
            };
            match (max, p.rank) {
                (true, 1) => LayerSpec::MaxPool1d(s),
                (true, _) => LayerSpec::MaxPool2d(s),
                (false, 1) => LayerSpec::AvgPool1d(s),
                (false, _) => LayerSpec::AvgPool2d(s),
            }
        }
        LayerKind::Flatten(f) => {
            if f.start_dim != 1 || !(f.end_dim == -1 || f.end_dim + 1 == in_shape.len() as i64) {
                return Err(unsupported(
                    layer,
                    "flatten with start_dim/end_dim other than 1/-1",
                ));
            }
            LayerSpec::Flatten(NoOptions {})
        }
        LayerKind::Dropout(d) => LayerSpec::Dropout(DropoutSpec { rate: d.rate }),
        LayerKind::BatchNorm(b) => {
            if !b.track_running_stats {
                return Err(unsupported(layer, "batch norm without running statistics"));
            }
            if !b.scale || !b.center {
                return Err(unsupported(layer, "batch norm without scale or center"));
            }
            let axis = b.axis.map_or(
                match layout {
                    Layout::Pytorch => 1,
                    Layout::Keras => -1,
                },
                |a| a as isize,
            );
            let rank = in_shape.len() as isize;
            let ax = if axis < 0 { axis + rank } else { axis };
            let ch = usize::try_from(ax)
                .ok()
                .and_then(|a| in_shape.get(a))
                .copied()
                .unwrap_or(0);
            LayerSpec::BatchNorm(BatchNormSpec {
                running_mean: zeros(&[ch]),
                running_var: json!(vec![1.0; ch]),
                gamma: None,
                beta: None,
                eps: None,
                axis: Some(axis),
            })
        }
        LayerKind::Activation(a) => LayerSpec::Activation(super::ActivationLayerSpec {
            activation: activation(layer, a)?,
        }),
        other => {
            let name = match other {
                LayerKind::GlobalPool(_) => "global pooling",
                LayerKind::AdaptivePool(_) => "adaptive pooling",
                LayerKind::LayerNorm(_) => "layer normalization",
                LayerKind::Embedding(_) => "an embedding",
                LayerKind::ZeroPad(_) => "zero padding",
                LayerKind::Upsample(_) => "upsampling",
                LayerKind::Recurrent(_) => "a recurrent layer",
                // Every other kind was converted above.
                _ => "this layer type",
            };
            return Err(unsupported(layer, name));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::losses::{LossConfig, LossKind};

    #[test]
    fn keras_model_becomes_a_trainable_network() {
        let spec = ModelSpec::from_json(&json!({
            "conventions": {"framework": "keras"},
            "layout": "channels_last",
            "input_shape": [6, 6, 2],
            "layers": [
                {"type": "Conv2D", "filters": 3, "kernel_size": 3, "activation": "relu"},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Flatten"},
                {"type": "Dense", "units": 2, "activation": "softmax"}
            ]
        }))
        .unwrap();
        let limits = Limits::default();
        let (net, mut params, in_shape) = network_from_model(&spec, &limits).unwrap();
        assert_eq!(in_shape, vec![1, 6, 6, 2]);
        let shapes: Vec<Vec<usize>> = params.params.iter().map(|p| p.shape.clone()).collect();
        assert_eq!(
            shapes,
            vec![vec![3, 3, 2, 3], vec![3], vec![12, 2], vec![2]]
        );
        for (k, p) in params.params.iter_mut().enumerate() {
            for (j, v) in p.data.iter_mut().enumerate() {
                *v = ((k * 31 + j * 7) % 13) as f64 / 13.0 - 0.4;
            }
        }
        let x = Tensor::new(in_shape, (0..72).map(|i| (i as f64 * 0.3).sin()).collect()).unwrap();
        let y = Tensor::new(vec![1, 2], vec![0.0, 1.0]).unwrap();
        let cfg = LossConfig::new(LossKind::CategoricalCrossentropy);
        let (l, g) = net.loss_and_grads(&params, &x, &y, &cfg, &limits).unwrap();
        assert!(l.is_finite() && l > 0.0);
        assert_eq!(g.len(), 4);
    }

    #[test]
    fn unsupported_layers_are_named() {
        let spec = ModelSpec::from_json(&json!({
            "input_shape": [4],
            "layers": [{"type": "Linear", "in_features": 4, "out_features": 2}, {"type": "LayerNorm", "normalized_shape": [2]}]
        }))
        .unwrap();
        let e = network_from_model(&spec, &Limits::default()).unwrap_err();
        assert_eq!(e.pointer, "/layers/1");
        assert!(e.message.contains("layer normalization"));
    }
}
