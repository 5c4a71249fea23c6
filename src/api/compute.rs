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
use crate::compute::error::ComputeResult;
use crate::compute::limits::Limits;
use crate::compute::optim::{self, OptimizerReport, OptimizerRequest};
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
/// with the parameters and optimizer state after each step.
#[utoipa::path(post, path = "/v1/optimizers/steps", operation_id = "optimizerSteps", tag = "compute",
    request_body = OptimizerRequest,
    responses((status = 200, description = "Parameters and state after each step", body = OptimizerReport), ComputeErrors))]
#[tracing::instrument(skip_all)]
async fn optimizer_steps(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OptimizerRequest>,
) -> Result<Json<OptimizerReport>, ApiError> {
    run(&state, &caller, body, optim::optimizer_steps).await
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(optimizer_steps))
        .routes(routes!(recurrent_cell))
        .routes(routes!(perceptron_run))
}
