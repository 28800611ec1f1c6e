-- Visitor users, groups, sessions and invitations (owned by the users domain;
-- authd reads users and writes sessions).
CREATE TABLE users (
    username       TEXT PRIMARY KEY,              -- [a-z0-9._-]{1,32}
    display_name   TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,                 -- bcrypt
    totp_secret    TEXT,                          -- base32; NULL until enrolled
    totp_last_step INTEGER NOT NULL DEFAULT 0,    -- last accepted 30 s step (replay guard)
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,              -- unix seconds
    updated_at     INTEGER NOT NULL
);

CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    PRIMARY KEY (group_name, username)
);
CREATE INDEX group_members_user ON group_members(username);

-- Visitor sessions: only a SHA-256 of the 256-bit cookie value is kept.
CREATE TABLE visitor_sessions (
    id_hash      TEXT PRIMARY KEY,
    public_id    TEXT NOT NULL UNIQUE,            -- short id for listing/revoking
    username     TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,                -- absolute expiry
    remember     INTEGER NOT NULL DEFAULT 0,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX visitor_sessions_user ON visitor_sessions(username);

-- Invitations: only a SHA-256 of the 256-bit token is kept.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    username    TEXT NOT NULL,
    email       TEXT NOT NULL DEFAULT '',
    groups      TEXT NOT NULL DEFAULT '',         -- space separated
    totp_secret TEXT NOT NULL,                    -- offered at enrollment
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
