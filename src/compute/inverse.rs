//! Inverse convolution problems: given a convolution's input and some of its
//! outputs, find unknown filter entries (and optionally the bias).
//!
//! Each known output is one linear equation in the unknowns. The system is
//! solved by Gauss-Jordan elimination with partial pivoting in f64 with a
//! relative tolerance; the answer is a unique solution, a family (free
//! variables named, the others expressed in them) or "inconsistent", with every
//! equation and elimination step written out. Values are also shown as
//! fractions when a small-denominator fraction matches to 1e-9.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;
use super::nn::SizeSpec;
use super::nn::activation::paren;
use super::steps::{Step, fmt_num};
use super::tensor::Tensor;

/// Most unknowns one request may have.
pub const MAX_UNKNOWNS: usize = 256;
/// Most equations (known outputs) one request may have.
pub const MAX_EQUATIONS: usize = 4_096;

/// Most worked-step lines for the equations and the elimination.
pub const MAX_STEP_LINES: usize = 400;
/// Most products written out in one equation line.
const MAX_SHOWN_TERMS: usize = 64;
/// Most multiply-adds spent setting up the equations.
const MAX_WORK: usize = 50_000_000;

/// Adds a step unless the cap is reached (the step is only built when kept).
fn log(steps: &mut Vec<Step>, omitted: &mut usize, make: impl FnOnce() -> Step) {
    if steps.len() < MAX_STEP_LINES {
        steps.push(make());
    } else {
        *omitted += 1;
    }
}

/// Whether the filter slides as is (what deep-learning frameworks compute) or flipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConvOperation {
    /// `O[i, j] = Σ F[a, b] I[i*s + a - p, j*s + b - p]` (default; PyTorch/Keras "convolution").
    #[default]
    CrossCorrelation,
    /// Mathematical convolution: the filter is flipped in both spatial axes.
    Convolution,
}

/// Find unknown filter entries from a convolution's input and known outputs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterSolveRequest {
    /// Input image: `(H, W)` or channels-first `(C, H, W)` nested arrays of numbers.
    /// When only the top-left corner of a larger image is known, give that
    /// corner; every known output's window must lie inside it (or the padding).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Filter `(kh, kw)` or `(C, kh, kw)`: numbers for known entries, strings
    /// naming unknowns (`"x"`); a name used twice is one unknown.
    #[schema(value_type = Object)]
    pub filter: Value,
    /// Known outputs as rows of the output map, starting at the top-left:
    /// numbers, or `null` for outputs that are not given. Rows may be shorter
    /// than the output width.
    #[schema(value_type = Object)]
    pub outputs: Value,
    /// Bias: a number (default 0) or a string naming an unknown bias.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub bias: Option<Value>,
    /// Stride (default 1).
    #[serde(default)]
    pub stride: Option<SizeSpec>,
    /// Zero padding on every side (default 0), one number or `[ph, pw]`.
    #[serde(default)]
    pub padding: Option<SizeSpec>,
    /// `cross_correlation` (default) or `convolution` (flipped filter).
    #[serde(default)]
    pub operation: ConvOperation,
}

/// Outcome of the linear system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SolveStatus {
    /// Exactly one solution.
    Unique,
    /// Infinitely many solutions: `free_variables` can be chosen freely.
    InfinitelyMany,
    /// The known outputs contradict each other: no filter produces them all.
    Inconsistent,
}

/// One unknown's value (or its expression in the free variables).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnknownValue {
    /// Name as given in the filter (or the bias).
    pub name: String,
    /// Its value when it is determined (unique solution, or a pivot variable
    /// that does not depend on the free variables).
    pub value: Option<f64>,
    /// The value as a fraction (e.g. `14/3`) when one with a small denominator matches.
    pub fraction: Option<String>,
    /// The value as an expression in the free variables, e.g. `2/3 - z`.
    pub expression: String,
    /// True when this unknown is a free variable of the family.
    pub free: bool,
}

/// Solution of an inverse convolution problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FilterSolveReport {
    /// unique, infinitely_many or inconsistent.
    pub status: SolveStatus,
    /// A plain sentence saying what was found.
    pub summary: String,
    /// Unknown names, in order of first appearance.
    pub unknowns: Vec<String>,
    /// The linear equations, one per known output, simplified.
    pub equations: Vec<String>,
    /// Values/expressions of the unknowns (empty when inconsistent).
    pub solution: Vec<UnknownValue>,
    /// Names of the free variables (for infinitely_many).
    pub free_variables: Vec<String>,
    /// Rank of the coefficient matrix.
    pub rank: usize,
    /// Worked steps: equations, elimination, solution.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Entry {
    Known(f64),
    Unknown(usize),
}

fn err(p: impl Into<String>, m: impl Into<String>) -> ComputeError {
    ComputeError::new(p, m)
}

fn entry(v: &Value, ptr: &str, names: &mut Vec<String>) -> ComputeResult<Entry> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Entry::Known)
            .ok_or_else(|| err(ptr, "not a finite number")),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 32 {
                return Err(err(ptr, "an unknown's name must have 1 to 32 characters"));
            }
            if let Some(k) = names.iter().position(|n| n == s) {
                return Ok(Entry::Unknown(k));
            }
            if names.len() == MAX_UNKNOWNS {
                return Err(err(ptr, format!("more than {MAX_UNKNOWNS} unknowns")));
            }
            names.push(s.to_string());
            Ok(Entry::Unknown(names.len() - 1))
        }
        _ => Err(err(ptr, "expected a number or a string naming an unknown")),
    }
}

/// Parses the filter into (C, kh, kw) entries.
fn parse_filter(
    v: &Value,
    names: &mut Vec<String>,
) -> ComputeResult<(usize, usize, usize, Vec<Entry>)> {
    let Value::Array(outer) = v else {
        return Err(err(
            "/filter",
            "the filter must be a matrix (kh, kw) or (C, kh, kw)",
        ));
    };
    let three_d = matches!(outer.first(), Some(Value::Array(r)) if matches!(r.first(), Some(Value::Array(_))));
    let planes: Vec<(String, &Value)> = if three_d {
        outer
            .iter()
            .enumerate()
            .map(|(c, p)| (format!("/filter/{c}"), p))
            .collect()
    } else {
        vec![("/filter".to_string(), v)]
    };
    let mut entries = Vec::new();
    let (mut kh, mut kw) = (0, 0);
    for (pi, (pptr, plane)) in planes.iter().enumerate() {
        let Value::Array(rows) = plane else {
            return Err(err(pptr, "expected a matrix"));
        };
        if rows.is_empty() || rows.len() > 64 {
            return Err(err(pptr, "a filter must have 1 to 64 rows"));
        }
        for (r, row) in rows.iter().enumerate() {
            let Value::Array(cells) = row else {
                return Err(err(format!("{pptr}/{r}"), "expected a row (array)"));
            };
            if cells.is_empty() || cells.len() > 64 {
                return Err(err(
                    format!("{pptr}/{r}"),
                    "a filter row must have 1 to 64 entries",
                ));
            }
            if pi == 0 && r == 0 {
                kh = rows.len();
                kw = cells.len();
            }
            if rows.len() != kh || cells.len() != kw {
                return Err(err(
                    format!("{pptr}/{r}"),
                    format!("every filter plane must be {kh}x{kw}"),
                ));
            }
            for (c, cell) in cells.iter().enumerate() {
                entries.push(entry(cell, &format!("{pptr}/{r}/{c}"), names)?);
            }
        }
    }
    Ok((planes.len(), kh, kw, entries))
}

fn pair(s: Option<&SizeSpec>, default: usize, ptr: &str) -> ComputeResult<[usize; 2]> {
    let v = match s {
        None => [default, default],
        Some(SizeSpec::One(v)) => [*v, *v],
        Some(SizeSpec::PerDim(v)) if v.len() == 2 => [v[0], v[1]],
        Some(SizeSpec::PerDim(v)) if v.len() == 1 => [v[0], v[0]],
        Some(_) => return Err(err(ptr, "expected one number or two")),
    };
    if v.iter().any(|&x| x > 1000) {
        return Err(err(ptr, "must be at most 1000"));
    }
    Ok(v)
}

/// Small-denominator fraction equal to `x` within 1e-9 (relative), if any.
pub fn as_fraction(x: f64) -> Option<String> {
    if !x.is_finite() || x.abs() > 1e12 {
        return None;
    }
    if x == x.round() {
        return Some(fmt_num(x));
    }
    // Continued fraction convergents.
    let (mut h0, mut h1, mut k0, mut k1) = (0.0f64, 1.0f64, 1.0f64, 0.0f64);
    let mut r = x.abs();
    for _ in 0..40 {
        let a = r.floor();
        let (h2, k2) = (a * h1 + h0, a * k1 + k0);
        if k2 > 10_000.0 {
            break;
        }
        if (h2 / k2 - x.abs()).abs() <= 1e-9 * x.abs().max(1.0) {
            let sign = if x < 0.0 { "-" } else { "" };
            return Some(format!("{sign}{}/{}", h2 as i64, k2 as i64));
        }
        (h0, h1, k0, k1) = (h1, h2, k1, k2);
        let f = r - a;
        if f < 1e-15 {
            break;
        }
        r = 1.0 / f;
    }
    None
}

fn num_or_frac(x: f64) -> String {
    match as_fraction(x) {
        Some(f) if f.contains('/') => format!("{f} ≈ {}", fmt_num(x)),
        _ => fmt_num(x),
    }
}

/// A number as a small fraction when one matches, else in decimal.
fn exact(x: f64) -> String {
    as_fraction(x).unwrap_or_else(|| fmt_num(x))
}

fn linear_text(coefs: &[f64], names: &[String], rhs: f64) -> String {
    let mut parts = Vec::new();
    for (c, n) in coefs.iter().zip(names) {
        if *c == 0.0 {
            continue;
        }
        let mag = exact(c.abs());
        let term = if c.abs() == 1.0 {
            n.clone()
        } else {
            format!("{mag}*{n}")
        };
        if parts.is_empty() {
            parts.push(if *c < 0.0 { format!("-{term}") } else { term });
        } else {
            parts.push(format!("{} {term}", if *c < 0.0 { "-" } else { "+" }));
        }
    }
    if parts.is_empty() {
        parts.push("0".into());
    }
    format!("{} = {}", parts.join(" "), exact(rhs))
}

/// Solves for the unknown filter entries.
pub fn solve_filter(req: &FilterSolveRequest, limits: &Limits) -> ComputeResult<FilterSolveReport> {
    let input = Tensor::from_json(&req.input, "/input", limits)?;
    let (c, h, w) = match input.shape() {
        [h, w] => (1, *h, *w),
        [c, h, w] => (*c, *h, *w),
        s => {
            return Err(err(
                "/input",
                format!(
                    "the input must be (H, W) or (C, H, W), got rank {}",
                    s.len()
                ),
            ));
        }
    };
    let mut names = Vec::new();
    let (fc, kh, kw, fentries) = parse_filter(&req.filter, &mut names)?;
    if fc != c {
        return Err(err(
            "/filter",
            format!("the filter has {fc} channel(s) but the input has {c}"),
        ));
    }
    let bias = match &req.bias {
        None => Entry::Known(0.0),
        Some(v) => entry(v, "/bias", &mut names)?,
    };
    let stride = pair(req.stride.as_ref(), 1, "/stride")?;
    let pad = pair(req.padding.as_ref(), 0, "/padding")?;
    if stride.contains(&0) {
        return Err(err("/stride", "stride must be at least 1"));
    }
    let (Some(oh), Some(ow)) = (
        super::nn::conv::out_len(h, pad[0], pad[0], kh, stride[0], 1),
        super::nn::conv::out_len(w, pad[1], pad[1], kw, stride[1], 1),
    ) else {
        return Err(err(
            "/filter",
            format!("a {kh}x{kw} filter does not fit the padded {h}x{w} input"),
        ));
    };
    let Value::Array(orows) = &req.outputs else {
        return Err(err("/outputs", "outputs must be an array of rows"));
    };
    let n = names.len();
    if n == 0 {
        return Err(err(
            "/filter",
            "the filter has no unknowns (name them with strings, e.g. \"x\")",
        ));
    }
    let mut a: Vec<Vec<f64>> = Vec::new();
    let mut rhs: Vec<f64> = Vec::new();
    let mut steps = vec![Step::new(
        format!(
            "O[i, j] = Σ_c Σ_a Σ_b F[c, a, b]*I[c, i*{} + a - {}, j*{} + b - {}] + bias{} (output map {oh}x{ow})",
            stride[0],
            pad[0],
            stride[1],
            pad[1],
            if req.operation == ConvOperation::Convolution {
                ", F flipped (true convolution)"
            } else {
                ""
            }
        ),
        "O_{ij} = \\sum_{c,a,b} F_{c,a,b}\\, I_{c,\\, i s + a - p,\\, j s + b - p} + b".to_string(),
    )];
    let mut equations = Vec::new();
    let mut omitted = 0usize;
    let per_equation = c.saturating_mul(kh).saturating_mul(kw);
    for (r, row) in orows.iter().enumerate() {
        let Value::Array(cells) = row else {
            return Err(err(format!("/outputs/{r}"), "expected a row (array)"));
        };
        for (col, cell) in cells.iter().enumerate() {
            let optr = format!("/outputs/{r}/{col}");
            let target = match cell {
                Value::Null => continue,
                Value::Number(x) => x
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err(&optr, "not a finite number"))?,
                _ => return Err(err(&optr, "expected a number or null")),
            };
            if r >= oh || col >= ow {
                return Err(err(
                    &optr,
                    format!(
                        "output ({r}, {col}) is outside the {oh}x{ow} output map of the given input"
                    ),
                ));
            }
            if a.len() == MAX_EQUATIONS {
                return Err(err(
                    &optr,
                    format!("more than {MAX_EQUATIONS} known outputs"),
                ));
            }
            if (a.len() + 1).saturating_mul(per_equation.max(n)) > MAX_WORK {
                return Err(err(
                    &optr,
                    format!("the known outputs need more than {MAX_WORK} multiply-adds to set up"),
                ));
            }
            let mut coef = vec![0.0; n];
            let mut konst = 0.0;
            let mut shown = Vec::new();
            let mut n_terms = 0usize;
            for ch in 0..c {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let (fi, fj) = match req.operation {
                            ConvOperation::CrossCorrelation => (ki, kj),
                            ConvOperation::Convolution => (kh - 1 - ki, kw - 1 - kj),
                        };
                        let iy = (r * stride[0] + ki).checked_sub(pad[0]).filter(|&y| y < h);
                        let ix = (col * stride[1] + kj)
                            .checked_sub(pad[1])
                            .filter(|&x| x < w);
                        let xv = match (iy, ix) {
                            (Some(y), Some(x)) => input.data()[(ch * h + y) * w + x],
                            _ => 0.0,
                        };
                        match fentries[(ch * kh + fi) * kw + fj] {
                            Entry::Known(f) => {
                                konst += f * xv;
                                n_terms += 1;
                                if shown.len() < MAX_SHOWN_TERMS {
                                    shown.push(format!("{}*{}", paren(f), paren(xv)));
                                }
                            }
                            Entry::Unknown(k) => {
                                coef[k] += xv;
                                n_terms += 1;
                                if shown.len() < MAX_SHOWN_TERMS {
                                    shown.push(format!("{}*{}", names[k], paren(xv)));
                                }
                            }
                        }
                    }
                }
            }
            match bias {
                Entry::Known(b) => {
                    konst += b;
                    if b != 0.0 {
                        shown.push(paren(b));
                    }
                }
                Entry::Unknown(k) => {
                    coef[k] += 1.0;
                    shown.push(names[k].clone());
                }
            }
            if n_terms > shown.len() {
                shown.push(format!("… ({} more products)", n_terms - shown.len()));
            }
            let eq = linear_text(&coef, &names, target - konst);
            log(&mut steps, &mut omitted, || {
                Step::new(
                    format!(
                        "O[{r}, {col}] = {} = {} → {eq}",
                        shown.join(" + "),
                        fmt_num(target)
                    ),
                    format!(
                        "O_{{{r},{col}}} = {} = {}",
                        shown.join(" + ").replace('*', " \\cdot "),
                        fmt_num(target)
                    ),
                )
            });
            equations.push(eq);
            a.push(coef);
            rhs.push(target - konst);
        }
    }
    if a.is_empty() {
        return Err(err("/outputs", "no known outputs were given"));
    }
    // Gauss-Jordan elimination with partial pivoting.
    let m = a.len();
    let scale = a
        .iter()
        .flatten()
        .chain(rhs.iter())
        .fold(1.0f64, |s, v| s.max(v.abs()));
    let tol = 1e-9 * scale;
    let mut pivots: Vec<(usize, usize)> = Vec::new(); // (row, col)
    let mut row = 0;
    for col in 0..n {
        if row == m {
            break;
        }
        let (best, bv) = (row..m)
            .map(|r| (r, a[r][col].abs()))
            .fold((row, -1.0), |acc, x| if x.1 > acc.1 { x } else { acc });
        if bv <= tol {
            continue;
        }
        if best != row {
            a.swap(best, row);
            rhs.swap(best, row);
            log(&mut steps, &mut omitted, || {
                Step::new(
                    format!("swap equations {} and {}", row + 1, best + 1),
                    format!("R_{{{}}} \\leftrightarrow R_{{{}}}", row + 1, best + 1),
                )
            });
        }
        let p = a[row][col];
        if p != 1.0 {
            for v in a[row].iter_mut() {
                *v /= p;
            }
            rhs[row] /= p;
            log(&mut steps, &mut omitted, || {
                Step::new(
                    format!(
                        "R{} ← R{} / {} : {}",
                        row + 1,
                        row + 1,
                        paren(p),
                        linear_text(&a[row], &names, rhs[row])
                    ),
                    format!(
                        "R_{{{}}} \\leftarrow R_{{{}}} / {}",
                        row + 1,
                        row + 1,
                        paren(p)
                    ),
                )
            });
        }
        let pivot_row = a[row].clone();
        for r in 0..m {
            if r == row || a[r][col].abs() <= 0.0 {
                continue;
            }
            let f = a[r][col];
            for (ak, v) in a[r].iter_mut().zip(&pivot_row) {
                *ak -= f * v;
                if ak.abs() <= tol {
                    *ak = 0.0;
                }
            }
            rhs[r] -= f * rhs[row];
            if rhs[r].abs() <= tol {
                rhs[r] = 0.0;
            }
            log(&mut steps, &mut omitted, || {
                Step::new(
                    format!(
                        "R{} ← R{} - {}*R{} : {}",
                        r + 1,
                        r + 1,
                        paren(f),
                        row + 1,
                        linear_text(&a[r], &names, rhs[r])
                    ),
                    format!(
                        "R_{{{}}} \\leftarrow R_{{{}}} - {} R_{{{}}}",
                        r + 1,
                        r + 1,
                        paren(f),
                        row + 1
                    ),
                )
            });
        }
        pivots.push((row, col));
        row += 1;
    }
    if omitted > 0 {
        steps.push(Step::new(
            format!(
                "… {omitted} more equation/elimination lines not shown (step cap {MAX_STEP_LINES})"
            ),
            format!("\\text{{{omitted} more lines not shown}}"),
        ));
    }
    let rank = pivots.len();
    let inconsistent = (rank..m).any(|r| rhs[r].abs() > tol);
    if inconsistent {
        let r = (rank..m).find(|&r| rhs[r].abs() > tol).unwrap_or(rank);
        let summary = format!(
            "Inconsistent: after elimination one equation reads 0 = {}, so no choice of the unknowns reproduces all the given outputs.",
            fmt_num(rhs[r])
        );
        steps.push(Step::new(
            summary.clone(),
            format!("0 = {} \\Rightarrow \\text{{no solution}}", fmt_num(rhs[r])),
        ));
        return Ok(FilterSolveReport {
            status: SolveStatus::Inconsistent,
            summary,
            unknowns: names,
            equations,
            solution: Vec::new(),
            free_variables: Vec::new(),
            rank,
            steps,
        });
    }
    let pivot_cols: Vec<usize> = pivots.iter().map(|&(_, c)| c).collect();
    let free: Vec<usize> = (0..n).filter(|k| !pivot_cols.contains(k)).collect();
    let mut solution: Vec<UnknownValue> = Vec::with_capacity(n);
    for k in 0..n {
        if let Some(&(r, _)) = pivots.iter().find(|&&(_, c)| c == k) {
            let mut expr = num_or_frac(rhs[r]);
            let deps: Vec<String> = free
                .iter()
                .filter(|&&f| a[r][f] != 0.0)
                .map(|&f| {
                    let c = -a[r][f];
                    let mag = as_fraction(c.abs()).unwrap_or_else(|| fmt_num(c.abs()));
                    let term = if c.abs() == 1.0 {
                        names[f].clone()
                    } else {
                        format!("{mag}*{}", names[f])
                    };
                    format!("{} {term}", if c < 0.0 { "-" } else { "+" })
                })
                .collect();
            let determined = deps.is_empty();
            if !determined {
                expr = format!(
                    "{} {}",
                    as_fraction(rhs[r]).unwrap_or_else(|| fmt_num(rhs[r])),
                    deps.join(" ")
                );
            }
            steps.push(Step::new(
                format!("{} = {expr}", names[k]),
                format!("{} = {}", names[k], expr),
            ));
            solution.push(UnknownValue {
                name: names[k].clone(),
                value: determined.then_some(rhs[r]),
                fraction: if determined {
                    as_fraction(rhs[r])
                } else {
                    None
                },
                expression: expr,
                free: false,
            });
        } else {
            solution.push(UnknownValue {
                name: names[k].clone(),
                value: None,
                fraction: None,
                expression: format!("{} (free)", names[k]),
                free: true,
            });
        }
    }
    let free_variables: Vec<String> = free.iter().map(|&k| names[k].clone()).collect();
    let (status, summary) = if free.is_empty() {
        let vals: Vec<String> = solution
            .iter()
            .map(|s| format!("{} = {}", s.name, s.expression))
            .collect();
        (
            SolveStatus::Unique,
            format!("Unique solution: {}.", vals.join(", ")),
        )
    } else {
        (
            SolveStatus::InfinitelyMany,
            format!(
                "Infinitely many solutions: the {} known output(s) determine only {rank} of the {n} unknowns; {} can be chosen freely.",
                m,
                free_variables.join(", ")
            ),
        )
    };
    steps.push(Step::new(
        summary.clone(),
        format!("\\text{{{}}}", summary.replace('_', "\\_")),
    ));
    Ok(FilterSolveReport {
        status,
        summary,
        unknowns: names,
        equations,
        solution,
        free_variables,
        rank,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> FilterSolveRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bits_exam_corner_problem() {
        // The printed key's equations (3x + 3y = 12, ...) are wrong; the real
        // first output is 3x + 3z + 2 = 4 with the given I and F.
        let r = solve_filter(
            &req(json!({
                "input": [[3, 0, 3, -3, 0], [-3, 2, 0, 3, -2], [-5, 0, 3, -2, 0]],
                "filter": [["x", "y", "z"], [1, 0, 2], [-1, 1, 0]],
                "outputs": [[4, 0, -3]]
            })),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.status, SolveStatus::Unique);
        assert_eq!(r.equations[0], "3*x + 3*z = 2");
        // x: 3x + 3z = 2; 3y - 3z = 0 - (...)...; verify by substitution.
        let v: Vec<f64> = r.solution.iter().map(|s| s.value.unwrap()).collect();
        let i = [
            [3.0, 0.0, 3.0, -3.0, 0.0],
            [-3.0, 2.0, 0.0, 3.0, -2.0],
            [-5.0, 0.0, 3.0, -2.0, 0.0],
        ];
        let f = [[v[0], v[1], v[2]], [1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]];
        for (j, want) in [4.0, 0.0, -3.0].iter().enumerate() {
            let got: f64 = (0..3)
                .flat_map(|a| (0..3).map(move |b| (a, b)))
                .map(|(a, b)| f[a][b] * i[a][j + b])
                .sum();
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn families_and_contradictions() {
        let r = solve_filter(
            &req(json!({"input": [[1, 2], [3, 4]], "filter": [["a", "b"], [0, 0]], "outputs": [[5]]})),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.status, SolveStatus::InfinitelyMany);
        assert_eq!(r.free_variables, vec!["b"]);
        assert_eq!(r.solution[0].expression, "5 - 2*b");
        let r = solve_filter(
            &req(json!({"input": [[1, 1, 1]], "filter": [["a"]], "outputs": [[1, 2, null]]})),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.status, SolveStatus::Inconsistent);
        let e = solve_filter(
            &req(json!({"input": [[1, 1, 1]], "filter": [["a", 1]], "outputs": [[1, 2, 3]]})),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.pointer, "/outputs/0/2");
    }

    #[test]
    fn fractions() {
        assert_eq!(as_fraction(14.0 / 3.0).as_deref(), Some("14/3"));
        assert_eq!(as_fraction(-0.125).as_deref(), Some("-1/8"));
        assert_eq!(as_fraction(2.0).as_deref(), Some("2"));
        assert_eq!(as_fraction(std::f64::consts::PI), None);
    }
}
