//! The HTTP layer: axum routes, request/response types, the error type, auth
//! and the OpenAPI document (derived from the code with utoipa).

pub mod auth;
pub mod bank;
pub mod compute;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod keys;
pub mod responses;
pub mod rubrics;
pub mod submissions;
pub mod variants;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::compute::limits::Limits;
use crate::config::Config;
use crate::store::Store;
use error::{ApiError, LoggedCause, PROBLEM_JSON, Problem};
use extract::JsonDepthLimit;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub limits: Arc<Limits>,
    /// Compiled rubric versions.
    pub rubrics: Arc<rubrics::RubricCache>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dlgrade",
        description = "Computes the answers to deep-learning exam problems with worked steps, \
and grades students' answers against instructors' rubrics with partial credit.\n\n\
Errors are RFC 9457 `application/problem+json`; validation errors list each offending \
field as a JSON pointer. Endpoints that read or write stored rubrics, submissions or \
grades need `Authorization: Bearer <key>`.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, error::FieldError)),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "keys", description = "API keys and roles (admin only)"),
        (name = "compute", description = "Stateless computations with worked steps"),
        (name = "rubrics", description = "Versioned rubrics with computed answer keys and key audit"),
        (name = "grading", description = "Grading previews, submissions, gradebook, statistics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(keys::router())
        .merge(compute::router())
        .merge(rubrics::router())
        .merge(variants::router())
        .merge(bank::router())
        .merge(submissions::router())
}

/// The OpenAPI document, as the code defines it.
pub fn openapi() -> OpenApiDoc {
    api_router().into_openapi()
}

/// The OpenAPI document as served and committed: utoipa's document with the
/// variants of internally tagged enums given names (see
/// [`name_tagged_variants`]).
pub fn openapi_value() -> serde_json::Value {
    spec_value(openapi())
}

fn spec_value(doc: OpenApiDoc) -> serde_json::Value {
    let mut value =
        serde_json::to_value(doc).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
    name_tagged_variants(&mut value);
    any_of_for_catch_alls(&mut value);
    value
}

/// utoipa writes every untagged enum as `oneOf`, which requires exactly one
/// member to match; an enum with a catch-all variant (`ExpectedValue`'s
/// literal of any JSON type) then matches twice and every value fails. Such a
/// `oneOf` becomes `anyOf`, which is what serde's untagged enums mean: the
/// first variant that fits wins.
fn any_of_for_catch_alls(node: &mut serde_json::Value) {
    use serde_json::Value;
    const CONSTRAINTS: [&str; 8] = [
        "type",
        "$ref",
        "enum",
        "const",
        "oneOf",
        "anyOf",
        "allOf",
        "properties",
    ];
    match node {
        Value::Object(map) => {
            let catch_all = map
                .get("oneOf")
                .and_then(Value::as_array)
                .is_some_and(|members| {
                    members.iter().any(|m| {
                        m.as_object()
                            .is_some_and(|m| !CONSTRAINTS.iter().any(|k| m.contains_key(*k)))
                    })
                });
            if catch_all && let Some(members) = map.remove("oneOf") {
                map.insert("anyOf".into(), members);
            }
            for child in map.values_mut() {
                any_of_for_catch_alls(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(any_of_for_catch_alls),
        _ => {}
    }
}

/// The OpenAPI document as pretty JSON with a trailing newline (the form
/// committed at `openapi/openapi.json`).
pub fn openapi_json() -> String {
    let mut text = serde_json::to_string_pretty(&openapi_value())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// Client generators (openapi-python-client among them) cannot resolve a
/// `oneOf` member that is an inline `allOf` of a `$ref` and a tag object,
/// which is what utoipa emits for the newtype variants of
/// `#[serde(tag = "type")]` enums (`AnswerSpec`, `LayerSpec`), and that
/// `allOf` is also wrong when the referenced struct forbids unknown fields
/// (its `additionalProperties: false` refuses the `type` tag). This replaces
/// each such member by a named component `{Enum}{Variant}` (e.g.
/// `AnswerSpecNumber`): the variant's struct schema with the tag added to its
/// properties and required fields. The JSON accepted and produced does not
/// change.
fn name_tagged_variants(spec: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let snapshot = schemas.clone();
    let mut hoisted = Vec::new();
    for (name, schema) in schemas.iter_mut() {
        let Some(members) = schema.get_mut("oneOf").and_then(Value::as_array_mut) else {
            continue;
        };
        for member in members {
            let Some(parts) = member.get("allOf").and_then(Value::as_array) else {
                continue;
            };
            let Some((tag_part, tag)) = parts.iter().find_map(|p| {
                let tag = p.pointer("/properties/type/enum/0")?.as_str()?;
                Some((p.clone(), tag.to_owned()))
            }) else {
                continue;
            };
            let referenced = parts
                .iter()
                .find_map(|p| {
                    p.get("$ref")?
                        .as_str()?
                        .strip_prefix("#/components/schemas/")
                })
                .and_then(|r| snapshot.get(r))
                .filter(|r| r.get("properties").is_some_and(Value::is_object));
            let merged = match referenced {
                Some(base) => {
                    let mut merged = base.clone();
                    if let (Some(props), Some(tag_props)) = (
                        merged.get_mut("properties").and_then(Value::as_object_mut),
                        tag_part.get("properties").and_then(Value::as_object),
                    ) {
                        let mut with_tag = tag_props.clone();
                        with_tag.extend(std::mem::take(props));
                        *props = with_tag;
                    }
                    let mut required = vec![Value::String("type".into())];
                    if let Some(old) = merged.get("required").and_then(Value::as_array) {
                        required.extend(old.iter().cloned());
                    }
                    merged["required"] = Value::Array(required);
                    merged
                }
                None => member.clone(),
            };
            let variant: String = tag
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                        .unwrap_or_default()
                })
                .collect();
            let component = format!("{name}{variant}");
            *member = serde_json::json!({"$ref": format!("#/components/schemas/{component}")});
            hoisted.push((component, merged));
        }
    }
    schemas.extend(hoisted);
}

/// Builds the whole application: routes, docs, error mapping, limits,
/// timeouts, request ids and request logging.
pub fn app(state: AppState) -> Router {
    let (router, spec) = api_router().split_for_parts();
    let spec = Arc::new(spec_value(spec));
    let depth = JsonDepthLimit(state.config.max_json_depth);
    let timeout = state.config.request_timeout();
    let body_limit = state.config.max_body_bytes;
    let request_id = HeaderName::from_static("x-request-id");

    router
        .merge(docs::router())
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(depth))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(middleware::from_fn(problem_for_every_error))
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(middleware::from_fn(log_request))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

fn panic_to_problem(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Turns every error response that is not already problem+json (405 from the
/// router, 503 from the timeout, ...) into one, and logs internal causes.
async fn problem_for_every_error(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
        tracing::error!(cause = %cause, "internal error");
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_string(),
        StatusCode::SERVICE_UNAVAILABLE => {
            "the request did not finish within the configured time limit".to_string()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body exceeds the configured limit".to_string()
        }
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut problem = Problem::new(status, detail, vec![]).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

/// One log line per request: id, method, path, status, latency.
async fn log_request(request: Request<Body>, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!("request", %request_id, %method, %path);
    let response = next.run(request).instrument(span.clone()).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = format!("{latency_ms:.3}"),
            "request finished"
        )
    });
    response
}
