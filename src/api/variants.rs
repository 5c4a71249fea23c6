//! Variants of template rubrics: `POST /v1/rubrics/{id}/variants` draws the
//! variant of a seed (parameters, rendered prompt, computed keys), and
//! grading with a `variant_seed` uses that variant's keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authed, Readers};
use super::error::ApiError;
use super::extract::ApiJson;
use super::responses::BodyReadErrors;
use super::rubrics::{load_compiled, variant_error};
use crate::grading::engines::Engines;
use crate::grading::template::MAX_SEED;
use crate::grading::{ResolvedRubric, Rubric, SelfTestReport, Variant};

/// Which variant to draw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    /// The seed, 0 to 2^53 - 1 (e.g. a hash of the learner id and the
    /// assignment). Same rubric version + same seed = same variant, always.
    #[schema(minimum = 0, maximum = 9007199254740991i64)]
    pub seed: i64,
    /// Rubric version (default: the latest).
    #[schema(minimum = 1)]
    pub version: Option<i64>,
}

/// One concrete question drawn from a template rubric.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    pub rubric_id: String,
    pub version: i64,
    pub seed: i64,
    /// The drawn parameters (whole numbers as JSON integers).
    #[schema(value_type = BTreeMap<String, f64>)]
    pub parameters: BTreeMap<String, Value>,
    /// The template's derived values for these parameters.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub derived: BTreeMap<String, Value>,
    /// The question text with the parameters filled in.
    pub prompt: String,
    /// The variant as a concrete rubric: prompts filled in, every computed key
    /// replaced by its value (what submissions with this seed are graded against).
    pub rubric: Rubric,
    /// An answer per part that earns full marks (parts whose key can be
    /// written as an answer), for answer sheets and checks. Keep it from students.
    pub model_answers: BTreeMap<String, String>,
    /// Draws made for this seed before one passed the constraints and the
    /// self-tests (1 = the first draw).
    pub draws: u32,
    /// The variant's self-tests: the template's tests and the generated ones
    /// (every one passed; a failing draw is never handed out).
    pub self_tests: SelfTestReport,
}

/// `None`, or a seed checked to lie in 0..=2^53-1.
pub(super) fn check_seed(seed: Option<i64>, pointer: &str) -> Result<Option<u64>, ApiError> {
    match seed {
        None => Ok(None),
        Some(s) if s >= 0 && s as u64 <= MAX_SEED => Ok(Some(s as u64)),
        Some(_) => Err(ApiError::unprocessable(
            pointer,
            format!("a variant seed is an integer from 0 to {MAX_SEED}"),
        )),
    }
}

/// Draws a variant on the blocking pool (its keys are computed).
pub(super) async fn make_variant(
    rubric: Rubric,
    seed: u64,
    state: &AppState,
) -> Result<Variant, ApiError> {
    let limits = state.limits.clone();
    let cap = state.config.max_variant_attempts;
    tokio::task::spawn_blocking(move || {
        let engines = Engines {
            limits: (*limits).clone(),
        };
        rubric
            .variant_capped(seed, &engines, cap)
            .map_err(|e| variant_error(e, "/variant_seed", &format!("seed {seed}")))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("variant generation failed: {e}")))?
}

/// The variant of `seed` of a stored rubric version (latest when None),
/// cached.
pub(super) async fn load_variant(
    state: &AppState,
    id: &str,
    version: Option<i64>,
    seed: u64,
) -> Result<(i64, Arc<Variant>), ApiError> {
    let version = match version {
        Some(v) => v,
        None => load_compiled(state, id, None).await?.0,
    };
    if let Some(hit) = state.rubrics.variant(id, version, seed as i64) {
        return Ok((version, hit));
    }
    let record = state
        .store
        .get_rubric(id, Some(version))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no version {version} of rubric `{id}`")))?;
    let rubric: Rubric = serde_json::from_value(record.body.clone()).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored rubric {id} v{version} unreadable: {e}"
        ))
    })?;
    if rubric.template.is_none() {
        return Err(ApiError::unprocessable(
            "/variant_seed",
            format!(
                "version {version} of rubric `{id}` is not a template: it has no variants (omit the seed)"
            ),
        ));
    }
    let variant = Arc::new(make_variant(rubric, seed, state).await?);
    state
        .rubrics
        .put_variant(id, version, seed as i64, variant.clone());
    Ok((version, variant))
}

/// The compiled rubric to grade a submission against: the stored version,
/// or its variant when a seed is given.
pub(super) async fn load_for_grading(
    state: &AppState,
    id: &str,
    version: Option<i64>,
    seed: Option<u64>,
) -> Result<(i64, Arc<ResolvedRubric>), ApiError> {
    match seed {
        None => load_compiled(state, id, version).await,
        Some(seed) => {
            let (version, variant) = load_variant(state, id, version, seed).await?;
            Ok((version, variant.resolved.clone()))
        }
    }
}

/// Draws the variant of a seed from a template rubric: its parameters, the
/// prompt with them filled in, and the answer keys computed by the engines.
/// Variants whose constraints or self-tests fail are skipped, so every
/// variant handed out grades its model answer and each named mistake right.
#[utoipa::path(post, path = "/v1/rubrics/{id}/variants", operation_id = "createVariant",
    tag = "rubrics",
    params(("id" = String, Path, description = "Rubric id")),
    request_body = VariantRequest,
    responses((status = 200, description = "The variant of the seed", body = VariantView), BodyReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth, request))]
async fn create_variant(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<VariantRequest>,
) -> Result<Json<VariantView>, ApiError> {
    let seed = check_seed(Some(request.seed), "/seed")?.unwrap_or_default();
    if request.version.is_some_and(|v| v < 1) {
        return Err(ApiError::unprocessable(
            "/version",
            "version must be at least 1",
        ));
    }
    let (version, variant) = load_variant(&state, &id, request.version, seed)
        .await
        .map_err(|e| e.repoint("/variant_seed", "/seed"))?;
    let rubric = variant.resolved.rubric().clone();
    Ok(Json(VariantView {
        rubric_id: id,
        version,
        seed: request.seed,
        parameters: numbers(&variant.parameters),
        derived: numbers(&variant.derived),
        prompt: rubric.prompt.clone(),
        model_answers: variant.resolved.model_answers(),
        rubric,
        draws: variant.draws,
        self_tests: variant.self_tests.clone(),
    }))
}

/// Values as JSON numbers, whole numbers as integers (`26`, not `26.0`).
fn numbers(values: &BTreeMap<String, f64>) -> BTreeMap<String, Value> {
    values
        .iter()
        .map(|(k, x)| (k.clone(), crate::grading::template::number_json(*x)))
        .collect()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_variant))
}
