-- API keys: only a SHA-256 hash of each key is stored, never the key itself.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'grader', 'viewer')),
    label       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
