use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use portico::cli::{Cli, Command, NginxCommand};
use portico::settings::{Settings, Sources};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&Sources::from_process()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("portico: {err}");
            return ExitCode::from(2);
        }
    };
    portico::logging::init(&settings.log);
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portico: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => actix_web::rt::System::new().block_on(portico::panel::serve(settings)),
        Command::Init => {
            let report = portico::init::run(&settings)?;
            print!("{}", portico::init::describe(&report, &settings.data_dir));
            Ok(())
        }
        Command::Healthcheck { timeout } => portico::healthcheck::run(&settings, Duration::from_secs(timeout)),
        Command::Doctor { json } => portico::doctor::command(&settings, json),
        Command::PrintConfig => {
            print!("{}", settings.to_yaml());
            Ok(())
        }
        Command::Backup { passphrase_file } => {
            let passphrase = portico::backup::passphrase_from(passphrase_file.as_deref(), &settings)?;
            let info = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(portico::backup::create_from_cli(&settings, &passphrase))?;
            println!("{}", settings.backup_dir().join(format!("{}{}", info.id, portico::backup::SUFFIX)).display());
            Ok(())
        }
        Command::Restore { archive, force, passphrase_file } => {
            let passphrase = portico::backup::passphrase_from(passphrase_file.as_deref(), &settings)?;
            let restored = portico::backup::restore(&archive, &settings.data_dir, &passphrase, force)?;
            println!(
                "restored {} files from a backup taken {} into {}",
                restored.files,
                restored.created_at,
                settings.data_dir.display()
            );
            Ok(())
        }
        Command::RecoverAdmin => {
            print!("{}", portico::init::recover_admin(&settings)?);
            Ok(())
        }
        Command::Authd => actix_web::rt::System::new().block_on(portico::authd::serve(settings)),
        Command::Relay => portico::relay::runtime()?.block_on(portico::relay::serve(settings)),
        Command::Agent { config_dir, command } => portico::agent::command(config_dir, command),
        Command::AddonAgent => portico::agent::addon::command(settings),
        Command::Nginx(NginxCommand::Render) => {
            print!("{}", portico::nginx::state::render_command(&settings)?);
            Ok(())
        }
        Command::Nginx(NginxCommand::Check) => {
            print!("{}", portico::nginx::state::check_command(&settings)?);
            Ok(())
        }
    }
}
