//! `portico init`: idempotent first-start set-up of the data directory.

use std::path::Path;

use anyhow::Context;
use time::OffsetDateTime;

use crate::pki::{InitReport, Pki};
use crate::settings::Settings;
use crate::store::{ClientCert, Store};

/// Creates the data dirs, applies migrations, creates the PKI and records the
/// admin certificate. A second run changes nothing and reports the same.
pub fn run(settings: &Settings) -> anyhow::Result<InitReport> {
    for sub in ["", "pki", "acme", "sites", "nginx"] {
        let dir = settings.data_dir.join(sub);
        std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    }
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let ip = settings.public_ip.or_else(crate::onboarding::detect_public_ip);
    let report = Pki::new(&settings.data_dir).init(ip).context("while creating the certificate authority")?;
    let admin = ClientCert {
        serial: report.admin.serial.clone(),
        kind: "admin".into(),
        label: None,
        fingerprint: report.admin.sha256_fingerprint.clone(),
        not_after: report.admin.not_after,
        revoked_at: None,
    };
    store
        .record_admin_cert_blocking(&admin, OffsetDateTime::now_utc())
        .context("while recording the admin certificate")?;
    Ok(report)
}

/// What `portico init` prints.
pub fn describe(report: &InitReport, data_dir: &Path) -> String {
    let created =
        if report.created.is_empty() { "nothing (already initialized)".to_string() } else { report.created.join(", ") };
    format!(
        "data dir:        {}\ncreated:         {created}\nCA:              {} (sha256 {})\nadmin cert:      serial {} (sha256 {})\nserver cert:     sha256 {}\nadmin bundle:    {}\nbundle password: {}\n",
        data_dir.display(),
        report.ca.subject_cn,
        report.ca.sha256_fingerprint,
        report.admin.serial,
        report.admin.sha256_fingerprint,
        report.server.sha256_fingerprint,
        report.p12_path.display(),
        report.p12_password_path.display(),
    )
}
