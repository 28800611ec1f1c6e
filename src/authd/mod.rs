//! `portico authd`: forward auth for nginx `auth_request` (Authelia's
//! contract: `GET /api/authz/nginx`, `Remote-*` headers, 401 → portal), the
//! visitor login portal (password, then TOTP) and visitor sessions.
//!
//! Forwarded headers (`X-Forwarded-*`, `X-Original-URL`, `X-Real-IP`,
//! `X-Portico-Resource`) are believed only from `trusted_proxies` (nginx on
//! loopback). A decision for another peer is always 403.

pub mod clock;
pub mod counters;
mod error;
mod forms;
pub mod gate;
mod invite;
mod pages;
mod portal;
pub mod redirect;
pub mod regulation;
mod sessions;
mod signout;
mod verify;

use std::net::{IpAddr, TcpListener};
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpServer, middleware, web};
use anyhow::Context;

use crate::settings::{AuthdSettings, Settings};
use crate::store::Store;
pub use clock::Clock;
pub use sessions::SESSION_COOKIE;

/// Shared state of one authd process.
pub struct AuthdState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: Clock,
    pub regulator: regulation::Regulator,
    /// bcrypt behind a semaphore: at most `authd.password_checks` at once.
    pub gate: gate::PasswordGate,
    pub cache: verify::DecisionCache,
    /// Decision counters for `/metrics`.
    pub counters: counters::Counters,
    /// Runtime settings from the store (session lifetimes, regulation, log level).
    runtime: crate::runtime_settings::Cached,
    /// This process's log filter (authd's runtime log level).
    pub log: crate::logging::LevelControl,
    /// HMAC key for the portal's CSRF tokens and pending-login cookie.
    key: [u8; 32],
}

impl AuthdState {
    pub async fn new(settings: Settings, store: Store, clock: Clock) -> anyhow::Result<AuthdState> {
        let secret = store.install_secret().await.context("while reading the install secret")?;
        let gate = gate::PasswordGate::new(settings.authd.password_checks as usize);
        Ok(AuthdState {
            gate,
            key: crate::token::derive_key(secret.as_bytes(), "authd-portal"),
            settings: Arc::new(settings),
            store,
            clock,
            regulator: Default::default(),
            cache: Default::default(),
            counters: Default::default(),
            runtime: Default::default(),
            log: crate::logging::LevelControl::process(),
        })
    }

    /// authd's settings with the runtime settings changed in the panel in
    /// place (read from the store at most every two seconds by this
    /// process's clock), so lifetimes and regulation change without a
    /// restart. Puts authd's runtime log level in force too.
    pub async fn current(&self) -> AuthdSettings {
        let values = self.runtime.get(&self.store, &self.settings, self.clock.now()).await;
        self.log.set(&values.authd_log_level);
        values.authd(&self.settings.authd)
    }

    /// The appliance's domain once onboarding set it.
    async fn domain(&self) -> Option<String> {
        self.cache.domain(&self.store).await
    }

    /// `https://auth.<domain>[:port]`, the portal's own origin as visitors see it.
    fn portal_origin(&self, domain: &str) -> String {
        match self.settings.nginx.https_port {
            443 => format!("https://auth.{domain}"),
            port => format!("https://auth.{domain}:{port}"),
        }
    }

    fn trusted(&self, req: &HttpRequest) -> bool {
        req.peer_addr().is_some_and(|p| self.settings.trusted_proxies.contains(&p.ip()))
    }

    /// A forwarded header, only when the peer is a trusted proxy.
    fn forwarded<'a>(&self, req: &'a HttpRequest, name: &str) -> Option<&'a str> {
        if !self.trusted(req) {
            return None;
        }
        req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The visitor's address: `X-Real-IP` from a trusted proxy (nginx),
    /// else the TCP peer.
    fn client_addr(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.forwarded(req, "x-real-ip")
            .and_then(|v| v.parse::<IpAddr>().ok())
            .or_else(|| req.peer_addr().map(|p| p.ip()))
    }

    /// The visitor's address as text (sessions, audit).
    fn client_ip(&self, req: &HttpRequest) -> String {
        self.client_addr(req).map(|ip| ip.to_string()).unwrap_or_default()
    }

    /// The visitor's regulation bucket: its IPv4 address or IPv6 /64.
    fn client_key(&self, req: &HttpRequest) -> String {
        self.client_addr(req).map(regulation::client_key).unwrap_or_default()
    }
}

/// Registers authd's routes, behind the middleware that shows an
/// [`error::AuthdError`] as its portal page.
pub fn configure(state: web::Data<AuthdState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let routes = web::scope("")
            .wrap(middleware::from_fn(error::pages))
            .configure(verify::configure)
            .configure(pages::configure)
            .configure(portal::configure)
            .configure(signout::configure)
            .configure(invite::configure);
        cfg.app_data(state)
            .app_data(web::FormConfig::default().limit(16 * 1024).error_handler(forms::form_error))
            .service(routes);
    }
}

/// How often authd reads the runtime settings while no request asks, seconds.
const RUNTIME_REFRESH_SECS: u64 = 5;

/// `runtime-settings`: reads the runtime settings at start and then every
/// few seconds, so a log level changed in the panel applies while idle too.
fn spawn_runtime_refresh(state: web::Data<AuthdState>) {
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(RUNTIME_REFRESH_SECS));
        loop {
            every.tick().await;
            state.current().await;
        }
    });
}

/// Runs authd until SIGTERM/SIGINT.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let listen = settings.authd.listen;
    let state = web::Data::new(AuthdState::new(settings, store, Clock::default()).await?);
    spawn_runtime_refresh(state.clone());
    sessions::spawn_cleanup(state.clone());
    counters::spawn_publisher(state.clone());
    let listener =
        TcpListener::bind(listen).with_context(|| format!("while binding the authd listener on {listen}"))?;
    let server = HttpServer::new(move || {
        App::new().wrap(middleware::from_fn(crate::http::log_request)).configure(configure(state.clone()))
    })
    .listen(listener)?
    .shutdown_timeout(5)
    .run();
    tracing::info!(%listen, "authd listening");
    server.await?;
    tracing::info!("authd stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
