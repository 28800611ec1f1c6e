//! Relative paths inside a site, checked as text before they touch the disk.
//! The disk-side checks (symbolic links, files where directories are needed)
//! live in `files.rs`.

use std::path::{Path, PathBuf};

/// Longest accepted path, bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted segment, bytes (the usual file name limit).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Deepest accepted nesting, segments.
pub const MAX_DEPTH: usize = 32;

/// A checked path relative to a site's root: `/`-separated segments, none
/// empty, `.`, `..` or hidden, no control characters, no `\`, `%` or `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SitePath(String);

/// Why a path was refused; the text is shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("is empty")]
    Empty,
    #[error("must be relative to the site root (no leading '/')")]
    Absolute,
    #[error("must not contain '.' or '..' segments")]
    DotSegment,
    #[error("must not name hidden files or directories (segments starting with '.')")]
    Hidden,
    #[error("must not contain NUL or other control characters")]
    Control,
    #[error("must not contain '\\', '%' or ':' (send the decoded path with '/' separators)")]
    Reserved,
    #[error("must not contain empty segments ('//' or a trailing '/')")]
    EmptySegment,
    #[error("is longer than 1024 bytes or has a segment longer than 255 bytes")]
    TooLong,
    #[error("is nested deeper than 32 directories")]
    TooDeep,
}

impl SitePath {
    /// Checks `raw` as given by the client (already URL-decoded once).
    pub fn parse(raw: &str) -> Result<SitePath, PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.chars().any(char::is_control) {
            return Err(PathError::Control);
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if raw.contains(['\\', '%', ':']) {
            return Err(PathError::Reserved);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        let mut depth = 0;
        for seg in raw.split('/') {
            depth += 1;
            match seg {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                s if s.starts_with('.') => return Err(PathError::Hidden),
                s if s.len() > MAX_SEGMENT_BYTES => return Err(PathError::TooLong),
                _ => {}
            }
        }
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        Ok(SitePath(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, root first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The path under `root`. Only `Normal` components, so it cannot leave
    /// `root` as text; symbolic links are the caller's check.
    pub fn under(&self, root: &Path) -> PathBuf {
        self.segments().fold(root.to_path_buf(), |p, s| p.join(s))
    }
}

impl std::fmt::Display for SitePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for ok in ["index.html", "a/b/c.js", "assets/app-1.2.3.min.css", "ünïcode/ファイル.txt", "a b/c d.html"] {
            assert_eq!(SitePath::parse(ok).unwrap().as_str(), ok);
        }
        let deep = vec!["d"; MAX_DEPTH].join("/");
        assert!(SitePath::parse(&deep).is_ok());
        assert!(SitePath::parse(&"x".repeat(MAX_SEGMENT_BYTES)).is_ok());
    }

    #[test]
    fn refuses_every_traversal_and_odd_spelling() {
        use PathError::*;
        let long_segment = "x".repeat(MAX_SEGMENT_BYTES + 1);
        let too_deep = vec!["d"; MAX_DEPTH + 1].join("/");
        let too_long = vec!["abcdefghi"; 110].join("/");
        let cases: &[(&str, PathError)] = &[
            ("", Empty),
            ("..", DotSegment),
            ("../etc/passwd", DotSegment),
            ("a/../../b", DotSegment),
            ("a/..", DotSegment),
            ("./a", DotSegment),
            ("a/./b", DotSegment),
            ("/etc/passwd", Absolute),
            ("//server/share", Absolute),
            ("%2e%2e/x", Reserved),
            ("%2E%2E%2Fx", Reserved),
            ("..%2fx", Reserved),
            ("a%00b", Reserved),
            ("..\\x", Reserved),
            ("a\\b", Reserved),
            ("C:/windows", Reserved),
            ("a\0b", Control),
            ("a\nb", Control),
            ("a\u{7f}", Control),
            (".env", Hidden),
            (".git/config", Hidden),
            ("a/.htaccess", Hidden),
            ("...", Hidden),
            ("a//b", EmptySegment),
            ("a/", EmptySegment),
            (&long_segment, TooLong),
            (&too_long, TooLong),
            (&too_deep, TooDeep),
        ];
        for (raw, want) in cases {
            assert_eq!(SitePath::parse(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn joins_only_below_the_root() {
        let p = SitePath::parse("a/b/c.html").unwrap();
        assert_eq!(p.under(Path::new("/data/sites/docs")), Path::new("/data/sites/docs/a/b/c.html"));
        assert_eq!(p.segments().collect::<Vec<_>>(), ["a", "b", "c.html"]);
    }
}
