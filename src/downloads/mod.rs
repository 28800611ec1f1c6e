//! The agent as the panel serves it at `/download/`: the binaries this image
//! carries (fixed names in `panel.downloads_dir`), their SHA-256, and
//! `install.sh` rendered with this panel's address and pins.
//!
//! No name from a request ever reaches the filesystem: a request names one
//! of [`ARTIFACTS`] or nothing.

mod address;
mod install;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub use address::{PanelAddress, panel_address};
pub use install::{enroll_command, install_line, install_script, launchd_plist, systemd_unit};

/// Every agent binary the panel may serve, `portico-<os>-<arch>`; only those
/// present in the downloads directory are listed and served.
pub const ARTIFACTS: [&str; 4] =
    ["portico-linux-amd64", "portico-linux-arm64", "portico-darwin-amd64", "portico-darwin-arm64"];

/// Where the installer puts things unless told otherwise (also what the
/// pages show for running the agent by hand).
pub const DEFAULT_NAME: &str = "portico-agent";
pub const DEFAULT_PREFIX: &str = "/usr/local";

/// The config directory the installer gives an installation named `name`.
pub fn config_dir(name: &str) -> String {
    format!("/var/lib/{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("no such download")]
    NotFound,
    #[error("while reading {name}: {source}")]
    Io { name: &'static str, source: io::Error },
}

/// One served binary.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub name: &'static str,
    /// Lowercase hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

impl Artifact {
    /// The `sha256sum` line: `<hex>  <name>`.
    pub fn checksum_line(&self) -> String {
        format!("{}  {}\n", self.sha256, self.name)
    }
}

/// What a file looked like when it was hashed.
#[derive(Clone, Copy, PartialEq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

/// The downloads directory with a checksum cache (a binary is hashed once
/// per change, not once per request).
pub struct Downloads {
    dir: PathBuf,
    sums: Mutex<HashMap<&'static str, (Stamp, String)>>,
}

impl Downloads {
    pub fn new(dir: PathBuf) -> Downloads {
        Downloads { dir, sums: Mutex::default() }
    }

    /// The fixed name a request asked for, if it is one.
    pub fn artifact_name(name: &str) -> Option<&'static str> {
        ARTIFACTS.iter().find(|a| **a == name).copied()
    }

    /// Opens a binary for serving; the handle is positioned at its start and
    /// the checksum describes exactly the bytes behind it. Blocking.
    pub fn open(&self, name: &'static str) -> Result<(File, Artifact), DownloadError> {
        let io = |source| DownloadError::Io { name, source };
        let mut file = match File::open(self.dir.join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(DownloadError::NotFound),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(DownloadError::NotFound);
        }
        let stamp = Stamp { size: meta.len(), modified: meta.modified().ok() };
        let cached = self.sums.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        let sha256 = match cached {
            Some((s, sum)) if s == stamp => sum,
            _ => {
                let sum = hash(&mut file).map_err(io)?;
                file.rewind().map_err(io)?;
                self.sums.lock().unwrap_or_else(|p| p.into_inner()).insert(name, (stamp, sum.clone()));
                sum
            }
        };
        Ok((file, Artifact { name, sha256, size: stamp.size }))
    }

    /// Every binary present, in [`ARTIFACTS`] order. Blocking.
    pub fn list(&self) -> Result<Vec<Artifact>, DownloadError> {
        let mut out = Vec::new();
        for name in ARTIFACTS {
            match self.open(name) {
                Ok((_, a)) => out.push(a),
                Err(DownloadError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn hash(file: &mut File) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fixed_names_are_artifacts() {
        assert_eq!(Downloads::artifact_name("portico-linux-amd64"), Some("portico-linux-amd64"));
        for bad in
            ["", "portico", "../portico-linux-amd64", "portico-linux-amd64/", "install.sh", "PORTICO-LINUX-AMD64"]
        {
            assert_eq!(Downloads::artifact_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_what_exists_and_rehashes_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = Downloads::new(dir.path().to_path_buf());
        assert!(d.list().unwrap().is_empty());
        std::fs::write(dir.path().join("portico-linux-arm64"), b"one").unwrap();
        std::fs::create_dir(dir.path().join("portico-linux-amd64")).unwrap();
        let listed = d.list().unwrap();
        assert_eq!(listed.len(), 1, "a directory is not a download: {listed:?}");
        assert_eq!(listed[0].sha256, hex::encode(Sha256::digest(b"one")));
        std::fs::write(dir.path().join("portico-linux-arm64"), b"other").unwrap();
        let (_, a) = d.open("portico-linux-arm64").unwrap();
        assert_eq!((a.sha256, a.size), (hex::encode(Sha256::digest(b"other")), 5));
    }
}
