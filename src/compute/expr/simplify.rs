//! Algebraic simplification and the smart constructors the differentiator
//! builds with: numeric folding (exact rationals while integers stay below
//! 2^53), flattening, collecting like terms (`2x + 3x = 5x`) and like factors
//! (`x^2 * x = x^3`), neutral elements, and a few exact function values
//! (`ln 1 = 0`, `ln e = 1`, `exp 0 = 1`).
//!
//! Every constructor assumes its operands are already simplified, so the
//! result is simplified too. Sums and products keep first-appearance order,
//! numbers first in a product and the constant last in a sum.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::ast::{Constant, Expr, Func};
use super::display::starts_with_minus;

/// 2^53: integers below this are exact in f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

fn is_int(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

fn gcd(mut a: f64, mut b: f64) -> f64 {
    while b != 0.0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// A numeric coefficient kept as an exact fraction `n/d` while both parts are
/// integers below 2^53, else as a float in `n` with `d = 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Coef {
    n: f64,
    d: f64,
}

impl Coef {
    const ONE: Coef = Coef { n: 1.0, d: 1.0 };
    const ZERO: Coef = Coef { n: 0.0, d: 1.0 };

    fn of(v: f64) -> Coef {
        Coef { n: v, d: 1.0 }
    }

    fn new(n: f64, d: f64) -> Coef {
        let (n, d) = if d < 0.0 { (-n, -d) } else { (n, d) };
        if d == 1.0 {
            return Coef { n, d };
        }
        if is_int(n) && is_int(d) && n.abs() < EXACT && d < EXACT && d != 0.0 {
            let g = gcd(n.abs(), d);
            if g > 1.0 {
                return Coef { n: n / g, d: d / g };
            }
            return Coef { n, d };
        }
        Coef { n: n / d, d: 1.0 }
    }

    fn value(self) -> f64 {
        self.n / self.d
    }

    fn add(self, o: Coef) -> Coef {
        if self.d == 1.0 && o.d == 1.0 {
            return Coef::of(self.n + o.n);
        }
        let (n, d) = (self.n * o.d + o.n * self.d, self.d * o.d);
        if n.is_finite() && d.is_finite() {
            Coef::new(n, d)
        } else {
            Coef::of(self.value() + o.value())
        }
    }

    fn mul(self, o: Coef) -> Coef {
        let (n, d) = (self.n * o.n, self.d * o.d);
        if n.is_finite() && d.is_finite() {
            Coef::new(n, d)
        } else {
            Coef::of(self.value() * o.value())
        }
    }

    fn recip(self) -> Coef {
        Coef::new(self.d, self.n)
    }

    fn powi(self, k: i32) -> Coef {
        let c = Coef::new(self.n.powi(k.abs()), self.d.powi(k.abs()));
        if k < 0 { c.recip() } else { c }
    }

    fn is_zero(self) -> bool {
        self.n == 0.0
    }

    fn is_finite(self) -> bool {
        self.value().is_finite()
    }
}

/// A product taken apart: coefficient times `base ^ exponent` items.
#[derive(Debug, Clone)]
struct Factors {
    coef: Coef,
    items: Vec<(Expr, Expr)>,
}

impl Factors {
    fn new() -> Self {
        Factors {
            coef: Coef::ONE,
            items: Vec::new(),
        }
    }

    /// Multiplies `e` (or divides by it when `inverse`) into the product.
    fn take(&mut self, e: Expr, inverse: bool) {
        match e {
            Expr::Num(v) => {
                let next = if inverse && v == 0.0 {
                    None
                } else if inverse {
                    Some(self.coef.mul(Coef::of(v).recip()))
                } else {
                    Some(self.coef.mul(Coef::of(v)))
                };
                match next {
                    Some(c) if c.is_finite() => self.coef = c,
                    // Keep a division by zero or an overflow visible;
                    // evaluation reports it.
                    _ => self
                        .items
                        .push((Expr::Num(v), Expr::Num(if inverse { -1.0 } else { 1.0 }))),
                }
            }
            Expr::Neg(x) => {
                self.coef = self.coef.mul(Coef::of(-1.0));
                self.take(*x, inverse);
            }
            Expr::Mul { num, den } => {
                for t in num {
                    self.take(t, inverse);
                }
                for t in den {
                    self.take(t, !inverse);
                }
            }
            Expr::Pow(b, x) => {
                let x = if inverse { neg(*x) } else { *x };
                self.items.push((*b, x));
            }
            other => {
                let x = Expr::Num(if inverse { -1.0 } else { 1.0 });
                self.items.push((other, x));
            }
        }
    }

    /// Merges items with equal bases (adding exponents).
    fn merge(mut self) -> Self {
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut out: Vec<(Expr, Expr)> = Vec::with_capacity(self.items.len());
        for (b, x) in self.items.drain(..) {
            let key = structural_hash([&b]);
            let bucket = index.entry(key).or_default();
            let found = bucket
                .iter()
                .copied()
                .find(|&i| out.get(i).is_some_and(|(ob, _)| *ob == b));
            match found.and_then(|i| out.get_mut(i)) {
                Some(slot) => {
                    let prev = std::mem::replace(&mut slot.1, Expr::Num(0.0));
                    slot.1 = add(vec![prev, x]);
                }
                None => {
                    bucket.push(out.len());
                    out.push((b, x));
                }
            }
        }
        out.retain(|(_, x)| !matches!(x, Expr::Num(v) if *v == 0.0));
        self.items = out;
        self
    }

    /// Rebuilds the canonical expression.
    fn build(self) -> Expr {
        if self.coef.is_zero() {
            return Expr::Num(0.0);
        }
        let mut num = Vec::new();
        let mut den = Vec::new();
        for (b, x) in self.items {
            match x {
                Expr::Num(k) if k < 0.0 => den.push(raw_pow(b, Expr::Num(-k))),
                x => num.push(raw_pow(b, x)),
            }
        }
        let negative = self.coef.n < 0.0;
        let n = self.coef.n.abs();
        if n != 1.0 || num.is_empty() {
            num.insert(0, Expr::Num(n));
        }
        if self.coef.d != 1.0 {
            den.insert(0, Expr::Num(self.coef.d));
        }
        if den.len() > 1 {
            den = vec![Expr::Mul {
                num: den,
                den: Vec::new(),
            }];
        }
        let mut sign_taken = !negative;
        if negative && (num.len() > 1 || !den.is_empty()) {
            // Put the sign on the leading factor: `-64*x`, `-x^2*y`, `-(a + b)*c`.
            if let Some(first) = num.first_mut() {
                let lead = std::mem::replace(first, Expr::Num(0.0));
                *first = match lead {
                    Expr::Num(v) => Expr::Num(-v),
                    other => Expr::Neg(Box::new(other)),
                };
                sign_taken = true;
            }
        } else if negative && let Some(Expr::Num(v)) = num.first_mut() {
            *v = -*v;
            sign_taken = true;
        }
        let body = if num.len() == 1 && den.is_empty() {
            num.swap_remove(0)
        } else {
            Expr::Mul { num, den }
        };
        if sign_taken {
            body
        } else {
            Expr::Neg(Box::new(body))
        }
    }
}

/// A hash of the tree shapes and leaves (equal trees hash equally; numbers
/// by bit pattern with -0 = 0).
fn structural_hash<'a>(es: impl IntoIterator<Item = &'a Expr>) -> u64 {
    fn walk(e: &Expr, h: &mut DefaultHasher) {
        match e {
            Expr::Num(v) => {
                0u8.hash(h);
                (if *v == 0.0 { 0.0f64 } else { *v }).to_bits().hash(h);
            }
            Expr::Const(c) => {
                1u8.hash(h);
                c.hash(h);
            }
            Expr::Var(v) => {
                2u8.hash(h);
                v.hash(h);
            }
            Expr::Add(ts) => {
                3u8.hash(h);
                ts.len().hash(h);
                ts.iter().for_each(|t| walk(t, h));
            }
            Expr::Mul { num, den } => {
                4u8.hash(h);
                num.len().hash(h);
                den.len().hash(h);
                num.iter().chain(den).for_each(|t| walk(t, h));
            }
            Expr::Neg(a) => {
                5u8.hash(h);
                walk(a, h);
            }
            Expr::Pow(a, b) => {
                6u8.hash(h);
                walk(a, h);
                walk(b, h);
            }
            Expr::Call(f, args) => {
                7u8.hash(h);
                f.hash(h);
                args.len().hash(h);
                args.iter().for_each(|t| walk(t, h));
            }
        }
    }
    let mut h = DefaultHasher::new();
    es.into_iter().for_each(|e| walk(e, &mut h));
    h.finish()
}

fn raw_pow(b: Expr, x: Expr) -> Expr {
    match x {
        Expr::Num(1.0) => b,
        x => Expr::Pow(Box::new(b), Box::new(x)),
    }
}

fn factors_of(e: Expr) -> Factors {
    let mut f = Factors::new();
    f.take(e, false);
    f
}

/// Sum of simplified terms.
pub(crate) fn add(terms: Vec<Expr>) -> Expr {
    let mut constant = Coef::ZERO;
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut groups: Vec<(Coef, Vec<(Expr, Expr)>)> = Vec::new();
    let mut leftovers = Vec::new();
    let mut flat = Vec::with_capacity(terms.len());
    for t in terms {
        match t {
            Expr::Add(ts) => flat.extend(ts),
            t => flat.push(t),
        }
    }
    for t in flat {
        let f = factors_of(t).merge();
        if f.items.is_empty() {
            let next = constant.add(f.coef);
            if next.is_finite() {
                constant = next;
            } else {
                leftovers.push(f.build());
            }
            continue;
        }
        let key = structural_hash(f.items.iter().flat_map(|(b, x)| [b, x]));
        let bucket = index.entry(key).or_default();
        let found = bucket
            .iter()
            .copied()
            .find(|&i| groups.get(i).is_some_and(|g| g.1 == f.items));
        match found.and_then(|i| groups.get_mut(i)) {
            Some(g) if g.0.add(f.coef).is_finite() => g.0 = g.0.add(f.coef),
            Some(_) => leftovers.push(f.build()),
            None => {
                bucket.push(groups.len());
                groups.push((f.coef, f.items));
            }
        }
    }
    let mut out: Vec<Expr> = groups
        .into_iter()
        .filter(|(c, _)| !c.is_zero())
        .map(|(coef, items)| Factors { coef, items }.build())
        .collect();
    out.extend(leftovers);
    if !constant.is_zero() {
        out.push(
            Factors {
                coef: constant,
                items: Vec::new(),
            }
            .build(),
        );
    }
    // Lead with a positive term when there is one: `1 - x`, not `-x + 1`.
    if out.first().is_some_and(starts_with_minus)
        && let Some(k) = out.iter().position(|t| !starts_with_minus(t))
    {
        let t = out.remove(k);
        out.insert(0, t);
    }
    match out.len() {
        0 => Expr::Num(0.0),
        1 => out.swap_remove(0),
        _ => Expr::Add(
            out.into_iter()
                .enumerate()
                .map(|(k, t)| if k == 0 { t } else { sum_term(t) })
                .collect(),
        ),
    }
}

/// A product with a negative leading number reads better in a sum as a
/// subtraction: `x - 64*x` rather than `x + (-64*x)`.
fn sum_term(e: Expr) -> Expr {
    match e {
        Expr::Mul { mut num, den } => match num.first_mut() {
            Some(Expr::Num(v)) if v.is_sign_negative() => {
                *v = -*v;
                Expr::Neg(Box::new(Expr::Mul { num, den }))
            }
            Some(first @ Expr::Neg(_)) => {
                let lead = std::mem::replace(first, Expr::Num(0.0));
                if let Expr::Neg(inner) = lead {
                    *first = *inner;
                }
                Expr::Neg(Box::new(Expr::Mul { num, den }))
            }
            _ => Expr::Mul { num, den },
        },
        other => other,
    }
}

/// `a - b` of simplified operands.
pub(crate) fn sub(a: Expr, b: Expr) -> Expr {
    add(vec![a, neg(b)])
}

/// `-a` of a simplified operand (distributes over sums).
pub(crate) fn neg(a: Expr) -> Expr {
    match a {
        Expr::Num(v) => Expr::Num(-v),
        Expr::Add(ts) => add(ts.into_iter().map(neg).collect()),
        Expr::Neg(x) => *x,
        other => {
            let mut f = factors_of(other);
            f.coef = f.coef.mul(Coef::of(-1.0));
            f.merge().build()
        }
    }
}

/// Product of simplified factors.
pub(crate) fn mul(factors: Vec<Expr>) -> Expr {
    let mut f = Factors::new();
    for t in factors {
        f.take(t, false);
    }
    f.merge().build()
}

/// `a / b` of simplified operands.
pub(crate) fn div(a: Expr, b: Expr) -> Expr {
    let mut f = Factors::new();
    f.take(a, false);
    f.take(b, true);
    f.merge().build()
}

fn small_int(v: f64) -> Option<i32> {
    if is_int(v) && v.abs() <= 64.0 {
        Some(v as i32)
    } else {
        None
    }
}

/// `b ^ x` of simplified operands.
pub(crate) fn pow(b: Expr, x: Expr) -> Expr {
    if let Expr::Num(k) = x {
        if k == 0.0 {
            return Expr::Num(1.0);
        }
        if k == 1.0 {
            return b;
        }
    }
    if matches!(b, Expr::Num(v) if v == 1.0) {
        return Expr::Num(1.0);
    }
    let Some(k) = (match x {
        Expr::Num(k) => small_int(k),
        _ => None,
    }) else {
        return Expr::Pow(Box::new(b), Box::new(x));
    };
    match b {
        Expr::Num(v) if v == 0.0 && k > 0 => Expr::Num(0.0),
        Expr::Num(v) if v != 0.0 => {
            let c = Coef::of(v).powi(k);
            if c.is_finite() {
                Factors {
                    coef: c,
                    items: Vec::new(),
                }
                .build()
            } else {
                Expr::Pow(Box::new(Expr::Num(v)), Box::new(Expr::Num(f64::from(k))))
            }
        }
        Expr::Pow(inner, a) => pow(*inner, mul(vec![*a, Expr::Num(f64::from(k))])),
        Expr::Neg(inner) => {
            let p = pow(*inner, Expr::Num(f64::from(k)));
            if k % 2 == 0 { p } else { neg(p) }
        }
        b @ Expr::Mul { .. } => {
            let f = factors_of(b).merge();
            let c = f.coef.powi(k);
            if !c.is_finite() {
                return Expr::Pow(Box::new(f.build()), Box::new(Expr::Num(f64::from(k))));
            }
            let items = f
                .items
                .into_iter()
                .map(|(base, e)| (base, mul(vec![e, Expr::Num(f64::from(k))])))
                .collect();
            Factors { coef: c, items }.merge().build()
        }
        b => Factors {
            coef: Coef::ONE,
            items: vec![(b, Expr::Num(f64::from(k)))],
        }
        .build(),
    }
}

/// A function call of simplified arguments, folding exact values.
pub(crate) fn call(f: Func, mut args: Vec<Expr>) -> Expr {
    if let [arg] = args.as_slice() {
        let folded = match (f, arg) {
            (Func::Ln | Func::Log10 | Func::Log2, Expr::Num(v)) if *v == 1.0 => Some(0.0),
            (Func::Ln, Expr::Const(Constant::E)) => Some(1.0),
            (Func::Log10, Expr::Num(v)) if *v == 10.0 => Some(1.0),
            (Func::Log2, Expr::Num(v)) if *v == 2.0 => Some(1.0),
            (Func::Exp | Func::Cos, Expr::Num(v)) if *v == 0.0 => Some(1.0),
            (Func::Sin | Func::Tan | Func::Tanh | Func::Sqrt, Expr::Num(v)) if *v == 0.0 => {
                Some(0.0)
            }
            (Func::Sqrt, Expr::Num(v))
                if *v > 0.0 && is_int(v.sqrt()) && v.sqrt() * v.sqrt() == *v =>
            {
                Some(v.sqrt())
            }
            (Func::Abs, Expr::Num(v)) => Some(v.abs()),
            (Func::Relu, Expr::Num(v)) => Some(v.max(0.0)),
            (Func::Step, Expr::Num(v)) => Some(if *v > 0.0 { 1.0 } else { 0.0 }),
            (Func::Sign, Expr::Num(v)) => Some(if *v > 0.0 {
                1.0
            } else if *v < 0.0 {
                -1.0
            } else {
                0.0
            }),
            (Func::Sigmoid, Expr::Num(v)) if *v == 0.0 => Some(0.5),
            (Func::Floor, Expr::Num(v)) => Some(v.floor()),
            (Func::Ceil, Expr::Num(v)) => Some(v.ceil()),
            _ => None,
        };
        if let Some(v) = folded {
            return Expr::Num(v);
        }
        if f == Func::Ln {
            match arg {
                Expr::Call(Func::Exp, inner) if inner.len() == 1 => {
                    return args.swap_remove(0).into_call_arg();
                }
                Expr::Pow(b, x) if matches!(**b, Expr::Const(Constant::E)) => {
                    return (**x).clone();
                }
                _ => {}
            }
        }
    }
    if matches!(f, Func::Max | Func::Min) && args.iter().all(|a| matches!(a, Expr::Num(_))) {
        let nums = args.iter().filter_map(|a| match a {
            Expr::Num(v) => Some(*v),
            _ => None,
        });
        let v = if f == Func::Max {
            nums.fold(f64::NEG_INFINITY, f64::max)
        } else {
            nums.fold(f64::INFINITY, f64::min)
        };
        if v.is_finite() {
            return Expr::Num(v);
        }
    }
    Expr::Call(f, args)
}

impl Expr {
    /// The single argument of a one-argument call (else the expression).
    fn into_call_arg(self) -> Expr {
        match self {
            Expr::Call(_, mut args) if args.len() == 1 => args.swap_remove(0),
            other => other,
        }
    }
}

/// Simplifies an expression bottom-up.
pub(crate) fn simplify(e: &Expr) -> Expr {
    match e {
        Expr::Num(_) | Expr::Const(_) | Expr::Var(_) => e.clone(),
        Expr::Add(ts) => add(ts.iter().map(simplify).collect()),
        Expr::Mul { num, den } => {
            let mut f = Factors::new();
            for t in num {
                f.take(simplify(t), false);
            }
            for t in den {
                f.take(simplify(t), true);
            }
            f.merge().build()
        }
        Expr::Neg(a) => neg(simplify(a)),
        Expr::Pow(a, b) => pow(simplify(a), simplify(b)),
        Expr::Call(f, args) => call(*f, args.iter().map(simplify).collect()),
    }
}
