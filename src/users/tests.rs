//! Users, groups and invitations against a real SQLite store.

use time::{Duration, OffsetDateTime};

use super::*;
use crate::store::{ClientCert, TunnelFields};
use crate::testing;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("portico.db")).unwrap();
    store.put_settings(vec![(crate::onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    (dir, store)
}

fn user(name: &str) -> NewUser {
    NewUser { username: name.into(), password: "a long enough passphrase".into(), totp: true, ..Default::default() }
}

fn fields(errors: &UserError) -> Vec<String> {
    match errors {
        UserError::Invalid(d) => d.iter().map(|f| f.field.clone()).collect(),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn usernames_are_validated() {
    for ok in ["a", "alice", "bob.smith", "x_y-z", "0", &"a".repeat(32)] {
        assert!(valid_username(ok), "{ok}");
    }
    for bad in ["", "Alice", "al ice", "al/ice", "ålice", "a@b", &"a".repeat(33), "../x", "a\n"] {
        assert!(!valid_username(bad), "{bad:?}");
    }
}

#[actix_web::test]
async fn create_user_returns_a_working_totp_enrollment() {
    let (_d, store) = store().await;
    let created = create_user(&store, NewUser { groups: vec![], ..user("alice") }).await.unwrap();
    let t = created.totp.unwrap();
    assert!(t.otpauth_uri.starts_with("otpauth://totp/Portico%20example.test:alice?secret="));
    assert!(t.qr_svg.contains("<svg"));
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let code = crate::totp::code_now(&t.totp_secret, now).unwrap();
    assert!(crate::totp::verify(&t.totp_secret, &code, now).is_some());
    let stored = store.user("alice".into()).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$2"), "bcrypt");
    assert!(verify_password("a long enough passphrase".into(), Some(stored.password_hash.clone())).await);
    assert!(!verify_password("a long enough passphrase".into(), None).await, "unknown users never pass");
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains(&t.totp_secret) && !json.contains("$2"), "no secrets in the user's JSON");
}

#[actix_web::test]
async fn bad_input_is_refused_with_field_errors() {
    let (_d, store) = store().await;
    let err = create_user(&store, NewUser { password: "short".into(), ..user("Bad Name") }).await.unwrap_err();
    assert_eq!(fields(&err), ["username", "password"]);
    let err = create_user(&store, NewUser { password: "password1234".into(), ..user("bob") }).await.unwrap_err();
    assert_eq!(fields(&err), ["password"], "common password");
    let err = create_user(&store, NewUser { groups: vec!["nope".into()], ..user("bob") }).await.unwrap_err();
    assert!(matches!(err, UserError::Store(StoreError::Conflict(m)) if m.contains("Group 'nope' does not exist")));
    create_user(&store, user("bob")).await.unwrap();
    let err = create_user(&store, user("bob")).await.unwrap_err();
    assert!(matches!(err, UserError::Store(StoreError::Conflict(m)) if m.contains("already exists")));
    assert_eq!(store.users().await.unwrap().len(), 1, "nothing half-created");
}

#[actix_web::test]
async fn the_last_user_cannot_go_while_tunnels_need_sign_in() {
    let (_d, store) = store().await;
    create_user(&store, user("alice")).await.unwrap();
    create_user(&store, user("bob")).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let cert = ClientCert {
        serial: "0A".into(),
        kind: "agent".into(),
        label: Some("home".into()),
        fingerprint: "F".into(),
        not_after: now,
        revoked_at: None,
    };
    store.create_agent(vec![], cert, now).await.unwrap();
    let t = TunnelFields {
        access: "restricted".into(),
        allowed_users: vec!["bob".into()],
        ..testing::tunnel_fields("vault", "home", "127.0.0.1:1")
    };
    let tunnel = store.insert_tunnel(t, now).await.unwrap();
    store.delete_user("alice".into()).await.unwrap();
    let err = store.delete_user("bob".into()).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("last user")), "{err:?}");
    assert!(store.user("bob".into()).await.unwrap().is_some());
    let mut open = TunnelFields::from(&tunnel);
    open.access = "public".into();
    store.update_tunnel(tunnel.id, open, now).await.unwrap();
    store.delete_user("bob".into()).await.unwrap();
}

#[actix_web::test]
async fn reset_totp_replaces_the_secret_and_the_replay_guard() {
    let (_d, store) = store().await;
    let first = create_user(&store, user("alice")).await.unwrap().totp.unwrap();
    assert!(store.claim_totp_step("alice".into(), 100).await.unwrap());
    assert!(!store.claim_totp_step("alice".into(), 100).await.unwrap(), "a step is claimed once");
    assert!(!store.claim_totp_step("alice".into(), 99).await.unwrap(), "earlier steps too");
    let second = reset_totp(&store, "alice").await.unwrap();
    assert_ne!(first.totp_secret, second.totp_secret);
    assert!(store.claim_totp_step("alice".into(), 100).await.unwrap());
    assert!(matches!(reset_totp(&store, "ghost").await, Err(UserError::Store(StoreError::NotFound))));
}

#[actix_web::test]
async fn invitation_accept_valid_reused_expired_weak_and_wrong_totp() {
    let (_d, store) = store().await;
    store.insert_group("family".into(), String::new(), OffsetDateTime::now_utc()).await.unwrap();
    let inv = create_invitation(&store, "admin", "carol".into(), "c@example.test".into(), vec!["family".into()], None)
        .await
        .unwrap();
    assert_eq!(inv.token.len(), 43, "256-bit token");
    assert_eq!((inv.invitation.expires_at - inv.invitation.created_at).whole_days(), 7);
    let now = OffsetDateTime::now_utc();
    let view = view_invitation(&store, &inv.token, now).await.unwrap();
    assert_eq!(view.username, "carol");
    let code = crate::totp::code_now(&view.totp.totp_secret, now.unix_timestamp()).unwrap();

    // Weak password and wrong TOTP leave the invitation usable.
    let err = accept_invitation(&store, &inv.token, "short".into(), &code, now).await.unwrap_err();
    assert_eq!(fields(&err), ["password"]);
    let err = accept_invitation(&store, &inv.token, "password1234".into(), &code, now).await.unwrap_err();
    assert_eq!(fields(&err), ["password"]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = accept_invitation(&store, &inv.token, "a long enough passphrase".into(), wrong, now).await.unwrap_err();
    assert!(matches!(err, UserError::BadTotp));
    assert!(store.user("carol".into()).await.unwrap().is_none());

    // Valid.
    let user = accept_invitation(&store, &inv.token, "a long enough passphrase".into(), &code, now).await.unwrap();
    assert_eq!(
        (user.username.as_str(), user.groups.as_slice(), user.totp_enrolled),
        ("carol", &["family".to_string()][..], true)
    );
    // The code that proved the enrolment signs carol in once at her first
    // login (she need not wait for the next one), and never again.
    let step = crate::totp::step_at(now.unix_timestamp());
    assert!(store.claim_totp_step("carol".into(), step).await.unwrap(), "the signup code works at the first login");
    assert!(!store.claim_totp_step("carol".into(), step).await.unwrap(), "a code used for a login is spent");

    // Reused.
    let err = accept_invitation(&store, &inv.token, "a long enough passphrase".into(), &code, now).await.unwrap_err();
    assert!(matches!(err, UserError::BadInvitation));
    assert!(matches!(view_invitation(&store, &inv.token, now).await, Err(UserError::BadInvitation)));

    // Expired.
    let late = create_invitation(&store, "admin", "dan".into(), String::new(), vec![], Some(1)).await.unwrap();
    let after = now + Duration::days(1) + Duration::seconds(1);
    let secret = late.invitation.totp_secret.clone();
    let code = crate::totp::code_now(&secret, after.unix_timestamp()).unwrap();
    let err =
        accept_invitation(&store, &late.token, "a long enough passphrase".into(), &code, after).await.unwrap_err();
    assert!(matches!(err, UserError::BadInvitation));

    // Revoked, and unknown tokens.
    let revoked = create_invitation(&store, "admin", "erin".into(), String::new(), vec![], None).await.unwrap();
    store.revoke_invitation(revoked.invitation.id.clone(), now).await.unwrap();
    assert!(matches!(view_invitation(&store, &revoked.token, now).await, Err(UserError::BadInvitation)));
    assert!(matches!(view_invitation(&store, "nope", now).await, Err(UserError::BadInvitation)));
    assert!(matches!(view_invitation(&store, &"x".repeat(500), now).await, Err(UserError::BadInvitation)));
}

#[actix_web::test]
async fn session_cleanup_deletes_expired_and_idle_sessions_only() {
    let (_d, store) = store().await;
    create_user(&store, user("alice")).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let session =
        |id: &str, last_seen: OffsetDateTime, expires: OffsetDateTime, remember: bool| crate::store::VisitorSession {
            id: id.into(),
            username: "alice".into(),
            created_at: now - Duration::days(1),
            last_seen_at: last_seen,
            expires_at: expires,
            remember,
            ip: String::new(),
            user_agent: String::new(),
        };
    let rows = [
        ("live", session("live", now, now + Duration::hours(1), false)),
        ("expired", session("expired", now, now - Duration::seconds(1), true)),
        ("idle", session("idle", now - Duration::hours(3), now + Duration::hours(1), false)),
        ("remembered", session("remembered", now - Duration::hours(3), now + Duration::days(2), true)),
    ];
    for (hash, s) in rows {
        store.insert_session(hash.into(), s).await.unwrap();
    }
    assert_eq!(store.prune_sessions(now, now - Duration::hours(2)).await.unwrap(), 2);
    let left: Vec<String> = store.user_sessions("alice".into()).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(left, ["live", "remembered"]);
    // A password change ends them too.
    let change = UserChanges { password: Some("another long passphrase".into()), ..Default::default() };
    update_user(&store, "alice", change).await.unwrap();
    assert!(store.user_sessions("alice".into()).await.unwrap().is_empty());
    store.insert_session("live".into(), session("live", now, now + Duration::hours(1), false)).await.unwrap();
    // Deleting the user ends their sessions.
    store.delete_user("alice".into()).await.unwrap();
    assert!(store.session("live".into()).await.unwrap().is_none());
}
