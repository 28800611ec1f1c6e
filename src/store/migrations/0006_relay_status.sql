-- What the relay knows about connected agents; written only by `portico relay`.
CREATE TABLE relay_status (
    label            TEXT PRIMARY KEY,            -- agent label
    connected_since  INTEGER NOT NULL,
    remote_addr      TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    bytes_in         INTEGER NOT NULL DEFAULT 0,  -- visitor → agent
    bytes_out        INTEGER NOT NULL DEFAULT 0,  -- agent → visitor
    open_streams     INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
