//! Certificates: renewing a served name's ACME certificate now, installing
//! an operator's certificate for it, and the admin client certificate
//! (its `.p12` download, its rotation, and binding it to a hardware key).
//! The API (`/api/certs/*`) and the
//! Certificates page call these; each is audited here.

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::pki::{AdminMode, Bound, CertInfo, Pki, PkiError};
use crate::store::CertRecord;

/// A served name from a path or a form, lowercased; unknown names are 404.
async fn served_name(app: &App, raw: &str) -> Result<String, Error> {
    let name = raw.trim().to_ascii_lowercase();
    if app.certs.wanted_names().await?.contains(&name) {
        Ok(name)
    } else {
        Err(Error::NotFound(format!("No certificate is managed for {}", raw.chars().take(64).collect::<String>())))
    }
}

/// Issues a new certificate for `raw` (a served name) now and reloads nginx
/// with it. Audited as `cert.renew`, with the CA's problem when it failed.
pub async fn renew(app: &App, who: &Identity, raw: &str) -> Result<CertRecord, Error> {
    let actor = who.actor();
    let name = served_name(app, raw).await?;
    let result = app.certs.renew(&app.nginx, &name, &actor).await;
    let (outcome, details) = match &result {
        Ok(_) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(serde_json::json!({ "error": e.to_string() }))),
    };
    app.audit(&actor, "cert.renew", &name, outcome, details).await;
    Ok(result?)
}

/// Validates and installs an operator's certificate for `raw` (a served
/// name): the chain parses, the key matches, the name is covered, it has
/// not expired. Audited as `cert.upload`.
pub async fn upload(app: &App, who: &Identity, raw: &str, fullchain: String, key: String) -> Result<CertRecord, Error> {
    let actor = who.actor();
    let name = served_name(app, raw).await?;
    let result = app.certs.upload(&app.nginx, &name, fullchain, key, &actor).await;
    let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
    app.audit(&actor, "cert.upload", &name, outcome, None).await;
    Ok(result?)
}

/// Runs `f` on the PKI on the blocking pool.
async fn pki_call<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Pki) -> Result<T, PkiError> + Send + 'static,
) -> Result<T, Error> {
    let pki = app.pki.clone();
    Ok(tokio::task::spawn_blocking(move || f(&pki)).await.map_err(|e| Error::internal("pki task", e))??)
}

/// The admin `.p12` bundle; audited as `cert.mtls.download`.
pub async fn admin_p12(app: &App, who: &Identity) -> Result<Vec<u8>, Error> {
    let bytes = pki_call(app, |p| p.admin_p12()).await?;
    app.audit(&who.actor(), "cert.mtls.download", "admin", Outcome::Success, None).await;
    Ok(bytes)
}

/// A rotated admin client certificate.
pub struct Rotated {
    pub old: CertInfo,
    pub new: CertInfo,
    /// Password of the new `.p12`, shown this once.
    pub p12_password: String,
}

/// New admin key and serial; the old certificate stops working at once.
/// Audited as `cert.mtls.rotate` with both serials.
pub async fn rotate_admin(app: &App, who: &Identity) -> Result<Rotated, Error> {
    let (old, new) = crate::agents::rotate_admin(app.pki.clone(), &app.store).await?;
    let p12_password = pki_call(app, |p| p.admin_p12_password()).await?;
    let details = serde_json::json!({ "oldSerial": old.serial, "newSerial": new.serial });
    app.audit(&who.actor(), "cert.mtls.rotate", "admin", Outcome::Success, Some(details)).await;
    Ok(Rotated { old, new, p12_password })
}

/// How the admin authenticates now.
pub struct AuthMode {
    pub mode: AdminMode,
    /// When the certificate was bound to a hardware key.
    pub since: Option<time::OffsetDateTime>,
    pub certificate: CertInfo,
}

pub async fn admin_auth_mode(app: &App) -> Result<AuthMode, Error> {
    pki_call(app, |p| {
        let since = p.bound_since()?;
        let mode = if since.is_some() { AdminMode::HardwareBound } else { AdminMode::P12 };
        Ok(AuthMode { mode, since, certificate: p.admin_info()? })
    })
    .await
}

/// The largest CSR accepted (an RSA-4096 request is about 1.7 KiB of PEM).
const MAX_CSR_BYTES: usize = 16 * 1024;

/// Issues the admin certificate for the hardware key whose CSR is
/// `csr_pem`; the certificate in force (the `.p12` one, or an earlier
/// hardware key's) stops working at once, and no `.p12` is kept or made.
/// Audited as `cert.admin.hardware-bound` with both serials.
pub async fn bind_admin(app: &App, who: &Identity, csr_pem: String) -> Result<Bound, Error> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(Error::field("csr", "A certificate request is at most 16 KiB"));
    }
    let actor = who.actor();
    let from = pki_call(app, |p| p.admin_mode()).await?;
    match crate::agents::bind_admin(app.pki.clone(), &app.store, csr_pem).await {
        Ok(bound) => {
            let details = serde_json::json!({
                "oldSerial": bound.old.serial, "newSerial": bound.new.serial, "from": from,
            });
            app.audit(&actor, "cert.admin.hardware-bound", "admin", Outcome::Success, Some(details)).await;
            Ok(bound)
        }
        Err(e) => {
            let e = Error::from(e);
            let details = serde_json::json!({ "error": e.to_string() });
            app.audit(&actor, "cert.admin.hardware-bound", "admin", Outcome::Failure, Some(details)).await;
            Err(e)
        }
    }
}
