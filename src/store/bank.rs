//! Which stored rubric each question-bank file is.

use anyhow::Context;
use sqlx::Row;

use super::{Store, now};

/// A loaded bank question.
#[derive(Debug, Clone)]
pub struct BankEntryRecord {
    pub slug: String,
    pub rubric_id: String,
    pub content_hash: String,
    pub title: String,
    pub latest_version: i64,
    pub loaded_at: String,
}

impl Store {
    /// Every loaded bank question, by slug.
    #[tracing::instrument(skip(self))]
    pub async fn bank_entries(&self) -> anyhow::Result<Vec<BankEntryRecord>> {
        let rows = sqlx::query(
            "SELECT b.slug, b.rubric_id, b.content_hash, b.loaded_at, r.title, r.latest_version \
             FROM bank_entries b JOIN rubrics r ON r.id = b.rubric_id ORDER BY b.slug",
        )
        .fetch_all(self.pool())
        .await
        .context("cannot list the question bank")?;
        rows.iter()
            .map(|row| {
                Ok(BankEntryRecord {
                    slug: row.try_get("slug")?,
                    rubric_id: row.try_get("rubric_id")?,
                    content_hash: row.try_get("content_hash")?,
                    title: row.try_get("title")?,
                    latest_version: row.try_get("latest_version")?,
                    loaded_at: row.try_get("loaded_at")?,
                })
            })
            .collect()
    }

    /// Records (or updates) which rubric a bank file is.
    #[tracing::instrument(skip(self))]
    pub async fn upsert_bank_entry(
        &self,
        slug: &str,
        rubric_id: &str,
        content_hash: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO bank_entries (slug, rubric_id, content_hash, loaded_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slug) DO UPDATE SET rubric_id = excluded.rubric_id, \
                 content_hash = excluded.content_hash, loaded_at = excluded.loaded_at",
        )
        .bind(slug)
        .bind(rubric_id)
        .bind(content_hash)
        .bind(now())
        .execute(self.pool())
        .await
        .context("cannot record bank entry")?;
        Ok(())
    }

    /// True when no rubric is stored yet.
    pub async fn has_no_rubrics(&self) -> anyhow::Result<bool> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rubrics")
            .fetch_one(self.pool())
            .await
            .context("cannot count rubrics")?;
        Ok(count == 0)
    }
}
