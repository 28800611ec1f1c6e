//! Recovery codes for the panel's second factor: ten one-time codes, shown
//! once when two-factor login is turned on (or the set is regenerated),
//! each accepted once instead of an authenticator code.
//!
//! A code is 10 symbols of Crockford's base32 (50 bits), shown as
//! `xxxxx-xxxxx`. Input is normalized before hashing: case, spaces and
//! hyphens do not matter, and `o`/`i`/`l` read as `0`/`1`/`1`. Only the
//! SHA-256 of the normalized code is stored; the check compares every stored
//! hash in constant time.

/// Codes in a set.
pub const COUNT: usize = 10;
/// At or below this many remaining codes, the Settings page warns.
pub const FEW: u32 = 3;
/// Symbols per code.
const LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new set: the codes to show once and the hashes to store.
pub fn generate() -> (Vec<String>, Vec<String>) {
    (0..COUNT)
        .map(|_| {
            let mut buf = [0u8; LEN];
            rand::fill(&mut buf);
            let symbols: String = buf.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
            let shown = format!("{}-{}", &symbols[..LEN / 2], &symbols[LEN / 2..]);
            (shown, hash_normalized(&symbols))
        })
        .unzip()
}

/// The canonical form of a typed code, or `None` when it cannot be one.
pub fn normalize(input: &str) -> Option<String> {
    let symbols: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    let ok = symbols.len() == LEN && symbols.bytes().all(|b| ALPHABET.contains(&b));
    ok.then_some(symbols)
}

fn hash_normalized(symbols: &str) -> String {
    crate::token::sha256_hex(format!("portico-recovery:{symbols}").as_bytes())
}

/// The id of the stored hash that matches `input`, comparing every one in
/// constant time.
pub fn find(input: &str, stored: &[(i64, String)]) -> Option<i64> {
    let presented = hash_normalized(&normalize(input)?);
    let mut found = None;
    for (id, hash) in stored {
        if crate::token::constant_time_eq(presented.as_bytes(), hash.as_bytes()) && found.is_none() {
            found = Some(*id);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_readable_codes_stored_as_hashes() {
        let (codes, hashes) = generate();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(hashes.len(), COUNT);
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), COUNT);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-");
            assert!(!hash.contains(&code[..5]), "only a digest is stored");
            assert_eq!(hash.len(), 64);
        }
    }

    #[test]
    fn typing_variants_match_and_others_do_not() {
        let (codes, hashes) = generate();
        let stored: Vec<(i64, String)> = hashes.into_iter().enumerate().map(|(i, h)| (i as i64, h)).collect();
        let code = &codes[3];
        assert_eq!(find(code, &stored), Some(3));
        assert_eq!(find(&code.to_uppercase(), &stored), Some(3));
        assert_eq!(find(&format!(" {} ", code.replace('-', " ")), &stored), Some(3));
        let with_o = code.replace('0', "o");
        assert_eq!(find(&with_o, &stored), Some(3), "o reads as 0");
        for bad in ["", "123456", "abcde-fghjk-m", "uuuuu-uuuuu", "00000-00000"] {
            assert_eq!(find(bad, &stored), None, "{bad}");
        }
        assert_eq!(normalize("ABCDE-FGHJK").as_deref(), Some("abcdefghjk"));
        assert_eq!(normalize("abcde-fghju"), None, "u is not a symbol");
    }
}
