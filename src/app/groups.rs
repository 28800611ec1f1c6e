//! Visitor groups and their members.
