//! Small pieces of wording shared by the pages, the CLI and the logs.

/// `1 file`, `3 files`, `0 files`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "file", "files"), "1 file");
        assert_eq!(super::count(0, "file", "files"), "0 files");
        assert_eq!(super::count(2, "certificate", "certificates"), "2 certificates");
    }
}
