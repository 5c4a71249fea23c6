//! Normalized plain-ASCII text (which parses back to an equal [`Expr`]) and
//! LaTeX rendering.
//!
//! Text rules: sums print `a + b - c`, products `a*b/c`, powers `a^b`, calls
//! `name(a, b)`. Parentheses appear exactly where the tree needs them: a
//! nested sum/product is parenthesized (so the tree shape survives a round
//! trip), and a negative operand that is not the leading one is wrapped
//! (`x*(-2)`, `x^(-1)`, `x + (-2*y)`).

use std::fmt::{self, Write};

use super::ast::{Constant, Expr, Func};
use super::lexer::is_greek_name;

/// Shortest text that reads back to exactly `v` (|v| is printed; callers
/// handle the sign). Very large or small magnitudes use `e` notation.
pub(crate) fn number_text(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        format!("{a:e}")
    } else {
        format!("{a}")
    }
}

/// Whether the printed form starts with a minus sign.
pub(crate) fn starts_with_minus(e: &Expr) -> bool {
    match e {
        Expr::Num(v) => v.is_sign_negative(),
        Expr::Neg(_) => true,
        Expr::Mul { num, .. } => num.first().is_some_and(starts_with_minus),
        Expr::Add(ts) => ts.first().is_some_and(starts_with_minus),
        _ => false,
    }
}

fn is_atom(e: &Expr) -> bool {
    match e {
        Expr::Num(v) => !v.is_sign_negative(),
        Expr::Const(_) | Expr::Var(_) | Expr::Call(..) => true,
        _ => false,
    }
}

fn write_wrapped(f: &mut fmt::Formatter<'_>, e: &Expr, wrap: bool) -> fmt::Result {
    if wrap {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(v) => {
                if v.is_sign_negative() {
                    f.write_char('-')?;
                }
                f.write_str(&number_text(*v))
            }
            Expr::Const(c) => f.write_str(c.name()),
            Expr::Var(name) => f.write_str(name),
            Expr::Add(ts) => {
                for (k, t) in ts.iter().enumerate() {
                    if k == 0 {
                        write_wrapped(f, t, matches!(t, Expr::Add(_)))?;
                        continue;
                    }
                    match t {
                        Expr::Neg(inner) => {
                            f.write_str(" - ")?;
                            let wrap = matches!(**inner, Expr::Add(_) | Expr::Num(_))
                                || starts_with_minus(inner);
                            write_wrapped(f, inner, wrap)?;
                        }
                        Expr::Num(v) if v.is_sign_negative() => {
                            write!(f, " - {}", number_text(*v))?;
                        }
                        _ => {
                            f.write_str(" + ")?;
                            write_wrapped(f, t, matches!(t, Expr::Add(_)) || starts_with_minus(t))?;
                        }
                    }
                }
                Ok(())
            }
            Expr::Mul { num, den } => {
                for (k, t) in num.iter().enumerate() {
                    let nested = matches!(t, Expr::Add(_) | Expr::Mul { .. });
                    if k == 0 {
                        write_wrapped(f, t, nested)?;
                    } else {
                        f.write_char('*')?;
                        write_wrapped(f, t, nested || starts_with_minus(t))?;
                    }
                }
                for t in den {
                    f.write_char('/')?;
                    let nested = matches!(t, Expr::Add(_) | Expr::Mul { .. });
                    write_wrapped(f, t, nested || starts_with_minus(t))?;
                }
                Ok(())
            }
            Expr::Neg(a) => {
                f.write_char('-')?;
                let wrap = matches!(**a, Expr::Add(_) | Expr::Mul { .. } | Expr::Num(_))
                    || starts_with_minus(a);
                write_wrapped(f, a, wrap)
            }
            Expr::Pow(a, b) => {
                write_wrapped(f, a, !is_atom(a))?;
                f.write_char('^')?;
                let wrap = matches!(**b, Expr::Add(_) | Expr::Mul { .. }) || starts_with_minus(b);
                write_wrapped(f, b, wrap)
            }
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (k, a) in args.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
        }
    }
}

fn latex_number(v: f64) -> String {
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let text = number_text(v);
    match text.split_once('e') {
        Some(("1", exp)) => format!("{sign}10^{{{exp}}}"),
        Some((mantissa, exp)) => format!("{sign}{mantissa} \\times 10^{{{exp}}}"),
        None => format!("{sign}{text}"),
    }
}

fn latex_var(name: &str) -> String {
    let (stem, sub) = match name.split_once('_') {
        Some((s, rest)) if !s.is_empty() && !rest.is_empty() => (s, Some(rest)),
        _ => (name, None),
    };
    let stem_tex = if is_greek_name(stem) {
        format!("\\{stem}")
    } else if stem.chars().count() > 1 {
        format!("\\mathrm{{{}}}", stem.replace('_', "\\_"))
    } else {
        stem.to_string()
    };
    match sub {
        Some(s) => format!("{stem_tex}_{{{}}}", s.replace('_', "\\_")),
        None => stem_tex,
    }
}

fn paren(s: String) -> String {
    format!("\\left({s}\\right)")
}

/// Whether LaTeX can put a number directly before this factor (`2x`).
fn juxtaposable(e: &Expr) -> bool {
    match e {
        Expr::Var(_) | Expr::Const(_) => true,
        Expr::Pow(b, _) => matches!(**b, Expr::Var(_) | Expr::Const(_)),
        Expr::Call(..) => true,
        _ => false,
    }
}

fn latex_product(factors: &[Expr]) -> String {
    let mut out = String::new();
    for (k, t) in factors.iter().enumerate() {
        let nested = matches!(t, Expr::Add(_));
        let s = if nested || (k > 0 && starts_with_minus(t)) {
            paren(latex(t))
        } else {
            latex(t)
        };
        if k > 0 {
            let prev_is_number = matches!(factors.get(k - 1), Some(Expr::Num(_)));
            if prev_is_number && juxtaposable(t) {
                out.push(' ');
            } else {
                out.push_str(" \\cdot ");
            }
        }
        out.push_str(&s);
    }
    out
}

pub(crate) fn latex(e: &Expr) -> String {
    match e {
        Expr::Num(v) => latex_number(*v),
        Expr::Const(Constant::Pi) => "\\pi".into(),
        Expr::Const(Constant::E) => "e".into(),
        Expr::Var(name) => latex_var(name),
        Expr::Add(ts) => {
            let mut out = String::new();
            for (k, t) in ts.iter().enumerate() {
                if k == 0 {
                    out.push_str(&latex(t));
                    continue;
                }
                match t {
                    Expr::Neg(inner) => {
                        out.push_str(" - ");
                        let s = latex(inner);
                        if matches!(**inner, Expr::Add(_)) || starts_with_minus(inner) {
                            out.push_str(&paren(s));
                        } else {
                            out.push_str(&s);
                        }
                    }
                    Expr::Num(v) if v.is_sign_negative() => {
                        out.push_str(" - ");
                        out.push_str(&latex_number(-v));
                    }
                    _ => {
                        out.push_str(" + ");
                        let s = latex(t);
                        if starts_with_minus(t) {
                            out.push_str(&paren(s));
                        } else {
                            out.push_str(&s);
                        }
                    }
                }
            }
            out
        }
        Expr::Mul { num, den } => {
            let top = latex_product(num);
            if den.is_empty() {
                top
            } else {
                format!("\\frac{{{top}}}{{{}}}", latex_product(den))
            }
        }
        Expr::Neg(a) => {
            let s = latex(a);
            if matches!(**a, Expr::Add(_)) || starts_with_minus(a) {
                format!("-{}", paren(s))
            } else {
                format!("-{s}")
            }
        }
        Expr::Pow(a, b) => {
            if let Expr::Call(Func::Sqrt, _) = **a {
                return format!("\\left({}\\right)^{{{}}}", latex(a), latex(b));
            }
            let base = if is_atom(a) && !matches!(**a, Expr::Num(v) if number_text(v).contains('e'))
            {
                latex(a)
            } else {
                paren(latex(a))
            };
            format!("{base}^{{{}}}", latex(b))
        }
        Expr::Call(f, args) => {
            let inner = args.iter().map(latex).collect::<Vec<_>>().join(", ");
            match f {
                Func::Sqrt => format!("\\sqrt{{{inner}}}"),
                Func::Abs => format!("\\left|{inner}\\right|"),
                Func::Exp => format!("\\exp{}", paren(inner)),
                Func::Ln => format!("\\ln{}", paren(inner)),
                Func::Log10 => format!("\\log_{{10}}{}", paren(inner)),
                Func::Log2 => format!("\\log_{{2}}{}", paren(inner)),
                Func::Sin => format!("\\sin{}", paren(inner)),
                Func::Cos => format!("\\cos{}", paren(inner)),
                Func::Tan => format!("\\tan{}", paren(inner)),
                Func::Tanh => format!("\\tanh{}", paren(inner)),
                Func::Sigmoid => format!("\\sigma{}", paren(inner)),
                Func::Max => format!("\\max{}", paren(inner)),
                Func::Min => format!("\\min{}", paren(inner)),
                Func::Relu => format!("\\operatorname{{ReLU}}{}", paren(inner)),
                Func::Softplus => format!("\\operatorname{{softplus}}{}", paren(inner)),
                Func::Step => format!("\\operatorname{{step}}{}", paren(inner)),
                Func::Sign => format!("\\operatorname{{sign}}{}", paren(inner)),
                Func::Floor => format!("\\left\\lfloor {inner} \\right\\rfloor"),
                Func::Ceil => format!("\\left\\lceil {inner} \\right\\rceil"),
            }
        }
    }
}
