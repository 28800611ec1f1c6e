//! A multipart upload into a static site (names and bodies from the
//! uploader): all or nothing. A refused upload leaves the site exactly as it
//! was; an accepted one adds only regular files under the site's root,
//! within its byte cap, each listed with its size; nothing is written
//! anywhere else.

use std::collections::BTreeMap;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use portico::sites::files::{Limits, receive};

use crate::{block_on, chunk_size, split_mode};

const MAX_BYTES: u64 = 64 * 1024;

#[derive(Arbitrary, Debug)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Body {
    parts: Vec<Part>,
    epilogue: bool,
}

const BOUNDARY: &str = "----portico-fuzz-7MA4YWxkTrZu0gW";

fn quoted(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\r' && *c != '\n').collect()
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self.parts.iter().take(24) {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let mut disp = format!("Content-Disposition: form-data; name=\"{}\"", quoted(&p.name));
            if let Some(f) = &p.filename {
                disp.push_str(&format!("; filename=\"{}\"", quoted(f)));
            }
            out.extend_from_slice(disp.as_bytes());
            out.extend_from_slice(b"\r\n");
            if let Some(t) = &p.content_type {
                out.extend_from_slice(format!("Content-Type: {}\r\n", quoted(t)).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&p.body[..p.body.len().min(32 * 1024)]);
            out.extend_from_slice(b"\r\n");
        }
        if self.epilogue {
            out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        }
        out
    }
}

/// Every entry under `dir` (links as links) with its kind and contents.
fn snapshot(dir: &Path, rel: &str, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = format!("{rel}/{}", e.file_name().to_string_lossy());
        let kind = e.file_type().unwrap();
        assert!(!kind.is_symlink(), "a link at {name}");
        if kind.is_dir() {
            out.insert(name.clone(), None);
            snapshot(&e.path(), &name, out);
        } else {
            out.insert(name, Some(std::fs::read(e.path()).unwrap()));
        }
    }
}

pub fn run(data: &[u8]) {
    let (mode, rest) = split_mode(data);
    let body = if mode & 1 == 1 {
        let Ok(body) = Body::arbitrary(&mut Unstructured::new(rest)) else { return };
        body.bytes()
    } else {
        rest.to_vec()
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(chunk_size(mode).min(1 << 16)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let scratch = tempfile::tempdir_in(if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" }).unwrap();
    let data_dir = scratch.path().join("data");
    let root = data_dir.join("sites/blog");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::write(root.join("index.html"), b"<h1>before</h1>").unwrap();
    std::fs::write(root.join("css/site.css"), b"body{}").unwrap();
    std::fs::write(data_dir.join("portico.db"), b"not touched").unwrap();
    let mut before = BTreeMap::new();
    snapshot(&data_dir, "", &mut before);

    let limits = Limits { max_files: 16, max_parts: 8 };
    let result = block_on(receive(
        &data_dir,
        root.clone(),
        MAX_BYTES,
        limits,
        BOUNDARY.to_string(),
        futures_util::stream::iter(chunks),
    ));
    let mut after = BTreeMap::new();
    snapshot(&data_dir, "", &mut after);
    // Staging is left empty; nothing else in the data dir but the site.
    let kept: Vec<_> = after.keys().filter(|k| k.starts_with("/sites/.staging/")).collect();
    assert!(kept.is_empty(), "the upload left {kept:?} in staging");
    after.remove("/sites/.staging");
    before.remove("/sites/.staging");
    match result {
        Err(_) => assert_eq!(before, after, "a refused upload changed the site"),
        Ok(files) => {
            let total: u64 = files.iter().map(|f| f.size).sum();
            assert!(total <= MAX_BYTES, "{total} bytes in a site capped at {MAX_BYTES}");
            assert!(files.len() as u64 <= limits.max_files);
            for f in &files {
                let on_disk = after.get(&format!("/sites/blog/{}", f.path));
                assert!(matches!(on_disk, Some(Some(b)) if b.len() as u64 == f.size), "{} listed, not on disk", f.path);
            }
            for (k, v) in &after {
                if !k.starts_with("/sites/blog/") {
                    assert_eq!(before.get(k), Some(v), "{k} changed outside the site");
                }
            }
        }
    }
}
