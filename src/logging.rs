//! Tracing set-up: one place, text or JSON, one span per request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Safe to call once per process.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Middleware: a span per request with method, route and client address;
/// health checks log at DEBUG, everything else at INFO. The path is logged
/// with its secrets masked ([`crate::redact`]): invitation links carry their
/// token in the path, and these logs stream to operators.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let method = req.method().to_string();
    let path = crate::redact::line(req.path()).into_owned();
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let span = tracing::info_span!("request", %method, %path, %peer);
    let started = std::time::Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    let _enter = span.enter();
    if path == "/api/health" {
        tracing::debug!(status, micros, "request");
    } else {
        tracing::info!(status, micros, "request");
    }
    Ok(res.map_into_boxed_body())
}
