//! Invitations: create and revoke.
