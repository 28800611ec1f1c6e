//! Static files embedded in the binary, shared by the panel and the login
//! portal: each is served under `/static/<content hash>/<name>`, so a build
//! with changed content gets a new URL and the old one can be cached forever.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../web/static/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../web/static/app.js")),
    ("logo.svg", "image/svg+xml", include_bytes!("../web/static/logo.svg")),
    ("portal.css", "text/css; charset=utf-8", include_bytes!("../web/static/portal.css")),
];

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// First 12 hex digits of the SHA-256 of `bytes`.
    pub hash: String,
    /// `/static/<hash>/<name>`.
    pub url: String,
}

fn all() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, bytes)| {
                let hash = hex::encode(&Sha256::digest(bytes)[..6]);
                let url = format!("/static/{hash}/{name}");
                Asset { name, content_type, bytes, hash, url }
            })
            .collect()
    })
}

/// The embedded file called `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    all().iter().find(|a| a.name == name)
}

/// The URL path of an embedded file.
pub fn url(name: &str) -> &'static str {
    find(name).map(|a| a.url.as_str()).unwrap_or("/static/missing")
}

/// Total size of the embedded files, bytes.
pub fn total_size() -> usize {
    FILES.iter().map(|(_, _, b)| b.len()).sum()
}
