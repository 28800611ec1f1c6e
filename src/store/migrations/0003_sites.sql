-- Static sites: files at <data_dir>/sites/<name>/, served as <name>.<domain>.
CREATE TABLE sites (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,          -- the subdomain label
    spa_fallback   INTEGER NOT NULL DEFAULT 0,
    access         TEXT NOT NULL CHECK (access IN ('public', 'authenticated', 'restricted')),
    allowed_users  TEXT NOT NULL DEFAULT '',      -- space separated usernames (restricted)
    allowed_groups TEXT NOT NULL DEFAULT '',      -- space separated group names (restricted)
    max_bytes      INTEGER NOT NULL,              -- upload cap for the whole site
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Sites and tunnels share one namespace: both become <name>.<domain> vhosts.
CREATE TRIGGER sites_name_free_insert BEFORE INSERT ON sites
WHEN EXISTS (SELECT 1 FROM tunnels WHERE name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'name taken by a tunnel'); END;

CREATE TRIGGER sites_name_free_update BEFORE UPDATE OF name ON sites
WHEN EXISTS (SELECT 1 FROM tunnels WHERE name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'name taken by a tunnel'); END;

CREATE TRIGGER tunnels_name_free_insert BEFORE INSERT ON tunnels
WHEN EXISTS (SELECT 1 FROM sites WHERE name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'name taken by a site'); END;

CREATE TRIGGER tunnels_name_free_update BEFORE UPDATE OF name ON tunnels
WHEN EXISTS (SELECT 1 FROM sites WHERE name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'name taken by a site'); END;
