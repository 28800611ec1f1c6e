//! Backups: create, and the steps of a restore confirmed in the panel.
