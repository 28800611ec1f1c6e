//! CSRF tokens for the UI's forms. The admin's browser presents its client
//! certificate (or the Home Assistant session) on any cross-site post, so
//! every form carries a token that a foreign page cannot compute:
//! `<expiry unix seconds>.<hex HMAC-SHA256(secret, actor | expiry)>`.
//! The secret is random per install, kept in the settings table
//! (`ui.csrf_secret`), so tokens survive restarts and work in every worker.
//! Tokens are bound to the caller's identity and expire after [`TOKEN_TTL`].

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::store::{Store, StoreError};

const SECRET_KEY: &str = "ui.csrf_secret";
/// How long a rendered form stays usable, seconds.
pub const TOKEN_TTL: i64 = 12 * 3600;
/// Name of the hidden form field.
pub const FIELD: &str = "_csrf";

type HmacSha256 = hmac::Hmac<Sha256>;

/// The per-install secret, loaded once per worker.
#[derive(Default)]
pub struct CsrfKey {
    secret: OnceCell<Vec<u8>>,
}

/// A loaded key that signs and checks tokens.
pub struct Signer<'a>(&'a [u8]);

impl CsrfKey {
    /// Loads (creating on first use) the secret from the store.
    pub async fn get(&self, store: &Store) -> Result<Signer<'_>, StoreError> {
        let secret = self
            .secret
            .get_or_try_init(|| async {
                let hex_secret = store.setting_or_insert(SECRET_KEY, crate::token::random_hex(32)).await?;
                hex::decode(hex_secret.trim()).map_err(|_| StoreError::Conflict("corrupt ui.csrf_secret".into()))
            })
            .await?;
        Ok(Signer(secret))
    }
}

impl Signer<'_> {
    fn mac(&self, actor: &str, expiry: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.0).expect("HMAC takes any key length");
        mac.update(b"portico-ui-csrf|");
        mac.update(actor.as_bytes());
        mac.update(b"|");
        mac.update(expiry.to_string().as_bytes());
        mac
    }

    /// A token for `actor`, valid for [`TOKEN_TTL`] from `now`.
    pub fn token(&self, actor: &str, now: OffsetDateTime) -> String {
        let expiry = now.unix_timestamp() + TOKEN_TTL;
        format!("{expiry}.{}", hex::encode(self.mac(actor, expiry).finalize().into_bytes()))
    }

    /// Checks a presented token in constant time.
    pub fn verify(&self, actor: &str, token: &str, now: OffsetDateTime) -> bool {
        let Some((expiry, sig)) = token.split_once('.') else { return false };
        let (Ok(expiry), Ok(sig)) = (expiry.parse::<i64>(), hex::decode(sig)) else { return false };
        if expiry <= now.unix_timestamp() || expiry > now.unix_timestamp() + TOKEN_TTL {
            return false;
        }
        self.mac(actor, expiry).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_actor_secret_and_time() {
        let now = OffsetDateTime::now_utc();
        let signer = Signer(b"0123456789abcdef0123456789abcdef");
        let token = signer.token("admin:1A", now);
        assert!(signer.verify("admin:1A", &token, now));
        assert!(!signer.verify("admin:2B", &token, now), "other actor");
        assert!(!Signer(b"another secret").verify("admin:1A", &token, now), "other install");
        assert!(!signer.verify("admin:1A", &token, now + time::Duration::seconds(TOKEN_TTL + 1)), "expired");
        let (expiry, sig) = token.split_once('.').unwrap();
        let stretched = format!("{}.{sig}", expiry.parse::<i64>().unwrap() + 100);
        assert!(!signer.verify("admin:1A", &stretched, now), "expiry is signed");
        for bad in ["", ".", "x.y", "123", &format!("{expiry}.")] {
            assert!(!signer.verify("admin:1A", bad, now), "{bad}");
        }
    }
}
