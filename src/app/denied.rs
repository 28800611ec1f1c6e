//! Requests an HTTP surface refused, recorded in the audit log.
