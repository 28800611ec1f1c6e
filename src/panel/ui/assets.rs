//! The embedded static files ([`crate::assets`]) as the panel serves them,
//! with a year-long immutable cache.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

pub use crate::assets::{total_size, url};

async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    match crate::assets::find(&name) {
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
