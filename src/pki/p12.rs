//! Legacy PKCS#12 bundles that import everywhere.
//!
//! macOS Keychain (and older Windows) cannot read the modern PBES2/AES
//! encoding, so bundles use what `openssl pkcs12 -export -legacy` writes:
//! key shrouded and certificates encrypted with pbeWithSHAAnd3-KeyTripleDES-CBC,
//! MAC HMAC-SHA1, 2048 iterations. Firefox and Chrome accept it too.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy, PrivateKey,
    PrivateKeyChain,
};
use rand::RngExt;
use sha2::{Digest, Sha256};

use super::PkiError;

/// PBE and MAC iteration count (OpenSSL's legacy default).
const ITERATIONS: u32 = 2048;
/// Length of generated bundle passwords (alphanumeric, ~143 bits).
const PASSWORD_LEN: usize = 24;

/// Friendly name of the admin bundle, shown by browsers and Keychain.
pub(crate) const ADMIN_FRIENDLY_NAME: &str = "Portico admin";

fn p12_err(what: &str) -> impl FnOnce(p12_keystore::error::Error) -> PkiError {
    let what = what.to_owned();
    move |e| PkiError::Cert(format!("{what}: {e}"))
}

/// A fresh random alphanumeric password for a bundle.
pub(crate) fn generate_password() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(PASSWORD_LEN).map(char::from).collect()
}

/// Builds a legacy PKCS#12 with the PKCS#8 key, its certificate and the CA
/// certificate as the chain.
pub(crate) fn build(
    friendly_name: &str,
    key_pkcs8_der: &[u8],
    cert_der: &[u8],
    ca_der: &[u8],
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    let key = PrivateKey::from_der(key_pkcs8_der).map_err(p12_err("pkcs12 key"))?;
    let leaf = Certificate::from_der(cert_der).map_err(p12_err("pkcs12 certificate"))?;
    let ca = Certificate::from_der(ca_der).map_err(p12_err("pkcs12 CA certificate"))?;
    // localKeyId ties the key bag to its certificate bag; any stable bytes do.
    let local_key_id = Sha256::digest(cert_der)[..20].to_vec();
    let chain = PrivateKeyChain::new(local_key_id, key, [leaf, ca]);
    let mut store = KeyStore::new();
    store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha1)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(p12_err("write pkcs12"))
}

/// Whether `p12` opens with `password` and carries `cert_der` as its leaf.
pub(crate) fn matches(p12: &[u8], password: &str, cert_der: &[u8]) -> bool {
    let Ok(store) = KeyStore::from_pkcs12(p12, password, Pkcs12ImportPolicy::Strict) else {
        return false;
    };
    store.private_key_chain().and_then(|(_, chain)| chain.certs().first()).is_some_and(|leaf| leaf.as_der() == cert_der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password();
        let b = generate_password();
        assert!(a.len() >= 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
