//! From the store to a live nginx: builds the [`RenderInput`] from store state
//! and settings, and the [`Pipeline`] that applies it one change at a time.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use super::model::{AdminVhost, CertPaths, Ports, RenderInput, SiteVhost, TunnelVhost, Upstreams, VisitorAuth};
use super::side_by_side::FileDiff;
use super::{Applier, ApplyError, ApplyOutcome, NginxBinary, RenderedTree, SnapshotMeta, render};
use crate::metrics::Outcomes;
use crate::onboarding;
use crate::pki::Pki;
use crate::settings::{AuthdMode, Settings};
use crate::store::{Store, StoreError};

/// Settings row that turns panel 2FA on (`"1"`, written by the 2FA routes);
/// the admin-by-IP vhost is then not rendered.
pub const TWO_FACTOR_KEY: &str = crate::two_factor::keys::ENABLED;

/// Why a change could not be made live. In every case the previous
/// configuration is still the one nginx serves.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `nginx -t` (or the renderer's own checks) refused the new tree.
    #[error("nginx rejected the configuration")]
    Rejected {
        /// nginx's error lines, without file paths.
        details: Vec<String>,
    },
    /// Reload or probe failed; the previous tree was restored.
    #[error("nginx reload failed; previous configuration restored")]
    ReloadFailed {
        /// nginx's error lines, without file paths.
        details: Vec<String>,
    },
    /// No such snapshot.
    #[error("unknown snapshot")]
    UnknownSnapshot,
    /// `nginx.enabled` is false: this process does not manage nginx.
    #[error("nginx management is disabled (setting nginx.enabled)")]
    Disabled,
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data volume is full; the previous configuration stays live.
    #[error("the data volume is full")]
    StorageFull,
    /// Filesystem or task trouble.
    #[error("nginx pipeline: {0}")]
    Internal(String),
}

impl From<ApplyError> for PipelineError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid { details } => PipelineError::Rejected { details: summarize(&details) },
            ApplyError::ReloadFailed { details } | ApplyError::ProbeFailed { details } => {
                PipelineError::ReloadFailed { details: summarize(&details) }
            }
            ApplyError::UnknownSnapshot(_) => PipelineError::UnknownSnapshot,
            ApplyError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => PipelineError::StorageFull,
            ApplyError::Io(e) => PipelineError::Internal(e.to_string()),
        }
    }
}

/// nginx's lines with the `nginx: ` prefix, file locations and the trailing
/// "test failed" line removed: what went wrong, not where files live.
pub fn summarize(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim_start_matches("nginx: ").to_string())
        .filter(|l| !l.starts_with("configuration file"))
        .map(|l| match l.find(" in /") {
            Some(i) => l[..i].to_string(),
            None => l,
        })
        .map(|l| match l.find(" \"/") {
            Some(i) => format!("{} (path omitted)", &l[..i]),
            None => l,
        })
        .collect()
}

/// Certificate files of one name: `<data_dir>/acme/certs/<fqdn>/{fullchain,privkey}.pem`
/// (`*.<d>` is stored under `_wildcard.<d>`).
pub fn cert_paths(data_dir: &Path, fqdn: &str) -> CertPaths {
    let dir = data_dir.join("acme/certs").join(fqdn.replace('*', "_wildcard"));
    CertPaths { fullchain: dir.join("fullchain.pem"), key: dir.join("privkey.pem") }
}

/// The loopback services nginx proxies to, as the settings place them.
pub fn upstreams(settings: &Settings) -> Upstreams {
    Upstreams {
        panel: settings.panel.listen,
        authd: settings.authd.listen,
        relay_agents: settings.relay.agents_listen,
        relay_visitors: settings.relay.visitors_listen,
    }
}

/// The settings' share of a render input: paths, public ports, upstreams,
/// the visitor log and the admin-by-IP vhost; no domain, tunnels or sites.
/// Every render input starts here, so nginx points where the settings say.
pub fn settings_input(settings: &Settings) -> RenderInput {
    let pki = Pki::new(&settings.data_dir);
    let (server_cert, server_key) = pki.server_cert_paths();
    RenderInput {
        data_dir: settings.data_dir.clone(),
        conf_dir: settings.nginx_live_dir(),
        run_dir: settings.nginx.run_dir.clone(),
        ports: Ports {
            bind: settings.nginx.bind,
            http: settings.nginx.http_port,
            https: settings.nginx.https_port,
            admin: settings.nginx.admin_port,
        },
        upstreams: upstreams(settings),
        admin_vhost: Some(AdminVhost { server_cert, server_key, client_ca: pki.ca_cert_path() }),
        domain: None,
        client_ca: pki.ca_cert_path(),
        certs: BTreeMap::new(),
        tunnels: Vec::new(),
        sites: Vec::new(),
        user: settings.nginx.user.clone(),
        visitor_log: settings.panel.visitor_log(),
        visitor_auth: visitor_auth(settings),
        extra: None,
    }
}

/// `authd.mode` and its URLs, as the renderer takes them.
fn visitor_auth(settings: &Settings) -> VisitorAuth {
    match (settings.authd.mode, settings.authd.external.urls()) {
        (AuthdMode::External, Some((verify, portal))) => {
            VisitorAuth::External { verify_url: verify.to_string(), portal_url: portal.to_string() }
        }
        _ => VisitorAuth::Builtin,
    }
}

/// Everything the renderer needs: [`settings_input`] plus the store's state.
pub async fn render_input(settings: &Settings, store: &Store) -> Result<RenderInput, StoreError> {
    let rows = store.settings(&[onboarding::keys::DOMAIN, TWO_FACTOR_KEY]).await?;
    let domain = rows[0].clone().filter(|d| !d.is_empty());
    let two_factor = rows[1].as_deref() == Some("1");
    let tunnels: Vec<TunnelVhost> = store.tunnels().await?.iter().map(TunnelVhost::from).collect();
    let sites: Vec<SiteVhost> = store.sites().await?.iter().map(SiteVhost::from).collect();
    let mut certs = BTreeMap::new();
    if let Some(d) = &domain {
        let labels = ["panel", "auth", "tunnel"]
            .into_iter()
            .map(String::from)
            .chain(tunnels.iter().map(|t| t.name.clone()))
            .chain(sites.iter().map(|s| s.name.clone()));
        for fqdn in labels.map(|l| format!("{l}.{d}")).chain([format!("*.{d}")]) {
            let paths = cert_paths(&settings.data_dir, &fqdn);
            if paths.fullchain.is_file() && paths.key.is_file() {
                certs.insert(fqdn, paths);
            }
        }
    }
    let mut input = settings_input(settings);
    if two_factor {
        input.admin_vhost = None;
    }
    Ok(RenderInput { domain, certs, tunnels, sites, ..input })
}

/// Renders the store's state.
pub async fn render_state(settings: &Settings, store: &Store) -> Result<RenderedTree, PipelineError> {
    let input = render_input(settings, store).await?;
    render(&input).map_err(|e| PipelineError::Rejected { details: vec![e.to_string()] })
}

/// The applier the settings describe.
pub fn applier(settings: &Settings) -> Applier {
    let live = settings.nginx_live_dir();
    let mut bin = NginxBinary::new(&settings.nginx.bin, &settings.nginx.run_dir, &live);
    if !settings.nginx.reload_command.is_empty() {
        bin.reload_command = Some(settings.nginx.reload_command.clone());
    }
    let snapshots = live.parent().unwrap_or(Path::new("/")).join("snapshots");
    let host = match settings.nginx.bind {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let port = settings.nginx.https_port;
    let pid_file = settings.nginx.run_dir.join("nginx.pid");
    Applier::new(live, snapshots, settings.nginx.keep_snapshots, Box::new(bin)).with_probe(Box::new(move || {
        // The reload was signalled just before this runs; allow 20 ms of clock-tick slack.
        let since = uptime_ticks().map(|t| t.saturating_sub(2));
        listens(SocketAddr::new(host, port))?;
        if let Some(since) = since {
            wait_for_new_workers(&pid_file, since);
        }
        Ok(())
    }))
}

/// Clock ticks (USER_HZ, 100 a second on Linux) since boot.
fn uptime_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((secs * 100.0) as u64)
}

/// nginx takes a reload asynchronously: the master re-reads the tree and
/// starts new workers while the old ones finish (titled "worker process is
/// shutting down"). Waits until a worker started at or after `since` (clock
/// ticks since boot) runs, so that what is probed next is the new tree.
/// Gives up quietly after [`WORKERS_SECS`] (no pid file: nginx is not ours to watch).
fn wait_for_new_workers(pid_file: &Path, since: u64) {
    let Some(master) = std::fs::read_to_string(pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(WORKERS_SECS);
    while Instant::now() < deadline {
        if new_worker_runs(master, since) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10)); // poll interval
    }
    tracing::debug!(master, "no new nginx worker seen after the reload");
}

/// A worker started at or after `since` runs, and every older worker has
/// stopped accepting (it exits or is titled "shutting down"): until then
/// an old worker may still take a new connection.
fn new_worker_runs(master: u32, since: u64) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return true };
    let (mut new, mut old) = (false, false);
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name, which may hold spaces: state ppid … starttime (field 22).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(start)) = (fields.get(1), fields.get(19)) else { continue };
        if ppid.parse::<u32>().ok() != Some(master) {
            continue;
        }
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title);
        if !title.contains("worker process") || title.contains("shutting down") {
            continue;
        }
        match start.parse::<u64>() {
            Ok(s) if s >= since => new = true,
            _ => old = true,
        }
    }
    new && !old
}

/// How long a reload may take to start new workers, seconds.
const WORKERS_SECS: u64 = 3;

/// After a reload nginx must still accept connections on the HTTPS port;
/// polled for up to [`PROBE_SECS`] because the reload is asynchronous.
fn listens(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(PROBE_SECS);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("nginx does not accept connections on port {} after the reload", addr.port()));
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
}

/// How long the post-reload probe waits, seconds.
const PROBE_SECS: u64 = 5;

/// Serializes configuration changes: a handler takes [`Pipeline::change`],
/// makes its store change, calls [`Change::apply`], and undoes the store
/// change when that fails. Concurrent changes queue on the guard.
pub struct Pipeline {
    settings: Arc<Settings>,
    store: Store,
    applier: Arc<Applier>,
    lock: Mutex<()>,
    /// Test-only: text injected into the rendered `http` block.
    inject: std::sync::Mutex<Option<String>>,
    /// Test-only: text injected into the next render only.
    inject_once: std::sync::Mutex<Option<String>>,
    /// Applies and rollbacks by outcome, for `/metrics`.
    outcomes: Outcomes<3>,
}

/// Held while one change is made and applied.
pub struct Change<'a> {
    pipeline: &'a Pipeline,
    _guard: MutexGuard<'a, ()>,
}

impl Pipeline {
    pub fn new(settings: Arc<Settings>, store: Store, applier: Applier) -> Pipeline {
        Pipeline {
            settings,
            store,
            applier: Arc::new(applier),
            lock: Mutex::new(()),
            inject: Default::default(),
            inject_once: Default::default(),
            outcomes: Outcomes::new(["ok", "refused", "error"]),
        }
    }

    /// Applies and rollbacks since start by outcome: `ok`, `refused` (nginx
    /// or the renderer refused the tree), `error` (reload, probe, store or
    /// file trouble; the previous configuration stays live).
    pub fn apply_outcomes(&self) -> Vec<(&'static str, u64)> {
        self.outcomes.snapshot()
    }

    fn count<T>(&self, result: &Result<T, PipelineError>) {
        self.outcomes.add(match result {
            Ok(_) => "ok",
            Err(PipelineError::Rejected { .. }) => "refused",
            Err(_) => "error",
        });
    }

    /// Waits for earlier changes to finish.
    pub async fn change(&self) -> Change<'_> {
        Change { pipeline: self, _guard: self.lock.lock().await }
    }

    /// Test-only path to make the next renders invalid.
    #[doc(hidden)]
    pub fn inject_for_tests(&self, extra: Option<String>) {
        *self.inject.lock().unwrap_or_else(|e| e.into_inner()) = extra;
    }

    /// Test-only path to change the next render only (a change that nginx
    /// takes but that breaks what it serves; its undo renders without it).
    #[doc(hidden)]
    pub fn inject_once_for_tests(&self, extra: String) {
        *self.inject_once.lock().unwrap_or_else(|e| e.into_inner()) = Some(extra);
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Applier) -> Result<T, ApplyError> + Send + 'static,
    ) -> Result<T, PipelineError> {
        let applier = self.applier.clone();
        tokio::task::spawn_blocking(move || f(&applier))
            .await
            .map_err(|e| PipelineError::Internal(e.to_string()))?
            .map_err(PipelineError::from)
    }

    /// The live tree.
    pub async fn live_tree(&self) -> Result<RenderedTree, PipelineError> {
        self.blocking(|a| a.live_tree()).await
    }

    /// Snapshots, newest first.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotMeta>, PipelineError> {
        self.blocking(|a| a.snapshots()).await
    }

    /// Unified diff from snapshot `id` to the live tree.
    pub async fn diff(&self, id: String) -> Result<String, PipelineError> {
        self.blocking(move |a| a.diff(&id)).await
    }

    /// Side-by-side rows from snapshot `id` to snapshot `against`, or to the live tree.
    pub async fn compare(&self, id: String, against: Option<String>) -> Result<Vec<FileDiff>, PipelineError> {
        self.blocking(move |a| a.compare(&id, against.as_deref())).await
    }

    /// At start-up: makes nginx run what the store renders when an earlier
    /// process died part-way through a change (an apply was interrupted, or
    /// a store change was made but never applied), or when `force` says
    /// files nginx reads were put back. Returns the outcome when it applied.
    pub async fn reconcile(&self, force: bool) -> Result<Option<ApplyOutcome>, PipelineError> {
        if !self.settings.nginx.enabled {
            return Ok(None);
        }
        let change = self.change().await;
        let interrupted = self.blocking(|a| a.interrupted()).await?;
        let wanted = render_state(&self.settings, &self.store).await?;
        let live = self.live_tree().await?;
        if !force && !interrupted && live == wanted {
            return Ok(None);
        }
        tracing::warn!(interrupted, force, "nginx does not run what the store says; applying it");
        change.apply("start-up: finishing an interrupted change").await.map(Some)
    }

    /// Makes snapshot `id` live again (queued like any change).
    pub async fn rollback(&self, id: String) -> Result<ApplyOutcome, PipelineError> {
        let _guard = self.lock.lock().await;
        if !self.snapshots().await?.iter().any(|s| s.id == id) {
            return Err(PipelineError::UnknownSnapshot);
        }
        if !self.settings.nginx.enabled {
            return Err(PipelineError::Disabled);
        }
        let result = self.blocking(move |a| a.rollback(&id)).await;
        self.count(&result);
        result
    }
}

impl Change<'_> {
    /// Renders the store's current state and makes it live.
    pub async fn apply(&self, reason: &str) -> Result<ApplyOutcome, PipelineError> {
        let p = self.pipeline;
        if !p.settings.nginx.enabled {
            return Ok(ApplyOutcome { changed: false, snapshot: None, files: 0 });
        }
        let result = self.render_and_apply(reason).await;
        p.count(&result);
        result
    }

    async fn render_and_apply(&self, reason: &str) -> Result<ApplyOutcome, PipelineError> {
        let p = self.pipeline;
        let mut input = render_input(&p.settings, &p.store).await?;
        let once = p.inject_once.lock().unwrap_or_else(|e| e.into_inner()).take();
        input.extra = once.or_else(|| p.inject.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let tree = render(&input).map_err(|e| PipelineError::Rejected { details: vec![e.to_string()] })?;
        let reason = reason.to_string();
        p.blocking(move |a| a.apply(&tree, &reason)).await
    }
}

/// The live tree's location, for `portico nginx` commands.
pub fn live_dir(settings: &Settings) -> PathBuf {
    settings.nginx_live_dir()
}

/// `portico nginx render`: writes the live tree from the store without
/// reloading (the container's entry script runs it before nginx starts).
/// Returns a one-line report.
pub fn render_command(settings: &Settings) -> anyhow::Result<String> {
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    std::fs::create_dir_all(&settings.nginx.run_dir)
        .with_context(|| format!("while creating {}", settings.nginx.run_dir.display()))?;
    rt.block_on(crate::acme::journal::recover(&settings.data_dir, &store))
        .context("while settling an interrupted certificate install")?;
    let tree = rt.block_on(render_state(settings, &store)).map_err(|e| anyhow::anyhow!("{e}: {}", details(&e)))?;
    let out = applier(settings).install(&tree, "portico nginx render").map_err(|e| {
        let e = PipelineError::from(e);
        anyhow::anyhow!("{e}: {}", details(&e))
    })?;
    Ok(format!(
        "nginx config {} ({} files) at {}\n",
        if out.changed { "written" } else { "unchanged" },
        out.files,
        settings.nginx_live_dir().display()
    ))
}

/// `portico nginx check`: `nginx -t` on the live tree, and whether it is what
/// the store renders now. `Err` when nginx refuses the live tree.
pub fn check_command(settings: &Settings) -> anyhow::Result<String> {
    use super::Reloader as _;
    use anyhow::Context;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store =
        Store::open(&settings.db_path()).with_context(|| format!("while opening {}", settings.db_path().display()))?;
    let live = settings.nginx_live_dir();
    let bin = NginxBinary::new(&settings.nginx.bin, &settings.nginx.run_dir, &live);
    bin.test(&live).map_err(|e| anyhow::anyhow!("nginx rejects the live configuration:\n{e}"))?;
    let wanted = rt.block_on(render_state(settings, &store)).map_err(|e| anyhow::anyhow!("{e}: {}", details(&e)))?;
    let current = applier(settings).live_tree().context("while reading the live tree")?;
    let state =
        if current == wanted { "matches the store" } else { "differs from the store; run `portico nginx render`" };
    Ok(format!("nginx config at {} is valid and {state}\n", live.display()))
}

fn details(e: &PipelineError) -> String {
    match e {
        PipelineError::Rejected { details } | PipelineError::ReloadFailed { details } => details.join("; "),
        _ => String::new(),
    }
}
