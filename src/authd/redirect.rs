//! Where the portal may send a visitor after login: only `https` URLs on the
//! appliance's domain or a subdomain of it. Everything else is refused.

/// Returns `rd` when it is a safe `https://<domain or subdomain>[:port]/…`
/// URL. A percent-encoded `rd` is decoded once and checked the same way.
pub fn safe_redirect(rd: &str, domain: &str) -> Option<String> {
    if let Some(ok) = check(rd, domain) {
        return Some(ok);
    }
    let decoded = percent_decode(rd)?;
    if decoded != rd { check(&decoded, domain) } else { None }
}

/// The host (and port) of a URL that [`safe_redirect`] accepted.
pub fn host(safe: &str) -> &str {
    let rest = safe.strip_prefix("https://").unwrap_or(safe);
    &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())]
}

fn check(rd: &str, domain: &str) -> Option<String> {
    if rd.len() > 4096 || rd.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let rest = rd.strip_prefix("https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // No userinfo, no escapes, nothing but a DNS name and an optional port.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port
        && (!p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return None;
    }
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !host.starts_with('.')
        && !host.contains("..");
    let domain = domain.to_ascii_lowercase();
    let under = host == domain || host.strip_suffix(&domain).is_some_and(|p| p.ends_with('.'));
    if !host_ok || !under || tail.starts_with("//") {
        return None;
    }
    // And a URL a browser would visit at that very host: WHATWG parsing
    // refuses, say, an `xn--` label that is not valid punycode.
    let parsed = url::Url::parse(rd).ok()?;
    (parsed.host_str() == Some(host)).then(|| rd.to_string())
}

pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    const D: &str = "example.com";

    #[test]
    fn accepts_https_on_the_domain_and_subdomains() {
        for ok in [
            "https://example.com/",
            "https://app.example.com",
            "https://app.example.com/path?x=1&y=2",
            "https://deep.app.example.com:8443/p#frag",
            "https%3A%2F%2Fapp.example.com%2Fpath",
        ] {
            assert!(safe_redirect(ok, D).is_some(), "{ok} should be allowed");
        }
    }

    /// The open-redirect attack table.
    #[test]
    fn refuses_open_redirects() {
        for bad in [
            "//evil.tld",
            "//evil.tld/https://app.example.com",
            "https://evil.tld",
            "https://evil.tld/app.example.com",
            "https://example.com.evil.tld",
            "https://app.example.com.evil.tld/",
            "https://evilexample.com",
            "https://app.example.com@evil.tld",
            "https://evil.tld\\@app.example.com",
            "https://app.example.com\\evil.tld",
            "https:\\\\evil.tld",
            "/\\evil.tld",
            "https://evil.tld%2F.example.com",
            "https://evil.tld%252F.example.com",
            "https%3A%2F%2Fevil.tld",
            "%2F%2Fevil.tld",
            "https://app.example.com%40evil.tld",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(document.domain)//https://app.example.com",
            "javascript%3Aalert(1)",
            "data:text/html,<script>",
            "http://app.example.com",
            "HTTPS://EVIL.TLD",
            "https://app.example.com:99999999/",
            // Five digits, but not a port: the browser would refuse the URL.
            "https://app.example.com:84432/",
            // Not punycode: no browser goes there.
            "https://xn--bcedp-.app.example.com/",
            "https://app.example.com:/",
            "https://.example.com",
            "https://a..example.com",
            "https://app.example.com//evil.tld",
            "https://app.example.com\t.evil.tld",
            "https://app.example.com%0d%0aSet-Cookie:x=1",
            "",
            "evil.tld",
        ] {
            assert_eq!(safe_redirect(bad, D), None, "{bad:?} must be refused");
        }
    }
}
