//! Shapes and tuples: `8x8x5`, `8 × 8 × 5`, `(8, 8, 5)`, `[8,8,5]`, `8*8*5`,
//! `8 by 8 by 5`, `torch.Size([4, 3, 5, 5])`, `1x1 → 3x3 → 7x7` (the last
//! one counts), and weight layouts in PyTorch, Keras and (in, out) order.

use super::model::Convention;
use super::text;

/// Most dimensions read in one shape.
pub const MAX_DIMS: usize = 16;

/// A shape read from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedShape {
    /// The sizes in the order written.
    pub dims: Vec<u64>,
    /// A single number without brackets or separators (`7`).
    pub scalar: bool,
}

/// Renders a shape as a tuple, `(8, 8, 5)`; a one-element shape as `(8,)`.
pub fn render_shape(dims: &[u64]) -> String {
    let inner: Vec<String> = dims.iter().map(u64::to_string).collect();
    if dims.len() == 1 {
        format!("({},)", inner[0])
    } else {
        format!("({})", inner.join(", "))
    }
}

/// Reads a shape. Errors name what could not be read. When the text after
/// the last `=` is not a shape as a whole (`64, so 64 × 64 × 96`, `output:
/// 8x8x5`), the longest shape with at least two dimensions that ends the
/// text is read instead, as a human grader would.
pub fn parse_shape(src: &str) -> Result<ParsedShape, String> {
    text::check_len(src, "answer")?;
    let ascii = text::ascii_lookalikes(src).to_lowercase();
    let side = text::last_side(&ascii).trim();
    let side = side.strip_suffix('.').unwrap_or(side).trim();
    parse_side(src, side).or_else(|err| trailing_shape(side).ok_or(err))
}

/// Characters of the end of an answer searched for a trailing shape.
const TRAILING_WINDOW: usize = 200;

/// The longest suffix of `side`, starting at a word, that reads as a shape
/// of two or more dimensions.
fn trailing_shape(side: &str) -> Option<ParsedShape> {
    let start = side
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| side.len() - i <= TRAILING_WINDOW)?;
    let window = &side[start..];
    // A hedge (`8x8x5 or 5x8x8`) is not read as its last alternative.
    if side
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w == "or")
    {
        return None;
    }
    window
        .char_indices()
        .filter(|&(i, c)| {
            !c.is_whitespace()
                && window[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|p| p.is_whitespace() || matches!(p, ',' | ':' | ';'))
        })
        .filter(|&(i, _)| {
            // Not the tail of a longer product (`eight x 8 x 5` is not 8 x 5).
            let prev = window[..i].split_whitespace().next_back().unwrap_or("");
            !(matches!(prev, "x" | "by" | "times")
                || prev.ends_with(|c: char| c.is_ascii_digit() || c == '*' || c == 'x'))
        })
        .find_map(|(i, _)| {
            parse_side(&window[i..], window[i..].trim())
                .ok()
                .filter(|s| s.dims.len() >= 2)
        })
}

fn parse_side(src: &str, side: &str) -> Result<ParsedShape, String> {
    if side.is_empty() {
        return Err(if src.trim().is_empty() {
            "the answer is empty".into()
        } else {
            "there is no shape after the last '='".into()
        });
    }
    // `torch.size(...)`, `shape (...)`: drop a leading name before a bracket.
    let side = match side.find(['(', '[', '{']) {
        Some(i)
            if i > 0
                && side[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || matches!(c, '.' | '_' | ' ')) =>
        {
            &side[i..]
        }
        _ => side,
    };
    let mut inner = side;
    let mut bracketed = false;
    for _ in 0..4 {
        match strip_outer(inner) {
            Some(s) => {
                inner = s.trim();
                bracketed = true;
            }
            None => break,
        }
    }
    if inner.contains(['(', ')', '[', ']', '{', '}']) {
        return Err("could not read a shape: brackets inside the dimensions".into());
    }
    let replaced = inner.replace(" by ", " x ");
    let sep: Option<char> = if replaced.contains(',') {
        Some(',')
    } else if replaced.contains(';') {
        Some(';')
    } else if replaced.contains('x') {
        Some('x')
    } else if replaced.contains('*') {
        Some('*')
    } else {
        None
    };
    let parts: Vec<&str> = match sep {
        Some(c) => replaced.split(c).map(str::trim).collect(),
        None => replaced.split_whitespace().collect(),
    };
    let mut parts = parts;
    // Python's one-element tuple `(8,)`.
    if bracketed && parts.len() == 2 && parts[1].is_empty() {
        parts.pop();
    }
    if parts.len() > MAX_DIMS {
        return Err(format!("a shape has at most {MAX_DIMS} dimensions"));
    }
    let mut dims = Vec::with_capacity(parts.len());
    for p in &parts {
        dims.push(parse_dim(p)?);
    }
    if dims.is_empty() {
        return Err("the shape has no dimensions".into());
    }
    let scalar = dims.len() == 1 && !bracketed && sep.is_none();
    Ok(ParsedShape { dims, scalar })
}

fn parse_dim(p: &str) -> Result<u64, String> {
    if p.is_empty() {
        return Err("a dimension is missing (two separators in a row)".into());
    }
    if p.len() <= 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return p
            .parse::<u64>()
            .map_err(|_| format!("could not read the size '{p}'"));
    }
    // `8.0` is fine; `7.5` is not a size.
    match p.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && (0.0..1e12).contains(&v) => Ok(v as u64),
        _ => Err(format!("could not read '{p}' as a size (a whole number)")),
    }
}

/// Strips one pair of outer brackets if the first bracket closes at the end.
fn strip_outer(s: &str) -> Option<&str> {
    let open = s.chars().next()?;
    let close = match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        _ => return None,
    };
    if !s.ends_with(close) || s.len() < 2 {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return (i == s.len() - 1).then(|| &s[1..i]);
            }
        }
    }
    None
}

/// A weight tensor described independently of layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightKey {
    /// Output channels / units.
    pub out_channels: u64,
    /// Input channels / features.
    pub in_channels: u64,
    /// Kernel sizes (empty for dense layers).
    pub kernel: Vec<u64>,
}

impl WeightKey {
    /// The weight shape in a layout convention.
    pub fn layout(&self, c: Convention) -> Vec<u64> {
        let mut v = Vec::with_capacity(self.kernel.len() + 2);
        match c {
            Convention::Pytorch => {
                v.push(self.out_channels);
                v.push(self.in_channels);
                v.extend(&self.kernel);
            }
            Convention::Keras => {
                v.extend(&self.kernel);
                v.push(self.in_channels);
                v.push(self.out_channels);
            }
            Convention::InOut => {
                v.push(self.in_channels);
                v.push(self.out_channels);
                v.extend(&self.kernel);
            }
        }
        v
    }

    /// Reads a shape given in a layout convention.
    pub fn from_layout(dims: &[u64], c: Convention) -> Option<WeightKey> {
        if dims.len() < 2 {
            return None;
        }
        let n = dims.len();
        Some(match c {
            Convention::Pytorch => WeightKey {
                out_channels: dims[0],
                in_channels: dims[1],
                kernel: dims[2..].to_vec(),
            },
            Convention::Keras => WeightKey {
                out_channels: dims[n - 1],
                in_channels: dims[n - 2],
                kernel: dims[..n - 2].to_vec(),
            },
            Convention::InOut => WeightKey {
                in_channels: dims[0],
                out_channels: dims[1],
                kernel: dims[2..].to_vec(),
            },
        })
    }
}

/// Names of a convention's axes, for feedback.
pub fn layout_names(c: Convention, kernel_rank: usize) -> String {
    let k: Vec<String> = (1..=kernel_rank).map(|i| format!("k{i}")).collect();
    let k = k.join(", ");
    let sep = if kernel_rank == 0 { "" } else { ", " };
    match c {
        Convention::Pytorch => format!("PyTorch layout (out, in{sep}{k})"),
        Convention::Keras => format!("Keras layout ({k}{sep}in, out)"),
        Convention::InOut => format!("(in, out{sep}{k}) layout"),
    }
}

/// Whether `b` is `a` with some entries removed (order kept), and shorter.
pub fn is_proper_subsequence(b: &[u64], a: &[u64]) -> bool {
    if b.is_empty() || b.len() >= a.len() {
        return false;
    }
    let mut it = a.iter();
    b.iter().all(|x| it.any(|y| y == x))
}

/// Whether `b` is a permutation of `a`.
pub fn is_permutation(a: &[u64], b: &[u64]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut x = a.to_vec();
    let mut y = b.to_vec();
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dims(s: &str) -> Vec<u64> {
        parse_shape(s).unwrap().dims
    }

    #[test]
    fn all_the_ways_to_write_a_shape() {
        for s in [
            "8x8x5",
            "8 × 8 × 5",
            "(8, 8, 5)",
            "[8,8,5]",
            "8*8*5",
            "8 by 8 by 5",
            "8X8X5",
            "output = 8 x 8 x 5",
            "((8, 8, 5))",
            "8 8 5",
            "8; 8; 5",
            "8 ⨯ 8 ⨯ 5",
            "(８, ８, ５)",
        ] {
            assert_eq!(dims(s), vec![8, 8, 5], "{s}");
        }
        assert_eq!(dims("torch.Size([4, 3, 5, 5])"), vec![4, 3, 5, 5]);
        assert_eq!(dims("1x1 → 3x3 → 5x5 → 7x7"), vec![7, 7]);
        assert_eq!(dims("(8,)"), vec![8]);
        assert!(parse_shape("7").unwrap().scalar);
        assert!(!parse_shape("(7)").unwrap().scalar);
    }

    #[test]
    fn a_shape_at_the_end_of_a_sentence_is_read() {
        assert_eq!(
            dims("(256 + 2·5 − 11)/4 + 1 = 64, so 64 × 64 × 96"),
            vec![64, 64, 96]
        );
        assert_eq!(dims("output: 8x8x5"), vec![8, 8, 5]);
        assert_eq!(dims("I think it is 8 by 8 by 5."), vec![8, 8, 5]);
        assert_eq!(dims("the output is (8, 8, 5)"), vec![8, 8, 5]);
        // A hedge, a lone number or a shape inside words is not read.
        assert!(parse_shape("8x8x5 or 5x8x8").is_err());
        assert!(parse_shape("it has 5 channels").is_err());
        assert!(parse_shape("8x8x5 because of the padding").is_err());
        assert!(parse_shape("eight x 8 x 5").is_err());
        assert!(parse_shape("8 times 8 x 5").is_err());
        // Only the end of a long answer is searched.
        let long = format!("{} so 8x8x5", "word ".repeat(3_000));
        assert_eq!(dims(&long), vec![8, 8, 5]);
    }

    #[test]
    fn unreadable_shapes_say_why() {
        assert!(parse_shape("").unwrap_err().contains("empty"));
        assert!(parse_shape("8x").is_err());
        assert!(
            parse_shape("7.5 x 7.5")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_shape("(8, (8), 5)").is_err());
        assert!(parse_shape("eight by eight").is_err());
        assert!(parse_shape(&"(".repeat(100_000)).is_err());
        let deep = "(".repeat(5000) + "8" + &")".repeat(5000);
        assert!(parse_shape(&deep).is_err());
        assert!(parse_shape(&"8x".repeat(50)).is_err());
    }

    #[test]
    fn weight_layouts() {
        let w = WeightKey {
            out_channels: 4,
            in_channels: 3,
            kernel: vec![5, 5],
        };
        assert_eq!(w.layout(Convention::Pytorch), vec![4, 3, 5, 5]);
        assert_eq!(w.layout(Convention::Keras), vec![5, 5, 3, 4]);
        assert_eq!(w.layout(Convention::InOut), vec![3, 4, 5, 5]);
        for c in [Convention::Pytorch, Convention::Keras, Convention::InOut] {
            assert_eq!(WeightKey::from_layout(&w.layout(c), c), Some(w.clone()));
        }
        assert_eq!(
            layout_names(Convention::Keras, 2),
            "Keras layout (k1, k2, in, out)"
        );
    }

    #[test]
    fn subsequences_and_permutations() {
        assert!(is_proper_subsequence(&[4, 5, 5], &[4, 3, 5, 5]));
        assert!(!is_proper_subsequence(&[5, 4], &[4, 3, 5, 5]));
        assert!(!is_proper_subsequence(&[4, 3, 5, 5], &[4, 3, 5, 5]));
        assert!(is_permutation(&[8, 8, 5], &[5, 8, 8]));
        assert!(!is_permutation(&[8, 8, 5], &[5, 5, 8]));
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(d in proptest::collection::vec(0u64..100_000, 1..8)) {
            let s = render_shape(&d);
            prop_assert_eq!(parse_shape(&s).unwrap().dims, d);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_shape(&s);
        }
    }
}
