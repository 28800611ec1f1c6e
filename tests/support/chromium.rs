//! Chromium over WebDriver for the browser tests: Debian's `chromium` and
//! `chromium-driver` on loopback, driven with fantoccini, and a page
//! session with bounded polling helpers. Screenshots go to
//! `<target>/ui-screenshots/`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

pub fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A real nginx in the foreground (the rendered tree in front of the
/// panel or the portal), stopped on drop.
pub struct Nginx(pub Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(self.0.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start(binary: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn browser_with(driver: &Driver, chromium: &Path, profile: &Path, extra: &[&str]) -> Client {
    let mut args: Vec<String> = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        .into_iter()
        .chain(["--window-size=1280,1400"])
        .chain(extra.iter().copied())
        .map(String::from)
        .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("connect to chromedriver")
}

pub struct Session {
    pub client: Client,
    pub origin: String,
    pub shots: PathBuf,
    pub prefix: &'static str,
}

impl Session {
    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{}", self.origin, path)).await.unwrap();
    }

    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{}{name}.png", self.prefix)), png).unwrap();
    }

    pub async fn body_text(&self) -> String {
        self.try_body_text().await.expect("page text")
    }

    /// `None` while a navigation replaces the document.
    pub async fn try_body_text(&self) -> Option<String> {
        let text = self.client.execute("return document.body ? document.body.innerText : ''", vec![]).await.ok()?;
        text.as_str().map(str::to_string)
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default())
    }

    /// Polls (bounded) until the page's path and query are `expected`.
    pub async fn wait_path(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if path == expected {
                return;
            }
            assert!(Instant::now() < deadline, "still at {path}, expected {expected}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls (bounded) until the page's text contains `needle`; returns the text.
    pub async fn wait_text(&self, needle: &str) -> String {
        self.wait_text_within(needle, Duration::from_secs(10)).await
    }

    pub async fn wait_text_within(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.try_body_text().await.unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "page never showed {needle:?}: {text}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every link, form action, script and stylesheet URL of the page, resolved.
    pub async fn urls(&self) -> Vec<String> {
        let script = "return [...document.querySelectorAll('[href],[src],[action]')]\
            .map(e => new URL(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'), \
                document.baseURI).href);";
        let found = self.client.execute(script, vec![]).await.unwrap();
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
    }
}
