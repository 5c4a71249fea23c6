//! API keys: generated here, stored as SHA-256 hashes with a role.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use super::{Store, now};

/// What a key may do. `admin` manages keys and everything else; `instructor`
/// writes rubrics and reads everything; `grader` (an LMS integration) submits
/// answers and reads its own results; `viewer` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Instructor,
    Grader,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Instructor => "instructor",
            Role::Grader => "grader",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "instructor" => Ok(Role::Instructor),
            "grader" => Ok(Role::Grader),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role `{other}` (expected admin, instructor, grader or viewer)"
            )),
        }
    }
}

/// A stored key, as listed (never with the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Key id.
    pub id: String,
    /// First characters of the key, to recognise it.
    pub prefix: String,
    pub role: Role,
    /// Free label given at creation.
    pub label: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 revocation time, if revoked.
    pub revoked_at: Option<String>,
}

/// A freshly created key: the only moment the clear key exists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The key to send as `Authorization: Bearer <key>`; shown once, stored hashed.
    pub key: String,
}

/// The identity behind a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
}

/// SHA-256 of the key, hex-encoded. Keys carry 256 random bits, so a fast hash
/// is enough: there is nothing to brute-force.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Most verified keys kept in memory.
const KEY_CACHE_CAPACITY: usize = 1024;

/// How long a verified key is trusted without asking the database again.
/// Revocations made through this process take effect at once (the cache is
/// invalidated); this bounds how long a revocation written to the database
/// by another process (another server on the same file) goes unnoticed.
const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// Keys verified recently, by the SHA-256 of the clear key, so that a
/// request does not cost a database query to authenticate. Only valid,
/// unrevoked keys are cached; revoking a key removes it.
#[derive(Debug, Default)]
pub(super) struct KeyCache {
    inner: Mutex<KeyCacheInner>,
}

#[derive(Debug, Default)]
struct KeyCacheInner {
    entries: HashMap<[u8; 32], (Principal, Instant)>,
    /// Bumped by every invalidation: a lookup that started before one must
    /// not fill the cache with what it read.
    generation: u64,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheInner> {
        // The data stays consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The principal of a key verified less than [`KEY_CACHE_TTL`] ago,
    /// else the current generation (to pass to [`KeyCache::put`]).
    fn get(&self, hash: &[u8; 32]) -> Result<Principal, u64> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((principal, at)) if at.elapsed() < KEY_CACHE_TTL => Ok(principal.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Caches a key read from the database, unless an invalidation happened
    /// since `generation` was read (the read may predate a revocation).
    fn put(&self, hash: [u8; 32], principal: Principal, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= KEY_CACHE_CAPACITY && !inner.entries.contains_key(&hash) {
            inner
                .entries
                .retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            if inner.entries.len() >= KEY_CACHE_CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(hash, (principal, Instant::now()));
    }

    /// Forgets the key with id `key_id`.
    fn invalidate(&self, key_id: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|_, (p, _)| p.key_id != key_id);
    }
}

fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("dlg_{}", hex::encode(bytes))
}

fn info_from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<KeyInfo> {
    let role: String = row.try_get("role")?;
    Ok(KeyInfo {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        role: role.parse().map_err(anyhow::Error::msg)?,
        label: row.try_get("label")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates a key with `role`; returns it in clear once.
    #[tracing::instrument(skip(self))]
    pub async fn create_key(&self, role: Role, label: &str) -> anyhow::Result<NewKey> {
        let key = generate_key();
        let info = KeyInfo {
            id: uuid::Uuid::now_v7().to_string(),
            prefix: key.chars().take(10).collect(),
            role,
            label: label.to_owned(),
            created_at: now(),
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, prefix, key_hash, role, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.id)
        .bind(&info.prefix)
        .bind(hash_key(&key))
        .bind(role.as_str())
        .bind(&info.label)
        .bind(&info.created_at)
        .execute(self.pool())
        .await
        .context("cannot store API key")?;
        Ok(NewKey { info, key })
    }

    /// Creates an admin key when the database has no key at all (first start).
    /// Returns the key in clear only when it was created now.
    #[tracing::instrument(skip(self))]
    pub async fn bootstrap_admin_key(&self) -> anyhow::Result<Option<NewKey>> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(self.pool())
            .await
            .context("cannot count API keys")?;
        if count > 0 {
            return Ok(None);
        }
        self.create_key(Role::Admin, "bootstrap admin key")
            .await
            .map(Some)
    }

    /// The principal of a clear key, if the key exists and is not revoked.
    /// Valid keys are cached in memory (see [`KeyCache`]); unknown keys
    /// always cost a query.
    pub async fn authenticate(&self, key: &str) -> anyhow::Result<Option<Principal>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let generation = match self.keys.get(&digest) {
            Ok(principal) => return Ok(Some(principal)),
            Err(generation) => generation,
        };
        let row =
            sqlx::query("SELECT id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(hex::encode(digest))
                .fetch_optional(self.pool())
                .await
                .context("cannot look up API key")?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        let principal = Principal {
            key_id: row.try_get("id")?,
            role: role.parse().map_err(anyhow::Error::msg)?,
        };
        self.keys.put(digest, principal.clone(), generation);
        Ok(Some(principal))
    }

    /// Every key, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_keys(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, prefix, role, label, created_at, revoked_at FROM api_keys \
             ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(self.pool())
        .await
        .context("cannot list API keys")?;
        rows.iter().map(info_from_row).collect()
    }

    /// Revokes a key; false when no such (unrevoked) key exists. The key
    /// stops authenticating as soon as this returns.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_key(&self, id: &str) -> anyhow::Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(id)
                .execute(self.pool())
                .await
                .context("cannot revoke API key");
        // Invalidate even when the update failed: it may have been applied.
        self.keys.invalidate(id);
        Ok(done?.rows_affected() == 1)
    }
}
