//! Fixtures shared by the nginx tests: the three representative states, test
//! certificates, a real nginx process guard and small HTTP helpers.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::model::Access;
use crate::nginx::{CertPaths, Ports, RenderInput, RenderedTree, SiteVhost, TunnelVhost, VisitorAuth, state};
use crate::settings::Settings;

pub const NGINX: &str = "/usr/sbin/nginx";
pub const DOMAIN: &str = "example.test";

/// Every fqdn of the onboarded state.
pub fn names() -> Vec<String> {
    ["panel", "auth", "tunnel", "app", "wiki", "vault", "old", "dash", "notes"]
        .iter()
        .map(|l| format!("{l}.{DOMAIN}"))
        .collect()
}

/// Where the pieces of one rendered world live.
pub struct Layout {
    pub data_dir: PathBuf,
    pub conf_dir: PathBuf,
    pub run_dir: PathBuf,
    pub pki: PathBuf,
}

impl Layout {
    /// Fixed fake paths for golden files.
    pub fn golden() -> Layout {
        Layout {
            data_dir: "/data".into(),
            conf_dir: "/data/nginx/current".into(),
            run_dir: "/run/nginx".into(),
            pki: "/data/pki".into(),
        }
    }

    /// Real paths under `root`; directories are created.
    pub fn temp(root: &Path) -> Layout {
        let l = Layout {
            data_dir: root.join("data"),
            conf_dir: root.join("data/nginx/current"),
            run_dir: root.join("run"),
            pki: root.join("data/pki"),
        };
        for d in [&l.data_dir, &l.run_dir, &l.pki] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(l.data_dir.join("acme/challenges")).unwrap();
        l
    }

    fn cert(&self, fqdn: &str) -> CertPaths {
        CertPaths {
            fullchain: self.data_dir.join(format!("acme/certs/{fqdn}/fullchain.pem")),
            key: self.data_dir.join(format!("acme/certs/{fqdn}/privkey.pem")),
        }
    }
}

/// Default settings with the layout's paths, the nginx `user` and the
/// visitor log off (the onboarded state turns it on).
pub fn settings(l: &Layout, user: Option<&str>) -> Settings {
    assert_eq!(l.pki, l.data_dir.join("pki"), "the settings keep the PKI under the data dir");
    let mut s = Settings { data_dir: l.data_dir.clone(), ..Default::default() };
    s.nginx.live_dir = Some(l.conf_dir.clone());
    s.nginx.run_dir = l.run_dir.clone();
    s.nginx.user = user.map(String::from);
    s.panel.visitor_log_port = 0;
    s
}

/// Public listening address and ports, as settings.
pub fn set_ports(s: &mut Settings, p: Ports) {
    (s.nginx.bind, s.nginx.http_port, s.nginx.https_port, s.nginx.admin_port) = (p.bind, p.http, p.https, p.admin);
}

/// The fresh state: what the settings alone render.
pub fn base_input(l: &Layout, user: Option<&str>) -> RenderInput {
    state::settings_input(&settings(l, user))
}

/// What `s` renders once onboarded: the test domain, with a certificate
/// under `acme/certs/<name>/` for every name (see [`write_certs`]).
pub fn onboarded_input(l: &Layout, s: &Settings) -> RenderInput {
    let mut input = state::settings_input(s);
    input.domain = Some(DOMAIN.into());
    input.certs = names()
        .into_iter()
        .map(|n| {
            let dir = l.data_dir.join("acme/certs").join(&n);
            (n, CertPaths { fullchain: dir.join("fullchain.pem"), key: dir.join("privkey.pem") })
        })
        .collect();
    input
}

/// The representative states: fresh, onboarded, onboarded with 2FA on,
/// onboarded with an external forward-auth service.
pub fn states(l: &Layout, user: Option<&str>) -> Vec<(&'static str, RenderInput)> {
    let fresh = base_input(l, user);
    let mut onboarded = base_input(l, user);
    onboarded.visitor_log = Some("127.0.0.1:3101".parse().unwrap());
    onboarded.domain = Some(DOMAIN.into());
    onboarded.certs = names().iter().map(|n| (n.clone(), l.cert(n))).collect();
    let tunnel = |name: &str, access, enabled| TunnelVhost { name: name.into(), access, enabled };
    // Given out of order on purpose: the renderer sorts.
    onboarded.tunnels = vec![
        tunnel("wiki", Access::Authenticated, true),
        tunnel("app", Access::Public, true),
        tunnel("vault", Access::Restricted, true),
        tunnel("old", Access::Authenticated, false),
    ];
    onboarded.sites = vec![
        SiteVhost { name: "notes".into(), spa_fallback: false, access: Access::Authenticated },
        SiteVhost { name: "dash".into(), spa_fallback: true, access: Access::Public },
    ];
    let mut two_factor = onboarded.clone();
    two_factor.admin_vhost = None;
    let mut external = onboarded.clone();
    external.visitor_auth = VisitorAuth::External {
        verify_url: "http://127.0.0.1:9191/api/verify".into(),
        portal_url: "https://login.example.org/".into(),
    };
    vec![("fresh", fresh), ("onboarded", onboarded), ("two-factor", two_factor), ("external-auth", external)]
}

/// Writes a CA, a server certificate for 127.0.0.1 and one leaf per name
/// (all signed by the CA) at the paths the states reference. Returns the CA
/// certificate path, usable as curl's `--cacert`.
pub fn write_certs(l: &Layout) -> PathBuf {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct subjects: rcgen's default DN would make every leaf look self-signed.
    ca_params.distinguished_name.push(DnType::CommonName, "Portico test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    fs::write(l.pki.join("ca.crt"), ca.pem()).unwrap();
    let leaf = |sans: Vec<String>, cert: &Path, key: &Path| {
        let kp = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans.clone()).unwrap();
        params.distinguished_name.push(DnType::CommonName, sans[0].as_str());
        let c = params.signed_by(&kp, &ca).unwrap();
        fs::create_dir_all(cert.parent().unwrap()).unwrap();
        fs::write(cert, c.pem()).unwrap();
        fs::write(key, kp.serialize_pem()).unwrap();
    };
    leaf(vec!["127.0.0.1".into()], &l.pki.join("server.crt"), &l.pki.join("server.key"));
    for n in names() {
        let c = l.cert(&n);
        leaf(vec![n.clone()], &c.fullchain, &c.key);
    }
    l.pki.join("ca.crt")
}

/// Writes a tree under `dir` (test helper; the applier has its own writer).
pub fn write_tree(dir: &Path, tree: &RenderedTree) {
    for (rel, body) in &tree.files {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Three distinct free loopback ports for http, https and admin.
pub fn test_ports() -> Ports {
    loop {
        let (a, b, c) = (free_port(), free_port(), free_port());
        if a != b && b != c && a != c {
            return Ports { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), http: a, https: b, admin: c };
        }
    }
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20)); // poll interval, not synchronization
    }
}

/// A real nginx master started in the foreground; stopped on drop.
pub struct NginxProcess {
    child: Child,
    pub stderr: PathBuf,
    /// nginx's stdout: the access log.
    pub stdout: PathBuf,
}

impl NginxProcess {
    /// Starts nginx on `conf` with `prefix` as its prefix and waits until
    /// `port` accepts connections.
    pub fn start(prefix: &Path, conf: &Path, port: u16) -> NginxProcess {
        Self::start_with_env(prefix, conf, port, &[])
    }

    /// [`Self::start`] with extra environment variables for the master.
    pub fn start_with_env(prefix: &Path, conf: &Path, port: u16, env: &[(String, String)]) -> NginxProcess {
        let stderr = prefix.join("nginx.stderr");
        let stdout = prefix.join("nginx.stdout");
        let child = Command::new(NGINX)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start nginx");
        let mut p = NginxProcess { child, stderr, stdout };
        wait_for("nginx to listen", Duration::from_secs(10), || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("nginx exited with {status}: {}", fs::read_to_string(&p.stderr).unwrap_or_default());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        p
    }
}

impl NginxProcess {
    /// Anonymous memory (RssAnon) of each worker, KiB.
    pub fn worker_anon_kib(&self) -> Vec<u64> {
        let master = self.child.id().to_string();
        let mut out = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(status) = fs::read_to_string(entry.path().join("status")) else { continue };
            let field =
                |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next());
            if field("PPid:") == Some(master.as_str()) {
                out.push(field("RssAnon:").and_then(|v| v.parse().ok()).unwrap_or(0));
            }
        }
        out
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        // TERM to the master stops its workers too; SIGKILL would orphan them.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` against `https://<host>:<port><path>` resolved to loopback and
/// verified with `ca`. Returns (status, body), or (0, curl's stderr).
pub fn curl(ca: &Path, host: &str, port: u16, path: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("run curl");
    if !out.status.success() {
        return (0, out.stderr);
    }
    let mut body = out.stdout;
    let nl = body.iter().rposition(|&b| b == b'\n').expect("status line");
    let status = std::str::from_utf8(&body[nl + 1..]).unwrap().trim().parse().unwrap_or(0);
    body.truncate(nl);
    (status, body)
}
