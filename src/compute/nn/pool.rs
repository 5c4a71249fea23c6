//! Max and average pooling on NCHW buffers (1-D pooling runs with height 1).
//!
//! Max pooling: padded positions hold `-inf` (PyTorch/Keras: padding never
//! wins) or `0` ("zero", as many exam keys assume). Ties route the gradient to
//! the FIRST maximal element in row-major window order, as PyTorch does; when
//! that element is a zero pad, the gradient is dropped.
//! Average pooling: the divisor is the full window (`count_include_pad`, the
//! PyTorch default) or the number of real (non-pad) elements (Keras "same").

/// Shapes and hyper-parameters of one pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
    pub oh: usize,
    pub ow: usize,
}

/// Marks a max-pool argmax that is a padded position.
pub const PAD_INDEX: usize = usize::MAX;

impl PoolGeom {
    pub fn mult_adds(&self) -> u64 {
        (self.n * self.c * self.oh * self.ow) as u64 * (self.kh * self.kw) as u64
    }

    /// Flat input indices of the window of output `(plane, oy, ox)` in
    /// row-major window order; padded positions are [`PAD_INDEX`].
    pub fn window(&self, plane: usize, oy: usize, ox: usize, out: &mut Vec<usize>) {
        out.clear();
        for ki in 0..self.kh {
            let iy = (oy * self.sh + ki)
                .checked_sub(self.pad[0])
                .filter(|&y| y < self.h);
            for kj in 0..self.kw {
                let ix = (ox * self.sw + kj)
                    .checked_sub(self.pad[2])
                    .filter(|&x| x < self.w);
                out.push(match (iy, ix) {
                    (Some(y), Some(x)) => (plane * self.h + y) * self.w + x,
                    _ => PAD_INDEX,
                });
            }
        }
    }
}

/// Max pooling result: outputs and, per output, the flat input index of the
/// routed maximum ([`PAD_INDEX`] for a zero pad).
pub type MaxPooled = (Vec<f64>, Vec<usize>);

/// Max pooling. With `-inf` padding a window made only of padding yields
/// `Err([plane, oy, ox])`.
pub fn max_forward(g: &PoolGeom, x: &[f64], zero_pad: bool) -> Result<MaxPooled, [usize; 3]> {
    let total = g.n * g.c * g.oh * g.ow;
    let mut out = Vec::with_capacity(total);
    let mut arg = Vec::with_capacity(total);
    let mut win = Vec::with_capacity(g.kh * g.kw);
    for plane in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                g.window(plane, oy, ox, &mut win);
                let mut best: Option<(f64, usize)> = None;
                for &idx in &win {
                    let v = if idx == PAD_INDEX {
                        if !zero_pad {
                            continue;
                        }
                        0.0
                    } else {
                        x[idx]
                    };
                    if best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, idx));
                    }
                }
                let Some((v, idx)) = best else {
                    return Err([plane, oy, ox]);
                };
                out.push(v);
                arg.push(idx);
            }
        }
    }
    Ok((out, arg))
}

/// Max pooling backward: routes each output gradient to its argmax.
pub fn max_backward(input_len: usize, arg: &[usize], gy: &[f64]) -> Vec<f64> {
    let mut gx = vec![0.0; input_len];
    for (&idx, &g) in arg.iter().zip(gy) {
        if let Some(slot) = gx.get_mut(idx) {
            *slot += g;
        }
    }
    gx
}

/// Divisor of the average at one output.
pub fn avg_divisor(g: &PoolGeom, win: &[usize], count_include_pad: bool) -> usize {
    if count_include_pad {
        g.kh * g.kw
    } else {
        win.iter().filter(|&&i| i != PAD_INDEX).count()
    }
}

/// Average pooling forward.
pub fn avg_forward(g: &PoolGeom, x: &[f64], count_include_pad: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(g.n * g.c * g.oh * g.ow);
    let mut win = Vec::with_capacity(g.kh * g.kw);
    for plane in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                g.window(plane, oy, ox, &mut win);
                let s: f64 = win.iter().filter(|&&i| i != PAD_INDEX).map(|&i| x[i]).sum();
                let d = avg_divisor(g, &win, count_include_pad).max(1);
                out.push(s / d as f64);
            }
        }
    }
    out
}

/// Average pooling backward: each output gradient is shared equally by the
/// real elements of its window (divided by the same divisor as forward).
pub fn avg_backward(g: &PoolGeom, gy: &[f64], count_include_pad: bool) -> Vec<f64> {
    let mut gx = vec![0.0; g.n * g.c * g.h * g.w];
    let mut win = Vec::with_capacity(g.kh * g.kw);
    let mut k = 0;
    for plane in 0..g.n * g.c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                g.window(plane, oy, ox, &mut win);
                let d = avg_divisor(g, &win, count_include_pad).max(1) as f64;
                let share = gy[k] / d;
                k += 1;
                for &i in &win {
                    if let Some(slot) = gx.get_mut(i) {
                        *slot += share;
                    }
                }
            }
        }
    }
    gx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize, k: usize, s: usize, p: usize) -> PoolGeom {
        PoolGeom {
            n: 1,
            c: 1,
            h,
            w,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            pad: [p; 4],
            oh: (h + 2 * p - k) / s + 1,
            ow: (w + 2 * p - k) / s + 1,
        }
    }

    #[test]
    fn exam_zero_padding_versus_neg_inf() {
        // TUM problem 5: [[0, 0.5], [0.5, -1]] pooled 2x2, stride 2, padding 1.
        let x = [0.0, 0.5, 0.5, -1.0];
        let g = geom(2, 2, 2, 2, 1);
        let (zero, arg) = max_forward(&g, &x, true).unwrap();
        assert_eq!(zero, vec![0.0, 0.5, 0.5, 0.0]);
        // first maximal element of window 0 is the pad at (-1, -1).
        assert_eq!(arg[0], PAD_INDEX);
        let (neg, _) = max_forward(&g, &x, false).unwrap();
        assert_eq!(neg, vec![0.0, 0.5, 0.5, -1.0]);
    }

    #[test]
    fn ties_route_to_first_element() {
        let x = [1.0, 1.0, 0.0, 1.0];
        let g = geom(2, 2, 2, 2, 0);
        let (_, arg) = max_forward(&g, &x, false).unwrap();
        assert_eq!(arg, vec![0]);
        assert_eq!(max_backward(4, &arg, &[3.0]), vec![3.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn average_divisors() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let g = geom(2, 2, 2, 2, 1);
        assert_eq!(avg_forward(&g, &x, true), vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!(avg_forward(&g, &x, false), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(avg_backward(&g, &[4.0, 4.0, 4.0, 4.0], true), vec![1.0; 4]);
    }
}
