-- The question bank shipped in bank/: which stored rubric each bank file is,
-- and the hash of the file it was loaded from (a changed file adds a version).
CREATE TABLE bank_entries (
    slug          TEXT PRIMARY KEY NOT NULL,
    rubric_id     TEXT NOT NULL REFERENCES rubrics (id),
    content_hash  TEXT NOT NULL,
    loaded_at     TEXT NOT NULL
);
