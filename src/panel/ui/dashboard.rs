//! The dashboard: what needs attention at a glance.

use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::{Chrome, PageError, UiAdmin, spark, system};
use crate::store::{AuditEntry, AuditQuery};

/// Certificates with fewer days left than this are flagged.
const EXPIRY_WARN_DAYS: i64 = 30;

/// (up, total, names that do not serve with why, when probed).
pub type NamesSummary = (usize, usize, Vec<(String, String)>, String);

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub domain: String,
    pub agents_active: usize,
    pub agents_revoked: usize,
    pub keys_active: usize,
    /// Tunnels whose agent is connected and whose name serves (or was not
    /// probed yet).
    pub tunnels_online: usize,
    /// Enabled tunnels whose agent is not connected.
    pub tunnels_offline: usize,
    /// Tunnels whose agent is connected but whose name does not serve.
    pub tunnels_down: usize,
    pub users: usize,
    /// (label, days left) of certificates expiring soon, admin first.
    pub expiring: Vec<(String, i64)>,
    pub admin_days_left: Option<i64>,
    pub recent: Vec<AuditEntry>,
    /// (up, total) services, when a supervisor runs them.
    pub services_up: Option<(usize, usize)>,
    /// The last probe of the public names: (up, total, names that do not
    /// serve with why, checked at). The summary is about names, not processes.
    pub names: Option<NamesSummary>,
    /// Names that do not serve, per the last probe.
    pub names_down: usize,
    /// Memory in use, percent of the container limit (or machine total).
    pub memory_percent: u64,
    /// Portico's processes' memory and its budget, formatted.
    pub portico_memory: String,
    pub budget: String,
    /// Data volume use, percent.
    pub disk_percent: Option<u64>,
    /// Memory in use over the last samples.
    pub memory_spark: Option<spark::Spark>,
    /// Relay traffic per sample interval.
    pub traffic_spark: Option<spark::Spark>,
    /// Relay traffic in the last sample interval, formatted.
    pub traffic_last: Option<String>,
    pub samples: usize,
    pub spark_w: u32,
    pub spark_h: u32,
}

impl DashboardPage {
    pub fn when(&self, t: &OffsetDateTime) -> String {
        super::when(t)
    }
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let store = &ui.state.store;
    let now = OffsetDateTime::now_utc();
    let agents = store.agents().await?;
    let keys = store.api_keys().await?;
    let tunnels = crate::tunnels::list(store, &ui.who).await.map_err(crate::panel::error::ApiError::from)?;
    let tunnels = crate::tunnels::with_health(tunnels, ui.state.health.get().as_deref());
    let serves = |t: &crate::tunnels::TunnelView| t.health.as_ref().is_none_or(|h| h.serves);
    let users = store.users().await?.len();
    let (recent, _) = store
        .audit_entries(AuditQuery { actor: None, action: None, since: None, until: None, limit: 10, offset: 0 })
        .await?;
    let pki = ui.state.pki.clone();
    let admin = web::block(move || pki.admin_info()).await.ok().and_then(Result::ok);
    let admin_days_left = admin.map(|c| (c.not_after - now).whole_days());
    let mut expiring: Vec<(String, i64)> =
        admin_days_left.map(|d| ("admin certificate".to_string(), d)).into_iter().collect();
    expiring.retain(|(_, d)| *d < EXPIRY_WARN_DAYS);
    for a in agents.iter().filter(|a| a.revoked_at.is_none()) {
        if let Some(days) = a.cert_not_after.map(|t| (t - now).whole_days()).filter(|d| *d < EXPIRY_WARN_DAYS) {
            expiring.push((format!("agent {}", a.label), days));
        }
    }
    let domain = crate::onboarding::status(store, None).await?.domain.unwrap_or_default();
    let services_up = if matches!(ui.state.supervisor, crate::supervisor::Supervisor::None) {
        None
    } else {
        let list = crate::app::services::statuses(&ui.state).await.unwrap_or_default();
        Some((list.iter().filter(|s| s.state == "up").count(), crate::services::MANAGED.len()))
    };
    let names = ui.state.health.get().map(|r| {
        let down: Vec<(String, String)> =
            r.names.iter().filter(|n| !n.up).map(|n| (n.name.clone(), n.reason.clone().unwrap_or_default())).collect();
        let at = OffsetDateTime::from_unix_timestamp(r.checked_at).map(|t| super::when(&t)).unwrap_or_default();
        (r.up, r.total, down, at)
    });
    let stats = system::read(&ui).await?;
    let (mem_used, mem_limit, _) = system::memory(&stats);
    let history = ui.state.record_sample(&stats).await?;
    let memory: Vec<u64> = history.iter().map(|s| s.memory_bytes).collect();
    let traffic = spark::deltas(&history.iter().map(|s| s.relay_bytes).collect::<Vec<_>>());
    let page = DashboardPage {
        chrome: ui.chrome("/", "Dashboard").await?,
        domain,
        agents_active: agents.iter().filter(|a| a.revoked_at.is_none()).count(),
        agents_revoked: agents.iter().filter(|a| a.revoked_at.is_some()).count(),
        keys_active: keys.iter().filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now)).count(),
        tunnels_online: tunnels.iter().filter(|t| t.online && serves(t)).count(),
        tunnels_offline: tunnels.iter().filter(|t| t.tunnel.enabled && !t.online).count(),
        tunnels_down: tunnels.iter().filter(|t| t.online && !serves(t)).count(),
        users,
        expiring,
        admin_days_left,
        recent,
        services_up,
        names_down: names.as_ref().map_or(0, |n| n.2.len()),
        names,
        memory_percent: system::percent(mem_used, mem_limit),
        portico_memory: system::size(system::portico_bytes(&stats)),
        budget: system::size(system::MEMORY_BUDGET),
        disk_percent: stats.disk.as_ref().map(|d| d.percent_used()),
        memory_spark: spark::draw(&memory, spark::WIDTH, spark::HEIGHT),
        traffic_spark: spark::draw(&traffic, spark::WIDTH, spark::HEIGHT),
        traffic_last: traffic.last().map(|b| system::size(*b)),
        samples: history.len(),
        spark_w: spark::WIDTH,
        spark_h: spark::HEIGHT,
    };
    super::ok(&page)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(show));
}
