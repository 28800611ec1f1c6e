//! `portico serve`: the panel's HTTP layer (REST API and web UI). Handlers
//! are thin adapters: extract, call one use case in [`crate::app`], map the
//! result ([`error`] holds the one map from failures to statuses). Sessions,
//! CSRF and templates live here; no change to the appliance is made here.

pub mod auth;
pub mod error;
pub mod extract;
pub mod once;
mod openapi;
pub mod origin;
pub(crate) mod routes;
pub mod session;
pub mod ui;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

use crate::app::restore;
use crate::settings::{AuthMode, Settings};

pub use auth::Channel;

/// Shared state of the panel, one per process: the use cases' [`crate::app::App`]
/// (reached through `Deref`) and what only HTTP needs.
pub struct AppState {
    pub app: Arc<crate::app::App>,
    /// Signs and checks the panel's 2FA session cookie.
    pub sessions: session::Sessions,
    /// Results a form post shows once, on the page it redirects to.
    pub shown: once::ShownOnce,
}

impl std::ops::Deref for AppState {
    type Target = crate::app::App;

    fn deref(&self) -> &crate::app::App {
        &self.app
    }
}

impl AppState {
    /// Opens the store and loads the onboarding state.
    pub async fn load(settings: Settings) -> anyhow::Result<AppState> {
        let app = Arc::new(crate::app::App::load(settings).await?);
        Ok(AppState { app, sessions: Default::default(), shown: Default::default() })
    }
}

/// Registers every route, the identity chain and the extractor configs.
pub fn configure(state: web::Data<AppState>, channel: Channel) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let limit = state.settings.panel.json_limit;
        cfg.app_data(state).app_data(web::Data::new(channel)).app_data(web::PayloadConfig::new(limit)).service(
            web::scope("/api")
                .wrap(middleware::from_fn(session::require_second_factor))
                .wrap(middleware::from_fn(auth::identify))
                // Outermost: a cross-site request is refused before anything
                // (identity, onboarding state) can answer differently.
                .wrap(middleware::from_fn(origin::same_origin_only))
                .configure(routes::health::configure)
                .configure(routes::doctor::configure)
                .configure(routes::onboarding::configure)
                .configure(routes::keys::configure)
                .configure(routes::certs::configure)
                .configure(routes::acme::configure)
                .configure(routes::enroll::configure)
                .configure(routes::audit::configure)
                .configure(routes::users::configure)
                .configure(routes::groups::configure)
                .configure(routes::invitations::configure)
                .configure(routes::two_factor::configure)
                .configure(routes::runtime_settings::configure)
                .configure(routes::tunnels::configure)
                .configure(routes::nginx::configure)
                .configure(routes::sites::configure)
                .configure(routes::site_files::configure)
                .configure(routes::services::configure)
                .configure(routes::system::configure)
                .configure(routes::backup::configure)
                .configure(openapi::configure)
                .default_service(web::to(routes::not_found)),
        );
        cfg.service(
            web::scope("/metrics")
                .wrap(middleware::from_fn(session::require_second_factor))
                .wrap(middleware::from_fn(auth::identify))
                .service(web::resource("").get(routes::metrics::show)),
        );
        cfg.configure(routes::downloads::configure);
        cfg.configure(ui::configure);
    }
}

fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("while binding the {what} listener on {addr}"))
}

/// Starts the `visitor-log` task on `panel.visitor_log_port`. A port that
/// cannot be bound only costs the visitor request counts, not the panel.
async fn spawn_visitor_log(state: &web::Data<AppState>) {
    use crate::metrics::visitors;
    let port = state.settings.panel.visitor_log_port;
    if port == 0 {
        return;
    }
    match visitors::bind(port).await {
        Ok(socket) => {
            tracing::info!(port, "counting visitor requests from nginx");
            actix_web::rt::spawn(visitors::listen(socket, state.visitors.clone()));
        }
        Err(err) => tracing::error!(
            task = "visitor-log", port, %err,
            "cannot bind panel.visitor_log_port; visitor requests are not counted"
        ),
    }
}

/// Runs the panel until SIGTERM/SIGINT (actix stops gracefully on both).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut startup = restore::apply_confirmed(&settings.data_dir);
    // A restore or a copy made by hand can leave secrets readable by others.
    crate::init::secure_data_dir(&settings);
    let app = Arc::new(restore::load_after(settings, &mut startup).await?);
    // What a killed nginx apply or certificate install left is settled first,
    // then a restore's check probes the names.
    app.recover_at_start().await;
    restore::after_startup(app.clone(), startup).await;
    let state = web::Data::new(AppState { app, sessions: Default::default(), shown: Default::default() });
    let settings = state.settings.clone();
    state.log.set(&state.runtime.current().panel_log_level);
    crate::tasks::spawn_panel_tasks(state.app.clone());
    spawn_visitor_log(&state).await;

    let panel_state = state.clone();
    let panel = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(crate::http::log_request))
            .configure(configure(panel_state.clone(), Channel::Panel))
    })
    .listen(bind(settings.panel.listen, "panel")?)?
    .shutdown_timeout(5)
    .run();
    tracing::info!(listen = %settings.panel.listen, mode = ?settings.auth.mode, "panel listening");

    if settings.auth.mode == AuthMode::Ingress {
        let ingress_state = state.clone();
        let ingress = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(crate::http::log_request))
                .configure(configure(ingress_state.clone(), Channel::Ingress))
        })
        .listen(bind(settings.ingress.listen, "ingress")?)?
        .shutdown_timeout(5)
        .run();
        tracing::info!(listen = %settings.ingress.listen, "ingress listening");
        let (a, b) = futures_util::future::join(panel, ingress).await;
        a.and(b)?;
    } else {
        panel.await?;
    }
    tracing::info!("panel stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
