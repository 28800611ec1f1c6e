//! The login portal's `rd` parser: whatever it accepts is, read by an
//! independent URL parser (the `url` crate, which follows the WHATWG rules
//! browsers use), an `https` URL without credentials whose host is the
//! appliance's domain or a name under it.

use portico::authd::redirect::{host, safe_redirect};

use crate::split_mode;

const DOMAINS: [&str; 3] = ["example.com", "home.example.org", "xn--bcher-kva.example"];

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    let Ok(rd) = std::str::from_utf8(rest) else { return };
    let domain = DOMAINS[mode as usize % DOMAINS.len()];
    let Some(safe) = safe_redirect(rd, domain) else { return };
    let url = url::Url::parse(&safe).unwrap_or_else(|e| panic!("accepted {safe:?}, which does not parse: {e}"));
    assert_eq!(url.scheme(), "https", "{safe:?}");
    assert!(url.username().is_empty() && url.password().is_none(), "credentials in {safe:?}");
    let h = url.host_str().unwrap_or_else(|| panic!("no host in {safe:?}"));
    assert!(h == domain || h.ends_with(&format!(".{domain}")), "{safe:?} leaves {domain} for {h}");
    // The host the portal shows ("continue to …") is the one a browser visits.
    let shown = host(&safe);
    let shown_host = shown.rsplit_once(':').map_or(shown, |(h, _)| h);
    assert_eq!(shown_host, h, "shows {shown:?} for {safe:?}");
}
