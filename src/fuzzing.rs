//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the
//! readers an outsider reaches that are not public API, exposed here so the
//! rest of the crate keeps them private.

use std::path::Path;

use tokio::io::AsyncRead;

/// Largest visitor request head the relay reads, bytes.
pub const MAX_HEAD: usize = crate::relay::visitor::MAX_HEAD;
/// What the relay reads at a time while looking for the end of a head, bytes.
pub const HEAD_CHUNK: usize = crate::relay::visitor::HEAD_CHUNK;
/// Largest agent upgrade request head the relay reads, bytes.
pub const MAX_UPGRADE_HEAD: usize = crate::relay::agents::MAX_UPGRADE_HEAD;

/// The tunnel a visitor's `Host` names.
pub fn tunnel_name(host: &str) -> String {
    crate::relay::visitor::tunnel_name(host)
}

/// The relay's reader of a visitor's request head: the `Host` it routes by,
/// `None` when the visitor went away, or the status it answers.
pub async fn visitor_head<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<Option<String>, u16> {
    crate::relay::visitor::read_head(r, buf).await
}

/// What the relay takes from an agent's upgrade request.
#[derive(Debug)]
pub struct Upgrade {
    /// Agent label and certificate serial nginx vouched for.
    pub who: Option<(String, String)>,
    /// `Sec-WebSocket-Key` of a WebSocket upgrade.
    pub key: Option<String>,
    /// Bytes read after the head.
    pub rest: Vec<u8>,
}

/// The relay's reader of an agent's upgrade request head, from a peer that
/// is (`trusted`) or is not the local nginx.
pub async fn agent_upgrade<R: AsyncRead + Unpin>(r: &mut R, trusted: bool) -> Result<Upgrade, Option<u16>> {
    let (upgrade, rest) = crate::relay::agents::read_upgrade(r, trusted).await?;
    Ok(Upgrade { who: upgrade.who, key: upgrade.key, rest })
}

/// A restore's unpacking of a decrypted, decompressed archive into
/// `staging`: the count of files and links, or why it was refused.
pub fn unpack_backup_tar(tar: &[u8], staging: &Path) -> Result<usize, crate::backup::BackupError> {
    crate::backup::unpack_tar(tar, staging).map(|(files, _)| files)
}
