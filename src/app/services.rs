//! Services under the supervisor: start, stop, restart.
