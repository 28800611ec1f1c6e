//! Random secrets and their digests.

use base64::Engine;
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes as unpadded base64url (URL- and header-safe).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// SHA-256 as lowercase hex: how one-time tokens are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A 256-bit key for one `purpose`, derived from a base secret with
/// HMAC-SHA-256, so one install secret serves independent uses.
pub fn derive_key(base: &[u8], purpose: &str) -> [u8; 32] {
    sign_raw(base, purpose.as_bytes())
}

fn sign_raw(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA-256 of `message` as hex: signs cookies and CSRF tokens.
pub fn sign(key: &[u8], message: &str) -> String {
    hex::encode(sign_raw(key, message.as_bytes()))
}

/// Checks a [`sign`] signature in constant time.
pub fn verify_signature(key: &[u8], message: &str, signature: &str) -> bool {
    constant_time_eq(sign(key, message).as_bytes(), signature.as_bytes())
}

/// Parses a SHA-256 fingerprint: 64 hex digits, `:` separators and a
/// `sha256:` prefix allowed.
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s.strip_prefix("sha256:").or_else(|| s.strip_prefix("SHA256:")).unwrap_or(s);
    let hexed: String = s.chars().filter(|c| *c != ':').collect();
    hex::decode(hexed).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_requested_entropy() {
        assert_eq!(random_token(32).len(), 43);
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_hex(8).len(), 16);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
