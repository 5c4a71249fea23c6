//! The pure math of dlgrade: model descriptions, shapes, parameters, receptive
//! fields, tensors, forward passes, autodiff, losses, optimizers, expressions.
//!
//! No HTTP, no database, no async in here. Every result carries its worked
//! steps ([`steps::Step`]). Errors are [`error::ComputeError`]s that name the
//! offending input field as a JSON pointer so the API can answer with a 422.

pub mod arch;
pub mod error;
pub mod expr;
pub mod inverse;
pub mod limits;
pub mod losses;
pub mod model;
pub mod nn;
pub mod objective;
pub mod optim;
pub mod perceptron;
pub mod recurrent;
pub mod steps;
pub mod tensor;
