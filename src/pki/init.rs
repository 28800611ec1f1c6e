//! `Pki::init`: create whatever is missing, never replace what exists.

use std::net::IpAddr;

use rcgen::{CertificateParams, KeyPair, PublicKeyData};

use super::ca::{self, LoadedCa};
use super::files::{self, MODE_PUBLIC, MODE_SECRET};
use super::hardware::AdminMode;
use super::{
    ADMIN_CRT, ADMIN_KEY, ADMIN_P12, ADMIN_P12_PASSWORD, CA_CRT, CA_KEY, InitReport, Pki, PkiError, SERVER_CRT,
    SERVER_KEY, info, p12,
};

/// How to sign a new certificate for an existing or new key.
enum Signer<'a> {
    SelfSigned,
    By(&'a LoadedCa),
}

/// A key and its certificate as stored on disk.
struct Pair {
    key: KeyPair,
    cert_der: Vec<u8>,
}

impl Pki {
    /// Creates the CA, admin and server certificates and the admin bundle,
    /// whichever are missing.
    ///
    /// Idempotent: existing files are never replaced, so a second run changes
    /// nothing and reports the same fingerprints. A key without its
    /// certificate gets a new certificate for that key; a certificate without
    /// its key is a [`PkiError::Inconsistent`] error. The admin bundle is
    /// the one exception: if it is missing, does not open with the password
    /// file, or holds another certificate than `admin.crt`, it is rebuilt
    /// (with a new password if the password file is missing), because a
    /// bundle that cannot be used protects nothing. A hardware-bound admin
    /// certificate (see [`super::hardware`]) gets no key and no bundle. `server_ip` only matters
    /// when the server certificate is created.
    pub fn init(&self, server_ip: Option<IpAddr>) -> Result<InitReport, PkiError> {
        let _guard = self.lock();
        let mut created = Vec::new();
        files::ensure_dir(&self.dir)?;

        let ca_pair = self.ensure_pair(CA_CRT, CA_KEY, || Ok(ca::ca_params()), Signer::SelfSigned, &mut created)?;
        let ca_info = info::cert_info(&ca_pair.cert_der)?;
        let ca = LoadedCa::new(ca_pair.cert_der, ca_pair.key)?;

        // A hardware-bound admin certificate has no key here and no bundle.
        let admin_mode = self.settle_admin_mode()?;
        let admin_der = match admin_mode {
            AdminMode::HardwareBound => info::cert_pem_to_der(&files::read_required_string(&self.path(ADMIN_CRT))?)?,
            AdminMode::P12 => {
                let admin =
                    self.ensure_pair(ADMIN_CRT, ADMIN_KEY, || Ok(ca::admin_params()), Signer::By(&ca), &mut created)?;
                self.ensure_admin_p12(&admin, &ca, &mut created)?;
                admin.cert_der
            }
        };

        let server =
            self.ensure_pair(SERVER_CRT, SERVER_KEY, || ca::server_params(server_ip), Signer::By(&ca), &mut created)?;

        Ok(InitReport {
            created,
            ca: ca_info,
            admin: info::cert_info(&admin_der)?,
            server: info::cert_info(&server.cert_der)?,
            p12_path: self.path(ADMIN_P12),
            p12_password_path: self.path(ADMIN_P12_PASSWORD),
            admin_mode,
        })
    }

    /// Loads or creates one key + certificate pair, key first so that a crash
    /// in between leaves a state the next run can finish.
    fn ensure_pair(
        &self,
        crt: &'static str,
        key: &'static str,
        params: impl FnOnce() -> Result<CertificateParams, PkiError>,
        signer: Signer<'_>,
        created: &mut Vec<&'static str>,
    ) -> Result<Pair, PkiError> {
        let crt_path = self.path(crt);
        let key_path = self.path(key);
        let have_crt = files::exists(&crt_path)?;
        let have_key = files::exists(&key_path)?;
        if have_crt && !have_key {
            return Err(PkiError::Inconsistent(format!(
                "{crt} exists but {key} is missing; move {crt} away to issue a new one"
            )));
        }

        let key_pair = if have_key {
            let pem = files::read_required_string(&key_path)?;
            KeyPair::from_pem(&pem).map_err(|e| PkiError::Cert(format!("{key}: {e}")))?
        } else {
            let key_pair = ca::generate_key()?;
            files::write_atomic(&key_path, key_pair.serialize_pem().as_bytes(), MODE_SECRET)?;
            created.push(key);
            key_pair
        };

        let cert_der = if have_crt {
            let der = info::cert_pem_to_der(&files::read_required_string(&crt_path)?)?;
            if info::cert_spki(&der)? != key_pair.subject_public_key_info() {
                return Err(PkiError::Inconsistent(format!("{crt} does not belong to {key}")));
            }
            der
        } else {
            let params = params()?;
            let cert = match signer {
                Signer::SelfSigned => params.self_signed(&key_pair)?,
                Signer::By(ca) => params.signed_by(&key_pair, &ca.issuer)?,
            };
            files::write_atomic(&crt_path, cert.pem().as_bytes(), MODE_PUBLIC)?;
            created.push(crt);
            cert.der().to_vec()
        };

        Ok(Pair { key: key_pair, cert_der })
    }

    /// Makes sure `admin.p12` opens with `admin.p12.password` and holds the
    /// current admin certificate; rebuilds it otherwise.
    fn ensure_admin_p12(&self, admin: &Pair, ca: &LoadedCa, created: &mut Vec<&'static str>) -> Result<(), PkiError> {
        let p12_path = self.path(ADMIN_P12);
        let password_path = self.path(ADMIN_P12_PASSWORD);
        let password = if files::exists(&password_path)? { Some(self.admin_p12_password()?) } else { None };
        if let Some(password) = &password
            && files::exists(&p12_path)?
            && p12::matches(&files::read_required(&p12_path)?, password, &admin.cert_der)
        {
            return Ok(());
        }

        let mut staged = Vec::new();
        let password = match password {
            Some(p) if !p.is_empty() => p,
            _ => {
                let p = p12::generate_password();
                staged.push(files::stage(&password_path, format!("{p}\n").as_bytes(), MODE_SECRET)?);
                created.push(ADMIN_P12_PASSWORD);
                p
            }
        };
        let bundle =
            p12::build(p12::ADMIN_FRIENDLY_NAME, admin.key.serialized_der(), &admin.cert_der, &ca.der, &password)?;
        staged.push(files::stage(&p12_path, &bundle, MODE_SECRET)?);
        created.push(ADMIN_P12);
        files::commit(staged)
    }
}
