//! Univariate real polynomials: conversion from an expression, and all real
//! roots by recursive isolation (the roots of p' split the line into
//! intervals on which p is monotonic; each sign change is bisected to full
//! f64 precision).

use super::ast::Expr;

/// Highest degree handled.
pub const MAX_DEGREE: usize = 64;

/// Coefficients `c[0] + c[1] x + ...` of `e` as a polynomial in `var`, if it
/// is one (constants may be any closed expression, divisors must be constant).
pub(crate) fn to_poly(e: &Expr, var: &str) -> Option<Vec<f64>> {
    if !e.depends_on(var) {
        let v = e.eval(&|_| None).ok()?;
        return Some(vec![v]);
    }
    let p = match e {
        Expr::Var(v) if v == var => vec![0.0, 1.0],
        Expr::Add(ts) => {
            let mut acc = vec![0.0];
            for t in ts {
                acc = add(&acc, &to_poly(t, var)?);
            }
            acc
        }
        Expr::Neg(a) => to_poly(a, var)?.iter().map(|c| -c).collect(),
        Expr::Mul { num, den } => {
            let mut acc = vec![1.0];
            for t in num {
                acc = mul(&acc, &to_poly(t, var)?)?;
            }
            for t in den {
                let d = trim(to_poly(t, var)?);
                let &[c] = d.as_slice() else {
                    return None;
                };
                if c == 0.0 {
                    return None;
                }
                acc.iter_mut().for_each(|a| *a /= c);
            }
            acc
        }
        Expr::Pow(b, x) => {
            let Expr::Num(k) = **x else { return None };
            if k < 0.0 || k.fract() != 0.0 || k > MAX_DEGREE as f64 {
                return None;
            }
            let base = to_poly(b, var)?;
            let mut acc = vec![1.0];
            for _ in 0..(k as usize) {
                acc = mul(&acc, &base)?;
            }
            acc
        }
        _ => return None,
    };
    let p = trim(p);
    if p.len() > MAX_DEGREE + 1 {
        return None;
    }
    Some(p)
}

fn trim(mut p: Vec<f64>) -> Vec<f64> {
    while p.len() > 1 && p.last() == Some(&0.0) {
        p.pop();
    }
    p
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).copied().unwrap_or(0.0) + b.get(i).copied().unwrap_or(0.0))
        .collect()
}

fn mul(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    if a.len() + b.len() > MAX_DEGREE + 2 {
        return None;
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if let Some(o) = out.get_mut(i + j) {
                *o += x * y;
            }
        }
    }
    Some(trim(out))
}

/// p(x) by Horner's rule.
pub(crate) fn eval(p: &[f64], x: f64) -> f64 {
    p.iter().rev().fold(0.0, |acc, c| acc * x + c)
}

/// Sum of |c_i| |x|^i: the size of the terms, to judge "p(x) ≈ 0".
fn scale(p: &[f64], x: f64) -> f64 {
    p.iter().rev().fold(0.0, |acc, c| acc * x.abs() + c.abs())
}

fn derivative(p: &[f64]) -> Vec<f64> {
    let d: Vec<f64> = p
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| c * i as f64)
        .collect();
    if d.is_empty() { vec![0.0] } else { d }
}

/// Whether every coefficient is zero.
pub(crate) fn is_zero(p: &[f64]) -> bool {
    p.iter().all(|c| *c == 0.0)
}

/// Replaces a root by a nearby round number (integer or short decimal) when
/// that is at least as good a root.
fn snap(p: &[f64], r: f64) -> f64 {
    let mut best = r;
    let mut best_err = eval(p, r).abs();
    for digits in [0, 3, 6, 9] {
        let f = 10f64.powi(digits);
        let c = (r * f).round() / f;
        let err = eval(p, c).abs();
        if err <= best_err && (c - r).abs() <= 1e-7 * (1.0 + r.abs()) {
            best = c;
            best_err = err;
        }
    }
    if best == 0.0 { 0.0 } else { best }
}

/// All real roots of `p` (ascending, each once); `p` must not be the zero
/// polynomial.
pub(crate) fn real_roots(p: &[f64]) -> Vec<f64> {
    let p = trim(p.to_vec());
    let deg = p.len().saturating_sub(1);
    let lead = p.last().copied().unwrap_or(0.0);
    let c = |i: usize| p.get(i).copied().unwrap_or(0.0);
    let mut roots = match deg {
        0 => Vec::new(),
        1 => vec![-c(0) / c(1)],
        2 => {
            let (a, b, cc) = (c(2), c(1), c(0));
            let disc = b * b - 4.0 * a * cc;
            let tol = 1e-14 * (b * b + (4.0 * a * cc).abs());
            if disc < -tol {
                Vec::new()
            } else if disc <= tol {
                vec![-b / (2.0 * a)]
            } else {
                let q = -0.5 * (b + b.signum() * disc.sqrt());
                if q == 0.0 {
                    // b == 0 and c == 0 cannot give disc > 0; here b == 0.
                    let r = (-cc / a).sqrt();
                    vec![-r, r]
                } else {
                    vec![q / a, cc / q]
                }
            }
        }
        _ => {
            let mut crit = real_roots(&derivative(&p));
            let bound = 1.0
                + p.iter()
                    .take(deg)
                    .map(|x| (x / lead).abs())
                    .fold(0.0, f64::max);
            crit.retain(|x| x.abs() < bound);
            let mut out = Vec::new();
            for &x in &crit {
                if eval(&p, x).abs() <= 1e-12 * scale(&p, x) {
                    out.push(x);
                }
            }
            let mut edges = vec![-bound];
            edges.extend(crit.iter().copied());
            edges.push(bound);
            for w in edges.windows(2) {
                let &[mut l, mut r] = w else { continue };
                let (mut fl, fr) = (eval(&p, l), eval(&p, r));
                if fl * fr >= 0.0 {
                    continue;
                }
                for _ in 0..300 {
                    let m = 0.5 * (l + r);
                    if m <= l || m >= r {
                        break;
                    }
                    let fm = eval(&p, m);
                    if fm == 0.0 {
                        l = m;
                        r = m;
                        break;
                    }
                    if (fm < 0.0) == (fl < 0.0) {
                        l = m;
                        fl = fm;
                    } else {
                        r = m;
                    }
                }
                out.push(0.5 * (l + r));
            }
            out
        }
    };
    let mut roots: Vec<f64> = roots.drain(..).map(|r| snap(&p, r)).collect();
    roots.sort_by(f64::total_cmp);
    roots.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * (1.0 + b.abs()));
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_exam_gradients() {
        assert_eq!(real_roots(&[0.0, -64.0, 0.0, 4.0]), vec![-4.0, 0.0, 4.0]);
        assert_eq!(real_roots(&[0.0, -36.0, 0.0, 4.0]), vec![-3.0, 0.0, 3.0]);
    }

    #[test]
    fn roots_in_general() {
        assert_eq!(real_roots(&[1.0, 0.0, 1.0]), Vec::<f64>::new());
        assert_eq!(real_roots(&[0.0, 0.0, 0.0, 1.0]), vec![0.0]);
        assert_eq!(real_roots(&[-2.0, 0.0, 1.0]).len(), 2);
        // (x-1)^2 (x+2) = x^3 - 3x + 2
        assert_eq!(real_roots(&[2.0, -3.0, 0.0, 1.0]), vec![-2.0, 1.0]);
        // (x - 0.5)(x - 1.5)(x + 2.5)(x - 10)
        let p = [-18.75, 44.375, -9.25, -9.5, 1.0];
        let r = real_roots(&p);
        assert_eq!(r, vec![-2.5, 0.5, 1.5, 10.0]);
        let irrational = real_roots(&[-2.0, 0.0, 0.0, 1.0]);
        assert_eq!(irrational.len(), 1);
        assert!((irrational[0] - 2f64.cbrt()).abs() < 1e-15);
    }
}
