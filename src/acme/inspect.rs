//! Reading PEM chains and keys: what a certificate covers, who issued it,
//! when it expires, and whether an uploaded chain and key belong together.

use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::model::FieldError;

/// What the leaf of a chain says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// DNS names of the subject alternative names (the CN when there are none).
    pub names: Vec<String>,
    /// The issuer's common name, else its whole distinguished name.
    pub issuer: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// DER of the leaf's SubjectPublicKeyInfo.
    spki: Vec<u8>,
}

/// The DER certificates of a PEM chain, leaf first; `Err` when there is none
/// or a block is not a certificate.
fn chain_der(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|_| "the chain is not valid PEM".to_string())?;
        if block.label != "CERTIFICATE" {
            return Err(format!("the chain holds a `{}` block; only CERTIFICATE blocks belong there", block.label));
        }
        out.push(block.contents);
    }
    if out.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
}

/// Parses the leaf (first certificate) of a PEM chain; every other
/// certificate must parse too.
pub fn leaf(pem: &str) -> Result<Leaf, String> {
    let ders = chain_der(pem)?;
    for (i, der) in ders.iter().enumerate().skip(1) {
        X509Certificate::from_der(der).map_err(|_| format!("certificate {} of the chain does not parse", i + 1))?;
    }
    let (_, cert) = X509Certificate::from_der(&ders[0]).map_err(|_| "the first certificate does not parse")?;
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty()
        && let Some(cn) = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok())
    {
        names.push(cn.to_ascii_lowercase());
    }
    let issuer = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| cert.issuer().to_string());
    Ok(Leaf {
        names,
        issuer,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        spki: cert.public_key().raw.to_vec(),
    })
}

/// Whether a certificate for `names` serves `fqdn` (exact, or one-label wildcard).
pub fn covers(names: &[String], fqdn: &str) -> bool {
    let fqdn = fqdn.to_ascii_lowercase();
    names.iter().any(|n| {
        n == &fqdn
            || n.strip_prefix("*.").is_some_and(|rest| {
                fqdn.split_once('.').is_some_and(|(label, parent)| !label.is_empty() && parent == rest)
            })
    })
}

/// Checks an uploaded chain and key for `fqdn`: the chain parses, the key
/// parses and matches the leaf, the leaf names `fqdn` and is valid `now`.
/// Errors name the field (`fullchain` or `key`) and say what to fix.
pub fn validate_upload(fqdn: &str, fullchain: &str, key: &str, now: OffsetDateTime) -> Result<Leaf, Vec<FieldError>> {
    let mut errors = Vec::new();
    let leaf =
        leaf(fullchain).map_err(|m| errors.push(FieldError::new("fullchain", crate::wording::sentence(&m)))).ok();
    let key_spki = match rcgen::KeyPair::from_pem(key) {
        Ok(k) => Some(rcgen::PublicKeyData::subject_public_key_info(&k)),
        Err(_) => {
            errors.push(FieldError::new(
                "key",
                "This is not a PEM private key this server can use (PKCS#8 `PRIVATE KEY`, RSA or EC P-256/P-384)",
            ));
            None
        }
    };
    if let Some(leaf) = &leaf {
        if let Some(spki) = key_spki
            && spki != leaf.spki
        {
            errors.push(FieldError::new("key", "The key does not match the certificate (the first one of the chain)"));
        }
        if !covers(&leaf.names, fqdn) {
            errors.push(FieldError::new(
                "fullchain",
                format!("The certificate is for {} and does not cover {fqdn}", leaf.names.join(", ")),
            ));
        }
        if leaf.not_after <= now {
            errors.push(FieldError::new("fullchain", format!("The certificate expired on {}", leaf.not_after.date())));
        } else if leaf.not_before > now {
            errors.push(FieldError::new(
                "fullchain",
                format!("The certificate is not valid before {}", leaf.not_before.date()),
            ));
        }
    }
    match leaf {
        Some(leaf) if errors.is_empty() => Ok(leaf),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert(names: &[&str], days: (i64, i64)) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let now = OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn fields(r: Result<Leaf, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect()
    }

    #[test]
    fn wildcards_cover_one_label() {
        let names = vec!["*.example.com".to_string(), "example.com".to_string()];
        assert!(covers(&names, "app.example.com"));
        assert!(covers(&names, "example.com"));
        assert!(!covers(&names, "a.b.example.com"));
        assert!(!covers(&names, "example.org"));
    }

    #[test]
    fn uploads_are_checked() {
        let now = OffsetDateTime::now_utc();
        let (chain, key) = cert(&["panel.example.com"], (-1, 60));
        let leaf = validate_upload("panel.example.com", &chain, &key, now).unwrap();
        assert_eq!(leaf.names, ["panel.example.com"]);

        let (_, other_key) = cert(&["panel.example.com"], (-1, 60));
        let e = fields(validate_upload("panel.example.com", &chain, &other_key, now));
        assert!(e.iter().any(|m| m.starts_with("key:") && m.contains("does not match")), "{e:?}");

        let e = fields(validate_upload("auth.example.com", &chain, &key, now));
        assert!(e.iter().any(|m| m.contains("does not cover auth.example.com")), "{e:?}");

        let (old, old_key) = cert(&["panel.example.com"], (-90, -1));
        let e = fields(validate_upload("panel.example.com", &old, &old_key, now));
        assert!(e.iter().any(|m| m.contains("expired")), "{e:?}");

        let e = fields(validate_upload("panel.example.com", "garbage", "more garbage", now));
        assert!(e.iter().any(|m| m.starts_with("fullchain:") && m.contains("No PEM certificate")), "{e:?}");
        assert!(e.iter().any(|m| m.starts_with("key:")), "{e:?}");

        let e = fields(validate_upload("panel.example.com", &key, &key, now));
        assert!(e.iter().any(|m| m.contains("PRIVATE KEY")), "{e:?}");
    }
}
