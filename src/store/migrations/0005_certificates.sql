-- Certificates of the names Portico serves: where each came from, its
-- validity, and the state of its renewal. The files live under
-- <data_dir>/acme/certs/<name>/; these rows only describe them.
CREATE TABLE certificates (
    name         TEXT PRIMARY KEY,                  -- fqdn, `*.d` for a wildcard
    source       TEXT NOT NULL CHECK (source IN ('acme', 'manual')),
    issuer       TEXT NOT NULL,
    not_before   INTEGER NOT NULL,                  -- unix seconds
    not_after    INTEGER NOT NULL,                  -- unix seconds
    installed_at INTEGER NOT NULL
);

-- Names whose last automatic issuance or renewal failed; the row goes
-- when an attempt succeeds.
CREATE TABLE certificate_failures (
    name       TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,                    -- consecutive failed attempts
    last_error TEXT NOT NULL,                       -- actionable message
    failed_at  INTEGER NOT NULL,
    retry_at   INTEGER NOT NULL                     -- no automatic attempt before this
);

-- One row per run of the renewal check.
CREATE TABLE acme_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    result      TEXT NOT NULL CHECK (result IN ('ok', 'failed', 'skipped')),
    renewed     INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    message     TEXT NOT NULL
);
