-- Settings and onboarding state: small key/value rows owned by the panel.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- API keys: the secret is shown once; only its bcrypt hash is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,          -- short public lookup id
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    scopes       TEXT NOT NULL,             -- space separated
    created_at   INTEGER NOT NULL,          -- unix seconds
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Agents and the capabilities their certificates carry.
CREATE TABLE agents (
    label         TEXT PRIMARY KEY,
    capabilities  TEXT NOT NULL,            -- space separated
    allowed_sites TEXT NOT NULL DEFAULT '', -- space separated site names
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

-- Every certificate the Portico CA issued to a client (admin or agent).
CREATE TABLE client_certs (
    serial      TEXT PRIMARY KEY,           -- normalized uppercase hex
    kind        TEXT NOT NULL CHECK (kind IN ('admin', 'agent')),
    label       TEXT,                       -- agent label; NULL for admin
    fingerprint TEXT NOT NULL,
    not_after   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    FOREIGN KEY (label) REFERENCES agents(label) ON DELETE CASCADE
);
CREATE INDEX client_certs_label ON client_certs(label);

-- One-time agent enrollment tokens; only a SHA-256 of the token is kept.
CREATE TABLE enrollment_tokens (
    token_hash   TEXT PRIMARY KEY,
    label        TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,               -- unix milliseconds
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    details TEXT                            -- JSON
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor, at);
CREATE INDEX audit_log_action ON audit_log(action, at);
