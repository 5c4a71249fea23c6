//! Request extractors whose rejections are our [`ApiError`]: malformed JSON is
//! a 400, a wrong type or missing field a 422 naming the field's JSON pointer,
//! an oversized body a 413, a body not declared as JSON a 415.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// Maximum nesting of JSON bodies, set per app by a request extension.
#[derive(Debug, Clone, Copy)]
pub struct JsonDepthLimit(pub usize);

/// `axum::Json` with our rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "the request body must be JSON: send `Content-Type: application/json`".into(),
            ));
        }
        let max_depth = req.extensions().get::<JsonDepthLimit>().map_or(64, |l| l.0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes, max_depth).map(ApiJson)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    let text = rejection.body_text();
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!(
            "the request body exceeds the configured limit ({text})"
        ))
    } else {
        ApiError::BadRequest {
            detail: format!("cannot read the request body: {text}"),
            errors: vec![],
        }
    }
}

/// Parses a JSON body into `T`, with errors naming the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if let Some(depth) = exceeds_depth(bytes, max_depth) {
        return Err(ApiError::BadRequest {
            detail: format!(
                "the JSON body is nested deeper than the limit of {max_depth} levels (reached {depth})"
            ),
            errors: vec![FieldError {
                pointer: String::new(),
                detail: format!("nesting deeper than {max_depth}"),
            }],
        });
    }
    // Two passes: syntax first (400), then types against the parsed value
    // (422), because serde_json reports some type errors (an enum given a
    // number) as syntax errors when deserializing straight from bytes.
    let raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|inner| ApiError::BadRequest {
            detail: format!("malformed JSON: {inner}"),
            errors: vec![FieldError {
                pointer: String::new(),
                detail: inner.to_string(),
            }],
        })?;
    // Every request body of this API is a JSON object; serde would also
    // read a struct from an array of its fields, which the schema forbids.
    if !raw.is_object() {
        return Err(ApiError::Unprocessable {
            detail: "the request body must be a JSON object".into(),
            errors: vec![FieldError {
                pointer: String::new(),
                detail: "expected a JSON object".into(),
            }],
        });
    }
    from_value(raw, "")
}

/// Deserializes an already parsed JSON value into `T`; errors are 422s whose
/// pointer (prefixed with `prefix`) names the offending field.
pub fn from_value<T: DeserializeOwned>(
    raw: serde_json::Value,
    prefix: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(raw).map_err(|err| {
        let mut pointer = format!("{prefix}{}", path_to_pointer(err.path()));
        let message = err.into_inner().to_string();
        if let Some(field) = named_field(&message) {
            pointer = format!("{pointer}/{}", escape_pointer(field));
        }
        ApiError::Unprocessable {
            detail: format!("invalid request body at `{pointer}`: {message}"),
            errors: vec![FieldError {
                pointer,
                detail: message,
            }],
        }
    })
}

/// The depth reached if it exceeds `max`, scanning the raw bytes once
/// (strings skipped), so a hostile body is refused before it is parsed.
fn exceeds_depth(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// serde's "missing field `x`" names a field below the reported path (an
/// unknown field is already the last segment of the path).
fn named_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", escape_pointer(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialized
    struct Body {
        layers: Vec<Layer>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Layer {
        kernel_size: u32,
    }

    fn pointer_of(e: ApiError) -> (u16, String) {
        let p = e.to_problem();
        (
            p.status,
            p.errors
                .first()
                .map(|f| f.pointer.clone())
                .unwrap_or_default(),
        )
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Body>(br#"{"layers":[{"kernel_size":3},{"kernel_size":"x"}]}"#, 64)
            .unwrap_err();
        assert_eq!(pointer_of(e), (422, "/layers/1/kernel_size".into()));
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let e = parse_json::<Body>(br#"{"layers":[{}]}"#, 64).unwrap_err();
        assert_eq!(pointer_of(e), (422, "/layers/0/kernel_size".into()));
        let e = parse_json::<Body>(br#"{"layers":[{"kernal_size":3}]}"#, 64).unwrap_err();
        assert_eq!(pointer_of(e), (422, "/layers/0/kernal_size".into()));
    }

    #[test]
    fn enum_given_a_number_is_a_type_error() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct WithRole {
            role: crate::store::keys::Role,
        }
        let e = parse_json::<WithRole>(br#"{"role": 3}"#, 64).unwrap_err();
        assert_eq!(pointer_of(e), (422, "/role".into()));
    }

    #[test]
    fn malformed_json_is_400() {
        let e = parse_json::<Body>(br#"{"layers":[{"kernel_size":3}"#, 64).unwrap_err();
        assert_eq!(e.to_problem().status, 400);
        let e = parse_json::<Body>(br#"{"layers":[]} trailing"#, 64).unwrap_err();
        assert_eq!(e.to_problem().status, 400);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_json::<serde_json::Value>(deep.as_bytes(), 64).unwrap_err();
        assert_eq!(e.to_problem().status, 400);
        // brackets inside strings do not count
        let ok = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(parse_json::<serde_json::Value>(ok.as_bytes(), 64).is_ok());
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
