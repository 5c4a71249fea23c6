//! dlgrade: computes the answers to deep-learning exam problems and grades
//! students' answers against instructors' rubrics with partial credit.
//!
//! Layers, one direction of dependence: `compute` (pure math) <- `grading`
//! (pure rubric engine) <- `store` (sqlx persistence) <- `api` (axum routes).
//! `startup` wires them into a server; `cli` is the command line.

pub mod api;
pub mod bank;
pub mod cli;
pub mod compute;
pub mod config;
pub mod grading;
pub mod startup;
pub mod store;
pub mod telemetry;
