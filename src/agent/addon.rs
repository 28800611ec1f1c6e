//! `portico addon-agent`: the Home Assistant add-on's agent mode. Enrolls
//! once with the panel URL and one-time token from the add-on options
//! (`agent.*`), keeps the key and certificates in `agent.config_dir` (under
//! `/data`, so they survive restarts and updates), runs the agent, and serves
//! a read-only status page on the ingress port.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::config::AgentConfig;
use super::status_page::{self, Page, Phase};
use super::{RunOptions, enroll, tls};
use crate::settings::Settings;

/// Wait between enrollment attempts that failed (panel unreachable, say).
const ENROLL_RETRY: Duration = Duration::from_secs(30);

/// Entry point of `portico addon-agent` (called by `main`): runs until
/// SIGTERM (s6 stopping the service) or SIGINT.
pub fn command(settings: Settings) -> anyhow::Result<()> {
    // One thread, as `portico agent run`: the agent only moves bytes.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = tx.send(true);
        });
        run(settings, rx).await
    })
}

/// Serves the status page, enrolls when there is no identity yet, then runs
/// the agent until `shutdown` turns true.
pub async fn run(settings: Settings, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let dir = settings.agent.config_dir.clone();
    let listener = tokio::net::TcpListener::bind(settings.ingress.listen)
        .await
        .with_context(|| format!("while binding the status page to {}", settings.ingress.listen))?;
    let page = Arc::new(Page {
        dir: dir.clone(),
        trusted_peers: settings.ingress.trusted_peers.clone(),
        panel_url: settings.agent.panel_url.clone(),
        phase: Mutex::new(Phase::Starting),
    });
    tokio::spawn(status_page::serve(listener, page.clone(), shutdown.clone()));

    let Some(cfg) = ensure_enrolled(&settings, &page, &mut shutdown).await else { return Ok(()) };
    page.set_phase(Phase::Enrolled);
    let relay = settings.agent.relay.clone().unwrap_or(cfg.relay);
    let tls = if relay.starts_with("wss://") {
        Some(Arc::new(tls::relay_config(&dir).context("while loading the agent certificate")?))
    } else {
        None
    };
    let opts = RunOptions {
        relay,
        tls,
        label: cfg.label,
        serial: cfg.serial,
        version: crate::protocol::VERSION,
        status_dir: Some(dir),
        connect_to: None,
    };
    super::run(opts, shutdown).await?;
    Ok(())
}

/// The stored identity, or a new one from the options. `None` when shut
/// down first; waits for good options (the add-on restarts when they change).
pub(crate) async fn ensure_enrolled(
    settings: &Settings,
    page: &Page,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<AgentConfig> {
    let dir = &settings.agent.config_dir;
    let opts = &settings.agent;
    loop {
        if let Ok(cfg) = AgentConfig::load(dir) {
            return Some(cfg);
        }
        let (Some(panel), Some(token)) = (&opts.panel_url, &opts.token) else {
            tracing::warn!("agent mode needs the options agent.panel_url and agent.token to enroll");
            page.set_phase(Phase::NotConfigured);
            let _ = shutdown.wait_for(|s| *s).await;
            return None;
        };
        page.set_phase(Phase::Enrolling);
        tracing::info!(panel = %panel, "enrolling with the panel");
        match enroll::enroll(dir, panel, token.expose(), opts.fingerprint.as_deref(), opts.relay.clone()).await {
            Ok(cfg) => {
                tracing::info!(label = %cfg.label, "enrolled");
                return Some(cfg);
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(error = %reason, "enrollment failed; trying again in 30 s");
                page.set_phase(Phase::EnrollFailed(reason));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ENROLL_RETRY) => {}
            _ = shutdown.wait_for(|s| *s) => return None,
        }
    }
}
