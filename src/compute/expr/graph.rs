//! Computation graphs as exams ask students to draw them: one node per
//! distinct sub-expression that depends on a variable (variables and
//! repeated sub-expressions are shared; constants are written into the
//! operation that uses them, as in `v2 = v0^4`), forward values, the local
//! partial derivative on every edge and reverse-mode accumulation of the
//! adjoints ∂f/∂node.

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
    /// Operation: `input` (a variable), `const` (only when the whole function
    /// is constant), `add` (a signed sum: each operand enters with + or − as
    /// written), `neg`, `mul`, `div`, `pow`, or a function name (`exp`, `ln`,
    /// `sigmoid`, `relu`, `max`, ...).
    pub op: String,
    /// The operation on its operands, e.g. `v0^4`, `32*v5`, `v2 - v6 + v10`
    /// (constants written inline).
    pub formula: String,
    /// Indices (into `nodes`) of the node operands, in order of appearance
    /// in `formula` (a node used twice is listed twice).
    pub inputs: Vec<usize>,
    /// The sub-expression this node computes, in plain text.
    pub expression: String,
    /// The same sub-expression in LaTeX.
    pub latex: String,
    /// Forward value.
    pub value: f64,
    /// Local partial derivative ∂node/∂input for each entry of `inputs`.
    pub local_gradients: Vec<f64>,
    /// Adjoint ∂f/∂node accumulated by the backward pass.
    pub adjoint: f64,
}

/// A forward and backward pass through an expression's computation graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComputationGraph {
    /// Nodes in evaluation (topological) order; the last one is the output f.
    pub nodes: Vec<GraphNode>,
    /// ∂f/∂variable read off the input nodes' adjoints.
    pub gradient: BTreeMap<String, f64>,
    /// Forward pass, one line per node.
    pub forward_steps: Vec<Step>,
    /// Backward pass, one line per node from the output down: its adjoint as
    /// the sum over the nodes that consume it.
    pub backward_steps: Vec<Step>,
}

/// An operand of an operation: another node, or a constant written inline.
#[derive(Debug, Clone)]
enum Operand {
    Node(usize),
    Const { value: f64, text: String },
}

struct Builder<'a> {
    vars: &'a dyn Fn(&str) -> Option<f64>,
    nodes: Vec<GraphNode>,
    /// Per node: its operands and the sign of each (for `add`).
    operands: Vec<Vec<(Operand, f64)>>,
    index: HashMap<String, usize>,
}

fn finite(v: f64, what: &str) -> Result<f64, EvalError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(EvalError::NotFinite {
            expression: what.to_string(),
        })
    }
}

fn wrap_negative(s: String) -> String {
    if s.starts_with('-') {
        format!("({s})")
    } else {
        s
    }
}

impl Builder<'_> {
    fn value_of(&self, o: &Operand) -> f64 {
        match o {
            Operand::Node(i) => self.nodes.get(*i).map_or(f64::NAN, |n| n.value),
            Operand::Const { value, .. } => *value,
        }
    }

    /// Adds (or reuses) a node computing `op` over `ops`.
    fn push(
        &mut self,
        op: &str,
        ops: Vec<(Operand, f64)>,
        e: &Expr,
        value: f64,
    ) -> Result<usize, EvalError> {
        let expression = e.to_string();
        let value = finite(value, &quote(e))?;
        let key = format!("{op}|{expression}");
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        let id = self.nodes.len();
        let inputs = ops
            .iter()
            .filter_map(|(o, _)| match o {
                Operand::Node(i) => Some(*i),
                Operand::Const { .. } => None,
            })
            .collect();
        let formula = self.formula(op, &ops, &|o| match o {
            Operand::Node(i) => format!("v{i}"),
            Operand::Const { text, .. } => text.clone(),
        });
        self.nodes.push(GraphNode {
            name: format!("v{id}"),
            op: op.to_string(),
            formula,
            inputs,
            latex: e.to_latex(),
            expression,
            value,
            local_gradients: Vec::new(),
            adjoint: 0.0,
        });
        self.operands.push(ops);
        self.index.insert(key, id);
        Ok(id)
    }

    /// The operation written out, with `show` rendering each operand.
    fn formula(
        &self,
        op: &str,
        ops: &[(Operand, f64)],
        show: &dyn Fn(&Operand) -> String,
    ) -> String {
        let args: Vec<String> = ops.iter().map(|(o, _)| show(o)).collect();
        let arg = |k: usize| args.get(k).cloned().unwrap_or_default();
        match op {
            "add" => {
                let mut out = String::new();
                for (k, ((_, sign), a)) in ops.iter().zip(&args).enumerate() {
                    match (k, *sign < 0.0) {
                        (0, false) => out.push_str(a),
                        (0, true) => out.push_str(&format!("-{a}")),
                        (_, false) => out.push_str(&format!(" + {a}")),
                        (_, true) => out.push_str(&format!(" - {a}")),
                    }
                }
                out
            }
            "neg" => format!("-{}", arg(0)),
            "mul" => args.join("*"),
            "div" => format!("{}/{}", arg(0), arg(1)),
            "pow" => format!("{}^{}", arg(0), arg(1)),
            "input" | "const" => arg(0),
            f => format!("{f}({})", args.join(", ")),
        }
    }

    /// A constant sub-expression, evaluated and written inline.
    fn constant(&self, e: &Expr) -> Result<Operand, EvalError> {
        let value = e.eval(&|_| None)?;
        let text = match e {
            Expr::Num(_) | Expr::Const(_) | Expr::Call(..) => wrap_negative(e.to_string()),
            _ => format!("({e})"),
        };
        Ok(Operand::Const { value, text })
    }

    fn operand(&mut self, e: &Expr) -> Result<Operand, EvalError> {
        if e.is_constant() {
            return self.constant(e);
        }
        Ok(Operand::Node(self.node(e)?))
    }

    fn product(&mut self, factors: &[Expr], whole: &Expr) -> Result<Operand, EvalError> {
        if whole.is_constant() {
            return self.constant(whole);
        }
        let mut ops = Vec::with_capacity(factors.len());
        for f in factors {
            ops.push((self.operand(f)?, 1.0));
        }
        if let [(only, _)] = ops.as_slice() {
            return Ok(only.clone());
        }
        let v = ops.iter().map(|(o, _)| self.value_of(o)).product();
        Ok(Operand::Node(self.push("mul", ops, whole, v)?))
    }

    /// The node computing the non-constant expression `e`.
    fn node(&mut self, e: &Expr) -> Result<usize, EvalError> {
        match e {
            Expr::Num(_) | Expr::Const(_) => {
                let Operand::Const { value, text } = self.constant(e)? else {
                    return Err(EvalError::NotFinite {
                        expression: quote(e),
                    });
                };
                self.push(
                    "const",
                    vec![(Operand::Const { value, text }, 1.0)],
                    e,
                    value,
                )
            }
            Expr::Var(name) => match (self.vars)(name) {
                Some(v) => {
                    let op = Operand::Const {
                        value: v,
                        text: name.clone(),
                    };
                    self.push("input", vec![(op, 1.0)], e, v)
                }
                None => Err(EvalError::UnknownVariable(name.clone())),
            },
            Expr::Add(ts) => {
                let mut ops = Vec::with_capacity(ts.len());
                for t in ts {
                    match t {
                        Expr::Neg(inner) => ops.push((self.operand(inner)?, -1.0)),
                        t => ops.push((self.operand(t)?, 1.0)),
                    }
                }
                let v = ops.iter().map(|(o, s)| s * self.value_of(o)).sum();
                self.push("add", ops, e, v)
            }
            Expr::Neg(a) => {
                let o = self.operand(a)?;
                let v = -self.value_of(&o);
                self.push("neg", vec![(o, 1.0)], e, v)
            }
            Expr::Mul { num, den } => {
                if den.is_empty() {
                    return match self.product(num, e)? {
                        Operand::Node(i) => Ok(i),
                        c @ Operand::Const { .. } => {
                            let v = self.value_of(&c);
                            self.push("const", vec![(c, 1.0)], e, v)
                        }
                    };
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
                let b = self.value_of(&bottom);
                if b == 0.0 {
                    return Err(EvalError::DivisionByZero {
                        divisor: quote(&bottom_expr),
                    });
                }
                let v = self.value_of(&top) / b;
                self.push("div", vec![(top, 1.0), (bottom, 1.0)], e, v)
            }
            Expr::Pow(a, b) => {
                let base = self.operand(a)?;
                let exponent = self.operand(b)?;
                let v = pow(self.value_of(&base), self.value_of(&exponent), e)?;
                self.push("pow", vec![(base, 1.0), (exponent, 1.0)], e, v)
            }
            Expr::Call(f, args) => {
                let mut ops = Vec::with_capacity(args.len());
                for a in args {
                    ops.push((self.operand(a)?, 1.0));
                }
                let vals: Vec<f64> = ops.iter().map(|(o, _)| self.value_of(o)).collect();
                let v = match (f, args.as_slice(), vals.as_slice()) {
                    (Func::Max, _, [first, rest @ ..]) => {
                        rest.iter().fold(*first, |a, b| a.max(*b))
                    }
                    (Func::Min, _, [first, rest @ ..]) => {
                        rest.iter().fold(*first, |a, b| a.min(*b))
                    }
                    (_, [arg], [x]) => apply_unary(*f, *x, arg)?,
                    _ => {
                        return Err(EvalError::Arity {
                            function: f.name(),
                            count: args.len(),
                        });
                    }
                };
                self.push(f.name(), ops, e, v)
            }
        }
    }

    /// ∂node/∂operand_k for the node at `id`.
    fn local(&self, id: usize, k: usize) -> Result<f64, EvalError> {
        let (Some(n), Some(ops)) = (self.nodes.get(id), self.operands.get(id)) else {
            return Ok(0.0);
        };
        let x = |j: usize| ops.get(j).map_or(f64::NAN, |(o, _)| self.value_of(o));
        let out = n.value;
        let what = format!("d({})/d(operand {})", n.expression, k + 1);
        let g = match n.op.as_str() {
            "add" => ops.get(k).map_or(0.0, |(_, s)| *s),
            "neg" => -1.0,
            "mul" => (0..ops.len()).filter(|&j| j != k).map(x).product(),
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
                    b * pow(a, b - 1.0, &Expr::Var(what.clone()))?
                } else if a > 0.0 {
                    out * a.ln()
                } else {
                    return Err(EvalError::LogDomain {
                        function: "ln",
                        argument: format!("base of {}", n.expression),
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
                    Some(Func::Relu) => apply_unary(Func::Step, u, &Expr::Num(u))?,
                    Some(Func::Abs) => apply_unary(Func::Sign, u, &Expr::Num(u))?,
                    Some(Func::Softplus) => sigmoid(u),
                    Some(Func::Max | Func::Min) => {
                        let first = (0..ops.len()).find(|&j| x(j) == out);
                        if first == Some(k) { 1.0 } else { 0.0 }
                    }
                    _ => 0.0,
                }
            }
        };
        finite(g, &what)
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
        operands: Vec::new(),
        index: HashMap::new(),
    };
    let out = b.node(e)?;
    // Local gradients towards the node operands.
    for id in 0..b.nodes.len() {
        let ops = b.operands.get(id).cloned().unwrap_or_default();
        let mut locals = Vec::new();
        for (k, (o, _)) in ops.iter().enumerate() {
            if matches!(o, Operand::Node(_)) {
                locals.push(b.local(id, k)?);
            }
        }
        if let Some(n) = b.nodes.get_mut(id) {
            n.local_gradients = locals;
        }
    }
    // Reverse accumulation, remembering who consumed whom for the steps.
    let mut adj = vec![0.0; b.nodes.len()];
    if let Some(a) = adj.get_mut(out) {
        *a = 1.0;
    }
    let mut consumers: Vec<Vec<(usize, f64)>> = vec![Vec::new(); b.nodes.len()];
    for id in (0..b.nodes.len()).rev() {
        let Some(n) = b.nodes.get(id) else { continue };
        let a = adj.get(id).copied().unwrap_or(0.0);
        for (&i, &g) in n.inputs.iter().zip(&n.local_gradients) {
            if let Some(slot) = adj.get_mut(i) {
                *slot += a * g;
            }
            if let Some(c) = consumers.get_mut(i) {
                c.push((id, g));
            }
        }
    }
    for (n, a) in b.nodes.iter_mut().zip(&adj) {
        n.adjoint = *a;
    }
    let tex_name = |i: usize| format!("v_{{{i}}}");
    let mut forward_steps = Vec::new();
    for (id, n) in b.nodes.iter().enumerate() {
        let ops = b.operands.get(id).cloned().unwrap_or_default();
        let numbers = b.formula(&n.op, &ops, &|o| wrap_negative(fmt_num(b.value_of(o))));
        let text = if n.op == "input" || n.op == "const" {
            format!("{} = {} = {}", n.name, n.expression, fmt_num(n.value))
        } else {
            format!(
                "{} = {} = {} = {}",
                n.name,
                n.formula,
                numbers,
                fmt_num(n.value)
            )
        };
        let tex_formula = b
            .formula(&n.op, &ops, &|o| match o {
                Operand::Node(i) => tex_name(*i),
                Operand::Const { text, .. } => text.clone(),
            })
            .replace('*', " \\cdot ");
        forward_steps.push(Step::new(
            text,
            format!(
                "{} = {} = {}",
                tex_name(id),
                if n.op == "input" || n.op == "const" {
                    n.latex.clone()
                } else {
                    tex_formula
                },
                fmt_num(n.value)
            ),
        ));
    }
    let mut backward_steps = Vec::new();
    for id in (0..b.nodes.len()).rev() {
        let Some(n) = b.nodes.get(id) else { continue };
        let a = adj.get(id).copied().unwrap_or(0.0);
        if id == out {
            backward_steps.push(Step::new(
                format!("df/d{} = 1", n.name),
                format!("\\frac{{\\partial f}}{{\\partial {}}} = 1", tex_name(id)),
            ));
            continue;
        }
        let mut sym = Vec::new();
        let mut sym_tex = Vec::new();
        let mut num = Vec::new();
        for &(c, g) in consumers.get(id).map(Vec::as_slice).unwrap_or_default() {
            let ca = adj.get(c).copied().unwrap_or(0.0);
            sym.push(format!("df/dv{c} * dv{c}/dv{id}"));
            sym_tex.push(format!(
                "\\frac{{\\partial f}}{{\\partial {}}} \\frac{{\\partial {}}}{{\\partial {}}}",
                tex_name(c),
                tex_name(c),
                tex_name(id)
            ));
            num.push(format!(
                "{}*{}",
                wrap_negative(fmt_num(ca)),
                wrap_negative(fmt_num(g))
            ));
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
                "\\frac{{\\partial f}}{{\\partial {}}} = {} = {} = {}",
                tex_name(id),
                sym_tex.join(" + "),
                num.join(" + ").replace('*', " \\cdot "),
                fmt_num(a)
            ),
        ));
    }
    let mut gradient = BTreeMap::new();
    for (n, a) in b.nodes.iter().zip(&adj) {
        if n.op == "input" {
            gradient.insert(n.expression.clone(), *a);
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
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(
            ops,
            [
                "input", "pow", "pow", "mul", "input", "pow", "pow", "mul", "add"
            ]
        );
        let formulas: Vec<&str> = g.nodes.iter().map(|n| n.formula.as_str()).collect();
        assert_eq!(formulas[8], "v1 - v3 + v5 - v7");
        assert_eq!(formulas[3], "32*v2");
        assert_eq!(g.nodes[8].local_gradients, vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(
            g.nodes.last().map(|n| n.value),
            Some(16.0 - 128.0 + 16.0 - 72.0)
        );
        assert_eq!(g.forward_steps[1].text, "v1 = v0^4 = 2^4 = 16");
        assert_eq!(
            g.forward_steps[8].text,
            "v8 = v1 - v3 + v5 - v7 = 16 - 128 + 16 - 72 = -168"
        );
        assert_eq!(
            g.backward_steps.last().map(|s| s.text.as_str()),
            Some("df/dv0 = df/dv2 * dv2/dv0 + df/dv1 * dv1/dv0 = (-32)*4 + 1*32 = -96")
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
    fn long_sums_stay_small() {
        let src = (1..=400)
            .map(|k| format!("{k}x^{}", k % 7))
            .collect::<Vec<_>>()
            .join(" + ");
        let g = graph(&src, &[("x", 1.0)]);
        let want: f64 = (1..=400).map(|k| f64::from(k * (k % 7))).sum();
        assert_eq!(g.gradient.get("x"), Some(&want));
        // x, the distinct powers x^0..x^6 shared across terms, 400 products and the sum
        assert!(g.nodes.len() < 420, "{}", g.nodes.len());
    }

    #[test]
    fn errors_at_undefined_points() {
        let e = parse("sqrt(x)", &ExprLimits::default()).ok();
        let zero = |_: &str| Some(0.0);
        let r = e.map(|e| computation_graph(&e, &zero).is_err());
        assert_eq!(r, Some(true));
    }
}
