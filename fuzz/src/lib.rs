//! The fuzz targets' bodies: one module per input an outsider controls, each
//! with `run(&[u8])`, which panics when a property breaks. The binaries in
//! `fuzz_targets/` hand them libFuzzer's inputs; the tests below replay the
//! seed corpus (`seeds/<target>/`) and every saved crash
//! (`regressions/<target>/`) in a plain build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

pub mod agent_session;
pub mod agent_upgrade;
pub mod client_dn;
pub mod enroll_csr;
pub mod login_redirect;
pub mod open_header;
pub mod portal_forms;
pub mod relay_head;
pub mod restore_archive;
pub mod settings_layers;
pub mod site_upload;

const MIB: usize = 1024 * 1024;

/// A target's name, body and heap cap per input (bytes).
pub type Target = (&'static str, fn(&[u8]), usize);

/// Every target: the name of its binary and corpus directory, its body,
/// and the most heap one input may take, bytes (over its first input, which
/// also builds what the target keeps: a runtime, a CA, a portal).
pub const TARGETS: &[Target] = &[
    ("agent_session", agent_session::run, 48 * MIB),
    ("agent_upgrade", agent_upgrade::run, 4 * MIB),
    ("client_dn", client_dn::run, MIB),
    ("enroll_csr", enroll_csr::run, 8 * MIB),
    ("login_redirect", login_redirect::run, MIB),
    ("open_header", open_header::run, 4 * MIB),
    ("portal_forms", portal_forms::run, 32 * MIB),
    ("relay_head", relay_head::run, 4 * MIB),
    ("restore_archive", restore_archive::run, 16 * MIB),
    ("settings_layers", settings_layers::run, 16 * MIB),
    ("site_upload", site_upload::run, 16 * MIB),
];

/// Counts the heap the Rust code of a target holds, and its peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = HELD.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs target `name` on one input and checks its heap cap: the property
/// every target has besides its own.
pub fn fuzz(name: &str, data: &[u8]) {
    let (_, run, cap) = TARGETS.iter().find(|(n, _, _)| *n == name).expect("a known target");
    let base = HELD.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    run(data);
    let took = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(took <= *cap, "{name} took {} KiB of heap for one input (cap {} KiB)", took / 1024, cap / 1024);
}

/// One current-thread runtime for the async readers (libFuzzer runs inputs
/// one after another on one thread).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
        .block_on(f)
}

/// A peer that sends `data` in chunks of `chunk` bytes (the way TCP may cut
/// it), then closes; counts what was read.
pub struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
    pub read: usize,
}

impl<'a> Chunked<'a> {
    pub fn new(data: &'a [u8], chunk: usize) -> Self {
        Chunked { data, chunk: chunk.max(1), read: 0 }
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.data.len().min(self.chunk).min(buf.remaining());
        let (now, rest) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = rest;
        self.read += n;
        Poll::Ready(Ok(()))
    }
}

/// A chunk size from one input byte: small cuts are the interesting ones.
pub fn chunk_size(b: u8) -> usize {
    match b {
        0 => usize::MAX,
        b => 1 + (b as usize % 64) * (b as usize / 64 + 1) * 17,
    }
}

/// The first byte as a selector and the rest, for targets with modes.
pub fn split_mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((m, rest)) => (*m, rest),
        None => (0, data),
    }
}

#[cfg(test)]
mod replay {
    use std::path::Path;

    /// Every committed seed and saved crash still passes its target.
    #[test]
    fn seeds_and_regressions_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut replayed = 0;
        for (name, _, _) in super::TARGETS {
            for dir in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else { continue };
                for entry in entries {
                    let path = entry.unwrap().path();
                    if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                        continue;
                    }
                    let data = std::fs::read(&path).unwrap();
                    eprintln!("{}", path.display());
                    super::fuzz(name, &data);
                    replayed += 1;
                }
            }
        }
        for (name, _, _) in super::TARGETS {
            let seeds = root.join("seeds").join(name);
            assert!(seeds.is_dir(), "target {name} has no seed corpus");
            // Real traffic from the harness (fuzz/seeds-from-capture) beside the hand-made seeds.
            let captured = std::fs::read_dir(&seeds)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("harness-"))
                .count();
            assert!(captured > 0, "target {name} has no seed captured from the harness");
        }
        assert!(replayed >= super::TARGETS.len(), "only {replayed} inputs replayed");
    }
}
