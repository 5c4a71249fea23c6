//! Rubrics: create (with computed keys resolved, self-tests run and keys
//! audited), new versions, reads, the key audit, and grading previews.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authed, Authors, Caller, Policy, Readers};
use super::error::{ApiError, FieldError};
use super::extract::ApiJson;
use super::responses::{ComputeErrors, ReadErrors, WriteErrors};
use crate::compute::limits::Limits;
use crate::grading::engines::Engines;
use crate::grading::{
    Answers, AuditFinding, GradeOptions, GradeResult, ResolvedRubric, Rubric, SelfTestReport,
    Variant, VariantError, grade,
};
use crate::store::rubrics::{NewRubricVersion, RubricVersionRecord};

/// Compiled rubric versions, shared by all requests. Versions are immutable,
/// so an entry never goes stale. The latest version of each rubric is
/// remembered too: this process is the only writer of its SQLite file, and
/// it updates the entry whenever it stores a version.
#[derive(Default)]
pub struct RubricCache {
    entries: Mutex<HashMap<(String, i64), Arc<ResolvedRubric>>>,
    latest: Mutex<HashMap<String, i64>>,
    /// Variants of template rubrics by (id, version, seed): deterministic,
    /// so never stale either.
    variants: Mutex<HashMap<(String, i64, i64), Arc<Variant>>>,
}

/// Most variants kept in memory.
const VARIANT_CACHE_CAPACITY: usize = 8192;

/// Most compiled versions kept in memory.
const CACHE_CAPACITY: usize = 1024;

impl RubricCache {
    fn get(&self, id: &str, version: i64) -> Option<Arc<ResolvedRubric>> {
        self.entries
            .lock()
            .ok()?
            .get(&(id.to_owned(), version))
            .cloned()
    }

    fn put(&self, id: &str, version: i64, rubric: Arc<ResolvedRubric>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert((id.to_owned(), version), rubric);
        }
    }

    pub(super) fn variant(&self, id: &str, version: i64, seed: i64) -> Option<Arc<Variant>> {
        self.variants
            .lock()
            .ok()?
            .get(&(id.to_owned(), version, seed))
            .cloned()
    }

    pub(super) fn put_variant(&self, id: &str, version: i64, seed: i64, variant: Arc<Variant>) {
        if let Ok(mut variants) = self.variants.lock() {
            if variants.len() >= VARIANT_CACHE_CAPACITY {
                variants.clear();
            }
            variants.insert((id.to_owned(), version, seed), variant);
        }
    }

    fn latest(&self, id: &str) -> Option<i64> {
        self.latest.lock().ok()?.get(id).copied()
    }

    /// Records that `version` is (at least) the latest version of `id`.
    fn set_latest(&self, id: &str, version: i64) {
        if let Ok(mut latest) = self.latest.lock() {
            if latest.len() >= CACHE_CAPACITY && !latest.contains_key(id) {
                latest.clear();
            }
            let slot = latest.entry(id.to_owned()).or_insert(version);
            *slot = (*slot).max(version);
        }
    }
}

/// A stored rubric version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricView {
    pub id: String,
    pub version: i64,
    pub title: String,
    /// The rubric as its author sent it.
    pub rubric: Rubric,
    /// The rubric with every computed key replaced by its value (what grading uses).
    pub resolved: Rubric,
    /// Audit findings when this version was stored: printed keys that their
    /// `check` computation disagrees with.
    pub warnings: Vec<AuditFinding>,
    /// Maximum score.
    pub max_score: f64,
    pub created_at: String,
    /// Id of the API key that stored this version.
    pub created_by: String,
}

/// A stored rubric as it was just created, with the self-test outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricCreated {
    #[serde(flatten)]
    pub rubric: RubricView,
    /// The rubric's self-tests (all passed, or the rubric was rejected).
    pub self_tests: SelfTestReport,
}

/// A rubric as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricSummary {
    pub id: String,
    pub title: String,
    pub latest_version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A page of rubrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricPage {
    pub items: Vec<RubricSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Cursor pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

pub(super) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::unprocessable(
            "/limit",
            "limit must be between 1 and 500",
        )),
    }
}

/// The audit of a stored rubric's printed keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReport {
    pub rubric_id: String,
    pub version: i64,
    /// Printed keys whose computation disagrees, with the correct value.
    pub findings: Vec<AuditFinding>,
}

/// Grade answers without storing anything: against an inline rubric (no key
/// needed unless computations require one) or a stored one (a reader key).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeRequest {
    /// An inline rubric (exactly one of `rubric` and `rubric_id`).
    pub rubric: Option<Rubric>,
    /// A stored rubric.
    pub rubric_id: Option<String>,
    /// Version of the stored rubric (default: latest).
    #[schema(minimum = 1)]
    pub rubric_version: Option<i64>,
    /// Grade against the variant of this seed (template rubrics only).
    #[schema(minimum = 0, maximum = 9007199254740991i64)]
    pub variant_seed: Option<i64>,
    /// The answers, part id -> answer.
    pub answers: Answers,
    /// Grading options (default: follow-through and method credit on).
    #[serde(default)]
    pub options: Option<GradeOptions>,
}

pub(super) fn problems_to_error(
    detail: &str,
    problems: Vec<crate::grading::RubricProblem>,
) -> ApiError {
    ApiError::Unprocessable {
        detail: format!(
            "{detail}: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        errors: problems
            .into_iter()
            .map(|p| FieldError {
                pointer: p.pointer,
                detail: p.message,
            })
            .collect(),
    }
}

/// Resolves computed keys, runs the self-tests (a failing rubric is
/// rejected with the failing cases) and audits printed keys; on the blocking
/// pool because engines may compute.
async fn prepare(
    rubric: Rubric,
    limits: Arc<Limits>,
    max_attempts: u32,
) -> Result<(ResolvedRubric, SelfTestReport, Vec<AuditFinding>), ApiError> {
    tokio::task::spawn_blocking(move || {
        let engines = Engines {
            limits: (*limits).clone(),
        };
        let resolved = rubric
            .resolve_keys(&engines)
            .map_err(|p| problems_to_error("the rubric is not valid", p))?;
        let tests = resolved.run_all_self_tests();
        if !tests.failures.is_empty() {
            return Err(ApiError::Unprocessable {
                detail: format!(
                    "{} of the rubric's {} self-tests fail",
                    tests.failures.len(),
                    tests.total
                ),
                errors: tests
                    .failures
                    .iter()
                    .map(|f| FieldError {
                        pointer: f.pointer.clone(),
                        detail: format!(
                            "test `{}` expects {} but the rubric gives {}: {}",
                            f.name,
                            f.expected_score,
                            f.actual_score,
                            f.mismatches.join("; ")
                        ),
                    })
                    .collect(),
            });
        }
        check_variants(&rubric, &engines, max_attempts)?;
        let findings = rubric.audit(&engines);
        Ok((resolved, tests, findings))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("rubric preparation failed: {e}")))?
}

/// Seeds whose variants must exist before a template rubric is stored.
const CHECKED_SEEDS: std::ops::Range<u64> = 0..3;

/// A template rubric is stored only when its first seeds give variants
/// (so a template whose constraints or self-tests can never be met is
/// refused at authoring time, not when a learner submits).
fn check_variants(rubric: &Rubric, engines: &Engines, max_attempts: u32) -> Result<(), ApiError> {
    if rubric.template.is_none() {
        return Ok(());
    }
    for seed in CHECKED_SEEDS {
        if let Err(e) = rubric.variant_capped(seed, engines, max_attempts) {
            return Err(variant_error(e, "/template", &format!("seed {seed}")));
        }
    }
    Ok(())
}

/// A variant that cannot be made, as a 422 at `pointer`.
pub(super) fn variant_error(e: VariantError, pointer: &str, what: &str) -> ApiError {
    match e {
        VariantError::Invalid(problems) => problems_to_error("the template is not valid", problems),
        other => ApiError::unprocessable(pointer, format!("{what}: {other}")),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot encode as JSON: {e}")))
}

fn from_stored<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored {what} cannot be read: {e}")))
}

fn view(record: &RubricVersionRecord) -> Result<RubricView, ApiError> {
    let resolved: Rubric = from_stored(&record.resolved, "resolved rubric")?;
    let max_score = resolved.parts.iter().map(|p| p.max_points).sum();
    Ok(RubricView {
        id: record.rubric_id.clone(),
        version: record.version,
        title: record.title.clone(),
        rubric: from_stored(&record.body, "rubric")?,
        resolved,
        warnings: from_stored(&record.warnings, "rubric warnings")?,
        max_score,
        created_at: record.created_at.clone(),
        created_by: record.created_by.clone(),
    })
}

/// The compiled version `version` (latest when None) of a stored rubric.
pub(super) async fn load_compiled(
    state: &AppState,
    id: &str,
    version: Option<i64>,
) -> Result<(i64, Arc<ResolvedRubric>), ApiError> {
    let wanted = version.or_else(|| state.rubrics.latest(id));
    if let Some(hit) = wanted.and_then(|v| state.rubrics.get(id, v).map(|hit| (v, hit))) {
        return Ok(hit);
    }
    let record = state
        .store
        .get_rubric(id, version)
        .await?
        .ok_or_else(|| match version {
            Some(v) => ApiError::NotFound(format!("no version {v} of rubric `{id}`")),
            None => ApiError::NotFound(format!("no rubric with id `{id}`")),
        })?;
    if version.is_none() {
        state.rubrics.set_latest(id, record.version);
    }
    if let Some(hit) = state.rubrics.get(id, record.version) {
        return Ok((record.version, hit));
    }
    let resolved: Rubric = from_stored(&record.resolved, "resolved rubric")?;
    let compiled = Arc::new(resolved.compile().map_err(|p| {
        ApiError::Internal(anyhow::anyhow!(
            "stored rubric {id} v{} does not compile: {:?}",
            record.version,
            p
        ))
    })?);
    state.rubrics.put(id, record.version, compiled.clone());
    Ok((record.version, compiled))
}

async fn store_version(
    state: &AppState,
    id: Option<&str>,
    rubric: Rubric,
    author: &str,
) -> Result<RubricCreated, ApiError> {
    let body = to_json(&rubric)?;
    let (resolved, tests, findings) = prepare(
        rubric,
        state.limits.clone(),
        state.config.max_variant_attempts,
    )
    .await?;
    let resolved_json = to_json(resolved.rubric())?;
    let warnings = to_json(&findings)?;
    let title = resolved.rubric().title.clone();
    let new = NewRubricVersion {
        title: &title,
        body: &body,
        resolved: &resolved_json,
        warnings: &warnings,
        author,
    };
    let record = match id {
        None => state.store.create_rubric(new).await?,
        Some(id) => state
            .store
            .add_rubric_version(id, new)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no rubric with id `{id}`")))?,
    };
    state
        .rubrics
        .put(&record.rubric_id, record.version, Arc::new(resolved));
    state.rubrics.set_latest(&record.rubric_id, record.version);
    Ok(RubricCreated {
        rubric: view(&record)?,
        self_tests: tests,
    })
}

/// Stores a new rubric (version 1). Computed keys are resolved, the
/// rubric's self-tests must pass, and printed keys with a `check` are audited
/// (disagreements come back as `warnings`).
#[utoipa::path(post, path = "/v1/rubrics", operation_id = "createRubric", tag = "rubrics",
    request_body = Rubric,
    responses((status = 201, description = "Rubric stored", body = RubricCreated), WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn create_rubric(
    State(state): State<AppState>,
    auth: Authed<Authors>,
    ApiJson(rubric): ApiJson<Rubric>,
) -> Result<(StatusCode, Json<RubricCreated>), ApiError> {
    let created = store_version(&state, None, rubric, &auth.principal.key_id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Stores a new version of a rubric (versions are immutable; grades keep the
/// version they were graded against).
#[utoipa::path(put, path = "/v1/rubrics/{id}", operation_id = "updateRubric", tag = "rubrics",
    params(("id" = String, Path, description = "Rubric id")),
    request_body = Rubric,
    responses((status = 201, description = "New version stored", body = RubricCreated), WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth, rubric))]
async fn update_rubric(
    State(state): State<AppState>,
    auth: Authed<Authors>,
    Path(id): Path<String>,
    ApiJson(rubric): ApiJson<Rubric>,
) -> Result<(StatusCode, Json<RubricCreated>), ApiError> {
    let created = store_version(&state, Some(&id), rubric, &auth.principal.key_id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists rubrics in creation order.
#[utoipa::path(get, path = "/v1/rubrics", operation_id = "listRubrics", tag = "rubrics",
    params(PageQuery),
    responses((status = 200, description = "A page of rubrics", body = RubricPage), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth))]
async fn list_rubrics(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
    Query(page): Query<PageQuery>,
) -> Result<Json<RubricPage>, ApiError> {
    let limit = page_limit(page.limit)?;
    let records = state
        .store
        .list_rubrics(page.cursor.as_deref(), limit + 1)
        .await?;
    let more = records.len() as i64 > limit;
    let items: Vec<RubricSummary> = records
        .into_iter()
        .take(limit as usize)
        .map(|r| RubricSummary {
            id: r.id,
            title: r.title,
            latest_version: r.latest_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    let next_cursor = more.then(|| items.last().map(|i| i.id.clone())).flatten();
    Ok(Json(RubricPage { items, next_cursor }))
}

/// The latest version of a rubric.
#[utoipa::path(get, path = "/v1/rubrics/{id}", operation_id = "getRubric", tag = "rubrics",
    params(("id" = String, Path, description = "Rubric id")),
    responses((status = 200, description = "The latest version", body = RubricView), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth))]
async fn get_rubric(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
    Path(id): Path<String>,
) -> Result<Json<RubricView>, ApiError> {
    let record = state
        .store
        .get_rubric(&id, None)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rubric with id `{id}`")))?;
    Ok(Json(view(&record)?))
}

/// One version of a rubric.
#[utoipa::path(get, path = "/v1/rubrics/{id}/versions/{version}", operation_id = "getRubricVersion",
    tag = "rubrics",
    params(("id" = String, Path, description = "Rubric id"),
           ("version" = i64, Path, description = "Version number (from 1)", minimum = 1)),
    responses((status = 200, description = "That version", body = RubricView), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth))]
async fn get_rubric_version(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Json<RubricView>, ApiError> {
    let record = state
        .store
        .get_rubric(&id, Some(version))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no version {version} of rubric `{id}`")))?;
    Ok(Json(view(&record)?))
}

/// Recomputes every printed key that has a `check` computation and reports
/// the disagreements with the correct value and its working.
#[utoipa::path(post, path = "/v1/rubrics/{id}/audit", operation_id = "auditRubric", tag = "rubrics",
    params(("id" = String, Path, description = "Rubric id")),
    responses((status = 200, description = "Audit of the latest version", body = AuditReport), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth))]
async fn audit_rubric(
    State(state): State<AppState>,
    _auth: Authed<Readers>,
    Path(id): Path<String>,
) -> Result<Json<AuditReport>, ApiError> {
    let record = state
        .store
        .get_rubric(&id, None)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rubric with id `{id}`")))?;
    let rubric: Rubric = from_stored(&record.body, "rubric")?;
    let limits = state.limits.clone();
    let findings = tokio::task::spawn_blocking(move || {
        let engines = Engines {
            limits: (*limits).clone(),
        };
        rubric.audit(&engines)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("audit failed: {e}")))?;
    Ok(Json(AuditReport {
        rubric_id: record.rubric_id,
        version: record.version,
        findings,
    }))
}

/// Grades answers against an inline or stored rubric; nothing is stored
/// (for authoring and previews).
#[utoipa::path(post, path = "/v1/grade", operation_id = "gradePreview", tag = "grading",
    request_body = GradeRequest,
    responses((status = 200, description = "The grade, not stored", body = GradeResult), ComputeErrors,
              (status = 404, description = "No such stored rubric", body = super::error::Problem,
               content_type = "application/problem+json")))]
#[tracing::instrument(skip_all)]
async fn grade_preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<GradeRequest>,
) -> Result<Json<GradeResult>, ApiError> {
    let options = body.options.unwrap_or_default();
    let seed = super::variants::check_seed(body.variant_seed, "/variant_seed")?;
    let rubric = match (body.rubric, body.rubric_id) {
        (Some(rubric), None) => {
            caller.for_compute(&state)?;
            match seed {
                None => Arc::new(
                    prepare(
                        rubric,
                        state.limits.clone(),
                        state.config.max_variant_attempts,
                    )
                    .await?
                    .0,
                ),
                Some(seed) => {
                    let variant = super::variants::make_variant(rubric, seed, &state).await?;
                    variant.resolved.clone()
                }
            }
        }
        (None, Some(id)) => {
            caller.require(Readers::ROLES, "grading against a stored rubric")?;
            super::variants::load_for_grading(&state, &id, body.rubric_version, seed)
                .await?
                .1
        }
        _ => {
            return Err(ApiError::unprocessable(
                "/rubric",
                "give exactly one of `rubric` (inline) and `rubric_id` (stored)",
            ));
        }
    };
    let answers = body.answers;
    let result = tokio::task::spawn_blocking(move || grade(&rubric, &answers, &options))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("grading failed: {e}")))?;
    Ok(Json(result))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_rubric, list_rubrics))
        .routes(routes!(get_rubric, update_rubric))
        .routes(routes!(get_rubric_version))
        .routes(routes!(audit_rubric))
        .routes(routes!(grade_preview))
}
