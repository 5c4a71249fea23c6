//! Mathematical expressions as students type them: parsing, evaluation,
//! symbolic differentiation, simplification, plain-text and LaTeX display,
//! computation graphs and critical-point analysis.
//!
//! ```text
//! parse("x^4 - 32x^2 + y^4 - 18y^2", &ExprLimits::default())
//! ```
//!
//! See [`parser`] for the accepted syntax.

pub mod analysis;
pub mod ast;
mod diff;
mod display;
mod eval;
pub mod graph;
mod lexer;
pub mod parser;
mod poly;
mod simplify;

pub use analysis::{
    CalculusReport, CalculusRequest, Classification, CriticalPointsReport, Derivative, PointReport,
    SymbolicExpr, calculus, determinant, symmetric_eigenvalues,
};
pub use ast::{Constant, Expr, Func};
pub use eval::{sigmoid, softplus};
pub use graph::{ComputationGraph, GraphNode, computation_graph};

use std::collections::BTreeSet;

use super::limits::Limits;

/// Caps applied while parsing one expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExprLimits {
    /// Maximum length in characters.
    pub max_len: usize,
    /// Maximum nesting depth (parentheses, function calls, unary signs,
    /// exponents). Values above [`parser::HARD_MAX_DEPTH`] act as that ceiling.
    pub max_depth: usize,
}

impl Default for ExprLimits {
    fn default() -> Self {
        Self {
            max_len: 4096,
            max_depth: 64,
        }
    }
}

impl From<&Limits> for ExprLimits {
    fn from(l: &Limits) -> Self {
        Self {
            max_len: l.max_expression_len,
            max_depth: l.max_expression_depth,
        }
    }
}

/// Why an expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// Byte offset in the source where the problem was found.
    pub position: usize,
    /// Plain-language reason, naming what could not be read and where.
    pub message: String,
}

impl ExprError {
    pub fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// Why an expression could not be evaluated at a point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown variable `{0}` (no value given)")]
    UnknownVariable(String),
    #[error("division by zero: `{divisor}` is 0")]
    DivisionByZero { divisor: String },
    #[error("{function} of a non-positive number: `{argument}` = {value}")]
    LogDomain {
        function: &'static str,
        argument: String,
        value: f64,
    },
    #[error("square root of a negative number: `{argument}` = {value}")]
    SqrtNegative { argument: String, value: f64 },
    #[error(
        "negative base raised to a non-integer power in `{expression}`: {base}^{exponent} is not real"
    )]
    PowDomain {
        expression: String,
        base: f64,
        exponent: f64,
    },
    #[error("`{expression}` overflows (the result is infinite or not a number)")]
    NotFinite { expression: String },
    #[error("function `{function}` takes 1 argument, got {count}")]
    Arity {
        function: &'static str,
        count: usize,
    },
}

/// Why a symbolic derivative could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error(
        "the derivative is too large to form symbolically (more than {DERIVATIVE_NODE_BUDGET} nodes copied)"
    )]
    TooLarge,
    #[error("function `{0}` has the wrong number of arguments")]
    Arity(&'static str),
}

/// How many expression nodes one symbolic derivative (or one calculus
/// request's gradient and Hessian together) may copy. This bounds the work on
/// hostile input such as 60 nested sigmoids: the derivative of a nesting of
/// depth d is of size ~d², the Hessian ~d³.
pub const DERIVATIVE_NODE_BUDGET: usize = 100_000;

/// Parses `src` into an expression tree, within `limits`.
pub fn parse(src: &str, limits: &ExprLimits) -> Result<Expr, ExprError> {
    parser::parse(src, limits)
}

impl Expr {
    /// Evaluates in f64, looking variables up with `vars`.
    pub fn eval(&self, vars: &dyn Fn(&str) -> Option<f64>) -> Result<f64, EvalError> {
        eval::eval(self, vars)
    }

    /// The names of the variables the expression mentions, sorted.
    pub fn variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_vars(&mut out);
        out
    }

    /// An algebraically simplified copy (like terms and factors collected,
    /// numbers folded exactly).
    pub fn simplified(&self) -> Expr {
        simplify::simplify(self)
    }

    /// The simplified symbolic partial derivative with respect to `var`
    /// (copying at most [`DERIVATIVE_NODE_BUDGET`] nodes).
    pub fn derivative(&self, var: &str) -> Result<Expr, DiffError> {
        let mut budget = DERIVATIVE_NODE_BUDGET;
        self.derivative_within(var, &mut budget)
    }

    /// Like [`Expr::derivative`], drawing the nodes it copies from a budget
    /// shared by several derivatives (e.g. a whole Hessian).
    pub fn derivative_within(&self, var: &str, budget: &mut usize) -> Result<Expr, DiffError> {
        let e = self.simplified();
        let mut d = diff::Differ::new(var, *budget);
        let out = d.d(&e);
        *budget = d.remaining();
        out
    }

    /// The expression as LaTeX (e.g. `4 x^{3} - 64 x`).
    pub fn to_latex(&self) -> String {
        display::latex(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        match parse(s, &ExprLimits::default()) {
            Ok(e) => e,
            Err(err) => panic!("parse {s:?}: {err}"),
        }
    }

    fn perr(s: &str) -> ExprError {
        match parse(s, &ExprLimits::default()) {
            Ok(e) => panic!("{s:?} parsed as {e}"),
            Err(err) => err,
        }
    }

    fn ev(s: &str, vars: &[(&str, f64)]) -> f64 {
        let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        match p(s).eval(&lookup) {
            Ok(v) => v,
            Err(err) => panic!("eval {s:?}: {err}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn numbers() {
        for (s, v) in [
            ("0.5", 0.5),
            (".5", 0.5),
            ("5e-1", 0.5),
            ("1/2", 0.5),
            ("5E-1", 0.5),
        ] {
            assert!(close(ev(s, &[]), v), "{s}");
        }
        assert_eq!(ev("2e", &[]), 2.0 * std::f64::consts::E);
    }

    #[test]
    fn floor_and_ceil_give_output_sizes_and_have_zero_derivatives() {
        // Output size of a conv with input 256, padding 5, kernel 11, stride 4.
        assert_eq!(ev("floor((256 + 2*5 - 11)/4) + 1", &[]), 64.0);
        assert_eq!(ev("ceil(n/s)", &[("n", 227.0), ("s", 4.0)]), 57.0);
        assert_eq!(ev("floor(-0.5)", &[]), -1.0);
        assert_eq!(p("Floor(x/2)").to_string(), "floor(x/2)");
        assert_eq!(
            p("floor(x)*x")
                .derivative("x")
                .unwrap()
                .simplified()
                .to_string(),
            "floor(x)"
        );
        assert_eq!(p("floor(3.5)").simplified(), Expr::Num(3.0));
        assert!(p("ceil(x)").to_latex().contains("\\lceil"));
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(ev("-x^2", &[("x", 3.0)]), -9.0);
        assert_eq!(ev("2^3^2", &[]), 512.0);
        assert_eq!(ev("2**3**2", &[]), 512.0);
        assert_eq!(ev("1 - 2 - 3", &[]), -4.0);
        assert_eq!(ev("12/2/3", &[]), 2.0);
        assert_eq!(ev("2^-1", &[]), 0.5);
        assert_eq!(ev("(-2)^2", &[]), 4.0);
        assert_eq!(ev("-2^2", &[]), -4.0);
        assert_eq!(ev("2*-3", &[]), -6.0);
        assert_eq!(ev("1/2x", &[("x", 4.0)]), 2.0);
        assert_eq!(ev("[1 + 2] * (3)", &[]), 9.0);
    }

    #[test]
    fn implicit_multiplication_and_bare_calls() {
        assert_eq!(ev("2x", &[("x", 3.0)]), 6.0);
        assert!(close(ev("2 log 2", &[]), 2.0 * 2f64.ln()));
        assert!(close(ev("ln 4", &[]), 4f64.ln()));
        assert_eq!(ev("2(x+1)", &[("x", 3.0)]), 8.0);
        assert_eq!(ev("x y", &[("x", 3.0), ("y", 5.0)]), 15.0);
        assert_eq!(ev("x(x+1)", &[("x", 3.0)]), 12.0);
        assert!(close(ev("sin x^2", &[("x", 2.0)]), 4f64.sin()));
        assert!(close(ev("ln 2x", &[("x", 3.0)]), 2f64.ln() * 3.0));
        assert!(close(ev("2π", &[]), 2.0 * std::f64::consts::PI));
        assert!(close(ev("e^x", &[("x", 1.5)]), 1.5f64.exp()));
        assert_eq!(ev("θx", &[("theta", 2.0), ("x", 3.0)]), 6.0);
    }

    #[test]
    fn unicode_input() {
        assert_eq!(ev("3 × 4 · 2 ⋅ 1 ∗ 2", &[]), 48.0);
        assert_eq!(ev("5 − 2", &[]), 3.0);
        assert_eq!(ev("√16", &[]), 4.0);
        assert_eq!(ev("√(x+7)", &[("x", 9.0)]), 4.0);
        assert_eq!(ev("8 ÷ 2", &[]), 4.0);
        assert_eq!(ev("x² + y³", &[("x", 2.0), ("y", 2.0)]), 12.0);
        assert_eq!(ev("x⁻¹", &[("x", 4.0)]), 0.25);
        assert_eq!(ev("w₁ + w_1", &[("w_1", 2.0)]), 4.0);
        assert!(close(ev("σ(0)", &[]), 0.5));
        assert_eq!(ev("ReLU(x) + Sigmoid(0) + Abs(-1)", &[("x", 2.0)]), 3.5);
        assert!(close(ev("sin²x + cos²x", &[("x", 0.7)]), 1.0));
    }

    #[test]
    fn functions() {
        let x: f64 = 0.7;
        let cases: [(&str, f64); 17] = [
            ("exp(x)", x.exp()),
            ("log(x)", x.ln()),
            ("ln(x)", x.ln()),
            ("log10(x)", x.log10()),
            ("log2(x)", x.log2()),
            ("sqrt(x)", x.sqrt()),
            ("sin(x)", x.sin()),
            ("cos(x)", x.cos()),
            ("tan(x)", x.tan()),
            ("tanh(x)", x.tanh()),
            ("sigmoid(x)", 1.0 / (1.0 + (-x).exp())),
            ("relu(-x)", 0.0),
            ("abs(-x)", x),
            ("softplus(x)", (1.0 + x.exp()).ln()),
            ("max(x, 2, -1)", 2.0),
            ("min(x, 2, -1)", -1.0),
            ("sign(-x) + step(x)", 0.0),
        ];
        for (s, want) in cases {
            assert!(close(ev(s, &[("x", x)]), want), "{s}");
        }
        assert!(close(softplus(1000.0), 1000.0));
        assert!(close(sigmoid(-1000.0), 0.0));
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        let e = perr("(x + 1))");
        assert_eq!(e.position, 7);
        assert_eq!(e.message, "unexpected `)` at position 7");
        let e = perr("sinh(x)");
        assert_eq!(e.message, "unknown function `sinh` at position 0");
        assert!(perr("2 3").message.contains("unexpected number `3`"));
        assert!(perr("").message.contains("empty"));
        assert!(perr("x +").message.contains("ends unexpectedly"));
        assert!(perr("(x + 1").message.contains("missing `)`"));
        assert!(perr("(x + 1]").message.contains("mismatched"));
        assert!(perr("x $ y").message.contains("unexpected character `$`"));
        assert!(perr("exp(1, 2)").message.contains("takes 1 argument"));
        assert!(perr("exp + 1").message.contains("needs an argument"));
        assert!(perr("1.2.3").message.contains("malformed"));
        assert!(perr("1e999").message.contains("too large"));
        assert!(
            perr(&format!("x{}", "⁹".repeat(400)))
                .message
                .contains("too large")
        );
        assert!(perr("x⁻").message.contains("superscript minus"));
    }

    #[test]
    fn limits_are_enforced_fast() {
        let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
        let big = ExprLimits {
            max_len: 1_000_000,
            max_depth: 64,
        };
        let e = parse(&deep, &big).err();
        assert_eq!(
            e.map(|e| e.message),
            Some("expression nested deeper than 64 levels (at position 64)".into())
        );
        let minus = "-".repeat(100_000) + "x";
        assert!(parse(&minus, &big).is_err());
        let tower = "x^".repeat(50_000) + "x";
        assert!(parse(&tower, &big).is_err());
        let long = "x+".repeat(3000) + "x";
        let e = parse(&long, &ExprLimits::default()).err();
        assert!(e.is_some_and(|e| e.message.contains("at most 4096")));
        // A long flat chain is fine (flat n-ary sums).
        let flat = "x+".repeat(2000) + "x";
        assert_eq!(ev(&flat, &[("x", 1.0)]), 2001.0);
        let huge = ExprLimits {
            max_len: 1_000_000,
            max_depth: usize::MAX,
        };
        assert!(parse(&deep, &huge).is_err());
    }

    #[test]
    fn eval_errors() {
        let none = |_: &str| None;
        let err = |s: &str| {
            p(s).eval(&none)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("x + 1").contains("unknown variable `x`"));
        assert!(err("1/(2 - 2)").contains("division by zero"));
        assert!(err("ln(0)").contains("ln of a non-positive number"));
        assert!(err("log10(-1)").contains("log10 of a non-positive"));
        assert!(err("sqrt(-4)").contains("square root of a negative"));
        assert!(err("exp(1000)").contains("overflows"));
        assert!(err("(-8)^(1/3)").contains("non-integer power"));
        assert!(err("0^(-1)").contains("division by zero"));
    }

    #[test]
    fn variables_are_collected() {
        let vars: Vec<String> = p("x^4 - 32x^2 + y^4 - 18y^2 + w_1 e")
            .variables()
            .into_iter()
            .collect();
        assert_eq!(vars, ["w_1", "x", "y"]);
    }

    #[test]
    fn display_normalizes_and_round_trips() {
        let cases = [
            ("x^4 - 32x^2 + y^4 - 18y^2", "x^4 - 32*x^2 + y^4 - 18*y^2"),
            ("-x^2", "-x^2"),
            ("(-x)^2", "(-x)^2"),
            ("2 log 2", "2*ln(2)"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a + b) + c", "(a + b) + c"),
            ("a*(b*c)", "a*(b*c)"),
            ("a/(b/c)", "a/(b/c)"),
            ("x^-1", "x^(-1)"),
            ("x*-2", "x*(-2)"),
            ("x + -2y", "x + (-2*y)"),
            ("x - -y", "x - (-y)"),
            ("σ(z) · π", "sigmoid(z)*pi"),
            ("2^3^4", "2^3^4"),
            ("(2^3)^4", "(2^3)^4"),
            ("1e-7 + 1e20", "1e-7 + 1e20"),
            ("max(a, b, c)", "max(a, b, c)"),
            ("- - x", "-(-x)"),
            ("-(x*y)", "-(x*y)"),
            ("-x*y", "-x*y"),
        ];
        for (src, want) in cases {
            let e = p(src);
            assert_eq!(e.to_string(), want, "{src}");
            assert_eq!(p(&e.to_string()), e, "{src}");
        }
    }

    #[test]
    fn latex_rendering() {
        assert_eq!(p("x^4 - 32x^2").to_latex(), "x^{4} - 32 x^{2}");
        assert_eq!(
            p("w_1/(2 sqrt(x))").to_latex(),
            "\\frac{w_{1}}{2 \\sqrt{x}}"
        );
        assert_eq!(p("θ_1 * lr").to_latex(), "\\theta_{1} \\cdot \\mathrm{lr}");
        assert_eq!(p("-(a+b)").to_latex(), "-\\left(a + b\\right)");
        assert_eq!(p("sigmoid(x)").to_latex(), "\\sigma\\left(x\\right)");
        assert_eq!(p("1.5e-7").to_latex(), "1.5 \\times 10^{-7}");
    }

    fn d(s: &str, v: &str) -> String {
        match p(s).derivative(v) {
            Ok(e) => e.to_string(),
            Err(err) => panic!("d {s:?}: {err}"),
        }
    }

    #[test]
    fn simplification() {
        let cases = [
            ("2x + 3x", "5*x"),
            ("x*x*x", "x^3"),
            ("x^2 * x / x^3", "1"),
            ("0*x + 1*y + 0", "y"),
            ("4x/2", "2*x"),
            ("x/2 + x/3", "5*x/6"),
            ("-(a + b)", "-a - b"),
            ("(2x)^2", "4*x^2"),
            ("(x^2)^3", "x^6"),
            ("ln(e) + exp(0) + ln(1)", "2"),
            ("x^-2", "1/x^2"),
            ("2^-2", "1/4"),
            ("ln(exp(x))", "x"),
            ("(-x)^3", "-x^3"),
            ("-64x + 2y - 3z", "2*y - 64*x - 3*z"),
            ("-(x*y) - 2", "-x*y - 2"),
            ("-2x*y + 1", "1 - 2*x*y"),
        ];
        for (src, want) in cases {
            let simple = p(src).simplified();
            assert_eq!(simple.to_string(), want, "{src}");
            assert_eq!(p(&simple.to_string()), simple, "{src}");
        }
    }

    #[test]
    fn symbolic_derivatives() {
        let f = "x^4 - 32x^2 + y^4 - 18y^2";
        assert_eq!(d(f, "x"), "4*x^3 - 64*x");
        assert_eq!(d(f, "y"), "4*y^3 - 36*y");
        assert_eq!(d(&d(f, "x"), "x"), "12*x^2 - 64");
        assert_eq!(d(&d(f, "x"), "y"), "0");
        assert_eq!(d("ln(x)", "x"), "1/x");
        assert_eq!(d("sin(x)", "x"), "cos(x)");
        assert_eq!(d("sqrt(x)", "x"), "1/(2*sqrt(x))");
        assert_eq!(d("e^x", "x"), "e^x");
        assert_eq!(d("relu(w x)", "w"), "step(w*x)*x");
        assert_eq!(d("1/x", "x"), "-1/x^2");
        assert_eq!(d("x^x", "x"), "x^x*(ln(x) + 1)");
        // the exam's BCE: -ln(2w1 - 1.5w2) - ln(-0.5w1 + w2) at w = (1, 1)
        let bce = p("-ln(2w1 - 1.5w2) - ln(-0.5w1 + w2)");
        let at = |n: &str| match n {
            "w1" | "w2" => Some(1.0),
            _ => None,
        };
        let g1 = bce.derivative("w1").ok().and_then(|e| e.eval(&at).ok());
        let g2 = bce.derivative("w2").ok().and_then(|e| e.eval(&at).ok());
        assert_eq!((g1, g2), (Some(-3.0), Some(1.0)));
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let exprs = [
            "exp(x) * sin(x)",
            "ln(x^2 + 1) / (x + 3)",
            "log10(x + 2) + log2(x + 5)",
            "sqrt(x + 4) * cos(x)",
            "tan(x / 3) + tanh(x)",
            "sigmoid(2x) + softplus(x)",
            "relu(x + 0.1) + abs(x - 0.2)",
            "max(x, 0.5, -x) + min(x^2, 1)",
            "x^x",
            "2^x + x^3.5",
            "(x + 1)^(-2)",
            "1/(1 + exp(-x))",
        ];
        for src in exprs {
            let e = p(src);
            let de = match e.derivative("x") {
                Ok(de) => de,
                Err(err) => panic!("{src}: {err}"),
            };
            for x0 in [0.3, 0.9, 1.7] {
                let f = |x: f64| e.eval(&|_: &str| Some(x)).unwrap_or(f64::NAN);
                let h = 1e-6;
                let fd = (f(x0 + h) - f(x0 - h)) / (2.0 * h);
                let exact = de.eval(&|_: &str| Some(x0)).unwrap_or(f64::NAN);
                assert!(
                    (fd - exact).abs() <= 1e-6 * (1.0 + exact.abs()),
                    "{src} at {x0}: {exact} vs {fd} ({de})"
                );
            }
        }
    }
}
