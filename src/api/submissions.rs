//! Submissions: grade and store (idempotent), batches, reads with cursor
//! pagination, the Gradescope shape, the grade history, the gradebook (JSON
//! and CSV), regrading, statistics and erasure of a learner's data.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authed, Authors, Readers, Submitters};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, from_value};
use super::responses::{ReadErrors, WriteErrors};
use super::rubrics::{load_compiled, page_limit};
use super::variants::load_for_grading;
use crate::grading::stats::{Statistics, statistics};
use crate::grading::{Answers, GradeOptions, GradeResult, GradeStatus, GradescopeResults, grade};
use crate::store::keys::{Principal, Role};
use crate::store::submissions::{
    GradeRecord, Inserted, NewSubmission, Regrade, SubmissionFilter, SubmissionRecord,
};

/// Longest accepted learner id, idempotency key and rubric id.
const MAX_ID_LEN: usize = 200;

/// Answers of one learner to one rubric.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRequest {
    /// The stored rubric to grade against.
    #[schema(min_length = 1, max_length = 200)]
    pub rubric_id: String,
    /// Its version (default: the latest).
    #[schema(minimum = 1)]
    pub rubric_version: Option<i64>,
    /// Pseudonymous learner id (no names or emails needed), 1-200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub learner_id: String,
    /// Attempt number (default: the learner's next attempt on this rubric).
    #[schema(minimum = 1)]
    pub attempt: Option<i64>,
    /// Seed of the variant of a template rubric the learner answered (from
    /// `POST /v1/rubrics/{id}/variants`); the answers are graded against
    /// that variant's keys. Omit for fixed rubrics.
    #[schema(minimum = 0, maximum = 9007199254740991i64)]
    pub variant_seed: Option<i64>,
    /// The answers, part id -> answer.
    pub answers: Answers,
    /// Grading options (default: follow-through and method credit on).
    #[serde(default)]
    pub options: Option<GradeOptions>,
    /// Idempotency key, for batch items and clients that cannot set headers;
    /// the `Idempotency-Key` header wins when both are given.
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
}

/// A stored, graded submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionView {
    pub id: String,
    pub rubric_id: String,
    /// The rubric version it was graded against.
    pub rubric_version: i64,
    pub learner_id: String,
    pub attempt: i64,
    pub variant_seed: Option<i64>,
    pub score: f64,
    pub max_score: f64,
    pub status: GradeStatus,
    /// The status as LTI Assignment and Grade Services `gradingProgress`
    /// (`FullyGraded`, `PendingManual`, `Failed`).
    pub grading_progress: String,
    /// Per part: points, max, verdict, matched rule, feedback, normalized answer.
    pub result: GradeResult,
    /// The answers as submitted.
    pub answers: Answers,
    pub created_at: String,
    pub graded_at: String,
    /// True when this response replays an earlier request with the same
    /// `Idempotency-Key` (nothing new was stored).
    pub replayed: bool,
}

/// What is kept of a submission's request besides its grade.
#[derive(Debug, Serialize, Deserialize)]
struct StoredAnswers {
    answers: Answers,
    options: GradeOptions,
}

fn progress(status: GradeStatus) -> &'static str {
    match status {
        GradeStatus::FullyGraded => "FullyGraded",
        GradeStatus::PendingManual => "PendingManual",
        GradeStatus::NotGradable => "Failed",
    }
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> ApiError + '_ {
    move |e| ApiError::Internal(anyhow::anyhow!("{what}: {e}"))
}

fn view(record: SubmissionRecord, replayed: bool) -> Result<SubmissionView, ApiError> {
    let result: GradeResult =
        serde_json::from_value(record.result).map_err(internal("stored result unreadable"))?;
    let stored: StoredAnswers =
        serde_json::from_value(record.answers).map_err(internal("stored answers unreadable"))?;
    Ok(SubmissionView {
        id: record.id,
        rubric_id: record.rubric_id,
        rubric_version: record.rubric_version,
        learner_id: record.learner_id,
        attempt: record.attempt,
        variant_seed: record.variant_seed,
        score: record.score,
        max_score: record.max_score,
        grading_progress: progress(result.status).into(),
        status: result.status,
        result,
        answers: stored.answers,
        created_at: record.created_at,
        graded_at: record.graded_at,
        replayed,
    })
}

fn check_id(pointer: &str, value: &str, what: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::unprocessable(
            pointer,
            format!("{what} must not be empty"),
        ));
    }
    if value.chars().count() > MAX_ID_LEN {
        return Err(ApiError::unprocessable(
            pointer,
            format!("{what} is longer than {MAX_ID_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            pointer,
            format!("{what} contains control characters"),
        ));
    }
    Ok(())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest {
            detail: "the Idempotency-Key header must be visible ASCII".into(),
            errors: vec![],
        })?
        .trim()
        .to_owned();
    check_id("", &key, "the Idempotency-Key header").map_err(|_| ApiError::BadRequest {
        detail: format!("the Idempotency-Key header must be 1-{MAX_ID_LEN} visible characters"),
        errors: vec![],
    })?;
    Ok(Some(key))
}

/// Checks what the schema states of a request (ids, attempt, seed).
fn validate(request: &SubmissionRequest, pointer_prefix: &str) -> Result<(), ApiError> {
    let at = |field: &str| format!("{pointer_prefix}/{field}");
    check_id(&at("rubric_id"), &request.rubric_id, "rubric_id")?;
    check_id(&at("learner_id"), &request.learner_id, "learner_id")?;
    if let Some(key) = &request.idempotency_key {
        check_id(&at("idempotency_key"), key, "idempotency_key")?;
    }
    if request.rubric_version.is_some_and(|v| v < 1) {
        return Err(ApiError::unprocessable(
            at("rubric_version"),
            "rubric_version must be at least 1",
        ));
    }
    if request.attempt.is_some_and(|a| a < 1) {
        return Err(ApiError::unprocessable(
            at("attempt"),
            "attempt must be at least 1",
        ));
    }
    super::variants::check_seed(request.variant_seed, &at("variant_seed"))?;
    Ok(())
}

/// Grades and stores one (validated) submission.
async fn submit_one(
    state: &AppState,
    principal: &Principal,
    request: SubmissionRequest,
    key: Option<String>,
    pointer_prefix: &str,
) -> Result<(StatusCode, SubmissionView), ApiError> {
    let at = |field: &str| format!("{pointer_prefix}/{field}");
    let request_hash = key.as_ref().map(|_| {
        let canonical = serde_json::to_vec(&request).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    });
    let seed = super::variants::check_seed(request.variant_seed, &at("variant_seed"))?;
    let (version, rubric) =
        load_for_grading(state, &request.rubric_id, request.rubric_version, seed)
            .await
            .map_err(|e| match e {
                ApiError::NotFound(detail) => ApiError::unprocessable(at("rubric_id"), detail),
                other => other.repoint("/variant_seed", &at("variant_seed")),
            })?;
    let SubmissionRequest {
        rubric_id,
        learner_id,
        attempt,
        variant_seed,
        answers,
        options,
        ..
    } = request;
    let options = options.unwrap_or_default();
    let result = grade(&rubric, &answers, &options);
    let stored = StoredAnswers { answers, options };
    let new = NewSubmission {
        rubric_id,
        rubric_version: version,
        learner_id,
        attempt,
        variant_seed,
        answers: serde_json::to_string(&stored).map_err(internal("cannot encode answers"))?,
        result: serde_json::to_string(&result).map_err(internal("cannot encode result"))?,
        score: result.score,
        max_score: result.max_score,
        status: status_text(result.status),
        submitted_by: principal.key_id.clone(),
        idempotency_key: key,
        request_hash,
    };
    let stored_as = (new.rubric_id.clone(), new.learner_id.clone());
    match state.store.insert_submission(new).await? {
        Inserted::Created(created) => {
            // The view of what was just stored, built from what is in hand
            // (the same values the stored JSON reads back as).
            let (rubric_id, learner_id) = stored_as;
            let view = SubmissionView {
                id: created.id,
                rubric_id,
                rubric_version: version,
                learner_id,
                attempt: created.attempt,
                variant_seed,
                score: result.score,
                max_score: result.max_score,
                grading_progress: progress(result.status).into(),
                status: result.status,
                result,
                answers: stored.answers,
                graded_at: created.created_at.clone(),
                created_at: created.created_at,
                replayed: false,
            };
            Ok((StatusCode::CREATED, view))
        }
        Inserted::Replayed(record) => Ok((StatusCode::OK, view(*record, true)?)),
        Inserted::KeyReused => Err(ApiError::Unprocessable {
            detail: "this Idempotency-Key was already used with a different request body".into(),
            errors: vec![super::error::FieldError {
                pointer: String::new(),
                detail: "Idempotency-Key reused with a different body".into(),
            }],
        }),
    }
}

/// The stored text of a grade status (its JSON string).
fn status_text(status: GradeStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Grades answers and stores the result. With an `Idempotency-Key` header,
/// a retry with the same key and body replays the stored result (200,
/// `replayed: true`); the same key with another body is a 422.
#[utoipa::path(post, path = "/v1/submissions", operation_id = "createSubmission", tag = "grading",
    request_body = SubmissionRequest,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Makes retries safe: same key + same body replays the stored result")),
    responses(
        (status = 201, description = "Graded and stored", body = SubmissionView),
        (status = 200, description = "Replay of an earlier request with the same Idempotency-Key", body = SubmissionView),
        WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn create_submission(
    State(state): State<AppState>,
    auth: Authed<Submitters>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SubmissionRequest>,
) -> Result<(StatusCode, Json<SubmissionView>), ApiError> {
    let key = idempotency_key(&headers)?.or_else(|| request.idempotency_key.clone());
    validate(&request, "")?;
    let (status, view) = submit_one(&state, &auth.principal, request, key, "").await?;
    Ok((status, Json(view)))
}

/// Many submissions at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The submissions (at most the configured batch limit, default 100).
    /// Each item is checked on its own: a malformed item fails alone.
    #[schema(value_type = Vec<SubmissionRequest>)]
    pub submissions: Vec<serde_json::Value>,
}

/// The outcome of one batch item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemResult {
    /// Position in the request.
    pub index: usize,
    /// HTTP status this item would have had on its own (201, 200 for a replay, 4xx).
    pub status: u16,
    pub submission: Option<SubmissionView>,
    /// Why the item failed.
    pub problem: Option<Problem>,
}

/// Per-item outcomes of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItemResult>,
    /// Items stored (or replayed).
    pub succeeded: usize,
    pub failed: usize,
}

/// Grades and stores many submissions. Items must all have the documented
/// shape (else 422 naming each bad field, nothing stored); past that, an
/// error in one item (unknown rubric, reused idempotency key) does not fail
/// the others: each result carries its own status and problem.
#[utoipa::path(post, path = "/v1/submissions/batch", operation_id = "createSubmissionBatch",
    tag = "grading",
    request_body(content = BatchRequest, description = "Each item is a `SubmissionRequest` with its own optional `idempotency_key`"),
    responses((status = 200, description = "One result per item", body = BatchResponse), WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn create_batch(
    State(state): State<AppState>,
    auth: Authed<Submitters>,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let max = state.config.max_batch_items;
    if batch.submissions.len() > max {
        return Err(ApiError::unprocessable(
            "/submissions",
            format!("a batch holds at most {max} submissions (configurable: --max-batch-items)"),
        ));
    }
    // Phase 1: every item must have the documented shape (a malformed item
    // is a client bug: the whole batch is refused, naming each bad field).
    let mut items = Vec::with_capacity(batch.submissions.len());
    let mut errors = Vec::new();
    for (index, raw) in batch.submissions.into_iter().enumerate() {
        match read_item(raw, &format!("/submissions/{index}")) {
            Ok(item) => items.push(item),
            Err(ApiError::Unprocessable { errors: mut e, .. }) => errors.append(&mut e),
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Unprocessable {
            detail: format!(
                "{} field(s) of the batch are invalid; nothing was stored",
                errors.len()
            ),
            errors,
        });
    }
    // Phase 2: grade and store every item concurrently, so that the writer
    // commits them together; an item that fails (unknown rubric, reused
    // idempotency key) fails alone.
    let mut tasks = tokio::task::JoinSet::new();
    for (index, submission) in items.into_iter().enumerate() {
        let state = state.clone();
        let principal = auth.principal.clone();
        tasks.spawn(async move {
            let prefix = format!("/submissions/{index}");
            let key = submission.idempotency_key.clone();
            (
                index,
                submit_one(&state, &principal, submission, key, &prefix).await,
            )
        });
    }
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("batch item task failed: {e}")))?;
        results.push(match outcome {
            Ok((status, view)) => BatchItemResult {
                index,
                status: status.as_u16(),
                submission: Some(view),
                problem: None,
            },
            Err(e @ ApiError::Internal(_)) => return Err(e),
            Err(e) => BatchItemResult {
                index,
                status: e.status().as_u16(),
                submission: None,
                problem: Some(e.to_problem()),
            },
        });
    }
    results.sort_by_key(|r| r.index);
    let succeeded = results.iter().filter(|r| r.submission.is_some()).count();
    let failed = results.len() - succeeded;
    Ok(Json(BatchResponse {
        results,
        succeeded,
        failed,
    }))
}

/// Reads and checks one batch item.
fn read_item(raw: serde_json::Value, prefix: &str) -> Result<SubmissionRequest, ApiError> {
    let item: SubmissionRequest = from_value(raw, prefix)?;
    validate(&item, prefix)?;
    Ok(item)
}

/// A grader key sees only what it submitted; other readers see everything.
fn own_scope(principal: &Principal) -> Option<&str> {
    (principal.role == Role::Grader).then_some(principal.key_id.as_str())
}

async fn load_visible(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<SubmissionRecord, ApiError> {
    let record = state.store.get_submission(id).await?;
    match (record, own_scope(principal)) {
        (Some(r), Some(me)) if r.submitted_by != me => None,
        (r, _) => r,
    }
    .ok_or_else(|| ApiError::NotFound(format!("no submission with id `{id}`")))
}

/// One submission with its grade.
#[utoipa::path(get, path = "/v1/submissions/{id}", operation_id = "getSubmission", tag = "grading",
    params(("id" = String, Path, description = "Submission id")),
    responses((status = 200, description = "The submission", body = SubmissionView), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn get_submission(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
) -> Result<Json<SubmissionView>, ApiError> {
    let record = load_visible(&state, &auth.principal, &id).await?;
    Ok(Json(view(record, false)?))
}

/// A submission's grade as a Gradescope autograder `results.json`.
#[utoipa::path(get, path = "/v1/submissions/{id}/gradescope", operation_id = "getSubmissionGradescope",
    tag = "grading",
    params(("id" = String, Path, description = "Submission id")),
    responses((status = 200, description = "Gradescope results.json", body = GradescopeResults), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn get_gradescope(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
) -> Result<Json<GradescopeResults>, ApiError> {
    let record = load_visible(&state, &auth.principal, &id).await?;
    Ok(Json(view(record, false)?.result.to_gradescope()))
}

/// One entry of a submission's grade history.
#[derive(Debug, Serialize, ToSchema)]
pub struct GradeChange {
    pub id: String,
    /// `submitted` (the first grade) or `regrade`.
    pub reason: String,
    pub old_version: Option<i64>,
    pub new_version: i64,
    pub old_score: Option<f64>,
    pub new_score: f64,
    /// Id of the API key that caused the change.
    pub actor: String,
    pub changed_at: String,
}

/// The audit log of a submission's grades: who, when, old, new.
#[utoipa::path(get, path = "/v1/submissions/{id}/history", operation_id = "getSubmissionHistory",
    tag = "grading",
    params(("id" = String, Path, description = "Submission id")),
    responses((status = 200, description = "Grade changes, oldest first", body = Vec<GradeChange>), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn get_history(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
) -> Result<Json<Vec<GradeChange>>, ApiError> {
    load_visible(&state, &auth.principal, &id).await?;
    let changes = state
        .store
        .grade_changes(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no submission with id `{id}`")))?;
    Ok(Json(
        changes
            .into_iter()
            .map(|c| GradeChange {
                id: c.id,
                reason: c.reason,
                old_version: c.old_version,
                new_version: c.new_version,
                old_score: c.old_score,
                new_score: c.new_score,
                actor: c.actor,
                changed_at: c.changed_at,
            })
            .collect(),
    ))
}

/// Filters of the submission list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubmissionQuery {
    /// Only submissions to this rubric.
    pub rubric_id: Option<String>,
    /// Only this learner's submissions.
    pub learner_id: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A page of submissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionPage {
    pub items: Vec<SubmissionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Submissions in creation order, filtered by rubric and/or learner (a
/// grader key sees only its own).
#[utoipa::path(get, path = "/v1/submissions", operation_id = "listSubmissions", tag = "grading",
    params(SubmissionQuery),
    responses((status = 200, description = "A page of submissions", body = SubmissionPage), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn list_submissions(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Query(query): Query<SubmissionQuery>,
) -> Result<Json<SubmissionPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let filter = SubmissionFilter {
        rubric_id: query.rubric_id.as_deref(),
        learner_id: query.learner_id.as_deref(),
        submitted_by: own_scope(&auth.principal),
    };
    let records = state
        .store
        .list_submissions(&filter, query.cursor.as_deref(), limit + 1)
        .await?;
    let more = records.len() as i64 > limit;
    let items = records
        .into_iter()
        .take(limit as usize)
        .map(|r| view(r, false))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = more.then(|| items.last().map(|i| i.id.clone())).flatten();
    Ok(Json(SubmissionPage { items, next_cursor }))
}

/// Which submission of a learner counts in the gradebook and statistics.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptPolicy {
    /// The learner's last attempt (default).
    #[default]
    Latest,
    /// The learner's highest score (earliest on ties).
    Best,
}

/// Gradebook and statistics options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// Which attempt counts: `latest` (default) or `best`.
    pub policy: Option<AttemptPolicy>,
}

/// One learner's row of the gradebook.
#[derive(Debug, Serialize, ToSchema)]
pub struct GradebookRow {
    pub learner_id: String,
    pub submission_id: String,
    pub attempt: i64,
    /// Attempts the learner made.
    pub attempts: i64,
    pub score: f64,
    pub max_score: f64,
    /// Score in percent of the maximum.
    pub percent: f64,
    pub status: GradeStatus,
    pub rubric_version: i64,
    /// Seed of the variant the learner answered (template rubrics).
    pub variant_seed: Option<i64>,
    pub submitted_at: String,
    /// Points per part, by part id.
    pub parts: BTreeMap<String, f64>,
    /// All feedback lines, part by part.
    pub feedback: String,
}

/// The gradebook of a rubric: one row per learner.
#[derive(Debug, Serialize, ToSchema)]
pub struct Gradebook {
    pub rubric_id: String,
    pub policy: AttemptPolicy,
    /// Part ids, in rubric order (the CSV's part columns).
    pub part_ids: Vec<String>,
    pub rows: Vec<GradebookRow>,
}

/// The counted submission per learner (ordered by learner id) with the
/// number of attempts.
fn counted(records: Vec<GradeRecord>, policy: AttemptPolicy) -> Vec<(GradeRecord, i64)> {
    let mut by_learner: BTreeMap<String, (GradeRecord, i64)> = BTreeMap::new();
    for r in records {
        match by_learner.get_mut(&r.learner_id) {
            None => {
                by_learner.insert(r.learner_id.clone(), (r, 1));
            }
            Some((chosen, n)) => {
                *n += 1;
                let better = match policy {
                    AttemptPolicy::Latest => (r.attempt, &r.id) > (chosen.attempt, &chosen.id),
                    AttemptPolicy::Best => r.score > chosen.score,
                };
                if better {
                    *chosen = r;
                }
            }
        }
    }
    by_learner.into_values().collect()
}

/// The grades of a rubric the principal may see (a grader: those it sent).
async fn visible_of_rubric(
    state: &AppState,
    principal: &Principal,
    rubric_id: &str,
) -> Result<Vec<GradeRecord>, ApiError> {
    if state.store.get_rubric(rubric_id, None).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no rubric with id `{rubric_id}`"
        )));
    }
    Ok(state
        .store
        .grades_of_rubric(rubric_id, own_scope(principal))
        .await?)
}

/// Runs CPU-heavy work over many stored grades off the async workers.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("grade summary task failed: {e}")))?
}

fn gradebook_of(
    rubric_id: &str,
    policy: AttemptPolicy,
    records: Vec<GradeRecord>,
) -> Result<Gradebook, ApiError> {
    let mut part_ids: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for (record, attempts) in counted(records, policy) {
        let result: GradeResult =
            serde_json::from_str(&record.result).map_err(internal("stored result unreadable"))?;
        for p in &result.parts {
            if !part_ids.contains(&p.part_id) {
                part_ids.push(p.part_id.clone());
            }
        }
        let feedback = result
            .parts
            .iter()
            .map(|p| format!("{}: {}", p.part_id, p.feedback.join(" ")))
            .collect::<Vec<_>>()
            .join(" | ");
        rows.push(GradebookRow {
            learner_id: record.learner_id,
            submission_id: record.id,
            attempt: record.attempt,
            attempts,
            score: record.score,
            max_score: record.max_score,
            percent: if record.max_score > 0.0 {
                record.score / record.max_score * 100.0
            } else {
                0.0
            },
            status: result.status,
            rubric_version: record.rubric_version,
            variant_seed: record.variant_seed,
            submitted_at: record.created_at,
            parts: result
                .parts
                .iter()
                .map(|p| (p.part_id.clone(), p.points))
                .collect(),
            feedback,
        });
    }
    Ok(Gradebook {
        rubric_id: rubric_id.to_owned(),
        policy,
        part_ids,
        rows,
    })
}

fn gradebook_csv(book: &Gradebook) -> Result<String, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "learner_id".to_string(),
        "score".into(),
        "max_score".into(),
        "percent".into(),
        "status".into(),
        "attempt".into(),
        "attempts".into(),
        "submitted_at".into(),
        "variant_seed".into(),
    ];
    header.extend(book.part_ids.iter().map(|p| format!("part {p}")));
    header.push("feedback".into());
    let csv_err = |e: csv::Error| ApiError::Internal(anyhow::anyhow!("cannot write CSV: {e}"));
    writer.write_record(&header).map_err(csv_err)?;
    for row in &book.rows {
        let status = serde_json::to_value(row.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut record = vec![
            row.learner_id.clone(),
            crate::compute::steps::fmt_num(row.score),
            crate::compute::steps::fmt_num(row.max_score),
            format!("{:.2}", row.percent),
            status,
            row.attempt.to_string(),
            row.attempts.to_string(),
            row.submitted_at.clone(),
            row.variant_seed.map(|s| s.to_string()).unwrap_or_default(),
        ];
        record.extend(book.part_ids.iter().map(|p| {
            row.parts
                .get(p)
                .map(|x| crate::compute::steps::fmt_num(*x))
                .unwrap_or_default()
        }));
        record.push(row.feedback.clone());
        writer.write_record(&record).map_err(csv_err)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot finish CSV: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("CSV is not UTF-8: {e}")))
}

async fn gradebook(
    state: &AppState,
    principal: &Principal,
    id: &str,
    query: PolicyQuery,
) -> Result<Gradebook, ApiError> {
    let policy = query.policy.unwrap_or_default();
    let records = visible_of_rubric(state, principal, id).await?;
    let id = id.to_owned();
    off_runtime(move || gradebook_of(&id, policy, records)).await
}

fn csv_response(book: &Gradebook) -> Result<Response, ApiError> {
    let body = gradebook_csv(book)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

/// The gradebook: one row per learner (latest or best attempt) with score,
/// per-part points and feedback. For CSV use `getGradebookCsv` (this path
/// also answers `Accept: text/csv` with the same CSV).
#[utoipa::path(get, path = "/v1/rubrics/{id}/gradebook", operation_id = "getGradebook", tag = "grading",
    params(("id" = String, Path, description = "Rubric id"), PolicyQuery),
    responses((status = 200, description = "The gradebook", body = Gradebook), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth, headers))]
async fn get_gradebook(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
    Query(query): Query<PolicyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let book = gradebook(&state, &auth.principal, &id, query).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        csv_response(&book)
    } else {
        Ok(Json(book).into_response())
    }
}

/// The gradebook as CSV for Moodle's and Canvas' grade import: columns
/// `learner_id, score, max_score, percent, status, attempt, attempts,
/// submitted_at`, one `part <id>` column per part, and `feedback`.
#[utoipa::path(get, path = "/v1/rubrics/{id}/gradebook.csv", operation_id = "getGradebookCsv",
    tag = "grading",
    params(("id" = String, Path, description = "Rubric id"), PolicyQuery),
    responses((status = 200, description = "The gradebook as CSV", body = String, content_type = "text/csv"),
              ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn get_gradebook_csv(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
    Query(query): Query<PolicyQuery>,
) -> Result<Response, ApiError> {
    let book = gradebook(&state, &auth.principal, &id, query).await?;
    csv_response(&book)
}

/// Statistics of a rubric's grades.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricStatistics {
    pub rubric_id: String,
    pub policy: AttemptPolicy,
    #[serde(flatten)]
    pub statistics: Statistics,
}

/// Per part: mean, facility and discrimination index (as Moodle reports
/// them), the score distribution, and how often each rule (each common
/// mistake included) matched.
#[utoipa::path(get, path = "/v1/rubrics/{id}/statistics", operation_id = "getStatistics", tag = "grading",
    params(("id" = String, Path, description = "Rubric id"), PolicyQuery),
    responses((status = 200, description = "Item statistics", body = RubricStatistics), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth))]
async fn get_statistics(
    State(state): State<AppState>,
    auth: Authed<Readers>,
    Path(id): Path<String>,
    Query(query): Query<PolicyQuery>,
) -> Result<Json<RubricStatistics>, ApiError> {
    let policy = query.policy.unwrap_or_default();
    let records = visible_of_rubric(&state, &auth.principal, &id).await?;
    let statistics = off_runtime(move || {
        let results = counted(records, policy)
            .into_iter()
            .map(|(r, _)| {
                serde_json::from_str::<GradeResult>(&r.result)
                    .map_err(internal("stored result unreadable"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&GradeResult> = results.iter().collect();
        Ok(statistics(&refs))
    })
    .await?;
    Ok(Json(RubricStatistics {
        rubric_id: id,
        policy,
        statistics,
    }))
}

/// Regrade options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegradeRequest {
    /// List what would change without changing anything. Default: false.
    #[serde(default)]
    pub dry_run: bool,
}

/// A submission whose score changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegradeChange {
    pub submission_id: String,
    pub learner_id: String,
    pub old_version: i64,
    pub old_score: f64,
    pub new_score: f64,
    /// new - old.
    pub delta: f64,
}

/// Outcome of a regrade.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegradeReport {
    pub rubric_id: String,
    /// The version everything was regraded against (the latest).
    pub version: i64,
    pub dry_run: bool,
    /// Submissions re-scored.
    pub examined: usize,
    /// Those whose score changes (stored unless `dry_run`).
    pub changed: Vec<RegradeChange>,
}

/// Re-scores every stored submission of a rubric against its latest version.
/// Old grades stay in each submission's history; each change is logged
/// (who, when, old, new). With `dry_run`, only lists the changes.
#[utoipa::path(post, path = "/v1/rubrics/{id}/regrade", operation_id = "regradeRubric", tag = "grading",
    params(("id" = String, Path, description = "Rubric id")),
    request_body = RegradeRequest,
    responses((status = 200, description = "What changed (or would)", body = RegradeReport), WriteErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, auth, request))]
async fn regrade(
    State(state): State<AppState>,
    auth: Authed<Authors>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RegradeRequest>,
) -> Result<Json<RegradeReport>, ApiError> {
    let (version, rubric) = load_compiled(&state, &id, None).await?;
    let records = state.store.submissions_of_rubric(&id).await?;
    let examined = records.len();
    // Submissions made on variants are regraded against the same seed's
    // variant of the latest version.
    let mut variants = std::collections::HashMap::new();
    for seed in records.iter().filter_map(|r| r.variant_seed) {
        if let std::collections::hash_map::Entry::Vacant(slot) = variants.entry(seed) {
            let checked = super::variants::check_seed(Some(seed), "/variant_seed")?;
            let (_, compiled) = load_for_grading(&state, &id, Some(version), checked)
                .await
                .map_err(|e| match e {
                    ApiError::Unprocessable { detail, .. } => ApiError::unprocessable(
                        "",
                        format!(
                            "submissions made on the variant of seed {seed} cannot be regraded against version {version}: {detail}"
                        ),
                    ),
                    other => other,
                })?;
            slot.insert(compiled);
        }
    }
    let graded = tokio::task::spawn_blocking(move || {
        records
            .into_iter()
            .map(|r| {
                let stored: StoredAnswers = serde_json::from_value(r.answers.clone())
                    .map_err(internal("stored answers unreadable"))?;
                let against = r
                    .variant_seed
                    .and_then(|s| variants.get(&s))
                    .unwrap_or(&rubric);
                let result = grade(against, &stored.answers, &stored.options);
                Ok((r, result))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("regrade failed: {e}")))??;

    let mut changed = Vec::new();
    let mut regrades = Vec::new();
    for (record, result) in graded {
        let old: GradeResult = serde_json::from_value(record.result.clone())
            .map_err(internal("stored result unreadable"))?;
        let delta = result.score - record.score;
        if delta.abs() > 1e-9 {
            changed.push(RegradeChange {
                submission_id: record.id.clone(),
                learner_id: record.learner_id.clone(),
                old_version: record.rubric_version,
                old_score: record.score,
                new_score: result.score,
                delta,
            });
        }
        if result != old || record.rubric_version != version {
            regrades.push(Regrade {
                submission_id: record.id,
                new_version: version,
                result: serde_json::to_value(&result).map_err(internal("cannot encode result"))?,
                score: result.score,
                max_score: result.max_score,
                status: serde_json::to_value(result.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            });
        }
    }
    if !request.dry_run && !regrades.is_empty() {
        state
            .store
            .apply_regrades(&regrades, &auth.principal.key_id)
            .await?;
    }
    Ok(Json(RegradeReport {
        rubric_id: id,
        version,
        dry_run: request.dry_run,
        examined,
        changed,
    }))
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erasure {
    pub learner_id: String,
    /// Submissions (with their grade history) erased.
    pub erased_submissions: u64,
}

/// Erases every submission and grade of a learner (data protection).
#[utoipa::path(delete, path = "/v1/learners/{learner_id}", operation_id = "eraseLearner", tag = "grading",
    params(("learner_id" = String, Path, description = "Pseudonymous learner id")),
    responses((status = 200, description = "What was erased", body = Erasure), ReadErrors),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _auth))]
async fn erase_learner(
    State(state): State<AppState>,
    _auth: Authed<Authors>,
    Path(learner_id): Path<String>,
) -> Result<Json<Erasure>, ApiError> {
    let erased_submissions = state.store.erase_learner(&learner_id).await?;
    Ok(Json(Erasure {
        learner_id,
        erased_submissions,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_submission, list_submissions))
        .routes(routes!(create_batch))
        .routes(routes!(get_submission))
        .routes(routes!(get_gradescope))
        .routes(routes!(get_history))
        .routes(routes!(get_gradebook))
        .routes(routes!(get_gradebook_csv))
        .routes(routes!(get_statistics))
        .routes(routes!(regrade))
        .routes(routes!(erase_learner))
}
