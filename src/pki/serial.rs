//! Serial numbers and agent labels: generation, normalization, validation.

use super::PkiError;

/// Length of a generated serial number in bytes (RFC 5280 allows up to 20).
const SERIAL_LEN: usize = 16;

/// A fresh certificate serial: 16 random bytes, positive (top bit clear) and
/// with a non-zero first byte, so the DER integer is exactly 16 bytes long
/// and never zero.
pub(crate) fn random_serial() -> [u8; SERIAL_LEN] {
    let mut bytes = [0u8; SERIAL_LEN];
    loop {
        rand::fill(&mut bytes[..]);
        bytes[0] &= 0x7f;
        if bytes[0] != 0 {
            return bytes;
        }
    }
}

/// Normalizes a certificate serial number for comparison.
///
/// Accepts the forms different tools print (`0a:1B:..` from openssl,
/// `0A1B` from nginx's `$ssl_client_serial`, with or without leading zeros)
/// and returns uppercase hex without separators or leading zeros (`"0"` for
/// zero). Characters other than hex digits and `:`/`-`/whitespace separators
/// are kept verbatim (uppercased), so malformed input never compares equal to
/// a real serial by accident.
pub fn normalize_serial(s: &str) -> String {
    let digits: String =
        s.chars().filter(|c| !matches!(c, ':' | '-') && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() }
}

/// Checks an agent label: 1–63 characters from `[a-z0-9-]`, not starting or
/// ending with `-`.
///
/// Labels end up in certificate subjects (`CN=agent:<label>`), file names and
/// DNS-like contexts, so they are restricted to a DNS-label-safe alphabet.
pub fn validate_label(label: &str) -> Result<(), PkiError> {
    if crate::model::is_label(label) { Ok(()) } else { Err(PkiError::InvalidLabel) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_normalize_serial_table() {
        let cases = [
            ("0a:1B:2c", "A1B2C"),
            ("0A1B", "A1B"),
            ("00A1B", "A1B"),
            ("a1b", "A1B"),
            ("0", "0"),
            ("00:00", "0"),
            ("", "0"),
            ("7F:FF:00:01", "7FFF0001"),
            ("7f-ff-00-01", "7FFF0001"),
            (" 12 34 ", "1234"),
            ("1000", "1000"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_serial(input), want, "input {input:?}");
        }
    }

    #[test]
    fn pki_validate_label_table() {
        let long_ok = "a".repeat(63);
        let too_long = "a".repeat(64);
        let good = ["a", "home", "home-lab-2", "0", "a-b", long_ok.as_str()];
        for label in good {
            assert!(validate_label(label).is_ok(), "should accept {label:?}");
        }
        let bad = [
            "",
            "-home",
            "home-",
            "-",
            "Home",
            "home_lab",
            "home.lab",
            "home lab",
            "agent:x",
            "../etc",
            "héllo",
            too_long.as_str(),
        ];
        for label in bad {
            assert!(matches!(validate_label(label), Err(PkiError::InvalidLabel)), "should reject {label:?}");
        }
    }

    #[test]
    fn pki_random_serial_is_positive_and_full_length() {
        for _ in 0..200 {
            let s = random_serial();
            assert!(s[0] & 0x80 == 0);
            assert!(s[0] != 0);
        }
        assert_ne!(random_serial(), random_serial());
    }
}
