//! The login portal's forms (sign-in, second factor, invitation, sign-out)
//! and query strings, through the real authd routes on a real store: no
//! input makes it fail (5xx), and every redirect it answers goes to one of
//! its own pages or to an `https` URL on the appliance's domain.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use arbitrary::{Arbitrary, Unstructured};
use portico::authd::{AuthdState, Clock, configure};
use portico::settings::{Settings, Sources};
use portico::store::Store;
use portico::users::{NewUser, create_invitation, create_user};

const DOMAIN: &str = "example.com";
const PASSWORD: &str = "correct horse battery staple";

type Answer = (StatusCode, Vec<(String, String)>);
type Call = Box<dyn Fn(actix_http::Request) -> Pin<Box<dyn Future<Output = Answer>>>>;

struct Portal {
    system: actix_rt::SystemRunner,
    call: Call,
    csrf: String,
    invitation: String,
    _dir: tempfile::TempDir,
}

fn portal() -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = format!("data_dir: {}\nauthd:\n  slowdown_max_ms: 0\n", dir.path().display());
    std::fs::write(&config, yaml).unwrap();
    let sources = Sources { system_file: None, config_file: Some(config), options_file: None, env: Default::default() };
    let settings = Settings::load(&sources).expect("settings");
    let system = actix_rt::System::new();
    let (call, csrf, invitation) = system.block_on(async {
        let store = Store::open(&settings.db_path()).expect("store");
        store.put_settings(vec![(portico::onboarding::keys::DOMAIN, DOMAIN.into())]).await.unwrap();
        let alice = NewUser {
            username: "alice".into(),
            display_name: "Alice".into(),
            email: "alice@example.test".into(),
            password: PASSWORD.into(),
            groups: vec![],
            totp: true,
        };
        create_user(&store, alice).await.unwrap();
        let invitation = create_invitation(&store, "admin", "bob".into(), "bob@example.test".into(), vec![], None)
            .await
            .unwrap()
            .token;
        let state = actix_web::web::Data::new(AuthdState::new(settings, store, Clock::default()).await.unwrap());
        let app = Rc::new(init_service(actix_web::App::new().configure(configure(state))).await);
        let call: Call = Box::new(move |req| {
            let app = app.clone();
            Box::pin(async move {
                let resp = call_service(&*app, req).await;
                let status = resp.status();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let _ = read_body(resp).await;
                (status, headers)
            })
        });
        let (_, headers) = call(TestRequest::get().uri("/").to_request()).await;
        let cookie = headers.iter().find(|(k, _)| k == SET_COOKIE.as_str()).expect("a CSRF cookie").1.clone();
        let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
        (call, token, invitation)
    });
    Portal { system, call, csrf, invitation, _dir: dir }
}

#[derive(Arbitrary, Debug)]
enum Route {
    Index,
    Login,
    TotpPage,
    Totp,
    InvitePage,
    Invite,
    Logout,
    Denied,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Form {
    route: Route,
    query: Option<String>,
    fields: Vec<(String, String)>,
    raw: Option<Vec<u8>>,
    csrf: bool,
    known_user: bool,
    cookie: Option<String>,
    form_type: bool,
}

/// `s` with every byte a request target may not carry percent-encoded.
fn uri_safe(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'%' | b'/' | b'?' | b'&' | b'='
            | b':' | b'+' | b',' | b';' | b'@' | b'!' | b'$' | b'(' | b')' | b'*' | b'\'' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn check_location(location: &str) {
    if location.starts_with('/') {
        assert!(!location.starts_with("//") && !location.starts_with("/\\"), "redirects off-site: {location:?}");
        return;
    }
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("redirects to {location:?}: {e}"));
    assert_eq!(url.scheme(), "https", "{location:?}");
    let host = url.host_str().unwrap_or_default();
    assert!(host == DOMAIN || host.ends_with(&format!(".{DOMAIN}")), "redirects off the domain: {location:?}");
}

thread_local! {
    /// Never dropped: the app must not outlive the actix system's own
    /// thread-locals at exit.
    static PORTAL: Cell<Option<&'static Portal>> = const { Cell::new(None) };
}

/// A captured request: `<METHOD> <path?query>` on the first line, then the
/// urlencoded body; `csrf` adds the portal's token as a browser would.
fn raw(text: &[u8], csrf: bool) -> Form {
    let (line, body) = match text.iter().position(|b| *b == b'\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (method, target) = line.split_once(' ').unwrap_or(("GET", &line));
    let (path, query) = match target.split_once("?rd=") {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    let post = method == "POST";
    let route = match (post, path) {
        (false, "/") => Route::Index,
        (true, "/login") => Route::Login,
        (false, "/totp") => Route::TotpPage,
        (true, "/totp") => Route::Totp,
        (false, p) if p.starts_with("/invite/") => Route::InvitePage,
        (true, p) if p.starts_with("/invite/") => Route::Invite,
        (true, "/logout") => Route::Logout,
        (false, "/denied") => Route::Denied,
        (_, p) => Route::Other(p.trim_start_matches('/').to_string()),
    };
    Form {
        route,
        query,
        fields: Vec::new(),
        raw: Some(body.to_vec()),
        csrf,
        known_user: false,
        cookie: None,
        form_type: post,
    }
}

pub fn run(data: &[u8]) {
    let (mode, rest) = crate::split_mode(data);
    let form = if mode & 1 == 0 {
        raw(rest, mode & 2 == 2)
    } else {
        let Ok(form) = Form::arbitrary(&mut Unstructured::new(rest)) else { return };
        form
    };
    PORTAL.with(|cell| {
        let p = cell.get().unwrap_or_else(|| {
            let p: &'static Portal = Box::leak(Box::new(portal()));
            cell.set(Some(p));
            p
        });
        let (method_post, path) = match &form.route {
            Route::Index => (false, "/".to_string()),
            Route::Login => (true, "/login".into()),
            Route::TotpPage => (false, "/totp".into()),
            Route::Totp => (true, "/totp".into()),
            Route::InvitePage => (false, format!("/invite/{}", p.invitation)),
            Route::Invite => (true, format!("/invite/{}", p.invitation)),
            Route::Logout => (true, "/logout".into()),
            Route::Denied => (false, "/denied".into()),
            Route::Other(s) => (false, format!("/{}", uri_safe(s))),
        };
        let uri = match &form.query {
            Some(q) => format!("{path}?rd={}", uri_safe(q)),
            None => path,
        };
        let mut body = match &form.raw {
            Some(raw) => raw.clone(),
            None => {
                let mut fields: Vec<String> =
                    form.fields.iter().take(8).map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
                if form.known_user {
                    fields.push("username=alice".into());
                }
                fields.join("&").into_bytes()
            }
        };
        let mut cookie = String::new();
        if form.csrf {
            body.extend_from_slice(format!("&csrf={}", encode(&p.csrf)).as_bytes());
            cookie = format!("__Host-portico_csrf={}", p.csrf);
        }
        if let Some(c) = &form.cookie {
            let c: String = c.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
            cookie = if cookie.is_empty() { c } else { format!("{cookie}; {c}") };
        }
        let mut req = if method_post { TestRequest::post() } else { TestRequest::get() }.uri(&uri);
        if !cookie.is_empty() {
            req = req.insert_header((COOKIE, cookie));
        }
        if form.form_type {
            req = req.insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"));
        }
        let (status, headers) = p.system.block_on((p.call)(req.set_payload(body).to_request()));
        assert!(!status.is_server_error(), "{status} for {form:?}");
        for (k, v) in &headers {
            if k == LOCATION.as_str() {
                check_location(v);
            }
        }
    });
}
