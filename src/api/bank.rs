//! The question bank as loaded into this database.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authed, Readers};
use super::error::ApiError;
use super::responses::ReadErrors;

/// A bank question and the stored rubric it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankEntry {
    /// The bank file's name without `.json`, e.g. `tum-cnn-p4b-conv-output`.
    pub slug: String,
    /// The stored rubric: grade against it with `rubric_id`.
    pub rubric_id: String,
    pub title: String,
    pub latest_version: i64,
    pub loaded_at: String,
    /// Parameters of the question template (empty for a fixed question):
    /// draw variants with `POST /v1/rubrics/{rubric_id}/variants`.
    pub parameters: Vec<String>,
}

/// The question bank: every shipped question with its rubric id.
#[utoipa::path(get, path = "/v1/bank", operation_id = "listBank", tag = "rubrics",
    responses((status = 200, description = "The loaded bank questions", body = Vec<BankEntry>), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn list_bank(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
) -> Result<Json<Vec<BankEntry>>, ApiError> {
    let entries = state.store.bank_entries().await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| BankEntry {
                parameters: crate::bank::parameters(&e.slug),
                slug: e.slug,
                rubric_id: e.rubric_id,
                title: e.title,
                latest_version: e.latest_version,
                loaded_at: e.loaded_at,
            })
            .collect(),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_bank))
}
