//! authd's counters for `/metrics`: decisions by kind counted with relaxed
//! atomics on the request path (no lock), published to the store every few
//! seconds with the number of active bans and the password gate's counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::web;

use super::AuthdState;
use super::gate::PasswordGate;
use super::regulation::Step;
use crate::store::{ProcessCounter, StoreError};

/// How often the counters reach the store, seconds.
const PUBLISH_EVERY: u64 = 5;

/// Decisions of `GET /api/authz/nginx` since start.
#[derive(Debug, Default)]
pub struct Counters {
    allow: AtomicU64,
    deny: AtomicU64,
    /// 401: nginx redirects the visitor to the login portal.
    login: AtomicU64,
    /// Portal sign-ins refused (wrong or banned) at the password step.
    password_failures: AtomicU64,
    /// Portal sign-ins refused at the TOTP step.
    totp_failures: AtomicU64,
    /// Attempts answered 429 during a ban, without a check (not audited one by one).
    password_refused: AtomicU64,
    totp_refused: AtomicU64,
}

/// What nginx was told.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Allow,
    Deny,
    Login,
}

impl Counters {
    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Allow => &self.allow,
            Outcome::Deny => &self.deny,
            Outcome::Login => &self.login,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A refused sign-in at the portal's `step` ("password" or "totp").
    pub fn login_failed(&self, step: &str) {
        let counter = if step == "totp" { &self.totp_failures } else { &self.password_failures };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt at `step` refused during a ban, before any check.
    pub fn refused(&self, step: Step) {
        let counter = if step == Step::Totp { &self.totp_refused } else { &self.password_refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn rows(&self, bans: usize, gate: &PasswordGate) -> Vec<ProcessCounter> {
        let row = |name: &str, labels: &str, value: u64| ProcessCounter {
            process: "authd".into(),
            name: name.into(),
            labels: labels.into(),
            value,
        };
        vec![
            row("authd_decisions", "decision=allow", self.allow.load(Ordering::Relaxed)),
            row("authd_decisions", "decision=deny", self.deny.load(Ordering::Relaxed)),
            row("authd_decisions", "decision=login", self.login.load(Ordering::Relaxed)),
            row("authd_login_failures", "step=password", self.password_failures.load(Ordering::Relaxed)),
            row("authd_login_failures", "step=totp", self.totp_failures.load(Ordering::Relaxed)),
            row("authd_bans_active", "", bans as u64),
            row("authd_login_refused", "reason=banned,step=password", self.password_refused.load(Ordering::Relaxed)),
            row("authd_login_refused", "reason=banned,step=totp", self.totp_refused.load(Ordering::Relaxed)),
            row("authd_login_refused", "reason=busy,step=password", gate.busy()),
            row("authd_password_checks", "", gate.checks()),
        ]
    }
}

/// Writes the current counters and active bans to the store.
pub async fn publish(state: &AuthdState) -> Result<(), StoreError> {
    let bans = state.regulator.active_bans(state.clock.now().unix_timestamp());
    state.store.put_process_counters("authd", state.counters.rows(bans, &state.gate)).await
}

/// `authd-metrics`: publishes every [`PUBLISH_EVERY`] seconds.
pub fn spawn_publisher(state: web::Data<AuthdState>) {
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(PUBLISH_EVERY));
        loop {
            every.tick().await;
            if let Err(err) = publish(&state).await {
                tracing::warn!(task = "authd-metrics", %err, "publishing counters failed");
            }
        }
    });
}
