-- Tunnels: one public name each, served by one agent, dialing one target.
CREATE TABLE tunnels (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,          -- the subdomain label
    agent          TEXT NOT NULL REFERENCES agents(label) ON DELETE CASCADE,
    target         TEXT NOT NULL,                 -- host:port as the agent sees it
    enabled        INTEGER NOT NULL DEFAULT 1,
    access         TEXT NOT NULL CHECK (access IN ('public', 'authenticated', 'restricted')),
    allowed_users  TEXT NOT NULL DEFAULT '',      -- space separated usernames (restricted)
    allowed_groups TEXT NOT NULL DEFAULT '',      -- space separated group names (restricted)
    description    TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX tunnels_agent ON tunnels(agent);
