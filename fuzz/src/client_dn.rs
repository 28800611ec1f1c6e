//! The client-certificate DN nginx passes (`X-SSL-Client-DN`): the common
//! name read from it is always the whole value of one CN attribute, so
//! `admin` comes only from a certificate whose CN is exactly `admin`.

use arbitrary::{Arbitrary, Unstructured};
use portico::identity::{CertSubject, cert_subject, common_name};

use crate::split_mode;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Cn,
    O,
    Ou,
    C,
    Email,
    Other,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cn => "CN",
            Kind::O => "O",
            Kind::Ou => "OU",
            Kind::C => "C",
            Kind::Email => "emailAddress",
            Kind::Other => "1.2.3.4",
        }
    }
}

/// A subject as a certificate holds it.
#[derive(Arbitrary, Debug)]
pub struct Dn {
    pub attrs: Vec<(Kind, String)>,
    /// OpenSSL's legacy one-line form instead of RFC 2253.
    pub legacy: bool,
}

/// RFC 2253 escaping as OpenSSL prints it for nginx's `$ssl_client_s_dn`.
fn escape_2253(v: &str) -> String {
    let mut out = String::new();
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c.is_control() || !c.is_ascii() {
            for b in c.to_string().bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The legacy form escapes nothing but `/`-free values are required there.
fn escape_legacy(v: &str) -> Option<String> {
    (!v.contains('/') && !v.chars().any(|c| c.is_control() || !c.is_ascii())).then(|| v.to_string())
}

impl Dn {
    /// The header value nginx would send: RFC 2253 lists the attributes
    /// last-first; the legacy form first-last, each after a `/`.
    pub fn render(&self) -> Option<String> {
        let attrs = self.attrs.iter().take(8);
        if self.legacy {
            let mut out = String::new();
            for (k, v) in attrs {
                out.push_str(&format!("/{}={}", k.name(), escape_legacy(v)?));
            }
            Some(out)
        } else {
            let parts: Vec<String> =
                attrs.rev().map(|(k, v)| format!("{}={}", k.name(), escape_2253(v))).collect();
            Some(parts.join(","))
        }
    }

    /// The values of its CN attributes.
    pub fn common_names(&self) -> Vec<String> {
        self.attrs.iter().take(8).filter(|(k, _)| *k == Kind::Cn).map(|(_, v)| v.clone()).collect()
    }
}

/// The property for one rendered subject and what was read from it.
pub fn check(dn: &Dn, cn: Option<&str>) {
    let names = dn.common_names();
    if let Some(cn) = cn {
        assert!(names.iter().any(|n| n.trim() == cn), "{cn:?} is not one CN of {dn:?}");
        if cert_subject(cn) == Some(CertSubject::Admin) {
            assert!(names.iter().any(|n| n.trim() == "admin"), "admin from {dn:?}");
        }
    }
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    if mode & 1 == 1 {
        let Ok(dn) = Dn::arbitrary(&mut Unstructured::new(rest)) else { return };
        let Some(header) = dn.render() else { return };
        check(&dn, common_name(&header).as_deref());
        return;
    }
    // Anything at all: whatever is read is one attribute's whole value.
    let text = String::from_utf8_lossy(rest);
    if let Some(cn) = common_name(&text) {
        assert!(!cn.contains('\\'), "{cn:?} from {text:?}");
        if cert_subject(&cn) == Some(CertSubject::Admin) {
            let sep = if text.starts_with('/') { '/' } else { ',' };
            let exact = text.split(sep).any(|a| a.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("cn") && v.trim() == "admin"
            }));
            assert!(exact, "admin from {text:?}");
        }
    }
}
