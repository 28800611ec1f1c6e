-- The agents' link as the relay measures it; written only by `portico relay`.
-- Round trip of the last answered WebSocket ping (microseconds) and when the
-- agent was last heard (unix seconds), for connected agents.
ALTER TABLE relay_status ADD COLUMN rtt_us INTEGER;
ALTER TABLE relay_status ADD COLUMN last_contact INTEGER;
-- The last contact of every agent that ever connected, kept after it goes
-- offline (relay_status holds connected agents only).
CREATE TABLE agent_contact (
    label        TEXT PRIMARY KEY,   -- agent label
    last_contact INTEGER NOT NULL,   -- unix seconds
    rtt_us       INTEGER             -- round trip then, microseconds
);
