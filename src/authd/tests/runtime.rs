//! Session lifetimes and regulation changed in the panel reach an authd
//! that keeps running: it reads the store again within seconds (by its own
//! clock, which these tests move on instead of sleeping).

use super::*;
use crate::runtime_settings::{self, Patch};

fn max_age(res: &HeaderMap) -> Option<i64> {
    let set = res.get_all("set-cookie").map(|v| v.to_str().unwrap()).find(|v| v.starts_with(SESSION_COOKIE))?;
    set.split("; ").find_map(|a| a.strip_prefix("Max-Age=")).map(|v| v.parse().unwrap())
}

async fn remembered_sign_in(w: &World, user: &str) -> Option<i64> {
    let mut c = w.client().await;
    assert_eq!(c.password(user, PASSWORD, "", true).await.0, 303);
    let (status, body, res) = c.totp(&w.fresh_code(user), "").await;
    assert_eq!(status, 303, "{body}");
    max_age(&res)
}

#[actix_web::test]
async fn lifetimes_changed_in_the_panel_reach_a_running_authd() {
    let w = world().await;
    assert_eq!(remembered_sign_in(&w, "bob").await, Some(30 * 86400), "the default: 30 days");
    let mut before = w.client().await;
    sign_in(&w, &mut before, "alice", false).await;

    let patch = Patch { remember_days: Some(7), session_hours: Some(1), ..Default::default() };
    runtime_settings::update(&w.store, &w.settings, patch, "admin").await.unwrap();

    // The same authd, the next sign-in (its clock moved a TOTP step on).
    assert_eq!(remembered_sign_in(&w, "bob").await, Some(7 * 86400), "a new cookie lives 7 days");
    let mut after = w.client().await;
    let cookie = sign_in(&w, &mut after, "carol", false).await;
    let (session, _) = w.store.session(crate::token::sha256_hex(cookie.as_bytes())).await.unwrap().unwrap();
    assert_eq!(session.expires_at - session.created_at, time::Duration::hours(1));
    w.clock.advance(61 * 60);
    assert_eq!(after.authz("vault").await.0, 401, "the new session ends after one hour");
    assert_eq!(before.authz("vault").await.0, 200, "a session keeps the lifetime it started with");
}

#[actix_web::test]
async fn regulation_changed_in_the_panel_applies_without_a_restart() {
    let w = world().await;
    let patch = Patch { max_failures: Some(2), ban_secs: Some(60), ..Default::default() };
    runtime_settings::update(&w.store, &w.settings, patch, "admin").await.unwrap();
    w.clock.advance(5); // past the cache of anything read before
    let mut c = w.client().await;
    assert_eq!(c.password("alice", "wrong password!!", "", false).await.0, 401);
    assert_eq!(c.password("alice", "wrong password!!", "", false).await.0, 401);
    let (status, _, res) = c.password("alice", PASSWORD, "", false).await;
    assert_eq!(status, 429, "two failures ban now, not five");
    let retry: u64 = res.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry <= 60, "a 60-second ban: {retry}");
    w.clock.advance(61);
    assert_eq!(c.password("alice", PASSWORD, "", false).await.0, 303, "the ban ended");
}
