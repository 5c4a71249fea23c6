//! The one error type of the computation core.

/// A computation request that cannot be answered, with the JSON pointer of the
/// input field at fault (relative to the request body, e.g. `/layers/2/kernel_size`)
/// and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ComputeError {
    /// RFC 6901 JSON pointer of the offending field ("" for the whole request).
    pub pointer: String,
    /// Why the field is not acceptable.
    pub message: String,
}

impl ComputeError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// Prefixes the pointer, e.g. `err.under("/layers/3")` turns `/kernel_size`
    /// into `/layers/3/kernel_size`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

pub type ComputeResult<T> = Result<T, ComputeError>;
