//! API keys: create and revoke.
