//! Per-layer arithmetic: output shape, parameters, weight shapes and
//! multiply-adds, each with worked steps.

use super::WeightShape;
use super::receptive::RfOp;
use super::window::{
    AxisWindow, Geometry, PadSpec, TransposedPad, WindowCtx, WindowOpts, axis_names,
    forward_window, transposed_window,
};
use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::limits::Limits;
use crate::compute::model::{
    Activation, AdaptivePool, BatchNorm, Cell, Conv, ConvKind, Conventions, Dense, DenseInput,
    Embedding, Flatten, Framework, GlobalPool, Layer, LayerKind, LayerNorm, Layout, MergeMode,
    Padding, Pool, PoolOp, PoolStrideDefault, Recurrent, SamePadding, Upsample, ZeroPad,
};
use crate::compute::steps::Step;

/// Everything computed for one layer.
#[derive(Debug, Clone)]
pub(super) struct LayerCalc {
    pub output_shape: Vec<u64>,
    pub trainable: u64,
    pub non_trainable: u64,
    pub formula: String,
    pub weights: Vec<WeightShape>,
    pub mult_adds: u64,
    /// torchinfo's multiplier for its mult-adds (parameters x this): output
    /// positions for convolutions, timesteps for recurrent layers, else 1.
    pub torchinfo_positions: u64,
    /// Output elements of the PyTorch module (a recurrent module always
    /// returns every step), for torchinfo's pass size.
    pub torch_output_elements: Option<u64>,
    pub rf: RfOp,
    /// Spatial axis names of the window axes (for receptive-field steps).
    pub axis_names: Vec<&'static str>,
    pub steps: Vec<Step>,
}

impl LayerCalc {
    fn passthrough(shape: &[u64]) -> Self {
        Self {
            output_shape: shape.to_vec(),
            trainable: 0,
            non_trainable: 0,
            formula: "0".into(),
            weights: Vec::new(),
            mult_adds: 0,
            torchinfo_positions: 1,
            torch_output_elements: None,
            rf: RfOp::Identity,
            axis_names: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// The context of the layer being analysed.
pub(super) struct Ctx<'a> {
    pub conv: &'a Conventions,
    pub layout: Layout,
    pub limits: &'a Limits,
    pub with_steps: bool,
    /// "layer 3 (Conv2D)".
    pub what: String,
    /// Pointer of the layer object.
    pub ptr: &'a str,
    /// The layer (for the pointers of the keys it used).
    pub layer: &'a Layer,
}

impl Ctx<'_> {
    /// Pointer of a field by canonical name.
    fn fp(&self, field: &str) -> String {
        self.layer.field_pointer(field)
    }

    fn err(&self, field: &str, msg: impl AsRef<str>) -> ComputeError {
        let ptr = if field.is_empty() {
            self.ptr.to_string()
        } else {
            self.fp(field)
        };
        ComputeError::new(ptr, format!("{}: {}", self.what, msg.as_ref()))
    }

    fn mul(&self, a: u64, b: u64) -> ComputeResult<u64> {
        a.checked_mul(b)
            .ok_or_else(|| self.err("", "a count overflows 64 bits"))
    }

    fn add(&self, a: u64, b: u64) -> ComputeResult<u64> {
        a.checked_add(b)
            .ok_or_else(|| self.err("", "a count overflows 64 bits"))
    }

    fn prod(&self, xs: &[u64]) -> ComputeResult<u64> {
        xs.iter().try_fold(1u64, |acc, &x| self.mul(acc, x))
    }

    fn keras(&self) -> bool {
        self.conv.framework == Framework::Keras
    }

    fn step(&self, steps: &mut Vec<Step>, f: impl FnOnce() -> (String, String)) {
        if self.with_steps {
            let (t, l) = f();
            steps.push(Step::new(t, l));
        }
    }
}

/// Formats a shape as `(3, 32, 32)`.
pub(super) fn shape_str(s: &[u64]) -> String {
    let inner: Vec<String> = s.iter().map(u64::to_string).collect();
    if inner.len() == 1 {
        format!("({},)", inner.join(", "))
    } else {
        format!("({})", inner.join(", "))
    }
}

fn tex_shape(s: &[u64]) -> String {
    let inner: Vec<String> = s.iter().map(u64::to_string).collect();
    inner.join(" \\times ")
}

/// `a * b*c` -> `a \cdot b \cdot c`.
fn tex_mul(s: &str) -> String {
    s.replace(" * ", " \\cdot ").replace('*', " \\cdot ")
}

fn star(xs: &[u64]) -> String {
    xs.iter().map(u64::to_string).collect::<Vec<_>>().join("*")
}

fn cdot(xs: &[u64]) -> String {
    xs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" \\cdot ")
}

/// Builds a weight entry.
fn weight(
    name: &str,
    count: u64,
    trainable: bool,
    counted: bool,
    pytorch: Vec<u64>,
    keras: Vec<u64>,
    in_out: Vec<u64>,
) -> WeightShape {
    WeightShape {
        name: name.to_string(),
        count,
        trainable,
        counted,
        running_stat: false,
        pytorch,
        keras,
        in_out,
    }
}

/// Splits an image-like tensor into channels and spatial sizes.
fn split(ctx: &Ctx, shape: &[u64], rank: usize, ty: &str) -> ComputeResult<(u64, Vec<u64>)> {
    if shape.len() != rank + 1 {
        let want = match (ctx.layout, rank) {
            (Layout::ChannelsFirst, 1) => "(C, L)",
            (Layout::ChannelsFirst, 2) => "(C, H, W)",
            (Layout::ChannelsFirst, _) => "(C, D, H, W)",
            (Layout::ChannelsLast, 1) => "(L, C)",
            (Layout::ChannelsLast, 2) => "(H, W, C)",
            (Layout::ChannelsLast, _) => "(D, H, W, C)",
        };
        return Err(ctx.err(
            "type",
            format!(
                "{ty} expects a rank-{} input {want} (batch axis excluded) but gets {}",
                rank + 1,
                shape_str(shape)
            ),
        ));
    }
    Ok(match ctx.layout {
        Layout::ChannelsFirst => (shape[0], shape[1..].to_vec()),
        Layout::ChannelsLast => (shape[rank], shape[..rank].to_vec()),
    })
}

fn join(layout: Layout, c: u64, spatial: &[u64]) -> Vec<u64> {
    match layout {
        Layout::ChannelsFirst => std::iter::once(c).chain(spatial.iter().copied()).collect(),
        Layout::ChannelsLast => spatial.iter().copied().chain(std::iter::once(c)).collect(),
    }
}

/// Tensor axis index of spatial axis `i` for a rank-`rank` window layer.
fn spatial_axis(layout: Layout, i: usize) -> usize {
    match layout {
        Layout::ChannelsFirst => i + 1,
        Layout::ChannelsLast => i,
    }
}

fn channel_axis(layout: Layout, rank: usize) -> usize {
    match layout {
        Layout::ChannelsFirst => 0,
        Layout::ChannelsLast => rank,
    }
}

/// Whether every spatial axis has the same size, hyperparameters and padding
/// (then one worked step covers them all, e.g. `H, W: out = ...`).
fn same_axes(sp: &[u64], params: &[&Vec<u64>], padding: &Padding) -> bool {
    let eq = |v: &[u64]| v.windows(2).all(|w| w[0] == w[1]);
    eq(sp)
        && params.iter().all(|v| eq(v))
        && match padding {
            Padding::Explicit(p) => p.windows(2).all(|w| w[0] == w[1]),
            Padding::Valid | Padding::Same => true,
        }
}

/// Analyses one layer on an input of shape `shape`.
pub(super) fn analyze_layer(
    ctx: &Ctx,
    kind: &LayerKind,
    trainable_flag: bool,
    shape: &[u64],
) -> ComputeResult<LayerCalc> {
    let mut calc = match kind {
        LayerKind::Dense(d) => dense(ctx, d, shape)?,
        LayerKind::Conv(c) => conv(ctx, c, shape)?,
        LayerKind::Pool(p) => pool(ctx, p, shape)?,
        LayerKind::GlobalPool(g) => global_pool(ctx, g, shape)?,
        LayerKind::AdaptivePool(a) => adaptive(ctx, a, shape)?,
        LayerKind::Flatten(f) => flatten(ctx, f, shape)?,
        LayerKind::Dropout(_) => {
            let mut c = LayerCalc::passthrough(shape);
            ctx.step(&mut c.steps, || {
                (
                    "Dropout has no parameters and keeps the shape".into(),
                    "\\text{Dropout: 0 parameters, shape unchanged}".into(),
                )
            });
            c
        }
        LayerKind::BatchNorm(b) => batch_norm(ctx, b, shape)?,
        LayerKind::LayerNorm(l) => layer_norm(ctx, l, shape)?,
        LayerKind::Embedding(e) => embedding(ctx, e, shape)?,
        LayerKind::Activation(a) => activation(ctx, a, shape),
        LayerKind::Recurrent(r) => recurrent(ctx, r, shape)?,
        LayerKind::ZeroPad(z) => zero_pad(ctx, z, shape)?,
        LayerKind::Upsample(u) => upsample(ctx, u, shape)?,
    };
    for d in &calc.output_shape {
        if *d as u128 > ctx.limits.max_tensor_elements as u128 {
            return Err(ctx.err(
                "",
                format!(
                    "output shape {} has a dimension above the limit of {}",
                    shape_str(&calc.output_shape),
                    ctx.limits.max_tensor_elements
                ),
            ));
        }
    }
    if !trainable_flag {
        calc.non_trainable = ctx.add(calc.non_trainable, calc.trainable)?;
        calc.trainable = 0;
        for w in &mut calc.weights {
            w.trainable = false;
        }
        ctx.step(&mut calc.steps, || {
            (
                "trainable = false: every parameter of this layer is non-trainable".into(),
                "\\text{trainable = false}".into(),
            )
        });
    }
    Ok(calc)
}

fn dense(ctx: &Ctx, d: &Dense, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let Some((&fin, lead)) = shape.split_last() else {
        return Err(ctx.err("", "Dense needs a non-empty input shape"));
    };
    if !lead.is_empty() && ctx.conv.dense_input == DenseInput::RequireFlat {
        return Err(ctx.err(
            "type",
            format!(
                "Dense on a rank-{} input {}: add a Flatten first (conventions.dense_input = \"require_flat\")",
                shape.len(),
                shape_str(shape)
            ),
        ));
    }
    if let Some(inf) = d.in_features
        && inf != fin
    {
        return Err(ctx.err(
            "in_features",
            format!("in_features = {inf} but the input has {fin} features (last axis)"),
        ));
    }
    let mut out = lead.to_vec();
    out.push(d.units);
    let w = ctx.mul(fin, d.units)?;
    let b = if d.use_bias { d.units } else { 0 };
    let total = ctx.add(w, b)?;
    let formula = if d.use_bias {
        format!("({fin} + 1) * {} = {total}", d.units)
    } else {
        format!("{fin} * {} = {total}", d.units)
    };
    let out_el = ctx.prod(&out)?;
    let mut ma = ctx.mul(out_el, fin)?;
    if d.use_bias && ctx.conv.mult_adds_include_bias {
        ma = ctx.add(ma, out_el)?;
    }
    let mut steps = Vec::new();
    if !lead.is_empty() {
        ctx.step(&mut steps, || {
            (
                format!(
                    "Dense acts on the last axis ({fin} features) of {}; the leading axes {} are kept",
                    shape_str(shape),
                    shape_str(lead)
                ),
                format!("\\text{{Dense on the last axis: }} {} \\to {}", tex_shape(shape), tex_shape(&out)),
            )
        });
    }
    ctx.step(&mut steps, || {
        (
            format!("output shape {} -> {}", shape_str(shape), shape_str(&out)),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    ctx.step(&mut steps, || {
        if d.use_bias {
            (
                format!("params = (in + 1) * units = {formula}"),
                format!("({fin} + 1) \\cdot {} = {total}", d.units),
            )
        } else {
            (
                format!("params = in * units = {formula} (no bias)"),
                format!("{fin} \\cdot {} = {total}", d.units),
            )
        }
    });
    let keras = ctx.keras();
    let mut weights = vec![weight(
        if keras { "kernel" } else { "weight" },
        w,
        true,
        true,
        vec![d.units, fin],
        vec![fin, d.units],
        vec![fin, d.units],
    )];
    if d.use_bias {
        weights.push(weight(
            "bias",
            b,
            true,
            true,
            vec![d.units],
            vec![d.units],
            vec![d.units],
        ));
    }
    let last = shape.len() - 1;
    Ok(LayerCalc {
        output_shape: out,
        trainable: total,
        non_trainable: 0,
        formula,
        weights,
        mult_adds: ma,
        torchinfo_positions: 1,
        torch_output_elements: None,
        rf: RfOp::Mix {
            axes: vec![last],
            remove: false,
        },
        axis_names: Vec::new(),
        steps,
    })
}

fn conv(ctx: &Ctx, c: &Conv, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let ty = format!(
        "{}{}D",
        match c.kind {
            ConvKind::Standard => "Conv",
            ConvKind::Transposed => "ConvTranspose",
            ConvKind::Depthwise => "DepthwiseConv",
            ConvKind::Separable => "SeparableConv",
        },
        c.rank
    );
    let (cin, sp) = split(ctx, shape, c.rank, &ty)?;
    if let Some(ic) = c.in_channels
        && ic != cin
    {
        return Err(ctx.err(
            "in_channels",
            format!(
                "in_channels = {ic} but the input {} has {cin} channels",
                shape_str(shape)
            ),
        ));
    }
    let names = axis_names(c.rank);
    let mut steps = Vec::new();
    let g = c.groups;
    let mult = c.depth_multiplier;
    let filters = match c.kind {
        ConvKind::Depthwise => {
            let f = ctx.mul(cin, mult)?;
            if let Some(fl) = c.filters
                && fl != f
            {
                return Err(ctx.err(
                    "out_channels",
                    format!("a depthwise convolution has in_channels * depth_multiplier = {f} outputs, not {fl}"),
                ));
            }
            f
        }
        _ => c.filters.unwrap_or(1),
    };
    if matches!(c.kind, ConvKind::Standard | ConvKind::Transposed) {
        if cin % g != 0 {
            return Err(ctx.err(
                "groups",
                format!("input channels ({cin}) are not divisible by groups ({g})"),
            ));
        }
        if filters % g != 0 {
            return Err(ctx.err(
                "groups",
                format!("output channels ({filters}) are not divisible by groups ({g})"),
            ));
        }
    } else if g != 1 {
        return Err(ctx.err("groups", format!("{ty} does not take groups")));
    }
    let mut out_sp = Vec::with_capacity(c.rank);
    let mut rf_axes = Vec::new();
    let transposed = c.kind == ConvKind::Transposed;
    let merged = same_axes(&sp, &[&c.kernel, &c.strides, &c.dilation], &c.padding)
        && c.output_padding
            .as_ref()
            .is_none_or(|v| v.windows(2).all(|w| w[0] == w[1]));
    let merged_name = names.join(", ");
    for (i, &n) in sp.iter().enumerate() {
        let k = c.kernel.get(i).copied().unwrap_or(1);
        let s = c.strides.get(i).copied().unwrap_or(1);
        let d = c.dilation.get(i).copied().unwrap_or(1);
        let name = if merged {
            merged_name.as_str()
        } else {
            names.get(i).copied().unwrap_or("?")
        };
        let axis_steps = ctx.with_steps && (!merged || i == 0);
        if transposed {
            let pad = match &c.padding {
                Padding::Valid if ctx.keras() => TransposedPad::KerasValid,
                Padding::Valid => TransposedPad::Explicit(0, 0),
                Padding::Same => TransposedPad::KerasSame,
                Padding::Explicit(p) => {
                    let (a, b) = p.get(i).copied().unwrap_or((0, 0));
                    TransposedPad::Explicit(a, b)
                }
            };
            let op = c.output_padding.as_ref().and_then(|v| v.get(i).copied());
            let field = if op.is_some() {
                "output_padding"
            } else {
                "padding"
            };
            let fptr = ctx.fp(field);
            let o = transposed_window(
                &WindowCtx {
                    axis: name,
                    what: &ctx.what,
                    ptr: &fptr,
                    with_steps: axis_steps,
                },
                Geometry { n, k, s, d },
                pad,
                op,
                ctx.conv.output_padding_rule,
                &mut steps,
            )?;
            out_sp.push(o);
        } else {
            let pad = match &c.padding {
                Padding::Valid => PadSpec::Explicit(0, 0),
                Padding::Same => PadSpec::Same(ctx.conv.same_padding),
                Padding::Explicit(p) => {
                    let (a, b) = p.get(i).copied().unwrap_or((0, 0));
                    PadSpec::Explicit(a, b)
                }
            };
            let fptr = ctx.fp("kernel_size");
            let w: AxisWindow = forward_window(
                &WindowCtx {
                    axis: name,
                    what: &ctx.what,
                    ptr: &fptr,
                    with_steps: axis_steps,
                },
                Geometry { n, k, s, d },
                pad,
                WindowOpts {
                    ceil_mode: false,
                    ceil_rule: ctx.conv.ceil_mode_rule,
                },
                &mut steps,
            )?;
            out_sp.push(w.out);
            rf_axes.push((
                spatial_axis(ctx.layout, i),
                super::window::effective_kernel(k, d),
                s,
                w.pad_before,
            ));
        }
    }
    let out = join(ctx.layout, filters, &out_sp);
    ctx.step(&mut steps, || {
        (
            format!(
                "output shape {} -> {} ({filters} output channels)",
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    let kprod = ctx.prod(&c.kernel)?;
    let ks = star(&c.kernel);
    let kt = cdot(&c.kernel);
    let out_sp_prod = ctx.prod(&out_sp)?;
    let in_sp_prod = ctx.prod(&sp)?;
    let keras = ctx.keras();
    let kshape = |a: &[u64], b: &[u64]| -> Vec<u64> {
        a.iter()
            .chain(c.kernel.iter())
            .chain(b.iter())
            .copied()
            .collect()
    };
    let (total, formula, tex, weights, mut ma) = match c.kind {
        ConvKind::Standard | ConvKind::Transposed => {
            let per_in = if transposed { cin } else { cin / g };
            let per_out = if transposed { filters / g } else { filters };
            let wcount = ctx.mul(ctx.mul(per_in, per_out)?, kprod)?;
            let b = if c.use_bias { filters } else { 0 };
            let total = ctx.add(wcount, b)?;
            let cin_txt = if g > 1 {
                format!("({cin}/{g})")
            } else {
                cin.to_string()
            };
            let (formula, tex) = if transposed {
                let fo = if g > 1 {
                    format!("({filters}/{g})")
                } else {
                    filters.to_string()
                };
                if c.use_bias {
                    (
                        format!("{ks}*{cin}*{fo} + {filters} = {total}"),
                        format!("{kt} \\cdot {cin} \\cdot {fo} + {filters} = {total}"),
                    )
                } else {
                    (
                        format!("{ks}*{cin}*{fo} = {total}"),
                        format!("{kt} \\cdot {cin} \\cdot {fo} = {total}"),
                    )
                }
            } else if c.use_bias {
                (
                    format!("({ks}*{cin_txt} + 1) * {filters} = {total}"),
                    format!("({kt} \\cdot {cin_txt} + 1) \\cdot {filters} = {total}"),
                )
            } else {
                (
                    format!("{ks}*{cin_txt} * {filters} = {total}"),
                    format!("{kt} \\cdot {cin_txt} \\cdot {filters} = {total}"),
                )
            };
            let mut weights = vec![if transposed {
                weight(
                    if keras { "kernel" } else { "weight" },
                    wcount,
                    true,
                    true,
                    kshape(&[cin, filters / g], &[]),
                    kshape(&[], &[filters / g, cin]),
                    kshape(&[cin, filters / g], &[]),
                )
            } else {
                weight(
                    if keras { "kernel" } else { "weight" },
                    wcount,
                    true,
                    true,
                    kshape(&[filters, cin / g], &[]),
                    kshape(&[], &[cin / g, filters]),
                    kshape(&[cin / g, filters], &[]),
                )
            }];
            if c.use_bias {
                weights.push(weight(
                    "bias",
                    b,
                    true,
                    true,
                    vec![filters],
                    vec![filters],
                    vec![filters],
                ));
            }
            let ma = if transposed {
                ctx.mul(in_sp_prod, wcount)?
            } else {
                ctx.mul(ctx.mul(out_sp_prod, filters)?, ctx.mul(cin / g, kprod)?)?
            };
            (total, formula, tex, weights, ma)
        }
        ConvKind::Depthwise => {
            let wcount = ctx.mul(filters, kprod)?;
            let b = if c.use_bias { filters } else { 0 };
            let total = ctx.add(wcount, b)?;
            let (formula, tex) = if c.use_bias {
                (
                    format!("({ks} + 1) * {cin}*{mult} = {total}"),
                    format!("({kt} + 1) \\cdot {cin} \\cdot {mult} = {total}"),
                )
            } else {
                (
                    format!("{ks} * {cin}*{mult} = {total}"),
                    format!("{kt} \\cdot {cin} \\cdot {mult} = {total}"),
                )
            };
            let mut weights = vec![weight(
                if keras { "depthwise_kernel" } else { "weight" },
                wcount,
                true,
                true,
                kshape(&[filters, 1], &[]),
                kshape(&[], &[cin, mult]),
                kshape(&[cin, mult], &[]),
            )];
            if c.use_bias {
                weights.push(weight(
                    "bias",
                    b,
                    true,
                    true,
                    vec![filters],
                    vec![filters],
                    vec![filters],
                ));
            }
            let ma = ctx.mul(ctx.mul(out_sp_prod, filters)?, kprod)?;
            (total, formula, tex, weights, ma)
        }
        ConvKind::Separable => {
            let mid = ctx.mul(cin, mult)?;
            let dw = ctx.mul(mid, kprod)?;
            let pw = ctx.mul(mid, filters)?;
            let b = if c.use_bias { filters } else { 0 };
            let total = ctx.add(ctx.add(dw, pw)?, b)?;
            let bias_txt = if c.use_bias {
                format!(" + {filters}")
            } else {
                String::new()
            };
            let formula = format!("{ks}*{cin}*{mult} + {cin}*{mult}*{filters}{bias_txt} = {total}");
            let tex = format!(
                "{kt} \\cdot {cin} \\cdot {mult} + {cin} \\cdot {mult} \\cdot {filters}{bias_txt} = {total}"
            );
            let ones = vec![1u64; c.rank];
            let pw_shape = |a: &[u64], b: &[u64]| -> Vec<u64> {
                a.iter()
                    .chain(ones.iter())
                    .chain(b.iter())
                    .copied()
                    .collect()
            };
            let mut weights = vec![
                weight(
                    if keras {
                        "depthwise_kernel"
                    } else {
                        "depthwise.weight"
                    },
                    dw,
                    true,
                    true,
                    kshape(&[mid, 1], &[]),
                    kshape(&[], &[cin, mult]),
                    kshape(&[cin, mult], &[]),
                ),
                weight(
                    if keras {
                        "pointwise_kernel"
                    } else {
                        "pointwise.weight"
                    },
                    pw,
                    true,
                    true,
                    pw_shape(&[filters, mid], &[]),
                    pw_shape(&[], &[mid, filters]),
                    pw_shape(&[mid, filters], &[]),
                ),
            ];
            if c.use_bias {
                weights.push(weight(
                    if keras { "bias" } else { "pointwise.bias" },
                    b,
                    true,
                    true,
                    vec![filters],
                    vec![filters],
                    vec![filters],
                ));
            }
            let ma = ctx.add(
                ctx.mul(ctx.mul(out_sp_prod, mid)?, kprod)?,
                ctx.mul(ctx.mul(out_sp_prod, mid)?, filters)?,
            )?;
            (total, formula, tex, weights, ma)
        }
    };
    let out_el = ctx.mul(out_sp_prod, filters)?;
    if c.use_bias && ctx.conv.mult_adds_include_bias {
        ma = ctx.add(ma, out_el)?;
    }
    ctx.step(&mut steps, || (format!("params = {formula}"), tex));
    let rf = if transposed {
        RfOp::Irregular((0..c.rank).map(|i| spatial_axis(ctx.layout, i)).collect())
    } else {
        RfOp::Window(rf_axes)
    };
    Ok(LayerCalc {
        output_shape: out,
        trainable: total,
        non_trainable: 0,
        formula,
        weights,
        mult_adds: ma,
        torchinfo_positions: out_sp_prod,
        // PyTorch builds a separable convolution from two modules, both counted.
        torch_output_elements: if c.kind == ConvKind::Separable {
            Some(ctx.add(ctx.mul(ctx.mul(cin, mult)?, out_sp_prod)?, out_el)?)
        } else {
            None
        },
        rf,
        axis_names: names.to_vec(),
        steps,
    })
}

fn pool(ctx: &Ctx, p: &Pool, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let ty = format!("{}Pool{}D", p.op.name(), p.rank);
    let (c, sp) = split(ctx, shape, p.rank, &ty)?;
    let names = axis_names(p.rank);
    let mut steps = Vec::new();
    let strides = match &p.strides {
        Some(s) => s.clone(),
        None => {
            let s = match ctx.conv.pool_stride_default {
                PoolStrideDefault::Kernel => p.kernel.clone(),
                PoolStrideDefault::One => vec![1; p.rank],
            };
            ctx.step(&mut steps, || {
                (
                    format!(
                        "no stride given: stride = {} (conventions.pool_stride_default)",
                        star(&s)
                    ),
                    format!("s = {}", cdot(&s)),
                )
            });
            s
        }
    };
    if p.op == PoolOp::Avg && p.dilation.iter().any(|d| *d != 1) {
        return Err(ctx.err("dilation", "average pooling has no dilation"));
    }
    if p.ceil_mode && p.padding == Padding::Same {
        return Err(ctx.err(
            "ceil_mode",
            "ceil_mode applies to explicit or valid padding, not 'same'",
        ));
    }
    let mut out_sp = Vec::with_capacity(p.rank);
    let mut rf_axes = Vec::new();
    let merged = same_axes(&sp, &[&p.kernel, &strides, &p.dilation], &p.padding);
    let merged_name = names.join(", ");
    for (i, &n) in sp.iter().enumerate() {
        let k = p.kernel.get(i).copied().unwrap_or(1);
        let s = strides.get(i).copied().unwrap_or(1);
        let d = p.dilation.get(i).copied().unwrap_or(1);
        let name = if merged {
            merged_name.as_str()
        } else {
            names.get(i).copied().unwrap_or("?")
        };
        let axis_steps = ctx.with_steps && (!merged || i == 0);
        let pad = match &p.padding {
            Padding::Valid => PadSpec::Explicit(0, 0),
            // Only Keras has pooling with padding='same'.
            Padding::Same => PadSpec::Same(SamePadding::Keras),
            Padding::Explicit(v) => {
                let (a, b) = v.get(i).copied().unwrap_or((0, 0));
                let half = super::window::effective_kernel(k, d) / 2;
                if a.max(b) > half {
                    return Err(ctx.err(
                        "padding",
                        format!(
                            "padding {} along {name} is more than half the window ({}): PyTorch rejects it",
                            a.max(b),
                            super::window::effective_kernel(k, d)
                        ),
                    ));
                }
                PadSpec::Explicit(a, b)
            }
        };
        let fptr = ctx.fp("pool_size");
        let w = forward_window(
            &WindowCtx {
                axis: name,
                what: &ctx.what,
                ptr: &fptr,
                with_steps: axis_steps,
            },
            Geometry { n, k, s, d },
            pad,
            WindowOpts {
                ceil_mode: p.ceil_mode,
                ceil_rule: ctx.conv.ceil_mode_rule,
            },
            &mut steps,
        )?;
        out_sp.push(w.out);
        rf_axes.push((
            spatial_axis(ctx.layout, i),
            super::window::effective_kernel(k, d),
            s,
            w.pad_before,
        ));
    }
    let out = join(ctx.layout, c, &out_sp);
    ctx.step(&mut steps, || {
        (
            format!(
                "output shape {} -> {} (channels unchanged); pooling has no parameters",
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    let mut calc = LayerCalc::passthrough(&out);
    calc.rf = RfOp::Window(rf_axes);
    calc.axis_names = names.to_vec();
    calc.steps = steps;
    Ok(calc)
}

fn global_pool(ctx: &Ctx, g: &GlobalPool, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let ty = format!("Global{}Pool{}D", g.op.name(), g.rank);
    let (c, _) = split(ctx, shape, g.rank, &ty)?;
    let axes: Vec<usize> = (0..g.rank).map(|i| spatial_axis(ctx.layout, i)).collect();
    let out = if g.keepdims {
        join(ctx.layout, c, &vec![1; g.rank])
    } else {
        vec![c]
    };
    let mut calc = LayerCalc::passthrough(&out);
    ctx.step(&mut calc.steps, || {
        (
            format!(
                "global pooling over every spatial position: {} -> {}",
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    calc.rf = RfOp::Mix {
        axes,
        remove: !g.keepdims,
    };
    Ok(calc)
}

fn adaptive(ctx: &Ctx, a: &AdaptivePool, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let ty = format!("Adaptive{}Pool{}D", a.op.name(), a.rank);
    let (c, sp) = split(ctx, shape, a.rank, &ty)?;
    let names = axis_names(a.rank);
    let mut out_sp = Vec::with_capacity(a.rank);
    let mut steps = Vec::new();
    let mut regular = Vec::new();
    let mut irregular = Vec::new();
    for (i, &n) in sp.iter().enumerate() {
        let o = a.output_size.get(i).copied().flatten().unwrap_or(n);
        out_sp.push(o);
        let name = names.get(i).copied().unwrap_or("?");
        if n % o == 0 {
            let k = n / o;
            regular.push((spatial_axis(ctx.layout, i), k, k, 0));
            ctx.step(&mut steps, || {
                (
                    format!("{name}: {n} -> {o}: windows of k = s = {n}/{o} = {k}"),
                    format!("{name}: k = s = {n}/{o} = {k}"),
                )
            });
        } else {
            irregular.push(spatial_axis(ctx.layout, i));
            ctx.step(&mut steps, || {
                (
                    format!(
                        "{name}: {n} -> {o}: window i spans [floor(i*{n}/{o}), ceil((i+1)*{n}/{o})), sizes vary"
                    ),
                    format!(
                        "{name}: [\\lfloor i\\cdot {n}/{o} \\rfloor, \\lceil (i+1)\\cdot {n}/{o} \\rceil)"
                    ),
                )
            });
        }
    }
    let out = join(ctx.layout, c, &out_sp);
    let mut calc = LayerCalc::passthrough(&out);
    calc.steps = steps;
    calc.rf = if irregular.is_empty() {
        RfOp::Window(regular)
    } else {
        // Irregular axes lose their regular field; regular ones are handled when all are regular.
        RfOp::Irregular((0..a.rank).map(|i| spatial_axis(ctx.layout, i)).collect())
    };
    calc.axis_names = names.to_vec();
    Ok(calc)
}

fn zero_pad(ctx: &Ctx, z: &ZeroPad, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let (c, sp) = split(ctx, shape, z.rank, &format!("ZeroPadding{}D", z.rank))?;
    let names = axis_names(z.rank);
    let mut out_sp = Vec::with_capacity(z.rank);
    let mut rf_axes = Vec::with_capacity(z.rank);
    let mut steps = Vec::new();
    for (i, &n) in sp.iter().enumerate() {
        let (a, b) = z.pads.get(i).copied().unwrap_or((0, 0));
        let o = ctx.add(ctx.add(n, a)?, b)?;
        out_sp.push(o);
        rf_axes.push((spatial_axis(ctx.layout, i), 1, 1, a));
        let name = names.get(i).copied().unwrap_or("?");
        ctx.step(&mut steps, || {
            (
                format!("{name}: out = {n} + {a} + {b} = {o}"),
                format!("{name}_{{out}} = {n} + {a} + {b} = {o}"),
            )
        });
    }
    let out = join(ctx.layout, c, &out_sp);
    let mut calc = LayerCalc::passthrough(&out);
    calc.steps = steps;
    calc.rf = RfOp::Window(rf_axes);
    calc.axis_names = names.to_vec();
    Ok(calc)
}

fn upsample(ctx: &Ctx, u: &Upsample, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let rank = u.rank.unwrap_or(shape.len().saturating_sub(1));
    if rank == 0 || rank > 3 {
        return Err(ctx.err(
            "type",
            format!(
                "Upsample needs a (C, spatial...) input with 1 to 3 spatial axes, got {}",
                shape_str(shape)
            ),
        ));
    }
    let (c, sp) = split(ctx, shape, rank, "Upsample")?;
    let per_axis = |v: &Vec<u64>, field: &str| -> ComputeResult<Vec<u64>> {
        match v.as_slice() {
            [x] => Ok(vec![*x; rank]),
            _ if v.len() == rank => Ok(v.clone()),
            _ => Err(ctx.err(field, format!("needs 1 or {rank} values, got {}", v.len()))),
        }
    };
    let names = axis_names(rank);
    let mut steps = Vec::new();
    let out_sp: Vec<u64> = match (&u.factors, &u.output_size) {
        (Some(f), _) => {
            let f = per_axis(f, "scale_factor")?;
            let mut out = Vec::with_capacity(rank);
            for (i, (&n, &k)) in sp.iter().zip(&f).enumerate() {
                let o = ctx.mul(n, k)?;
                let name = names.get(i).copied().unwrap_or("?");
                ctx.step(&mut steps, || {
                    (
                        format!("{name}: out = {n} * {k} = {o}"),
                        format!("{name}_{{out}} = {n} \\cdot {k} = {o}"),
                    )
                });
                out.push(o);
            }
            out
        }
        (None, Some(s)) => per_axis(s, "size")?,
        (None, None) => sp.clone(),
    };
    let out = join(ctx.layout, c, &out_sp);
    let mut calc = LayerCalc::passthrough(&out);
    ctx.step(&mut steps, || {
        (
            format!(
                "upsampling: {} -> {}; no parameters",
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    calc.steps = steps;
    calc.rf = RfOp::Irregular((0..rank).map(|i| spatial_axis(ctx.layout, i)).collect());
    Ok(calc)
}

fn flatten(ctx: &Ctx, f: &Flatten, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let r = shape.len() as i64;
    let resolve = |x: i64| if x < 0 { x + r + 1 } else { x };
    let (s, e) = (resolve(f.start_dim), resolve(f.end_dim));
    if s < 1 || e > r || s > e {
        return Err(ctx.err(
            "start_dim",
            format!(
                "start_dim/end_dim ({}, {}) do not select axes of {} (counted with the batch axis 0)",
                f.start_dim,
                f.end_dim,
                shape_str(shape)
            ),
        ));
    }
    let (from, to) = ((s - 1) as usize, (e - 1) as usize);
    let merged = ctx.prod(&shape[from..=to])?;
    let mut out: Vec<u64> = shape[..from].to_vec();
    out.push(merged);
    out.extend_from_slice(&shape[to + 1..]);
    let mut calc = LayerCalc::passthrough(&out);
    ctx.step(&mut calc.steps, || {
        (
            format!(
                "Flatten: {} = {merged}; {} -> {}",
                star(&shape[from..=to]),
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} = {merged}", cdot(&shape[from..=to])),
        )
    });
    calc.rf = RfOp::Merge(from, to);
    Ok(calc)
}

/// Resolves a Keras axis (counted with the batch axis, negative from the end)
/// to an unbatched axis.
fn keras_axis(ctx: &Ctx, axis: i64, rank: usize, field: &str) -> ComputeResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis - 1 };
    if axis == 0 || a < 0 || a >= r {
        return Err(ctx.err(
            field,
            format!(
                "axis {axis} is not a feature axis of a rank-{rank} input (axis 0 is the batch)"
            ),
        ));
    }
    Ok(a as usize)
}

fn batch_norm(ctx: &Ctx, b: &BatchNorm, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let axis = match b.axis {
        Some(a) => keras_axis(ctx, a, shape.len(), "axis")?,
        None if shape.len() <= 1 => 0,
        None => channel_axis(ctx.layout, shape.len() - 1),
    };
    let Some(&c) = shape.get(axis) else {
        return Err(ctx.err("", "BatchNorm needs a non-empty input shape"));
    };
    if let Some(nf) = b.num_features
        && nf != c
    {
        return Err(ctx.err(
            "num_features",
            format!("num_features = {nf} but the normalized axis has {c} features"),
        ));
    }
    let learn = u64::from(b.scale) + u64::from(b.center);
    let trainable = ctx.mul(learn, c)?;
    let count_stats = b.track_running_stats && ctx.conv.count_bn_running_stats;
    let non_trainable = if count_stats { ctx.mul(2, c)? } else { 0 };
    let keras = ctx.keras();
    let mut weights = Vec::new();
    let v = vec![c];
    if b.scale {
        weights.push(weight(
            if keras { "gamma" } else { "weight" },
            c,
            true,
            true,
            v.clone(),
            v.clone(),
            v.clone(),
        ));
    }
    if b.center {
        weights.push(weight(
            if keras { "beta" } else { "bias" },
            c,
            true,
            true,
            v.clone(),
            v.clone(),
            v.clone(),
        ));
    }
    if b.track_running_stats {
        for n in if keras {
            ["moving_mean", "moving_variance"]
        } else {
            ["running_mean", "running_var"]
        } {
            let mut w = weight(n, c, false, count_stats, v.clone(), v.clone(), v.clone());
            w.running_stat = true;
            weights.push(w);
        }
    }
    let total = trainable + non_trainable;
    let formula = if count_stats {
        format!("{learn}*{c} trainable + 2*{c} non-trainable = {total}")
    } else {
        format!("{learn}*{c} = {total}")
    };
    let mut calc = LayerCalc::passthrough(shape);
    calc.trainable = trainable;
    calc.non_trainable = non_trainable;
    calc.weights = weights;
    let f2 = formula.clone();
    ctx.step(&mut calc.steps, || {
        (
            format!(
                "BatchNorm over {c} features: gamma and beta are trainable ({learn}*{c}); the running mean and \
                 variance ({}) {}: {f2}",
                2 * c,
                if count_stats {
                    "count as non-trainable parameters"
                } else {
                    "are buffers, not parameters"
                }
            ),
            format!("\\text{{BN: }} {}", tex_mul(&f2)),
        )
    });
    calc.formula = formula;
    Ok(calc)
}

fn layer_norm(ctx: &Ctx, l: &LayerNorm, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let (norm_shape, axes): (Vec<u64>, Vec<usize>) = match &l.normalized_shape {
        Some(ns) => {
            if ns.len() > shape.len() || shape[shape.len() - ns.len()..] != ns[..] {
                return Err(ctx.err(
                    "normalized_shape",
                    format!(
                        "normalized_shape {} must equal the trailing dimensions of the input {}",
                        shape_str(ns),
                        shape_str(shape)
                    ),
                ));
            }
            (ns.clone(), (shape.len() - ns.len()..shape.len()).collect())
        }
        None => {
            let mut axes = Vec::new();
            for a in &l.axis {
                let ax = keras_axis(ctx, *a, shape.len(), "axis")?;
                if !axes.contains(&ax) {
                    axes.push(ax);
                }
            }
            axes.sort_unstable();
            (axes.iter().map(|a| shape[*a]).collect(), axes)
        }
    };
    let n = ctx.prod(&norm_shape)?;
    let learn = u64::from(l.scale) + u64::from(l.center);
    let total = ctx.mul(learn, n)?;
    let formula = format!("{learn}*{} = {total}", star(&norm_shape));
    let keras = ctx.keras();
    let mut weights = Vec::new();
    if l.scale {
        weights.push(weight(
            if keras { "gamma" } else { "weight" },
            n,
            true,
            true,
            norm_shape.clone(),
            norm_shape.clone(),
            norm_shape.clone(),
        ));
    }
    if l.center {
        weights.push(weight(
            if keras { "beta" } else { "bias" },
            n,
            true,
            true,
            norm_shape.clone(),
            norm_shape.clone(),
            norm_shape.clone(),
        ));
    }
    let mut calc = LayerCalc::passthrough(shape);
    calc.trainable = total;
    calc.weights = weights;
    let f2 = formula.clone();
    ctx.step(&mut calc.steps, || {
        (
            format!("LayerNorm over {}: params = {f2}", shape_str(&norm_shape)),
            format!("\\text{{LN: }} {}", tex_mul(&f2)),
        )
    });
    calc.formula = formula;
    calc.rf = RfOp::Mix {
        axes,
        remove: false,
    };
    Ok(calc)
}

fn embedding(ctx: &Ctx, e: &Embedding, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let mut out = shape.to_vec();
    out.push(e.output_dim);
    let total = ctx.mul(e.input_dim, e.output_dim)?;
    let formula = format!("{} * {} = {total}", e.input_dim, e.output_dim);
    let mut calc = LayerCalc::passthrough(&out);
    calc.trainable = total;
    let s = vec![e.input_dim, e.output_dim];
    calc.weights = vec![weight(
        if ctx.keras() { "embeddings" } else { "weight" },
        total,
        true,
        true,
        s.clone(),
        s.clone(),
        s,
    )];
    let f2 = formula.clone();
    ctx.step(&mut calc.steps, || {
        (
            format!(
                "Embedding: every index becomes a {}-vector: {} -> {}; params = vocabulary * dim = {f2}",
                e.output_dim,
                shape_str(shape),
                shape_str(&out)
            ),
            format!("{} \\cdot {} = {total}", e.input_dim, e.output_dim),
        )
    });
    calc.formula = formula;
    calc.rf = RfOp::Append;
    Ok(calc)
}

fn activation(ctx: &Ctx, a: &Activation, shape: &[u64]) -> LayerCalc {
    let mut calc = LayerCalc::passthrough(shape);
    ctx.step(&mut calc.steps, || {
        (
            format!("{}: no parameters, shape unchanged", a.name()),
            format!("\\text{{{}: 0 parameters}}", a.name().replace('_', "\\_")),
        )
    });
    if matches!(a, Activation::Softmax | Activation::LogSoftmax) && !shape.is_empty() {
        calc.rf = RfOp::Mix {
            axes: vec![shape.len() - 1],
            remove: false,
        };
    }
    calc
}

fn recurrent(ctx: &Ctx, r: &Recurrent, shape: &[u64]) -> ComputeResult<LayerCalc> {
    let name = r.cell.name();
    let [t, f] = shape else {
        return Err(ctx.err(
            "type",
            format!(
                "{name} expects a (timesteps, features) input but gets {}",
                shape_str(shape)
            ),
        ));
    };
    let (t, f) = (*t, *f);
    if let Some(is) = r.input_size
        && is != f
    {
        return Err(ctx.err(
            "input_size",
            format!("input_size = {is} but the input has {f} features per step"),
        ));
    }
    if r.num_layers > ctx.limits.max_layers as u64 {
        return Err(ctx.err(
            "num_layers",
            format!(
                "num_layers = {} exceeds the limit of {} layers",
                r.num_layers, ctx.limits.max_layers
            ),
        ));
    }
    let g = r.cell.gates();
    let h = r.units;
    let dirs: u64 = if r.bidirectional { 2 } else { 1 };
    let nb = if r.use_bias { r.bias_vectors } else { 0 };
    let gh = ctx.mul(g, h)?;
    let keras = ctx.keras();
    let mut weights = Vec::new();
    let mut total = 0u64;
    let mut ma = 0u64;
    let mut parts = Vec::new();
    let mut steps = Vec::new();
    let step_out = if r.bidirectional && r.merge_mode == MergeMode::Concat {
        ctx.mul(2, h)?
    } else {
        h
    };
    for l in 0..r.num_layers {
        let fin = if l == 0 { f } else { step_out };
        let wi = ctx.mul(gh, fin)?;
        let wh = ctx.mul(gh, h)?;
        let bias = ctx.mul(nb, gh)?;
        let per_dir = ctx.add(ctx.add(wi, wh)?, bias)?;
        let layer_total = ctx.mul(per_dir, dirs)?;
        total = ctx.add(total, layer_total)?;
        ma = ctx.add(ma, ctx.mul(ctx.mul(ctx.add(wi, wh)?, t)?, dirs)?)?;
        if r.use_bias && ctx.conv.mult_adds_include_bias {
            ma = ctx.add(ma, ctx.mul(ctx.mul(bias, t)?, dirs)?)?;
        }
        let bias_txt = match nb {
            0 => String::new(),
            1 => format!(" + {h}"),
            _ => format!(" + 2*{h}"),
        };
        let dir_txt = if dirs == 2 { "2 * " } else { "" };
        let part = format!("{dir_txt}{g}*({h}*({fin} + {h}){bias_txt})");
        parts.push((part, layer_total));
        for dir in 0..dirs {
            let suffix = if dir == 1 { "_reverse" } else { "" };
            let (ki, kh) = if keras {
                (
                    format!("{}kernel", if dir == 1 { "backward_" } else { "" }),
                    format!(
                        "{}recurrent_kernel",
                        if dir == 1 { "backward_" } else { "" }
                    ),
                )
            } else {
                (
                    format!("weight_ih_l{l}{suffix}"),
                    format!("weight_hh_l{l}{suffix}"),
                )
            };
            weights.push(weight(
                &ki,
                wi,
                true,
                true,
                vec![gh, fin],
                vec![fin, gh],
                vec![fin, gh],
            ));
            weights.push(weight(
                &kh,
                wh,
                true,
                true,
                vec![gh, h],
                vec![h, gh],
                vec![h, gh],
            ));
            if nb > 0 {
                if keras {
                    let s = if nb == 2 { vec![2, gh] } else { vec![gh] };
                    let n = format!("{}bias", if dir == 1 { "backward_" } else { "" });
                    weights.push(weight(&n, bias, true, true, s.clone(), s.clone(), s));
                } else {
                    let per = bias / nb;
                    weights.push(weight(
                        &format!("bias_ih_l{l}{suffix}"),
                        per,
                        true,
                        true,
                        vec![gh],
                        vec![gh],
                        vec![gh],
                    ));
                    if nb == 2 {
                        weights.push(weight(
                            &format!("bias_hh_l{l}{suffix}"),
                            per,
                            true,
                            true,
                            vec![gh],
                            vec![gh],
                            vec![gh],
                        ));
                    }
                }
            }
        }
    }
    let formula = if parts.len() == 1 {
        format!("{} = {total}", parts[0].0)
    } else {
        format!(
            "{} = {total}",
            parts
                .iter()
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>()
                .join(" + ")
        )
    };
    let out = if r.return_sequences {
        vec![t, step_out]
    } else {
        vec![step_out]
    };
    ctx.step(&mut steps, || {
        let gate_txt = match r.cell {
            Cell::Rnn => "1 block (the tanh cell)",
            Cell::Lstm => "4 gate blocks (input, forget, cell, output)",
            Cell::Gru => "3 gate blocks (reset, update, new)",
        };
        let bias_txt = match nb {
            0 => "no bias".to_string(),
            1 => "one bias vector per block".to_string(),
            _ if r.cell == Cell::Gru && keras => {
                "two bias vectors per block (reset_after = true)".to_string()
            }
            _ => "two bias vectors per block (b_ih and b_hh, PyTorch)".to_string(),
        };
        (
            format!("{name}: {gate_txt}, each with W (h x in), U (h x h) and {bias_txt}"),
            format!("\\text{{{name}: }} g = {g}"),
        )
    });
    ctx.step(&mut steps, || {
        (format!("params = {formula}"), tex_mul(&formula))
    });
    ctx.step(&mut steps, || {
        (
            format!(
                "output shape {} -> {}{}",
                shape_str(shape),
                shape_str(&out),
                if r.return_sequences {
                    " (every timestep)"
                } else {
                    " (last timestep)"
                }
            ),
            format!("{} \\to {}", tex_shape(shape), tex_shape(&out)),
        )
    });
    Ok(LayerCalc {
        output_shape: out.clone(),
        trainable: total,
        non_trainable: 0,
        formula,
        weights,
        mult_adds: ma,
        torchinfo_positions: t,
        torch_output_elements: Some(ctx.mul(t, step_out)?),
        rf: RfOp::All,
        axis_names: Vec::new(),
        steps,
    })
}
