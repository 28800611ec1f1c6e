//! What opening an archive costs in memory, read from its age header before
//! any key derivation runs.
//!
//! age's scrypt stanza carries the work factor `log2 N`; deriving the key
//! takes 128·r·N bytes (r = 8), all at once. An archive made elsewhere with a
//! high factor would have the kernel kill a restore inside the 512 MB
//! appliance, so such archives are refused up front with the figure.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::{BackupError, io_err};

/// Highest work factor a restore accepts anywhere: 2^18, 256 MiB.
pub const MAX_WORK_FACTOR: u8 = 18;
/// The age header's first line.
const MAGIC: &str = "age-encryption.org/v1";
/// The header fits in this many bytes (one scrypt stanza).
const HEADER_BYTES: u64 = 4096;

/// Memory scrypt needs for work factor `log_n`, MiB.
pub fn scrypt_mib(log_n: u8) -> u64 {
    (128u64 * 8) << log_n >> 20
}

/// The highest work factor whose memory fits `available` bytes (when
/// known), and never above [`MAX_WORK_FACTOR`].
pub fn max_work_factor(available: Option<u64>) -> u8 {
    let Some(available) = available else { return MAX_WORK_FACTOR };
    let mut log_n = MAX_WORK_FACTOR;
    while log_n > 1 && (128u64 * 8) << log_n > available {
        log_n -= 1;
    }
    log_n
}

/// The scrypt work factor of the archive at `path`.
pub fn work_factor(path: &Path) -> Result<u8, BackupError> {
    let file = File::open(path).map_err(io_err(format!("while opening {}", path.display())))?;
    let mut head = Vec::new();
    file.take(HEADER_BYTES).read_to_end(&mut head).map_err(io_err(format!("while reading {}", path.display())))?;
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split('\n');
    if lines.next() != Some(MAGIC) {
        return Err(BackupError::Corrupt("not an age-encrypted archive".into()));
    }
    for line in lines.take_while(|l| !l.starts_with("---")) {
        if let Some(args) = line.strip_prefix("-> scrypt ") {
            let log_n = args.split(' ').nth(1).and_then(|n| n.parse::<u8>().ok());
            return log_n
                .filter(|n| (1..64).contains(n))
                .ok_or_else(|| BackupError::Corrupt("the archive's scrypt stanza has no valid work factor".into()));
        }
    }
    Err(BackupError::Corrupt("not encrypted with a passphrase".into()))
}

/// Refuses the archive at `path` when its work factor needs more memory
/// than this system can give; returns the factor otherwise.
pub fn check(path: &Path, available: Option<u64>) -> Result<u8, BackupError> {
    let log_n = work_factor(path)?;
    let max = max_work_factor(available);
    if log_n > max {
        return Err(BackupError::TooCostly { log_n, needs_mib: scrypt_mib(log_n), limit_mib: scrypt_mib(max) });
    }
    Ok(log_n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_available_memory() {
        assert_eq!(scrypt_mib(16), 64);
        assert_eq!(scrypt_mib(18), 256);
        let mib = |n: u64| Some(n << 20);
        let cases = [(None, 18), (mib(4096), 18), (mib(256), 18), (mib(255), 17), (mib(100), 16), (mib(64), 16)];
        for (available, want) in cases {
            assert_eq!(max_work_factor(available), want, "{available:?}");
        }
    }

    #[test]
    fn headers_are_read_without_decrypting() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ok = write("ok", "age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 16\nAAAA\n--- mac\nbody");
        assert_eq!(check(&ok, None).unwrap(), 16);
        let big = write("big", "age-encryption.org/v1\n-> scrypt c2FsdA 22\nAAAA\n--- mac\n");
        let err = check(&big, None).unwrap_err();
        assert!(matches!(err, BackupError::TooCostly { log_n: 22, needs_mib: 4096, limit_mib: 256 }), "{err}");
        assert!(err.to_string().contains("4096 MiB"), "{err}");
        let err = check(&ok, Some(32 << 20)).unwrap_err();
        assert!(err.to_string().contains("64 MiB"), "{err}");
        let x25519 = write("x", "age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- mac\n");
        assert!(matches!(check(&x25519, None), Err(BackupError::Corrupt(m)) if m.contains("passphrase")));
        assert!(matches!(check(&write("g", "garbage"), None), Err(BackupError::Corrupt(_))));
    }
}
