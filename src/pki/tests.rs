//! End-to-end checks of the PKI directory against Debian's `openssl` binary.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PublicKeyData};

use super::*;

const IP: &str = "203.0.113.7";

fn setup() -> (tempfile::TempDir, Pki, InitReport) {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::new(data.path());
    let report = pki.init(Some(IP.parse::<IpAddr>().unwrap())).unwrap();
    (data, pki, report)
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("run openssl")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Name → (contents, mtime) of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let mtime = fs::metadata(&path).unwrap().modified().unwrap();
            out.insert(path.clone(), (fs::read(&path).unwrap(), mtime));
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn write_tmp(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, data).unwrap();
    path
}

#[test]
fn pki_init_twice_changes_nothing() {
    let (_data, pki, first) = setup();
    let mut created = first.created.clone();
    created.sort_unstable();
    assert_eq!(
        created,
        ["admin.crt", "admin.key", "admin.p12", "admin.p12.password", "ca.crt", "ca.key", "server.crt", "server.key"]
    );
    let before = snapshot(pki.dir());
    let second = pki.init(Some("198.51.100.1".parse().unwrap())).unwrap();
    assert!(second.created.is_empty(), "created {:?}", second.created);
    assert_eq!(snapshot(pki.dir()), before);
    assert_eq!(second.ca, first.ca);
    assert_eq!(second.admin, first.admin);
    assert_eq!(second.server, first.server);
    assert_eq!(pki.ca_info().unwrap(), first.ca);
    assert_eq!(pki.admin_info().unwrap(), first.admin);
    assert_eq!(first.ca.subject_cn, "Portico CA");
    assert_eq!(first.admin.subject_cn, "admin");
}

#[test]
fn pki_secret_files_are_mode_0600() {
    let (_data, pki, report) = setup();
    for name in ["ca.key", "admin.key", "server.key", "admin.p12", "admin.p12.password"] {
        assert_eq!(mode(&pki.dir().join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&report.p12_password_path), 0o600);
    assert_eq!(mode(&pki.ca_cert_path()), 0o644);
    let password = pki.admin_p12_password().unwrap();
    assert!(password.len() >= 20 && password.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn pki_admin_p12_is_legacy_and_opens_with_openssl() {
    let (data, pki, report) = setup();
    let p12 = s(&report.p12_path);
    let passin = format!("file:{}", s(&report.p12_password_path));
    let info = openssl_ok(&["pkcs12", "-in", p12, "-info", "-legacy", "-noout", "-passin", &passin]);
    assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{info}");
    assert!(info.contains("MAC: sha1"), "{info}");
    assert!(!info.contains("AES"), "{info}");

    // The key bag carries the friendly name; the chain includes the CA.
    let dump = openssl_ok(&["pkcs12", "-in", p12, "-legacy", "-nodes", "-passin", &passin]);
    assert!(dump.contains("friendlyName: Portico admin"), "{dump}");
    assert_eq!(dump.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{dump}");
    assert!(dump.contains("subject=CN = Portico CA"), "{dump}");
    assert_eq!(pki.admin_p12().unwrap(), fs::read(&report.p12_path).unwrap());

    let wrong = write_tmp(data.path(), "wrong", "not-the-password\n");
    let out = openssl(&["pkcs12", "-in", p12, "-info", "-legacy", "-noout", "-passin", &format!("file:{}", s(&wrong))]);
    assert!(!out.status.success());
}

#[test]
fn pki_issued_certs_verify_against_ca() {
    let (_data, pki, _report) = setup();
    let ca = s(&pki.ca_cert_path()).to_owned();
    let admin = pki.dir().join("admin.crt");
    let (server, _) = pki.server_cert_paths();
    let agent = pki.issue_agent("home").unwrap();
    let agent_path = pki.dir().join("agents").join(format!("home-{}.crt", agent.info.serial));

    let out = openssl_ok(&["verify", "-CAfile", &ca, "-purpose", "sslclient", s(&admin)]);
    assert!(out.contains(": OK"), "{out}");
    let out = openssl_ok(&["verify", "-CAfile", &ca, "-purpose", "sslserver", s(&server)]);
    assert!(out.contains(": OK"), "{out}");
    let out = openssl_ok(&["verify", "-CAfile", &ca, "-purpose", "sslclient", s(&agent_path)]);
    assert!(out.contains(": OK"), "{out}");

    let subject = openssl_ok(&["x509", "-in", s(&admin), "-noout", "-subject"]);
    assert!(subject.contains("CN = admin"), "{subject}");
    let ca_text = openssl_ok(&["x509", "-in", &ca, "-noout", "-text"]);
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    let server_text = openssl_ok(&["x509", "-in", s(&server), "-noout", "-ext", "subjectAltName"]);
    assert!(server_text.contains(&format!("IP Address:{IP}")), "{server_text}");
    assert!(server_text.contains("DNS:localhost"), "{server_text}");
}

#[test]
fn pki_fingerprint_and_serial_match_openssl() {
    let (_data, pki, report) = setup();
    for (file, info) in [("ca.crt", &report.ca), ("admin.crt", &report.admin), ("server.crt", &report.server)] {
        let path = pki.dir().join(file);
        let fp = openssl_ok(&["x509", "-in", s(&path), "-noout", "-fingerprint", "-sha256"]);
        let value = fp.trim().split_once('=').unwrap().1;
        assert_eq!(info.sha256_fingerprint, value, "{file}");
        let serial = openssl_ok(&["x509", "-in", s(&path), "-noout", "-serial"]);
        let value = serial.trim().split_once('=').unwrap().1;
        assert_eq!(info.serial, normalize_serial(value), "{file}");
        // openssl prints every byte (two digits each): 16 bytes, no DER padding.
        assert_eq!(value.len(), 32, "{file}: 16-byte serial {value}");
    }
    let days = (report.ca.not_after - report.ca.not_before).whole_days();
    assert!((3650..=3651).contains(&days), "{days}");
    let json = serde_json::to_value(&report.admin).unwrap();
    assert!(json["not_after"].as_str().unwrap().ends_with('Z'), "{json}");
}

#[test]
fn pki_rotate_admin_replaces_key_cert_and_bundle() {
    let (_data, pki, report) = setup();
    let dir = pki.dir().to_path_buf();
    let old_key = fs::read(dir.join("admin.key")).unwrap();
    let old_p12 = pki.admin_p12().unwrap();
    let old_password = pki.admin_p12_password().unwrap();

    let (old, new) = pki.rotate_admin().unwrap();
    assert_eq!(old, report.admin);
    assert_ne!(new.serial, old.serial);
    assert_eq!(new.subject_cn, "admin");
    assert_eq!(pki.admin_info().unwrap(), new);
    assert_ne!(fs::read(dir.join("admin.key")).unwrap(), old_key);
    assert_ne!(pki.admin_p12().unwrap(), old_p12);
    assert_ne!(pki.admin_p12_password().unwrap(), old_password);
    assert_eq!(mode(&dir.join("admin.key")), 0o600);

    let ca = s(&pki.ca_cert_path()).to_owned();
    let out = openssl_ok(&["verify", "-CAfile", &ca, s(&dir.join("admin.crt"))]);
    assert!(out.contains(": OK"), "{out}");
    let passin = format!("file:{}", s(&report.p12_password_path));
    let dump =
        openssl_ok(&["pkcs12", "-in", s(&report.p12_path), "-legacy", "-nokeys", "-clcerts", "-passin", &passin]);
    let leaf = openssl_ok(&["x509", "-in", s(&dir.join("admin.crt"))]);
    assert!(dump.contains(leaf.trim()), "bundle holds the new certificate");

    // The rotated set is consistent: init finds nothing to do.
    assert!(pki.init(None).unwrap().created.is_empty());
}

#[test]
fn pki_sign_rcgen_csr_replaces_subject_and_extensions() {
    let (data, pki, _report) = setup();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "admin");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();

    let (cert_pem, info) = pki.sign_agent_csr("home-lab", &csr).unwrap();
    assert_eq!(info.subject_cn, "agent:home-lab");
    let der = info::cert_pem_to_der(&cert_pem).unwrap();
    assert_eq!(info::cert_spki(&der).unwrap(), key.subject_public_key_info());
    let parsed = info::parse_cert(&der).unwrap();
    assert!(!parsed.is_ca());
    assert!(parsed.subject_alternative_name().unwrap().is_none());
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let days = (info.not_after - info.not_before).whole_days();
    assert!((365..=366).contains(&days), "{days}");

    let path = pki.dir().join("agents").join(format!("home-lab-{}.crt", info.serial));
    assert_eq!(fs::read_to_string(&path).unwrap(), cert_pem);
    let cert_file = write_tmp(data.path(), "agent.crt", &cert_pem);
    let subject = openssl_ok(&["x509", "-in", s(&cert_file), "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=CN = agent:home-lab");
}

#[test]
fn pki_sign_openssl_csr_asking_for_admin() {
    let (data, pki, _report) = setup();
    let dir = data.path();
    let (key, csr) = (dir.join("agent.key"), dir.join("agent.csr"));
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=admin",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "subjectAltName=DNS:panel.example",
        "-addext",
        "nsComment=unsupported by rcgen",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    let (cert_pem, info) = pki.sign_agent_csr("garage", &fs::read_to_string(&csr).unwrap()).unwrap();
    assert_eq!(info.subject_cn, "agent:garage");
    let cert = write_tmp(dir, "agent.crt", &cert_pem);
    let text = openssl_ok(&["x509", "-in", s(&cert), "-noout", "-text"]);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(!text.contains("panel.example") && !text.contains("unsupported"), "{text}");

    // CRLF line endings and indentation, as pasted into JSON, are accepted.
    let crlf: String = fs::read_to_string(&csr).unwrap().lines().map(|l| format!("  {l}\r\n")).collect();
    let (_, again) = pki.sign_agent_csr("garage", &crlf).unwrap();
    assert_ne!(again.serial, info.serial);
    let subject = openssl_ok(&["x509", "-in", s(&cert), "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=CN = agent:garage");
    let cert_pub = openssl_ok(&["x509", "-in", s(&cert), "-noout", "-pubkey"]);
    let csr_pub = openssl_ok(&["req", "-in", s(&csr), "-noout", "-pubkey"]);
    assert_eq!(cert_pub, csr_pub);
    let ca = s(&pki.ca_cert_path()).to_owned();
    let out = openssl_ok(&["verify", "-CAfile", &ca, "-purpose", "sslclient", s(&cert)]);
    assert!(out.contains(": OK"), "{out}");
}

#[test]
fn pki_sign_rejects_bad_csrs() {
    let (data, pki, _report) = setup();
    let key = KeyPair::generate().unwrap();
    let good = CertificateParams::default().serialize_request(&key).unwrap();
    let mut corrupted = good.der().to_vec();
    *corrupted.last_mut().unwrap() ^= 0x01;
    let rsa_csr = data.path().join("rsa.csr");
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=x",
        "-keyout",
        s(&data.path().join("rsa.key")),
        "-out",
        s(&rsa_csr),
    ]);

    let cases = [
        ("empty", String::new()),
        ("garbage", "hello".to_owned()),
        ("bad base64", "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n".to_owned()),
        ("certificate", pki.ca_pem().unwrap()),
        ("not a csr inside", pem("CERTIFICATE REQUEST", &[0x30, 0x03, 0x02, 0x01, 0x00])),
        ("corrupted signature", pem("CERTIFICATE REQUEST", &corrupted)),
        ("rsa key", fs::read_to_string(&rsa_csr).unwrap()),
    ];
    for (name, input) in cases {
        match pki.sign_agent_csr("home", &input) {
            Err(PkiError::InvalidCsr(reason)) => assert!(!reason.is_empty(), "{name}"),
            other => panic!("{name}: expected InvalidCsr, got {other:?}"),
        }
    }
    assert!(matches!(
        pki.sign_agent_csr("home", &pem("CERTIFICATE REQUEST", &corrupted)),
        Err(PkiError::InvalidCsr(r)) if r.contains("signature")
    ));
    assert!(matches!(pki.sign_agent_csr("Bad_Label", &good.pem().unwrap()), Err(PkiError::InvalidLabel)));
    // Nothing was issued for rejected requests.
    let agents = pki.dir().join("agents");
    assert!(!agents.exists() || fs::read_dir(&agents).unwrap().count() == 0);
}

#[test]
fn pki_issue_agent_keeps_only_the_certificate() {
    let (data, pki, _report) = setup();
    let agent = pki.issue_agent("nas").unwrap();
    assert_eq!(agent.info.subject_cn, "agent:nas");
    let files: Vec<_> = fs::read_dir(pki.dir().join("agents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, vec![format!("nas-{}.crt", agent.info.serial)]);

    let debug = format!("{agent:?}");
    assert!(!debug.contains(&agent.p12_password) && !debug.contains("PRIVATE KEY"), "{debug}");

    let key = KeyPair::from_pem(&agent.key_pem).unwrap();
    let der = info::cert_pem_to_der(&agent.cert_pem).unwrap();
    assert_eq!(info::cert_spki(&der).unwrap(), key.subject_public_key_info());

    let p12 = data.path().join("agent.p12");
    fs::write(&p12, &agent.p12).unwrap();
    let passin = format!("pass:{}", agent.p12_password);
    let dump = openssl_ok(&["pkcs12", "-in", s(&p12), "-legacy", "-nodes", "-passin", &passin]);
    assert!(dump.contains("friendlyName: Portico agent nas"), "{dump}");
    assert!(matches!(pki.issue_agent("-bad"), Err(PkiError::InvalidLabel)));
}

#[test]
fn pki_operations_before_init_report_not_initialized() {
    let data = tempfile::tempdir().unwrap();
    let pki = Pki::new(data.path());
    assert_eq!(pki.dir(), data.path().join("pki"));
    assert!(matches!(pki.ca_pem(), Err(PkiError::NotInitialized)));
    assert!(matches!(pki.admin_info(), Err(PkiError::NotInitialized)));
    assert!(matches!(pki.admin_p12(), Err(PkiError::NotInitialized)));
    assert!(matches!(pki.rotate_admin(), Err(PkiError::NotInitialized)));
    assert!(matches!(pki.issue_agent("home"), Err(PkiError::NotInitialized)));
    let key = KeyPair::generate().unwrap();
    let csr = CertificateParams::default().serialize_request(&key).unwrap().pem().unwrap();
    assert!(matches!(pki.sign_agent_csr("home", &csr), Err(PkiError::NotInitialized)));
}

#[test]
fn pki_init_repairs_only_what_is_missing() {
    let (_data, pki, report) = setup();
    let dir = pki.dir().to_path_buf();
    let password = pki.admin_p12_password().unwrap();

    fs::remove_file(dir.join("admin.p12")).unwrap();
    let again = pki.init(None).unwrap();
    assert_eq!(again.created, ["admin.p12"]);
    assert_eq!(pki.admin_p12_password().unwrap(), password);
    assert_eq!(again.admin, report.admin);

    fs::remove_file(dir.join("admin.p12.password")).unwrap();
    let mut created = pki.init(None).unwrap().created;
    created.sort_unstable();
    assert_eq!(created, ["admin.p12", "admin.p12.password"]);

    // A key without its certificate gets a certificate for that key.
    let key_before = fs::read(dir.join("server.key")).unwrap();
    fs::remove_file(dir.join("server.crt")).unwrap();
    assert_eq!(pki.init(None).unwrap().created, ["server.crt"]);
    assert_eq!(fs::read(dir.join("server.key")).unwrap(), key_before);

    // A certificate without its key cannot be fixed without replacing it.
    fs::remove_file(dir.join("ca.key")).unwrap();
    assert!(matches!(pki.init(None), Err(PkiError::Inconsistent(_))));
    assert!(dir.join("ca.crt").exists());
}

/// A CSR made by `openssl req` for a new key of `newkey` (`ec`, `rsa:2048`,
/// `ed25519`) in `dir`: what a hardware key store exports. Returns (key, csr).
fn openssl_csr(dir: &Path, name: &str, newkey: &[&str]) -> (PathBuf, String) {
    let (key, csr) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")));
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-nodes", "-subj", "/CN=someone/O=Elsewhere", "-keyout", s(&key), "-out", s(&csr)]);
    openssl_ok(&args);
    (key, fs::read_to_string(&csr).unwrap())
}

#[test]
fn pki_hardware_bound_admin_certifies_the_csr_key_and_keeps_no_exportable_one() {
    let (data, pki, report) = setup();
    let dir = data.path();
    assert_eq!(report.admin_mode, AdminMode::P12);
    assert_eq!(pki.admin_mode().unwrap(), AdminMode::P12);
    let (key, csr) = openssl_csr(dir, "yubikey", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);

    let bound = pki.bind_admin_to_csr(&csr).unwrap();
    assert_eq!(bound.old.serial, report.admin.serial);
    assert_ne!(bound.new.serial, bound.old.serial);
    assert_eq!(pki.admin_mode().unwrap(), AdminMode::HardwareBound);
    assert!(pki.bound_since().unwrap().is_some());
    // admin.crt is the new certificate: CN=admin, for the CSR's key, signed by the CA, a client certificate.
    assert_eq!(fs::read_to_string(pki.dir().join("admin.crt")).unwrap(), bound.cert_pem);
    let crt = s(&pki.dir().join("admin.crt")).to_owned();
    let subject = openssl_ok(&["x509", "-in", &crt, "-noout", "-subject"]);
    assert_eq!(subject.trim(), "subject=CN = admin, O = Portico");
    let cert_pub = openssl_ok(&["x509", "-in", &crt, "-noout", "-pubkey"]);
    let key_pub = openssl_ok(&["pkey", "-in", s(&key), "-pubout"]);
    assert_eq!(cert_pub, key_pub);
    let ca = s(&pki.ca_cert_path()).to_owned();
    assert!(openssl_ok(&["verify", "-CAfile", &ca, "-purpose", "sslclient", &crt]).contains(": OK"));
    // Nothing exportable is left, and nothing gives one out.
    for gone in ["admin.key", "admin.p12", "admin.p12.password"] {
        assert!(!pki.dir().join(gone).exists(), "{gone} is still there");
    }
    assert!(matches!(pki.admin_p12(), Err(PkiError::HardwareBound)));
    assert!(matches!(pki.admin_p12_password(), Err(PkiError::HardwareBound)));
    assert!(matches!(pki.rotate_admin(), Err(PkiError::HardwareBound)));

    // A restart's init keeps the binding and makes no key or bundle.
    let again = pki.init(Some(IP.parse().unwrap())).unwrap();
    assert_eq!(again.admin_mode, AdminMode::HardwareBound);
    assert_eq!(again.admin.serial, bound.new.serial);
    assert!(again.created.is_empty(), "{:?}", again.created);
    assert!(!pki.dir().join("admin.key").exists() && !pki.dir().join("admin.p12").exists());

    // Another hardware key (a spare token, RSA): the binding moves to it.
    let (_, rsa) = openssl_csr(dir, "card", &["-newkey", "rsa:2048"]);
    let moved = pki.bind_admin_to_csr(&rsa).unwrap();
    assert_eq!(moved.old.serial, bound.new.serial);
    assert_eq!(pki.admin_mode().unwrap(), AdminMode::HardwareBound);

    // Recovery: a new exportable certificate whose bundle opens with its password.
    let recovered = pki.recover_admin().unwrap();
    assert_eq!(recovered.old.serial, moved.new.serial);
    assert_eq!(pki.admin_mode().unwrap(), AdminMode::P12);
    assert_eq!(pki.admin_p12_password().unwrap(), recovered.p12_password);
    let p12 = write_tmp(dir, "recovered.p12", pki.admin_p12().unwrap());
    let pass = format!("pass:{}", recovered.p12_password);
    let out = openssl_ok(&["pkcs12", "-in", s(&p12), "-passin", &pass, "-nokeys", "-clcerts", "-legacy"]);
    assert!(out.contains("subject=CN = admin"), "{out}");
    let after = pki.init(Some(IP.parse().unwrap())).unwrap();
    assert_eq!((after.admin_mode, after.created.len()), (AdminMode::P12, 0), "{:?}", after.created);
}

#[test]
fn pki_hardware_binding_refuses_bad_csrs_and_changes_nothing() {
    let (data, pki, _report) = setup();
    let dir = data.path();
    let before = snapshot(pki.dir());
    let (_, short_rsa) = openssl_csr(dir, "short", &["-newkey", "rsa:1024"]);
    let (_, dsa_like) = openssl_csr(dir, "p521", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"]);
    let key = KeyPair::generate().unwrap();
    let mut corrupted = CertificateParams::default().serialize_request(&key).unwrap().der().to_vec();
    *corrupted.last_mut().unwrap() ^= 0x01;
    let cases = [
        ("empty", String::new(), "empty"),
        ("certificate", pki.ca_pem().unwrap(), "CERTIFICATE REQUEST"),
        ("corrupted signature", pem("CERTIFICATE REQUEST", &corrupted), "signature"),
        ("rsa 1024", short_rsa, "1024 bits is too short"),
        ("p-521", dsa_like, "RSA (2048 bits or more)"),
    ];
    for (name, input, says) in cases {
        match pki.bind_admin_to_csr(&input) {
            Err(PkiError::InvalidCsr(reason)) => assert!(reason.contains(says), "{name}: {reason}"),
            other => panic!("{name}: expected InvalidCsr, got {other:?}"),
        }
    }
    assert_eq!(pki.admin_mode().unwrap(), AdminMode::P12);
    assert_eq!(snapshot(pki.dir()), before, "a refused CSR changed the pki directory");
    // Agents still refuse RSA: only the admin's hardware may need it.
    let (_, rsa) = openssl_csr(dir, "rsa", &["-newkey", "rsa:2048"]);
    assert!(matches!(pki.sign_agent_csr("home", &rsa), Err(PkiError::InvalidCsr(_))));
}

/// A crash inside a binding or a recovery leaves a state init settles:
/// a marker beside a matching key (the certificate never landed, or the
/// recovery finished) is dropped; key and bundle files beside a bound
/// certificate (the binding finished, the clean-up did not) are removed.
#[test]
fn pki_init_settles_an_interrupted_binding() {
    let (data, pki, _report) = setup();
    let (_, csr) = openssl_csr(data.path(), "token", &["-newkey", "ed25519"]);
    let marker = pki.dir().join("admin.hardware-bound");

    // The marker landed, the certificate did not.
    fs::write(&marker, "2026-12-08T00:00:00Z\n").unwrap();
    assert_eq!(pki.init(None).unwrap().admin_mode, AdminMode::P12);
    assert!(!marker.exists());
    assert!(pki.admin_p12().is_ok());

    // Both landed; the key and bundle were not removed yet.
    let saved: Vec<(PathBuf, Vec<u8>)> = ["admin.key", "admin.p12", "admin.p12.password"]
        .iter()
        .map(|n| (pki.dir().join(n), fs::read(pki.dir().join(n)).unwrap()))
        .collect();
    let bound = pki.bind_admin_to_csr(&csr).unwrap();
    for (path, bytes) in &saved {
        fs::write(path, bytes).unwrap();
    }
    let report = pki.init(None).unwrap();
    assert_eq!((report.admin_mode, report.admin.serial), (AdminMode::HardwareBound, bound.new.serial));
    for (path, _) in &saved {
        assert!(!path.exists(), "{} survived", path.display());
    }
}
