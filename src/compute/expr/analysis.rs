//! The calculus endpoint: values, exact gradients and Hessians at points,
//! symbolic derivatives, classification of points (eigenvalues by the Jacobi
//! method plus Sylvester's leading principal minors as worked steps),
//! critical points of polynomial functions whose gradient equations separate
//! (or, with two variables, reduce to one polynomial by eliminating a
//! linearly occurring variable), and computation graphs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::graph::{ComputationGraph, computation_graph};
use super::{DERIVATIVE_NODE_BUDGET, DiffError, EvalError, Expr, ExprLimits, parse, poly};
use crate::compute::error::{ComputeError, ComputeResult};
use crate::compute::limits::Limits;
use crate::compute::steps::{Step, fmt_num};

/// Most variables one request may differentiate by (the Hessian has n² entries).
pub const MAX_VARIABLES: usize = 16;
/// Most points one request may evaluate.
pub const MAX_POINTS: usize = 1000;
/// Most critical points enumerated (product of the per-variable root counts).
pub const MAX_CRITICAL_POINTS: usize = 1000;

fn default_true() -> bool {
    true
}

fn default_tolerance() -> f64 {
    1e-9
}

/// What to compute about a function of several variables.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculusRequest {
    /// The function, in plain math: `x^4 - 32x^2 + y^4 - 18y^2`,
    /// `-ln(2w1 - 1.5w2)`, `sigmoid(w x + b)`. Implicit multiplication,
    /// `**`, unicode `×·−√²` and the functions exp, ln/log, log10, log2, sqrt,
    /// sin, cos, tan, tanh, sigmoid/σ, relu, abs, softplus, max, min, step,
    /// sign are understood; `pi` and `e` are constants.
    pub expression: String,
    /// Order of the variables in gradients and Hessians. Default: the
    /// variables of the expression, alphabetically. May list variables the
    /// expression does not use (their derivatives are 0).
    #[serde(default)]
    pub variables: Option<Vec<String>>,
    /// Points to evaluate at, each an object mapping every variable to its
    /// value, e.g. `{"x": 2, "y": 2}`. Default: none.
    #[serde(default)]
    pub points: Vec<BTreeMap<String, f64>>,
    /// Compute the Hessian (symbolically and at each point) and classify
    /// the points. Default: true.
    #[serde(default = "default_true")]
    pub hessian: bool,
    /// Include the computation graph (forward values and backpropagated
    /// adjoints) at each point. Default: false.
    #[serde(default)]
    pub graph: bool,
    /// Solve grad f = 0 and classify every critical point found. Solved
    /// exactly when every partial derivative is a polynomial in its own
    /// variable only (e.g. `x^4 - 32x^2 + y^4 - 18y^2`: 9 points), or, for two
    /// variables, when one equation is linear in one variable with a constant
    /// coefficient (e.g. `x^3 + y^3 - 3xy`: y = x^2, then 3x^4 - 3x = 0).
    /// Otherwise the report says why it was not solved. Default: false.
    #[serde(default)]
    pub critical_points: bool,
    /// Relative tolerance for "the gradient is zero" and "an eigenvalue is
    /// zero" (see `PointReport::classification`). Default: 1e-9.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

/// A symbolic expression in plain text and LaTeX.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SymbolicExpr {
    /// Plain text that the expression parser reads back.
    pub text: String,
    /// LaTeX.
    pub latex: String,
}

impl SymbolicExpr {
    fn of(e: &Expr) -> Self {
        Self {
            text: e.to_string(),
            latex: e.to_latex(),
        }
    }
}

/// A simplified partial derivative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Derivative {
    /// The variables differentiated by, in order (`["x"]` for ∂f/∂x,
    /// `["x", "y"]` for ∂²f/∂x∂y).
    pub with_respect_to: Vec<String>,
    /// The derivative, simplified.
    pub derivative: SymbolicExpr,
}

/// What a point is for the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Gradient zero, Hessian positive definite.
    LocalMinimum,
    /// Gradient zero, Hessian negative definite.
    LocalMaximum,
    /// Gradient zero, Hessian indefinite (eigenvalues of both signs).
    SaddlePoint,
    /// Gradient zero, Hessian semi-definite with a zero eigenvalue: the
    /// second-derivative test is inconclusive.
    Degenerate,
    /// The gradient is not zero.
    NotCritical,
}

impl Classification {
    fn describe(self) -> &'static str {
        match self {
            Classification::LocalMinimum => "a local minimum",
            Classification::LocalMaximum => "a local maximum",
            Classification::SaddlePoint => "a saddle point",
            Classification::Degenerate => "a degenerate critical point (test inconclusive)",
            Classification::NotCritical => "not a critical point",
        }
    }
}

/// Everything computed at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PointReport {
    /// The point: variable name -> value.
    pub point: BTreeMap<String, f64>,
    /// f at the point.
    pub value: f64,
    /// ∂f/∂v for each variable in `variables` order (exact symbolic
    /// derivatives evaluated, not finite differences).
    pub gradient: Vec<f64>,
    /// The Hessian ∂²f/∂v_i∂v_j (row i, column j), when requested.
    pub hessian: Option<Vec<Vec<f64>>>,
    /// Eigenvalues of the Hessian, ascending (Jacobi eigenvalue algorithm).
    pub eigenvalues: Option<Vec<f64>>,
    /// Determinants of the leading k×k blocks of the Hessian, k = 1..n
    /// (Sylvester's criterion).
    pub leading_principal_minors: Option<Vec<f64>>,
    /// The point's type. The gradient counts as zero when every |∂f/∂v| ≤
    /// tolerance · max(1, max|H_ij| · max(1, max|v|)); an eigenvalue counts as
    /// zero when |λ| ≤ tolerance · max(1, max|λ|). Null without a Hessian.
    pub classification: Option<Classification>,
    /// The computation graph with forward values and adjoints, when
    /// requested.
    pub graph: Option<ComputationGraph>,
    /// Worked steps for this point.
    pub steps: Vec<Step>,
}

/// The critical points of f, when they could be solved for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CriticalPointsReport {
    /// Whether grad f = 0 was solved completely (false: see `note`).
    pub solved: bool,
    /// How it was solved, or why not.
    pub note: String,
    /// Every real critical point, classified (empty when not solved).
    pub points: Vec<PointReport>,
    /// Worked steps: each equation ∂f/∂v = 0 and its real solutions.
    pub steps: Vec<Step>,
}

/// The answer to a [`CalculusRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CalculusReport {
    /// The function as parsed (normalized text and LaTeX).
    pub expression: SymbolicExpr,
    /// The function simplified.
    pub simplified: SymbolicExpr,
    /// The variables, in the order used by gradients and Hessians.
    pub variables: Vec<String>,
    /// ∂f/∂v for each variable.
    pub gradient: Vec<Derivative>,
    /// ∂²f/∂v_i∂v_j (row i, column j), when requested.
    pub hessian: Option<Vec<Vec<Derivative>>>,
    /// One report per requested point, in request order.
    pub points: Vec<PointReport>,
    /// Critical points, when requested.
    pub critical_points: Option<CriticalPointsReport>,
    /// Worked steps for the symbolic part.
    pub steps: Vec<Step>,
}

/// Escapes a JSON-pointer reference token (RFC 6901).
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn diff_error(e: DiffError) -> ComputeError {
    ComputeError::new("/expression", e.to_string())
}

struct Symbolic {
    vars: Vec<String>,
    f: Expr,
    grad: Vec<Expr>,
    hess: Option<Vec<Vec<Expr>>>,
}

fn var_list(req: &CalculusRequest, f: &Expr) -> ComputeResult<Vec<String>> {
    let used = f.variables();
    let vars = match &req.variables {
        None => used.iter().cloned().collect::<Vec<_>>(),
        Some(list) => {
            for (i, v) in list.iter().enumerate() {
                if list.iter().take(i).any(|w| w == v) {
                    return Err(ComputeError::new(
                        format!("/variables/{i}"),
                        format!("variable `{v}` is listed twice"),
                    ));
                }
            }
            if let Some(missing) = used.iter().find(|u| !list.contains(u)) {
                return Err(ComputeError::new(
                    "/variables",
                    format!("the expression uses `{missing}`, which is not in `variables`"),
                ));
            }
            list.clone()
        }
    };
    if vars.len() > MAX_VARIABLES {
        return Err(ComputeError::new(
            if req.variables.is_some() {
                "/variables"
            } else {
                "/expression"
            },
            format!(
                "{} variables; at most {MAX_VARIABLES} are supported",
                vars.len()
            ),
        ));
    }
    Ok(vars)
}

fn lookup<'a>(point: &'a BTreeMap<String, f64>) -> impl Fn(&str) -> Option<f64> + 'a {
    move |n: &str| point.get(n).copied()
}

fn substitute(e: &Expr, point: &BTreeMap<String, f64>) -> Expr {
    match e {
        Expr::Var(v) => point.get(v).map_or_else(|| e.clone(), |x| Expr::Num(*x)),
        Expr::Num(_) | Expr::Const(_) => e.clone(),
        Expr::Add(ts) => Expr::Add(ts.iter().map(|t| substitute(t, point)).collect()),
        Expr::Mul { num, den } => Expr::Mul {
            num: num.iter().map(|t| substitute(t, point)).collect(),
            den: den.iter().map(|t| substitute(t, point)).collect(),
        },
        Expr::Neg(a) => Expr::Neg(Box::new(substitute(a, point))),
        Expr::Pow(a, b) => Expr::Pow(
            Box::new(substitute(a, point)),
            Box::new(substitute(b, point)),
        ),
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(|t| substitute(t, point)).collect()),
    }
}

fn point_text(vars: &[String], point: &BTreeMap<String, f64>) -> String {
    vars.iter()
        .map(|v| point.get(v).map_or_else(|| "?".into(), |x| fmt_num(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn matrix_text(m: &[Vec<f64>]) -> (String, String) {
    let rows: Vec<String> = m
        .iter()
        .map(|r| {
            format!(
                "[{}]",
                r.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    let tex_rows: Vec<String> = m
        .iter()
        .map(|r| {
            r.iter()
                .map(|x| fmt_num(*x))
                .collect::<Vec<_>>()
                .join(" & ")
        })
        .collect();
    (
        format!("[{}]", rows.join(", ")),
        format!(
            "\\begin{{pmatrix}} {} \\end{{pmatrix}}",
            tex_rows.join(" \\\\ ")
        ),
    )
}

/// Eigenvalues of a symmetric matrix by the cyclic Jacobi method, ascending.
pub fn symmetric_eigenvalues(m: &[Vec<f64>]) -> Vec<f64> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m.to_vec();
    let get = |a: &Vec<Vec<f64>>, i: usize, j: usize| {
        a.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0)
    };
    let norm: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| get(&a, i, j).powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-300 || off <= 1e-17 * norm {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = get(&a, p, q);
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (get(&a, p, p), get(&a, q, q));
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (get(&a, k, p), get(&a, k, q));
                    if let Some(r) = a.get_mut(k) {
                        if let Some(x) = r.get_mut(p) {
                            *x = c * akp - s * akq;
                        }
                        if let Some(x) = r.get_mut(q) {
                            *x = s * akp + c * akq;
                        }
                    }
                }
                for k in 0..n {
                    let (apk, aqk) = (get(&a, p, k), get(&a, q, k));
                    if let Some(r) = a.get_mut(p)
                        && let Some(x) = r.get_mut(k)
                    {
                        *x = c * apk - s * aqk;
                    }
                    if let Some(r) = a.get_mut(q)
                        && let Some(x) = r.get_mut(k)
                    {
                        *x = s * apk + c * aqk;
                    }
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| get(&a, i, i)).collect();
    ev.sort_by(f64::total_cmp);
    ev
}

/// Determinant by Gaussian elimination with partial pivoting.
pub fn determinant(m: &[Vec<f64>]) -> f64 {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .map(|r| r.iter().take(n).copied().collect())
        .collect();
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| {
            let vi = a.get(i).and_then(|r| r.get(col)).map_or(0.0, |x| x.abs());
            let vj = a.get(j).and_then(|r| r.get(col)).map_or(0.0, |x| x.abs());
            vi.total_cmp(&vj)
        });
        let Some(pivot) = pivot else { return 0.0 };
        let pv = a
            .get(pivot)
            .and_then(|r| r.get(col))
            .copied()
            .unwrap_or(0.0);
        if pv == 0.0 {
            return 0.0;
        }
        if pivot != col {
            a.swap(pivot, col);
            det = -det;
        }
        det *= pv;
        let prow = a.get(col).cloned().unwrap_or_default();
        for row in a.iter_mut().skip(col + 1) {
            let factor = row.get(col).copied().unwrap_or(0.0) / pv;
            for (x, p) in row.iter_mut().zip(&prow).skip(col) {
                *x -= factor * p;
            }
        }
    }
    det
}

fn eval_at(e: &Expr, point: &BTreeMap<String, f64>, i: usize, what: &str) -> ComputeResult<f64> {
    e.eval(&lookup(point)).map_err(|err| match err {
        EvalError::UnknownVariable(v) => ComputeError::new(
            format!("/points/{i}/{}", token(&v)),
            format!("no value given for variable `{v}`"),
        ),
        other => ComputeError::new(
            format!("/points/{i}"),
            format!("{what} is undefined at this point: {other}"),
        ),
    })
}

fn classify(
    grad: &[f64],
    hess: &[Vec<f64>],
    eig: &[f64],
    point: &[f64],
    tol: f64,
) -> Classification {
    let h_max = hess.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    let x_max = point.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let g_tol = tol * (h_max * x_max).max(1.0);
    if grad.iter().any(|g| g.abs() > g_tol) {
        return Classification::NotCritical;
    }
    if eig.is_empty() {
        return Classification::Degenerate;
    }
    let l_tol = tol * eig.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let pos = eig.iter().filter(|l| **l > l_tol).count();
    let neg = eig.iter().filter(|l| **l < -l_tol).count();
    if pos == eig.len() {
        Classification::LocalMinimum
    } else if neg == eig.len() {
        Classification::LocalMaximum
    } else if pos > 0 && neg > 0 {
        Classification::SaddlePoint
    } else {
        Classification::Degenerate
    }
}

fn analyse_point(
    sym: &Symbolic,
    point: &BTreeMap<String, f64>,
    i: usize,
    graph: bool,
    tol: f64,
) -> ComputeResult<PointReport> {
    let vars = &sym.vars;
    for k in point.keys() {
        if !vars.contains(k) {
            return Err(ComputeError::new(
                format!("/points/{i}/{}", token(k)),
                format!("`{k}` is not a variable of the expression"),
            ));
        }
    }
    if let Some(v) = vars.iter().find(|v| !point.contains_key(*v)) {
        return Err(ComputeError::new(
            format!("/points/{i}/{}", token(v)),
            format!("no value given for variable `{v}`"),
        ));
    }
    let at = point_text(vars, point);
    let mut steps = Vec::new();
    let value = eval_at(&sym.f, point, i, "f")?;
    let sub = substitute(&sym.f, point);
    steps.push(Step::new(
        format!("f({at}) = {sub} = {}", fmt_num(value)),
        format!("f({at}) = {} = {}", sub.to_latex(), fmt_num(value)),
    ));
    let mut gradient = Vec::with_capacity(vars.len());
    for (g, v) in sym.grad.iter().zip(vars) {
        let x = eval_at(g, point, i, &format!("df/d{v}"))?;
        let sub = substitute(g, point);
        steps.push(Step::new(
            format!("df/d{v}({at}) = {sub} = {}", fmt_num(x)),
            format!(
                "\\frac{{\\partial f}}{{\\partial {}}} = {} = {}",
                Expr::var(v).to_latex(),
                sub.to_latex(),
                fmt_num(x)
            ),
        ));
        gradient.push(x);
    }
    let (mut hessian, mut eigenvalues, mut minors, mut classification) = (None, None, None, None);
    if let Some(hs) = &sym.hess {
        let mut h = Vec::with_capacity(hs.len());
        for row in hs {
            let mut r = Vec::with_capacity(row.len());
            for e in row {
                r.push(eval_at(e, point, i, "the Hessian")?);
            }
            h.push(r);
        }
        let (ht, htex) = matrix_text(&h);
        steps.push(Step::new(format!("H({at}) = {ht}"), format!("H = {htex}")));
        let eig = symmetric_eigenvalues(&h);
        let ev_text = eig
            .iter()
            .map(|x| fmt_num(*x))
            .collect::<Vec<_>>()
            .join(", ");
        steps.push(Step::new(
            format!("eigenvalues of H: {ev_text}"),
            format!("\\lambda(H) = {ev_text}"),
        ));
        let ms: Vec<f64> = (1..=h.len())
            .map(|k| {
                let block: Vec<Vec<f64>> = h
                    .iter()
                    .take(k)
                    .map(|r| r.iter().take(k).copied().collect())
                    .collect();
                determinant(&block)
            })
            .collect();
        let ms_text = ms
            .iter()
            .enumerate()
            .map(|(k, d)| format!("D{} = {}", k + 1, fmt_num(*d)))
            .collect::<Vec<_>>()
            .join(", ");
        let ms_tex = ms
            .iter()
            .enumerate()
            .map(|(k, d)| format!("D_{{{}}} = {}", k + 1, fmt_num(*d)))
            .collect::<Vec<_>>()
            .join(",\\ ");
        steps.push(Step::new(
            format!("leading principal minors: {ms_text}"),
            ms_tex,
        ));
        let coords: Vec<f64> = vars.iter().filter_map(|v| point.get(v).copied()).collect();
        let c = classify(&gradient, &h, &eig, &coords, tol);
        let why = match c {
            Classification::NotCritical => "the gradient is not zero".to_string(),
            Classification::LocalMinimum => "gradient zero and all eigenvalues positive".into(),
            Classification::LocalMaximum => "gradient zero and all eigenvalues negative".into(),
            Classification::SaddlePoint => "gradient zero and eigenvalues of both signs".into(),
            Classification::Degenerate => {
                "gradient zero but an eigenvalue is zero and none has the opposite sign".into()
            }
        };
        steps.push(Step::new(
            format!("({at}) is {}: {why}", c.describe()),
            format!("({at})\\ \\text{{is {}: {why}}}", c.describe()),
        ));
        hessian = Some(h);
        eigenvalues = Some(eig);
        minors = Some(ms);
        classification = Some(c);
    }
    let graph = if graph {
        let g = computation_graph(&sym.f, &lookup(point)).map_err(|err| {
            ComputeError::new(
                format!("/points/{i}"),
                format!("the computation graph cannot be evaluated here: {err}"),
            )
        })?;
        Some(g)
    } else {
        None
    };
    Ok(PointReport {
        point: point.clone(),
        value,
        gradient,
        hessian,
        eigenvalues,
        leading_principal_minors: minors,
        classification,
        graph,
        steps,
    })
}

/// Replaces every occurrence of the variable `name` by `with`.
fn replace_var(e: &Expr, name: &str, with: &Expr) -> Expr {
    let r = |t: &Expr| replace_var(t, name, with);
    match e {
        Expr::Var(v) if v == name => with.clone(),
        Expr::Num(_) | Expr::Const(_) | Expr::Var(_) => e.clone(),
        Expr::Add(ts) => Expr::Add(ts.iter().map(r).collect()),
        Expr::Mul { num, den } => Expr::Mul {
            num: num.iter().map(r).collect(),
            den: den.iter().map(r).collect(),
        },
        Expr::Neg(a) => Expr::Neg(Box::new(r(a))),
        Expr::Pow(a, b) => Expr::Pow(Box::new(r(a)), Box::new(r(b))),
        Expr::Call(f, args) => Expr::Call(*f, args.iter().map(r).collect()),
    }
}

fn roots_text(roots: &[f64]) -> String {
    roots
        .iter()
        .map(|r| fmt_num(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why grad f = 0 was not solved, or its solutions with the working.
type Solutions = Result<(Vec<BTreeMap<String, f64>>, Vec<Step>, String), String>;

/// Every partial derivative a polynomial in its own variable only: one
/// univariate equation per variable, all combinations of the roots.
fn solve_separable(sym: &Symbolic) -> Solutions {
    let mut steps = Vec::new();
    let mut root_sets: Vec<Vec<f64>> = Vec::new();
    for (g, v) in sym.grad.iter().zip(&sym.vars) {
        if let Some(other) = g.variables().into_iter().find(|w| w != v) {
            return Err(format!(
                "df/d{v} = {g} also depends on `{other}`: the equations do not separate"
            ));
        }
        let Some(p) = poly::to_poly(g, v) else {
            return Err(format!(
                "df/d{v} = {g} is not a polynomial in {v} (degree <= {})",
                poly::MAX_DEGREE
            ));
        };
        if poly::is_zero(&p) {
            return Err(format!(
                "df/d{v} = 0 for every {v}: the critical points are not isolated"
            ));
        }
        let roots = poly::real_roots(&p);
        let list = roots_text(&roots);
        let var_tex = Expr::var(v).to_latex();
        steps.push(Step::new(
            format!("df/d{v} = {g} = 0  =>  {v} in {{{list}}}"),
            format!(
                "\\frac{{\\partial f}}{{\\partial {var_tex}}} = {} = 0 \\Rightarrow {var_tex} \\in \\{{{list}\\}}",
                g.to_latex()
            ),
        ));
        root_sets.push(roots);
    }
    let total = root_sets
        .iter()
        .try_fold(1usize, |acc, r| acc.checked_mul(r.len()))
        .filter(|t| *t <= MAX_CRITICAL_POINTS)
        .ok_or_else(|| {
            format!("more than {MAX_CRITICAL_POINTS} critical points; not enumerated")
        })?;
    steps.push(Step::new(
        format!("every combination is a critical point: {total} in all"),
        format!("\\text{{every combination is a critical point: {total} in all}}"),
    ));
    let mut points = Vec::with_capacity(total);
    for idx in 0..total {
        let mut rem = idx;
        let mut point = BTreeMap::new();
        for (v, roots) in sym.vars.iter().zip(&root_sets).rev() {
            let n = roots.len().max(1);
            point.insert(v.clone(), roots.get(rem % n).copied().unwrap_or(0.0));
            rem /= n;
        }
        points.push(point);
    }
    Ok((
        points,
        steps,
        "each partial derivative is a polynomial in its own variable only, so grad f = 0 separates into one equation per variable, solved exactly for its real roots".into(),
    ))
}

/// Two variables where one equation is linear in one variable with a
/// constant coefficient (`3x^2 - 3y = 0` gives `y = x^2`): solve it for that
/// variable, substitute into the other equation, solve the resulting
/// polynomial for its real roots and substitute back.
fn solve_by_elimination(sym: &Symbolic) -> Solutions {
    let (Some(a), Some(b), 2) = (sym.vars.first(), sym.vars.get(1), sym.vars.len()) else {
        return Err("elimination is only tried for two variables".into());
    };
    let (Some(ga), Some(gb)) = (sym.grad.first(), sym.grad.get(1)) else {
        return Err("missing gradient".into());
    };
    for (wrt, g, other_wrt, other_g) in [(a, ga, b, gb), (b, gb, a, ga)] {
        for (v, u) in [(a, b), (b, a)] {
            let Ok(c) = g.derivative(v) else { continue };
            if !c.is_constant()
                || c.eval(&|_| None).is_ok_and(|c| c == 0.0)
                || c.eval(&|_| None).is_err()
            {
                continue;
            }
            let rest = replace_var(g, v, &Expr::Num(0.0)).simplified();
            let sol = Expr::Mul {
                num: vec![Expr::Neg(Box::new(rest))],
                den: vec![c],
            }
            .simplified();
            if sol.depends_on(v) {
                continue;
            }
            let h = replace_var(other_g, v, &sol).simplified();
            if h.variables().iter().any(|w| w != u) {
                continue;
            }
            let Some(p) = poly::to_poly(&h, u) else {
                continue;
            };
            if poly::is_zero(&p) {
                return Err(format!(
                    "after substituting {v} = {sol}, df/d{other_wrt} = 0 for every {u}: the critical points are not isolated"
                ));
            }
            let roots = poly::real_roots(&p);
            let (vt, ut) = (Expr::var(v).to_latex(), Expr::var(u).to_latex());
            let mut steps = vec![
                Step::new(
                    format!("df/d{wrt} = {g} = 0  =>  {v} = {sol}"),
                    format!(
                        "\\frac{{\\partial f}}{{\\partial {}}} = {} = 0 \\Rightarrow {vt} = {}",
                        Expr::var(wrt).to_latex(),
                        g.to_latex(),
                        sol.to_latex()
                    ),
                ),
                Step::new(
                    format!(
                        "substitute into df/d{other_wrt} = {other_g}: {h} = 0  =>  {u} in {{{}}}",
                        roots_text(&roots)
                    ),
                    format!(
                        "{} = 0 \\Rightarrow {ut} \\in \\{{{}\\}}",
                        h.to_latex(),
                        roots_text(&roots)
                    ),
                ),
            ];
            let mut points = Vec::with_capacity(roots.len());
            for r in &roots {
                let at = |n: &str| (n == u.as_str()).then_some(*r);
                let Ok(vv) = sol.eval(&at) else {
                    return Err(format!("{v} = {sol} is undefined at {u} = {}", fmt_num(*r)));
                };
                steps.push(Step::new(
                    format!("{u} = {}  =>  {v} = {}", fmt_num(*r), fmt_num(vv)),
                    format!("{ut} = {} \\Rightarrow {vt} = {}", fmt_num(*r), fmt_num(vv)),
                ));
                points.push([(u.clone(), *r), (v.clone(), vv)].into_iter().collect());
            }
            return Ok((
                points,
                steps,
                format!(
                    "df/d{wrt} = 0 is linear in {v}; solving it for {v} and substituting leaves one polynomial equation in {u}, solved exactly for its real roots"
                ),
            ));
        }
    }
    Err("no equation is linear in a variable with a constant coefficient".into())
}

fn critical_points(sym: &Symbolic, tol: f64) -> ComputeResult<CriticalPointsReport> {
    let unsolved = |note: String| CriticalPointsReport {
        solved: false,
        note,
        points: Vec::new(),
        steps: Vec::new(),
    };
    if sym.vars.is_empty() {
        return Ok(unsolved("the function has no variables".into()));
    }
    let (list, steps, note) = match solve_separable(sym) {
        Ok(found) => found,
        Err(why) => match solve_by_elimination(sym) {
            Ok(found) => found,
            Err(why2) => {
                return Ok(unsolved(format!(
                    "not solved: {why}; {why2} (only separable equations and two-variable systems with one linear equation are solved)"
                )));
            }
        },
    };
    let mut points = Vec::with_capacity(list.len());
    for (idx, point) in list.iter().enumerate() {
        let report = analyse_point(sym, point, idx, false, tol).map_err(|e| {
            ComputeError::new(
                "/expression",
                format!(
                    "at the critical point ({}): {}",
                    point_text(&sym.vars, point),
                    e.message
                ),
            )
        })?;
        points.push(report);
    }
    Ok(CriticalPointsReport {
        solved: true,
        note,
        points,
        steps,
    })
}

/// `df/dv = d(t1)/dv + d(t2)/dv + ... = t1' + t2' + ...`: the sum rule
/// applied term by term, as a worked step.
fn term_by_term(terms: &[Expr], v: &str, vt: &str, budget: &mut usize) -> ComputeResult<Step> {
    let (mut sym, mut sym_tex, mut parts, mut parts_tex) =
        (String::new(), String::new(), String::new(), String::new());
    for (k, t) in terms.iter().enumerate() {
        let (negative, inner) = match t {
            Expr::Neg(inner) => (true, &**inner),
            t => (false, t),
        };
        let sign = match (k, negative) {
            (0, false) => "",
            (0, true) => "-",
            (_, false) => " + ",
            (_, true) => " - ",
        };
        let d = inner.derivative_within(v, budget).map_err(diff_error)?;
        let wrap = matches!(d, Expr::Add(_)) || d.to_string().starts_with('-');
        let (dt, dx) = if wrap {
            (format!("({d})"), format!("\\left({}\\right)", d.to_latex()))
        } else {
            (d.to_string(), d.to_latex())
        };
        sym.push_str(&format!("{sign}d({inner})/d{v}"));
        sym_tex.push_str(&format!(
            "{sign}\\frac{{\\partial}}{{\\partial {vt}}}\\left({}\\right)",
            inner.to_latex()
        ));
        parts.push_str(&format!("{sign}{dt}"));
        parts_tex.push_str(&format!("{sign}{dx}"));
    }
    Ok(Step::new(
        format!("df/d{v} = {sym} = {parts}"),
        format!("\\frac{{\\partial f}}{{\\partial {vt}}} = {sym_tex} = {parts_tex}"),
    ))
}

/// Answers a [`CalculusRequest`].
pub fn calculus(req: &CalculusRequest, limits: &Limits) -> ComputeResult<CalculusReport> {
    let f = parse(&req.expression, &ExprLimits::from(limits)).map_err(|e| {
        ComputeError::new(
            "/expression",
            format!("could not read the expression: {}", e.message),
        )
    })?;
    if !(req.tolerance.is_finite() && req.tolerance > 0.0 && req.tolerance < 1.0) {
        return Err(ComputeError::new(
            "/tolerance",
            "tolerance must be a number between 0 and 1 (exclusive)",
        ));
    }
    if req.points.len() > MAX_POINTS {
        return Err(ComputeError::new(
            "/points",
            format!(
                "{} points; at most {MAX_POINTS} are allowed",
                req.points.len()
            ),
        ));
    }
    let vars = var_list(req, &f)?;
    let simple = f.simplified();
    let mut steps = Vec::new();
    let args = vars.join(", ");
    steps.push(Step::new(
        format!("f({args}) = {f}"),
        format!("f({args}) = {}", f.to_latex()),
    ));
    let mut budget = DERIVATIVE_NODE_BUDGET;
    let mut grad = Vec::with_capacity(vars.len());
    let mut gradient = Vec::with_capacity(vars.len());
    for v in &vars {
        let g = simple
            .derivative_within(v, &mut budget)
            .map_err(diff_error)?;
        let vt = Expr::var(v).to_latex();
        if let Expr::Add(terms) = &simple
            && terms.len() <= 12
        {
            steps.push(term_by_term(terms, v, &vt, &mut budget)?);
        }
        steps.push(Step::new(
            format!("df/d{v} = {g}"),
            format!("\\frac{{\\partial f}}{{\\partial {vt}}} = {}", g.to_latex()),
        ));
        gradient.push(Derivative {
            with_respect_to: vec![v.clone()],
            derivative: SymbolicExpr::of(&g),
        });
        grad.push(g);
    }
    let mut hess_exprs = None;
    let mut hessian = None;
    if req.hessian {
        let n = vars.len();
        let mut h: Vec<Vec<Expr>> = vec![vec![Expr::Num(0.0); n]; n];
        for (i, g) in grad.iter().enumerate() {
            for (j, v) in vars.iter().enumerate().skip(i) {
                let d2 = g.derivative_within(v, &mut budget).map_err(diff_error)?;
                if let Some(row) = h.get_mut(j)
                    && let Some(x) = row.get_mut(i)
                {
                    *x = d2.clone();
                }
                if let Some(row) = h.get_mut(i)
                    && let Some(x) = row.get_mut(j)
                {
                    *x = d2;
                }
            }
        }
        let mut hd = Vec::with_capacity(n);
        for (i, row) in h.iter().enumerate() {
            let mut r = Vec::with_capacity(n);
            for (j, e) in row.iter().enumerate() {
                let (vi, vj) = (
                    vars.get(i).cloned().unwrap_or_default(),
                    vars.get(j).cloned().unwrap_or_default(),
                );
                if j >= i {
                    let (tt, tx) = if i == j {
                        (
                            format!("d2f/d{vi}2"),
                            format!(
                                "\\frac{{\\partial^2 f}}{{\\partial {}^2}}",
                                Expr::var(&vi).to_latex()
                            ),
                        )
                    } else {
                        (
                            format!("d2f/d{vi}d{vj}"),
                            format!(
                                "\\frac{{\\partial^2 f}}{{\\partial {} \\partial {}}}",
                                Expr::var(&vi).to_latex(),
                                Expr::var(&vj).to_latex()
                            ),
                        )
                    };
                    steps.push(Step::new(
                        format!("{tt} = {e}"),
                        format!("{tx} = {}", e.to_latex()),
                    ));
                }
                r.push(Derivative {
                    with_respect_to: vec![vi, vj],
                    derivative: SymbolicExpr::of(e),
                });
            }
            hd.push(r);
        }
        hessian = Some(hd);
        hess_exprs = Some(h);
    }
    let sym = Symbolic {
        vars: vars.clone(),
        f: f.clone(),
        grad,
        hess: hess_exprs,
    };
    let mut points = Vec::with_capacity(req.points.len());
    for (i, p) in req.points.iter().enumerate() {
        points.push(analyse_point(&sym, p, i, req.graph, req.tolerance)?);
    }
    let critical = if req.critical_points {
        if sym.hess.is_none() {
            return Err(ComputeError::new(
                "/critical_points",
                "classifying critical points needs the Hessian: set `hessian` to true",
            ));
        }
        Some(critical_points(&sym, req.tolerance)?)
    } else {
        None
    };
    Ok(CalculusReport {
        expression: SymbolicExpr::of(&f),
        simplified: SymbolicExpr::of(&simple),
        variables: vars,
        gradient,
        hessian,
        points,
        critical_points: critical,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(expr: &str, points: &[&[(&str, f64)]]) -> CalculusRequest {
        CalculusRequest {
            expression: expr.into(),
            variables: None,
            points: points
                .iter()
                .map(|p| p.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                .collect(),
            hessian: true,
            graph: false,
            critical_points: false,
            tolerance: 1e-9,
        }
    }

    fn run(r: &CalculusRequest) -> CalculusReport {
        match calculus(r, &Limits::default()) {
            Ok(rep) => rep,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn exam_function_at_two_two() {
        let mut r = req("x^4 - 32x^2 + y^4 - 18y^2", &[&[("x", 2.0), ("y", 2.0)]]);
        r.graph = true;
        let rep = run(&r);
        assert_eq!(rep.variables, ["x", "y"]);
        assert_eq!(rep.gradient[0].derivative.text, "4*x^3 - 64*x");
        let p = &rep.points[0];
        assert_eq!(p.value, -168.0);
        assert_eq!(p.gradient, vec![-96.0, -40.0]);
        assert_eq!(p.hessian, Some(vec![vec![-16.0, 0.0], vec![0.0, 12.0]]));
        assert_eq!(p.eigenvalues, Some(vec![-16.0, 12.0]));
        assert_eq!(p.leading_principal_minors, Some(vec![-16.0, -192.0]));
        assert_eq!(p.classification, Some(Classification::NotCritical));
        let g = p.graph.as_ref().map(|g| g.gradient.clone());
        assert_eq!(g.and_then(|g| g.get("x").copied()), Some(-96.0));
        assert!(p.steps[0].text.starts_with("f(2, 2) = 2^4 - 32*2^2"));
    }

    #[test]
    fn exam_function_has_nine_critical_points() {
        let mut r = req("x^4 - 32x^2 + y^4 - 18y^2", &[]);
        r.critical_points = true;
        let rep = run(&r);
        let cp = rep.critical_points.unwrap_or_else(|| panic!("no report"));
        assert!(cp.solved);
        assert_eq!(cp.points.len(), 9);
        let count = |c: Classification| {
            cp.points
                .iter()
                .filter(|p| p.classification == Some(c))
                .count()
        };
        assert_eq!(count(Classification::LocalMaximum), 1);
        assert_eq!(count(Classification::LocalMinimum), 4);
        assert_eq!(count(Classification::SaddlePoint), 4);
        let max = cp
            .points
            .iter()
            .find(|p| p.classification == Some(Classification::LocalMaximum))
            .map(|p| p.point.clone());
        assert_eq!(
            max,
            Some([("x".to_string(), 0.0), ("y".to_string(), 0.0)].into())
        );
    }

    #[test]
    fn degenerate_and_non_separable() {
        let rep = run(&req("x^4 + y^2", &[&[("x", 0.0), ("y", 0.0)]]));
        assert_eq!(
            rep.points[0].classification,
            Some(Classification::Degenerate)
        );
        let rep = run(&req("x^3 - y^2", &[&[("x", 0.0), ("y", 0.0)]]));
        assert_eq!(
            rep.points[0].classification,
            Some(Classification::Degenerate)
        );
        let rep = run(&req("x^2 - y^2 + 0*x", &[&[("x", 0.0), ("y", 0.0)]]));
        assert_eq!(
            rep.points[0].classification,
            Some(Classification::SaddlePoint)
        );
        let mut r = req("x*y*sin(x) + y^2*x", &[]);
        r.critical_points = true;
        let cp = run(&r)
            .critical_points
            .unwrap_or_else(|| panic!("no report"));
        assert!(
            !cp.solved && cp.note.contains("do not separate"),
            "{}",
            cp.note
        );
    }

    #[test]
    fn errors_point_at_the_field() {
        let err = |r: &CalculusRequest| {
            calculus(r, &Limits::default())
                .err()
                .unwrap_or_else(|| panic!("no error"))
        };
        let e = err(&req("x + (y", &[]));
        assert_eq!(e.pointer, "/expression");
        assert!(e.message.contains("position"));
        let e = err(&req("x + y", &[&[("x", 1.0)]]));
        assert_eq!(e.pointer, "/points/0/y");
        let e = err(&req("x + y", &[&[("x", 1.0), ("y", 1.0), ("z", 1.0)]]));
        assert_eq!(e.pointer, "/points/0/z");
        let e = err(&req("ln(x)", &[&[("x", 1.0)], &[("x", -1.0)]]));
        assert_eq!(e.pointer, "/points/1");
        assert!(e.message.contains("ln of a non-positive number"));
        let mut r = req("x", &[]);
        r.variables = Some(vec!["x".into(), "x".into()]);
        assert_eq!(err(&r).pointer, "/variables/1");
        r.variables = Some(vec!["y".into()]);
        assert_eq!(err(&r).pointer, "/variables");
        let mut r = req("x", &[]);
        r.tolerance = -1.0;
        assert_eq!(err(&r).pointer, "/tolerance");
    }

    #[test]
    fn two_variable_systems_by_elimination() {
        // f = x^3 + y^3 - 3xy: y = x^2 from df/dx = 0, then 3x^4 - 3x = 0.
        let mut r = req("x^3 + y^3 - 3x y", &[]);
        r.critical_points = true;
        let cp = run(&r)
            .critical_points
            .unwrap_or_else(|| panic!("no report"));
        assert!(cp.solved, "{}", cp.note);
        let found: Vec<(Vec<f64>, Option<Classification>)> = cp
            .points
            .iter()
            .map(|p| (p.point.values().copied().collect(), p.classification))
            .collect();
        assert_eq!(
            found,
            vec![
                (vec![0.0, 0.0], Some(Classification::SaddlePoint)),
                (vec![1.0, 1.0], Some(Classification::LocalMinimum)),
            ]
        );
        assert!(
            cp.steps[0].text.contains("=>  y = x^2"),
            "{}",
            cp.steps[0].text
        );
    }

    #[test]
    fn constant_functions() {
        let mut r = req("2 log 2", &[&[]]);
        r.graph = true;
        let rep = run(&r);
        assert!(rep.variables.is_empty());
        let p = &rep.points[0];
        assert!((p.value - 2.0 * 2f64.ln()).abs() < 1e-15);
        assert_eq!(p.classification, Some(Classification::Degenerate));
        let ops: Vec<String> = p
            .graph
            .as_ref()
            .map(|g| g.nodes.iter().map(|n| n.op.clone()).collect())
            .unwrap_or_default();
        assert_eq!(ops, ["const"]);
    }

    #[test]
    fn worked_steps_read_like_an_exam_solution() {
        let rep = run(&req("x^4 - 32x^2", &[&[("x", -1.0)]]));
        let texts: Vec<&str> = rep.steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts[1], "df/dx = d(x^4)/dx - d(32*x^2)/dx = 4*x^3 - 64*x");
        let p: Vec<&str> = rep.points[0]
            .steps
            .iter()
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(p[0], "f(-1) = (-1)^4 - 32*(-1)^2 = -31");
        assert_eq!(p[1], "df/dx(-1) = 4*(-1)^3 - 64*(-1) = 60");
        assert!(rep.steps.iter().all(|s| !s.latex.is_empty()));
    }

    #[test]
    fn jacobi_eigenvalues() {
        let m = vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 1.0],
            vec![0.0, 1.0, 2.0],
        ];
        let ev = symmetric_eigenvalues(&m);
        let s2 = 2f64.sqrt();
        let want = [2.0 - s2, 2.0, 2.0 + s2];
        for (a, b) in ev.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{ev:?}");
        }
        assert!((determinant(&m) - 4.0).abs() < 1e-14);
        assert_eq!(determinant(&[vec![0.0, 1.0], vec![1.0, 0.0]]), -1.0);
    }
}
