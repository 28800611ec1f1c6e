//! Secrets out of log lines and audit targets. Invitation tokens travel in
//! the path (`/invite/<token>`, `/api/invite/<token>`) and one-time values
//! in query strings (`?token=`, `?code=`, `?rd=`…); every log line the panel
//! and authd write, and every line the live-logs stream sends, passes
//! through [`line`] first, so whoever reads a log never reads a secret.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Path markers whose next segment is a secret.
const SECRET_SEGMENTS: &[&str] = &["/invite/"];

/// Query keys (lowercase) whose values are secrets or may carry one (`rd`
/// is a whole return URL with its own query).
const SECRET_KEYS: &[&str] = &[
    "token",
    "code",
    "rd",
    "password",
    "passphrase",
    "secret",
    "key",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "_csrf",
    "csrf",
    "state",
    "ticket",
    "session",
    "sig",
    "signature",
    "auth",
    "otp",
    "totp",
];

/// Key fragments that mark a value as secret whatever the rest of the name.
const SECRET_FRAGMENTS: &[&str] = &["token", "secret", "password", "passphrase", "csrf", "session"];

fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&key.as_str()) || SECRET_FRAGMENTS.iter().any(|f| key.contains(f))
}

/// Characters that end a path segment or a query value in a log line.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '/' | '?' | '#' | '&' | ';' | '"' | '\'' | ',' | '<' | '>' | ')' | ']' | '}')
}

/// Characters that end a query value (a value may contain `/`).
fn ends_query_value(c: char) -> bool {
    c != '/' && c != '?' && ends_value(c)
}

/// The length of the value starting at `rest`.
fn value_len(rest: &str, end: fn(char) -> bool) -> usize {
    rest.find(end).unwrap_or(rest.len())
}

/// `text` with every secret path segment and secret query value masked.
/// Works on whole log lines as well as on a bare path or URL.
pub fn line(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        // `/invite/<secret>`
        if let Some(marker) = SECRET_SEGMENTS.iter().find(|m| rest.starts_with(*m)) {
            let start = i + marker.len();
            let len = value_len(&text[start..], ends_value);
            if len > 0 && &text[start..start + len] != MASK {
                out.push_str(&text[copied..start]);
                out.push_str(MASK);
                copied = start + len;
            }
            i = start + len;
            continue;
        }
        // `?key=<secret>` / `&key=<secret>` / `;key=<secret>`
        if matches!(rest.as_bytes()[0], b'?' | b'&' | b';') {
            let key_len = rest[1..].find(|c: char| c == '=' || ends_value(c)).unwrap_or(rest.len() - 1);
            let key = &rest[1..1 + key_len];
            if rest[1 + key_len..].starts_with('=') && !key.is_empty() && secret_key(key) {
                let start = i + 1 + key_len + 1;
                let len = value_len(&text[start..], ends_query_value);
                if len > 0 && &text[start..start + len] != MASK {
                    out.push_str(&text[copied..start]);
                    out.push_str(MASK);
                    copied = start + len;
                }
                i = start + len;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_segments_and_query_values() {
        let cases = [
            ("/invite/AbC123", "/invite/***"),
            ("/invite/AbC123/", "/invite/***/"),
            ("/api/invite/AbC123", "/api/invite/***"),
            ("/api/invite/AbC123?x=1", "/api/invite/***?x=1"),
            ("/?rd=https://app.example.com/?token=abc", "/?rd=***"),
            ("/login?username=bob&password=hunter2", "/login?username=bob&password=***"),
            ("/x?Token=abc&lines=5", "/x?Token=***&lines=5"),
            ("/x?_csrf=123.abcdef", "/x?_csrf=***"),
            ("/x?invite_token=abc", "/x?invite_token=***"),
            ("/x?code=123456#frag", "/x?code=***#frag"),
            (
                "2026/12/07 [error] 7#7: *1 upstream failed, request: \"GET /invite/s3cr3t HTTP/1.1\", host: \"auth.example.com\"",
                "2026/12/07 [error] 7#7: *1 upstream failed, request: \"GET /invite/*** HTTP/1.1\", host: \"auth.example.com\"",
            ),
            (
                "INFO request{method=POST path=/api/invite/tok peer=1.2.3.4}: status=200",
                "INFO request{method=POST path=/api/invite/*** peer=1.2.3.4}: status=200",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(line(input), want, "{input}");
        }
    }

    #[test]
    fn leaves_harmless_text_alone() {
        for text in [
            "/api/services/relay/logs?lines=200&level=warn&q=agent",
            "/invite/",
            "/api/invitations/alice",
            "GET /sites/1/files?path=index.html",
            "key points: a=b",
            "naïve ünïcode ✓ /invite",
            "",
        ] {
            assert!(matches!(line(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn masking_twice_changes_nothing() {
        let once = line("/invite/abc?token=x").into_owned();
        assert_eq!(line(&once), once);
    }
}
