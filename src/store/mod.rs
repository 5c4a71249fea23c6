//! Persistence with sqlx. SQLite is the embedded default; the SQL is kept
//! portable (TEXT/INTEGER columns, no SQLite-only syntax outside this module's
//! connection setup) so that a PostgreSQL backend can follow.

pub mod bank;
mod checkpoint;
pub use checkpoint::DEFAULT_MAX_FRAMES as DEFAULT_WAL_MAX_FRAMES;
pub mod keys;
pub mod rubrics;
pub mod submissions;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Tuning of the store (see `Config` for what each one means).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// WAL size in pages past which the submission writer checkpoints itself.
    pub wal_max_frames: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            wal_max_frames: checkpoint::DEFAULT_MAX_FRAMES,
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Queue of the group-commit writer of submissions.
    writer: tokio::sync::mpsc::Sender<submissions::WriterMsg>,
    /// Recently verified API keys.
    keys: std::sync::Arc<keys::KeyCache>,
}

impl Store {
    /// Opens (creating if missing) the database at `url`, with WAL journal,
    /// foreign keys on and a busy timeout, and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with tuning options.
    #[tracing::instrument(skip_all, fields(url = %url))]
    pub async fn open_with(url: &str, tuning: &StoreOptions) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL `{url}`"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Statement journals (a multi-row INSERT needs one) and temporary
            // tables in memory instead of temporary files.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open database `{url}`"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("cannot apply database migrations")?;
        // The submission writer's own connection, with a larger page cache
        // (it stays warm: this connection does nearly all the writing).
        let writer = submissions::spawn_writer(
            options.pragma("cache_size", "-32768"),
            tuning.wal_max_frames,
        );
        Ok(Self {
            pool,
            writer,
            keys: Default::default(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// True when the database answers a trivial query.
    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("database ping failed")?;
        Ok(())
    }

    /// Lets the submission writer finish what it was sent and close its
    /// connection, then waits for in-flight statements and closes the pool;
    /// closing the last connection checkpoints the WAL into the main file.
    pub async fn close(&self) {
        let (ack, closed) = tokio::sync::oneshot::channel();
        if self
            .writer
            .send(submissions::WriterMsg::Close(ack))
            .await
            .is_ok()
        {
            let _ = closed.await;
        }
        self.pool.close().await;
    }
}

/// The current time as stored: RFC 3339 UTC with milliseconds (sorts as text).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
