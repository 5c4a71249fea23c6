//! Symbolic equivalence by evaluation at random points (like STACK's
//! AlgEquiv, numerically): both expressions are evaluated at `samples` points
//! drawn from a seeded RNG; points where either side is undefined (error,
//! NaN, infinite) are skipped; at least `min_defined` points must remain, and
//! at every one of them `|a - b| <= atol + rtol * max(|a|, |b|)`.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compute::expr::Expr;

use super::number::render_num;

/// Default sampling interval of a variable.
pub const DEFAULT_RANGE: [f64; 2] = [0.5, 2.5];

/// Settings of the equivalence test.
#[derive(Debug, Clone, PartialEq)]
pub struct EquivOptions {
    /// Points drawn.
    pub samples: u32,
    /// Points at which both sides must be defined.
    pub min_defined: u32,
    /// RNG seed.
    pub seed: u64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Sampling interval per variable (others: [`DEFAULT_RANGE`]).
    pub ranges: BTreeMap<String, [f64; 2]>,
}

/// The outcome of the equivalence test.
#[derive(Debug, Clone, PartialEq)]
pub enum Equivalence {
    /// Equal at every defined point.
    Equal {
        /// Points where both sides were defined.
        defined: u32,
    },
    /// Different at a point.
    Different {
        /// The point, e.g. `x = 1.3, y = 0.7`.
        at: String,
        /// The student's value there.
        student: f64,
        /// The key's value there.
        key: f64,
    },
    /// Too few points where both sides are defined.
    Undecided {
        /// Points where both sides were defined.
        defined: u32,
    },
}

/// Compares two expressions numerically.
pub fn equivalent(student: &Expr, key: &Expr, opts: &EquivOptions) -> Equivalence {
    let vars: Vec<String> = student
        .variables()
        .into_iter()
        .chain(key.variables())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut values = vec![0.0f64; vars.len()];
    let mut defined = 0u32;
    for _ in 0..opts.samples {
        for (i, v) in vars.iter().enumerate() {
            let [lo, hi] = opts.ranges.get(v).copied().unwrap_or(DEFAULT_RANGE);
            values[i] = lo + (hi - lo) * rng.random::<f64>();
        }
        let lookup = |name: &str| vars.iter().position(|v| v == name).map(|i| values[i]);
        let (Ok(a), Ok(b)) = (student.eval(&lookup), key.eval(&lookup)) else {
            continue;
        };
        if !a.is_finite() || !b.is_finite() {
            continue;
        }
        defined += 1;
        if (a - b).abs() > opts.atol + opts.rtol * a.abs().max(b.abs()) {
            let at: Vec<String> = vars
                .iter()
                .zip(&values)
                .map(|(n, x)| format!("{n} = {}", render_num(*x)))
                .collect();
            return Equivalence::Different {
                at: at.join(", "),
                student: a,
                key: b,
            };
        }
    }
    if defined >= opts.min_defined.max(1) {
        Equivalence::Equal { defined }
    } else {
        Equivalence::Undecided { defined }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::number::parse_expr;

    fn opts() -> EquivOptions {
        EquivOptions {
            samples: 12,
            min_defined: 6,
            seed: 5,
            rtol: 1e-9,
            atol: 1e-12,
            ranges: BTreeMap::new(),
        }
    }

    fn eq(a: &str, b: &str) -> Equivalence {
        equivalent(&parse_expr(a).unwrap(), &parse_expr(b).unwrap(), &opts())
    }

    #[test]
    fn equal_forms_are_equivalent() {
        assert!(matches!(
            eq("(w_3*w_2 + 1)*w_1*x", "w_1 w_2 w_3 x + w_1 x"),
            Equivalence::Equal { defined: 12 }
        ));
        assert!(matches!(eq("2*ln(2)", "ln(4)"), Equivalence::Equal { .. }));
        assert!(matches!(eq("1 + r", "r + 1"), Equivalence::Equal { .. }));
    }

    #[test]
    fn different_forms_are_found() {
        match eq("w_3*w_2*w_1*x", "(w_3*w_2 + 1)*w_1*x") {
            Equivalence::Different { at, .. } => assert!(at.contains("w_1 = ")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn undefined_points_are_skipped_and_counted() {
        let mut o = opts();
        o.ranges.insert("x".into(), [-3.0, -1.0]);
        let r = equivalent(
            &parse_expr("ln(x)").unwrap(),
            &parse_expr("ln(x)").unwrap(),
            &o,
        );
        assert_eq!(r, Equivalence::Undecided { defined: 0 });
    }

    #[test]
    fn seeded_runs_are_reproducible() {
        assert_eq!(eq("x*y", "x*y + 1e-3"), eq("x*y", "x*y + 1e-3"));
    }
}
