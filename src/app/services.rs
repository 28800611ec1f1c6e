//! Services under the supervisor: their status, an action (start, stop,
//! restart, reload) answered once the service shows it, and the checked
//! query of a log view. The API (`/api/services`), the Services page and the
//! dashboard call these; every action is audited here.

use std::time::Duration;

use serde::Deserialize;

use super::{App, Error};
use crate::audit::Outcome;
use crate::identity::Identity;
use crate::logs::{self, Filter, Level};
use crate::services::{self, ServiceError, ServiceInfo};
use crate::supervisor::Action;

/// Longest accepted `q` filter, characters.
const MAX_QUERY: usize = 200;
/// How long an action's answer waits for the service to reach its new state.
const SETTLE: Duration = Duration::from_secs(5);
/// How long a started process must stay up to count as started (a service
/// that fails at start is up for a moment, again and again).
const STEADY: Duration = Duration::from_secs(1);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static) -> Result<T, Error> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal("services task", e))??)
}

/// Every managed service with its status (empty without a supervisor).
pub async fn statuses(app: &App) -> Result<Vec<ServiceInfo>, Error> {
    let sup = app.supervisor.clone();
    blocking(move || services::list(&sup)).await
}

/// Checks and applies `action` to service `name`, audits it as
/// `service.<action>` and answers the service's status once the action
/// shows, and whether it did within 5 s (see [`settle`]).
pub async fn perform(app: &App, who: &Identity, name: &str, action: &str) -> Result<(ServiceInfo, bool), Error> {
    let name = services::known(name)?;
    let action = services::parse_action(action)
        .ok_or_else(|| Error::field("action", "Use one of start, stop, restart, reload"))?;
    let sup = app.supervisor.clone();
    let before = blocking(move || services::status(&sup, name)).await.ok().and_then(|s| s.pid);
    let sup = app.supervisor.clone();
    let result = blocking(move || services::control(&sup, name, action)).await;
    let verb = services::action_name(action);
    let (outcome, details) = match &result {
        Ok(()) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(serde_json::json!({ "error": e.public_message() }))),
    };
    app.audit(&who.actor(), &format!("service.{verb}"), name, outcome, details).await;
    result?;
    settle(app, name, action, before).await
}

/// The service's status once `action` shows, and whether it did within
/// [`SETTLE`]: down for stop; for start and restart, one process (other than
/// `before`, for restart) up for [`STEADY`].
async fn settle(
    app: &App,
    name: &'static str,
    action: Action,
    before: Option<u32>,
) -> Result<(ServiceInfo, bool), Error> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut up_since: Option<(Option<u32>, tokio::time::Instant)> = None;
    loop {
        let sup = app.supervisor.clone();
        let now = blocking(move || services::status(&sup, name)).await?;
        let reached = match action {
            Action::Reload => true,
            Action::Stop => now.state == "down",
            Action::Start | Action::Restart => {
                let fresh = now.state == "up" && (action == Action::Start || now.pid != before);
                match up_since {
                    Some((pid, since)) if fresh && pid == now.pid => since.elapsed() >= STEADY,
                    _ => {
                        up_since = fresh.then(|| (now.pid, tokio::time::Instant::now()));
                        false
                    }
                }
            }
        };
        if reached || tokio::time::Instant::now() >= deadline {
            return Ok((now, reached));
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
}

/// A log view's query, as the API's query string and the logs page send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines sent first (default 200, at most 5000).
    pub lines: Option<usize>,
    /// Minimum level: trace, debug, info, warn, error.
    pub level: Option<String>,
    /// Only lines containing this text (case-insensitive).
    pub q: Option<String>,
}

/// Checks a log query: how many lines to send first and which lines pass.
pub fn log_request(query: LogQuery) -> Result<(usize, Filter), Error> {
    let lines = query.lines.unwrap_or(200);
    if lines > logs::MAX_TAIL {
        return Err(Error::field("lines", format!("Ask for at most {} lines", logs::MAX_TAIL)));
    }
    let level = match query.level.as_deref() {
        None | Some("") => None,
        Some(l) => {
            Some(Level::parse(l).ok_or_else(|| Error::field("level", "Use one of trace, debug, info, warn, error"))?)
        }
    };
    if query.q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY) {
        return Err(Error::field("q", format!("Use at most {MAX_QUERY} characters")));
    }
    Ok((lines, Filter::new(level, query.q.as_deref())))
}
