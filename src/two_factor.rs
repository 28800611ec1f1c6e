//! The panel's optional second factor for certificate admins, as data: the
//! settings rows that hold it, its status, setup, and checking a code or a
//! recovery code with regulation (5 failures in 2 min → 5 min ban, as for
//! visitors) and replay protection. The session cookie a verified code
//! earns is the panel's (`panel::session`).

use time::OffsetDateTime;

use crate::authd::regulation::{Regulator, Step, Verdict};
use crate::settings::AuthdSettings;
use crate::store::{Store, StoreError};
use crate::totp;

/// Settings rows of the panel's 2FA. `ENABLED = "1"` is also the flag the
/// nginx render honours to drop the IP vhost (`:9292`).
pub mod keys {
    pub const ENABLED: &str = "panel.2fa.enabled";
    pub const SECRET: &str = "panel.2fa.secret";
    pub const PENDING: &str = "panel.2fa.pending";
    pub const LAST_STEP: &str = "panel.2fa.last_step";
}

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error("Two-factor login is not enabled")]
    NotEnabled,
    #[error("Two-factor login is already enabled; disable it first")]
    AlreadyEnabled,
    #[error("Start with /api/settings/2fa/setup")]
    NoPendingSetup,
    #[error("Wrong or already used code")]
    BadCode,
    #[error("Too many failed attempts; try again later")]
    Banned,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `(enabled, active secret, pending secret)`.
pub async fn status(store: &Store) -> Result<(bool, Option<String>, Option<String>), StoreError> {
    let v = store.settings(&[keys::ENABLED, keys::SECRET, keys::PENDING]).await?;
    let non_empty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    Ok((v[0].as_deref() == Some("1"), non_empty(&v[1]), non_empty(&v[2])))
}

/// Per-process regulation of the codes admins type.
#[derive(Default)]
pub struct Checker {
    pub regulator: Regulator,
}

impl Checker {
    /// Checks a code against `secret` with regulation and replay protection.
    pub async fn check_code(&self, store: &Store, actor: &str, secret: &str, code: &str) -> Result<(), TwoFactorError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let limits = AuthdSettings::default();
        if let Verdict::Refuse { .. } = self.regulator.check(actor, "panel", Step::Totp, now, &limits) {
            return Err(TwoFactorError::Banned);
        }
        let claimed = match totp::verify(secret, code, now) {
            Some(step) => store.claim_setting_step(keys::LAST_STEP, step).await?,
            None => false,
        };
        if !claimed {
            self.regulator.fail(actor, "panel", Step::Totp, now, &limits);
            return Err(TwoFactorError::BadCode);
        }
        Ok(())
    }

    /// Checks what the operator typed: six digits are an authenticator code
    /// (as [`check_code`](Self::check_code)), anything else a recovery code,
    /// spent on success. `Some(remaining)` when a recovery code was spent.
    /// Both count towards the same regulation.
    pub async fn check_proof(
        &self,
        store: &Store,
        actor: &str,
        secret: &str,
        input: &str,
    ) -> Result<Option<u32>, TwoFactorError> {
        let input = input.trim();
        if input.len() == 6 && input.bytes().all(|b| b.is_ascii_digit()) {
            return self.check_code(store, actor, secret, input).await.map(|()| None);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let limits = AuthdSettings::default();
        if let Verdict::Refuse { .. } = self.regulator.check(actor, "panel", Step::Totp, now, &limits) {
            return Err(TwoFactorError::Banned);
        }
        let spent = match crate::recovery::find(input, &store.recovery_code_hashes().await?) {
            Some(id) => store.spend_recovery_code(id).await?,
            None => None,
        };
        if spent.is_none() {
            self.regulator.fail(actor, "panel", Step::Totp, now, &limits);
            return Err(TwoFactorError::BadCode);
        }
        Ok(spent)
    }
}

/// Starts setup: a new pending secret, returned once as an enrollment.
pub async fn setup(store: &Store) -> Result<crate::users::TotpEnrollment, TwoFactorError> {
    if status(store).await?.0 {
        return Err(TwoFactorError::AlreadyEnabled);
    }
    let secret = totp::generate_secret();
    store.put_settings(vec![(keys::PENDING, secret.clone())]).await?;
    let uri = totp::otpauth_uri("Portico panel", "admin", &secret);
    Ok(crate::users::TotpEnrollment { qr_svg: totp::qr_svg(&uri), otpauth_uri: uri, totp_secret: secret })
}
