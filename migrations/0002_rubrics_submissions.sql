-- Rubrics are versioned and immutable once stored: editing adds a version.
CREATE TABLE rubrics (
    id              TEXT PRIMARY KEY NOT NULL,
    title           TEXT NOT NULL,
    latest_version  INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);

CREATE TABLE rubric_versions (
    rubric_id   TEXT NOT NULL REFERENCES rubrics (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    -- the rubric as the author sent it (JSON)
    body        TEXT NOT NULL,
    -- the rubric with every computed key resolved (JSON)
    resolved    TEXT NOT NULL,
    -- audit warnings produced when it was stored (JSON array)
    warnings    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (rubric_id, version)
);

-- One row per graded submission; score/status/result are its current grade.
CREATE TABLE submissions (
    id               TEXT PRIMARY KEY NOT NULL,
    rubric_id        TEXT NOT NULL REFERENCES rubrics (id),
    rubric_version   INTEGER NOT NULL,
    learner_id       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    variant_seed     INTEGER,
    answers          TEXT NOT NULL,
    result           TEXT NOT NULL,
    score            REAL NOT NULL,
    max_score        REAL NOT NULL,
    status           TEXT NOT NULL,
    submitted_by     TEXT NOT NULL,
    idempotency_key  TEXT,
    request_hash     TEXT,
    created_at       TEXT NOT NULL,
    graded_at        TEXT NOT NULL
);

CREATE UNIQUE INDEX submissions_idempotency ON submissions (submitted_by, idempotency_key);
CREATE INDEX submissions_rubric_learner ON submissions (rubric_id, learner_id, attempt);
CREATE INDEX submissions_learner ON submissions (learner_id);
CREATE INDEX submissions_submitter ON submissions (submitted_by, id);

-- Audit log of every grade a submission was given: the first grade and each
-- regrade (who, when, old and new score and rubric version).
CREATE TABLE grade_changes (
    id              TEXT PRIMARY KEY NOT NULL,
    submission_id   TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    reason          TEXT NOT NULL,
    old_version     INTEGER,
    new_version     INTEGER NOT NULL,
    old_score       REAL,
    new_score       REAL NOT NULL,
    old_result      TEXT,
    actor           TEXT NOT NULL,
    changed_at      TEXT NOT NULL
);

CREATE INDEX grade_changes_submission ON grade_changes (submission_id, changed_at);
