//! Small pieces of wording shared by the pages, the CLI and the logs.

/// `1 file`, `3 files`, `0 files`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A message that reads inside a longer one (`no PEM certificate found`)
/// as a sentence on its own: the first letter capitalized.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "file", "files"), "1 file");
        assert_eq!(super::count(0, "file", "files"), "0 files");
        assert_eq!(super::count(2, "certificate", "certificates"), "2 certificates");
    }

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(super::sentence("no PEM certificate found"), "No PEM certificate found");
        assert_eq!(super::sentence("Already"), "Already");
        assert_eq!(super::sentence("élan"), "Élan");
        assert_eq!(super::sentence(""), "");
    }
}
