//! The password check behind a small semaphore. bcrypt (cost 12) costs about
//! a quarter of a CPU-second; on a two-core VPS a handful of parallel sign-in
//! attempts would starve nginx, the relay and the panel. At most `permits`
//! checks run at once, on the blocking pool; an attempt that cannot get one
//! within its wait is turned away (429) instead of queueing without bound.
//! The caller picks the wait: clean clients queue for a moment, clients that
//! already failed recently do not queue at all, so a flood from them cannot
//! push a clean visitor's attempt out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

/// No password check became free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Debug)]
pub struct PasswordGate {
    permits: Arc<Semaphore>,
    /// Checks started since start (each one a bcrypt verification).
    checks: AtomicU64,
    /// Attempts turned away because every check was busy.
    busy: AtomicU64,
    running: Arc<AtomicUsize>,
    /// Most checks ever running at once.
    peak: AtomicUsize,
}

impl PasswordGate {
    pub fn new(permits: usize) -> PasswordGate {
        PasswordGate {
            permits: Arc::new(Semaphore::new(permits)),
            checks: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
        }
    }

    /// Checks `password` against `hash` (`None`: an unknown user, checked
    /// against a dummy hash so it costs the same), waiting at most `wait`
    /// for a free check (zero: only a check free right now). The permit
    /// stays held until bcrypt finishes, even when the request is dropped.
    pub async fn verify(&self, password: String, hash: Option<String>, wait: Duration) -> Result<bool, Busy> {
        let permit = match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                return Err(Busy);
            }
        };
        self.checks.fetch_add(1, Ordering::Relaxed);
        let running = self.running.clone();
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let check = tokio::task::spawn_blocking(move || {
            let ok = crate::users::verify_password_blocking(&password, hash.as_deref());
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            ok
        });
        Ok(check.await.unwrap_or(false))
    }

    /// Password checks started since start.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Attempts turned away with 429 because every check was busy.
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    /// Most checks that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Takes every permit (tests: a gate whose checks are all busy).
    #[cfg(test)]
    pub(super) async fn hold_all(&self) -> tokio::sync::OwnedSemaphorePermit {
        let n = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        self.permits.clone().acquire_many_owned(n).await.expect("semaphore open")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twelve checks of a cost-8 hash at once: never more than two run
    /// together, and all finish (none waits longer than the generous wait).
    #[actix_web::test]
    async fn at_most_two_checks_run_at_once() {
        let hash = bcrypt::hash("the right password", 8).unwrap();
        let gate = Arc::new(PasswordGate::new(2));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (gate, hash) = (gate.clone(), hash.clone());
            let password = if i == 0 { "the right password" } else { "a wrong password" };
            tasks.push(actix_web::rt::spawn(async move {
                gate.verify(password.into(), Some(hash), Duration::from_secs(120)).await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|r| **r == Ok(true)).count(), 1);
        assert_eq!(results.iter().filter(|r| **r == Ok(false)).count(), 11);
        assert_eq!(gate.checks(), 12);
        assert!(gate.peak() <= 2, "peak {}", gate.peak());
    }

    #[actix_web::test]
    async fn a_full_gate_turns_attempts_away() {
        let gate = PasswordGate::new(2);
        let held = gate.hold_all().await;
        assert_eq!(gate.verify("x".into(), None, Duration::from_millis(50)).await, Err(Busy));
        assert_eq!(gate.verify("x".into(), None, Duration::ZERO).await, Err(Busy));
        assert_eq!((gate.checks(), gate.busy()), (0, 2));
        drop(held);
        assert_eq!(gate.verify("x".into(), None, Duration::ZERO).await, Ok(false));
        assert_eq!(gate.checks(), 1);
    }
}
