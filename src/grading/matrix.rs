//! Matrices and vectors: JSON rows `[[1, 0, -1], [1, 0, -1]]`, MATLAB
//! `[1 0 -1; 1 0 -1]`, LaTeX `\begin{bmatrix} 1 & 0 \\ 0 & 1 \end{bmatrix}`
//! (also `pmatrix`, `vmatrix`, `matrix`), an optional scalar factor in front
//! (`1/9 * [...]`, `\frac{1}{9} \cdot \begin{pmatrix}...`) and a trailing `^T`.
//! Equivalences: tolerance, flips, sign, positive or any scaling.

use super::model::{MatrixEquivalence, Tolerance};
use super::number::{NumberFormat, is_close, parse_number, render_num};
use super::text;

/// Most entries read in one matrix.
pub const MAX_ENTRIES: usize = 4096;

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows (>= 1).
    pub rows: usize,
    /// Number of columns (>= 1).
    pub cols: usize,
    /// Entries, row-major, `rows * cols` of them.
    pub data: Vec<f64>,
}

impl Matrix {
    /// Builds a matrix from rows; errors on ragged or empty input.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Result<Matrix, String> {
        let r = rows.len();
        let c = rows.first().map_or(0, Vec::len);
        if r == 0 || c == 0 {
            return Err("the matrix is empty".into());
        }
        for (i, row) in rows.iter().enumerate() {
            if row.len() != c {
                return Err(format!(
                    "row {} has {} entries but row 1 has {c}",
                    i + 1,
                    row.len()
                ));
            }
        }
        Ok(Matrix {
            rows: r,
            cols: c,
            data: rows.into_iter().flatten().collect(),
        })
    }

    fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// The transpose.
    pub fn transpose(&self) -> Matrix {
        let mut data = Vec::with_capacity(self.data.len());
        for c in 0..self.cols {
            for r in 0..self.rows {
                data.push(self.at(r, c));
            }
        }
        Matrix {
            rows: self.cols,
            cols: self.rows,
            data,
        }
    }

    /// A row vector with the entries of a one-row or one-column matrix.
    pub fn as_vector(&self) -> Option<Matrix> {
        (self.rows == 1 || self.cols == 1).then(|| Matrix {
            rows: 1,
            cols: self.data.len(),
            data: self.data.clone(),
        })
    }

    fn map_index(&self, f: impl Fn(usize, usize) -> (usize, usize)) -> Matrix {
        let mut data = Vec::with_capacity(self.data.len());
        for r in 0..self.rows {
            for c in 0..self.cols {
                let (rr, cc) = f(r, c);
                data.push(self.at(rr, cc));
            }
        }
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }

    /// Columns reversed.
    pub fn hflip(&self) -> Matrix {
        self.map_index(|r, c| (r, self.cols - 1 - c))
    }

    /// Rows reversed.
    pub fn vflip(&self) -> Matrix {
        self.map_index(|r, c| (self.rows - 1 - r, c))
    }

    /// The entries as rows (for JSON output).
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        self.data.chunks(self.cols).map(<[f64]>::to_vec).collect()
    }
}

/// Renders a matrix as JSON-style rows, `[[1, 0, -1], [1, 0, -1]]`; a vector
/// (one row) as `[1, 2, 3]` when `vector` is set.
pub fn render_matrix(m: &Matrix, vector: bool) -> String {
    let row = |r: &[f64]| {
        let v: Vec<String> = r.iter().map(|x| render_num(*x)).collect();
        format!("[{}]", v.join(", "))
    };
    if vector && m.rows == 1 {
        return row(&m.data);
    }
    let rows: Vec<String> = m.data.chunks(m.cols.max(1)).map(row).collect();
    format!("[{}]", rows.join(", "))
}

/// Reads a matrix. Errors name what could not be read.
pub fn parse_matrix(src: &str) -> Result<Matrix, String> {
    text::check_len(src, "answer")?;
    let ascii = text::ascii_lookalikes(src);
    let s = ascii.trim();
    if s.is_empty() {
        return Err("the answer is empty".into());
    }
    // `C = [...]`: drop a name and '=' in front (not inside the matrix).
    let start = s.find('[').into_iter().chain(s.find("\\begin")).min();
    let s = match (start, s.find('=')) {
        (Some(st), Some(eq)) if eq < st => s[eq + 1..].trim(),
        (None, Some(_)) => text::last_side(s).trim(),
        _ => s,
    };
    let start = s.find('[').into_iter().chain(s.find("\\begin")).min();
    let (prefix, body, suffix) = match start {
        Some(st) if s[st..].starts_with("\\begin") => split_latex(s, st)?,
        Some(st) => split_bracket(s, st)?,
        None => match s.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
            Some(inner) => ("", Body::Rows(inner), ""),
            None => ("", Body::Rows(s), ""),
        },
    };
    let mut m = match body {
        Body::Latex(b) => read_rows(b.split("\\\\"), '&')?,
        Body::Rows(b) => {
            if b.trim_start().starts_with('[') {
                read_json_rows(b)?
            } else {
                read_rows(b.split([';', '\n']), ' ')?
            }
        }
    };
    let prefix = prefix.trim();
    let prefix = prefix
        .strip_suffix("\\cdot")
        .or_else(|| prefix.strip_suffix('*'))
        .unwrap_or(prefix)
        .trim();
    if !prefix.is_empty() {
        let f = parse_number(prefix, NumberFormat::default())
            .map_err(|e| format!("could not read the factor in front of the matrix: {e}"))?;
        for x in &mut m.data {
            *x *= f.value;
        }
    }
    match suffix.trim() {
        "" => Ok(m),
        "^T" | "^t" | "^{T}" | "^\\top" | "'" | "\u{1D40}" => Ok(m.transpose()),
        other => Err(format!("unexpected text after the matrix: '{other}'")),
    }
}

enum Body<'a> {
    Latex(&'a str),
    Rows(&'a str),
}

fn split_latex(s: &str, st: usize) -> Result<(&str, Body<'_>, &str), String> {
    let after = &s[st + "\\begin".len()..];
    let env_end = after
        .find('}')
        .ok_or("\\begin needs an environment name in braces")?;
    let env = after[..env_end].trim_start_matches('{').trim();
    if !matches!(
        env,
        "bmatrix" | "pmatrix" | "vmatrix" | "Bmatrix" | "matrix" | "array"
    ) {
        return Err(format!("unsupported LaTeX environment '{env}'"));
    }
    let mut body_start = st + "\\begin".len() + env_end + 1;
    if env == "array" {
        // Skip the column spec `{ccc}`.
        let rest = &s[body_start..];
        if rest.trim_start().starts_with('{') {
            let close = rest.find('}').ok_or("unterminated array column spec")?;
            body_start += close + 1;
        }
    }
    let end_tag = format!("\\end{{{env}}}");
    let end = s[body_start..]
        .find(&end_tag)
        .ok_or_else(|| format!("missing {end_tag}"))?
        + body_start;
    Ok((
        &s[..st],
        Body::Latex(&s[body_start..end]),
        &s[end + end_tag.len()..],
    ))
}

fn split_bracket(s: &str, st: usize) -> Result<(&str, Body<'_>, &str), String> {
    let mut depth = 0usize;
    for (i, c) in s[st..].char_indices() {
        match c {
            '[' => {
                depth += 1;
                if depth > 2 {
                    return Err("brackets nested deeper than rows of a matrix".into());
                }
            }
            ']' => {
                depth = depth.checked_sub(1).ok_or("unbalanced ']'")?;
                if depth == 0 {
                    let end = st + i;
                    return Ok((&s[..st], Body::Rows(&s[st + 1..end]), &s[end + 1..]));
                }
            }
            _ => {}
        }
    }
    Err("unbalanced '['".into())
}

fn read_json_rows(b: &str) -> Result<Matrix, String> {
    let mut rows = Vec::new();
    let mut rest = b.trim();
    let mut total = 0usize;
    while !rest.is_empty() {
        let open = rest
            .strip_prefix('[')
            .ok_or_else(|| format!("expected '[' to start a row at '{}'", head(rest)))?;
        let close = open.find(']').ok_or("unbalanced '['")?;
        let row = read_entries(&open[..close], ',', &mut total)?;
        rows.push(row);
        rest = open[close + 1..].trim_start();
        rest = rest
            .strip_prefix(',')
            .or_else(|| rest.strip_prefix(';'))
            .unwrap_or(rest)
            .trim_start();
    }
    Matrix::from_rows(rows)
}

fn read_rows<'a>(rows: impl Iterator<Item = &'a str>, sep: char) -> Result<Matrix, String> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for r in rows {
        let r = r.trim();
        if r.is_empty() || r == "\\hline" {
            continue;
        }
        out.push(read_entries(r, sep, &mut total)?);
    }
    Matrix::from_rows(out)
}

fn read_entries(row: &str, sep: char, total: &mut usize) -> Result<Vec<f64>, String> {
    let pieces: Vec<&str> = if sep == ' ' && !row.contains(',') {
        row.split_whitespace().collect()
    } else if sep == ' ' {
        row.split(',').map(str::trim).collect()
    } else {
        row.split(sep).map(str::trim).collect()
    };
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        *total += 1;
        if *total > MAX_ENTRIES {
            return Err(format!("a matrix has at most {MAX_ENTRIES} entries"));
        }
        if p.is_empty() {
            return Err("an entry is missing".into());
        }
        let v = match p.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                parse_number(p, NumberFormat::default())
                    .map_err(|e| format!("entry '{}': {e}", head(p)))?
                    .value
            }
        };
        out.push(v);
    }
    Ok(out)
}

fn head(s: &str) -> &str {
    match s.char_indices().nth(20) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// How an answer matched a matrix key.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixMatch {
    /// `identity`, `horizontal flip`, `vertical flip` or `180° rotation`.
    pub transform: &'static str,
    /// The factor c with answer = c * transform(key).
    pub scale: f64,
}

/// Whether `a` equals `c * T(key)` for an accepted transform T and factor c.
pub fn equivalent(
    a: &Matrix,
    key: &Matrix,
    tol: Tolerance,
    eq: &[MatrixEquivalence],
) -> Option<MatrixMatch> {
    if a.rows != key.rows || a.cols != key.cols {
        return None;
    }
    let has = |e| eq.contains(&e);
    let h = has(MatrixEquivalence::HorizontalFlip);
    let v = has(MatrixEquivalence::VerticalFlip);
    let mut cands: Vec<(&'static str, Matrix)> = vec![("identity", key.clone())];
    if h {
        cands.push(("horizontal flip", key.hflip()));
    }
    if v {
        cands.push(("vertical flip", key.vflip()));
    }
    if (h && v) || has(MatrixEquivalence::Rotate180) {
        cands.push(("180° rotation", key.hflip().vflip()));
    }
    for (name, k) in &cands {
        for c in scales(a, k, eq) {
            if a.data
                .iter()
                .zip(&k.data)
                .all(|(x, y)| is_close(*x, c * y, tol))
            {
                return Some(MatrixMatch {
                    transform: name,
                    scale: c,
                });
            }
        }
    }
    None
}

fn scales(a: &Matrix, k: &Matrix, eq: &[MatrixEquivalence]) -> Vec<f64> {
    let mut out = vec![1.0];
    if eq.contains(&MatrixEquivalence::Sign) {
        out.push(-1.0);
    }
    let pos = eq.contains(&MatrixEquivalence::PositiveScaling);
    let any = eq.contains(&MatrixEquivalence::AnyScaling);
    if pos || any {
        let j = (0..k.data.len()).max_by(|&i, &j| k.data[i].abs().total_cmp(&k.data[j].abs()));
        if let Some(j) = j
            && k.data[j] != 0.0
        {
            let c = a.data[j] / k.data[j];
            if c.is_finite() && c != 0.0 && (any || c > 0.0) {
                out.push(c);
            }
        }
    }
    out
}

/// Per-entry comparison without transforms: the mask of wrong entries (row
/// major) and the number of correct ones; `None` when dimensions differ.
pub fn entry_mask(a: &Matrix, key: &Matrix, tol: Tolerance) -> Option<(Vec<Vec<bool>>, usize)> {
    if a.rows != key.rows || a.cols != key.cols {
        return None;
    }
    let wrong: Vec<bool> = a
        .data
        .iter()
        .zip(&key.data)
        .map(|(x, y)| !is_close(*x, *y, tol))
        .collect();
    let correct = wrong.iter().filter(|w| !**w).count();
    Some((
        wrong.chunks(a.cols).map(<[bool]>::to_vec).collect(),
        correct,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn edge() -> Matrix {
        Matrix::from_rows(vec![vec![1., 0., -1.]; 3]).unwrap()
    }

    const TOL: Tolerance = Tolerance::Relabs {
        rtol: 1e-6,
        atol: 1e-9,
    };

    #[test]
    fn all_the_ways_to_write_a_matrix() {
        for s in [
            "[[1, 0, -1], [1, 0, -1], [1, 0, -1]]",
            "[1 0 -1; 1 0 -1; 1 0 -1]",
            "[1, 0, -1; 1, 0, -1; 1, 0, -1]",
            "\\begin{bmatrix} 1 & 0 & -1 \\\\ 1 & 0 & -1 \\\\ 1 & 0 & -1 \\end{bmatrix}",
            "\\begin{pmatrix} 1 & 0 & −1 \\\\ 1 & 0 & −1 \\\\ 1 & 0 & −1 \\\\ \\end{pmatrix}",
            "K = [1 0 -1; 1 0 -1; 1 0 -1]",
            "1 0 -1; 1 0 -1; 1 0 -1",
        ] {
            assert_eq!(parse_matrix(s).unwrap(), edge(), "{s}");
        }
        let scaled = parse_matrix("1/9 * [1 1 1; 1 1 1; 1 1 1]").unwrap();
        assert!((scaled.data[4] - 1.0 / 9.0).abs() < 1e-15);
        let latex =
            parse_matrix("\\frac{1}{9} \\cdot \\begin{pmatrix} 1 & 1 \\\\ 1 & 1 \\end{pmatrix}")
                .unwrap();
        assert!((latex.data[3] - 1.0 / 9.0).abs() < 1e-15);
        let col = parse_matrix("[1 2 3]^T").unwrap();
        assert_eq!((col.rows, col.cols), (3, 1));
        assert_eq!(parse_matrix("(1, 2, 3)").unwrap().data, vec![1., 2., 3.]);
        assert_eq!(parse_matrix("[0.5, 1/2, 5e-1]").unwrap().data, vec![0.5; 3]);
    }

    #[test]
    fn unreadable_matrices_say_why() {
        assert!(parse_matrix("").unwrap_err().contains("empty"));
        assert!(parse_matrix("[1 2; 3]").unwrap_err().contains("row 2"));
        assert!(parse_matrix("[[[1]]]").unwrap_err().contains("nested"));
        assert!(parse_matrix("[1 2").unwrap_err().contains("unbalanced"));
        assert!(parse_matrix("[1 a]").is_err());
        assert!(parse_matrix("\\begin{foo} 1 \\end{foo}").is_err());
        assert!(parse_matrix("[1 2] hello").is_err());
        assert!(parse_matrix(&"[".repeat(100_000)).is_err());
        assert!(parse_matrix(&"1 ".repeat(9000)).is_err());
    }

    #[test]
    fn flips_and_scaling() {
        let k = edge();
        let all = [
            MatrixEquivalence::HorizontalFlip,
            MatrixEquivalence::VerticalFlip,
            MatrixEquivalence::AnyScaling,
        ];
        let flipped = parse_matrix("[-1 0 1; -1 0 1; -1 0 1]").unwrap();
        assert!(equivalent(&flipped, &k, TOL, &[]).is_none());
        let m = equivalent(&flipped, &k, TOL, &all).unwrap();
        assert_eq!(m.transform, "identity");
        assert_eq!(m.scale, -1.0);
        let m = equivalent(&flipped, &k, TOL, &[MatrixEquivalence::HorizontalFlip]).unwrap();
        assert_eq!(m.transform, "horizontal flip");
        let scaled = parse_matrix("[3 0 -3; 3 0 -3; 3 0 -3]").unwrap();
        assert_eq!(
            equivalent(&scaled, &k, TOL, &[MatrixEquivalence::PositiveScaling])
                .unwrap()
                .scale,
            3.0
        );
        assert!(equivalent(&flipped, &k, TOL, &[MatrixEquivalence::PositiveScaling]).is_none());
        assert!(equivalent(&flipped, &k, TOL, &[MatrixEquivalence::Sign]).is_some());
        let horizontal = k.transpose();
        assert!(equivalent(&horizontal, &k, TOL, &all).is_none());
        let zero = parse_matrix("[0 0 0; 0 0 0; 0 0 0]").unwrap();
        assert!(equivalent(&zero, &k, TOL, &all).is_none());
    }

    #[test]
    fn entry_mask_marks_wrong_entries() {
        let a = parse_matrix("[1 0 -1; 1 1 -1; 1 0 -1]").unwrap();
        let (mask, ok) = entry_mask(&a, &edge(), TOL).unwrap();
        assert_eq!(ok, 8);
        assert!(mask[1][1]);
        assert!(!mask[0][0]);
        let row = parse_matrix("[1 0 -1]").unwrap();
        assert!(entry_mask(&row, &edge(), TOL).is_none());
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(r in 1usize..5, c in 1usize..5, seed in proptest::collection::vec(-1e6f64..1e6, 25)) {
            let rows: Vec<Vec<f64>> = (0..r).map(|i| seed[i * 5..i * 5 + c].to_vec()).collect();
            let m = Matrix::from_rows(rows).unwrap();
            prop_assert_eq!(parse_matrix(&render_matrix(&m, false)).unwrap(), m);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_matrix(&s);
        }
    }
}
