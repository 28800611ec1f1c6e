//! The identity chain: who is calling (middleware) and what they may do
//! (extractors). Identity headers are believed only from trusted peers:
//! `X-SSL-Client-*` from `trusted_proxies` on the panel listener,
//! `X-Remote-User-*` and `X-Ingress-Path` from `ingress.trusted_peers` on the
//! ingress listener. The same headers from anyone else are ignored.
//! Refusals are audited through [`crate::app::denied`].

use std::marker::PhantomData;
use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiError;
use crate::app::denied;
use crate::identity::{self, CertSubject, Denied, Identity, Need, Scope};
use crate::onboarding::OnboardingState;

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Loopback listener behind nginx (mTLS headers).
    Panel,
    /// Home Assistant ingress listener (user headers from the Supervisor).
    Ingress,
}

/// How the onboarding guard treats a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteClass {
    /// No identity, no onboarding guard.
    Public,
    /// Identity required; answers in every state.
    OnboardingStatus,
    /// Identity required; 410 once onboarding is complete.
    Onboarding,
    /// Identity required; 503 until onboarding is complete.
    Management,
    /// Not an API route (pages, static files): no guard here.
    Other,
}

fn classify(path: &str) -> RouteClass {
    match path {
        "/api/health" | "/api/openapi.json" | "/api/enroll" => RouteClass::Public,
        // The stream answers after completion too: it hands the first login
        // to a client that connects only after the run finished.
        // Metrics answer in every state, to any identity that may read them.
        "/api/onboarding/status" | "/api/onboarding/provision/stream" | "/metrics" => RouteClass::OnboardingStatus,
        p if p.starts_with("/api/invite/") => RouteClass::Public,
        p if p.starts_with("/api/onboarding/") => RouteClass::Onboarding,
        p if p.starts_with("/api/") || p == "/api" => RouteClass::Management,
        _ => RouteClass::Other,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// A header value safe to record as a name: printable, bounded.
fn printable(value: &str) -> Option<String> {
    let ok = value.len() <= 128 && value.chars().all(|c| !c.is_control());
    ok.then(|| value.to_string())
}

/// Works out the caller from the request's headers and TCP peer.
async fn resolve(
    state: &AppState,
    channel: Channel,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Option<Identity>, Denied> {
    if let Some(key) = header(headers, "authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim) {
        let record =
            state.keys.verify(&state.store, key, OffsetDateTime::now_utc()).await.map_err(|_| Denied::BadKey)?;
        let scopes = record.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        return Ok(Some(Identity::ApiKey { id: record.id, scopes }));
    }
    match channel {
        Channel::Ingress => {
            let user = header(headers, "x-remote-user-name")
                .or_else(|| header(headers, "x-remote-user-id"))
                .and_then(printable);
            Ok(user.map(|u| Identity::Admin { actor: format!("ingress:{u}") }))
        }
        Channel::Panel => {
            let trusted = peer.is_some_and(|p| state.settings.is_trusted_proxy(p));
            if !trusted || header(headers, "x-ssl-client-verify") != Some("SUCCESS") {
                return Ok(None);
            }
            let cn =
                header(headers, "x-ssl-client-dn").and_then(identity::common_name).ok_or(Denied::CertificateScope)?;
            let serial = crate::pki::normalize_serial(header(headers, "x-ssl-client-serial").unwrap_or(""));
            let subject = identity::cert_subject(&cn).ok_or(Denied::CertificateScope)?;
            certificate_identity(state, subject, serial).await.map(Some)
        }
    }
}

/// Checks a verified client certificate against the issued-certificate records.
async fn certificate_identity(state: &AppState, subject: CertSubject, serial: String) -> Result<Identity, Denied> {
    let cert = state.store.client_cert(serial.clone()).await.map_err(|_| Denied::Revoked)?;
    let Some(cert) = cert.filter(|c| c.revoked_at.is_none()) else {
        return Err(Denied::Revoked);
    };
    match subject {
        CertSubject::Admin if cert.kind == "admin" => Ok(Identity::Admin { actor: format!("admin:{serial}") }),
        CertSubject::Agent(label) if cert.kind == "agent" && cert.label.as_deref() == Some(label.as_str()) => {
            let agent = state.store.agent(label.clone()).await.map_err(|_| Denied::Revoked)?;
            let agent = agent.filter(|a| a.revoked_at.is_none()).ok_or(Denied::Revoked)?;
            let capabilities = agent.capabilities.iter().filter_map(|c| identity::Capability::parse(c)).collect();
            Ok(Identity::Agent { label, capabilities })
        }
        _ => Err(Denied::Revoked),
    }
}

/// Middleware: resolves the caller, applies the ingress peer check and the
/// onboarding guard, and leaves `Option<Identity>` in the request extensions.
pub async fn identify(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().expect("AppState registered").clone();
    let channel = req.app_data::<web::Data<Channel>>().map(|c| *c.get_ref()).unwrap_or(Channel::Panel);
    let peer = req.peer_addr().map(|a| a.ip());
    let class = classify(req.path());

    if channel == Channel::Ingress && !peer.is_some_and(|p| state.settings.is_ingress_peer(p)) {
        let path = crate::redact::line(req.path()).into_owned();
        tracing::warn!(peer = ?peer, %path, "ingress request from an untrusted peer refused");
        denied::untrusted_peer(&state, peer, &path).await;
        return Ok(req.error_response(ApiError::from(Denied::UntrustedPeer)));
    }

    let resolved = resolve(&state, channel, peer, req.headers()).await;
    let who = match resolved {
        Ok(who) => who,
        Err(denied) if class == RouteClass::Public || class == RouteClass::Other => {
            // Public routes work without identity; a bad credential is still noted.
            tracing::debug!(%denied, "ignoring bad credential on a public route");
            None
        }
        Err(refused) => {
            let actor = peer.map(|p| format!("peer:{p}")).unwrap_or_else(|| "unknown".into());
            denied::request_denied(&state, &actor, &crate::redact::line(req.path()), &refused).await;
            return Ok(req.error_response(ApiError::from(refused)));
        }
    };

    if matches!(class, RouteClass::Onboarding | RouteClass::Management | RouteClass::OnboardingStatus) {
        if who.is_none() {
            return Ok(req.error_response(ApiError::from(Denied::Unauthenticated)));
        }
        let onboarding = state.onboarding_state();
        match class {
            RouteClass::Onboarding if onboarding == OnboardingState::Completed => {
                return Ok(req.error_response(ApiError::Gone));
            }
            RouteClass::Management if onboarding != OnboardingState::Completed => {
                return Ok(req.error_response(ApiError::OnboardingIncomplete(onboarding)));
            }
            _ => {}
        }
    }
    req.extensions_mut().insert(who);
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

fn identity_of(req: &HttpRequest) -> Option<Identity> {
    req.extensions().get::<Option<Identity>>().cloned().flatten()
}

/// Whether the caller passes [`Admin`], without auditing: for middleware that
/// only routes the admin and leaves refusals to the extractors.
pub fn is_admin(req: &HttpRequest) -> bool {
    identity_of(req).is_some_and(|who| identity::authorize(&who, Need::Admin).is_ok())
}

/// Checks `need` for the caller; denials are audited.
fn require(req: &HttpRequest, need: Need) -> Result<Identity, ApiError> {
    let who = identity_of(req).ok_or(ApiError::from(Denied::Unauthenticated))?;
    if let Err(refused) = identity::authorize(&who, need) {
        if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
            let (actor, path) = (who.actor(), crate::redact::line(req.path()).into_owned());
            actix_web::rt::spawn(async move { denied::request_denied(&state, &actor, &path, &refused).await });
        }
        return Err(refused.into());
    }
    Ok(who)
}

/// Any authenticated caller.
pub struct Caller(pub Identity);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(identity_of(req).map(Caller).ok_or(Denied::Unauthenticated.into()))
    }
}

/// The admin (client certificate `admin`, an ingress user, or an `admin` API key).
pub struct Admin(pub Identity);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(require(req, Need::Admin).map(Admin))
    }
}

/// Marker types naming one capability, for [`Cap`].
pub trait CapabilityMarker {
    const CAPABILITY: identity::Capability;
}

macro_rules! capability_markers {
    ($($name:ident => $cap:ident),* $(,)?) => {$(
        pub struct $name;
        impl CapabilityMarker for $name {
            const CAPABILITY: identity::Capability = identity::Capability::$cap;
        }
    )*};
}

capability_markers! {
    SystemRead => SystemRead,
    TunnelsRead => TunnelsRead,
    TunnelsWrite => TunnelsWrite,
    ServicesRead => ServicesRead,
    ServicesWrite => ServicesWrite,
    SitesRead => SitesRead,
    SitesWrite => SitesWrite,
    LogsRead => LogsRead,
}

/// A caller holding capability `C` (admins hold all).
pub struct Cap<C: CapabilityMarker>(pub Identity, PhantomData<C>);

impl<C: CapabilityMarker> FromRequest for Cap<C> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(require(req, Need::Capability(C::CAPABILITY)).map(|who| Cap(who, PhantomData)))
    }
}

/// The URL prefix under which the client sees the panel: `X-Ingress-Path`
/// from a trusted ingress peer, else empty. Every URL the server emits starts
/// with it.
pub struct BasePath(pub String);

impl FromRequest for BasePath {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let channel = req.app_data::<web::Data<Channel>>().map(|c| *c.get_ref()).unwrap_or(Channel::Panel);
        let base = (channel == Channel::Ingress)
            .then(|| header(req.headers(), "x-ingress-path"))
            .flatten()
            .filter(|p| valid_base_path(p))
            .map(|p| p.trim_end_matches('/').to_string())
            .unwrap_or_default();
        std::future::ready(Ok(BasePath(base)))
    }
}

/// An absolute path of plain segments: no scheme, host, dot segments or escapes.
fn valid_base_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 256
        && p.split('/').all(|seg| seg != ".." && seg != ".")
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        let cases = [
            ("/api/health", RouteClass::Public),
            ("/api/enroll", RouteClass::Public),
            ("/api/invite/abc", RouteClass::Public),
            ("/api/openapi.json", RouteClass::Public),
            ("/api/onboarding/status", RouteClass::OnboardingStatus),
            ("/metrics", RouteClass::OnboardingStatus),
            ("/api/onboarding/domain", RouteClass::Onboarding),
            ("/api/keys", RouteClass::Management),
            ("/api/enroll/x", RouteClass::Management),
            ("/", RouteClass::Other),
        ];
        for (path, class) in cases {
            assert_eq!(classify(path), class, "{path}");
        }
    }

    #[test]
    fn base_paths() {
        assert!(valid_base_path("/api/hassio_ingress/abc-DEF_123"));
        for bad in ["", "api", "//evil.example", "/a/../b", "/a b", "/a?x", "/a%2f"] {
            assert!(!valid_base_path(bad), "{bad}");
        }
    }
}
