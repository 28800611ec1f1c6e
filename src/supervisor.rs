//! The service supervisor: what the panel knows of the processes s6 runs
//! beside it, and how it starts, stops and restarts them.
//!
//! In the container every service is a directory under the scan directory
//! (`/run/s6/services`); `s6-svstat` reads its state and `s6-svc` controls it.
//! Outside a container (`supervisor.kind: none`) listing returns nothing and
//! controlling a service is refused with [`SupervisorError::Unavailable`].
//! Calls run external programs: call them from the blocking pool.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::settings::{SupervisorKind, SupervisorSettings};

/// What an operator can ask of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
    Restart,
    /// SIGHUP: re-read configuration (nginx).
    Reload,
}

impl Action {
    fn s6_flag(self) -> &'static str {
        match self {
            Action::Start => "-u",
            Action::Stop => "-d",
            Action::Restart => "-r",
            Action::Reload => "-h",
        }
    }
}

/// One service as s6 sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    pub name: String,
    /// The process is running.
    pub up: bool,
    /// s6 wants it up (it restarts it when it exits).
    pub wanted_up: bool,
    /// It starts with the container (no `down` file).
    pub normally_up: bool,
    pub pid: Option<u32>,
    /// Seconds since it last went up or down.
    pub for_seconds: u64,
    /// Exit code of the last run when it is down and exited on its own.
    pub exit_code: Option<i32>,
    /// Times the process ended while wanted up (s6 restarted it), since the
    /// scan directory was created; counted by the service's `finish` script.
    pub restarts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no service supervisor is running here")]
    Unavailable,
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("supervisor command failed: {0}")]
    Command(String),
}

/// The supervisor the settings describe.
#[derive(Debug, Clone)]
pub enum Supervisor {
    S6 { service_dir: PathBuf },
    None,
}

impl Supervisor {
    pub fn from_settings(settings: &SupervisorSettings) -> Supervisor {
        match settings.kind {
            SupervisorKind::S6 => Supervisor::S6 { service_dir: settings.service_dir.clone() },
            SupervisorKind::None => Supervisor::None,
        }
    }

    /// Every supervised service, by name.
    pub fn list(&self) -> Result<Vec<ServiceStatus>, SupervisorError> {
        let Supervisor::S6 { service_dir } = self else { return Ok(Vec::new()) };
        let entries = std::fs::read_dir(service_dir).map_err(|_| SupervisorError::Unavailable)?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("run").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names.iter().map(|n| svstat(&service_dir.join(n), n)).collect()
    }

    /// One service's state.
    pub fn status(&self, name: &str) -> Result<ServiceStatus, SupervisorError> {
        let dir = self.service_path(name)?;
        svstat(&dir, name)
    }

    /// Starts, stops or restarts a service; returns once s6 took the order.
    pub fn control(&self, name: &str, action: Action) -> Result<(), SupervisorError> {
        let dir = self.service_path(name)?;
        let out = Command::new("s6-svc")
            .arg(action.s6_flag())
            .arg(&dir)
            .output()
            .map_err(|e| SupervisorError::Command(format!("s6-svc: {e}")))?;
        if !out.status.success() {
            return Err(SupervisorError::Command(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        tracing::info!(service = name, ?action, "service control");
        Ok(())
    }

    /// The directory of a known service; names are checked, never joined raw.
    fn service_path(&self, name: &str) -> Result<PathBuf, SupervisorError> {
        let Supervisor::S6 { service_dir } = self else { return Err(SupervisorError::Unavailable) };
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let dir = service_dir.join(name);
        if !valid || !dir.join("run").is_file() {
            return Err(SupervisorError::UnknownService(name.to_string()));
        }
        Ok(dir)
    }
}

fn svstat(dir: &Path, name: &str) -> Result<ServiceStatus, SupervisorError> {
    let out = Command::new("s6-svstat")
        .args(["-o", "up,wantedup,normallyup,pid,updownfor,exitcode"])
        .arg(dir)
        .output()
        .map_err(|e| SupervisorError::Command(format!("s6-svstat: {e}")))?;
    if !out.status.success() {
        return Err(SupervisorError::Command(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let mut status = parse_svstat(name, &String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| SupervisorError::Command(format!("unexpected s6-svstat output for {name}")))?;
    status.restarts =
        std::fs::read_to_string(dir.join(RESTARTS_FILE)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    Ok(status)
}

/// The counter file `service-finish` keeps in each service directory.
pub const RESTARTS_FILE: &str = "restarts";

/// Parses `s6-svstat -o up,wantedup,normallyup,pid,updownfor,exitcode` output
/// (the last field is optional).
fn parse_svstat(name: &str, text: &str) -> Option<ServiceStatus> {
    let mut fields = text.split_whitespace();
    let flag = |v: &str| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let up = flag(fields.next()?)?;
    let wanted_up = flag(fields.next()?)?;
    let normally_up = flag(fields.next()?)?;
    let pid = fields.next()?.parse::<i64>().ok()?;
    let for_seconds = fields.next()?.parse::<u64>().ok()?;
    let exit_code = fields.next().and_then(|c| c.parse::<i32>().ok()).filter(|c| *c >= 0 && !up);
    Some(ServiceStatus {
        name: name.to_string(),
        up,
        wanted_up,
        normally_up,
        pid: u32::try_from(pid).ok().filter(|p| *p > 0),
        for_seconds,
        exit_code,
        restarts: 0,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::testing::s6;

    fn wait_for(sup: &Supervisor, name: &str, pred: impl Fn(&ServiceStatus) -> bool) -> ServiceStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = sup.status(name)
                && pred(&s)
            {
                return s;
            }
            assert!(Instant::now() < deadline, "service {name} never reached the expected state");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn parses_svstat_output() {
        let s = parse_svstat("relay", "true true true 4242 17\n").unwrap();
        assert_eq!((s.up, s.pid, s.for_seconds), (true, Some(4242), 17));
        let s = parse_svstat("authd", "false false false -1 3\n").unwrap();
        assert_eq!((s.up, s.normally_up, s.pid), (false, false, None));
        assert!(parse_svstat("x", "garbage").is_none());
    }

    #[test]
    fn controls_real_s6_services() {
        if !s6::available() {
            eprintln!("skipping: s6 is not installed");
            return;
        }
        let scan = s6::start(&[("relay", false), ("authd", true)]);
        let sup = Supervisor::S6 { service_dir: scan.dir.path().to_path_buf() };

        let relay = wait_for(&sup, "relay", |s| s.up && s.pid.is_some());
        let authd = wait_for(&sup, "authd", |s| !s.up);
        assert!(!authd.normally_up);
        let names: Vec<_> = sup.list().unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["authd", "relay"]);

        sup.control("authd", Action::Start).unwrap();
        wait_for(&sup, "authd", |s| s.up);
        sup.control("relay", Action::Restart).unwrap();
        wait_for(&sup, "relay", |s| s.up && s.pid.is_some() && s.pid != relay.pid);
        sup.control("relay", Action::Stop).unwrap();
        wait_for(&sup, "relay", |s| !s.up && !s.wanted_up);
    }

    #[test]
    fn refuses_unknown_and_malformed_names() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::S6 { service_dir: dir.path().to_path_buf() };
        for name in ["nope", "../etc", "", "a/b", ".s6-svscan"] {
            assert!(matches!(sup.control(name, Action::Restart), Err(SupervisorError::UnknownService(_))), "{name}");
        }
        assert!(matches!(Supervisor::None.control("relay", Action::Start), Err(SupervisorError::Unavailable)));
        assert!(Supervisor::None.list().unwrap().is_empty());
    }
}
