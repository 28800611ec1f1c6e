//! The dashboard's history: one memory and traffic sample a minute.

use std::time::Instant;

use super::App;
use crate::store::StoreError;
use crate::sysstats::{Sample, SystemStats};

impl App {
    /// Records memory in use and the relay's byte total in the sample ring
    /// (at most one sample a minute) and returns the history, oldest first.
    /// The `stats-history` task and the dashboard both call it.
    pub async fn record_sample(&self, stats: &SystemStats) -> Result<Vec<Sample>, StoreError> {
        let (memory_bytes, _, _) = stats.memory_in_use();
        let relay_bytes = self.store.relay_status().await?.iter().map(|a| a.bytes_in.saturating_add(a.bytes_out)).sum();
        Ok(self.stats.sample(Instant::now(), Sample { memory_bytes, relay_bytes }))
    }
}
