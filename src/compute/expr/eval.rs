//! Numeric evaluation in f64 with domain checks.

use super::EvalError;
use super::ast::{Expr, Func};

/// At most this many characters of a sub-expression are quoted in an error.
const QUOTE_CHARS: usize = 80;

pub(crate) fn quote(e: &Expr) -> String {
    let s = e.to_string();
    if s.chars().count() <= QUOTE_CHARS {
        return s;
    }
    let mut short: String = s.chars().take(QUOTE_CHARS).collect();
    short.push_str("...");
    short
}

/// Logistic sigmoid, stable for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let z = x.exp();
        z / (1.0 + z)
    }
}

/// ln(1 + e^x), stable for large |x|.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Applies a one-argument function, checking its domain.
pub(crate) fn apply_unary(f: Func, x: f64, arg: &Expr) -> Result<f64, EvalError> {
    let log_domain = |x: f64| {
        if x <= 0.0 {
            Err(EvalError::LogDomain {
                function: f.name(),
                argument: quote(arg),
                value: x,
            })
        } else {
            Ok(())
        }
    };
    Ok(match f {
        Func::Exp => x.exp(),
        Func::Ln => {
            log_domain(x)?;
            x.ln()
        }
        Func::Log10 => {
            log_domain(x)?;
            x.log10()
        }
        Func::Log2 => {
            log_domain(x)?;
            x.log2()
        }
        Func::Sqrt => {
            if x < 0.0 {
                return Err(EvalError::SqrtNegative {
                    argument: quote(arg),
                    value: x,
                });
            }
            x.sqrt()
        }
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Tanh => x.tanh(),
        Func::Sigmoid => sigmoid(x),
        Func::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        Func::Abs => x.abs(),
        Func::Softplus => softplus(x),
        Func::Step => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Func::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Func::Floor => x.floor(),
        Func::Ceil => x.ceil(),
        Func::Max | Func::Min => x,
    })
}

/// `base ^ exponent` with domain checks (0 to a negative power, negative base
/// with a non-integer exponent).
pub(crate) fn pow(base: f64, exponent: f64, e: &Expr) -> Result<f64, EvalError> {
    if base == 0.0 && exponent < 0.0 {
        return Err(EvalError::DivisionByZero { divisor: quote(e) });
    }
    if base < 0.0 && exponent.fract() != 0.0 {
        return Err(EvalError::PowDomain {
            expression: quote(e),
            base,
            exponent,
        });
    }
    Ok(base.powf(exponent))
}

fn finite(v: f64, e: &Expr) -> Result<f64, EvalError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvalError::NotFinite {
            expression: quote(e),
        })
    }
}

pub(crate) fn eval(e: &Expr, vars: &dyn Fn(&str) -> Option<f64>) -> Result<f64, EvalError> {
    let v = match e {
        Expr::Num(v) => *v,
        Expr::Const(c) => c.value(),
        Expr::Var(name) => match vars(name) {
            Some(v) => v,
            None => return Err(EvalError::UnknownVariable(name.clone())),
        },
        Expr::Add(ts) => {
            let mut acc = 0.0;
            for t in ts {
                acc += eval(t, vars)?;
            }
            acc
        }
        Expr::Mul { num, den } => {
            let mut acc = 1.0;
            for (k, t) in num.iter().enumerate() {
                let v = eval(t, vars)?;
                acc = if k == 0 { v } else { acc * v };
            }
            for t in den {
                let d = eval(t, vars)?;
                if d == 0.0 {
                    return Err(EvalError::DivisionByZero { divisor: quote(t) });
                }
                acc /= d;
            }
            acc
        }
        Expr::Neg(a) => -eval(a, vars)?,
        Expr::Pow(a, b) => {
            let base = eval(a, vars)?;
            let exponent = eval(b, vars)?;
            pow(base, exponent, e)?
        }
        Expr::Call(f, args) => match (f, args.as_slice()) {
            (Func::Max | Func::Min, [first, rest @ ..]) => {
                let mut acc = eval(first, vars)?;
                for t in rest {
                    let v = eval(t, vars)?;
                    acc = if *f == Func::Max {
                        acc.max(v)
                    } else {
                        acc.min(v)
                    };
                }
                acc
            }
            (_, [arg]) => {
                let x = eval(arg, vars)?;
                apply_unary(*f, x, arg)?
            }
            _ => {
                return Err(EvalError::Arity {
                    function: f.name(),
                    count: args.len(),
                });
            }
        },
    };
    finite(v, e)
}
