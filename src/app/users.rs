//! Visitor users: create, change, reset TOTP, sessions, delete.
