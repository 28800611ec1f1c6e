//! Service logs as `s6-log` writes them: `<log_dir>/<service>/current`, rotated
//! to `@<tai64n>.s` files beside it. [`tail`] reads the last lines, [`Follower`]
//! yields lines appended afterwards, across rotations, in bounded memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most lines a client may ask for up front.
pub const MAX_TAIL: usize = 5000;
/// Longest line kept whole, bytes; longer ones are cut.
pub const MAX_LINE: usize = 16 * 1024;
/// Most bytes read backwards to find the last lines.
const MAX_TAIL_BYTES: u64 = 8 * 1024 * 1024;
/// Read buffer of the follower, bytes.
const CHUNK: usize = 64 * 1024;

/// Severity levels a filter understands, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" | "notice" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" | "err" | "crit" | "alert" | "emerg" => Some(Level::Error),
            _ => None,
        }
    }

    /// The level a log line states: tracing's `INFO`, nginx's `[error]`,
    /// JSON's `"level":"WARN"`. The first such word wins.
    fn of_line(line: &str) -> Option<Level> {
        line.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| (3..=7).contains(&w.len())).find_map(|w| {
            let upper = w.bytes().all(|b| b.is_ascii_uppercase());
            let bracketed = line.contains(&format!("[{w}]"));
            (upper || bracketed).then(|| Level::parse(w)).flatten()
        })
    }
}

/// Which lines a client wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lines at this level or above (lines stating no level are dropped).
    pub level: Option<Level>,
    /// Lines containing this text, case-insensitive.
    pub query: Option<String>,
}

impl Filter {
    pub fn new(level: Option<Level>, query: Option<&str>) -> Filter {
        Filter { level, query: query.filter(|q| !q.is_empty()).map(str::to_lowercase) }
    }

    pub fn matches(&self, line: &str) -> bool {
        if let Some(min) = self.level
            && Level::of_line(line).is_none_or(|l| l < min)
        {
            return false;
        }
        match &self.query {
            Some(q) => line.to_lowercase().contains(q),
            None => true,
        }
    }
}

/// The log directory of a service.
pub fn service_dir(log_dir: &Path, service: &str) -> PathBuf {
    log_dir.join(service)
}

/// Rotated files (`@….s`, `@….u`) oldest first; TAI64N names sort by time.
fn rotated(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('@')))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The last `n` lines matching `filter`, oldest first, from `current` and as
/// many rotated files as it takes. Reads at most a few MB.
pub fn tail(dir: &Path, n: usize, filter: &Filter) -> Vec<String> {
    let mut files = rotated(dir);
    files.push(dir.join("current"));
    let mut out: Vec<String> = Vec::new();
    let mut budget = MAX_TAIL_BYTES;
    for file in files.iter().rev() {
        if out.len() >= n || budget == 0 {
            break;
        }
        let (lines, used) = last_lines(file, n - out.len(), budget, filter);
        budget = budget.saturating_sub(used);
        out.splice(0..0, lines);
    }
    out
}

/// The last `n` matching lines of one file, reading backwards at most `budget` bytes.
fn last_lines(path: &Path, n: usize, budget: u64, filter: &Filter) -> (Vec<String>, u64) {
    let Ok(mut file) = File::open(path) else { return (Vec::new(), 0) };
    let Ok(len) = file.metadata().map(|m| m.len()) else { return (Vec::new(), 0) };
    let start = len.saturating_sub(budget);
    let mut kept: Vec<String> = Vec::new();
    let mut end = len;
    let mut carry: Vec<u8> = Vec::new();
    while end > start && kept.len() < n {
        let from = end.saturating_sub(CHUNK as u64).max(start);
        let mut buf = vec![0; (end - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut buf).is_err() {
            break;
        }
        buf.extend_from_slice(&carry);
        let mut parts: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        // The first part may continue in the previous chunk, unless we are at the start.
        let head = if from > start { parts.remove(0).to_vec() } else { Vec::new() };
        for part in parts.into_iter().rev() {
            if part.is_empty() {
                continue;
            }
            let line = clean(part);
            if filter.matches(&line) {
                kept.push(line);
                if kept.len() == n {
                    break;
                }
            }
        }
        carry = head;
        carry.truncate(MAX_LINE);
        end = from;
    }
    kept.reverse();
    (kept, len - end)
}

/// A line as clients see it: cut to [`MAX_LINE`], lossily decoded, and with
/// its secrets masked ([`crate::redact`]). Lines written before redaction
/// existed, or by a program that does not redact (nginx's error log quotes
/// request lines), are masked here; the filter sees the masked text too, so
/// a `q` search cannot fish for a token.
fn clean(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_LINE)];
    let text = String::from_utf8_lossy(bytes);
    crate::redact::line(text.trim_end_matches('\r')).into_owned()
}

/// Follows `current` from its end: [`Follower::poll`] returns the lines
/// written since the last call. When s6-log rotates (renames `current` and
/// starts a new one), the rest of the old file is read, then the new one from
/// its start. Holds one open file and at most one partial line.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the current end of `<dir>/current` (or its start once it appears).
    pub fn new(dir: &Path) -> Follower {
        let path = dir.join("current");
        let mut follower = Follower { path, file: None, inode: 0, pos: 0, partial: Vec::new() };
        if let Ok(file) = File::open(&follower.path)
            && let Ok(meta) = file.metadata()
        {
            follower.inode = meta.ino();
            follower.pos = meta.len();
            follower.file = Some(file);
        }
        follower
    }

    /// Lines completed since the last call. Blocking (file reads): call it
    /// from the blocking pool or keep the reads small, as here.
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        self.read_available(&mut lines);
        // Rotated or replaced: finish the old file, then switch.
        match std::fs::metadata(&self.path) {
            Ok(meta) if self.file.is_none() || meta.ino() != self.inode => {
                if let Ok(file) = File::open(&self.path) {
                    self.flush_partial(&mut lines);
                    self.inode = file.metadata().map(|m| m.ino()).unwrap_or(meta.ino());
                    self.file = Some(file);
                    self.pos = 0;
                    self.read_available(&mut lines);
                }
            }
            Ok(meta) if meta.len() < self.pos => {
                // Truncated in place.
                self.pos = 0;
                self.partial.clear();
                self.read_available(&mut lines);
            }
            _ => {}
        }
        lines
    }

    fn read_available(&mut self, lines: &mut Vec<String>) {
        let Some(file) = self.file.as_mut() else { return };
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = vec![0; CHUNK];
        // Bounded per call so one poll never reads an unbounded burst.
        for _ in 0..16 {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.pos += n as u64;
            for &b in &buf[..n] {
                if b == b'\n' {
                    lines.push(clean(&self.partial));
                    self.partial.clear();
                } else if self.partial.len() < MAX_LINE {
                    self.partial.push(b);
                }
            }
        }
    }

    fn flush_partial(&mut self, lines: &mut Vec<String>) {
        if !self.partial.is_empty() {
            lines.push(clean(&self.partial));
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn levels_of_common_line_shapes() {
        let cases = [
            ("2026-01-01T00:00:00Z  INFO portico::panel: panel listening", Some(Level::Info)),
            ("2026/01/01 00:00:00 [error] 12#12: open() failed", Some(Level::Error)),
            (r#"{"timestamp":"x","level":"WARN","fields":{}}"#, Some(Level::Warn)),
            ("portico: service relay exited with code 1; s6 restarts it", None),
            ("an error happened in lowercase", None),
        ];
        for (line, want) in cases {
            assert_eq!(Level::of_line(line), want, "{line}");
        }
    }

    #[test]
    fn filter_by_level_and_text() {
        let f = Filter::new(Some(Level::Warn), Some("Relay"));
        assert!(f.matches("x ERROR relay down"));
        assert!(!f.matches("x INFO relay up"));
        assert!(!f.matches("x ERROR panel down"));
        assert!(Filter::default().matches("anything"));
    }

    #[test]
    fn tail_reads_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        append(&d.join("@400000000000000100000000.s"), "a1\na2\n");
        append(&d.join("@400000000000000200000000.s"), "b1\nb2\n");
        append(&d.join("current"), "c1\nc2\nc3\n");
        assert_eq!(tail(d, 2, &Filter::default()), ["c2", "c3"]);
        assert_eq!(tail(d, 6, &Filter::default()), ["a2", "b1", "b2", "c1", "c2", "c3"]);
        assert_eq!(tail(d, 100, &Filter::new(None, Some("2"))), ["a2", "b2", "c2"]);
        assert!(tail(&d.join("missing"), 5, &Filter::default()).is_empty());
    }

    #[test]
    fn tail_of_a_big_file_reads_chunks_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        append(&dir.path().join("current"), &text);
        let got = tail(dir.path(), 3, &Filter::default());
        assert_eq!(got, ["line 19997", "line 19998", "line 19999"]);
        let got = tail(dir.path(), 10_000, &Filter::default());
        assert_eq!(got.len(), 10_000);
        assert_eq!(got[0], "line 10000");
    }

    #[test]
    fn follows_appends_partial_lines_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current");
        append(&current, "old\n");
        let mut f = Follower::new(dir.path());
        assert!(f.poll().is_empty());
        append(&current, "one\ntw");
        assert_eq!(f.poll(), ["one"]);
        append(&current, "o\n");
        assert_eq!(f.poll(), ["two"]);
        // s6-log rotation: the last line lands in the old file, which is renamed.
        append(&current, "last of old\n");
        std::fs::rename(&current, dir.path().join("@400000000000000300000000.s")).unwrap();
        append(&current, "first of new\n");
        assert_eq!(f.poll(), ["last of old", "first of new"]);
        append(&current, "next\n");
        assert_eq!(f.poll(), ["next"]);
        // Truncated in place.
        std::fs::write(&current, "").unwrap();
        append(&current, "after truncate\n");
        assert_eq!(f.poll(), ["after truncate"]);
    }

    /// Lines already on disk with a secret (older releases, nginx's error
    /// log) reach no client: tail and follower mask them, and a text filter
    /// cannot find the secret.
    #[test]
    fn secrets_in_written_lines_are_masked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current");
        append(&current, "INFO request{method=GET path=/invite/SECRETtok peer=1.2.3.4}: status=200\n");
        let mut f = Follower::new(dir.path());
        append(&current, "[error] 9#9: *1 request: \"POST /api/invite/SECRETtok HTTP/1.1\"\n");
        let tail = tail(dir.path(), 10, &Filter::default());
        let followed = f.poll();
        for line in tail.iter().chain(&followed) {
            assert!(!line.contains("SECRETtok"), "{line}");
            assert!(line.contains("/invite/***"), "{line}");
        }
        assert_eq!((tail.len(), followed.len()), (2, 1));
        assert!(super::tail(dir.path(), 10, &Filter::new(None, Some("SECRETtok"))).is_empty());
    }

    #[test]
    fn follower_waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Follower::new(dir.path());
        assert!(f.poll().is_empty());
        append(&dir.path().join("current"), "hello\n");
        assert_eq!(f.poll(), ["hello"]);
    }
}
