//! Onboarding provisioning: certificates for panel/auth/tunnel, nginx with
//! them, relay and authd (re)started, the operator's first visitor user, and
//! COMPLETED. Runs in the background; progress goes to every subscriber.
//!
//! A failed step stops the run with a clear message. Certificates reach
//! nginx in one change that is rolled back when nginx refuses, so a failure
//! never leaves nginx half-applied. Onboarding goes back to DNS_READY and
//! the run can be started again;
//! certificates already valid are kept, not issued twice.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::acme::{Issued, Source};
use crate::app::App;
use crate::audit::{self, Outcome};
use crate::onboarding::{self, OnboardingState};
use crate::store::StoreError;
use crate::supervisor::{Action, SupervisorError};
use crate::users::{NewUser, TotpEnrollment};

/// Services provisioning (re)starts.
const SERVICES: &[&str] = &["relay", "authd"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Running,
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Idle,
    Running,
    Failed,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub current: u32,
    pub total: u32,
}

/// The operator's first visitor login, shown once in the final event.
#[derive(Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirstUser {
    pub username: String,
    pub password: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub totp: Option<TotpEnrollment>,
}

impl std::fmt::Debug for FirstUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstUser").field("username", &self.username).finish_non_exhaustive()
    }
}

/// One progress event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Stable step id: `cert:<fqdn>`, `nginx`, `services`, `user`, `complete`.
    pub task: String,
    pub title: String,
    pub status: StepStatus,
    pub message: String,
    pub progress: Progress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_user: Option<FirstUser>,
}

/// Everything so far, for a subscriber that joins late.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub status: RunStatus,
    pub events: Vec<Event>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("Provisioning is already running")]
    Running,
    #[error("Provisioning needs DNS_READY (or a failed run to retry); onboarding is {0}")]
    WrongState(String),
    #[error("invalid input")]
    Invalid(Vec<crate::model::FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Progress of the current (or last) run, shared by every subscriber.
pub struct Provisioner {
    run: Mutex<Snapshot>,
    tx: broadcast::Sender<Event>,
    /// The final event with the first login until one client got it.
    undelivered: Mutex<Option<Event>>,
}

impl Default for Provisioner {
    fn default() -> Self {
        Provisioner {
            run: Mutex::new(Snapshot { status: RunStatus::Idle, events: Vec::new() }),
            tx: broadcast::channel(64).0,
            undelivered: Mutex::new(None),
        }
    }
}

impl Provisioner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state so far and a receiver for what follows; nothing is missed
    /// or seen twice between the two.
    pub fn subscribe(&self) -> (Snapshot, broadcast::Receiver<Event>) {
        let run = self.lock();
        (run.clone(), self.tx.subscribe())
    }

    pub fn status(&self) -> RunStatus {
        self.lock().status
    }

    /// The final event with the first login, if no client has received it
    /// yet; taken, so it is handed out once.
    pub fn take_undelivered(&self) -> Option<Event> {
        self.undelivered.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether a first login still waits for a client.
    pub fn has_undelivered(&self) -> bool {
        self.undelivered.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Puts back an event whose delivery failed.
    pub fn put_back(&self, event: Event) {
        *self.undelivered.lock().unwrap_or_else(|e| e.into_inner()) = Some(event);
    }

    fn begin(&self) -> Result<(), ProvisionError> {
        let mut run = self.lock();
        if run.status == RunStatus::Running {
            return Err(ProvisionError::Running);
        }
        *run = Snapshot { status: RunStatus::Running, events: Vec::new() };
        Ok(())
    }

    fn set_status(&self, status: RunStatus) {
        self.lock().status = status;
    }

    fn emit(&self, event: Event) {
        let mut run = self.lock();
        if event.status == StepStatus::Failed {
            run.status = RunStatus::Failed;
        }
        // The first login is kept apart from the history, until delivered once.
        if event.first_user.is_some() {
            *self.undelivered.lock().unwrap_or_else(|e| e.into_inner()) = Some(event.clone());
        }
        run.events.push(Event { first_user: None, ..event.clone() });
        let _ = self.tx.send(event); // no subscribers is fine
    }
}

/// The username the first visitor login gets unless the operator picks
/// another: the contact email's local part, as the onboarding form
/// suggests it.
pub async fn suggested_username(state: &App) -> Result<String, StoreError> {
    let email = state.store.settings(&[onboarding::keys::EMAIL]).await?[0].clone().unwrap_or_default();
    Ok(username_from(&email))
}

/// Checks the first visitor's username: its format, and that no user has it.
async fn check_username(state: &App, username: &str) -> Result<(), ProvisionError> {
    let invalid = |m: String| ProvisionError::Invalid(vec![crate::model::FieldError::new("username", m)]);
    if !crate::users::valid_username(username) {
        return Err(invalid("use 1–32 characters: lowercase letters, digits, '.', '_' or '-'".into()));
    }
    if state.store.user(username.to_string()).await?.is_some() {
        return Err(invalid(format!("a user named '{username}' already exists; pick another name")));
    }
    Ok(())
}

/// Starts a run in the background: from DNS_READY, or from PROVISIONING
/// when no run is going (a failed or interrupted one). The first visitor
/// login gets `username`, checked before anything starts.
pub async fn start(state: Arc<App>, username: String) -> Result<(), ProvisionError> {
    check_username(&state, &username).await?;
    state.provision.begin()?;
    let moved = state
        .store
        .transition(onboarding::keys::STATE, "FRESH", &["DNS_READY", "PROVISIONING"], "PROVISIONING", vec![])
        .await;
    match moved {
        Ok(Ok(())) => {}
        Ok(Err(current)) => {
            state.provision.set_status(RunStatus::Idle);
            return Err(ProvisionError::WrongState(current));
        }
        Err(e) => {
            state.provision.set_status(RunStatus::Idle);
            return Err(e.into());
        }
    }
    state.set_onboarding_state(OnboardingState::Provisioning);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let ok = run(&state, &username).await;
        let ms = started.elapsed().as_millis() as u64;
        if ok {
            tracing::info!(ms, "provisioning completed");
        } else {
            tracing::warn!(ms, "provisioning failed");
        }
    });
    Ok(())
}

struct Steps<'a> {
    state: &'a App,
    current: u32,
    total: u32,
}

impl Steps<'_> {
    fn event(&self, task: &str, title: &str, status: StepStatus, message: impl Into<String>) -> Event {
        Event {
            task: task.into(),
            title: title.into(),
            status,
            message: message.into(),
            progress: Progress { current: self.current, total: self.total },
            first_user: None,
        }
    }

    fn start(&mut self, task: &str, title: &str) {
        self.current += 1;
        self.state.provision.emit(self.event(task, title, StepStatus::Running, ""));
    }

    fn end(&self, task: &str, title: &str, status: StepStatus, message: impl Into<String>) {
        self.state.provision.emit(self.event(task, title, status, message));
    }
}

/// The steps, in order. Returns whether the run completed.
async fn run(state: &App, username: &str) -> bool {
    let names = ["panel", "auth", "tunnel"];
    let mut steps = Steps { state, current: 0, total: names.len() as u32 + 4 };
    let rows = state.store.settings(&[onboarding::keys::DOMAIN, onboarding::keys::EMAIL]).await;
    let (domain, email) = match rows {
        Ok(r) => (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default()),
        Err(e) => {
            steps.start("settings", "Read onboarding settings");
            return fail(state, &steps, "settings", "Read onboarding settings", &e.to_string()).await;
        }
    };

    let now = OffsetDateTime::now_utc();
    let keep_until = now + time::Duration::days(i64::from(state.certs.renew_days()));
    let existing = state.store.certificates().await.unwrap_or_default();
    let mut pairs: Vec<(String, Issued, Source)> = Vec::new();
    for label in names {
        let fqdn = format!("{label}.{domain}");
        let (task, title) = (format!("cert:{fqdn}"), format!("Certificate for {fqdn}"));
        steps.start(&task, &title);
        if let Some(rec) = existing.iter().find(|r| r.name == fqdn && r.not_after > keep_until) {
            steps.end(&task, &title, StepStatus::Skipped, format!("already valid until {}", rec.not_after.date()));
            continue;
        }
        match state.certs.issue(&fqdn).await {
            Ok(issued) => {
                let detail = crate::acme::inspect::leaf(&issued.fullchain)
                    .map(|l| format!("issued by {}, valid until {}", l.issuer, l.not_after.date()))
                    .unwrap_or_else(|_| "issued".into());
                steps.end(&task, &title, StepStatus::Done, detail);
                pairs.push((fqdn, issued, Source::Auto));
            }
            Err(e) => return fail(state, &steps, &task, &title, &e.to_string()).await,
        }
    }

    let (task, title) = ("nginx", "Serve the new certificates");
    steps.start(task, title);
    let applied = if pairs.is_empty() {
        state.nginx.change().await.apply("provisioning").await.map(|_| ()).map_err(|e| pipeline_message(&e))
    } else {
        state
            .certs
            .install_and_apply(&state.nginx, pairs, "provisioning: certificates", "system")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                crate::acme::AcmeError::Nginx(p) => pipeline_message(&p),
                other => other.to_string(),
            })
    };
    if let Err(message) = applied {
        return fail(state, &steps, task, title, &message).await;
    }
    steps.end(task, title, StepStatus::Done, "nginx reloaded with the certificates");

    let (task, title) = ("services", "Start the relay and the login service");
    steps.start(task, title);
    match restart_services(state).await {
        Ok(None) => steps.end(task, title, StepStatus::Skipped, "no service supervisor here (supervisor.kind: none)"),
        Ok(Some(done)) => steps.end(task, title, StepStatus::Done, done),
        Err(message) => return fail(state, &steps, task, title, &message).await,
    }

    let (task, title) = ("user", "Create your first visitor login");
    steps.start(task, title);
    let first = match create_first_user(state, &email, username).await {
        Ok(u) => u,
        Err(message) => return fail(state, &steps, task, title, &message).await,
    };
    steps.end(task, title, StepStatus::Done, format!("created visitor user {}", first.username));

    let (task, title) = ("complete", "Finish onboarding");
    steps.start(task, title);
    let moved = state
        .store
        .transition(onboarding::keys::STATE, "FRESH", &["PROVISIONING"], OnboardingState::Completed.as_str(), vec![])
        .await;
    match moved {
        Ok(Ok(())) => {}
        Ok(Err(now)) => return fail(state, &steps, task, title, &format!("onboarding moved to {now} meanwhile")).await,
        Err(e) => return fail(state, &steps, task, title, &e.to_string()).await,
    }
    state.set_onboarding_state(OnboardingState::Completed);
    audit::record(&state.store, "system", "onboarding.provision", &domain, Outcome::Success, None).await;
    state.provision.set_status(RunStatus::Completed);
    let mut last = steps.event(
        task,
        title,
        StepStatus::Done,
        format!(
            "Portico is ready at https://panel.{domain}. Your visitor login is user {}; save it from below now: it is shown only once.",
            first.username
        ),
    );
    last.first_user = Some(first);
    state.provision.emit(last);
    true
}

/// Ends the run at a failed step; onboarding goes back to DNS_READY so the
/// domain can be corrected or the run retried.
async fn fail(state: &App, steps: &Steps<'_>, task: &str, title: &str, message: &str) -> bool {
    let back = OnboardingState::DnsReady;
    match state.store.transition(onboarding::keys::STATE, "FRESH", &["PROVISIONING"], back.as_str(), vec![]).await {
        Ok(Ok(())) => state.set_onboarding_state(back),
        Ok(Err(_)) => {}
        Err(err) => tracing::error!(%err, "cannot move onboarding back after a failed provisioning"),
    }
    steps.end(task, title, StepStatus::Failed, message);
    let details = serde_json::json!({ "step": task, "message": message });
    audit::record(&state.store, "system", "onboarding.provision", task, Outcome::Failure, Some(details)).await;
    false
}

fn pipeline_message(e: &crate::nginx::state::PipelineError) -> String {
    use crate::nginx::state::PipelineError as P;
    match e {
        P::Rejected { details } | P::ReloadFailed { details } if !details.is_empty() => {
            // nginx prefixes lines with `<date> <time> [level] <pid>#<tid>: `.
            let lines: Vec<&str> = details
                .iter()
                .map(|l| match l.find("] ").and_then(|i| l[i..].find(": ").map(|j| i + j + 2)) {
                    Some(start) => &l[start..],
                    None => l.as_str(),
                })
                .collect();
            format!("{e}: {}", lines.join("; "))
        }
        other => other.to_string(),
    }
}

/// Starts each service that is down and restarts each that is up. `None`
/// without a supervisor.
async fn restart_services(state: &App) -> Result<Option<String>, String> {
    let supervisor = state.supervisor.clone();
    tokio::task::spawn_blocking(move || {
        let mut done = Vec::new();
        for name in SERVICES {
            let action = match supervisor.status(name) {
                Err(SupervisorError::Unavailable) => return Ok(None),
                Ok(s) if s.up => Action::Restart,
                _ => Action::Start,
            };
            supervisor.control(name, action).map_err(|e| format!("{name}: {e}"))?;
            done.push(format!("{name} {}", if action == Action::Restart { "restarted" } else { "started" }));
        }
        Ok(Some(done.join(", ")))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A username from the email's local part (`[a-z0-9._-]`), `owner` when none.
fn username_from(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let name: String = local
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(24)
        .collect();
    if name.is_empty() { "owner".into() } else { name }
}

/// The first visitor login, named as the operator chose; a name taken
/// meanwhile fails the step (the run can be started again with another).
async fn create_first_user(state: &App, email: &str, username: &str) -> Result<FirstUser, String> {
    let password = crate::token::random_token(18); // 144 bits, 24 characters
    let new = NewUser {
        username: username.to_string(),
        display_name: username.to_string(),
        email: email.to_string(),
        password: password.clone(),
        groups: Vec::new(),
        totp: true,
    };
    match crate::users::create_user(&state.store, new).await {
        Ok(created) => Ok(FirstUser { username: username.to_string(), password, totp: created.totp }),
        Err(crate::users::UserError::Store(StoreError::Conflict(_))) => {
            Err(format!("a user named '{username}' already exists; start again with another name"))
        }
        Err(e) => Err(format!("cannot create the user: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_come_from_the_email() {
        assert_eq!(username_from("Jane.Doe+x@example.com"), "jane.doex");
        assert_eq!(username_from("@example.com"), "owner");
    }

    #[test]
    fn first_user_debug_hides_the_password() {
        let u = FirstUser { username: "jane".into(), password: "s3cret-pass".into(), totp: None };
        assert!(!format!("{u:?}").contains("s3cret"));
    }
}
