//! Agents: enrollment, capabilities, revocation and removal.
