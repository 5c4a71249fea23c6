//! WAL checkpoints off the submission writer's path.
//!
//! With SQLite's automatic checkpoints, the commit that pushes the WAL past
//! 1,000 pages copies those pages into the database file and waits for two
//! fsyncs: every submission queued behind that commit waits too (the p99 of
//! `POST /v1/submissions`). Here the writer's connection has automatic
//! checkpoints off; after each of its commits it nudges a background task
//! that runs `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own,
//! concurrently with the next batches (every [`NUDGE_ROWS`] rows).
//!
//! A passive checkpoint never blocks the writer, but the WAL only starts over
//! from its beginning when a write transaction begins after a checkpoint that
//! copied *every* frame. Under sustained load the writer commits during
//! each pass, so that may never happen and the WAL would grow without bound.
//! Hence the cap: once the WAL holds more than `max_frames` pages, the
//! writer runs a passive checkpoint itself between two batches. Most frames
//! are already copied by then, so it is short, it copies everything (no
//! other writer exists), and the next transaction restarts the WAL. It does
//! the same when [`LAG_ROWS`] rows pass without a finished background pass.
//!
//! Durability is SQLite's own: the checkpoint is SQLite's, run on another
//! connection of the same process.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The default WAL cap, in pages: 16 MiB with SQLite's 4 KiB pages.
pub const DEFAULT_MAX_FRAMES: u32 = 4_000;

/// Rows committed between two nudges of the background task (about 300 WAL
/// pages of the 8-part benchmark rubric). Each pass syncs the WAL and the
/// database file: a pass after every commit made hundreds of fsyncs a second
/// under load, and with them more of the disk's occasional long flushes.
const NUDGE_ROWS: usize = 100;

/// Rows committed without a finished background pass after which the writer
/// checkpoints itself anyway: a starved or failing background task must not
/// let the WAL grow (it reports the WAL size only when a pass ends).
const LAG_ROWS: usize = 4 * NUDGE_ROWS;

/// The background checkpointer, as the writer holds it.
pub(super) struct Checkpointer {
    /// Wakes the task; holds at most one pending nudge.
    nudge: mpsc::Sender<()>,
    /// WAL size in pages as the last checkpoint found it.
    wal_frames: Arc<AtomicI64>,
    /// Background passes finished so far.
    passes: Arc<AtomicU64>,
    max_frames: i64,
    task: JoinHandle<()>,
    /// Rows committed since the task was last nudged.
    rows_since_nudge: usize,
    /// `passes` as the writer last saw it, and rows committed since then.
    seen_passes: u64,
    rows_since_pass: usize,
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: (busy, pages in the WAL, pages copied).
async fn passive_checkpoint(conn: &mut SqliteConnection) -> sqlx::Result<(i64, i64, i64)> {
    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await
}

impl Checkpointer {
    /// Starts the task; it opens its connection with `options` (reopened
    /// after an error) and ends when the checkpointer is stopped.
    pub(super) fn spawn(options: SqliteConnectOptions, max_frames: u32) -> Self {
        let (nudge, mut nudged) = mpsc::channel::<()>(1);
        let wal_frames = Arc::new(AtomicI64::new(0));
        let passes = Arc::new(AtomicU64::new(0));
        let (frames, done) = (wal_frames.clone(), passes.clone());
        let task = tokio::spawn(async move {
            let mut conn: Option<SqliteConnection> = None;
            while nudged.recv().await.is_some() {
                if conn.is_none() {
                    match options.connect().await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpointer cannot open its connection");
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let started = std::time::Instant::now();
                match passive_checkpoint(c).await {
                    Ok((_, in_wal, copied)) => {
                        frames.store(in_wal, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            in_wal,
                            copied,
                            micros = started.elapsed().as_micros() as u64,
                            "background checkpoint"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "background checkpoint failed");
                        if let Some(broken) = conn.take() {
                            let _ = broken.close().await;
                        }
                    }
                }
            }
            if let Some(c) = conn.take() {
                let _ = c.close().await;
            }
        });
        Self {
            nudge,
            wal_frames,
            passes,
            max_frames: i64::from(max_frames),
            task,
            rows_since_nudge: 0,
            seen_passes: 0,
            rows_since_pass: 0,
        }
    }

    /// Called by the writer after each commit of `rows` rows, with its
    /// connection.
    pub(super) async fn after_commit(&mut self, writer: &mut SqliteConnection, rows: usize) {
        self.rows_since_nudge += rows;
        if self.rows_since_nudge >= NUDGE_ROWS {
            self.rows_since_nudge = 0;
            // A nudge already pending covers these rows too.
            let _ = self.nudge.try_send(());
        }
        let passes = self.passes.load(Ordering::Relaxed);
        if passes != self.seen_passes {
            self.seen_passes = passes;
            self.rows_since_pass = 0;
        }
        self.rows_since_pass += rows;
        if self.wal_frames.load(Ordering::Relaxed) <= self.max_frames
            && self.rows_since_pass < LAG_ROWS
        {
            return;
        }
        let started = std::time::Instant::now();
        match passive_checkpoint(writer).await {
            // busy: the background pass holds the checkpoint lock; it will
            // report the WAL size again when done.
            Ok((busy, in_wal, copied)) => {
                if busy == 0 {
                    self.wal_frames.store(0, Ordering::Relaxed);
                    self.rows_since_pass = 0;
                }
                tracing::debug!(
                    busy,
                    in_wal,
                    copied,
                    micros = started.elapsed().as_micros() as u64,
                    "writer's checkpoint"
                );
            }
            Err(e) => tracing::warn!(error = %e, "writer's checkpoint failed"),
        }
    }

    /// Stops the task and waits until its connection is closed.
    pub(super) async fn stop(self) {
        drop(self.nudge);
        let _ = self.task.await;
    }
}
