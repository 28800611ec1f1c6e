//! Cross-site requests to the JSON API. A browser sends the admin's
//! remembered client certificate (or the Home Assistant session) with a
//! request that a foreign page starts, and a plain form post needs no CORS
//! preflight: so every `/api` request other than GET/HEAD that a browser
//! marks as coming from another site is refused here, before any handler.
//!
//! A request is refused when
//! - `Sec-Fetch-Site` is `cross-site` or `same-site` (a sibling vhost such as
//!   a tunnel under the same domain is another site's page too), or
//! - `Origin` is present and is not one of the panel's own origins:
//!   `https://<public_ip>:<nginx.admin_port>`, `https://panel.<domain>` (with
//!   `:<nginx.https_port>` unless 443) once onboarding set a domain, and on
//!   the ingress listener the Home Assistant frontend's origin.
//!
//! Through Home Assistant ingress the browser talks to the HA frontend, so
//! its `Origin` is the frontend's (`https://ha.example:8123`), which the
//! panel cannot know in advance. HA's ingress proxy passes what the browser
//! asked for as `X-Forwarded-Proto` and `X-Forwarded-Host` (it drops `Host`),
//! and the Supervisor forwards them; they are believed only from
//! `ingress.trusted_peers`, so the ingress origin is
//! `<X-Forwarded-Proto>://<X-Forwarded-Host>`.
//! A foreign page cannot set those headers on a simple request.
//!
//! WebSocket handshakes are GETs that no CORS rule protects, and the log and
//! provisioning streams read secrets: they get the same check, except that
//! the UI opens them from whatever address the admin typed, so for them an
//! `Origin` naming the address the request was sent to (its `Host`) or the
//! browser's own `Sec-Fetch-Site: same-origin` is enough. A foreign page
//! cannot make a browser send another site's `Host` with its own `Origin`.
//!
//! Requests with neither header (curl, scripts, API keys, agents) pass.
//! Refusals are 403 `{"error","details"}` and audited as
//! `request.cross_site` with the masked path, the origin and the reason
//! ([`crate::app::denied::cross_site`]). The check runs before the identity chain: a refusal does not depend on who
//! the browser presented or on the onboarding state.

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use super::auth::Channel;
use super::error::ApiError;
use crate::app::denied;

/// Longest `Origin` recorded in the audit log, characters.
const MAX_ORIGIN: usize = 200;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `scheme://host[:port]` with the default port left out, as browsers
/// serialise an origin.
fn origin(host: &str, port: u16) -> String {
    if port == 443 { format!("https://{host}") } else { format!("https://{host}:{port}") }
}

/// The panel's own origins for a request on `channel`.
async fn own_origins(state: &AppState, channel: Channel, peer: Option<IpAddr>, headers: &HeaderMap) -> Vec<String> {
    let mut own = Vec::new();
    if let Some(ip) = state.public_ip() {
        let host = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        own.push(origin(&host, state.settings.nginx.admin_port));
    }
    match state.store.setting(crate::onboarding::keys::DOMAIN).await {
        Ok(Some(domain)) if !domain.is_empty() => {
            own.push(origin(&format!("panel.{}", domain.to_ascii_lowercase()), state.settings.nginx.https_port))
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the domain for the origin check"),
    }
    if channel == Channel::Ingress
        && peer.is_some_and(|p| state.settings.is_ingress_peer(p))
        && let Some(host) = header(headers, "x-forwarded-host")
    {
        let proto = header(headers, "x-forwarded-proto").unwrap_or("https");
        own.push(format!("{}://{}", proto.to_ascii_lowercase(), host.to_ascii_lowercase()));
    }
    own
}

/// Whether `origin` (`scheme://host[:port]`) names the authority the request
/// was sent to.
fn origin_names_host(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// Why a request looks cross-site, if it does (before the origin list).
fn fetch_site_refusal(headers: &HeaderMap) -> Option<String> {
    match header(headers, "sec-fetch-site").map(str::to_ascii_lowercase).as_deref() {
        Some(site @ ("cross-site" | "same-site")) => Some(format!("Sec-Fetch-Site is {site}")),
        _ => None,
    }
}

/// Middleware on `/api`: refuses cross-site state-changing requests and
/// WebSocket handshakes.
pub async fn same_origin_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let headers = req.headers();
    let upgrade = header(headers, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if (req.method() == Method::GET || req.method() == Method::HEAD) && !upgrade {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let presented = header(headers, "origin").map(|o| o.chars().take(MAX_ORIGIN).collect::<String>());
    let same_origin = header(headers, "sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("same-origin"));
    let mut refusal = fetch_site_refusal(headers);
    let same_host = presented.as_deref().is_some_and(|o| origin_names_host(o, header(headers, "host")));
    if refusal.is_none()
        && !(upgrade && (same_origin || same_host))
        && let Some(presented) = &presented
    {
        let state = req.app_data::<web::Data<AppState>>().expect("AppState registered").clone();
        let channel = req.app_data::<web::Data<Channel>>().map(|c| *c.get_ref()).unwrap_or(Channel::Panel);
        let own = own_origins(&state, channel, req.peer_addr().map(|a| a.ip()), headers).await;
        // Origins compare case-insensitively in scheme and host; a browser
        // sends them lowercase, `null` for opaque origins (refused).
        if !own.iter().any(|o| o.eq_ignore_ascii_case(presented)) {
            refusal = Some(format!("Origin {presented} is not one of the panel's origins"));
        }
    }
    let Some(reason) = refusal else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };

    let state = req.app_data::<web::Data<AppState>>().expect("AppState registered").clone();
    let actor = req.peer_addr().map(|p| format!("peer:{}", p.ip())).unwrap_or_else(|| "unknown".into());
    let path = crate::redact::line(req.path()).into_owned();
    tracing::warn!(%actor, method = %req.method(), %path, %reason, "cross-site request refused");
    denied::cross_site(&state, &actor, &path, req.method().as_str(), presented.as_deref(), &reason).await;
    Ok(req.error_response(ApiError::CrossSite(reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_leave_the_default_port_out() {
        assert_eq!(origin("panel.example.com", 443), "https://panel.example.com");
        assert_eq!(origin("203.0.113.10", 9292), "https://203.0.113.10:9292");
    }

    #[test]
    fn origins_naming_the_host() {
        assert!(origin_names_host("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(origin_names_host("https://Panel.example.com", Some("panel.example.com")));
        assert!(!origin_names_host("https://evil.example", Some("panel.example.com")));
        assert!(!origin_names_host("https://panel.example.com.evil.example", Some("panel.example.com")));
        assert!(!origin_names_host("null", Some("null")));
        assert!(!origin_names_host("https://panel.example.com", None));
    }

    #[test]
    fn fetch_metadata_refusals() {
        let cases = [
            (Some("cross-site"), true),
            (Some("same-site"), true),
            (Some("Cross-Site"), true),
            (Some("same-origin"), false),
            (Some("none"), false),
            (None, false),
        ];
        for (value, refused) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(
                    actix_web::http::header::HeaderName::from_static("sec-fetch-site"),
                    actix_web::http::header::HeaderValue::from_static(v),
                );
            }
            assert_eq!(fetch_site_refusal(&headers).is_some(), refused, "{value:?}");
        }
    }
}
