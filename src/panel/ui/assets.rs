//! Static files embedded in the binary, served under
//! `/static/<content hash>/<name>` with a year-long immutable cache: a new
//! build with changed content gets a new URL.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../../web/static/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/static/app.js")),
    ("provision.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/static/provision.js")),
    ("logo.svg", "image/svg+xml", include_bytes!("../../../web/static/logo.svg")),
];

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    hash: String,
    url: String,
}

fn assets() -> &'static [Asset] {
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

/// The URL path (without the base) of an embedded file.
pub fn url(name: &str) -> &'static str {
    assets().iter().find(|a| a.name == name).map(|a| a.url.as_str()).unwrap_or("/static/missing")
}

/// Total size of the embedded files, bytes.
pub fn total_size() -> usize {
    FILES.iter().map(|(_, _, b)| b.len()).sum()
}

async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    match assets().iter().find(|a| a.name == name) {
        Some(a) if a.hash == hash => HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(a.bytes),
        // An old hash after an upgrade: serve the current file, uncached.
        Some(a) => HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(a.bytes),
        None => HttpResponse::NotFound().content_type("text/plain").body("not found"),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{hash}/{name}", web::get().to(serve));
}
