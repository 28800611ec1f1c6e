//! How the applier talks to nginx: validate a tree, reload the running
//! server, and check that it answers afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Validates and reloads nginx. The real one runs the binary; tests may
/// substitute their own.
pub trait Reloader: Send + Sync {
    /// Checks the tree whose `nginx.conf` is in `conf_dir`; on failure returns
    /// nginx's own error lines.
    fn test(&self, conf_dir: &Path) -> Result<(), String>;
    /// Makes the running nginx load the live tree.
    fn reload(&self) -> Result<(), String>;
}

/// Checks after a reload that the vhosts answer. `nginx -s reload` returns
/// once the signal is sent, so a probe should poll with a deadline.
pub trait Probe: Send + Sync {
    /// `Err` carries a human-readable reason.
    fn check(&self) -> Result<(), String>;
}

impl<F: Fn() -> Result<(), String> + Send + Sync> Probe for F {
    fn check(&self) -> Result<(), String> {
        self()
    }
}

/// The installed nginx binary.
#[derive(Debug, Clone)]
pub struct NginxBinary {
    /// Path of the binary, e.g. `/usr/sbin/nginx`.
    pub bin: PathBuf,
    /// Prefix passed as `-p` (relative paths in the config resolve against it).
    pub prefix: PathBuf,
    /// The live tree's directory; `reload` signals the master found through
    /// the pid file named in its `nginx.conf`.
    pub live_dir: PathBuf,
    /// Replaces `nginx -s reload` when set, e.g. `["s6-svc", "-h", "/run/service/nginx"]`.
    pub reload_command: Option<Vec<String>>,
}

impl NginxBinary {
    /// `nginx -t` / `nginx -s reload` with the given binary, prefix and live tree.
    pub fn new(bin: impl Into<PathBuf>, prefix: impl Into<PathBuf>, live_dir: impl Into<PathBuf>) -> Self {
        NginxBinary { bin: bin.into(), prefix: prefix.into(), live_dir: live_dir.into(), reload_command: None }
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if text.is_empty() {
        text = format!("{:?} exited with {}", cmd.get_program(), out.status);
    }
    Err(text)
}

impl Reloader for NginxBinary {
    fn test(&self, conf_dir: &Path) -> Result<(), String> {
        run(Command::new(&self.bin)
            .args(["-t", "-q", "-p"])
            .arg(&self.prefix)
            .arg("-c")
            .arg(conf_dir.join("nginx.conf")))
    }

    fn reload(&self) -> Result<(), String> {
        match &self.reload_command {
            Some(argv) if !argv.is_empty() => run(Command::new(&argv[0]).args(&argv[1..])),
            _ => run(Command::new(&self.bin)
                .arg("-p")
                .arg(&self.prefix)
                .arg("-c")
                .arg(self.live_dir.join("nginx.conf"))
                .args(["-s", "reload"])),
        }
    }
}
