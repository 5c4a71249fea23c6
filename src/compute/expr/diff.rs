//! Exact symbolic differentiation (sum, product, quotient, power and chain
//! rules), built with the simplifying constructors.
//!
//! Conventions at the kinks, matching PyTorch and JAX where they agree:
//! relu'(0) = 0 (`step(0) = 0`), abs'(0) = 0 (`sign(0) = 0`). For
//! `max(a, b)` the first maximal argument receives the whole derivative on a
//! tie (JAX would split it equally).

use super::DiffError;
use super::ast::{Constant, Expr, Func};
use super::simplify::{add, call, div, mul, neg, pow, sub};

/// Differentiates simplified expressions, refusing to copy more than
/// `budget` nodes in total (derivatives of deeply nested expressions grow
/// quadratically).
pub(crate) struct Differ<'a> {
    var: &'a str,
    budget: usize,
}

impl<'a> Differ<'a> {
    pub(crate) fn new(var: &'a str, budget: usize) -> Self {
        Self { var, budget }
    }

    /// Nodes still allowed to be copied.
    pub(crate) fn remaining(&self) -> usize {
        self.budget
    }

    fn copy(&mut self, e: &Expr) -> Result<Expr, DiffError> {
        let n = e.size();
        if n > self.budget {
            return Err(DiffError::TooLarge);
        }
        self.budget -= n;
        Ok(e.clone())
    }

    /// d e / d var for a simplified `e`.
    pub(crate) fn d(&mut self, e: &Expr) -> Result<Expr, DiffError> {
        if !e.depends_on(self.var) {
            return Ok(Expr::Num(0.0));
        }
        Ok(match e {
            Expr::Num(_) | Expr::Const(_) => Expr::Num(0.0),
            Expr::Var(v) => Expr::Num(if v == self.var { 1.0 } else { 0.0 }),
            Expr::Add(ts) => {
                let mut out = Vec::with_capacity(ts.len());
                for t in ts {
                    out.push(self.d(t)?);
                }
                add(out)
            }
            Expr::Neg(a) => neg(self.d(a)?),
            Expr::Mul { num, den } => {
                // f = prod g_k with g_k = num_k or 1/den_k; f' = sum_k g_k' prod_{j != k} g_j.
                let factors: Vec<(&Expr, bool)> = num
                    .iter()
                    .map(|t| (t, false))
                    .chain(den.iter().map(|t| (t, true)))
                    .collect();
                let mut terms = Vec::new();
                for (k, (g, inverse)) in factors.iter().enumerate() {
                    if !g.depends_on(self.var) {
                        continue;
                    }
                    let dg = self.d(g)?;
                    let mut prod = Vec::with_capacity(factors.len() + 1);
                    if *inverse {
                        // (1/g)' = -g'/g^2
                        let g2 = pow(self.copy(g)?, Expr::Num(2.0));
                        prod.push(neg(div(dg, g2)));
                    } else {
                        prod.push(dg);
                    }
                    let mut rest_den = Vec::new();
                    for (j, (h, inv)) in factors.iter().enumerate() {
                        if j == k {
                            continue;
                        }
                        if *inv {
                            rest_den.push(self.copy(h)?);
                        } else {
                            prod.push(self.copy(h)?);
                        }
                    }
                    let mut term = mul(prod);
                    for h in rest_den {
                        term = div(term, h);
                    }
                    terms.push(term);
                }
                add(terms)
            }
            Expr::Pow(u, v) => {
                let u_dep = u.depends_on(self.var);
                let v_dep = v.depends_on(self.var);
                if !v_dep {
                    // (u^v)' = v u^(v-1) u'
                    let du = self.d(u)?;
                    let vm1 = sub(self.copy(v)?, Expr::Num(1.0));
                    mul(vec![self.copy(v)?, pow(self.copy(u)?, vm1), du])
                } else if !u_dep {
                    // (u^v)' = u^v ln(u) v'
                    let dv = self.d(v)?;
                    let ln_u = self.ln(u)?;
                    mul(vec![self.copy(e)?, ln_u, dv])
                } else {
                    // (u^v)' = u^v (v' ln u + v u'/u)
                    let du = self.d(u)?;
                    let dv = self.d(v)?;
                    let ln_u = self.ln(u)?;
                    let inner = add(vec![
                        mul(vec![dv, ln_u]),
                        div(mul(vec![self.copy(v)?, du]), self.copy(u)?),
                    ]);
                    mul(vec![self.copy(e)?, inner])
                }
            }
            Expr::Call(f, args) => self.call(*f, args)?,
        })
    }

    fn ln(&mut self, u: &Expr) -> Result<Expr, DiffError> {
        Ok(match u {
            Expr::Const(Constant::E) => Expr::Num(1.0),
            u => call(Func::Ln, vec![self.copy(u)?]),
        })
    }

    fn call(&mut self, f: Func, args: &[Expr]) -> Result<Expr, DiffError> {
        if matches!(f, Func::Max | Func::Min) {
            return self.extremum(f, args);
        }
        let [u] = args else {
            return Err(DiffError::Arity(f.name()));
        };
        let du = self.d(u)?;
        let c =
            |me: &mut Self, g: Func| -> Result<Expr, DiffError> { Ok(call(g, vec![me.copy(u)?])) };
        let outer = match f {
            Func::Exp => c(self, Func::Exp)?,
            Func::Ln => div(Expr::Num(1.0), self.copy(u)?),
            Func::Log10 | Func::Log2 => {
                let base = if f == Func::Log10 { 10.0 } else { 2.0 };
                div(
                    Expr::Num(1.0),
                    mul(vec![self.copy(u)?, call(Func::Ln, vec![Expr::Num(base)])]),
                )
            }
            Func::Sqrt => div(
                Expr::Num(1.0),
                mul(vec![Expr::Num(2.0), c(self, Func::Sqrt)?]),
            ),
            Func::Sin => c(self, Func::Cos)?,
            Func::Cos => neg(c(self, Func::Sin)?),
            Func::Tan => div(Expr::Num(1.0), pow(c(self, Func::Cos)?, Expr::Num(2.0))),
            Func::Tanh => sub(Expr::Num(1.0), pow(c(self, Func::Tanh)?, Expr::Num(2.0))),
            Func::Sigmoid => {
                let s = c(self, Func::Sigmoid)?;
                let s2 = c(self, Func::Sigmoid)?;
                mul(vec![s, sub(Expr::Num(1.0), s2)])
            }
            Func::Relu => c(self, Func::Step)?,
            Func::Abs => c(self, Func::Sign)?,
            Func::Softplus => c(self, Func::Sigmoid)?,
            Func::Step | Func::Sign | Func::Floor | Func::Ceil => Expr::Num(0.0),
            Func::Max | Func::Min => Expr::Num(0.0),
        };
        Ok(mul(vec![outer, du]))
    }

    /// max(a, rest...)' = a' + step(r - a) (r' - a') with r = max(rest...)
    /// (for min: step(a - r)); the first extremal argument wins ties.
    fn extremum(&mut self, f: Func, args: &[Expr]) -> Result<Expr, DiffError> {
        let (a, rest) = match args {
            [] => return Err(DiffError::Arity(f.name())),
            [a] => return self.d(a),
            [a, rest @ ..] => (a, rest),
        };
        let r = if rest.len() == 1 {
            rest.first()
                .map(|x| self.copy(x))
                .transpose()?
                .unwrap_or(Expr::Num(0.0))
        } else {
            let mut v = Vec::with_capacity(rest.len());
            for x in rest {
                v.push(self.copy(x)?);
            }
            Expr::Call(f, v)
        };
        let da = self.d(a)?;
        let dr = self.d(&r)?;
        let gap = if f == Func::Max {
            sub(r, self.copy(a)?)
        } else {
            sub(self.copy(a)?, r)
        };
        let switch = call(Func::Step, vec![gap]);
        Ok(add(vec![da.clone(), mul(vec![switch, sub(dr, da)])]))
    }
}
