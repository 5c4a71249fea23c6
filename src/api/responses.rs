//! Documented error responses, shared by the operations of the spec so that
//! generated clients know every status an operation can answer.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};

use super::error::PROBLEM_JSON;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn set(codes: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|code| {
            let description = match code {
                400 => "Malformed JSON or nesting too deep",
                401 => "Missing, unknown or revoked API key",
                403 => "The key's role may not do this",
                404 => "No such resource",
                409 => "Conflicts with stored state",
                413 => "Request body over the configured limit",
                415 => "Body not sent as application/json",
                422 => {
                    "Invalid input (body or query parameters): the `errors` list names each field (JSON pointer) and reason"
                }
                503 => "Time limit exceeded or database unavailable",
                _ => "Error",
            };
            (code.to_string(), problem(description))
        })
        .collect()
}

/// Errors of stateless computation endpoints.
pub struct ComputeErrors;
impl IntoResponses for ComputeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[400, 401, 403, 413, 415, 422, 503])
    }
}

/// Errors of authenticated reads.
pub struct ReadErrors;
impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[400, 401, 403, 404, 422, 503])
    }
}

/// Errors of authenticated reads that take a JSON body (e.g. which variant).
pub struct BodyReadErrors;
impl IntoResponses for BodyReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[400, 401, 403, 404, 413, 415, 422, 503])
    }
}

/// Errors of authenticated writes with a JSON body.
pub struct WriteErrors;
impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[400, 401, 403, 404, 409, 413, 415, 422, 503])
    }
}

/// Errors of the readiness probe.
pub struct ProbeErrors;
impl IntoResponses for ProbeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[503])
    }
}
