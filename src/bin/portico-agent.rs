//! `portico-agent`: `portico agent` without the panel, relay and authd.
//! Logs at `PORTICO__LOG__LEVEL` (default `info`), as text, to stderr.

use std::process::ExitCode;

use clap::Parser;

use portico::cli::AgentCli;
use portico::settings::LogSettings;

fn main() -> ExitCode {
    let cli = AgentCli::parse();
    let level = std::env::var("PORTICO__LOG__LEVEL").unwrap_or_else(|_| "info".into());
    portico::logging::init(&LogSettings { level, ..LogSettings::default() });
    match portico::agent::command(cli.config_dir, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portico-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}
