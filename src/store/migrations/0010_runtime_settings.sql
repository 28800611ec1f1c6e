-- Runtime settings changed in the panel. A row wins over the built-in
-- default, never over a key that config.yaml or the environment sets.
CREATE TABLE runtime_settings (
    key        TEXT PRIMARY KEY,   -- the API's field name, e.g. sessionHours
    value      TEXT NOT NULL,      -- JSON
    updated_at INTEGER NOT NULL,   -- unix seconds
    updated_by TEXT NOT NULL       -- actor
);
