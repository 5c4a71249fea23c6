//! Caps on user-sized input to the computation core. Every cap is configurable
//! (see `Config` in the API layer and the README's "Limits" table); exceeding
//! one is a [`ComputeError`](super::error::ComputeError) that names the cap.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Elements in any one tensor (input, weight, activation).
    pub max_tensor_elements: usize,
    /// Layers in one model description.
    pub max_layers: usize,
    /// Timesteps of a recurrent sequence.
    pub max_timesteps: usize,
    /// Optimizer steps in one request.
    pub max_optimizer_steps: usize,
    /// Characters in one expression.
    pub max_expression_len: usize,
    /// Nesting depth of one expression (parentheses, function calls, unary ops).
    pub max_expression_depth: usize,
    /// Perceptron epochs.
    pub max_epochs: usize,
    /// Total multiply-adds one forward/backward request may cost.
    pub max_mult_adds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tensor_elements: 1_000_000,
            max_layers: 1_000,
            max_timesteps: 1_000,
            max_optimizer_steps: 10_000,
            max_expression_len: 4_096,
            max_expression_depth: 64,
            max_epochs: 10_000,
            max_mult_adds: 2_000_000_000,
        }
    }
}
