//! Receptive fields: size, jump and start of one output unit's input region,
//! tracked per input spatial axis through the layers.
//!
//! Recurrence (one axis): `r_out = r_in + (k_eff - 1) * j_in`,
//! `j_out = j_in * s`, `start_out = start_in + ((k_eff - 1)/2 - p_before) * j_in`,
//! starting from `r = 1`, `j = 1`, `start = 0` (centre of the first pixel, or
//! 0.5 with `receptive_field_origin = "pixel_edge"`). `start` is the centre of
//! the receptive field of the first output unit; unit `u` is centred at
//! `start + u * j`. Layers that mix a whole axis (Flatten, Dense on that axis,
//! global pooling, recurrent layers, softmax, layer norm) make the field the
//! whole input along it; transposed convolutions and adaptive pooling with
//! uneven windows make it position dependent (reported as unknown).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::compute::steps::{Step, fmt_num};

/// Receptive field of one unit of a layer's output in the network input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceptiveField {
    /// Size in input pixels per input spatial axis (the whole input size when
    /// `whole_input`; null when it varies with the output position).
    pub size: Vec<Option<u64>>,
    /// Distance in input pixels between neighbouring output units, per axis
    /// (null when the field is the whole input or irregular).
    pub jump: Vec<Option<f64>>,
    /// Centre of the first output unit's field in input coordinates, per axis
    /// (null when the field is the whole input or irregular).
    pub start: Vec<Option<f64>>,
    /// Whether the field covers the whole input along each axis.
    pub whole_input: Vec<bool>,
}

/// State of one input spatial axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RfDim {
    /// Regular field.
    Finite {
        /// Size in input pixels.
        size: u64,
        /// Jump (input pixels between neighbouring units).
        jump: u64,
        /// Centre of the first unit's field.
        start: f64,
    },
    /// The whole input along this axis.
    Whole,
    /// Depends on the output position.
    Irregular,
}

/// What a layer does to the receptive field.
#[derive(Debug, Clone, PartialEq)]
pub enum RfOp {
    /// Nothing (element-wise, per-channel, dropout).
    Identity,
    /// Windows on tensor axes: `(tensor axis, k_eff, stride, pad_before)`;
    /// the output keeps the tensor's axis layout.
    Window(Vec<(usize, u64, u64, u64)>),
    /// Position-dependent windows on these tensor axes.
    Irregular(Vec<usize>),
    /// Mixes the whole of these tensor axes; `remove` drops them from the
    /// output, otherwise they stay (as size-independent axes).
    Mix {
        /// Tensor axes mixed.
        axes: Vec<usize>,
        /// Whether the axes disappear from the output.
        remove: bool,
    },
    /// Merge tensor axes `from..=to` into one axis.
    Merge(usize, usize),
    /// Every input element reaches every output (recurrent layers).
    All,
    /// A new trailing axis is appended (embedding).
    Append,
}

/// Tracker through the network.
#[derive(Debug, Clone)]
pub struct RfTracker {
    dims: Vec<RfDim>,
    input_sizes: Vec<u64>,
    /// For each current tensor axis, the input spatial axes it follows (more
    /// than one after a Flatten merged them).
    map: Vec<Vec<usize>>,
}

impl RfTracker {
    /// `spatial` = which input tensor axes are spatial (their sizes given).
    pub fn new(rank: usize, spatial: &[(usize, u64)], origin: f64) -> Self {
        let mut map = vec![Vec::new(); rank];
        for (j, (axis, _)) in spatial.iter().enumerate() {
            if let Some(m) = map.get_mut(*axis) {
                m.push(j);
            }
        }
        Self {
            dims: vec![
                RfDim::Finite {
                    size: 1,
                    jump: 1,
                    start: origin,
                };
                spatial.len()
            ],
            input_sizes: spatial.iter().map(|(_, n)| *n).collect(),
            map,
        }
    }

    /// Whether there is anything to report.
    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    fn whole(&mut self, axis: usize) {
        if let Some(js) = self.map.get(axis) {
            for &j in js {
                if let Some(d) = self.dims.get_mut(j) {
                    *d = RfDim::Whole;
                }
            }
        }
    }

    /// The single input axis a tensor axis follows, if exactly one.
    fn single(&self, axis: usize) -> Option<usize> {
        match self.map.get(axis).map(Vec::as_slice) {
            Some([j]) => Some(*j),
            _ => None,
        }
    }

    /// Applies one layer; `out_rank` is the rank of the layer's output.
    pub fn apply(&mut self, op: &RfOp, out_rank: usize) {
        match op {
            RfOp::Identity => {}
            RfOp::Window(axes) => {
                for &(axis, ke, s, pb) in axes {
                    if self.map.get(axis).is_some_and(|js| js.len() > 1) {
                        self.irregular(axis);
                    }
                    if let Some(j) = self.single(axis)
                        && let Some(d) = self.dims.get_mut(j)
                        && let RfDim::Finite { size, jump, start } = *d
                    {
                        *d = RfDim::Finite {
                            size: size.saturating_add((ke - 1).saturating_mul(jump)),
                            jump: jump.saturating_mul(s),
                            start: start + ((ke as f64 - 1.0) / 2.0 - pb as f64) * jump as f64,
                        };
                    }
                }
            }
            RfOp::Irregular(axes) => {
                for &axis in axes {
                    self.irregular(axis);
                }
            }
            RfOp::Mix { axes, remove } => {
                for &a in axes {
                    self.whole(a);
                }
                if *remove {
                    let mut sorted = axes.clone();
                    sorted.sort_unstable();
                    for a in sorted.into_iter().rev() {
                        if a < self.map.len() {
                            self.map.remove(a);
                        }
                    }
                } else {
                    for &a in axes {
                        if let Some(m) = self.map.get_mut(a) {
                            m.clear();
                        }
                    }
                }
            }
            RfOp::Merge(from, to) => {
                // A reshape: every element keeps its field; the merged axis
                // follows all the input axes it came from.
                if *to < self.map.len() && from <= to {
                    let merged: Vec<usize> = self.map[*from..=*to].concat();
                    self.map.splice(*from..=*to, [merged]);
                }
            }
            RfOp::All => {
                for d in &mut self.dims {
                    *d = RfDim::Whole;
                }
                self.map = vec![Vec::new(); out_rank];
            }
            RfOp::Append => self.map.push(Vec::new()),
        }
        self.map.resize(out_rank, Vec::new());
    }

    fn irregular(&mut self, axis: usize) {
        if let Some(js) = self.map.get(axis) {
            for &j in js {
                if let Some(d) = self.dims.get_mut(j)
                    && matches!(d, RfDim::Finite { .. })
                {
                    *d = RfDim::Irregular;
                }
            }
        }
    }

    /// The report for the current state.
    pub fn report(&self) -> ReceptiveField {
        let mut rf = ReceptiveField {
            size: Vec::new(),
            jump: Vec::new(),
            start: Vec::new(),
            whole_input: Vec::new(),
        };
        for (d, n) in self.dims.iter().zip(&self.input_sizes) {
            match *d {
                RfDim::Finite { size, jump, start } => {
                    rf.size.push(Some(size));
                    rf.jump.push(Some(jump as f64));
                    rf.start.push(Some(start));
                    rf.whole_input.push(false);
                }
                RfDim::Whole => {
                    rf.size.push(Some(*n));
                    rf.jump.push(None);
                    rf.start.push(None);
                    rf.whole_input.push(true);
                }
                RfDim::Irregular => {
                    rf.size.push(None);
                    rf.jump.push(None);
                    rf.start.push(None);
                    rf.whole_input.push(false);
                }
            }
        }
        rf
    }

    /// Worked steps for one window layer (call *before* [`RfTracker::apply`]).
    pub fn window_steps(&self, op: &RfOp, names: &[&str]) -> Vec<Step> {
        let mut out = Vec::new();
        let RfOp::Window(axes) = op else {
            return out;
        };
        // Identical axes (same window and same field so far) share one step.
        let state = |axis: usize| self.single(axis).and_then(|j| self.dims.get(j).copied());
        let merged = axes.len() > 1
            && axes.windows(2).all(|w| {
                (w[0].1, w[0].2, w[0].3) == (w[1].1, w[1].2, w[1].3)
                    && state(w[0].0) == state(w[1].0)
            });
        let joined = names.join(", ");
        for (i, &(axis, ke, s, pb)) in axes.iter().enumerate() {
            if merged && i > 0 {
                break;
            }
            let name = if merged {
                joined.as_str()
            } else {
                names.get(i).copied().unwrap_or("?")
            };
            if let Some(j) = self.single(axis)
                && let Some(RfDim::Finite { size, jump, start }) = self.dims.get(j).copied()
            {
                let r = size.saturating_add((ke - 1).saturating_mul(jump));
                let st = start + ((ke as f64 - 1.0) / 2.0 - pb as f64) * jump as f64;
                let (jt, rt, stt) = (jump.to_string(), r.to_string(), fmt_num(st));
                let jn = jump.saturating_mul(s);
                out.push(Step::new(
                    format!(
                        "{name}: receptive field r = r_prev + (k_eff - 1)*j_prev = {size} + ({ke} - 1)*{jt} = {rt}; \
                         jump j = j_prev*s = {jt}*{s} = {}; start = {} + (({ke} - 1)/2 - {pb})*{jt} = {stt}",
                        jn,
                        fmt_num(start)
                    ),
                    format!(
                        "{name}: r = {size} + ({ke}-1)\\cdot {jt} = {rt},\\; j = {jt}\\cdot {s} = {},\\; \
                         \\mathrm{{start}} = {} + \\left(\\tfrac{{{ke}-1}}{{2}} - {pb}\\right)\\cdot {jt} = {stt}",
                        jn,
                        fmt_num(start)
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alexnet_style_recurrence() {
        // conv 11 s4 p5 -> pool 3 s2 -> conv 5 p2: 11, 19, 51.
        let mut t = RfTracker::new(3, &[(1, 256), (2, 256)], 0.0);
        t.apply(&RfOp::Window(vec![(1, 11, 4, 5), (2, 11, 4, 5)]), 3);
        assert_eq!(t.report().size, vec![Some(11), Some(11)]);
        t.apply(&RfOp::Window(vec![(1, 3, 2, 0), (2, 3, 2, 0)]), 3);
        assert_eq!(t.report().size, vec![Some(19), Some(19)]);
        t.apply(&RfOp::Window(vec![(1, 5, 1, 2), (2, 5, 1, 2)]), 3);
        let r = t.report();
        assert_eq!(r.size, vec![Some(51), Some(51)]);
        assert_eq!(r.jump, vec![Some(8.0), Some(8.0)]);
    }

    #[test]
    fn flatten_keeps_field_and_dense_makes_it_whole() {
        let mut t = RfTracker::new(3, &[(1, 32), (2, 32)], 0.0);
        t.apply(&RfOp::Window(vec![(1, 5, 1, 0), (2, 5, 1, 0)]), 3);
        t.apply(&RfOp::Merge(0, 2), 1);
        assert_eq!(t.report().size, vec![Some(5), Some(5)]);
        t.apply(
            &RfOp::Mix {
                axes: vec![0],
                remove: false,
            },
            1,
        );
        let r = t.report();
        assert_eq!(r.size, vec![Some(32), Some(32)]);
        assert_eq!(r.whole_input, vec![true, true]);
    }

    #[test]
    fn start_follows_padding() {
        let mut t = RfTracker::new(2, &[(1, 10)], 0.0);
        t.apply(&RfOp::Window(vec![(1, 3, 2, 1)]), 2);
        assert_eq!(t.report().start, vec![Some(0.0)]);
        t.apply(&RfOp::Window(vec![(1, 3, 1, 0)]), 2);
        assert_eq!(t.report().start, vec![Some(2.0)]);
        assert_eq!(t.report().size, vec![Some(7)]);
    }
}
