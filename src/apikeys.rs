//! API keys: random, shown once, stored as bcrypt hashes with a short lookup id.
//!
//! The presented form is `pk_<id>_<secret>`: `id` (64 bits, hex) finds the row,
//! `secret` (256 bits, base64url) is checked against the bcrypt hash. A small
//! in-memory cache of successful checks (keyed by SHA-256 of the whole key)
//! spares bcrypt on every request; revocation and expiry are read from the
//! store on each request, so they apply at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use crate::identity::Scope;
use crate::model::FieldError;
use crate::store::{ApiKeyRecord, NewApiKey, Store, StoreError};
use crate::token;

/// bcrypt cost for key hashes. The secret has 256 bits of entropy, so the
/// cost only guards a stolen database; 10 keeps a cold check near 50 ms.
const BCRYPT_COST: u32 = 10;
/// Longest allowed lifetime, days.
pub const MAX_EXPIRY_DAYS: u32 = 365;
/// How long a verified key skips bcrypt.
const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("invalid or expired API key")]
    Rejected,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// A freshly created key: the only time `key` exists outside the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The full key; shown once, never again.
    pub key: String,
    #[schema(value_type = Object)]
    pub record: ApiKeyRecord,
}

/// Verified-key cache: digest of the presented key → (id, verified at).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

/// Splits `pk_<id>_<secret>`.
fn parse(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("pk_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && (40..=64).contains(&secret.len());
    ok.then_some((id, secret))
}

/// Validates name, scopes and expiry of a create request.
pub fn validate(name: &str, scopes: &[String], expires_in_days: Option<u32>) -> Result<Vec<Scope>, KeyError> {
    let mut errors = Vec::new();
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "Use 1–64 printable characters"));
    }
    let mut parsed = Vec::new();
    if scopes.is_empty() {
        errors.push(FieldError::new("scopes", "Give at least one scope: read, write or admin"));
    }
    for (i, s) in scopes.iter().enumerate() {
        match Scope::parse(s) {
            Some(scope) if !parsed.contains(&scope) => parsed.push(scope),
            Some(_) => {}
            None => errors.push(FieldError::new(
                &format!("scopes[{i}]"),
                format!("Unknown scope '{s}'; use read, write or admin"),
            )),
        }
    }
    if let Some(days) = expires_in_days
        && !(1..=MAX_EXPIRY_DAYS).contains(&days)
    {
        errors.push(FieldError::new("expiresInDays", format!("Choose between 1 and {MAX_EXPIRY_DAYS} days")));
    }
    if errors.is_empty() { Ok(parsed) } else { Err(KeyError::Invalid(errors)) }
}

/// Creates and stores a key.
pub async fn create(
    store: &Store,
    name: &str,
    scopes: Vec<Scope>,
    expires_in_days: Option<u32>,
) -> Result<CreatedKey, KeyError> {
    let id = token::random_hex(8);
    let secret = token::random_token(32);
    let hash = tokio::task::spawn_blocking(move || bcrypt::hash(secret.clone(), BCRYPT_COST).map(|h| (h, secret)))
        .await
        .map_err(|e| KeyError::Hash(e.to_string()))?
        .map_err(|e| KeyError::Hash(e.to_string()))?;
    let (hash, secret) = hash;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::now_utc());
    let new = NewApiKey {
        id: id.clone(),
        name: name.trim().to_string(),
        hash,
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + time::Duration::days(i64::from(d))),
    };
    store.insert_api_key(new).await?;
    let record = store.api_key(id.clone()).await?.ok_or(StoreError::NotFound)?;
    Ok(CreatedKey { key: format!("pk_{id}_{secret}"), record })
}

/// A dummy hash so unknown ids cost the same bcrypt time as known ones.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("portico-dummy-secret", BCRYPT_COST).unwrap_or_default())
}

impl KeyCache {
    /// Checks a presented key; returns its record when valid, live and unexpired.
    pub async fn verify(&self, store: &Store, presented: &str, now: OffsetDateTime) -> Result<ApiKeyRecord, KeyError> {
        let digest = token::sha256_hex(presented.as_bytes());
        let (id, secret) = parse(presented).ok_or(KeyError::Rejected)?;
        let record = store.api_key(id.to_string()).await?;
        let cached = self.cached(&digest).is_some_and(|cached_id| cached_id == id);
        if !cached {
            let hash = record.as_ref().map(|r| r.hash.clone()).unwrap_or_else(|| dummy_hash().to_string());
            let secret = secret.to_string();
            let matches = tokio::task::spawn_blocking(move || bcrypt::verify(secret, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
            if !matches || record.is_none() {
                return Err(KeyError::Rejected);
            }
            self.remember(digest, id.to_string());
        }
        let record = record.ok_or(KeyError::Rejected)?;
        if record.revoked_at.is_some() || record.expires_at.is_some_and(|e| e <= now) {
            return Err(KeyError::Rejected);
        }
        store.touch_api_key(record.id.clone(), now).await?;
        Ok(record)
    }

    fn cached(&self, digest: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (id, at) = entries.get(digest)?;
        (at.elapsed() < CACHE_TTL).then(|| id.clone())
    }

    fn remember(&self, digest: String, id: String) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(digest, (id, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_the_issued_shape() {
        let secret = "a".repeat(43);
        let key = format!("pk_0123456789abcdef_{secret}");
        assert_eq!(parse(&key), Some(("0123456789abcdef", secret.as_str())));
        for bad in [
            "",
            "pk_",
            "pk_0123_abc",
            "xx_0123456789abcdef_aaaa",
            "pk_0123456789abcdeg_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation() {
        assert_eq!(validate("ci", &["read".into(), "read".into()], Some(30)).unwrap(), vec![Scope::Read]);
        let cases: &[(&str, &[&str], Option<u32>, &str)] = &[
            ("", &["read"], None, "name"),
            ("ci", &[], None, "scopes"),
            ("ci", &["root"], None, "scopes[0]"),
            ("ci", &["read"], Some(0), "expiresInDays"),
            ("ci", &["read"], Some(366), "expiresInDays"),
        ];
        for (name, scopes, days, field) in cases {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            match validate(name, &scopes, *days) {
                Err(KeyError::Invalid(errors)) => assert_eq!(errors[0].field, *field),
                other => panic!("{name} {scopes:?}: {other:?}"),
            }
        }
    }
}
