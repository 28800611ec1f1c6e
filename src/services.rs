//! The appliance's own services as the panel shows and controls them: which
//! services exist, which actions each allows, and the panel's refusal to stop
//! itself. The supervisor ([`crate::supervisor`]) does the work.

use serde::Serialize;

use crate::supervisor::{Action, ServiceStatus, Supervisor, SupervisorError};

/// The services an operator sees and may control, in display order.
pub const MANAGED: [&str; 4] = ["nginx", "relay", "authd", "panel"];

/// The panel's own service: stopping it would leave nobody to start it again.
pub const SELF: &str = "panel";

/// One service as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    pub name: String,
    /// `up` or `down`.
    pub state: &'static str,
    pub pid: Option<u32>,
    /// Seconds since it went up (absent when down).
    pub uptime_seconds: Option<u64>,
    /// Seconds since it went down (absent when up).
    pub down_seconds: Option<u64>,
    /// Exits while wanted up (s6 restarted it) since the container started.
    pub restarts: u64,
    /// Exit code of the last run, when it is down after exiting on its own.
    pub last_exit_code: Option<i32>,
    /// s6 keeps it up.
    pub wanted_up: bool,
    /// Actions this service accepts.
    pub actions: Vec<Action>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("unknown service `{0}`")]
    Unknown(String),
    #[error("Service `{name}` does not support `{action}`")]
    Unsupported { name: String, action: &'static str },
    #[error("The panel cannot stop itself; restart it instead")]
    SelfStop,
    #[error("No service supervisor is running here")]
    Unavailable,
    #[error("{0}")]
    Supervisor(String),
}

impl From<SupervisorError> for ServiceError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::Unavailable => ServiceError::Unavailable,
            SupervisorError::UnknownService(n) => ServiceError::Unknown(n),
            SupervisorError::Command(m) => ServiceError::Supervisor(m),
        }
    }
}

/// Parses an action name from a URL.
pub fn parse_action(text: &str) -> Option<Action> {
    match text {
        "start" => Some(Action::Start),
        "stop" => Some(Action::Stop),
        "restart" => Some(Action::Restart),
        "reload" => Some(Action::Reload),
        _ => None,
    }
}

pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
        Action::Reload => "reload",
    }
}

/// The actions `name` allows: reload only where a reload means something
/// (nginx re-reads its configuration on SIGHUP), no stop for the panel.
pub fn allowed_actions(name: &str) -> Vec<Action> {
    let mut actions = vec![Action::Start, Action::Restart];
    if name != SELF {
        actions.insert(1, Action::Stop);
    }
    if name == "nginx" {
        actions.push(Action::Reload);
    }
    actions
}

/// Checks that a name from a URL is one of ours.
pub fn known(name: &str) -> Result<&'static str, ServiceError> {
    MANAGED.iter().copied().find(|m| *m == name).ok_or_else(|| ServiceError::Unknown(name.to_string()))
}

fn info(status: ServiceStatus) -> ServiceInfo {
    let actions = allowed_actions(&status.name);
    ServiceInfo {
        state: if status.up { "up" } else { "down" },
        pid: status.pid.filter(|_| status.up),
        uptime_seconds: status.up.then_some(status.for_seconds),
        down_seconds: (!status.up).then_some(status.for_seconds),
        restarts: status.restarts,
        last_exit_code: status.exit_code,
        wanted_up: status.wanted_up,
        actions,
        name: status.name,
    }
}

/// Every managed service the supervisor runs. Blocking: call from the pool.
pub fn list(supervisor: &Supervisor) -> Result<Vec<ServiceInfo>, ServiceError> {
    let all = supervisor.list()?;
    let mut out: Vec<ServiceInfo> = all.into_iter().filter(|s| MANAGED.contains(&s.name.as_str())).map(info).collect();
    out.sort_by_key(|s| MANAGED.iter().position(|m| *m == s.name));
    Ok(out)
}

/// One managed service. Blocking.
pub fn status(supervisor: &Supervisor, name: &str) -> Result<ServiceInfo, ServiceError> {
    let name = known(name)?;
    Ok(info(supervisor.status(name)?))
}

/// Applies `action` to a managed service after the allowlist check. Blocking.
pub fn control(supervisor: &Supervisor, name: &str, action: Action) -> Result<(), ServiceError> {
    let name = known(name)?;
    if name == SELF && action == Action::Stop {
        return Err(ServiceError::SelfStop);
    }
    if !allowed_actions(name).contains(&action) {
        return Err(ServiceError::Unsupported { name: name.to_string(), action: action_name(action) });
    }
    supervisor.control(name, action)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist() {
        assert_eq!(allowed_actions("nginx"), [Action::Start, Action::Stop, Action::Restart, Action::Reload]);
        assert_eq!(allowed_actions("relay"), [Action::Start, Action::Stop, Action::Restart]);
        assert_eq!(allowed_actions("panel"), [Action::Start, Action::Restart]);
        let sup = Supervisor::None;
        assert!(matches!(control(&sup, "panel", Action::Stop), Err(ServiceError::SelfStop)));
        assert!(matches!(control(&sup, "relay", Action::Reload), Err(ServiceError::Unsupported { .. })));
        assert!(matches!(control(&sup, "sshd", Action::Start), Err(ServiceError::Unknown(_))));
        assert!(matches!(control(&sup, "relay", Action::Start), Err(ServiceError::Unavailable)));
        assert_eq!(parse_action("reload"), Some(Action::Reload));
        assert_eq!(parse_action("kill"), None);
    }
}
