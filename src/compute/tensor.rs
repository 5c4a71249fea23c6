//! Dense row-major f64 tensors of rank <= 5 (batch dimension included), parsed
//! from nested JSON arrays with shape checks and JSON-pointer-named errors.
//!
//! JSON cannot carry NaN or infinities as numbers; strings such as `"NaN"` are
//! rejected with a message, as are ragged arrays, empty arrays and tensors with
//! more elements than [`Limits::max_tensor_elements`] (checked before any
//! element buffer is allocated).

use serde_json::Value;

use super::error::{ComputeError, ComputeResult};
use super::limits::Limits;

/// Largest rank a tensor may have (e.g. a batch of 3-D volumes `N, C, D, H, W`).
pub const MAX_RANK: usize = 5;

/// A dense tensor: `shape` and the elements in row-major (C) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Tensor {
    /// Builds a tensor from a shape and row-major data; the element count must match.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> ComputeResult<Self> {
        let n = checked_numel(&shape).ok_or_else(|| ComputeError::new("", "shape overflows"))?;
        if n != data.len() {
            return Err(ComputeError::new(
                "",
                format!(
                    "shape {} needs {n} elements but {} were given",
                    shape_str(&shape),
                    data.len()
                ),
            ));
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros. The caller guarantees the element count is reasonable.
    pub fn zeros(shape: &[usize]) -> Self {
        let n = shape.iter().product();
        Self {
            shape: shape.to_vec(),
            data: vec![0.0; n],
        }
    }

    /// A rank-0 tensor holding one number.
    pub fn scalar(v: f64) -> Self {
        Self {
            shape: Vec::new(),
            data: vec![v],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn data(&self) -> &[f64] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Same data, new shape with the same element count.
    pub fn reshape(self, shape: Vec<usize>) -> ComputeResult<Self> {
        Self::new(shape, self.data)
    }

    /// Row-major strides of the shape.
    pub fn strides(&self) -> Vec<usize> {
        strides_of(&self.shape)
    }

    /// Reorders the axes: output axis `k` is input axis `perm[k]`.
    /// `perm` must be a permutation of `0..rank` (checked by the caller: it is
    /// only used with internal, fixed permutations).
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let rank = self.shape.len();
        if perm.len() != rank || perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.clone();
        }
        let in_strides = self.strides();
        let out_shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
        let mut out = Vec::with_capacity(self.data.len());
        let mut idx = vec![0usize; rank];
        for _ in 0..self.data.len() {
            let off: usize = idx.iter().zip(&src_strides).map(|(i, s)| i * s).sum();
            out.push(self.data[off]);
            for ax in (0..rank).rev() {
                idx[ax] += 1;
                if idx[ax] < out_shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        Tensor {
            shape: out_shape,
            data: out,
        }
    }

    /// Parses a number or a nested JSON array of numbers. `pointer` is the JSON
    /// pointer of `value` in the request; errors name the exact element at fault.
    pub fn from_json(value: &Value, pointer: &str, limits: &Limits) -> ComputeResult<Self> {
        let shape = infer_shape(value, pointer)?;
        let n = checked_numel(&shape).ok_or_else(|| {
            ComputeError::new(pointer, "tensor is too large (element count overflows)")
        })?;
        if n > limits.max_tensor_elements {
            return Err(ComputeError::new(
                pointer,
                format!(
                    "tensor of shape {} has {n} elements, more than the limit of {}",
                    shape_str(&shape),
                    limits.max_tensor_elements
                ),
            ));
        }
        let mut data = Vec::with_capacity(n);
        fill(
            value,
            &shape,
            pointer,
            &mut Vec::with_capacity(MAX_RANK),
            &mut data,
        )?;
        Ok(Self { shape, data })
    }

    /// Nested JSON arrays (a bare number for rank 0). Non-finite values, which
    /// callers reject before reporting, become `null`.
    pub fn to_json(&self) -> Value {
        if self.shape.is_empty() {
            return num_json(self.data.first().copied().unwrap_or(0.0));
        }
        let mut pos = 0usize;
        build_json(&self.shape, &self.data, &mut pos)
    }

    /// Index of the first non-finite element, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.data.iter().position(|v| !v.is_finite())
    }
}

/// Product of the dimensions, `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Row-major strides of a shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// `(2, 3, 4)`-style rendering of a shape.
pub fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Multi-index of flat position `flat` in a row-major tensor of `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0usize; shape.len()];
    for ax in (0..shape.len()).rev() {
        let d = shape[ax].max(1);
        idx[ax] = flat % d;
        flat /= d;
    }
    idx
}

/// A JSON number for a finite f64 (`null` otherwise).
pub fn num_json(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn build_json(shape: &[usize], data: &[f64], pos: &mut usize) -> Value {
    match shape.split_first() {
        None => {
            let v = data.get(*pos).copied().unwrap_or(0.0);
            *pos += 1;
            num_json(v)
        }
        Some((&d, rest)) => Value::Array((0..d).map(|_| build_json(rest, data, pos)).collect()),
    }
}

fn infer_shape(value: &Value, pointer: &str) -> ComputeResult<Vec<usize>> {
    let mut shape = Vec::new();
    let mut cur = value;
    let mut ptr = pointer.to_string();
    loop {
        match cur {
            Value::Array(items) => {
                if shape.len() == MAX_RANK {
                    return Err(ComputeError::new(
                        pointer,
                        format!("tensor has more than {MAX_RANK} dimensions"),
                    ));
                }
                let Some(first) = items.first() else {
                    return Err(ComputeError::new(
                        ptr,
                        "empty array: every dimension must have at least one element",
                    ));
                };
                shape.push(items.len());
                cur = first;
                ptr.push_str("/0");
            }
            Value::Number(_) => return Ok(shape),
            other => return Err(ComputeError::new(ptr, not_a_number(other))),
        }
    }
}

/// Pointer of the element at `path` below `base`, built only for errors.
fn at(base: &str, path: &[usize]) -> String {
    let mut p = base.to_string();
    for i in path {
        p.push('/');
        p.push_str(&i.to_string());
    }
    p
}

fn fill(
    value: &Value,
    shape: &[usize],
    base: &str,
    path: &mut Vec<usize>,
    out: &mut Vec<f64>,
) -> ComputeResult<()> {
    let depth = path.len();
    match (value, shape.get(depth)) {
        (Value::Number(n), None) => {
            let v = n
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| ComputeError::new(at(base, path), "number is not a finite f64"))?;
            out.push(v);
            Ok(())
        }
        (Value::Array(items), Some(&d)) => {
            if items.len() != d {
                return Err(ComputeError::new(
                    at(base, path),
                    format!(
                        "ragged array: expected {d} elements at depth {depth} (like the first \
                         sibling) but found {}",
                        items.len()
                    ),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                fill(item, shape, base, path, out)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(_), None) => Err(ComputeError::new(
            at(base, path),
            format!("expected a number here (depth {depth}) but found an array"),
        )),
        (Value::Number(_), Some(_)) => Err(ComputeError::new(
            at(base, path),
            format!("expected an array here (depth {depth}) but found a number"),
        )),
        (other, _) => Err(ComputeError::new(at(base, path), not_a_number(other))),
    }
}

fn not_a_number(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "expected a finite number but found the string {s:?} (NaN and infinities are not accepted)"
        ),
        Value::Null => "expected a finite number but found null".into(),
        Value::Bool(_) => "expected a finite number but found a boolean".into(),
        Value::Object(_) => "expected a number or an array but found an object".into(),
        _ => "expected a finite number".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lim() -> Limits {
        Limits::default()
    }

    #[test]
    fn parses_nested_arrays_row_major() {
        let t = Tensor::from_json(&json!([[1, 2, 3], [4, 5, 6.5]]), "/x", &lim()).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert_eq!(t.to_json(), json!([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]));
        let s = Tensor::from_json(&json!(2.5), "/x", &lim()).unwrap();
        assert_eq!(s.rank(), 0);
        assert_eq!(s.to_json(), json!(2.5));
    }

    #[test]
    fn ragged_arrays_are_named_by_pointer() {
        let e = Tensor::from_json(&json!([[1, 2], [3]]), "/input", &lim()).unwrap_err();
        assert_eq!(e.pointer, "/input/1");
        let e = Tensor::from_json(&json!([[1, 2], [3, "NaN"]]), "/w", &lim()).unwrap_err();
        assert_eq!(e.pointer, "/w/1/1");
        assert!(e.message.contains("NaN"));
        let e = Tensor::from_json(&json!([[1, 2], [3, [4]]]), "/w", &lim()).unwrap_err();
        assert_eq!(e.pointer, "/w/1/1");
        let e = Tensor::from_json(&json!([[]]), "/w", &lim()).unwrap_err();
        assert_eq!(e.pointer, "/w/0");
    }

    #[test]
    fn rank_and_size_limits() {
        let deep = json!([[[[[[1]]]]]]);
        let e = Tensor::from_json(&deep, "/x", &lim()).unwrap_err();
        assert!(e.message.contains("more than 5"));
        let small = Limits {
            max_tensor_elements: 3,
            ..Limits::default()
        };
        let e = Tensor::from_json(&json!([1, 2, 3, 4]), "/x", &small).unwrap_err();
        assert!(e.message.contains("limit of 3"));
    }

    #[test]
    fn permute_transposes() {
        let t = Tensor::new(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let p = t.permute(&[1, 0]);
        assert_eq!(p.shape(), &[3, 2]);
        assert_eq!(p.data(), &[1., 4., 2., 5., 3., 6.]);
        assert_eq!(unravel(4, &[2, 3]), vec![1, 1]);
        assert_eq!(strides_of(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
