//! `portico-relay`: `portico relay` without the panel, authd and agent, for a
//! relay that runs on its own. Reads the same settings (the config file and
//! `PORTICO__*` variables) and takes no arguments.

use std::process::ExitCode;

use portico::settings::{Settings, Sources};

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: portico-relay (settings come from the config file and PORTICO__* variables)");
        return ExitCode::from(2);
    }
    let settings = match Settings::load(&Sources::from_process()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("portico-relay: {err}");
            return ExitCode::from(2);
        }
    };
    portico::logging::init(&settings.log);
    match portico::relay::runtime()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(portico::relay::serve(settings)))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portico-relay: {err:#}");
            ExitCode::FAILURE
        }
    }
}
