-- One-time recovery codes of the panel's second factor. Only a SHA-256 of
-- each code is kept; a used code is deleted. Replaced as a set (confirm,
-- regenerate) and emptied when two-factor login is turned off.
CREATE TABLE panel_recovery_codes (
    id         INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the normalized code
    created_at INTEGER NOT NULL        -- unix seconds
);
