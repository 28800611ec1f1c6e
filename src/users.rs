//! Visitor users, groups and invitations: validation, password hashing and
//! TOTP enrollment. Panel handlers, authd and provisioning call these; only
//! the store touches SQL.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::model::FieldError;
use crate::store::{Invitation, NewInvitation, NewUserRow, Store, StoreError, User, UserUpdate};
use crate::{token, totp};

/// bcrypt cost for visitor passwords (memory-light; ~250 ms on a small VPS).
/// Unit tests use the minimum so the suite stays fast.
pub const BCRYPT_COST: u32 = if cfg!(test) { 4 } else { 12 };
pub const MIN_PASSWORD_LEN: usize = 12;
/// Default invitation lifetime, days.
pub const INVITE_DAYS: u32 = 7;

/// A small built-in list of passwords that are long enough but common.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwertyuiopasdf",
    "qwerty123456",
    "qwertyuiop123",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "administrator",
    "adminadmin123",
    "abc123456789",
    "111111111111",
    "000000000000",
    "aaaaaaaaaaaa",
    "changeme1234",
    "trustno11234",
    "football1234",
    "baseball1234",
    "starwars1234",
    "sunshine1234",
    "princess1234",
    "dragon123456",
    "monkey123456",
    "superman1234",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "zaq12wsxcde3",
    "password123!",
    "p@ssw0rd1234",
    "correcthorsebatterystaple",
];

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("The invitation is invalid, used, revoked or expired")]
    BadInvitation,
    #[error("The code from the authenticator app is wrong")]
    BadTotp,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Input of [`create_user`].
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password: String,
    pub groups: Vec<String>,
    /// Enroll a TOTP secret now (the returned URI is shown to the user once).
    pub totp: bool,
}

/// A created user and, when requested, the TOTP enrollment to show once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    #[schema(value_type = Object)]
    pub user: User,
    #[serde(flatten)]
    pub totp: Option<TotpEnrollment>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrollment {
    /// Base32 secret.
    pub totp_secret: String,
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// Longest valid username, bytes (all valid usernames are ASCII).
pub const MAX_USERNAME_LEN: usize = 32;

/// `[a-z0-9._-]{1,32}`.
pub fn valid_username(name: &str) -> bool {
    (1..=MAX_USERNAME_LEN).contains(&name.len())
        && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

fn check_name(errors: &mut Vec<FieldError>, field: &str, name: &str) {
    if !valid_username(name) {
        errors.push(FieldError::new(field, "Use 1–32 characters: lowercase letters, digits, '.', '_' or '-'"));
    }
}

/// Length and common-password checks.
pub fn check_password(errors: &mut Vec<FieldError>, password: &str) {
    if password.chars().count() < MIN_PASSWORD_LEN {
        errors.push(FieldError::new("password", format!("Use at least {MIN_PASSWORD_LEN} characters")));
    } else if password.len() > 72 {
        errors.push(FieldError::new("password", "Use at most 72 bytes"));
    } else if COMMON_PASSWORDS.iter().any(|p| p.eq_ignore_ascii_case(password)) {
        errors.push(FieldError::new("password", "This password is too common"));
    }
}

fn check_email(errors: &mut Vec<FieldError>, email: &str) {
    let ok = email.is_empty() || (email.len() <= 254 && email.contains('@') && !email.chars().any(char::is_control));
    if !ok {
        errors.push(FieldError::new("email", "This is not an email address"));
    }
}

fn check_groups(errors: &mut Vec<FieldError>, groups: &[String]) {
    if groups.iter().any(|g| !valid_username(g)) {
        errors.push(FieldError::new("groups", "Group names use 1–32 characters: [a-z0-9._-]"));
    }
}

fn check_display(errors: &mut Vec<FieldError>, name: &str) {
    if name.len() > 128 || name.chars().any(char::is_control) {
        errors.push(FieldError::new("displayName", "Use at most 128 printable characters"));
    }
}

/// bcrypt on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, BCRYPT_COST))
        .await
        .map_err(|e| UserError::Hash(e.to_string()))?
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// A hash to check against for unknown users, so they cost the same time.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("portico-dummy-password", BCRYPT_COST).unwrap_or_default())
}

/// Checks a password on the blocking pool. `hash = None` (unknown user)
/// runs against a dummy hash and returns false.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, hash.as_deref())).await.unwrap_or(false)
}

/// The bcrypt check itself (CPU-bound: call it off the async executor).
/// `hash = None` (unknown user) runs against a dummy hash and returns false,
/// so an unknown user costs the same time as a known one.
pub fn verify_password_blocking(password: &str, hash: Option<&str>) -> bool {
    let ok = bcrypt::verify(password, hash.unwrap_or_else(|| dummy_hash())).unwrap_or(false);
    ok && hash.is_some()
}

async fn issuer(store: &Store) -> String {
    match store.setting(crate::onboarding::keys::DOMAIN).await {
        Ok(Some(d)) => format!("Portico {d}"),
        _ => "Portico".into(),
    }
}

async fn enrollment(store: &Store, username: &str, secret: String) -> TotpEnrollment {
    let uri = totp::otpauth_uri(&issuer(store).await, username, &secret);
    TotpEnrollment { qr_svg: totp::qr_svg(&uri), otpauth_uri: uri, totp_secret: secret }
}

/// Creates a visitor user (validated, password hashed with bcrypt cost 12,
/// groups must exist). With `new.totp` a TOTP secret is enrolled and returned
/// once with its `otpauth://` URI and QR code. Provisioning calls this for the
/// operator's first user.
pub async fn create_user(store: &Store, new: NewUser) -> Result<CreatedUser, UserError> {
    let mut errors = Vec::new();
    check_name(&mut errors, "username", &new.username);
    check_display(&mut errors, &new.display_name);
    check_email(&mut errors, &new.email);
    check_password(&mut errors, &new.password);
    check_groups(&mut errors, &new.groups);
    if !errors.is_empty() {
        return Err(UserError::Invalid(errors));
    }
    let secret = new.totp.then(totp::generate_secret);
    let row = NewUserRow {
        username: new.username.clone(),
        display_name: new.display_name,
        email: new.email,
        password_hash: hash_password(new.password).await?,
        totp_secret: secret.clone(),
        groups: new.groups,
    };
    let user = store.insert_user(row, OffsetDateTime::now_utc()).await?;
    let totp = match secret {
        Some(s) => Some(enrollment(store, &user.username, s).await),
        None => None,
    };
    Ok(CreatedUser { user, totp })
}

/// Changes for [`update_user`]; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub disabled: Option<bool>,
    pub groups: Option<Vec<String>>,
}

pub async fn update_user(store: &Store, username: &str, ch: UserChanges) -> Result<User, UserError> {
    let mut errors = Vec::new();
    if let Some(d) = &ch.display_name {
        check_display(&mut errors, d);
    }
    if let Some(e) = &ch.email {
        check_email(&mut errors, e);
    }
    if let Some(p) = &ch.password {
        check_password(&mut errors, p);
    }
    if let Some(g) = &ch.groups {
        check_groups(&mut errors, g);
    }
    if !errors.is_empty() {
        return Err(UserError::Invalid(errors));
    }
    let password_hash = match ch.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let update = UserUpdate {
        display_name: ch.display_name,
        email: ch.email,
        password_hash,
        disabled: ch.disabled,
        groups: ch.groups,
    };
    Ok(store.update_user(username.to_string(), update, OffsetDateTime::now_utc()).await?)
}

/// A new TOTP secret for `username` (the old one stops working at once).
pub async fn reset_totp(store: &Store, username: &str) -> Result<TotpEnrollment, UserError> {
    let secret = totp::generate_secret();
    store.set_totp_secret(username.to_string(), secret.clone(), OffsetDateTime::now_utc()).await?;
    Ok(enrollment(store, username, secret).await)
}

pub fn validate_group(name: &str, description: &str) -> Result<(), UserError> {
    let mut errors = Vec::new();
    check_name(&mut errors, "name", name);
    if description.len() > 256 {
        errors.push(FieldError::new("description", "Use at most 256 characters"));
    }
    if errors.is_empty() { Ok(()) } else { Err(UserError::Invalid(errors)) }
}

/// A created invitation and its token (shown once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitation {
    #[schema(value_type = Object)]
    pub invitation: Invitation,
    pub token: String,
    /// The invitee's page on the portal, once a domain is set.
    pub url: Option<String>,
}

pub async fn create_invitation(
    store: &Store,
    actor: &str,
    username: String,
    email: String,
    groups: Vec<String>,
    days: Option<u32>,
) -> Result<CreatedInvitation, UserError> {
    let mut errors = Vec::new();
    check_name(&mut errors, "username", &username);
    check_email(&mut errors, &email);
    check_groups(&mut errors, &groups);
    let days = days.unwrap_or(INVITE_DAYS);
    if !(1..=30).contains(&days) {
        errors.push(FieldError::new("expiresInDays", "Use 1–30 days"));
    }
    if !errors.is_empty() {
        return Err(UserError::Invalid(errors));
    }
    if store.user(username.clone()).await?.is_some() {
        return Err(StoreError::Conflict(format!("A user named '{username}' already exists")).into());
    }
    let known = store.groups().await?;
    if let Some(g) = groups.iter().find(|g| !known.iter().any(|k| &k.name == *g)) {
        return Err(StoreError::Conflict(format!("Group '{g}' does not exist")).into());
    }
    let token = token::random_token(32);
    let now = OffsetDateTime::now_utc();
    let invitation = store
        .insert_invitation(NewInvitation {
            id: token::random_hex(8),
            token_hash: token::sha256_hex(token.as_bytes()),
            username,
            email,
            groups,
            totp_secret: totp::generate_secret(),
            created_by: actor.to_string(),
            created_at: now,
            expires_at: now + Duration::days(i64::from(days)),
        })
        .await?;
    let url = store.setting(crate::onboarding::keys::DOMAIN).await?.map(|d| format!("https://auth.{d}/invite/{token}"));
    Ok(CreatedInvitation { invitation, token, url })
}

/// What the invitee sees before accepting.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub username: String,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
    #[serde(flatten)]
    pub totp: TotpEnrollment,
}

/// Looks up a live invitation. The token is hashed, so lookup by the hash is
/// a constant-time comparison of the secret itself.
async fn live_invitation(store: &Store, token: &str, now: OffsetDateTime) -> Result<Invitation, UserError> {
    if token.len() > 128 {
        return Err(UserError::BadInvitation);
    }
    let found = store.invitation_by_token(token::sha256_hex(token.as_bytes())).await?;
    match found {
        Some(i) if i.used_at.is_none() && i.revoked_at.is_none() && i.expires_at > now => Ok(i),
        _ => Err(UserError::BadInvitation),
    }
}

pub async fn view_invitation(store: &Store, token: &str, now: OffsetDateTime) -> Result<InvitationView, UserError> {
    let i = live_invitation(store, token, now).await?;
    let totp = enrollment(store, &i.username, i.totp_secret.clone()).await;
    Ok(InvitationView { username: i.username, email: i.email, expires_at: i.expires_at, totp })
}

/// Accepts an invitation: checks the password, then the TOTP code against
/// the offered secret, then creates the user and marks the token used.
pub async fn accept_invitation(
    store: &Store,
    token: &str,
    password: String,
    code: &str,
    now: OffsetDateTime,
) -> Result<User, UserError> {
    let i = live_invitation(store, token, now).await?;
    let mut errors = Vec::new();
    check_password(&mut errors, &password);
    if !errors.is_empty() {
        return Err(UserError::Invalid(errors));
    }
    totp::verify(&i.totp_secret, code, now.unix_timestamp()).ok_or(UserError::BadTotp)?;
    let row = NewUserRow {
        username: i.username.clone(),
        display_name: String::new(),
        email: i.email.clone(),
        password_hash: hash_password(password).await?,
        totp_secret: Some(i.totp_secret.clone()),
        groups: i.groups.clone(),
    };
    match store.accept_invitation(token::sha256_hex(token.as_bytes()), row, now).await {
        Ok(u) => Ok(u),
        Err(StoreError::Conflict(m)) if m.contains("invitation") => Err(UserError::BadInvitation),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
