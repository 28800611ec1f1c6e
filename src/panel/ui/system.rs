//! System: CPU, memory against the container's limit, the data volume's
//! disk, uptime and each Portico process's memory, from the same reading as
//! `GET /api/system/stats`.

use std::borrow::Borrow;

use actix_web::{HttpResponse, web};
use askama::Template;

use super::{Chrome, PageError, UiAdmin};
use crate::sysstats::SystemStats;

/// The memory budget Portico's processes aim to stay under, bytes.
pub const MEMORY_BUDGET: u64 = 512 * 1024 * 1024;

#[derive(Template)]
#[template(path = "system.html")]
pub struct SystemPage {
    pub chrome: Chrome,
    pub stats: SystemStats,
}

impl SystemPage {
    pub fn size(&self, bytes: impl Borrow<u64>) -> String {
        size(*bytes.borrow())
    }

    pub fn uptime(&self) -> String {
        super::services::duration(self.stats.uptime_seconds)
    }

    /// (used, limit, what the limit is) of memory: the cgroup's when one sets a limit.
    pub fn memory(&self) -> (u64, u64, &'static str) {
        memory(&self.stats)
    }

    pub fn portico_bytes(&self) -> u64 {
        portico_bytes(&self.stats)
    }

    pub fn budget(&self) -> u64 {
        MEMORY_BUDGET
    }

    /// Percent of `used` in `total`, for `<meter>` and text.
    pub fn percent(&self, used: impl Borrow<u64>, total: impl Borrow<u64>) -> u64 {
        percent(*used.borrow(), *total.borrow())
    }
}

/// (used, limit, what the limit is) of memory: the cgroup's when one sets a limit.
pub fn memory(stats: &SystemStats) -> (u64, u64, &'static str) {
    stats.memory_in_use()
}

/// Memory of Portico's own processes together.
pub fn portico_bytes(stats: &SystemStats) -> u64 {
    stats.processes.iter().map(|p| p.rss_bytes).sum()
}

/// Percent of `used` in `total` (0 when `total` is 0).
pub fn percent(used: u64, total: u64) -> u64 {
    used.saturating_mul(100).checked_div(total).unwrap_or(0)
}

/// Reads the (cached) stats off the async executor.
pub async fn read(ui: &UiAdmin) -> Result<SystemStats, PageError> {
    let state = ui.state.clone().into_inner();
    web::block(move || state.stats.get()).await.map_err(|e| PageError::internal(&format!("stats: {e}")))
}

/// `512.0 MiB`, `1.5 GiB`, `900 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

async fn show(ui: UiAdmin) -> Result<HttpResponse, PageError> {
    let stats = read(&ui).await?;
    super::ok(&SystemPage { chrome: ui.chrome("/system", "System").await?, stats })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/system", web::get().to(show));
}
