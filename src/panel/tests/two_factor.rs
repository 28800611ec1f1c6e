//! Panel 2FA: on/off, what it guards and what it exempts, replay and bans.

use super::*;
use crate::panel::session::COOKIE;
use crate::two_factor::keys;

fn code_at(secret: &str, offset_steps: i64) -> String {
    let t = OffsetDateTime::now_utc().unix_timestamp() + offset_steps * crate::totp::STEP;
    crate::totp::code_now(secret, t).unwrap()
}

fn session_cookie(res: &ServiceResponse) -> String {
    let set = res.headers().get("set-cookie").expect("a session cookie").to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

async fn enable(w: &World) -> (String, String) {
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/settings/2fa/setup")).await;
    assert_eq!(res.status(), 200);
    let secret = json_body(res).await["totpSecret"].as_str().unwrap().to_string();
    let confirm = TestRequest::post().uri("/api/settings/2fa/confirm").set_json(json!({"code": code_at(&secret, 0)}));
    let res = w.call(Who::Admin, confirm).await;
    assert_eq!(res.status(), 200);
    let cookie = session_cookie(&res);
    (secret, cookie)
}

#[actix_web::test]
async fn enabled_2fa_guards_admins_and_exempts_the_rest() {
    let w = completed_world().await;
    let (secret, cookie) = enable(&w).await;
    assert_eq!(w.state.store.setting(keys::ENABLED).await.unwrap().as_deref(), Some("1"), "IP vhost flag");

    let res = w.call(Who::Admin, TestRequest::get().uri("/api/keys")).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json_body(res).await, json!({"error": "2fa_required"}));
    let with = |c: &str| TestRequest::get().uri("/api/keys").insert_header(("cookie", c.to_string()));
    assert_eq!(w.call(Who::Admin, with(&cookie)).await.status(), 200);
    // A forged or foreign cookie does not pass.
    let forged = format!("{COOKIE}={}.{}", i64::MAX, "ab".repeat(32));
    assert_eq!(w.call(Who::Admin, with(&forged)).await.status(), 401);
    // Exempt: API keys, agents, ingress users, health, openapi, the 2FA routes.
    assert_eq!(w.call(Who::KeyAdmin, TestRequest::get().uri("/api/keys")).await.status(), 200);
    assert_eq!(w.call(Who::AgentWithCap, TestRequest::get().uri("/api/audit")).await.status(), 200);
    assert_eq!(w.call(Who::IngressUser, TestRequest::get().uri("/api/keys")).await.status(), 200);
    assert_eq!(w.call(Who::Admin, TestRequest::get().uri("/api/health")).await.status(), 200);
    assert_eq!(w.call(Who::Admin, TestRequest::get().uri("/api/openapi.json")).await.status(), 200);
    let res = w.call(Who::Admin, TestRequest::get().uri("/api/settings/2fa")).await;
    assert_eq!(json_body(res).await["enabled"], json!(true));

    // The confirm code cannot be replayed; the next step's code verifies.
    let verify = |code: String| TestRequest::post().uri("/api/settings/2fa/verify").set_json(json!({"code": code}));
    assert_eq!(w.call(Who::Admin, verify(code_at(&secret, 0))).await.status(), 401, "replayed code");
    let res = w.call(Who::Admin, verify(code_at(&secret, 1))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(w.call(Who::Admin, with(&session_cookie(&res))).await.status(), 200);

    // Five failures (the replay above counts) ban verification, even with a right code.
    for _ in 0..4 {
        assert_eq!(w.call(Who::Admin, verify("000000".into())).await.status(), 401);
    }
    assert_eq!(w.call(Who::Admin, verify(code_at(&secret, 1))).await.status(), 403, "banned");
    let q = "/api/audit?action=2fa.verify";
    let entries = json_body(w.call(Who::KeyAdmin, TestRequest::get().uri(q)).await).await;
    assert!(entries.to_string().matches("failure").count() >= 5, "{entries}");
}

#[actix_web::test]
async fn disabling_2fa_lifts_the_guard() {
    let w = completed_world().await;
    let (secret, _) = enable(&w).await;
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/settings/2fa/setup")).await;
    assert_eq!(res.status(), 409, "already enabled");
    let disable = |code: String| TestRequest::post().uri("/api/settings/2fa/disable").set_json(json!({"code": code}));
    assert_eq!(w.call(Who::Admin, disable("000000".into())).await.status(), 401);
    assert_eq!(w.call(Who::Admin, disable(code_at(&secret, 1))).await.status(), 200);
    assert_eq!(w.state.store.setting(keys::ENABLED).await.unwrap().as_deref(), Some("0"));
    assert_eq!(w.call(Who::Admin, TestRequest::get().uri("/api/keys")).await.status(), 200);
}

fn recovery_codes(body: &Value) -> Vec<String> {
    body["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

async fn remaining(w: &World) -> Value {
    json_body(w.call(Who::Admin, TestRequest::get().uri("/api/settings/2fa")).await).await["recoveryCodesRemaining"]
        .clone()
}

#[actix_web::test]
async fn recovery_codes_sign_in_once_each_and_go_with_2fa() {
    let w = completed_world().await;
    assert_eq!(remaining(&w).await, Value::Null, "no codes while 2FA is off");
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/settings/2fa/setup")).await;
    let secret = json_body(res).await["totpSecret"].as_str().unwrap().to_string();
    let confirm = TestRequest::post().uri("/api/settings/2fa/confirm").set_json(json!({"code": code_at(&secret, 0)}));
    let res = w.call(Who::Admin, confirm).await;
    assert_eq!(res.status(), 200);
    let codes = recovery_codes(&json_body(res).await);
    assert_eq!(codes.len(), 10);
    assert_eq!(remaining(&w).await, json!(10));
    let stored = w.state.store.recovery_code_hashes().await.unwrap();
    assert!(stored.iter().all(|(_, h)| !codes.iter().any(|c| h.contains(&c[..5]))), "only digests are stored");

    // A recovery code signs in instead of the authenticator code, once.
    let verify = |code: &str| TestRequest::post().uri("/api/settings/2fa/verify").set_json(json!({"code": code}));
    let res = w.call(Who::Admin, verify(&codes[0].to_uppercase())).await;
    assert_eq!(res.status(), 200, "case does not matter");
    let with = TestRequest::get().uri("/api/keys").insert_header(("cookie", session_cookie(&res)));
    assert_eq!(w.call(Who::Admin, with).await.status(), 200);
    assert_eq!(w.call(Who::Admin, verify(&codes[0])).await.status(), 401, "a used code is spent");
    assert_eq!(remaining(&w).await, json!(9));
    let q = "/api/audit?action=2fa.recovery_used";
    let entries = json_body(w.call(Who::KeyAdmin, TestRequest::get().uri(q)).await).await;
    assert_eq!(entries["entries"][0]["details"]["remaining"], 9, "{entries}");

    // A new set replaces the old one; it needs a code too.
    let regenerate =
        |code: &str| TestRequest::post().uri("/api/settings/2fa/recovery-codes").set_json(json!({"code": code}));
    assert_eq!(w.call(Who::Admin, regenerate("abcde-fghjk")).await.status(), 401);
    let res = w.call(Who::Admin, regenerate(&codes[1])).await;
    assert_eq!(res.status(), 200);
    let fresh = recovery_codes(&json_body(res).await);
    assert_eq!(fresh.len(), 10);
    assert_eq!(remaining(&w).await, json!(10));
    assert_eq!(w.call(Who::Admin, verify(&codes[2])).await.status(), 401, "the old set no longer works");
    let actions = json_body(w.call(Who::KeyAdmin, TestRequest::get().uri("/api/audit")).await).await.to_string();
    assert!(actions.contains("2fa.recovery_regenerate"), "audited");

    // Turning 2FA off (with a recovery code) deletes the codes.
    let disable = TestRequest::post().uri("/api/settings/2fa/disable").set_json(json!({"code": fresh[0]}));
    assert_eq!(w.call(Who::Admin, disable).await.status(), 200);
    assert!(w.state.store.recovery_code_hashes().await.unwrap().is_empty());
    assert_eq!(remaining(&w).await, Value::Null);
}
