//! Worked steps for forward and backward passes, written as an exam solution:
//! the dot product with the actual numbers, then the result. Every section is
//! capped at `cap` lines and says how many lines it left out. Indices are
//! 0-based and follow the request's layout (the batch index is omitted for
//! unbatched requests).

use super::activation::{Activation, paren};
use super::pool::PAD_INDEX;
use super::{Backward, Layer, LayerTrace, Layout, Network, Op, ParamSet, Trace};
use crate::compute::steps::{Step, fmt_num};
use crate::compute::tensor::{Tensor, unravel};

/// Most product terms written out in one sum.
const MAX_TERMS: usize = 27;

fn label(net: &Network, idx: &[usize]) -> String {
    let idx = if net.batched || idx.is_empty() {
        idx
    } else {
        &idx[1..]
    };
    let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

fn latex_label(net: &Network, name: &str, idx: &[usize]) -> String {
    let idx = if net.batched || idx.is_empty() {
        idx
    } else {
        &idx[1..]
    };
    let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("{name}_{{{}}}", parts.join(","))
}

/// Canonical (n, c, y, x) of a conv/pool tensor → index in the user layout.
fn user_idx(net: &Network, two_d: bool, n: usize, c: usize, y: usize, x: usize) -> Vec<usize> {
    match (net.layout, two_d) {
        (Layout::Pytorch, true) => vec![n, c, y, x],
        (Layout::Pytorch, false) => vec![n, c, x],
        (Layout::Keras, true) => vec![n, y, x, c],
        (Layout::Keras, false) => vec![n, x, c],
    }
}

/// `lhs = a*b + c*d + bias = result` in text and LaTeX.
/// The products of one sum: the first [`MAX_TERMS`] kept for display, all counted.
#[derive(Default)]
struct Terms {
    shown: Vec<(f64, f64)>,
    total: usize,
}

impl Terms {
    /// The first [`MAX_TERMS`] products of a sum of `total` products (only those
    /// are evaluated).
    fn first(total: usize, f: impl Fn(usize) -> (f64, f64)) -> Self {
        Terms {
            shown: (0..total.min(MAX_TERMS)).map(f).collect(),
            total,
        }
    }

    fn push(&mut self, t: (f64, f64)) {
        if self.shown.len() < MAX_TERMS {
            self.shown.push(t);
        }
        self.total += 1;
    }
}

fn sum_step(lhs: (&str, &str), terms: &Terms, bias: Option<f64>, result: f64, tail: &str) -> Step {
    let shown = terms.shown.len();
    let mut t: Vec<String> = terms
        .shown
        .iter()
        .map(|(a, b)| format!("{}*{}", paren(*a), paren(*b)))
        .collect();
    let mut l: Vec<String> = terms
        .shown
        .iter()
        .map(|(a, b)| format!("{} \\cdot {}", paren(*a), paren(*b)))
        .collect();
    if terms.total > shown {
        let rest = terms.total - shown;
        t.push(format!("… ({rest} more products)"));
        l.push(format!("\\ldots\\ (\\text{{{rest} more}})"));
    }
    if let Some(b) = bias {
        t.push(paren(b));
        l.push(paren(b));
    }
    if t.is_empty() {
        t.push("0".into());
        l.push("0".into());
    }
    let r = fmt_num(result);
    Step::new(
        format!("{} = {} = {r}{tail}", lhs.0, t.join(" + ")),
        format!("{} = {} = {r}", lhs.1, l.join(" + ")),
    )
}

fn note(text: impl Into<String>) -> Step {
    let t: String = text.into();
    let l = format!("\\text{{{}}}", t.replace('_', "\\_"));
    Step::new(t, l)
}

fn omitted(total: usize, cap: usize, what: &str) -> Option<Step> {
    (total > cap).then(|| {
        note(format!(
            "… {} more {what} not shown (step cap {cap} per layer)",
            total - cap
        ))
    })
}

fn act_tail(act: Option<Activation>, z: f64, a: f64) -> String {
    match act {
        Some(act) if act != Activation::Linear && !matches!(act, Activation::Softmax { .. }) => {
            format!("; a = {}", act.explain(z, a).0)
        }
        _ => String::new(),
    }
}

/// Forward steps of layer `i`.
pub(super) fn forward_steps(
    net: &Network,
    i: usize,
    params: &ParamSet,
    x: &Tensor,
    lt: &LayerTrace,
    cap: usize,
) -> Vec<Step> {
    let layer = &net.layers[i];
    let mut steps = Vec::new();
    match &layer.op {
        Op::Dense { in_f, out_f, act } => {
            steps.push(note(format!(
                "dense: z_j = Σ_i W[j, i]*x_i + b_j over {in_f} inputs for each of {out_f} outputs{}",
                if *act != Activation::Linear { format!(", then a = {}(z)", act.name()) } else { String::new() }
            )));
            let w = net.dense_weight(layer, params);
            let b = layer.has_bias.then(|| &params.params[layer.params[1]].data);
            let pre = lt.pre.as_ref().unwrap_or(&lt.out);
            let total = pre.len();
            for flat in 0..total.min(cap) {
                let (r, j) = (flat / out_f, flat % out_f);
                let terms = Terms::first(*in_f, |k| (w[j * in_f + k], x.data()[r * in_f + k]));
                let idx = unravel(flat, pre.shape());
                let z = pre.data()[flat];
                let lhs = format!("z{}", label(net, &idx));
                let llhs = latex_label(net, "z", &idx);
                steps.push(sum_step(
                    (&lhs, &llhs),
                    &terms,
                    b.map(|b| b[j]),
                    z,
                    &act_tail(Some(*act), z, lt.out.data()[flat]),
                ));
            }
            steps.extend(omitted(total, cap, "outputs"));
            if let Activation::Softmax { .. } = act {
                steps.push(note(format!(
                    "a = softmax(z): a_i = e^(z_i) / Σ_j e^(z_j) → {}",
                    brief(&lt.out, cap)
                )));
            }
        }
        Op::Conv { two_d, act, .. } => {
            let Some(g) = lt.conv else { return steps };
            steps.push(note(format!(
                "{}: y[o, i, j] = Σ_c Σ_a Σ_b w[o, c, a, b]*x[c, i*{} + a*{} - {}, j*{} + b*{} - {}] + bias[o] \
                 (cross-correlation; padded positions are 0); output {}x{} per channel, {} channels",
                layer.kind, g.sh, g.dh, g.pad[0], g.sw, g.dw, g.pad[2], g.oh, g.ow, g.cout
            )));
            let xc = net.to_nchw(x, *two_d);
            let wc = net.conv_weight(layer, params, *two_d);
            let b = layer.has_bias.then(|| &params.params[layer.params[1]].data);
            let cin_g = g.cin / g.groups;
            let cout_g = g.cout / g.groups;
            let pre = lt.pre.as_ref().unwrap_or(&lt.out);
            let pre_c = net.to_nchw(pre, *two_d);
            let out_c = net.to_nchw(&lt.out, *two_d);
            let total = pre_c.len();
            for flat in 0..total.min(cap) {
                let [n, oc, oy, ox] =
                    <[usize; 4]>::try_from(unravel(flat, &[g.n, g.cout, g.oh, g.ow]))
                        .unwrap_or([0; 4]);
                let grp = oc / cout_g;
                let mut terms = Terms::default();
                for icg in 0..cin_g {
                    let ic = grp * cin_g + icg;
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            if let (Some(iy), Some(ix)) = (g.in_y(oy, ki), g.in_x(ox, kj)) {
                                terms.push((
                                    wc[((oc * cin_g + icg) * g.kh + ki) * g.kw + kj],
                                    xc.data()[((n * g.cin + ic) * g.h + iy) * g.w + ix],
                                ));
                            }
                        }
                    }
                }
                let idx = user_idx(net, *two_d, n, oc, oy, ox);
                let z = pre_c.data()[flat];
                let lhs = format!("z{}", label(net, &idx));
                let llhs = latex_label(net, "z", &idx);
                steps.push(sum_step(
                    (&lhs, &llhs),
                    &terms,
                    b.map(|b| b[oc]),
                    z,
                    &act_tail(Some(*act), z, out_c.data()[flat]),
                ));
            }
            steps.extend(omitted(total, cap, "outputs"));
        }
        Op::Pool {
            two_d,
            max,
            zero_pad,
            count_include_pad,
            ..
        } => {
            let Some(g) = lt.pool else { return steps };
            steps.push(note(format!(
                "{}: window {}x{}, stride {}x{}, padding [top {}, bottom {}, left {}, right {}]{}; output {}x{}",
                layer.kind,
                g.kh,
                g.kw,
                g.sh,
                g.sw,
                g.pad[0],
                g.pad[1],
                g.pad[2],
                g.pad[3],
                if *max {
                    if *zero_pad { ", padded positions count as 0" } else { ", padded positions are -inf (never win)" }
                } else {
                    ""
                },
                g.oh,
                g.ow
            )));
            let xc = net.to_nchw(x, *two_d);
            let out_c = net.to_nchw(&lt.out, *two_d);
            let total = out_c.len();
            let mut win = Vec::new();
            for flat in 0..total.min(cap) {
                let [n, c, oy, ox] = <[usize; 4]>::try_from(unravel(flat, &[g.n, g.c, g.oh, g.ow]))
                    .unwrap_or([0; 4]);
                g.window(n * g.c + c, oy, ox, &mut win);
                let vals: Vec<String> = win
                    .iter()
                    .filter_map(|&k| {
                        if k == PAD_INDEX {
                            (*zero_pad || (!*max && *count_include_pad))
                                .then(|| "pad 0".to_string())
                        } else {
                            Some(fmt_num(xc.data()[k]))
                        }
                    })
                    .collect();
                let idx = user_idx(net, *two_d, n, c, oy, ox);
                let v = out_c.data()[flat];
                let body = if *max {
                    format!("max({})", vals.join(", "))
                } else {
                    format!("({})/{}", vals.join(" + "), vals.len())
                };
                let t = format!("y{} = {body} = {}", label(net, &idx), fmt_num(v));
                let l = format!(
                    "{} = {} = {}",
                    latex_label(net, "y", &idx),
                    body.replace("max", "\\max"),
                    fmt_num(v)
                );
                steps.push(Step::new(t, l));
            }
            steps.extend(omitted(total, cap, "outputs"));
        }
        Op::Flatten => {
            let order = match net.layout {
                Layout::Pytorch => "channels first (C, H, W) order",
                Layout::Keras => "channels last (H, W, C) order",
            };
            steps.push(note(format!(
                "flatten: {:?} → {:?}, elements kept in row-major {order}",
                x.shape(),
                lt.out.shape()
            )));
        }
        Op::Dropout => steps.push(note(
            "dropout is the identity at inference (no units dropped, no scaling)",
        )),
        Op::Act(act) => {
            if let Activation::Softmax { .. } = act {
                steps.push(note(format!(
                    "softmax: a_i = e^(z_i) / Σ_j e^(z_j) → {}",
                    brief(&lt.out, cap)
                )));
            } else {
                for (flat, (&z, &a)) in x.data().iter().zip(lt.out.data()).enumerate().take(cap) {
                    let idx = unravel(flat, x.shape());
                    let (t, l) = act.explain(z, a);
                    steps.push(Step::new(
                        format!("a{} = {t}", label(net, &idx)),
                        format!("{} = {l}", latex_label(net, "a", &idx)),
                    ));
                }
                steps.extend(omitted(x.len(), cap, "elements"));
            }
        }
        Op::BatchNorm { axis, eps, .. } => {
            let [gm, bt, mu, var] = net.bn_params(layer, params);
            steps.push(note(format!(
                "batch norm (inference): y = γ (x - μ)/sqrt(σ² + ε) + β per channel (axis {axis}), ε = {}",
                fmt_num(*eps)
            )));
            if let Ok((_, len, inner)) = super::activation::axis_split(x.shape(), *axis, "") {
                for flat in 0..x.len().min(cap) {
                    let c = (flat / inner) % len;
                    let idx = unravel(flat, x.shape());
                    let t = format!(
                        "y{} = {}*({} - {})/sqrt({} + {}) + {} = {}",
                        label(net, &idx),
                        fmt_num(gm[c]),
                        fmt_num(x.data()[flat]),
                        paren(mu[c]),
                        fmt_num(var[c]),
                        fmt_num(*eps),
                        paren(bt[c]),
                        fmt_num(lt.out.data()[flat])
                    );
                    steps.push(Step::new(
                        t,
                        format!(
                            "{} = {} \\frac{{{} - {}}}{{\\sqrt{{{} + {}}}}} + {} = {}",
                            latex_label(net, "y", &idx),
                            fmt_num(gm[c]),
                            fmt_num(x.data()[flat]),
                            paren(mu[c]),
                            fmt_num(var[c]),
                            fmt_num(*eps),
                            paren(bt[c]),
                            fmt_num(lt.out.data()[flat])
                        ),
                    ));
                }
                steps.extend(omitted(x.len(), cap, "elements"));
            }
        }
    }
    steps
}

fn brief(t: &Tensor, cap: usize) -> String {
    let shown: Vec<String> = t.data().iter().take(cap).map(|v| fmt_num(*v)).collect();
    if t.len() > cap {
        format!("[{}, … {} more]", shown.join(", "), t.len() - cap)
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// Backward steps of layer `i`.
pub(super) fn backward_steps(
    net: &Network,
    i: usize,
    params: &ParamSet,
    trace: &Trace,
    back: &Backward,
    cap: usize,
) -> Vec<Step> {
    let layer: &Layer = &net.layers[i];
    let lt = &trace.layers[i];
    let x = trace.layer_input(i);
    let g_out = &back.output_grads[i];
    let g_in = if i == 0 {
        &back.input_grad
    } else {
        &back.output_grads[i - 1]
    };
    let mut steps = vec![note(format!(
        "dL/d(output of layer {i}) comes from {}",
        if i + 1 == net.layers.len() {
            "the loss".to_string()
        } else {
            format!("layer {}", i + 1)
        }
    ))];
    let fused = match &layer.op {
        Op::Dense { act, .. } | Op::Conv { act, .. } => Some(*act),
        _ => None,
    };
    // Through the (fused or standalone) activation.
    let act_pair = match (&layer.op, fused, &lt.pre, &back.pre_grads[i]) {
        (_, Some(a), Some(z), Some(gz)) => Some((a, z, gz)),
        (Op::Act(a), _, _, _) => Some((*a, x, g_in)),
        _ => None,
    };
    if let Some((act, z, gz)) = act_pair {
        steps.push(note(format!(
            "through {}: dL/dz = dL/da * f'(z), f'(z) = {}",
            act.name(),
            act.derivative_formula()
        )));
        if !matches!(act, Activation::Softmax { .. }) {
            for flat in 0..z.len().min(cap) {
                let idx = unravel(flat, z.shape());
                let (zv, av, g) = (z.data()[flat], lt.out.data()[flat], g_out.data()[flat]);
                let d = act.derivative(zv, av);
                steps.push(Step::new(
                    format!(
                        "dL/dz{} = {}*{} = {} (z = {}, a = {})",
                        label(net, &idx),
                        paren(g),
                        paren(d),
                        fmt_num(gz.data()[flat]),
                        fmt_num(zv),
                        fmt_num(av)
                    ),
                    format!(
                        "\\frac{{\\partial L}}{{\\partial {}}} = {} \\cdot {} = {}",
                        latex_label(net, "z", &idx),
                        paren(g),
                        paren(d),
                        fmt_num(gz.data()[flat])
                    ),
                ));
            }
            steps.extend(omitted(z.len(), cap, "elements"));
        } else {
            steps.push(note(format!("dL/dz = {}", brief(gz, cap))));
        }
    }
    let gz = back.pre_grads[i].as_ref().unwrap_or(g_out);
    match &layer.op {
        Op::Dense { in_f, out_f, .. } => {
            let rows = x.len() / in_f.max(&1);
            let w = net.dense_weight(layer, params);
            let gw = &back.param_grads[layer.params[0]];
            steps.push(note("dL/dW[j, i] = Σ_rows dL/dz[j]*x[i]; dL/db[j] = Σ_rows dL/dz[j]; dL/dx[i] = Σ_j dL/dz[j]*W[j, i]"));
            let mut count = 0;
            'w: for j in 0..*out_f {
                for k in 0..*in_f {
                    if count == cap {
                        break 'w;
                    }
                    count += 1;
                    let terms =
                        Terms::first(rows, |r| (gz.data()[r * out_f + j], x.data()[r * in_f + k]));
                    let (idx, v) = match net.layout {
                        Layout::Pytorch => ([j, k], gw[j * in_f + k]),
                        Layout::Keras => ([k, j], gw[k * out_f + j]),
                    };
                    let name = if net.layout == Layout::Pytorch {
                        "W"
                    } else {
                        "K"
                    };
                    let lhs = format!("dL/d{name}[{}, {}]", idx[0], idx[1]);
                    let llhs = format!(
                        "\\frac{{\\partial L}}{{\\partial {name}_{{{},{}}}}}",
                        idx[0], idx[1]
                    );
                    steps.push(sum_step((&lhs, &llhs), &terms, None, v, ""));
                }
            }
            steps.extend(omitted(in_f * out_f, cap, "weight gradients"));
            if layer.has_bias {
                let gb = &back.param_grads[layer.params[1]];
                for (j, gbj) in gb.iter().enumerate().take(cap) {
                    let parts: Vec<String> =
                        (0..rows).map(|r| paren(gz.data()[r * out_f + j])).collect();
                    steps.push(Step::new(
                        format!("dL/db[{j}] = {} = {}", parts.join(" + "), fmt_num(*gbj)),
                        format!(
                            "\\frac{{\\partial L}}{{\\partial b_{{{j}}}}} = {} = {}",
                            parts.join(" + "),
                            fmt_num(*gbj)
                        ),
                    ));
                }
                steps.extend(omitted(*out_f, cap, "bias gradients"));
            }
            for flat in 0..x.len().min(cap) {
                let (r, k) = (flat / in_f, flat % in_f);
                let terms = Terms::first(*out_f, |j| (gz.data()[r * out_f + j], w[j * in_f + k]));
                let idx = unravel(flat, x.shape());
                let lhs = format!("dL/dx{}", label(net, &idx));
                let llhs = format!(
                    "\\frac{{\\partial L}}{{\\partial {}}}",
                    latex_label(net, "x", &idx)
                );
                steps.push(sum_step((&lhs, &llhs), &terms, None, g_in.data()[flat], ""));
            }
            steps.extend(omitted(x.len(), cap, "input gradients"));
        }
        Op::Conv { two_d, .. } => {
            let Some(g) = lt.conv else { return steps };
            let xc = net.to_nchw(x, *two_d);
            let gzc = net.to_nchw(gz, *two_d);
            let gxc = net.to_nchw(g_in, *two_d);
            let wc = net.conv_weight(layer, params, *two_d);
            let (cin_g, cout_g) = (g.cin / g.groups, g.cout / g.groups);
            steps.push(note(
                "dL/dw[o, c, a, b] = Σ_(n, i, j) dL/dz[n, o, i, j]*x[n, c, i*s + a*d - p, j*s + b*d - p]; \
                 dL/dbias[o] = Σ dL/dz[n, o, :, :]; dL/dx = Σ over every output whose window covers x of dL/dz*w",
            ));
            let wlen = wc.len();
            for flat in 0..wlen.min(cap) {
                let [oc, icg, ki, kj] =
                    <[usize; 4]>::try_from(unravel(flat, &[g.cout, cin_g, g.kh, g.kw]))
                        .unwrap_or([0; 4]);
                let ic = (oc / cout_g) * cin_g + icg;
                // Products over the valid positions: listed up to MAX_TERMS,
                // counted as (valid rows) x (valid columns) x batch.
                let ys: Vec<(usize, usize)> = (0..g.oh)
                    .filter_map(|oy| g.in_y(oy, ki).map(|iy| (oy, iy)))
                    .collect();
                let xs: Vec<(usize, usize)> = (0..g.ow)
                    .filter_map(|ox| g.in_x(ox, kj).map(|ix| (ox, ix)))
                    .collect();
                let mut terms = Terms::default();
                'collect: for n in 0..g.n {
                    for &(oy, iy) in &ys {
                        for &(ox, ix) in &xs {
                            if terms.shown.len() == MAX_TERMS {
                                break 'collect;
                            }
                            terms.push((
                                gzc.data()[((n * g.cout + oc) * g.oh + oy) * g.ow + ox],
                                xc.data()[((n * g.cin + ic) * g.h + iy) * g.w + ix],
                            ));
                        }
                    }
                }
                terms.total = g.n * ys.len() * xs.len();
                let widx = match (net.layout, *two_d) {
                    (Layout::Pytorch, true) => vec![oc, icg, ki, kj],
                    (Layout::Pytorch, false) => vec![oc, icg, kj],
                    (Layout::Keras, true) => vec![ki, kj, icg, oc],
                    (Layout::Keras, false) => vec![kj, icg, oc],
                };
                let s: Vec<String> = widx.iter().map(|v| v.to_string()).collect();
                let lhs = format!("dL/dw[{}]", s.join(", "));
                let llhs = format!("\\frac{{\\partial L}}{{\\partial w_{{{}}}}}", s.join(","));
                let val = grad_at(
                    &back.param_grads[layer.params[0]],
                    &params.params[layer.params[0]].shape,
                    &widx,
                );
                steps.push(sum_step((&lhs, &llhs), &terms, None, val, ""));
            }
            steps.extend(omitted(wlen, cap, "weight gradients"));
            if layer.has_bias {
                let gb = &back.param_grads[layer.params[1]];
                for (oc, v) in gb.iter().enumerate().take(cap) {
                    steps.push(Step::new(
                        format!("dL/dbias[{oc}] = sum of the {} entries of dL/dz in channel {oc} = {}", g.n * g.oh * g.ow, fmt_num(*v)),
                        format!("\\frac{{\\partial L}}{{\\partial b_{{{oc}}}}} = \\sum_{{n,i,j}} \\delta_{{n,{oc},i,j}} = {}", fmt_num(*v)),
                    ));
                }
                steps.extend(omitted(gb.len(), cap, "bias gradients"));
            }
            let total = gxc.len();
            for flat in 0..total.min(cap) {
                let [n, ic, iy, ix] =
                    <[usize; 4]>::try_from(unravel(flat, &[g.n, g.cin, g.h, g.w]))
                        .unwrap_or([0; 4]);
                let grp = ic / cin_g;
                let icg = ic % cin_g;
                let mut terms = Terms::default();
                for oc in grp * cout_g..(grp + 1) * cout_g {
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let (Some(ny), Some(nx)) = (
                                (iy + g.pad[0]).checked_sub(ki * g.dh),
                                (ix + g.pad[2]).checked_sub(kj * g.dw),
                            ) else {
                                continue;
                            };
                            if ny % g.sh != 0
                                || nx % g.sw != 0
                                || ny / g.sh >= g.oh
                                || nx / g.sw >= g.ow
                            {
                                continue;
                            }
                            terms.push((
                                gzc.data()
                                    [((n * g.cout + oc) * g.oh + ny / g.sh) * g.ow + nx / g.sw],
                                wc[((oc * cin_g + icg) * g.kh + ki) * g.kw + kj],
                            ));
                        }
                    }
                }
                let idx = user_idx(net, *two_d, n, ic, iy, ix);
                let lhs = format!("dL/dx{}", label(net, &idx));
                let llhs = format!(
                    "\\frac{{\\partial L}}{{\\partial {}}}",
                    latex_label(net, "x", &idx)
                );
                steps.push(sum_step((&lhs, &llhs), &terms, None, gxc.data()[flat], ""));
            }
            steps.extend(omitted(total, cap, "input gradients"));
        }
        Op::Pool { two_d, max, .. } => {
            let Some(g) = lt.pool else { return steps };
            let gzc = net.to_nchw(g_out, *two_d);
            let total = gzc.len();
            if *max {
                steps.push(note(
                    "max pooling routes each dL/dy to the element that won its window (ties: the first in row-major \
                     order, as PyTorch); every other element gets 0",
                ));
            } else {
                steps.push(note("average pooling shares each dL/dy equally: every element of the window gets dL/dy / divisor"));
            }
            let mut win = Vec::new();
            for flat in 0..total.min(cap) {
                let [n, c, oy, ox] = <[usize; 4]>::try_from(unravel(flat, &[g.n, g.c, g.oh, g.ow]))
                    .unwrap_or([0; 4]);
                let yl = label(net, &user_idx(net, *two_d, n, c, oy, ox));
                let gv = gzc.data()[flat];
                let t = if *max {
                    match lt.argmax.get(flat) {
                        Some(&k) if k != PAD_INDEX => {
                            let [_, _, iy, ix] =
                                <[usize; 4]>::try_from(unravel(k, &[g.n, g.c, g.h, g.w]))
                                    .unwrap_or([0; 4]);
                            format!(
                                "dL/dy{yl} = {} → x{}",
                                fmt_num(gv),
                                label(net, &user_idx(net, *two_d, n, c, iy, ix))
                            )
                        }
                        _ => format!(
                            "dL/dy{yl} = {} → a zero pad won this window: the gradient is dropped",
                            fmt_num(gv)
                        ),
                    }
                } else {
                    g.window(n * g.c + c, oy, ox, &mut win);
                    let real = win.iter().filter(|&&k| k != PAD_INDEX).count();
                    let d = if let Op::Pool {
                        count_include_pad: true,
                        ..
                    } = layer.op
                    {
                        g.kh * g.kw
                    } else {
                        real
                    };
                    format!(
                        "dL/dy{yl} = {} → each of its {real} input elements gets {}/{d} = {}",
                        fmt_num(gv),
                        fmt_num(gv),
                        fmt_num(gv / d.max(1) as f64)
                    )
                };
                steps.push(note(t));
            }
            steps.extend(omitted(total, cap, "output gradients"));
        }
        Op::Flatten => steps.push(note(format!(
            "flatten: the gradient is reshaped back to {:?}",
            x.shape()
        ))),
        Op::Dropout => steps.push(note(
            "dropout (inference): the gradient passes through unchanged",
        )),
        Op::Act(_) => {}
        Op::BatchNorm { axis, eps, .. } => {
            let [gm, _, _, var] = net.bn_params(layer, params);
            steps.push(note(format!(
                "batch norm (inference, axis {axis}): dL/dγ = Σ dL/dy*x̂, dL/dβ = Σ dL/dy, dL/dx = dL/dy*γ/sqrt(σ² + ε)"
            )));
            let ggm = &back.param_grads[layer.params[0]];
            let gbt = &back.param_grads[layer.params[1]];
            for c in 0..gm.len().min(cap) {
                steps.push(note(format!(
                    "channel {c}: dL/dγ = {}, dL/dβ = {}, dL/dx = dL/dy*{}/sqrt({} + {}) = dL/dy*{}",
                    fmt_num(ggm[c]),
                    fmt_num(gbt[c]),
                    fmt_num(gm[c]),
                    fmt_num(var[c]),
                    fmt_num(*eps),
                    fmt_num(gm[c] / (var[c] + eps).sqrt())
                )));
            }
            steps.extend(omitted(gm.len(), cap, "channels"));
        }
    }
    steps
}

fn grad_at(data: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    let strides = crate::compute::tensor::strides_of(shape);
    let off: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
    data.get(off).copied().unwrap_or(0.0)
}
