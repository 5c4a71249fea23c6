//! Computation graphs as exams ask students to draw them: one node per
//! distinct sub-expression (variables and repeated sub-expressions are
//! shared, each constant gets its own leaf), forward values, local partial
//! derivatives on every edge and reverse-mode accumulation of the adjoints
//! ∂f/∂node.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EvalError;
use super::ast::{Expr, Func};
use super::eval::{apply_unary, pow, quote, sigmoid};
use crate::compute::steps::{Step, fmt_num};

/// One node of a computation graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphNode {
    /// Node name in evaluation order: `v0`, `v1`, ...; a node's inputs always
    /// come before it.
    pub name: String,
    /// Operation: `input` (a variable), `const`, `add`, `neg`, `mul`, `div`,
    /// `pow`, or a function name (`exp`, `ln`, `sigmoid`, `relu`, `max`, ...).
    pub op: String,
    /// Indices (into `nodes`) of the operands, in order.
    pub inputs: Vec<usize>,
    /// The sub-expression this node computes, in plain text.
    pub expression: String,
    /// The same sub-expression in LaTeX.
    pub latex: String,
    /// Forward value.
    pub value: f64,
    /// Local partial derivative ∂node/∂input for each input (same order as
    /// `inputs`); null where the input is a constant sub-graph (no gradient
    /// is needed there).
    pub local_gradients: Vec<Option<f64>>,
    /// Adjoint ∂f/∂node accumulated by the backward pass; null for constant
    /// sub-graphs.
    pub adjoint: Option<f64>,
}

/// A forward and backward pass through an expression's computation graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComputationGraph {
    /// Nodes in evaluation (topological) order; the last one is the output.
    pub nodes: Vec<GraphNode>,
    /// ∂f/∂variable read off the input nodes' adjoints.
    pub gradient: BTreeMap<String, f64>,
    /// Forward pass, one line per operation node.
    pub forward_steps: Vec<Step>,
    /// Backward pass, one line per node: its adjoint as the sum over the
    /// nodes that consume it.
    pub backward_steps: Vec<Step>,
}

struct Builder<'a> {
    vars: &'a dyn Fn(&str) -> Option<f64>,
    nodes: Vec<GraphNode>,
    constant: Vec<bool>,
    index: HashMap<String, usize>,
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

impl Builder<'_> {
    fn push(
        &mut self,
        op: &str,
        inputs: Vec<usize>,
        e: &Expr,
        value: f64,
        share: bool,
    ) -> Result<usize, EvalError> {
        let value = finite(value, e)?;
        let expression = e.to_string();
        let key = format!("{op}|{inputs:?}|{expression}");
        if share && let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        let constant = op == "const" || (op != "input" && inputs.iter().all(|&i| self.is_const(i)));
        let id = self.nodes.len();
        self.nodes.push(GraphNode {
            name: format!("v{id}"),
            op: op.to_string(),
            inputs,
            latex: e.to_latex(),
            expression,
            value,
            local_gradients: Vec::new(),
            adjoint: None,
        });
        self.constant.push(constant);
        if share {
            self.index.insert(key, id);
        }
        Ok(id)
    }

    fn is_const(&self, i: usize) -> bool {
        self.constant.get(i).copied().unwrap_or(true)
    }

    fn value(&self, i: usize) -> f64 {
        self.nodes.get(i).map_or(f64::NAN, |n| n.value)
    }

    fn product(&mut self, factors: &[Expr], whole: &Expr) -> Result<usize, EvalError> {
        let mut ids = Vec::with_capacity(factors.len());
        for f in factors {
            ids.push(self.node(f)?);
        }
        if let [only] = ids.as_slice() {
            return Ok(*only);
        }
        let v = ids.iter().map(|&i| self.value(i)).product();
        self.push("mul", ids, whole, v, true)
    }

    fn node(&mut self, e: &Expr) -> Result<usize, EvalError> {
        match e {
            Expr::Num(v) => self.push("const", vec![], e, *v, false),
            Expr::Const(c) => self.push("const", vec![], e, c.value(), false),
            Expr::Var(name) => match (self.vars)(name) {
                Some(v) => self.push("input", vec![], e, v, true),
                None => Err(EvalError::UnknownVariable(name.clone())),
            },
            Expr::Add(ts) => {
                let mut ids = Vec::with_capacity(ts.len());
                for t in ts {
                    ids.push(self.node(t)?);
                }
                let v = ids.iter().map(|&i| self.value(i)).sum();
                self.push("add", ids, e, v, true)
            }
            Expr::Neg(a) => {
                let i = self.node(a)?;
                let v = -self.value(i);
                self.push("neg", vec![i], e, v, true)
            }
            Expr::Mul { num, den } => {
                if den.is_empty() {
                    return self.product(num, e);
                }
                let top_expr = match num.as_slice() {
                    [only] => only.clone(),
                    _ => Expr::Mul {
                        num: num.clone(),
                        den: vec![],
                    },
                };
                let top = self.product(num, &top_expr)?;
                let bottom_expr = match den.as_slice() {
                    [only] => only.clone(),
                    _ => Expr::Mul {
                        num: den.clone(),
                        den: vec![],
                    },
                };
                let bottom = self.product(den, &bottom_expr)?;
                let b = self.value(bottom);
                if b == 0.0 {
                    return Err(EvalError::DivisionByZero {
                        divisor: quote(&bottom_expr),
                    });
                }
                let v = self.value(top) / b;
                self.push("div", vec![top, bottom], e, v, true)
            }
            Expr::Pow(a, b) => {
                let i = self.node(a)?;
                let j = self.node(b)?;
                let v = pow(self.value(i), self.value(j), e)?;
                self.push("pow", vec![i, j], e, v, true)
            }
            Expr::Call(f, args) => {
                let mut ids = Vec::with_capacity(args.len());
                for a in args {
                    ids.push(self.node(a)?);
                }
                let v = match (f, args.as_slice(), ids.as_slice()) {
                    (Func::Max | Func::Min, _, [first, rest @ ..]) => {
                        rest.iter().fold(self.value(*first), |acc, &i| {
                            if *f == Func::Max {
                                acc.max(self.value(i))
                            } else {
                                acc.min(self.value(i))
                            }
                        })
                    }
                    (_, [arg], [i]) => apply_unary(*f, self.value(*i), arg)?,
                    _ => {
                        return Err(EvalError::Arity {
                            function: f.name(),
                            count: args.len(),
                        });
                    }
                };
                self.push(f.name(), ids, e, v, true)
            }
        }
    }

    /// ∂node/∂input_k for the node at `id`.
    fn local(&self, id: usize, k: usize) -> Result<f64, EvalError> {
        let Some(n) = self.nodes.get(id) else {
            return Ok(0.0);
        };
        let x = |j: usize| n.inputs.get(j).map_or(f64::NAN, |&i| self.value(i));
        let out = n.value;
        let e = Expr::Var(n.expression.clone());
        let g = match n.op.as_str() {
            "add" => 1.0,
            "neg" => -1.0,
            "mul" => (0..n.inputs.len()).filter(|&j| j != k).map(x).product(),
            "div" => {
                if k == 0 {
                    1.0 / x(1)
                } else {
                    -x(0) / (x(1) * x(1))
                }
            }
            "pow" => {
                let (a, b) = (x(0), x(1));
                if k == 0 {
                    b * pow(a, b - 1.0, &e)?
                } else if a > 0.0 {
                    out * a.ln()
                } else {
                    return Err(EvalError::LogDomain {
                        function: "ln",
                        argument: quote(&e),
                        value: a,
                    });
                }
            }
            name => {
                let u = x(0);
                match Func::from_name(name) {
                    Some(Func::Exp) => out,
                    Some(Func::Ln) => 1.0 / u,
                    Some(Func::Log10) => 1.0 / (u * std::f64::consts::LN_10),
                    Some(Func::Log2) => 1.0 / (u * std::f64::consts::LN_2),
                    Some(Func::Sqrt) => {
                        if out == 0.0 {
                            return Err(EvalError::DivisionByZero {
                                divisor: format!("2*{}", n.expression),
                            });
                        }
                        0.5 / out
                    }
                    Some(Func::Sin) => u.cos(),
                    Some(Func::Cos) => -u.sin(),
                    Some(Func::Tan) => 1.0 / (u.cos() * u.cos()),
                    Some(Func::Tanh) => 1.0 - out * out,
                    Some(Func::Sigmoid) => out * (1.0 - out),
                    Some(Func::Relu) => apply_unary(Func::Step, u, &e)?,
                    Some(Func::Abs) => apply_unary(Func::Sign, u, &e)?,
                    Some(Func::Softplus) => sigmoid(u),
                    Some(Func::Max | Func::Min) => {
                        let first = (0..n.inputs.len()).find(|&j| x(j) == out);
                        if first == Some(k) { 1.0 } else { 0.0 }
                    }
                    _ => 0.0,
                }
            }
        };
        finite(g, &Expr::Var(format!("d({})/d(input {k})", n.expression)))
    }
}

fn op_text(n: &GraphNode, names: &[String]) -> (String, String) {
    let arg = |j: usize| names.get(j).cloned().unwrap_or_default();
    let args: Vec<String> = n.inputs.iter().map(|&i| arg(i)).collect();
    let tex = |s: &str| {
        s.strip_prefix('v')
            .map_or_else(|| s.to_string(), |d| format!("v_{{{d}}}"))
    };
    let targs: Vec<String> = args.iter().map(|a| tex(a)).collect();
    match n.op.as_str() {
        "add" => (args.join(" + "), targs.join(" + ")),
        "neg" => (
            format!("-{}", args.join("")),
            format!("-{}", targs.join("")),
        ),
        "mul" => (args.join("*"), targs.join(" \\cdot ")),
        "div" => (
            args.join("/"),
            format!(
                "\\frac{{{}}}{{{}}}",
                targs.first().cloned().unwrap_or_default(),
                targs.get(1).cloned().unwrap_or_default()
            ),
        ),
        "pow" => (
            args.join("^"),
            format!(
                "{}^{{{}}}",
                targs.first().cloned().unwrap_or_default(),
                targs.get(1).cloned().unwrap_or_default()
            ),
        ),
        f => (
            format!("{f}({})", args.join(", ")),
            format!("\\operatorname{{{f}}}\\left({}\\right)", targs.join(", ")),
        ),
    }
}

/// Builds the graph of `e`, runs the forward pass with the variable values
/// from `vars` and the backward pass from the output.
pub fn computation_graph(
    e: &Expr,
    vars: &dyn Fn(&str) -> Option<f64>,
) -> Result<ComputationGraph, EvalError> {
    let mut b = Builder {
        vars,
        nodes: Vec::new(),
        constant: Vec::new(),
        index: HashMap::new(),
    };
    let out = b.node(e)?;
    // Local gradients (only towards non-constant inputs).
    for id in 0..b.nodes.len() {
        let inputs = b
            .nodes
            .get(id)
            .map(|n| n.inputs.clone())
            .unwrap_or_default();
        let mut locals = Vec::with_capacity(inputs.len());
        for (k, &i) in inputs.iter().enumerate() {
            locals.push(if b.is_const(i) {
                None
            } else {
                Some(b.local(id, k)?)
            });
        }
        if let Some(n) = b.nodes.get_mut(id) {
            n.local_gradients = locals;
        }
    }
    // Reverse accumulation.
    let mut adj: Vec<Option<f64>> = vec![None; b.nodes.len()];
    if let Some(a) = adj.get_mut(out)
        && !b.is_const(out)
    {
        *a = Some(1.0);
    }
    let mut consumers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); b.nodes.len()];
    for id in (0..b.nodes.len()).rev() {
        let Some(n) = b.nodes.get(id) else { continue };
        let Some(a) = adj.get(id).copied().flatten() else {
            continue;
        };
        for (k, (&i, g)) in n.inputs.iter().zip(&n.local_gradients).enumerate() {
            if let Some(g) = g {
                if let Some(slot) = adj.get_mut(i) {
                    *slot = Some(slot.unwrap_or(0.0) + a * g);
                }
                if let Some(c) = consumers.get_mut(i) {
                    c.push((id, k));
                }
            }
        }
    }
    for (n, a) in b.nodes.iter_mut().zip(&adj) {
        n.adjoint = *a;
    }
    let names: Vec<String> = b.nodes.iter().map(|n| n.name.clone()).collect();
    let mut forward_steps = Vec::new();
    for n in &b.nodes {
        if n.inputs.is_empty() {
            forward_steps.push(Step::new(
                format!("{} = {} = {}", n.name, n.expression, fmt_num(n.value)),
                format!(
                    "v_{{{}}} = {} = {}",
                    n.name.trim_start_matches('v'),
                    n.latex,
                    fmt_num(n.value)
                ),
            ));
            continue;
        }
        let (text, tex) = op_text(n, &names);
        let vals: Vec<String> = n
            .inputs
            .iter()
            .map(|&i| {
                let v = fmt_num(b.value(i));
                if v.starts_with('-') {
                    format!("({v})")
                } else {
                    v
                }
            })
            .collect();
        let shown = GraphNode {
            inputs: (0..vals.len()).collect(),
            ..n.clone()
        };
        let (vtext, vtex) = op_text(&shown, &vals);
        forward_steps.push(Step::new(
            format!("{} = {} = {} = {}", n.name, text, vtext, fmt_num(n.value)),
            format!(
                "v_{{{}}} = {} = {} = {}",
                n.name.trim_start_matches('v'),
                tex,
                vtex,
                fmt_num(n.value)
            ),
        ));
    }
    let mut backward_steps = Vec::new();
    for id in (0..b.nodes.len()).rev() {
        let (Some(n), Some(a)) = (b.nodes.get(id), adj.get(id).copied().flatten()) else {
            continue;
        };
        let idx = n.name.trim_start_matches('v');
        if id == out {
            backward_steps.push(Step::new(
                format!("df/d{} = 1", n.name),
                format!("\\frac{{\\partial f}}{{\\partial v_{{{idx}}}}} = 1"),
            ));
            continue;
        }
        let cons = consumers.get(id).cloned().unwrap_or_default();
        let mut sym = Vec::new();
        let mut sym_tex = Vec::new();
        let mut num = Vec::new();
        for (c, k) in cons {
            let Some(cn) = b.nodes.get(c) else { continue };
            let ca = adj.get(c).copied().flatten().unwrap_or(0.0);
            let g = cn.local_gradients.get(k).copied().flatten().unwrap_or(0.0);
            let cidx = cn.name.trim_start_matches('v');
            sym.push(format!("df/d{} * d{}/d{}", cn.name, cn.name, n.name));
            sym_tex.push(format!(
                "\\frac{{\\partial f}}{{\\partial v_{{{cidx}}}}} \\frac{{\\partial v_{{{cidx}}}}}{{\\partial v_{{{idx}}}}}"
            ));
            num.push(format!("{}*{}", fmt_num(ca), fmt_num(g)));
        }
        backward_steps.push(Step::new(
            format!(
                "df/d{} = {} = {} = {}",
                n.name,
                sym.join(" + "),
                num.join(" + "),
                fmt_num(a)
            ),
            format!(
                "\\frac{{\\partial f}}{{\\partial v_{{{idx}}}}} = {} = {} = {}",
                sym_tex.join(" + "),
                num.join(" + ").replace('*', " \\cdot "),
                fmt_num(a)
            ),
        ));
    }
    let mut gradient = BTreeMap::new();
    for (n, a) in b.nodes.iter().zip(&adj) {
        if n.op == "input" {
            gradient.insert(n.expression.clone(), a.unwrap_or(0.0));
        }
    }
    Ok(ComputationGraph {
        nodes: b.nodes,
        gradient,
        forward_steps,
        backward_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ExprLimits, parse};
    use super::*;

    fn graph(src: &str, vals: &[(&str, f64)]) -> ComputationGraph {
        let e = match parse(src, &ExprLimits::default()) {
            Ok(e) => e,
            Err(err) => panic!("{src}: {err}"),
        };
        let lookup = |n: &str| vals.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        match computation_graph(&e, &lookup) {
            Ok(g) => g,
            Err(err) => panic!("{src}: {err}"),
        }
    }

    #[test]
    fn exam_function_backpropagation() {
        // f = x^4 - 32x^2 + y^4 - 18y^2 at (2, 2): df/dx = 4*8 - 64*2 = -96, df/dy = 32 - 72 = -40.
        let g = graph("x^4 - 32x^2 + y^4 - 18y^2", &[("x", 2.0), ("y", 2.0)]);
        assert_eq!(g.gradient.get("x"), Some(&-96.0));
        assert_eq!(g.gradient.get("y"), Some(&-40.0));
        assert_eq!(
            g.nodes.last().map(|n| n.value),
            Some(16.0 - 128.0 + 16.0 - 72.0)
        );
        // x and y are shared input nodes.
        assert_eq!(g.nodes.iter().filter(|n| n.op == "input").count(), 2);
        // constants get no adjoint
        assert!(
            g.nodes
                .iter()
                .filter(|n| n.op == "const")
                .all(|n| n.adjoint.is_none())
        );
        assert_eq!(g.forward_steps.len(), g.nodes.len());
        assert!(
            g.backward_steps
                .iter()
                .any(|s| s.text.starts_with("df/dv0 = "))
        );
    }

    #[test]
    fn shared_subexpressions_accumulate() {
        // f = sigmoid(w x) * sigmoid(w x): one sigmoid node used twice.
        let g = graph("sigmoid(w x) * sigmoid(w x)", &[("w", 0.5), ("x", 2.0)]);
        assert_eq!(g.nodes.iter().filter(|n| n.op == "sigmoid").count(), 1);
        let s = sigmoid(1.0);
        let dw = 2.0 * s * s * (1.0 - s) * 2.0;
        let got = g.gradient.get("w").copied().unwrap_or(f64::NAN);
        assert!((got - dw).abs() < 1e-15, "{got} vs {dw}");
    }

    #[test]
    fn division_and_powers() {
        let g = graph("x^y / (x + y)", &[("x", 2.0), ("y", 3.0)]);
        let (x, y): (f64, f64) = (2.0, 3.0);
        let dx = (y * x.powf(y - 1.0) * (x + y) - x.powf(y)) / ((x + y) * (x + y));
        let dy = (x.powf(y) * x.ln() * (x + y) - x.powf(y)) / ((x + y) * (x + y));
        let gx = g.gradient.get("x").copied().unwrap_or(f64::NAN);
        let gy = g.gradient.get("y").copied().unwrap_or(f64::NAN);
        assert!((gx - dx).abs() < 1e-14 && (gy - dy).abs() < 1e-14);
    }

    #[test]
    fn errors_at_undefined_points() {
        let e = parse("sqrt(x)", &ExprLimits::default()).ok();
        let zero = |_: &str| Some(0.0);
        let r = e.map(|e| computation_graph(&e, &zero).is_err());
        assert_eq!(r, Some(true));
    }
}
