//! Output-size arithmetic of sliding windows (convolution, pooling,
//! transposed convolution) along one spatial axis, with worked steps.

use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::model::{CeilModeRule, OutputPaddingRule, SamePadding};
use crate::compute::steps::Step;

/// The geometry of a window along one axis, as resolved for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisWindow {
    /// Input size `n`.
    pub n: u64,
    /// Kernel size `k`.
    pub k: u64,
    /// Stride `s`.
    pub s: u64,
    /// Dilation `d`.
    pub d: u64,
    /// Zero padding before (left/top) actually applied.
    pub pad_before: u64,
    /// Zero padding after (right/bottom) actually applied.
    pub pad_after: u64,
    /// Output size.
    pub out: u64,
}

/// Axis names for a spatial rank: `L`; `H, W`; `D, H, W`.
pub fn axis_names(rank: usize) -> &'static [&'static str] {
    match rank {
        1 => &["L"],
        2 => &["H", "W"],
        _ => &["D", "H", "W"],
    }
}

/// LaTeX for the output size of one or more (merged) axes: `H_{out}` or
/// `H_{out} = W_{out}`.
fn out_tex(axis: &str) -> String {
    axis.split(", ")
        .map(|a| format!("{a}_{{out}}"))
        .collect::<Vec<_>>()
        .join(" = ")
}

/// Effective kernel size `d(k-1)+1`.
pub fn effective_kernel(k: u64, d: u64) -> u64 {
    d.saturating_mul(k.saturating_sub(1)).saturating_add(1)
}

/// How padding is specified for [`forward_window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSpec {
    /// Explicit `(before, after)` (`valid` is `(0, 0)`).
    Explicit(u64, u64),
    /// `same` under a rule.
    Same(SamePadding),
}

/// Where a window computation is reported: axis name, layer description for
/// errors, pointer of the blamed field, and whether to write steps.
#[derive(Debug, Clone, Copy)]
pub struct WindowCtx<'a> {
    /// Axis name (`H`, `W`, `L`, `D`).
    pub axis: &'a str,
    /// Layer description, e.g. `layer 3 (Conv2D)`.
    pub what: &'a str,
    /// Pointer of the field blamed on failure.
    pub ptr: &'a str,
    /// Whether to write worked steps.
    pub with_steps: bool,
}

/// Input size, kernel, stride and dilation along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Input size.
    pub n: u64,
    /// Kernel size.
    pub k: u64,
    /// Stride.
    pub s: u64,
    /// Dilation.
    pub d: u64,
}

/// Options of [`forward_window`] beyond the geometry.
#[derive(Debug, Clone, Copy)]
pub struct WindowOpts {
    /// PyTorch `ceil_mode` (pooling).
    pub ceil_mode: bool,
    /// Rule used with `ceil_mode`.
    pub ceil_rule: CeilModeRule,
}

fn k_eff_step(axis: &str, k: u64, d: u64, steps: &mut Vec<Step>, with_steps: bool) -> u64 {
    let ke = effective_kernel(k, d);
    if d > 1 && with_steps {
        steps.push(Step::new(
            format!("{axis}: effective kernel k_eff = d*(k - 1) + 1 = {d}*({k} - 1) + 1 = {ke}"),
            format!("{axis}: k_{{\\mathrm{{eff}}}} = d(k-1)+1 = {d}\\cdot({k}-1)+1 = {ke}"),
        ));
    }
    ke
}

/// Output size of a convolution/pooling window along one axis.
pub fn forward_window(
    cx: &WindowCtx,
    g: Geometry,
    pad: PadSpec,
    opts: WindowOpts,
    steps: &mut Vec<Step>,
) -> ComputeResult<AxisWindow> {
    let (axis, what, ptr, with_steps) = (cx.axis, cx.what, cx.ptr, cx.with_steps);
    let ot = if with_steps {
        out_tex(axis)
    } else {
        String::new()
    };
    let Geometry { n, k, s, d } = g;
    if k == 0 || s == 0 || d == 0 {
        return Err(ComputeError::new(
            ptr,
            format!("{what}: kernel, stride and dilation must be at least 1"),
        ));
    }
    let ke = k_eff_step(axis, k, d, steps, with_steps);
    match pad {
        PadSpec::Same(SamePadding::PyTorch) => {
            if s != 1 {
                return Err(ComputeError::new(
                    ptr,
                    format!(
                        "{what}: padding='same' needs stride 1 in PyTorch (stride is {s}); \
                         set conventions.same_padding to \"keras\" for out = ceil(n/s)"
                    ),
                ));
            }
            let total = ke - 1;
            let before = total / 2;
            let after = total - before;
            if with_steps {
                steps.push(Step::new(
                    format!(
                        "{axis}: padding 'same' (PyTorch, stride 1): total pad = k_eff - 1 = {total} \
                         ({before} before, {after} after), out = n = {n}"
                    ),
                    format!(
                        "{axis}: p_{{\\mathrm{{total}}}} = k_{{\\mathrm{{eff}}}} - 1 = {total},\\; {ot} = {n}"
                    ),
                ));
            }
            Ok(AxisWindow {
                n,
                k,
                s,
                d,
                pad_before: before,
                pad_after: after,
                out: n,
            })
        }
        PadSpec::Same(SamePadding::Keras) => {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + ke).saturating_sub(n);
            let before = total / 2;
            let after = total - before;
            if with_steps {
                steps.push(Step::new(
                    format!(
                        "{axis}: padding 'same' (Keras): out = ceil(n / s) = ceil({n} / {s}) = {out}; \
                         total pad = max((out - 1)*s + k_eff - n, 0) = max(({out} - 1)*{s} + {ke} - {n}, 0) = {total} \
                         ({before} before, {after} after)"
                    ),
                    format!(
                        "{ot} = \\left\\lceil \\frac{{{n}}}{{{s}}} \\right\\rceil = {out},\\; \
                         p_{{\\mathrm{{total}}}} = \\max(({out}-1)\\cdot {s} + {ke} - {n}, 0) = {total}"
                    ),
                ));
            }
            Ok(AxisWindow {
                n,
                k,
                s,
                d,
                pad_before: before,
                pad_after: after,
                out,
            })
        }
        PadSpec::Explicit(pb, pa) => {
            let padded = n + pb + pa;
            let pad_txt = if pb == pa {
                if pb == 0 {
                    String::new()
                } else {
                    format!(" + 2*{pb}")
                }
            } else {
                format!(" + {pb} + {pa}")
            };
            let pad_tex = if pb == pa {
                if pb == 0 {
                    String::new()
                } else {
                    format!(" + 2\\cdot {pb}")
                }
            } else {
                format!(" + {pb} + {pa}")
            };
            if padded < ke {
                return Err(ComputeError::new(
                    ptr,
                    format!(
                        "{what}: along {axis} the kernel (effective size {ke}) is larger than the padded input \
                         ({n}{pad_txt} = {padded})"
                    ),
                ));
            }
            let num = padded - ke;
            let mut out = if opts.ceil_mode {
                num.div_ceil(s) + 1
            } else {
                num / s + 1
            };
            let (fl, fr, tl, tr) = if opts.ceil_mode {
                ("ceil", "", "\\left\\lceil", "\\right\\rceil")
            } else {
                ("floor", "", "\\left\\lfloor", "\\right\\rfloor")
            };
            if with_steps {
                steps.push(Step::new(
                    format!(
                        "{axis}: out = {fl}(({n}{pad_txt} - {ke}) / {s}){fr} + 1 = {fl}({num} / {s}) + 1 = {out}"
                    ),
                    format!(
                        "{ot} = {tl} \\frac{{{n}{pad_tex} - {ke}}}{{{s}}} {tr} + 1 = {out}"
                    ),
                ));
            }
            if opts.ceil_mode
                && opts.ceil_rule == CeilModeRule::LastWindowStartsInside
                && (out - 1) * s >= n + pb
            {
                out -= 1;
                if with_steps {
                    steps.push(Step::new(
                        format!(
                            "{axis}: the last window would start at {} >= n + pad = {}, i.e. in the right padding; \
                             PyTorch drops it: out = {out}",
                            out * s,
                            n + pb
                        ),
                        format!(
                            "{axis}: ({out})\\cdot {s} \\ge {n} + {pb} \\Rightarrow {ot} = {out}"
                        ),
                    ));
                }
            }
            if out == 0 {
                return Err(ComputeError::new(
                    ptr,
                    format!("{what}: output size along {axis} would be 0"),
                ));
            }
            Ok(AxisWindow {
                n,
                k,
                s,
                d,
                pad_before: pb,
                pad_after: pa,
                out,
            })
        }
    }
}

/// Padding of a transposed convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransposedPad {
    /// PyTorch-style explicit `(before, after)` padding removed from the full output.
    Explicit(u64, u64),
    /// Keras `valid`.
    KerasValid,
    /// Keras `same`.
    KerasSame,
}

/// Output size of a transposed convolution along one axis.
pub fn transposed_window(
    cx: &WindowCtx,
    g: Geometry,
    pad: TransposedPad,
    output_padding: Option<u64>,
    rule: OutputPaddingRule,
    steps: &mut Vec<Step>,
) -> ComputeResult<u64> {
    let (axis, what, ptr, with_steps) = (cx.axis, cx.what, cx.ptr, cx.with_steps);
    let ot = if with_steps {
        out_tex(axis)
    } else {
        String::new()
    };
    let Geometry { n, k, s, d } = g;
    if k == 0 || s == 0 || d == 0 || n == 0 {
        return Err(ComputeError::new(
            ptr,
            format!("{what}: sizes, kernel, stride and dilation must be at least 1"),
        ));
    }
    let ke = k_eff_step(axis, k, d, steps, with_steps);
    if let Some(op) = output_padding {
        let ok = match rule {
            OutputPaddingRule::LessThanStrideOrDilation => op < s || op < d,
            OutputPaddingRule::LessThanStride => op < s,
        };
        if !ok {
            let need = match rule {
                OutputPaddingRule::LessThanStrideOrDilation => {
                    format!("smaller than the stride ({s}) or the dilation ({d})")
                }
                OutputPaddingRule::LessThanStride => format!("smaller than the stride ({s})"),
            };
            return Err(ComputeError::new(
                ptr,
                format!("{what}: output_padding {op} along {axis} must be {need}"),
            ));
        }
    }
    let op = output_padding.unwrap_or(0);
    let (out, text, tex) = match (pad, output_padding) {
        (TransposedPad::KerasValid, None) => {
            let extra = ke.saturating_sub(s);
            let out = n * s + extra;
            (
                Some(out),
                format!(
                    "{axis}: out = n*s + max(k_eff - s, 0) = {n}*{s} + max({ke} - {s}, 0) = {out}"
                ),
                format!("{ot} = {n}\\cdot {s} + \\max({ke}-{s},0) = {out}"),
            )
        }
        (TransposedPad::KerasSame, None) => {
            let out = n * s;
            (
                Some(out),
                format!("{axis}: out = n*s = {n}*{s} = {out} (padding 'same')"),
                format!("{ot} = {n}\\cdot {s} = {out}"),
            )
        }
        (TransposedPad::KerasValid, Some(_)) | (TransposedPad::KerasSame, Some(_)) => {
            let p = if pad == TransposedPad::KerasSame {
                ke / 2
            } else {
                0
            };
            let full = (n - 1) * s + ke + op;
            let out = full.checked_sub(2 * p).filter(|o| *o > 0);
            (
                out,
                format!(
                    "{axis}: out = (n - 1)*s + k_eff - 2*p + output_padding = ({n} - 1)*{s} + {ke} - 2*{p} + {op} = {}",
                    out.unwrap_or(0)
                ),
                format!(
                    "{ot} = ({n}-1)\\cdot {s} + {ke} - 2\\cdot {p} + {op} = {}",
                    out.unwrap_or(0)
                ),
            )
        }
        (TransposedPad::Explicit(pb, pa), _) => {
            let full = (n - 1) * s + ke + op;
            let out = full.checked_sub(pb + pa).filter(|o| *o > 0);
            let pad_txt = if pb == pa {
                format!("2*{pb}")
            } else {
                format!("({pb} + {pa})")
            };
            (
                out,
                format!(
                    "{axis}: out = (n - 1)*s - 2*p + d*(k - 1) + output_padding + 1 = ({n} - 1)*{s} - {pad_txt} + {d}*({k} - 1) + {op} + 1 = {}",
                    out.map_or_else(|| "<= 0".to_string(), |o| o.to_string())
                ),
                format!(
                    "{ot} = ({n}-1)\\cdot {s} - {} + {d}\\cdot({k}-1) + {op} + 1 = {}",
                    pad_txt.replace('*', "\\cdot "),
                    out.map_or_else(|| "\\le 0".to_string(), |o| o.to_string())
                ),
            )
        }
    };
    if with_steps {
        steps.push(Step::new(text, tex));
    }
    out.ok_or_else(|| {
        ComputeError::new(
            ptr,
            format!("{what}: output size along {axis} would not be positive (padding too large)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(axis: &'a str, ptr: &'a str) -> WindowCtx<'a> {
        WindowCtx {
            axis,
            what: "layer 0",
            ptr,
            with_steps: true,
        }
    }

    fn fw(n: u64, k: u64, s: u64, d: u64, p: u64, ceil: bool) -> ComputeResult<u64> {
        let mut st = Vec::new();
        forward_window(
            &cx("H", "/layers/0"),
            Geometry { n, k, s, d },
            PadSpec::Explicit(p, p),
            WindowOpts {
                ceil_mode: ceil,
                ceil_rule: CeilModeRule::LastWindowStartsInside,
            },
            &mut st,
        )
        .map(|w| w.out)
    }

    #[test]
    fn conv_output_formula() {
        assert_eq!(fw(26, 7, 3, 1, 1, false), Ok(8));
        assert_eq!(fw(256, 11, 4, 1, 5, false), Ok(64));
        assert_eq!(fw(32, 5, 1, 1, 0, false), Ok(28));
        assert_eq!(fw(7, 3, 1, 2, 0, false), Ok(3));
        assert!(fw(4, 5, 1, 1, 0, false).is_err());
        assert!(fw(3, 3, 1, 2, 0, false).is_err());
    }

    #[test]
    fn ceil_mode_drops_window_starting_in_padding() {
        // n=5, k=2, s=2, p=1: ceil((5+2-2)/2)+1 = 4, last start 6 >= 5+1 -> 3.
        assert_eq!(fw(5, 2, 2, 1, 1, true), Ok(3));
        assert_eq!(fw(5, 2, 2, 1, 0, true), Ok(3));
        assert_eq!(fw(6, 3, 2, 1, 0, true), Ok(3));
        assert_eq!(fw(6, 3, 2, 1, 0, false), Ok(2));
    }

    #[test]
    fn keras_same_is_ceil() {
        let mut st = Vec::new();
        let w = forward_window(
            &cx("W", ""),
            Geometry {
                n: 10,
                k: 3,
                s: 4,
                d: 1,
            },
            PadSpec::Same(SamePadding::Keras),
            WindowOpts {
                ceil_mode: false,
                ceil_rule: CeilModeRule::Plain,
            },
            &mut st,
        );
        assert_eq!(w.map(|w| (w.out, w.pad_before, w.pad_after)), Ok((3, 0, 1)));
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn pytorch_same_rejects_stride() {
        let mut st = Vec::new();
        let r = forward_window(
            &cx("W", "/p"),
            Geometry {
                n: 10,
                k: 3,
                s: 2,
                d: 1,
            },
            PadSpec::Same(SamePadding::PyTorch),
            WindowOpts {
                ceil_mode: false,
                ceil_rule: CeilModeRule::Plain,
            },
            &mut st,
        );
        assert_eq!(r.map_err(|e| e.pointer), Err("/p".to_string()));
    }

    #[test]
    fn transposed_sizes() {
        let mut st = Vec::new();
        let t = |pad, op, st: &mut Vec<Step>| {
            transposed_window(
                &cx("H", ""),
                Geometry {
                    n: 4,
                    k: 4,
                    s: 2,
                    d: 1,
                },
                pad,
                op,
                OutputPaddingRule::LessThanStrideOrDilation,
                st,
            )
        };
        assert_eq!(t(TransposedPad::Explicit(1, 1), None, &mut st), Ok(8));
        assert_eq!(t(TransposedPad::Explicit(1, 1), Some(1), &mut st), Ok(9));
        assert!(t(TransposedPad::Explicit(1, 1), Some(2), &mut st).is_err());
        assert_eq!(t(TransposedPad::KerasValid, None, &mut st), Ok(10));
        assert_eq!(t(TransposedPad::KerasSame, None, &mut st), Ok(8));
    }
}
