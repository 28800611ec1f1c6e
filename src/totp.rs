//! RFC 6238 time-based one-time passwords: HMAC-SHA-1, 6 digits, 30 s steps,
//! ±1 step of clock drift. Replay protection (a step is accepted once per
//! user) is the caller's job: [`verify`] returns the matched step so the
//! store can claim it atomically.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP: i64 = 30;
/// Steps accepted either side of the current one.
pub const DRIFT: i64 = 1;
const DIGITS: u32 = 6;

/// A new random 160-bit secret, base32 without padding.
pub fn generate_secret() -> String {
    let mut buf = [0u8; 20];
    rand::fill(&mut buf);
    BASE32_NOPAD.encode(&buf)
}

/// The step number that contains `unix` seconds.
pub fn step_at(unix: i64) -> i64 {
    unix.div_euclid(STEP)
}

/// The code for `step`, as a 6-digit string.
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", bin % 10u32.pow(DIGITS))
}

/// The step whose code equals `presented` within the drift window around
/// `now_unix`, or `None`. Every candidate is compared in constant time.
pub fn verify(secret_b32: &str, presented: &str, now_unix: i64) -> Option<i64> {
    let presented = presented.trim();
    if presented.len() != DIGITS as usize || !presented.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = BASE32_NOPAD.decode(secret_b32.as_bytes()).ok()?;
    let now = step_at(now_unix);
    let mut found = None;
    for step in now - DRIFT..=now + DRIFT {
        if crate::token::constant_time_eq(code(&secret, step).as_bytes(), presented.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The current code for a base32 secret (tests, and enrollment helpers).
pub fn code_now(secret_b32: &str, now_unix: i64) -> Option<String> {
    let secret = BASE32_NOPAD.decode(secret_b32.as_bytes()).ok()?;
    Some(code(&secret, step_at(now_unix)))
}

/// `otpauth://totp/<issuer>:<account>?…` for authenticator apps.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The URI as an SVG QR code.
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors_truncated_to_six_digits() {
        for (t, want) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(code(RFC_SECRET, step_at(t)), want, "t={t}");
        }
    }

    #[test]
    fn drift_window_is_one_step_each_side() {
        let secret = BASE32_NOPAD.encode(RFC_SECRET);
        let now = 1_700_000_000;
        let c = code(RFC_SECRET, step_at(now));
        assert_eq!(verify(&secret, &c, now), Some(step_at(now)));
        assert_eq!(verify(&secret, &c, now + STEP), Some(step_at(now)));
        assert_eq!(verify(&secret, &c, now - STEP), Some(step_at(now)));
        assert_eq!(verify(&secret, &c, now + 2 * STEP), None);
        assert_eq!(verify(&secret, "12345", now), None);
        assert_eq!(verify(&secret, "abcdef", now), None);
    }

    #[test]
    fn uri_and_qr() {
        let uri = otpauth_uri("Portico example.com", "alice", "JBSWY3DPEHPK3PXP");
        assert!(uri.starts_with("otpauth://totp/Portico%20example.com:alice?secret=JBSWY3DPEHPK3PXP&issuer="));
        assert!(qr_svg(&uri).contains("<svg"));
        assert_eq!(generate_secret().len(), 32);
    }
}
