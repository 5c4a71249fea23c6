//! 2-D cross-correlation (what every framework calls convolution) on NCHW
//! buffers with weights `(out, in/groups, kh, kw)`; stride, asymmetric zero
//! padding, dilation and groups. 1-D convolutions run as 2-D with height 1.
//!
//! The loops are written over contiguous rows: for stride 1 the innermost loop
//! is an `axpy`/`dot` over a row slice, which the compiler vectorizes.

use super::dense::dot;

/// Shapes and hyper-parameters of one convolution, with the output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub groups: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Padding: top, bottom, left, right.
    pub pad: [usize; 4],
    pub oh: usize,
    pub ow: usize,
}

/// Output length of a sliding window: `floor((n + p0 + p1 - d(k-1) - 1)/s) + 1`,
/// `None` when the window does not fit.
pub fn out_len(n: usize, p0: usize, p1: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let padded = n.checked_add(p0)?.checked_add(p1)?;
    let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    if s == 0 || padded < span {
        return None;
    }
    Some((padded - span) / s + 1)
}

impl ConvGeom {
    /// Multiply-adds of the forward pass.
    pub fn mult_adds(&self) -> u64 {
        let cin_g = (self.cin / self.groups.max(1)) as u64;
        (self.n * self.cout * self.oh * self.ow) as u64 * cin_g * (self.kh * self.kw) as u64
    }

    /// Input row of output row `oy` under kernel row `ki`, if inside the input.
    pub fn in_y(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.sh + ki * self.dh)
            .checked_sub(self.pad[0])
            .filter(|&y| y < self.h)
    }

    /// Input column of output column `ox` under kernel column `kj`, if inside.
    pub fn in_x(&self, ox: usize, kj: usize) -> Option<usize> {
        (ox * self.sw + kj * self.dw)
            .checked_sub(self.pad[2])
            .filter(|&x| x < self.w)
    }

    /// Output columns `lo..hi` whose input column under kernel column `kj` is inside.
    fn ox_range(&self, kj: usize) -> (usize, usize) {
        let shift = kj * self.dw;
        let pl = self.pad[2];
        let lo = if pl > shift {
            (pl - shift).div_ceil(self.sw)
        } else {
            0
        };
        let hi = if self.w + pl <= shift {
            0
        } else {
            ((self.w - 1 + pl - shift) / self.sw + 1).min(self.ow)
        };
        (lo.min(hi), hi)
    }

    fn cin_g(&self) -> usize {
        self.cin / self.groups
    }

    fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
}

/// One kernel tap of a block of output rows: the input row, the kernel column
/// and the weight for each output channel of the block.
struct Tap<'a, const OCB: usize> {
    row: &'a [f64],
    kj: usize,
    w: [f64; OCB],
}

/// Forward pass: returns the `(n, cout, oh, ow)` output buffer. Output
/// channels are processed up to four at a time so each input load feeds
/// several multiply-adds.
///
/// On x86-64 CPUs with AVX2 the same code is compiled a second time with
/// 256-bit vectors and chosen at run time. No FMA contraction is enabled, so
/// both versions round every product and sum identically.
pub fn forward(g: &ConvGeom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `forward_avx2` only requires AVX2, detected on this CPU just above.
        return unsafe { forward_avx2(g, x, w, b) };
    }
    forward_impl(g, x, w, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(g: &ConvGeom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    forward_impl(g, x, w, b)
}

#[inline(always)]
fn forward_impl(g: &ConvGeom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let cout_g = g.cout_g();
    let plane = g.oh * g.ow;
    let mut out = vec![0.0; g.n * g.cout * plane];
    for n in 0..g.n {
        for grp in 0..g.groups {
            let mut oc = grp * cout_g;
            let end = (grp + 1) * cout_g;
            while oc < end {
                let step = match end - oc {
                    1 => {
                        block::<1>(g, x, w, b, n, oc, &mut out);
                        1
                    }
                    2 => {
                        block::<2>(g, x, w, b, n, oc, &mut out);
                        2
                    }
                    3 => {
                        block::<3>(g, x, w, b, n, oc, &mut out);
                        3
                    }
                    _ => {
                        block::<4>(g, x, w, b, n, oc, &mut out);
                        4
                    }
                };
                oc += step;
            }
        }
    }
    out
}

/// Computes output channels `oc0..oc0 + OCB` of sample `n`.
#[inline(always)]
fn block<const OCB: usize>(
    g: &ConvGeom,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    n: usize,
    oc0: usize,
    out: &mut [f64],
) {
    let cin_g = g.cin_g();
    let grp = oc0 / g.cout_g();
    let plane = g.oh * g.ow;
    let ranges: Vec<(usize, usize)> = (0..g.kw).map(|kj| g.ox_range(kj)).collect();
    let lo_all = ranges.iter().map(|r| r.0).max().unwrap_or(0);
    let hi_all = ranges.iter().map(|r| r.1).min().unwrap_or(0).max(lo_all);
    let mut taps: Vec<Tap<OCB>> = Vec::with_capacity(cin_g * g.kh * g.kw);
    let mut rows = vec![0.0f64; OCB * g.ow];
    for oy in 0..g.oh {
        taps.clear();
        for icg in 0..cin_g {
            let ic = grp * cin_g + icg;
            let in_plane = &x[(n * g.cin + ic) * g.h * g.w..(n * g.cin + ic + 1) * g.h * g.w];
            for ki in 0..g.kh {
                let Some(iy) = g.in_y(oy, ki) else { continue };
                let row = &in_plane[iy * g.w..(iy + 1) * g.w];
                for kj in 0..g.kw {
                    let wv: [f64; OCB] = std::array::from_fn(|o| {
                        w[(((oc0 + o) * cin_g + icg) * g.kh + ki) * g.kw + kj]
                    });
                    taps.push(Tap { row, kj, w: wv });
                }
            }
        }
        for o in 0..OCB {
            rows[o * g.ow..(o + 1) * g.ow].fill(b.map_or(0.0, |b| b[oc0 + o]));
        }
        if g.sw == 1 {
            rows_stride1::<OCB>(g, &mut rows, &taps, &ranges, lo_all, hi_all);
        } else {
            for t in &taps {
                let (lo, hi) = ranges[t.kj];
                if lo >= hi {
                    continue;
                }
                let start = lo * g.sw + t.kj * g.dw - g.pad[2];
                for o in 0..OCB {
                    for (k, v) in rows[o * g.ow + lo..o * g.ow + hi].iter_mut().enumerate() {
                        *v += t.w[o] * t.row[start + k * g.sw];
                    }
                }
            }
        }
        for o in 0..OCB {
            let dst = (n * g.cout + oc0 + o) * plane + oy * g.ow;
            out[dst..dst + g.ow].copy_from_slice(&rows[o * g.ow..(o + 1) * g.ow]);
        }
    }
}

/// Accumulates all taps into `OCB` output rows (stride 1): 8 outputs per
/// channel held in registers over the interior, tap by tap at the edges.
#[inline(always)]
fn rows_stride1<const OCB: usize>(
    g: &ConvGeom,
    rows: &mut [f64],
    taps: &[Tap<OCB>],
    ranges: &[(usize, usize)],
    lo_all: usize,
    hi_all: usize,
) {
    const B: usize = 8;
    let ow = g.ow;
    let mut ox = lo_all;
    while ox + B <= hi_all {
        let mut acc = [[0.0f64; B]; OCB];
        for (o, a) in acc.iter_mut().enumerate() {
            a.copy_from_slice(&rows[o * ow + ox..o * ow + ox + B]);
        }
        for t in taps {
            let start = ox + t.kj * g.dw - g.pad[2];
            let src: &[f64; B] = match t.row.get(start..start + B).and_then(|s| s.try_into().ok()) {
                Some(s) => s,
                None => continue,
            };
            for (a, &wv) in acc.iter_mut().zip(&t.w) {
                for i in 0..B {
                    a[i] += wv * src[i];
                }
            }
        }
        for (o, a) in acc.iter().enumerate() {
            rows[o * ow + ox..o * ow + ox + B].copy_from_slice(a);
        }
        ox += B;
    }
    for c in (0..lo_all.min(ow)).chain(ox..ow) {
        for t in taps {
            let (lo, hi) = ranges[t.kj];
            if c >= lo && c < hi {
                let v = t.row[c + t.kj * g.dw - g.pad[2]];
                for (o, &wv) in t.w.iter().enumerate() {
                    rows[o * ow + c] += wv * v;
                }
            }
        }
    }
}

/// Backward pass: given `gy` (n, cout, oh, ow), accumulates weight and bias
/// gradients and returns the input gradient (n, cin, h, w).
pub fn backward(
    g: &ConvGeom,
    x: &[f64],
    w: &[f64],
    gy: &[f64],
    gw: &mut [f64],
    gb: Option<&mut [f64]>,
) -> Vec<f64> {
    weight_grad(g, x, gy, gw);
    if let Some(gb) = gb {
        let plane = g.oh * g.ow;
        for n in 0..g.n {
            for (oc, gbv) in gb.iter_mut().enumerate().take(g.cout) {
                *gbv += gy[(n * g.cout + oc) * plane..(n * g.cout + oc + 1) * plane]
                    .iter()
                    .sum::<f64>();
            }
        }
    }
    match transposed(g) {
        Some(tg) => {
            let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
            let mut wt = vec![0.0; w.len()];
            for oc in 0..g.cout {
                let (grp, ocg) = (oc / cout_g, oc % cout_g);
                for icg in 0..cin_g {
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let src = ((oc * cin_g + icg) * g.kh + ki) * g.kw + kj;
                            let dst = (((grp * cin_g + icg) * cout_g + ocg) * g.kh
                                + (g.kh - 1 - ki))
                                * g.kw
                                + (g.kw - 1 - kj);
                            wt[dst] = w[src];
                        }
                    }
                }
            }
            forward(&tg, gy, &wt, None)
        }
        None => input_grad_generic(g, w, gy),
    }
}

/// For stride 1 (and padding at most the dilated kernel extent) the input
/// gradient is a forward convolution of `gy` with the flipped, transposed
/// filters: the fast row kernel then serves both directions.
fn transposed(g: &ConvGeom) -> Option<ConvGeom> {
    if g.sh != 1 || g.sw != 1 {
        return None;
    }
    let eh = g.dh * (g.kh - 1);
    let ew = g.dw * (g.kw - 1);
    let pad = [
        eh.checked_sub(g.pad[0])?,
        eh.checked_sub(g.pad[1])?,
        ew.checked_sub(g.pad[2])?,
        ew.checked_sub(g.pad[3])?,
    ];
    let tg = ConvGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        groups: g.groups,
        kh: g.kh,
        kw: g.kw,
        sh: 1,
        sw: 1,
        dh: g.dh,
        dw: g.dw,
        pad,
        oh: g.h,
        ow: g.w,
    };
    let fits = out_len(tg.h, pad[0], pad[1], g.kh, 1, g.dh) == Some(g.h)
        && out_len(tg.w, pad[2], pad[3], g.kw, 1, g.dw) == Some(g.w);
    fits.then_some(tg)
}

/// Input gradient by scattering (any stride).
fn input_grad_generic(g: &ConvGeom, w: &[f64], gy: &[f64]) -> Vec<f64> {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let plane = g.oh * g.ow;
    let mut gx = vec![0.0; g.n * g.cin * g.h * g.w];
    let ranges: Vec<(usize, usize)> = (0..g.kw).map(|kj| g.ox_range(kj)).collect();
    for n in 0..g.n {
        for oc in 0..g.cout {
            let grp = oc / cout_g;
            for oy in 0..g.oh {
                let grow = &gy[(n * g.cout + oc) * plane + oy * g.ow
                    ..(n * g.cout + oc) * plane + (oy + 1) * g.ow];
                for icg in 0..cin_g {
                    let ic = grp * cin_g + icg;
                    for ki in 0..g.kh {
                        let Some(iy) = g.in_y(oy, ki) else { continue };
                        let rbase = ((n * g.cin + ic) * g.h + iy) * g.w;
                        let gin_row = &mut gx[rbase..rbase + g.w];
                        let wbase = ((oc * cin_g + icg) * g.kh + ki) * g.kw;
                        for (kj, &(lo, hi)) in ranges.iter().enumerate() {
                            let wv = w[wbase + kj];
                            for ox in lo..hi {
                                gin_row[ox * g.sw + kj * g.dw - g.pad[2]] += wv * grow[ox];
                            }
                        }
                    }
                }
            }
        }
    }
    gx
}

/// Weight gradient: `gw[o, c, a, b] += Σ gy[o, i, j] x[c, i*s + a*d - p, j*s + b*d - p]`
/// (AVX2 build chosen at run time, as for [`forward`]).
fn weight_grad(g: &ConvGeom, x: &[f64], gy: &[f64], gw: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `weight_grad_avx2` only requires AVX2, detected on this CPU just above.
        return unsafe { weight_grad_avx2(g, x, gy, gw) };
    }
    weight_grad_impl(g, x, gy, gw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn weight_grad_avx2(g: &ConvGeom, x: &[f64], gy: &[f64], gw: &mut [f64]) {
    weight_grad_impl(g, x, gy, gw)
}

#[inline(always)]
fn weight_grad_impl(g: &ConvGeom, x: &[f64], gy: &[f64], gw: &mut [f64]) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let plane = g.oh * g.ow;
    let ranges: Vec<(usize, usize)> = (0..g.kw).map(|kj| g.ox_range(kj)).collect();
    let lo_all = ranges.iter().map(|r| r.0).max().unwrap_or(0);
    let hi_all = ranges.iter().map(|r| r.1).min().unwrap_or(0).max(lo_all);
    let fast3 = g.sw == 1 && g.kw == 3 && hi_all > lo_all;
    let mut acc = vec![0.0f64; g.kw];
    let row_of = |n: usize, oc: usize, oy: usize| -> &[f64] {
        let base = (n * g.cout + oc) * plane + oy * g.ow;
        &gy[base..base + g.ow]
    };
    for n in 0..g.n {
        let mut oc = 0;
        while oc < g.cout {
            let grp = oc / cout_g;
            // Two output channels of one group at a time share the input loads.
            let pair = fast3 && oc + 1 < (grp + 1) * cout_g;
            for oy in 0..g.oh {
                let grow = row_of(n, oc, oy);
                for icg in 0..cin_g {
                    let ic = grp * cin_g + icg;
                    for ki in 0..g.kh {
                        let Some(iy) = g.in_y(oy, ki) else { continue };
                        let rbase = ((n * g.cin + ic) * g.h + iy) * g.w;
                        let in_row = &x[rbase..rbase + g.w];
                        let wbase = ((oc * cin_g + icg) * g.kh + ki) * g.kw;
                        let edges = |grow: &[f64], acc: &mut [f64]| {
                            for (kj, &(lo, hi)) in ranges.iter().enumerate() {
                                for ox in (lo..lo_all.min(hi)).chain(hi_all.max(lo)..hi) {
                                    acc[kj] += grow[ox] * in_row[ox + kj * g.dw - g.pad[2]];
                                }
                            }
                        };
                        if pair {
                            let grow2 = row_of(n, oc + 1, oy);
                            let base = lo_all - g.pad[2];
                            let [s0, s1] = dot3x2(
                                &grow[lo_all..hi_all],
                                &grow2[lo_all..hi_all],
                                &in_row[base..],
                                g.dw,
                            );
                            let mut a1 = s1;
                            acc.copy_from_slice(&s0);
                            edges(grow, &mut acc);
                            edges(grow2, &mut a1);
                            let wbase2 = (((oc + 1) * cin_g + icg) * g.kh + ki) * g.kw;
                            for (gv, a) in gw[wbase2..wbase2 + 3].iter_mut().zip(&a1) {
                                *gv += a;
                            }
                        } else if fast3 {
                            let base = lo_all - g.pad[2];
                            let s = dot3(&grow[lo_all..hi_all], &in_row[base..], g.dw);
                            acc.copy_from_slice(&s);
                            edges(grow, &mut acc);
                        } else {
                            for (kj, &(lo, hi)) in ranges.iter().enumerate() {
                                acc[kj] = if lo >= hi {
                                    0.0
                                } else if g.sw == 1 {
                                    let start = lo + kj * g.dw - g.pad[2];
                                    dot(&grow[lo..hi], &in_row[start..start + (hi - lo)])
                                } else {
                                    (lo..hi)
                                        .map(|ox| {
                                            grow[ox] * in_row[ox * g.sw + kj * g.dw - g.pad[2]]
                                        })
                                        .sum()
                                };
                            }
                        }
                        for (gv, a) in gw[wbase..wbase + g.kw].iter_mut().zip(&acc) {
                            *gv += a;
                        }
                    }
                }
            }
            oc += if pair { 2 } else { 1 };
        }
    }
}

/// `[Σ_i a[i] x[i], Σ_i a[i] x[i + d], Σ_i a[i] x[i + 2d]]`, four lanes each.
#[inline(always)]
fn dot3(a: &[f64], x: &[f64], d: usize) -> [f64; 3] {
    let n = a.len();
    let need = n + 2 * d;
    if x.len() < need {
        return [0.0; 3];
    }
    let (x0, x1, x2) = (&x[..n], &x[d..d + n], &x[2 * d..2 * d + n]);
    let mut acc = [[0.0f64; 4]; 3];
    let chunks = n / 4;
    let lanes = a
        .chunks_exact(4)
        .zip(x0.chunks_exact(4))
        .zip(x1.chunks_exact(4))
        .zip(x2.chunks_exact(4));
    for (((av, p0), p1), p2) in lanes {
        for l in 0..4 {
            acc[0][l] += av[l] * p0[l];
            acc[1][l] += av[l] * p1[l];
            acc[2][l] += av[l] * p2[l];
        }
    }
    let mut out = [0.0; 3];
    for k in 0..3 {
        out[k] = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
    }
    for i in chunks * 4..n {
        out[0] += a[i] * x0[i];
        out[1] += a[i] * x1[i];
        out[2] += a[i] * x2[i];
    }
    out
}

/// [`dot3`] for two `a` rows at once (two output channels), sharing the `x` loads.
#[inline(always)]
fn dot3x2(a: &[f64], b: &[f64], x: &[f64], d: usize) -> [[f64; 3]; 2] {
    let n = a.len().min(b.len());
    if x.len() < n + 2 * d {
        return [[0.0; 3]; 2];
    }
    let (a, b) = (&a[..n], &b[..n]);
    let (x0, x1, x2) = (&x[..n], &x[d..d + n], &x[2 * d..2 * d + n]);
    let mut acc = [[[0.0f64; 4]; 3]; 2];
    let lanes = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .zip(x0.chunks_exact(4))
        .zip(x1.chunks_exact(4))
        .zip(x2.chunks_exact(4));
    for ((((av, bv), p0), p1), p2) in lanes {
        for l in 0..4 {
            acc[0][0][l] += av[l] * p0[l];
            acc[0][1][l] += av[l] * p1[l];
            acc[0][2][l] += av[l] * p2[l];
            acc[1][0][l] += bv[l] * p0[l];
            acc[1][1][l] += bv[l] * p1[l];
            acc[1][2][l] += bv[l] * p2[l];
        }
    }
    let mut out = [[0.0; 3]; 2];
    for (o, ac) in out.iter_mut().zip(&acc) {
        for (v, lane) in o.iter_mut().zip(ac) {
            *v = (lane[0] + lane[1]) + (lane[2] + lane[3]);
        }
    }
    for i in (n / 4) * 4..n {
        for (o, r) in out.iter_mut().zip([a, b]) {
            o[0] += r[i] * x0[i];
            o[1] += r[i] * x1[i];
            o[2] += r[i] * x2[i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize, k: usize, s: usize, p: usize, d: usize) -> ConvGeom {
        let oh = out_len(h, p, p, k, s, d).unwrap();
        let ow = out_len(w, p, p, k, s, d).unwrap();
        ConvGeom {
            n: 1,
            cin: 1,
            h,
            w,
            cout: 1,
            groups: 1,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: d,
            dw: d,
            pad: [p; 4],
            oh,
            ow,
        }
    }

    /// Direct definition, for comparison with the row-wise loops.
    fn naive(g: &ConvGeom, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; g.oh * g.ow];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut s = 0.0;
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        if let (Some(iy), Some(ix)) = (g.in_y(oy, ki), g.in_x(ox, kj)) {
                            s += w[ki * g.kw + kj] * x[iy * g.w + ix];
                        }
                    }
                }
                out[oy * g.ow + ox] = s;
            }
        }
        out
    }

    #[test]
    fn matches_naive_definition_for_many_geometries() {
        let x: Vec<f64> = (0..42).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
        let w: Vec<f64> = (0..9).map(|i| (i as f64) * 0.5 - 2.0).collect();
        for s in 1..=3 {
            for p in 0..=2 {
                for d in 1..=2 {
                    let g = geom(6, 7, 3, s, p, d);
                    assert_eq!(
                        forward(&g, &x, &w, None),
                        naive(&g, &x, &w),
                        "s={s} p={p} d={d}"
                    );
                }
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let g = geom(5, 5, 3, 2, 1, 1);
        let x: Vec<f64> = (0..25).map(|i| (i as f64 * 0.37).sin()).collect();
        let w: Vec<f64> = (0..9).map(|i| (i as f64 * 0.91).cos()).collect();
        let gy: Vec<f64> = (0..g.oh * g.ow).map(|i| 1.0 + i as f64 * 0.1).collect();
        let mut gw = vec![0.0; 9];
        let mut gb = vec![0.0; 1];
        let gx = backward(&g, &x, &w, &gy, &mut gw, Some(&mut gb));
        let f = |x: &[f64], w: &[f64]| -> f64 {
            forward(&g, x, w, None)
                .iter()
                .zip(&gy)
                .map(|(a, b)| a * b)
                .sum()
        };
        for k in 0..9 {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[k] += 1e-6;
            wm[k] -= 1e-6;
            assert!(((f(&x, &wp) - f(&x, &wm)) / 2e-6 - gw[k]).abs() < 1e-6);
        }
        for k in 0..25 {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[k] += 1e-6;
            xm[k] -= 1e-6;
            assert!(((f(&xp, &w) - f(&xm, &w)) / 2e-6 - gx[k]).abs() < 1e-6);
        }
        assert!((gb[0] - gy.iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn fast_paths_match_generic_scatter() {
        // stride 1 (transposed-forward input gradient, dot3 weight gradient),
        // groups, dilation and asymmetric padding, against the scatter form.
        for (d, pad, groups) in [
            (1, [1, 1, 1, 1], 1),
            (2, [2, 0, 1, 2], 2),
            (1, [0, 0, 0, 0], 2),
        ] {
            let (h, w, k) = (7, 9, 3);
            let oh = out_len(h, pad[0], pad[1], k, 1, d).unwrap();
            let ow = out_len(w, pad[2], pad[3], k, 1, d).unwrap();
            let g = ConvGeom {
                n: 2,
                cin: 4,
                h,
                w,
                cout: 2,
                groups,
                kh: k,
                kw: k,
                sh: 1,
                sw: 1,
                dh: d,
                dw: d,
                pad,
                oh,
                ow,
            };
            let x: Vec<f64> = (0..2 * 4 * h * w)
                .map(|i| (i as f64 * 0.37).sin())
                .collect();
            let wt: Vec<f64> = (0..2 * (4 / groups) * 9)
                .map(|i| (i as f64 * 0.91).cos())
                .collect();
            let gy: Vec<f64> = (0..2 * 2 * oh * ow)
                .map(|i| (i as f64 * 0.13).cos())
                .collect();
            let mut gw = vec![0.0; wt.len()];
            let gx = backward(&g, &x, &wt, &gy, &mut gw, None);
            assert!(transposed(&g).is_some());
            let gx_ref = input_grad_generic(&g, &wt, &gy);
            for (a, b) in gx.iter().zip(&gx_ref) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b}");
            }
            // weight gradient = d/dw of <forward(x, w), gy>
            for kidx in 0..wt.len() {
                let (mut wp, mut wm) = (wt.clone(), wt.clone());
                wp[kidx] += 1e-6;
                wm[kidx] -= 1e-6;
                let f = |w: &[f64]| -> f64 {
                    forward(&g, &x, w, None)
                        .iter()
                        .zip(&gy)
                        .map(|(a, b)| a * b)
                        .sum()
                };
                assert!(((f(&wp) - f(&wm)) / 2e-6 - gw[kidx]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn out_len_formula() {
        assert_eq!(out_len(26, 1, 1, 7, 3, 1), Some(8));
        assert_eq!(out_len(256, 0, 0, 11, 4, 1), Some(62));
        assert_eq!(out_len(2, 0, 0, 5, 1, 1), None);
    }
}
