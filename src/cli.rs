//! Command-line interface.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "portico", version, about = "Self-hosted tunnel appliance", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the panel: REST API and web UI.
    Serve,
    /// Create the data directory, database and certificates (idempotent).
    Init,
    /// Exit 0 when the local panel answers; for Docker's HEALTHCHECK.
    Healthcheck {
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        timeout: u64,
    },
    /// Print the effective settings as YAML, secrets masked.
    PrintConfig,
}
