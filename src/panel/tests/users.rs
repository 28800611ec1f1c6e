//! The users, groups and invitations API as an admin would drive it.

use super::*;

async fn admin(w: &World, req: TestRequest) -> (u16, Value) {
    let res = w.call(Who::Admin, req).await;
    let status = res.status().as_u16();
    let body = read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn users_groups_and_invitations_round_trip() {
    let w = completed_world().await;
    let (s, _) = admin(&w, TestRequest::post().uri("/api/groups").set_json(json!({"name": "family"}))).await;
    assert_eq!(s, 201);
    let body =
        json!({"username": "alice", "password": "a long enough passphrase", "groups": ["family"], "email": "a@x.test"});
    let (s, created) = admin(&w, TestRequest::post().uri("/api/users").set_json(body)).await;
    assert_eq!(s, 201, "{created}");
    assert!(created["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(created["qrSvg"].as_str().unwrap().contains("<svg"));
    assert_eq!(created["user"]["groups"], json!(["family"]));

    let (s, err) =
        admin(&w, TestRequest::post().uri("/api/users").set_json(json!({"username": "Bob!", "password": "x"}))).await;
    assert_eq!(s, 400);
    assert_eq!(err["details"].as_array().unwrap().len(), 2, "{err}");

    let (s, list) = admin(&w, TestRequest::get().uri("/api/users")).await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 1));
    assert!(!list.to_string().contains("$2"), "no password hashes in listings");

    let (s, u) =
        admin(&w, TestRequest::put().uri("/api/users/alice").set_json(json!({"disabled": true, "groups": []}))).await;
    assert_eq!((s, u["disabled"].as_bool(), u["groups"].clone()), (200, Some(true), json!([])));
    let (s, _) = admin(&w, TestRequest::put().uri("/groups/family/members/alice")).await;
    assert_eq!(s, 404, "paths live under /api");
    let (s, _) = admin(&w, TestRequest::put().uri("/api/groups/family/members/alice")).await;
    assert_eq!(s, 200);
    let (_, groups) = admin(&w, TestRequest::get().uri("/api/groups")).await;
    assert_eq!(groups[0]["members"], json!(["alice"]));

    let (s, t) = admin(&w, TestRequest::post().uri("/api/users/alice/reset-totp")).await;
    assert_eq!(s, 200);
    assert_ne!(t["totpSecret"], created["totpSecret"]);

    // Invitation: create, view publicly, accept with a fresh code, reuse refused.
    let (s, inv) = admin(
        &w,
        TestRequest::post().uri("/api/invitations").set_json(json!({"username": "bob", "groups": ["family"]})),
    )
    .await;
    assert_eq!(s, 201, "{inv}");
    let token = inv["token"].as_str().unwrap().to_string();
    let (s, view) = admin(&w, TestRequest::get().uri(&format!("/api/invite/{token}"))).await;
    assert_eq!(s, 200);
    let secret = view["totpSecret"].as_str().unwrap();
    let code = crate::totp::code_now(secret, OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let accept = |password: &str, code: &str| {
        TestRequest::post().uri(&format!("/api/invite/{token}")).set_json(json!({"password": password, "code": code}))
    };
    let (s, e) = admin(&w, accept("short", &code)).await;
    assert_eq!((s, e["details"][0]["field"].as_str()), (400, Some("password")));
    let (s, u) = admin(&w, accept("a long enough passphrase", &code)).await;
    assert_eq!((s, u["username"].as_str()), (201, Some("bob")));
    let (s, _) = admin(&w, accept("a long enough passphrase", &code)).await;
    assert_eq!(s, 404, "single use");

    let (s, list) = admin(&w, TestRequest::get().uri("/api/invitations")).await;
    assert_eq!(s, 200);
    assert!(list[0]["usedAt"].is_string());
    assert!(!list.to_string().contains(secret), "no TOTP secrets in listings");

    // Deleting users: the last one stays while a tunnel needs sign-in.
    let now = OffsetDateTime::now_utc();
    let t = crate::store::TunnelFields {
        access: "authenticated".into(),
        ..testing::tunnel_fields("vault", "reader", "127.0.0.1:1")
    };
    w.state.store.insert_tunnel(t, now).await.unwrap();
    let (s, _) = admin(&w, TestRequest::delete().uri("/api/users/alice")).await;
    assert_eq!(s, 200);
    let (s, e) = admin(&w, TestRequest::delete().uri("/api/users/bob")).await;
    assert_eq!(s, 409);
    assert!(e["error"].as_str().unwrap().contains("last user"), "{e}");

    let (s, entries) = admin(&w, TestRequest::get().uri("/api/audit?action=user.create")).await;
    assert_eq!(s, 200, "{entries}");
    assert!(entries.to_string().contains("alice"));
}
