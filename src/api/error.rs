//! The one error type of the HTTP layer. Every 4xx/5xx leaves the server as
//! `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::compute::error::ComputeError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending input field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// RFC 6901 JSON pointer into the request body ("" for the body itself).
    pub pointer: String,
    /// Why the field is not acceptable.
    pub detail: String,
}

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// URI reference naming the problem type (relative to the API).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// Offending fields, for validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with; each variant names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or not of the expected type.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 401: no key, or an unknown or revoked key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid key whose role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the stored state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body exceeds the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed input that cannot be processed (validation).
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 503: the database is unreachable, or the work was cancelled.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an infrastructure failure; the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The same error with the field pointer `from` renamed to `to` (when a
    /// shared check names a field that has another path in this request).
    pub fn repoint(self, from: &str, to: &str) -> Self {
        match self {
            Self::Unprocessable { detail, mut errors } => {
                for e in &mut errors {
                    if e.pointer == from {
                        e.pointer = to.to_owned();
                    }
                }
                Self::Unprocessable { detail, errors }
            }
            other => other,
        }
    }

    pub fn unprocessable(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::Unprocessable {
            errors: vec![FieldError {
                pointer: pointer.into(),
                detail: detail.clone(),
            }],
            detail,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            ApiError::BadRequest { detail, errors }
            | ApiError::Unprocessable { detail, errors } => (detail.clone(), errors.clone()),
            // Never show internal causes to clients: they are logged instead.
            ApiError::Internal(_) => (
                "an internal error occurred; it has been logged".into(),
                vec![],
            ),
            other => (other.to_string(), vec![]),
        };
        Problem::new(status, detail, errors)
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: String, errors: Vec<FieldError>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let slug = title.to_lowercase().replace(' ', "-");
        Problem {
            problem_type: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Internal errors travel to the logging middleware as a response extension,
/// so that they are logged once, with the request's span, and not here.
#[derive(Debug, Clone)]
pub struct LoggedCause(pub std::sync::Arc<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.to_problem().into_response();
        if let ApiError::Internal(cause) = &self {
            response
                .extensions_mut()
                .insert(LoggedCause(std::sync::Arc::new(format!("{cause:#}"))));
        }
        if let ApiError::Unauthorized(_) = &self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ComputeError> for ApiError {
    fn from(e: ComputeError) -> Self {
        let detail = if e.pointer.is_empty() {
            e.message.clone()
        } else {
            format!("invalid input at `{}`: {}", e.pointer, e.message)
        };
        ApiError::Unprocessable {
            detail,
            errors: vec![FieldError {
                pointer: e.pointer,
                detail: e.message,
            }],
        }
    }
}
