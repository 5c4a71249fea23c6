//! Stateless computation endpoints: each takes a problem, returns the answer
//! with its worked steps. Open unless `--require-key-for-compute` is set.
//! The math runs on the blocking pool, so the request time limit holds even
//! for CPU-heavy problems.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use super::responses::ComputeErrors;
use crate::compute::arch::{
    self, ArchitectureReport, ArchitectureRequest, SolveReport, SolveRequest,
};
use crate::compute::error::ComputeResult;
use crate::compute::expr::{self, CalculusReport, CalculusRequest};
use crate::compute::inverse::{self, FilterSolveReport, FilterSolveRequest};
use crate::compute::limits::Limits;
use crate::compute::losses::{self, LossReport, LossRequest};
use crate::compute::nn::{self, ForwardReport, ForwardRequest, GradientsReport, GradientsRequest};
use crate::compute::objective::{self, TrainingRequest};
use crate::compute::optim::{OptimizerReport, OptimizerRequest};
use crate::compute::perceptron::{self, PerceptronReport, PerceptronRequest};
use crate::compute::recurrent::{self, RecurrentReport, RecurrentRequest};

/// Runs `f` on the blocking pool with the server's limits.
async fn run<Req, Rep>(
    state: &AppState,
    caller: &Caller,
    request: Req,
    f: fn(&Req, &Limits) -> ComputeResult<Rep>,
) -> Result<Json<Rep>, ApiError>
where
    Req: Send + 'static,
    Rep: Send + 'static,
{
    caller.for_compute(state)?;
    let limits: Arc<Limits> = state.limits.clone();
    let report = tokio::task::spawn_blocking(move || f(&request, &limits))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("computation task failed: {e}")))??;
    Ok(Json(report))
}

/// Optimizer steps (SGD, momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW)
/// on given gradients or on the exact gradient of a loss expression, with
/// the parameters and optimizer state after each step.
#[utoipa::path(post, path = "/v1/optimizers/steps", operation_id = "optimizerSteps", tag = "compute",
    request_body = OptimizerRequest,
    responses((status = 200, description = "Parameters and state after each step", body = OptimizerReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn optimizer_steps(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OptimizerRequest>,
) -> Result<Json<OptimizerReport>, ApiError> {
    run(&state, &caller, body, objective::optimizer_steps).await
}

/// Trains a network: optimizer steps whose gradients are recomputed by
/// backpropagation at every step (parameters, loss and optimizer state after
/// each step).
#[utoipa::path(post, path = "/v1/optimizers/train", operation_id = "optimizerTrain", tag = "compute",
    request_body = TrainingRequest,
    responses((status = 200, description = "Parameters, loss and state after each step", body = OptimizerReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn optimizer_train(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TrainingRequest>,
) -> Result<Json<OptimizerReport>, ApiError> {
    run(&state, &caller, body, objective::train).await
}

/// A recurrent cell (RNN, LSTM, GRU) unrolled over a sequence, with every
/// gate and state per timestep.
#[utoipa::path(post, path = "/v1/recurrent", operation_id = "recurrent", tag = "compute",
    request_body = RecurrentRequest,
    responses((status = 200, description = "Gates and states per timestep", body = RecurrentReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn recurrent_cell(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RecurrentRequest>,
) -> Result<Json<RecurrentReport>, ApiError> {
    run(&state, &caller, body, recurrent::recurrent).await
}

/// A perceptron training run with the trace of every update.
#[utoipa::path(post, path = "/v1/perceptron", operation_id = "perceptron", tag = "compute",
    request_body = PerceptronRequest,
    responses((status = 200, description = "Trace of the run and its outcome", body = PerceptronReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn perceptron_run(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PerceptronRequest>,
) -> Result<Json<PerceptronReport>, ApiError> {
    run(&state, &caller, body, perceptron::perceptron).await
}

/// Output shapes, parameter counts (with formulas), weight shapes in each
/// convention, receptive fields, mult-adds and memory of every layer of a
/// model description (Keras or PyTorch spelling).
#[utoipa::path(post, path = "/v1/architecture", operation_id = "architecture", tag = "compute",
    request_body = ArchitectureRequest,
    responses((status = 200, description = "Per-layer shapes, parameters and receptive fields", body = ArchitectureReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn architecture(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<ArchitectureReport>, ApiError> {
    run(&state, &caller, body, arch::analyze).await
}

/// Inverse architecture questions: the integer hyperparameter (hidden size,
/// filters, kernel, padding, stride) that reaches a target parameter count
/// or output shape; every solution with its check, or why none exists.
#[utoipa::path(post, path = "/v1/architecture/solve", operation_id = "architectureSolve", tag = "compute",
    request_body = SolveRequest,
    responses((status = 200, description = "All integer solutions with their checks", body = SolveReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn architecture_solve(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<SolveReport>, ApiError> {
    run(&state, &caller, body, arch::solve).await
}

/// Forward pass through dense/conv/pool/activation/batch-norm layers,
/// returning every layer's output with worked steps.
#[utoipa::path(post, path = "/v1/forward", operation_id = "forward", tag = "compute",
    request_body = ForwardRequest,
    responses((status = 200, description = "Every layer's output", body = ForwardReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn forward(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ForwardRequest>,
) -> Result<Json<ForwardReport>, ApiError> {
    run(&state, &caller, body, nn::forward).await
}

/// Backpropagation: the loss and its gradient with respect to every weight,
/// bias and the input, with the upstream gradient at each layer.
#[utoipa::path(post, path = "/v1/gradients", operation_id = "gradients", tag = "compute",
    request_body = GradientsRequest,
    responses((status = 200, description = "Loss and gradients", body = GradientsReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn gradients(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<GradientsRequest>,
) -> Result<Json<GradientsReport>, ApiError> {
    run(&state, &caller, body, nn::gradients).await
}

/// A loss (MSE, SSE, MAE, binary/categorical/sparse cross-entropy, hinge)
/// and its gradient with respect to the predictions.
#[utoipa::path(post, path = "/v1/losses", operation_id = "loss", tag = "compute",
    request_body = LossRequest,
    responses((status = 200, description = "Loss value and gradient", body = LossReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn loss(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<LossRequest>,
) -> Result<Json<LossReport>, ApiError> {
    run(&state, &caller, body, losses::loss).await
}

/// Unknown filter entries from a convolution's input and some of its
/// outputs: the unique solution, the family of solutions, or why none exists.
#[utoipa::path(post, path = "/v1/convolution/solve-filter", operation_id = "solveFilter", tag = "compute",
    request_body = FilterSolveRequest,
    responses((status = 200, description = "The solution set", body = FilterSolveReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn solve_filter(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<FilterSolveRequest>,
) -> Result<Json<FilterSolveReport>, ApiError> {
    run(&state, &caller, body, inverse::solve_filter).await
}

/// Value, gradient, Hessian, symbolic derivatives, classification of points
/// and the computation graph (forward and adjoint values) of an expression.
#[utoipa::path(post, path = "/v1/calculus", operation_id = "calculus", tag = "compute",
    request_body = CalculusRequest,
    responses((status = 200, description = "Derivatives and point analysis", body = CalculusReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn calculus(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CalculusRequest>,
) -> Result<Json<CalculusReport>, ApiError> {
    run(&state, &caller, body, expr::calculus).await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(architecture))
        .routes(routes!(architecture_solve))
        .routes(routes!(forward))
        .routes(routes!(gradients))
        .routes(routes!(loss))
        .routes(routes!(solve_filter))
        .routes(routes!(calculus))
        .routes(routes!(optimizer_steps))
        .routes(routes!(optimizer_train))
        .routes(routes!(recurrent_cell))
        .routes(routes!(perceptron_run))
}
