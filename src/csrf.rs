//! CSRF tokens, shared by the panel's UI and authd's portal:
//! `<claim>.<hex HMAC-SHA-256(key, subject ‖ claim)>`. The claim is either
//! an expiry (unix seconds) or a random nonce; the subject is what the
//! token is bound to (the surface's own label and, in the panel, the admin
//! it was rendered for). Each surface keeps its HTTP glue — where the key
//! lives, the cookie and form field names — and its subject.

use crate::token;

/// Signs and checks CSRF tokens with one surface's key.
#[derive(Clone, Copy)]
pub struct Signer<'a>(&'a [u8]);

impl<'a> Signer<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        Signer(key)
    }

    /// A token for `subject` that expires `ttl` seconds after `now` (unix seconds).
    pub fn expiring(&self, subject: &str, now: i64, ttl: i64) -> String {
        self.sign(subject, &(now + ttl).to_string())
    }

    /// Whether `token` is an [`Signer::expiring`] token for `subject` that has
    /// not expired at `now` and reaches no further than `ttl` past it.
    pub fn verify_expiring(&self, subject: &str, token: &str, now: i64, ttl: i64) -> bool {
        self.verified(subject, token)
            .and_then(|claim| claim.parse::<i64>().ok())
            .is_some_and(|expiry| expiry > now && expiry <= now + ttl)
    }

    /// A token for `subject` with a fresh random nonce: valid as long as the key.
    pub fn with_nonce(&self, subject: &str) -> String {
        self.sign(subject, &token::random_token(16))
    }

    /// Whether `token` is a [`Signer::with_nonce`] token for `subject`.
    pub fn verify_nonce(&self, subject: &str, token: &str) -> bool {
        self.verified(subject, token).is_some()
    }

    fn sign(&self, subject: &str, claim: &str) -> String {
        format!("{claim}.{}", token::sign(self.0, &format!("{subject}{claim}")))
    }

    /// The claim of `token` when its signature for `subject` holds (checked
    /// in constant time).
    fn verified<'t>(&self, subject: &str, token: &'t str) -> Option<&'t str> {
        let (claim, sig) = token.split_once('.')?;
        token::verify_signature(self.0, &format!("{subject}{claim}"), sig).then_some(claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = 12 * 3600;
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn expiring_tokens_are_bound_to_subject_key_and_time() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signer = Signer::new(KEY);
        let token = signer.expiring("admin:1A", now, TTL);
        assert!(signer.verify_expiring("admin:1A", &token, now, TTL));
        assert!(!signer.verify_expiring("admin:2B", &token, now, TTL), "other actor");
        assert!(!Signer::new(b"another secret").verify_expiring("admin:1A", &token, now, TTL), "other install");
        assert!(!signer.verify_expiring("admin:1A", &token, now + TTL + 1, TTL), "expired");
        let (expiry, sig) = token.split_once('.').unwrap();
        let stretched = format!("{}.{sig}", expiry.parse::<i64>().unwrap() + 100);
        assert!(!signer.verify_expiring("admin:1A", &stretched, now, TTL), "expiry is signed");
        for bad in ["", ".", "x.y", "123", &format!("{expiry}.")] {
            assert!(!signer.verify_expiring("admin:1A", bad, now, TTL), "{bad}");
        }
    }

    #[test]
    fn nonce_tokens_are_bound_to_subject_and_key() {
        let signer = Signer::new(KEY);
        let token = signer.with_nonce("csrf:");
        assert!(signer.verify_nonce("csrf:", &token));
        assert_ne!(token, signer.with_nonce("csrf:"), "a fresh nonce each time");
        assert!(!signer.verify_nonce("pending:", &token), "other subject");
        assert!(!Signer::new(b"another secret").verify_nonce("csrf:", &token), "other key");
        let (nonce, sig) = token.split_once('.').unwrap();
        assert!(!signer.verify_nonce("csrf:", &format!("{nonce}x.{sig}")), "nonce is signed");
        for bad in ["", ".", "x.y", nonce, &format!("{nonce}.")] {
            assert!(!signer.verify_nonce("csrf:", bad), "{bad}");
        }
    }
}
