//! Graded submissions, their idempotency keys and the audit log of grade changes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use anyhow::Context;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row};

use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use super::{Store, now};

/// `SELECT <every column> FROM submissions <rest>`, as a static string.
macro_rules! select_submissions {
    ($rest:literal) => {
        concat!(
            "SELECT id, rubric_id, rubric_version, learner_id, attempt, variant_seed, answers, \
             result, score, max_score, status, submitted_by, created_at, graded_at, request_hash \
             FROM submissions ",
            $rest
        )
    };
}

/// Most submissions written in one transaction.
const MAX_BATCH: usize = 256;

/// A submission waiting for the writer, with where to send the outcome.
pub(super) struct WriteJob {
    new: NewSubmission,
    reply: oneshot::Sender<anyhow::Result<Inserted>>,
}

/// What the writer task is sent.
pub(super) enum WriterMsg {
    Job(Box<WriteJob>),
    /// Write what came before, close the writer's connection, then answer.
    Close(oneshot::Sender<()>),
}

/// Starts the writer task. It writes with a connection of its own (opened
/// with `options`, reopened after a failed batch), so that its page cache
/// and prepared statements stay warm between batches; it ends on
/// [`WriterMsg::Close`] or when every sender is dropped. Its WAL
/// checkpoints run in the background ([`Checkpointer`]), the writer
/// checkpointing itself only past `wal_max_frames` pages of WAL.
pub(super) fn spawn_writer(
    options: SqliteConnectOptions,
    wal_max_frames: u32,
) -> mpsc::Sender<WriterMsg> {
    let (tx, mut rx) = mpsc::channel::<WriterMsg>(4 * MAX_BATCH);
    let mut checkpointer = Checkpointer::spawn(options.clone(), wal_max_frames);
    let options = options.pragma("wal_autocheckpoint", "0");
    tokio::spawn(async move {
        let mut conn: Option<SqliteConnection> = None;
        let mut messages = Vec::with_capacity(MAX_BATCH);
        let mut closing: Vec<oneshot::Sender<()>> = Vec::new();
        while closing.is_empty() && rx.recv_many(&mut messages, MAX_BATCH).await > 0 {
            let mut batch = Vec::with_capacity(messages.len());
            for message in messages.drain(..) {
                match message {
                    WriterMsg::Job(job) if closing.is_empty() => batch.push(*job),
                    WriterMsg::Job(job) => {
                        let _ = job
                            .reply
                            .send(Err(anyhow::anyhow!("the database is being closed")));
                    }
                    WriterMsg::Close(ack) => closing.push(ack),
                }
            }
            if !batch.is_empty() {
                let rows = batch.len();
                let started = std::time::Instant::now();
                write_batch(&mut conn, &options, batch).await;
                tracing::debug!(
                    rows,
                    micros = started.elapsed().as_micros() as u64,
                    "submission batch written"
                );
                if let Some(conn) = conn.as_mut() {
                    checkpointer.after_commit(conn, rows).await;
                }
            }
        }
        checkpointer.stop().await;
        if let Some(conn) = conn.take() {
            let _ = conn.close().await;
        }
        for ack in closing {
            let _ = ack.send(());
        }
    });
    tx
}

/// Writes a batch in one transaction. If the transaction fails as a whole,
/// every job of the batch gets the error (nothing of it was stored), and the
/// connection is closed (the next batch opens a new one).
async fn write_batch(
    conn: &mut Option<SqliteConnection>,
    options: &SqliteConnectOptions,
    batch: Vec<WriteJob>,
) {
    let (mut news, replies): (Vec<NewSubmission>, Vec<_>) =
        batch.into_iter().map(|job| (job.new, job.reply)).unzip();
    let outcome = async {
        if conn.is_none() {
            *conn = Some(
                options
                    .connect()
                    .await
                    .context("cannot open the submission writer's connection")?,
            );
        }
        let Some(connection) = conn.as_mut() else {
            anyhow::bail!("the submission writer has no connection");
        };
        store_batch(connection, &mut news).await
    }
    .await;
    match outcome {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            if let Some(broken) = conn.take() {
                let _ = broken.close().await;
            }
            let message = format!("{e:#}");
            for reply in replies {
                let _ = reply.send(Err(anyhow::anyhow!("{message}")));
            }
        }
    }
}

/// What the writer decided for one job of a batch before inserting.
enum Plan {
    /// Insert it with this id and attempt number.
    Insert { id: String, attempt: i64 },
    /// Its idempotency key is already stored: replay or refuse.
    Done(Inserted),
    /// An earlier job of the batch has the same submitter and key: answer
    /// from the row stored under that key once the batch is written.
    SameKeyAsEarlier,
}

/// Stores a batch in one transaction with one multi-row INSERT, and returns
/// one outcome per job, in order. Idempotency keys already stored are
/// replayed (or refused) without inserting; a key repeated within the batch
/// is inserted once and the repeats answered from that row. Attempt numbers
/// are assigned in batch order, as if each job were inserted alone.
/// The `answers` and `result` texts of inserted jobs are moved out of `news`.
async fn store_batch(
    conn: &mut SqliteConnection,
    news: &mut [NewSubmission],
) -> anyhow::Result<Vec<Inserted>> {
    // Write lock from the start: what is read below (stored keys, attempt
    // numbers) cannot change before the insert.
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .context("cannot begin transaction")?;

    // Repeated keys within the batch, then keys stored by earlier batches.
    let mut first_with_key: HashMap<(&str, &str), usize> = HashMap::new();
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(news.len());
    for (i, new) in news.iter().enumerate() {
        let plan = new.idempotency_key.as_deref().and_then(|key| {
            match first_with_key.entry((new.submitted_by.as_str(), key)) {
                Entry::Occupied(_) => Some(Plan::SameKeyAsEarlier),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    None
                }
            }
        });
        plans.push(plan);
    }
    if !first_with_key.is_empty() {
        let keys: Vec<(&str, &str)> = first_with_key.keys().copied().collect();
        let mut stored = stored_under_keys(&mut tx, &keys).await?;
        for (&(by, key), &i) in &first_with_key {
            if let Some((record, hash)) = stored.remove(&(by.to_owned(), key.to_owned())) {
                plans[i] = Some(Plan::Done(if hash == news[i].request_hash {
                    Inserted::Replayed(Box::new(record))
                } else {
                    Inserted::KeyReused
                }));
            }
        }
    }

    // Attempt numbers: the learner's highest attempt on the rubric, stored
    // or given earlier in the batch, plus one.
    let counted: HashSet<(String, String)> = news
        .iter()
        .zip(&plans)
        .filter(|(new, plan)| plan.is_none() && new.attempt.is_none())
        .map(|(new, _)| (new.rubric_id.clone(), new.learner_id.clone()))
        .collect();
    let mut highest = highest_attempts(&mut tx, &counted).await?;
    for (new, plan) in news.iter().zip(plans.iter_mut()) {
        if plan.is_some() {
            continue;
        }
        let pair = (new.rubric_id.clone(), new.learner_id.clone());
        let attempt = match new.attempt {
            Some(a) => a,
            None => highest.get(&pair).copied().unwrap_or(0) + 1,
        };
        if counted.contains(&pair) {
            let h = highest.entry(pair).or_insert(attempt);
            *h = (*h).max(attempt);
        }
        *plan = Some(Plan::Insert {
            id: uuid::Uuid::now_v7().to_string(),
            attempt,
        });
    }
    let plans: Vec<Plan> = plans.into_iter().flatten().collect();

    let at = now();
    let inserted = insert_rows(&mut tx, news, &plans, &at).await?;

    let mut outcomes = Vec::with_capacity(news.len());
    for (new, plan) in news.iter().zip(plans) {
        outcomes.push(match plan {
            Plan::Insert { id, attempt } if inserted.contains(id.as_str()) => {
                Inserted::Created(CreatedSubmission {
                    id,
                    attempt,
                    created_at: at.clone(),
                })
            }
            // The key conflicted with a row the checks above did not see:
            // answer from that row, as for a repeated key.
            Plan::Insert { .. } | Plan::SameKeyAsEarlier => replay(&mut tx, new).await?,
            Plan::Done(outcome) => outcome,
        });
    }
    tx.commit().await.context("cannot commit submissions")?;
    Ok(outcomes)
}

/// Appends `(a = ? AND b = ?) OR ...` for the given values of columns `a`
/// and `b` (column names are constants of this module, values are bound).
fn push_pairs<'a>(
    query: &mut QueryBuilder<sqlx::Sqlite>,
    (a, b): (&str, &str),
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) {
    for (n, (x, y)) in pairs.enumerate() {
        if n > 0 {
            query.push(" OR ");
        }
        query.push(format!("({a} = "));
        query.push_bind(x.to_owned());
        query.push(format!(" AND {b} = "));
        query.push_bind(y.to_owned());
        query.push(")");
    }
}

/// The submissions stored under the given (submitter, idempotency key)
/// pairs, with their request hashes.
async fn stored_under_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    keys: &[(&str, &str)],
) -> anyhow::Result<HashMap<(String, String), (SubmissionRecord, Option<String>)>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(MAX_BATCH) {
        let mut query = QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, rubric_id, rubric_version, learner_id, attempt, variant_seed, answers, \
             result, score, max_score, status, submitted_by, created_at, graded_at, request_hash, \
             idempotency_key FROM submissions WHERE ",
        );
        push_pairs(
            &mut query,
            ("submitted_by", "idempotency_key"),
            chunk.iter().copied(),
        );
        let rows = query
            .build()
            .persistent(true)
            .fetch_all(&mut **tx)
            .await
            .context("cannot look up idempotency keys")?;
        for row in &rows {
            let record = from_row(row)?;
            let key: String = row.try_get("idempotency_key")?;
            let hash: Option<String> = row.try_get("request_hash")?;
            found.insert((record.submitted_by.clone(), key), (record, hash));
        }
    }
    Ok(found)
}

/// The highest stored attempt of each (rubric, learner) pair that has one.
async fn highest_attempts(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    pairs: &HashSet<(String, String)>,
) -> anyhow::Result<HashMap<(String, String), i64>> {
    let pairs: Vec<&(String, String)> = pairs.iter().collect();
    let mut highest = HashMap::with_capacity(pairs.len());
    for chunk in pairs.chunks(MAX_BATCH) {
        let mut query = QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT rubric_id, learner_id, MAX(attempt) AS attempt FROM submissions WHERE ",
        );
        push_pairs(
            &mut query,
            ("rubric_id", "learner_id"),
            chunk.iter().map(|(r, l)| (r.as_str(), l.as_str())),
        );
        query.push(" GROUP BY rubric_id, learner_id");
        let rows = query
            .build()
            .persistent(true)
            .fetch_all(&mut **tx)
            .await
            .context("cannot compute attempt numbers")?;
        for row in &rows {
            highest.insert(
                (row.try_get("rubric_id")?, row.try_get("learner_id")?),
                row.try_get("attempt")?,
            );
        }
    }
    Ok(highest)
}

/// Inserts the jobs planned for insertion with one multi-row INSERT per
/// [`MAX_BATCH`] rows; returns the ids actually inserted (a row whose
/// idempotency key is already stored is skipped by `ON CONFLICT`).
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    news: &mut [NewSubmission],
    plans: &[Plan],
    at: &str,
) -> anyhow::Result<HashSet<String>> {
    let rows: Vec<(&mut NewSubmission, &str, i64)> = news
        .iter_mut()
        .zip(plans)
        .filter_map(|(new, plan)| match plan {
            Plan::Insert { id, attempt } => Some((new, id.as_str(), *attempt)),
            _ => None,
        })
        .collect();
    let mut inserted = HashSet::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut query = QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO submissions (id, rubric_id, rubric_version, learner_id, attempt, \
             variant_seed, answers, result, score, max_score, status, submitted_by, \
             idempotency_key, request_hash, created_at, graded_at) ",
        );
        query.push_values(
            rows.by_ref().take(MAX_BATCH),
            |mut row, (new, id, attempt)| {
                row.push_bind(id.to_owned())
                    .push_bind(new.rubric_id.clone())
                    .push_bind(new.rubric_version)
                    .push_bind(new.learner_id.clone())
                    .push_bind(attempt)
                    .push_bind(new.variant_seed)
                    .push_bind(std::mem::take(&mut new.answers))
                    .push_bind(std::mem::take(&mut new.result))
                    .push_bind(new.score)
                    .push_bind(new.max_score)
                    .push_bind(new.status.clone())
                    .push_bind(new.submitted_by.clone())
                    .push_bind(new.idempotency_key.clone())
                    .push_bind(new.request_hash.clone())
                    .push_bind(at.to_owned())
                    .push_bind(at.to_owned());
            },
        );
        query.push(" ON CONFLICT (submitted_by, idempotency_key) DO NOTHING RETURNING id");
        let ids: Vec<String> = query
            .build_query_scalar()
            .persistent(true)
            .fetch_all(&mut **tx)
            .await
            .context("cannot insert submissions")?;
        inserted.extend(ids);
    }
    Ok(inserted)
}

/// The submission already stored under the job's idempotency key.
async fn replay(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    new: &NewSubmission,
) -> anyhow::Result<Inserted> {
    let row = sqlx::query(select_submissions!(
        "WHERE submitted_by = $1 AND idempotency_key = $2"
    ))
    .bind(&new.submitted_by)
    .bind(&new.idempotency_key)
    .fetch_optional(&mut **tx)
    .await
    .context("cannot load the submission of an idempotency key")?;
    let Some(row) = row else {
        anyhow::bail!("insert conflicted but no submission holds the idempotency key");
    };
    let stored_hash: Option<String> = row.try_get("request_hash")?;
    if stored_hash == new.request_hash {
        Ok(Inserted::Replayed(Box::new(from_row(&row)?)))
    } else {
        Ok(Inserted::KeyReused)
    }
}

/// A submission to store with its grade.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub rubric_id: String,
    pub rubric_version: i64,
    pub learner_id: String,
    /// None: the next attempt number of this learner on this rubric.
    pub attempt: Option<i64>,
    pub variant_seed: Option<i64>,
    /// The answers as stored, JSON text.
    pub answers: String,
    /// The grade as stored, JSON text.
    pub result: String,
    pub score: f64,
    pub max_score: f64,
    pub status: String,
    /// Id of the API key that submitted it.
    pub submitted_by: String,
    pub idempotency_key: Option<String>,
    /// Hash of the request body, to tell a replay from a reused key.
    pub request_hash: Option<String>,
}

/// A stored submission with its current grade.
#[derive(Debug, Clone)]
pub struct SubmissionRecord {
    pub id: String,
    pub rubric_id: String,
    pub rubric_version: i64,
    pub learner_id: String,
    pub attempt: i64,
    pub variant_seed: Option<i64>,
    pub answers: Value,
    pub result: Value,
    pub score: f64,
    pub max_score: f64,
    pub status: String,
    pub submitted_by: String,
    pub created_at: String,
    pub graded_at: String,
}

/// A stored grade without its answers (see [`Store::grades_of_rubric`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GradeRecord {
    pub id: String,
    pub rubric_version: i64,
    pub learner_id: String,
    pub attempt: i64,
    pub variant_seed: Option<i64>,
    /// The grade's JSON text.
    pub result: String,
    pub score: f64,
    pub max_score: f64,
    pub created_at: String,
}

/// What the database assigned to a submission stored now; the rest of the
/// row is what was submitted.
#[derive(Debug, Clone)]
pub struct CreatedSubmission {
    pub id: String,
    pub attempt: i64,
    /// Creation time, also the time of its (first) grade.
    pub created_at: String,
}

/// Outcome of storing a submission under an idempotency key.
#[derive(Debug, Clone)]
pub enum Inserted {
    /// Stored now.
    Created(CreatedSubmission),
    /// The same key and the same body were stored before: this is that submission.
    Replayed(Box<SubmissionRecord>),
    /// The key was used before with a different body.
    KeyReused,
}

/// One entry of the audit log of grades.
#[derive(Debug, Clone)]
pub struct GradeChangeRecord {
    pub id: String,
    pub submission_id: String,
    pub reason: String,
    pub old_version: Option<i64>,
    pub new_version: i64,
    pub old_score: Option<f64>,
    pub new_score: f64,
    pub actor: String,
    pub changed_at: String,
}

/// A new grade for a stored submission (from a regrade).
#[derive(Debug, Clone)]
pub struct Regrade {
    pub submission_id: String,
    pub new_version: i64,
    pub result: Value,
    pub score: f64,
    pub max_score: f64,
    pub status: String,
}

/// Which submissions to list.
#[derive(Debug, Clone, Default)]
pub struct SubmissionFilter<'a> {
    pub rubric_id: Option<&'a str>,
    pub learner_id: Option<&'a str>,
    /// Only those submitted with this key (a grader sees its own).
    pub submitted_by: Option<&'a str>,
}

/// The listing query: only the filters given become conditions, so that
/// SQLite searches an index (`(learner_id)` when a learner is given, else
/// `(rubric_id, id)` or `(submitted_by, id)`) instead of scanning every
/// submission.
fn list_query(
    filter: &SubmissionFilter<'_>,
    cursor: Option<&str>,
    limit: i64,
) -> QueryBuilder<sqlx::Sqlite> {
    let mut query = QueryBuilder::new(if filter.learner_id.is_some() {
        // A learner has few submissions: start from them. Without this,
        // SQLite walks a whole rubric's submissions in id order (to skip the
        // sort) and filters out every other learner's.
        select_submissions!("INDEXED BY submissions_learner WHERE id > ")
    } else {
        select_submissions!("WHERE id > ")
    });
    query.push_bind(cursor.unwrap_or_default().to_owned());
    for (column, value) in [
        ("rubric_id", filter.rubric_id),
        ("learner_id", filter.learner_id),
        ("submitted_by", filter.submitted_by),
    ] {
        if let Some(value) = value {
            query.push(format!(" AND {column} = "));
            query.push_bind(value.to_owned());
        }
    }
    query.push(" ORDER BY id LIMIT ");
    query.push_bind(limit);
    query
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<SubmissionRecord> {
    let answers: String = row.try_get("answers")?;
    let result: String = row.try_get("result")?;
    Ok(SubmissionRecord {
        id: row.try_get("id")?,
        rubric_id: row.try_get("rubric_id")?,
        rubric_version: row.try_get("rubric_version")?,
        learner_id: row.try_get("learner_id")?,
        attempt: row.try_get("attempt")?,
        variant_seed: row.try_get("variant_seed")?,
        answers: serde_json::from_str(&answers).context("stored answers are not JSON")?,
        result: serde_json::from_str(&result).context("stored result is not JSON")?,
        score: row.try_get("score")?,
        max_score: row.try_get("max_score")?,
        status: row.try_get("status")?,
        submitted_by: row.try_get("submitted_by")?,
        created_at: row.try_get("created_at")?,
        graded_at: row.try_get("graded_at")?,
    })
}

impl Store {
    /// Stores a graded submission, honouring its idempotency key: the unique
    /// index on (submitter, key) makes concurrent identical requests store
    /// exactly one row. Submissions arriving together are written by one
    /// writer task in one transaction (group commit); the call returns once
    /// its transaction is committed.
    #[tracing::instrument(skip(self, new), fields(rubric = %new.rubric_id, learner = %new.learner_id))]
    pub async fn insert_submission(&self, new: NewSubmission) -> anyhow::Result<Inserted> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriterMsg::Job(Box::new(WriteJob { new, reply })))
            .await
            .map_err(|_| anyhow::anyhow!("the submission writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the submission writer dropped a job"))?
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_submission(&self, id: &str) -> anyhow::Result<Option<SubmissionRecord>> {
        let row = sqlx::query(select_submissions!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .context("cannot load submission")?;
        row.as_ref().map(from_row).transpose()
    }

    /// Submissions matching `filter`, in creation order after `cursor` (an id).
    #[tracing::instrument(skip(self))]
    pub async fn list_submissions(
        &self,
        filter: &SubmissionFilter<'_>,
        cursor: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<SubmissionRecord>> {
        let rows = list_query(filter, cursor, limit)
            .build()
            .fetch_all(self.pool())
            .await
            .context("cannot list submissions")?;
        rows.iter().map(from_row).collect()
    }

    /// The grades of a rubric's submissions (optionally only those sent
    /// with one key), in creation order, without the answers and with each
    /// grade as its stored JSON text: what the gradebook and the statistics
    /// need, at a fraction of the memory of full records.
    #[tracing::instrument(skip(self))]
    pub async fn grades_of_rubric(
        &self,
        rubric_id: &str,
        submitted_by: Option<&str>,
    ) -> anyhow::Result<Vec<GradeRecord>> {
        sqlx::query_as::<_, GradeRecord>(
            "SELECT id, rubric_version, learner_id, attempt, variant_seed, result, score, \
                    max_score, created_at FROM submissions \
             WHERE rubric_id = $1 AND ($2 IS NULL OR submitted_by = $2) ORDER BY id",
        )
        .bind(rubric_id)
        .bind(submitted_by)
        .fetch_all(self.pool())
        .await
        .context("cannot load the grades of a rubric")
    }

    /// Every submission of a rubric, in creation order.
    #[tracing::instrument(skip(self))]
    pub async fn submissions_of_rubric(
        &self,
        rubric_id: &str,
    ) -> anyhow::Result<Vec<SubmissionRecord>> {
        let rows = sqlx::query(select_submissions!("WHERE rubric_id = $1 ORDER BY id"))
            .bind(rubric_id)
            .fetch_all(self.pool())
            .await
            .context("cannot load the submissions of a rubric")?;
        rows.iter().map(from_row).collect()
    }

    /// Applies new grades in one transaction and logs each change.
    #[tracing::instrument(skip(self, regrades), fields(count = regrades.len()))]
    pub async fn apply_regrades(&self, regrades: &[Regrade], actor: &str) -> anyhow::Result<()> {
        let at = now();
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("cannot begin transaction")?;
        for r in regrades {
            sqlx::query(
                "INSERT INTO grade_changes (id, submission_id, reason, old_version, new_version, \
                     old_score, new_score, old_result, actor, changed_at) \
                 SELECT $1, id, 'regrade', rubric_version, $2, score, $3, result, $4, $5 \
                 FROM submissions WHERE id = $6",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(r.new_version)
            .bind(r.score)
            .bind(actor)
            .bind(&at)
            .bind(&r.submission_id)
            .execute(&mut *tx)
            .await
            .context("cannot log grade change")?;
            sqlx::query(
                "UPDATE submissions SET rubric_version = $1, result = $2, score = $3, max_score = $4, \
                     status = $5, graded_at = $6 WHERE id = $7",
            )
            .bind(r.new_version)
            .bind(r.result.to_string())
            .bind(r.score)
            .bind(r.max_score)
            .bind(&r.status)
            .bind(&at)
            .bind(&r.submission_id)
            .execute(&mut *tx)
            .await
            .context("cannot update grade")?;
        }
        tx.commit().await.context("cannot commit regrade")?;
        Ok(())
    }

    /// The audit log of a submission's grades, oldest first: the grade it
    /// was first given (from the submission row, or from the first regrade's
    /// old values), then every regrade. None if there is no such submission.
    #[tracing::instrument(skip(self))]
    pub async fn grade_changes(
        &self,
        submission_id: &str,
    ) -> anyhow::Result<Option<Vec<GradeChangeRecord>>> {
        let Some(submission) = self.get_submission(submission_id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT id, submission_id, reason, old_version, new_version, old_score, new_score, actor, \
                 changed_at FROM grade_changes WHERE submission_id = $1 ORDER BY changed_at, id",
        )
        .bind(submission_id)
        .fetch_all(self.pool())
        .await
        .context("cannot load grade changes")?;
        let regrades = rows
            .iter()
            .map(|row| {
                Ok(GradeChangeRecord {
                    id: row.try_get("id")?,
                    submission_id: row.try_get("submission_id")?,
                    reason: row.try_get("reason")?,
                    old_version: row.try_get("old_version")?,
                    new_version: row.try_get("new_version")?,
                    old_score: row.try_get("old_score")?,
                    new_score: row.try_get("new_score")?,
                    actor: row.try_get("actor")?,
                    changed_at: row.try_get("changed_at")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (first_version, first_score) = match regrades.first() {
            Some(r) => (
                r.old_version.unwrap_or(submission.rubric_version),
                r.old_score.unwrap_or(submission.score),
            ),
            None => (submission.rubric_version, submission.score),
        };
        let mut history = vec![GradeChangeRecord {
            id: submission.id.clone(),
            submission_id: submission.id,
            reason: "submitted".into(),
            old_version: None,
            new_version: first_version,
            old_score: None,
            new_score: first_score,
            actor: submission.submitted_by,
            changed_at: submission.created_at,
        }];
        history.extend(regrades);
        Ok(Some(history))
    }

    /// Erases every submission of a learner (and, by cascade, their grade
    /// log). Returns how many submissions were erased.
    #[tracing::instrument(skip(self))]
    pub async fn erase_learner(&self, learner_id: &str) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM submissions WHERE learner_id = $1")
            .bind(learner_id)
            .execute(self.pool())
            .await
            .context("cannot erase learner")?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::{SubmissionFilter, list_query};

    /// SQLite's plan for the listing with the given filters, one line per step.
    async fn plan(conn: &mut SqliteConnection, filter: SubmissionFilter<'_>) -> Vec<String> {
        let sql = list_query(&filter, Some("0"), 50).sql().as_str().to_owned();
        let filters = [filter.rubric_id, filter.learner_id, filter.submitted_by];
        let mut explain = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(
            format!("EXPLAIN QUERY PLAN {sql}"),
        ))
        .bind("0");
        for value in filters.into_iter().flatten() {
            explain = explain.bind(value);
        }
        let rows = explain.bind(50_i64).fetch_all(conn).await.unwrap();
        rows.into_iter().map(|(_, _, _, detail)| detail).collect()
    }

    #[tokio::test]
    async fn every_listing_filter_searches_an_index() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::migrate!("./migrations").run(&mut conn).await.unwrap();
        let cases = [
            (
                SubmissionFilter::default(),
                "sqlite_autoindex_submissions_1 (id>?)",
            ),
            (
                SubmissionFilter {
                    rubric_id: Some("r"),
                    ..Default::default()
                },
                "submissions_rubric (rubric_id=? AND id>?)",
            ),
            (
                SubmissionFilter {
                    submitted_by: Some("k"),
                    ..Default::default()
                },
                "submissions_submitter (submitted_by=? AND id>?)",
            ),
            (
                SubmissionFilter {
                    learner_id: Some("l"),
                    ..Default::default()
                },
                "submissions_learner (learner_id=?)",
            ),
            (
                SubmissionFilter {
                    rubric_id: Some("r"),
                    learner_id: Some("l"),
                    submitted_by: Some("k"),
                },
                "submissions_learner (learner_id=?)",
            ),
        ];
        for (filter, index) in cases {
            let steps = plan(&mut conn, filter).await;
            assert!(
                steps[0].starts_with("SEARCH submissions USING INDEX") && steps[0].ends_with(index),
                "expected a search of {index}, got {steps:?}"
            );
            assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
        }
    }
}
