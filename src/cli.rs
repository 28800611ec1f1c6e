//! Command-line interface.

use std::path::PathBuf;

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
    /// Check what an operator would debug by hand: DNS, ports, clock,
    /// certificates, ACME, the agents' WebSocket path, agents, memory, disk,
    /// secret file modes and every public name. Exits 1 on a problem.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an encrypted backup of the data directory to the backup directory.
    Backup {
        /// File holding the passphrase; else `$PORTICO_BACKUP_PASSPHRASE`, else `backup.passphrase`.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore a backup archive into the data directory. Run it with the
    /// services stopped (e.g. `docker run --rm -v …:/data … portico restore`).
    Restore {
        /// The `.tar.zst.age` archive.
        archive: PathBuf,
        /// Replace the contents of a data directory already in use.
        #[arg(long)]
        force: bool,
        /// File holding the passphrase; else `$PORTICO_BACKUP_PASSPHRASE`, else `backup.passphrase`.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// The way back when the hardware key of a hardware-bound admin
    /// certificate is lost: revokes that certificate and issues an
    /// exportable one (`admin.p12` and its password). Runs only where the
    /// data directory is, as its owner (in the container:
    /// `docker exec <container> s6-setuidgid portico portico recover-admin`).
    RecoverAdmin,
    /// nginx configuration commands.
    #[command(subcommand)]
    Nginx(NginxCommand),
    /// Run forward auth for nginx and the visitor login portal.
    Authd,
    /// Run the tunnel relay: agents on `relay.agents_listen`, visitors on
    /// `relay.visitors_listen` (the addresses nginx is rendered with).
    Relay,
    /// The home-side agent: enroll, run, status.
    Agent {
        /// Directory holding the agent's key, certificates and state (default `~/.config/portico`).
        #[arg(long, global = true)]
        config_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The Home Assistant add-on's agent mode: enroll once from the `agent.*`
    /// settings, run the agent, serve its status page on the ingress port.
    AddonAgent,
}

/// `portico-agent`: the agent alone, for home machines. Same subcommands as
/// `portico agent`; a quarter of the full binary's size, which is most of an
/// idle agent's resident memory (the kernel maps the binary's code in 64 KiB
/// runs around every page the agent touches).
#[derive(Debug, Parser)]
#[command(name = "portico-agent", version, about = "Portico agent: serves this machine's tunnels")]
pub struct AgentCli {
    /// Directory holding the agent's key, certificates and state (default `~/.config/portico`).
    #[arg(long, global = true)]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Generate a key, send a CSR with a one-time token, store the certificate.
    Enroll {
        /// `https://panel.<domain>` or `https://<ip>:9292`.
        #[arg(long)]
        panel: String,
        /// The one-time enrollment token from the panel. Base64url, so it may
        /// begin with `-`: taken as the value, never as another flag.
        #[arg(long, allow_hyphen_values = true)]
        token: String,
        /// SHA-256 of the panel's certificate; required when the panel is reached by IP.
        #[arg(long)]
        fingerprint: Option<String>,
        /// Relay URL; derived from `https://panel.<domain>` when omitted.
        #[arg(long)]
        relay: Option<String>,
    },
    /// Connect to the relay and serve this agent's tunnels; reconnects by itself.
    Run {
        /// Override the relay URL from `agent.json`.
        #[arg(long)]
        relay: Option<String>,
    },
    /// Print the connection state and tunnels of the running agent.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum NginxCommand {
    /// Write the live nginx tree from the store (no reload; run before nginx starts).
    Render,
    /// `nginx -t` on the live tree, and whether it matches the store.
    Check,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enrollment_token_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "portico",
            "agent",
            "enroll",
            "--panel",
            "https://panel.example.test",
            "--token",
            "-jX4_q",
            "--relay",
            "wss://tunnel.example.test/",
        ])
        .expect("a token beginning with '-' parses");
        let Command::Agent { command: AgentCommand::Enroll { token, relay, .. }, .. } = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(token, "-jX4_q");
        assert_eq!(relay.as_deref(), Some("wss://tunnel.example.test/"));
        let standalone =
            AgentCli::try_parse_from(["portico-agent", "enroll", "--panel", "https://p", "--token", "--x"])
                .expect("the standalone agent parses it too");
        assert!(matches!(standalone.command, AgentCommand::Enroll { token, .. } if token == "--x"));
    }
}
