//! Rubrics and their immutable versions.

use anyhow::Context;
use serde_json::Value;
use sqlx::Row;

use super::{Store, now};

/// One stored version of a rubric.
#[derive(Debug, Clone)]
pub struct RubricVersionRecord {
    pub rubric_id: String,
    pub version: i64,
    pub title: String,
    pub body: Value,
    pub resolved: Value,
    pub warnings: Value,
    pub created_at: String,
    pub created_by: String,
}

/// A rubric as listed.
#[derive(Debug, Clone)]
pub struct RubricSummaryRecord {
    pub id: String,
    pub title: String,
    pub latest_version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What to store for a new version.
#[derive(Debug, Clone)]
pub struct NewRubricVersion<'a> {
    pub title: &'a str,
    pub body: &'a Value,
    pub resolved: &'a Value,
    pub warnings: &'a Value,
    pub author: &'a str,
}

fn parse_json(text: &str, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("stored {what} is not valid JSON"))
}

fn version_from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<RubricVersionRecord> {
    Ok(RubricVersionRecord {
        rubric_id: row.try_get("rubric_id")?,
        version: row.try_get("version")?,
        title: row.try_get("title")?,
        body: parse_json(&row.try_get::<String, _>("body")?, "rubric body")?,
        resolved: parse_json(&row.try_get::<String, _>("resolved")?, "resolved rubric")?,
        warnings: parse_json(&row.try_get::<String, _>("warnings")?, "rubric warnings")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    /// Stores a new rubric as version 1.
    #[tracing::instrument(skip(self, new), fields(title = new.title))]
    pub async fn create_rubric(
        &self,
        new: NewRubricVersion<'_>,
    ) -> anyhow::Result<RubricVersionRecord> {
        let id = uuid::Uuid::now_v7().to_string();
        let at = now();
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("cannot begin transaction")?;
        sqlx::query(
            "INSERT INTO rubrics (id, title, latest_version, created_at, updated_at, created_by) \
             VALUES ($1, $2, 1, $3, $3, $4)",
        )
        .bind(&id)
        .bind(new.title)
        .bind(&at)
        .bind(new.author)
        .execute(&mut *tx)
        .await
        .context("cannot insert rubric")?;
        insert_version(&mut tx, &id, 1, &new, &at).await?;
        tx.commit().await.context("cannot commit rubric")?;
        Ok(record(&id, 1, &new, at))
    }

    /// Stores a new version of an existing rubric; None if there is no such rubric.
    #[tracing::instrument(skip(self, new))]
    pub async fn add_rubric_version(
        &self,
        id: &str,
        new: NewRubricVersion<'_>,
    ) -> anyhow::Result<Option<RubricVersionRecord>> {
        let at = now();
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("cannot begin transaction")?;
        // Bump first: the UPDATE takes the write lock, so concurrent editors
        // get consecutive versions instead of a conflict.
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE rubrics SET latest_version = latest_version + 1, title = $1, updated_at = $2 \
             WHERE id = $3 RETURNING latest_version",
        )
        .bind(new.title)
        .bind(&at)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .context("cannot bump rubric version")?;
        let Some(version) = version else {
            return Ok(None);
        };
        insert_version(&mut tx, id, version, &new, &at).await?;
        tx.commit().await.context("cannot commit rubric version")?;
        Ok(Some(record(id, version, &new, at)))
    }

    /// A version of a rubric (the latest when `version` is None).
    #[tracing::instrument(skip(self))]
    pub async fn get_rubric(
        &self,
        id: &str,
        version: Option<i64>,
    ) -> anyhow::Result<Option<RubricVersionRecord>> {
        let row = sqlx::query(
            "SELECT v.rubric_id, v.version, r.title, v.body, v.resolved, v.warnings, \
                    v.created_at, v.created_by \
             FROM rubric_versions v JOIN rubrics r ON r.id = v.rubric_id \
             WHERE v.rubric_id = $1 AND v.version = COALESCE($2, r.latest_version)",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(self.pool())
        .await
        .context("cannot load rubric")?;
        row.as_ref().map(version_from_row).transpose()
    }

    /// Rubrics ordered by id (creation order), after `cursor`, at most `limit`.
    #[tracing::instrument(skip(self))]
    pub async fn list_rubrics(
        &self,
        cursor: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<RubricSummaryRecord>> {
        let rows = sqlx::query(
            "SELECT id, title, latest_version, created_at, updated_at FROM rubrics \
             WHERE id > COALESCE($1, '') ORDER BY id LIMIT $2",
        )
        .bind(cursor)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .context("cannot list rubrics")?;
        rows.iter()
            .map(|row| {
                Ok(RubricSummaryRecord {
                    id: row.try_get("id")?,
                    title: row.try_get("title")?,
                    latest_version: row.try_get("latest_version")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: &str,
    version: i64,
    new: &NewRubricVersion<'_>,
    at: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO rubric_versions (rubric_id, version, body, resolved, warnings, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(version)
    .bind(new.body.to_string())
    .bind(new.resolved.to_string())
    .bind(new.warnings.to_string())
    .bind(at)
    .bind(new.author)
    .execute(&mut **tx)
    .await
    .context("cannot insert rubric version")?;
    Ok(())
}

fn record(id: &str, version: i64, new: &NewRubricVersion<'_>, at: String) -> RubricVersionRecord {
    RubricVersionRecord {
        rubric_id: id.to_owned(),
        version,
        title: new.title.to_owned(),
        body: new.body.clone(),
        resolved: new.resolved.clone(),
        warnings: new.warnings.clone(),
        created_at: at,
        created_by: new.author.to_owned(),
    }
}
