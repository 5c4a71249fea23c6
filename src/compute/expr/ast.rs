//! The expression tree.
//!
//! Sums and products are n-ary so that long chains such as `x + x + ... + x`
//! stay flat (recursion depth follows the nesting of parentheses, function
//! calls, unary minus and powers, which the parser caps). Subtraction is a sum
//! term wrapped in [`Expr::Neg`] (or a negative number); division lists the
//! divisors in [`Expr::Mul::den`].

/// A named mathematical constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Constant {
    /// π = 3.14159...
    Pi,
    /// Euler's number e = 2.71828...
    E,
}

impl Constant {
    pub fn value(self) -> f64 {
        match self {
            Constant::Pi => std::f64::consts::PI,
            Constant::E => std::f64::consts::E,
        }
    }

    /// The plain-ASCII name the parser reads back.
    pub fn name(self) -> &'static str {
        match self {
            Constant::Pi => "pi",
            Constant::E => "e",
        }
    }
}

/// A built-in function. All take one argument except `max` and `min`
/// (one or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Exp,
    /// Natural logarithm (`ln`, `log`).
    Ln,
    Log10,
    Log2,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    /// Logistic sigmoid 1 / (1 + e^-x) (`sigmoid`, `σ`).
    Sigmoid,
    /// max(x, 0).
    Relu,
    Abs,
    /// ln(1 + e^x).
    Softplus,
    /// Heaviside step: 1 for x > 0, else 0 (the derivative of `relu`, with
    /// relu'(0) = 0 as in PyTorch and JAX).
    Step,
    /// Sign: -1, 0 or 1 (the derivative of `abs`, with abs'(0) = 0).
    Sign,
    /// Largest integer <= x (`floor`, as in output-size formulas); its
    /// derivative is taken as 0.
    Floor,
    /// Smallest integer >= x (`ceil`, e.g. TensorFlow's "same" sizes); its
    /// derivative is taken as 0.
    Ceil,
    Max,
    Min,
}

impl Func {
    pub const ALL: [Func; 19] = [
        Func::Exp,
        Func::Ln,
        Func::Log10,
        Func::Log2,
        Func::Sqrt,
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Tanh,
        Func::Sigmoid,
        Func::Relu,
        Func::Abs,
        Func::Softplus,
        Func::Step,
        Func::Sign,
        Func::Floor,
        Func::Ceil,
        Func::Max,
        Func::Min,
    ];

    /// The canonical plain-ASCII name (what `Display` prints).
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Log10 => "log10",
            Func::Log2 => "log2",
            Func::Sqrt => "sqrt",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Tanh => "tanh",
            Func::Sigmoid => "sigmoid",
            Func::Relu => "relu",
            Func::Abs => "abs",
            Func::Softplus => "softplus",
            Func::Step => "step",
            Func::Sign => "sign",
            Func::Floor => "floor",
            Func::Ceil => "ceil",
            Func::Max => "max",
            Func::Min => "min",
        }
    }

    /// Looks a function up by any of its accepted names, ignoring ASCII case
    /// (`ReLU`, `Sigmoid`), plus the aliases `log` = `ln`, `σ` = `sigmoid`,
    /// `heaviside` = `step`, `sgn` = `sign`.
    pub fn from_name(name: &str) -> Option<Func> {
        if name == "σ" {
            return Some(Func::Sigmoid);
        }
        if name.len() > 10 || !name.is_ascii() {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "log" => Some(Func::Ln),
            "heaviside" => Some(Func::Step),
            "sgn" => Some(Func::Sign),
            l => Func::ALL.into_iter().find(|f| f.name() == l),
        }
    }

    /// Whether the function takes exactly one argument (else: one or more).
    pub fn is_unary(self) -> bool {
        !matches!(self, Func::Max | Func::Min)
    }
}

/// A parsed expression. Compare with `==` for structural equality.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal (negative only after unary minus folding or
    /// simplification).
    Num(f64),
    Const(Constant),
    Var(String),
    /// Sum of two or more terms.
    Add(Vec<Expr>),
    /// Product `num[0] * num[1] * ... / den[0] / den[1] ...`; `num` is never
    /// empty and there are at least two factors in all.
    Mul {
        num: Vec<Expr>,
        den: Vec<Expr>,
    },
    Neg(Box<Expr>),
    /// `base ^ exponent`.
    Pow(Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

impl Expr {
    pub fn var(name: &str) -> Expr {
        Expr::Var(name.to_string())
    }

    /// Whether the expression mentions no variable.
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Num(_) | Expr::Const(_) => true,
            Expr::Var(_) => false,
            Expr::Add(ts) => ts.iter().all(Expr::is_constant),
            Expr::Mul { num, den } => num.iter().chain(den).all(Expr::is_constant),
            Expr::Neg(a) => a.is_constant(),
            Expr::Pow(a, b) => a.is_constant() && b.is_constant(),
            Expr::Call(_, args) => args.iter().all(Expr::is_constant),
        }
    }

    /// Whether the expression mentions the variable `name`.
    pub fn depends_on(&self, name: &str) -> bool {
        match self {
            Expr::Num(_) | Expr::Const(_) => false,
            Expr::Var(v) => v == name,
            Expr::Add(ts) => ts.iter().any(|t| t.depends_on(name)),
            Expr::Mul { num, den } => num.iter().chain(den).any(|t| t.depends_on(name)),
            Expr::Neg(a) => a.depends_on(name),
            Expr::Pow(a, b) => a.depends_on(name) || b.depends_on(name),
            Expr::Call(_, args) => args.iter().any(|t| t.depends_on(name)),
        }
    }

    /// Number of nodes in the tree.
    pub fn size(&self) -> usize {
        1 + match self {
            Expr::Num(_) | Expr::Const(_) | Expr::Var(_) => 0,
            Expr::Add(ts) | Expr::Call(_, ts) => ts.iter().map(Expr::size).sum(),
            Expr::Mul { num, den } => num.iter().chain(den).map(Expr::size).sum(),
            Expr::Neg(a) => a.size(),
            Expr::Pow(a, b) => a.size() + b.size(),
        }
    }

    /// Collects the variable names into `out`.
    pub(crate) fn collect_vars(&self, out: &mut std::collections::BTreeSet<String>) {
        match self {
            Expr::Num(_) | Expr::Const(_) => {}
            Expr::Var(v) => {
                if !out.contains(v) {
                    out.insert(v.clone());
                }
            }
            Expr::Add(ts) | Expr::Call(_, ts) => ts.iter().for_each(|t| t.collect_vars(out)),
            Expr::Mul { num, den } => num.iter().chain(den).for_each(|t| t.collect_vars(out)),
            Expr::Neg(a) => a.collect_vars(out),
            Expr::Pow(a, b) => {
                a.collect_vars(out);
                b.collect_vars(out);
            }
        }
    }
}
