//! Activation functions, their derivatives and their worked-step wording.
//!
//! Subgradient conventions (as PyTorch): `relu'(0) = 0`, `leaky_relu'(0) = alpha`,
//! `elu'(0) = alpha` (the negative branch's derivative `alpha * e^0`).

use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::steps::fmt_num;
use crate::compute::tensor::Tensor;

/// An activation with its hyper-parameters resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Identity.
    Linear,
    /// `max(0, z)`.
    Relu,
    /// `z` if `z > 0` else `alpha * z`.
    LeakyRelu { alpha: f64 },
    /// `1 / (1 + e^-z)`.
    Sigmoid,
    /// `tanh(z)`.
    Tanh,
    /// `e^{z_i} / sum_j e^{z_j}` along `axis` (negative counts from the end).
    Softmax { axis: isize },
    /// `z` if `z > 0` else `alpha (e^z - 1)`.
    Elu { alpha: f64 },
    /// `z * Phi(z)` (exact, erf form) or the tanh approximation.
    Gelu { tanh_approx: bool },
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_KAPPA: f64 = 0.044715;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Activation {
    /// Short name used in steps and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax { .. } => "softmax",
            Activation::Elu { .. } => "elu",
            Activation::Gelu { tanh_approx: false } => "gelu",
            Activation::Gelu { tanh_approx: true } => "gelu_tanh",
        }
    }

    /// Applies the activation. Only softmax can fail (axis out of range).
    pub fn forward(&self, z: &Tensor, pointer: &str) -> ComputeResult<Tensor> {
        let mut out = z.clone();
        match *self {
            Activation::Softmax { axis } => {
                let (outer, len, inner) = axis_split(z.shape(), axis, pointer)?;
                softmax_inplace(out.data_mut(), outer, len, inner);
            }
            _ => {
                for v in out.data_mut() {
                    *v = self.scalar(*v);
                }
            }
        }
        Ok(out)
    }

    /// The activation of one number (softmax is not elementwise: identity here).
    pub fn scalar(&self, z: f64) -> f64 {
        match *self {
            Activation::Linear | Activation::Softmax { .. } => z,
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { alpha } => {
                if z > 0.0 {
                    z
                } else {
                    alpha * z
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Elu { alpha } => {
                if z > 0.0 {
                    z
                } else {
                    alpha * z.exp_m1()
                }
            }
            Activation::Gelu { tanh_approx: false } => {
                z * 0.5 * (1.0 + erf(z * std::f64::consts::FRAC_1_SQRT_2))
            }
            Activation::Gelu { tanh_approx: true } => {
                let inner = SQRT_2_OVER_PI * (z + GELU_KAPPA * z * z * z);
                0.5 * z * (1.0 + inner.tanh())
            }
        }
    }

    /// Derivative `f'(z)` for elementwise activations, given `z` and `a = f(z)`.
    pub fn derivative(&self, z: f64, a: f64) -> f64 {
        match *self {
            Activation::Linear | Activation::Softmax { .. } => 1.0,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { alpha } => {
                if z > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Sigmoid => (1.0 - a) * a,
            Activation::Tanh => 1.0 - a * a,
            Activation::Elu { alpha } => {
                if z > 0.0 {
                    1.0
                } else {
                    alpha * z.exp()
                }
            }
            Activation::Gelu { tanh_approx: false } => {
                let cdf = 0.5 * (1.0 + erf(z * std::f64::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * z * z).exp() * INV_SQRT_2PI;
                cdf + z * pdf
            }
            Activation::Gelu { tanh_approx: true } => {
                let x_sq = z * z;
                let inner = SQRT_2_OVER_PI * (z + GELU_KAPPA * x_sq * z);
                let t = inner.tanh();
                let left = 0.5 * z;
                let right = 1.0 + t;
                0.5 * right
                    + left * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_KAPPA * x_sq)
            }
        }
    }

    /// `dL/dz` from `dL/da`, the pre-activation `z` and the output `a`.
    pub fn backward(
        &self,
        z: &Tensor,
        a: &Tensor,
        g: &Tensor,
        pointer: &str,
    ) -> ComputeResult<Tensor> {
        let mut out = g.clone();
        match *self {
            Activation::Softmax { axis } => {
                let (outer, len, inner) = axis_split(z.shape(), axis, pointer)?;
                let ad = a.data();
                let od = out.data_mut();
                for o in 0..outer {
                    for i in 0..inner {
                        let base = o * len * inner + i;
                        let dot: f64 = (0..len)
                            .map(|k| od[base + k * inner] * ad[base + k * inner])
                            .sum();
                        for k in 0..len {
                            let p = base + k * inner;
                            od[p] = ad[p] * (od[p] - dot);
                        }
                    }
                }
            }
            _ => {
                for ((o, &zv), &av) in out.data_mut().iter_mut().zip(z.data()).zip(a.data()) {
                    *o *= self.derivative(zv, av);
                }
            }
        }
        Ok(out)
    }

    /// Worked line for `a = f(z)`: (text, latex).
    pub fn explain(&self, z: f64, a: f64) -> (String, String) {
        let zs = fmt_num(z);
        let as_ = fmt_num(a);
        match *self {
            Activation::Linear => (format!("linear({zs}) = {as_}"), zs.clone()),
            Activation::Relu => (
                format!("relu({zs}) = max(0, {zs}) = {as_}"),
                format!("\\max(0, {zs}) = {as_}"),
            ),
            Activation::LeakyRelu { alpha } => {
                let al = fmt_num(alpha);
                if z > 0.0 {
                    (format!("leaky_relu({zs}) = {zs} (z > 0)"), zs.clone())
                } else {
                    (
                        format!("leaky_relu({zs}) = {al}*{} = {as_}", paren(z)),
                        format!("{al} \\cdot {} = {as_}", paren(z)),
                    )
                }
            }
            Activation::Sigmoid => (
                format!("sigmoid({zs}) = 1/(1 + e^(-{})) = {as_}", paren(z)),
                format!(
                    "\\sigma({zs}) = \\frac{{1}}{{1 + e^{{-{}}}}} = {as_}",
                    paren(z)
                ),
            ),
            Activation::Tanh => (
                format!("tanh({zs}) = {as_}"),
                format!("\\tanh({zs}) = {as_}"),
            ),
            Activation::Softmax { .. } => (format!("softmax -> {as_}"), as_.clone()),
            Activation::Elu { alpha } => {
                let al = fmt_num(alpha);
                if z > 0.0 {
                    (format!("elu({zs}) = {zs} (z > 0)"), zs.clone())
                } else {
                    (
                        format!("elu({zs}) = {al}*(e^{} - 1) = {as_}", paren(z)),
                        format!("{al}(e^{{{zs}}} - 1) = {as_}"),
                    )
                }
            }
            Activation::Gelu { tanh_approx: false } => (
                format!("gelu({zs}) = {zs}*Phi({zs}) = {zs}*0.5*(1 + erf({zs}/sqrt(2))) = {as_}"),
                format!("{zs}\\,\\Phi({zs}) = {as_}"),
            ),
            Activation::Gelu { tanh_approx: true } => (
                format!(
                    "gelu_tanh({zs}) = 0.5*{zs}*(1 + tanh(sqrt(2/pi)*({zs} + 0.044715*{}^3))) = {as_}",
                    paren(z)
                ),
                format!(
                    "\\tfrac12 {zs}\\left(1 + \\tanh\\left(\\sqrt{{2/\\pi}}({zs} + 0.044715 \\cdot {}^3)\\right)\\right) = {as_}",
                    paren(z)
                ),
            ),
        }
    }

    /// Wording of the derivative used in backward steps.
    pub fn derivative_formula(&self) -> &'static str {
        match self {
            Activation::Linear => "1",
            Activation::Relu => "1 if z > 0 else 0 (relu'(0) = 0, as PyTorch)",
            Activation::LeakyRelu { .. } => "1 if z > 0 else alpha",
            Activation::Sigmoid => "a*(1 - a)",
            Activation::Tanh => "1 - a^2",
            Activation::Softmax { .. } => "dL/dz_i = a_i*(dL/da_i - sum_j dL/da_j*a_j)",
            Activation::Elu { .. } => "1 if z > 0 else alpha*e^z",
            Activation::Gelu { tanh_approx: false } => "Phi(z) + z*phi(z)",
            Activation::Gelu { tanh_approx: true } => {
                "0.5*(1 + t) + 0.5*z*(1 - t^2)*sqrt(2/pi)*(1 + 3*0.044715*z^2), t = tanh(sqrt(2/pi)(z + 0.044715 z^3))"
            }
        }
    }
}

/// Formats a number, in parentheses when negative (for products in steps).
pub fn paren(x: f64) -> String {
    if x < 0.0 {
        format!("({})", fmt_num(x))
    } else {
        fmt_num(x)
    }
}

/// Numerically stable logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Splits a shape around `axis` into (outer, axis length, inner) counts.
pub fn axis_split(
    shape: &[usize],
    axis: isize,
    pointer: &str,
) -> ComputeResult<(usize, usize, usize)> {
    let rank = shape.len() as isize;
    let ax = if axis < 0 { axis + rank } else { axis };
    if ax < 0 || ax >= rank {
        return Err(ComputeError::new(
            pointer,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        ));
    }
    let ax = ax as usize;
    let outer = shape[..ax].iter().product();
    let inner = shape[ax + 1..].iter().product();
    Ok((outer, shape[ax], inner))
}

/// Softmax along the middle axis of an (outer, len, inner) view, max-shifted.
pub fn softmax_inplace(d: &mut [f64], outer: usize, len: usize, inner: usize) {
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let m = (0..len)
                .map(|k| d[base + k * inner])
                .fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for k in 0..len {
                let e = (d[base + k * inner] - m).exp();
                d[base + k * inner] = e;
                s += e;
            }
            for k in 0..len {
                d[base + k * inner] /= s;
            }
        }
    }
}

/// The error function, from the everywhere-positive series
/// `erf(x) = 2/sqrt(pi) * e^{-x^2} * sum_n 2^n x^{2n+1} / (1*3*...*(2n+1))`
/// (Abramowitz & Stegun 7.1.6), which has no cancellation; `|erf(x)| = 1` to
/// double precision for `|x| >= 6`.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    if ax >= 6.0 {
        return x.signum();
    }
    let x2 = ax * ax;
    let mut term = ax;
    let mut sum = ax;
    let mut n = 0.0;
    while n < 400.0 {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    let v = std::f64::consts::FRAC_2_SQRT_PI * (-x2).exp() * sum;
    v.min(1.0).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from A&S tables / mpmath.
        let cases = [
            (0.0, 0.0),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.5, -0.966_105_146_475_310_7),
        ];
        for (x, e) in cases {
            assert!((erf(x) - e).abs() < 1e-15, "erf({x}) = {} vs {e}", erf(x));
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let acts = [
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.1 },
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Elu { alpha: 0.7 },
            Activation::Gelu { tanh_approx: false },
            Activation::Gelu { tanh_approx: true },
        ];
        for act in acts {
            for &z in &[-2.3, -0.4, 0.3, 1.7] {
                let h = 1e-6;
                let fd = (act.scalar(z + h) - act.scalar(z - h)) / (2.0 * h);
                let d = act.derivative(z, act.scalar(z));
                assert!((fd - d).abs() < 1e-7, "{act:?} at {z}: {d} vs {fd}");
            }
        }
    }

    #[test]
    fn relu_subgradient_at_zero_is_zero() {
        assert_eq!(Activation::Relu.derivative(0.0, 0.0), 0.0);
        assert_eq!(
            Activation::LeakyRelu { alpha: 0.2 }.derivative(0.0, 0.0),
            0.2
        );
    }

    #[test]
    fn softmax_rows_sum_to_one_and_backward_is_jvp() {
        let z = Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.0, 5.0]).unwrap();
        let act = Activation::Softmax { axis: -1 };
        let a = act.forward(&z, "").unwrap();
        let s: f64 = a.data()[..3].iter().sum();
        assert!((s - 1.0).abs() < 1e-15);
        // d/dz of sum_i g_i a_i via finite differences.
        let g = Tensor::new(vec![2, 3], vec![0.3, -1.0, 2.0, 1.0, 0.5, -0.2]).unwrap();
        let dz = act.backward(&z, &a, &g, "").unwrap();
        for k in 0..6 {
            let mut zp = z.clone();
            zp.data_mut()[k] += 1e-6;
            let mut zm = z.clone();
            zm.data_mut()[k] -= 1e-6;
            let f = |t: &Tensor| -> f64 {
                let a = act.forward(t, "").unwrap();
                a.data().iter().zip(g.data()).map(|(x, y)| x * y).sum()
            };
            let fd = (f(&zp) - f(&zm)) / 2e-6;
            assert!((fd - dz.data()[k]).abs() < 1e-8);
        }
        assert!(Activation::Softmax { axis: 2 }.forward(&z, "/a").is_err());
    }
}
