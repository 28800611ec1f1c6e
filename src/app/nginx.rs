//! nginx snapshots: rolling back to an earlier configuration.
