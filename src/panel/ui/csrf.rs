//! CSRF tokens for the UI's forms. The admin's browser presents its client
//! certificate (or the Home Assistant session) on any cross-site post, so
//! every form carries a token that a foreign page cannot compute: an
//! expiring [`crate::csrf`] token bound to the caller's identity,
//! `<expiry unix seconds>.<hex HMAC-SHA256(secret, actor | expiry)>`.
//! The secret is random per install, kept in the settings table
//! (`ui.csrf_secret`), so tokens survive restarts and work in every worker.
//! Tokens expire after [`TOKEN_TTL`].

use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::store::{Store, StoreError};

const SECRET_KEY: &str = "ui.csrf_secret";
/// How long a rendered form stays usable, seconds.
pub const TOKEN_TTL: i64 = 12 * 3600;
/// Name of the hidden form field.
pub const FIELD: &str = "_csrf";

/// The per-install secret, loaded once per worker.
#[derive(Default)]
pub struct CsrfKey {
    secret: OnceCell<Vec<u8>>,
}

/// A loaded key that signs and checks tokens.
pub struct Signer<'a>(crate::csrf::Signer<'a>);

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
        Ok(Signer(crate::csrf::Signer::new(secret)))
    }
}

/// What a token is bound to: the UI and the admin it was rendered for.
fn subject(actor: &str) -> String {
    format!("portico-ui-csrf|{actor}|")
}

impl Signer<'_> {
    /// A token for `actor`, valid for [`TOKEN_TTL`] from `now`.
    pub fn token(&self, actor: &str, now: OffsetDateTime) -> String {
        self.0.expiring(&subject(actor), now.unix_timestamp(), TOKEN_TTL)
    }

    /// Checks a presented token in constant time.
    pub fn verify(&self, actor: &str, token: &str, now: OffsetDateTime) -> bool {
        self.0.verify_expiring(&subject(actor), token, now.unix_timestamp(), TOKEN_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_their_format() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = OffsetDateTime::now_utc();
        let token = Signer(crate::csrf::Signer::new(secret)).token("admin:1A", now);
        let expiry = now.unix_timestamp() + TOKEN_TTL;
        let mac = crate::token::sign(secret, &format!("portico-ui-csrf|admin:1A|{expiry}"));
        assert_eq!(token, format!("{expiry}.{mac}"));
    }
}
