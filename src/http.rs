//! What every HTTP surface (the panel, authd, the relay) shares: the request
//! log middleware.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse, middleware, web};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The request log of the panel and authd (both wrap this middleware)
    /// names the path of an invitation without its token, in the request
    /// line and in every event inside the request's span.
    #[actix_web::test]
    async fn request_logs_mask_invitation_tokens() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = init_service(App::new().wrap(middleware::from_fn(super::log_request)).route(
            "/{tail:.*}",
            web::to(|| async {
                tracing::warn!("inside the handler");
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        for uri in ["/invite/SECRETtoken1", "/api/invite/SECRETtoken2", "/invite/SECRETtoken3/accept"] {
            call_service(&app, TestRequest::post().uri(uri).to_request()).await;
        }
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("SECRETtoken"), "{text}");
        for path in ["path=/invite/*** ", "path=/api/invite/*** ", "path=/invite/***/accept "] {
            assert_eq!(text.matches(path).count(), 2, "{path} on the request line and the handler's event: {text}");
        }
    }
}
