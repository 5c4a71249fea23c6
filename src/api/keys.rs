//! API key management (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Admins, Authed};
use super::error::ApiError;
use super::extract::ApiJson;
use super::responses::{ReadErrors, WriteErrors};
use crate::store::keys::{KeyInfo, NewKey, Role};
use axum::Json;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Role of the new key.
    pub role: Role,
    /// Free label, e.g. the LMS integration it is for (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub label: String,
}

/// Creates an API key; the response is the only time the key is shown.
#[utoipa::path(post, path = "/v1/keys", operation_id = "createKey", tag = "keys",
    request_body = CreateKey,
    responses((status = 201, description = "Key created", body = NewKey), WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn create_key(
    State(state): State<AppState>,
    _caller: Authed<Admins>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    if body.label.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "/label",
            "label longer than 200 characters",
        ));
    }
    let key = state.store.create_key(body.role, &body.label).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Lists API keys (hashes and keys are never shown).
#[utoipa::path(get, path = "/v1/keys", operation_id = "listKeys", tag = "keys",
    responses((status = 200, description = "All keys", body = Vec<KeyInfo>), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn list_keys(
    State(state): State<AppState>,
    _caller: Authed<Admins>,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    Ok(Json(state.store.list_keys().await?))
}

/// Revokes an API key.
#[utoipa::path(delete, path = "/v1/keys/{id}", operation_id = "revokeKey", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Key revoked"), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _caller))]
async fn revoke_key(
    State(state): State<AppState>,
    _caller: Authed<Admins>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.revoke_key(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no active API key with id `{id}`"
        )))
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}
