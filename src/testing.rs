//! Fixtures that the unit tests of several modules share: a panel on a
//! fresh data dir, the admin identity, tunnel fields, a real s6-svscan
//! ([`s6`]) and a loopback DNS server ([`dns`]). A module's own helpers stay
//! in its `tests.rs`; integration tests under `tests/` use `tests/support/`.

use std::path::Path;

use actix_web::web;

use crate::identity::Identity;
use crate::panel::AppState;
use crate::settings::Settings;
use crate::store::TunnelFields;

pub(crate) mod dns;
pub(crate) mod s6;

/// Settings of a panel on `data_dir` as the handler tests use them: a
/// public IP (203.0.113.10) and nginx not managed (the tests that need
/// nginx start their own server).
pub(crate) fn panel_settings(data_dir: &Path) -> Settings {
    let mut settings = Settings { data_dir: data_dir.to_path_buf(), ..Default::default() };
    settings.public_ip = Some("203.0.113.10".parse().unwrap());
    settings.nginx.enabled = false;
    settings
}

/// `portico init` on the settings' data dir, then the panel loaded from it.
pub(crate) async fn init_panel(settings: Settings) -> web::Data<AppState> {
    crate::init::run(&settings).unwrap();
    web::Data::new(AppState::load(settings).await.unwrap())
}

/// The admin as the use cases see it, acting as `actor`.
pub(crate) fn admin(actor: &str) -> Identity {
    Identity::Admin { actor: actor.into() }
}

/// A tunnel `name` to `target` over `agent`: enabled, public, no allowed
/// users or groups, no description.
pub(crate) fn tunnel_fields(name: &str, agent: &str, target: impl ToString) -> TunnelFields {
    TunnelFields {
        name: name.into(),
        agent: agent.into(),
        target: target.to_string(),
        enabled: true,
        access: "public".into(),
        allowed_users: vec![],
        allowed_groups: vec![],
        description: String::new(),
    }
}

/// A PEM CSR for a fresh ECDSA P-256 key, made by `openssl req` as a
/// hardware key store's tool would export it (the key is thrown away).
pub(crate) fn openssl_csr_p256() -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=token"])
        .arg("-keyout")
        .arg(dir.path().join("token.key"))
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
