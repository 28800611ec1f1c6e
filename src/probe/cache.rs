//! The last probe report, shared by the pages, the API and `/metrics`.
//! One report is kept (a few hundred bytes per name), replaced whole.

use std::sync::{Arc, RwLock};

use super::Report;

/// The newest [`Report`], if any run has finished.
#[derive(Default)]
pub struct HealthCache {
    last: RwLock<Option<Arc<Report>>>,
    wake: tokio::sync::Notify,
}

impl HealthCache {
    /// The newest report.
    pub fn get(&self) -> Option<Arc<Report>> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Asks the periodic task for a full run (DNS included) soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`HealthCache::wake`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Replaces the report.
    pub fn put(&self, report: Report) -> Arc<Report> {
        let report = Arc::new(report);
        *self.last.write().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        report
    }
}
