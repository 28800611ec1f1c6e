//! Portico: a self-hosted tunnel appliance.
//!
//! `main.rs` only parses the command line and dispatches; every role lives in
//! its own module here.
#![forbid(unsafe_code)]

pub mod acme;
pub mod agent;
pub mod agents;
pub mod apikeys;
pub mod app;
pub mod assets;
pub mod audit;
pub mod authd;
pub mod backup;
pub mod cli;
pub mod csrf;
pub mod doctor;
pub mod downloads;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod healthcheck;
pub mod http;
pub mod identity;
pub mod init;
pub mod logging;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod nginx;
pub mod onboarding;
pub mod panel;
pub mod pipe;
pub mod pki;
pub mod probe;
pub mod protocol;
pub mod recovery;
pub mod redact;
pub mod relay;
pub mod runtime_settings;
pub mod schedule;
pub mod services;
pub mod settings;
pub mod sites;
pub mod store;
pub mod supervisor;
pub mod sysstats;
pub mod tasks;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;
pub mod totp;
pub mod tunnels;
pub mod two_factor;
pub mod users;
pub mod wording;
