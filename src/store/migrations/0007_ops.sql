-- Counters that `portico authd` (and other processes) publish for /metrics:
-- each process replaces its own rows every few seconds; values count since
-- that process started (Prometheus handles the reset on restart).
CREATE TABLE process_counters (
    process    TEXT NOT NULL,             -- authd, relay, …
    name       TEXT NOT NULL,             -- metric name without prefix
    labels     TEXT NOT NULL DEFAULT '',  -- `key=value` pairs, comma separated
    value      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (process, name, labels)
);
