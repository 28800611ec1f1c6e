//! Tunnels: create, change and delete, each proved by the probe.
