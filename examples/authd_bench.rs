//! Helper for `bench/authd.sh`:
//! - `setup <data_dir>`: a database with domain `bench.test`, an
//!   authenticated tunnel `app`, a user and one live session; prints the
//!   session cookie value.
//! - `trivial <addr>`: an actix-web server whose every route answers 200
//!   empty (the baseline, and the stub app behind nginx).

use actix_web::{App, HttpResponse, HttpServer, web};
use portico::store::{ClientCert, Store, TunnelFields, VisitorSession};
use time::{Duration, OffsetDateTime};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("setup"), Some(dir)) => actix_web::rt::System::new().block_on(setup(dir)),
        (Some("trivial"), Some(addr)) => actix_web::rt::System::new().block_on(async {
            HttpServer::new(|| App::new().default_service(web::to(|| async { HttpResponse::Ok().finish() })))
                .bind(addr.as_str())?
                .run()
                .await?;
            Ok(())
        }),
        _ => anyhow::bail!("usage: authd_bench setup <data_dir> | trivial <addr>"),
    }
}

async fn setup(dir: &str) -> anyhow::Result<()> {
    let store = Store::open(&std::path::Path::new(dir).join("portico.db"))?;
    let now = OffsetDateTime::now_utc();
    store.put_settings(vec![(portico::onboarding::keys::DOMAIN, "bench.test".into())]).await?;
    let cert = ClientCert {
        serial: "0B".into(),
        kind: "agent".into(),
        label: Some("home".into()),
        fingerprint: "F".into(),
        not_after: now,
        revoked_at: None,
    };
    store.create_agent(vec![], cert, now).await?;
    let tunnel = TunnelFields {
        name: "app".into(),
        agent: "home".into(),
        target: "127.0.0.1:1".into(),
        enabled: true,
        access: "restricted".into(),
        allowed_users: vec![],
        allowed_groups: vec!["family".into()],
        description: String::new(),
    };
    store.insert_tunnel(tunnel, now).await?;
    store.insert_group("family".into(), String::new(), now).await?;
    let user = portico::users::NewUser {
        username: "alice".into(),
        password: "a long enough passphrase".into(),
        groups: vec!["family".into()],
        totp: true,
        ..Default::default()
    };
    portico::users::create_user(&store, user).await?;
    let cookie = portico::token::random_token(32);
    let session = VisitorSession {
        id: portico::token::random_hex(8),
        username: "alice".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(12),
        remember: true,
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
    };
    store.insert_session(portico::token::sha256_hex(cookie.as_bytes()), session).await?;
    println!("{cookie}");
    Ok(())
}
