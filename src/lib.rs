//! Portico: a self-hosted tunnel appliance.
//!
//! `main.rs` only parses the command line and dispatches; every role lives in
//! its own module here.
#![forbid(unsafe_code)]

pub mod pki;
pub mod nginx;
