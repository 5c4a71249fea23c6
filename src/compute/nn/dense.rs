//! Fully connected layer on the last axis: `z[r, j] = sum_i x[r, i] W[j, i] + b[j]`
//! with `W` in PyTorch order `(out, in)` (Keras kernels `(in, out)` are
//! transposed by the caller).

/// Forward: `x` is `rows x in_f`, `w` is `out_f x in_f`; returns `rows x out_f`.
pub fn forward(x: &[f64], w: &[f64], b: Option<&[f64]>, in_f: usize, out_f: usize) -> Vec<f64> {
    let rows = x.len() / in_f.max(1);
    let mut z = vec![0.0; rows * out_f];
    for r in 0..rows {
        let xr = &x[r * in_f..(r + 1) * in_f];
        for j in 0..out_f {
            let wj = &w[j * in_f..(j + 1) * in_f];
            let mut s = dot(xr, wj);
            if let Some(b) = b {
                s += b[j];
            }
            z[r * out_f + j] = s;
        }
    }
    z
}

/// Backward: accumulates `gw += gz^T x`, `gb += sum_r gz` and returns `gx = gz W`.
pub fn backward(
    x: &[f64],
    w: &[f64],
    gz: &[f64],
    in_f: usize,
    out_f: usize,
    gw: &mut [f64],
    gb: Option<&mut [f64]>,
) -> Vec<f64> {
    let rows = x.len() / in_f.max(1);
    let mut gx = vec![0.0; rows * in_f];
    for r in 0..rows {
        let xr = &x[r * in_f..(r + 1) * in_f];
        let gxr = &mut gx[r * in_f..(r + 1) * in_f];
        for j in 0..out_f {
            let g = gz[r * out_f + j];
            let wj = &w[j * in_f..(j + 1) * in_f];
            let gwj = &mut gw[j * in_f..(j + 1) * in_f];
            for ((gxv, &wv), (gwv, &xv)) in gxr.iter_mut().zip(wj).zip(gwj.iter_mut().zip(xr)) {
                *gxv += g * wv;
                *gwv += g * xv;
            }
        }
    }
    if let Some(gb) = gb {
        for r in 0..rows {
            for (gbv, &g) in gb.iter_mut().zip(&gz[r * out_f..(r + 1) * out_f]) {
                *gbv += g;
            }
        }
    }
    gx
}

/// Dot product with four partial sums (lets the compiler vectorize).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_small() {
        // x = [1, 2], W = [[0.5, -1], [2, 0]], b = [0.1, -0.2]
        let x = [1.0, 2.0];
        let w = [0.5, -1.0, 2.0, 0.0];
        let b = [0.1, -0.2];
        let z = forward(&x, &w, Some(&b), 2, 2);
        assert!((z[0] - (-1.4)).abs() < 1e-15);
        assert!((z[1] - 1.8).abs() < 1e-15);
        let mut gw = [0.0; 4];
        let mut gb = [0.0; 2];
        let gx = backward(&x, &w, &[1.0, -2.0], 2, 2, &mut gw, Some(&mut gb));
        assert_eq!(gw, [1.0, 2.0, -2.0, -4.0]);
        assert_eq!(gb, [1.0, -2.0]);
        assert_eq!(gx, vec![0.5 - 4.0, -1.0]);
    }

    #[test]
    fn dot_handles_remainders() {
        let a: Vec<f64> = (0..7).map(f64::from).collect();
        assert_eq!(dot(&a, &a), 91.0);
    }
}
