//! The tunnels API: validation, conflicts, ownership, status and audit.

use super::*;

async fn send(w: &World, who: Who, req: TestRequest) -> (u16, Value) {
    let res = w.call(who, req).await;
    let status = res.status().as_u16();
    (status, json_body(res).await)
}

fn post(body: Value) -> TestRequest {
    TestRequest::post().uri("/api/tunnels").set_json(body)
}

#[actix_web::test]
async fn tunnels_api_validates_and_audits() {
    let w = completed_world().await;
    let (s, created) =
        send(&w, Who::Admin, post(json!({"name": "app", "agent": "reader", "target": "127.0.0.1:8080"}))).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!((created["access"].as_str(), created["enabled"].as_bool()), (Some("authenticated"), Some(true)));

    let (s, body) = send(&w, Who::Admin, post(json!({"name": "app", "agent": "reader", "target": "nas.lan:80"}))).await;
    assert_eq!(s, 409, "{body}");
    for (bad, field) in [
        (json!({"name": "panel", "agent": "reader", "target": "127.0.0.1:80"}), "name"),
        (json!({"name": "Bad_Name", "agent": "reader", "target": "127.0.0.1:80"}), "name"),
        (json!({"name": "x", "agent": "reader", "target": "127.0.0.1:0"}), "target"),
        (json!({"name": "x", "agent": "reader", "target": "no-port"}), "target"),
        (json!({"name": "x", "agent": "ghost", "target": "127.0.0.1:80"}), "agent"),
        (json!({"name": "x", "agent": "reader", "target": "127.0.0.1:80", "access": "open"}), "access"),
    ] {
        let (s, body) = send(&w, Who::Admin, post(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(body["details"][0]["field"], field, "{bad}: {body}");
    }
    let (s, body) = send(&w, Who::Admin, post(json!({"name": "y", "target": "1.2.3.4:80", "extra": 1}))).await;
    assert_eq!(s, 400, "{body}");

    let id = created["id"].as_i64().unwrap();
    let patch = TestRequest::patch().uri(&format!("/api/tunnels/{id}")).set_json(json!({"target": "10.0.0.5:3000"}));
    let (s, body) = send(&w, Who::Admin, patch).await;
    assert_eq!((s, body["target"].as_str()), (200, Some("10.0.0.5:3000")), "{body}");
    let patch = TestRequest::patch().uri(&format!("/api/tunnels/{id}")).set_json(json!({"target": "10.0.0.5:0"}));
    assert_eq!(send(&w, Who::Admin, patch).await.0, 400);

    let (s, setup) = send(&w, Who::Admin, TestRequest::get().uri(&format!("/api/tunnels/{id}/agent-config"))).await;
    assert_eq!(s, 200);
    let unit = setup["systemdUnit"].as_str().unwrap();
    assert!(unit.contains("User=portico-agent\n"), "{unit}");
    assert!(unit.contains("ExecStart=/usr/local/bin/portico agent --config-dir /var/lib/portico-agent run"), "{unit}");
    let install = setup["install"].as_str().unwrap();
    assert!(install.starts_with("curl -fsS -k --pinnedpubkey sha256//"), "{install}");
    assert!(install.ends_with("https://203.0.113.10:9292/download/install.sh | sh -s -- --token <token>"), "{install}");
    assert!(setup["launchdPlist"].as_str().unwrap().contains("<key>KeepAlive</key>"));
    assert!(setup["enroll"].as_str().unwrap().contains("--fingerprint"), "{setup}");

    // Online once the relay records the agent.
    let (_, list) = send(&w, Who::Admin, TestRequest::get().uri("/api/tunnels")).await;
    assert_eq!(list[0]["online"], false);
    let status = crate::store::AgentStatus {
        label: "reader".into(),
        connected_since: OffsetDateTime::now_utc(),
        remote_addr: "127.0.0.1:5000".into(),
        protocol_version: crate::protocol::VERSION,
        bytes_in: 1,
        bytes_out: 2,
        open_streams: 0,
        rtt_ms: None,
        last_contact: None,
    };
    w.state.store.put_relay_status(vec![status]).await.unwrap();
    let (_, list) = send(&w, Who::Admin, TestRequest::get().uri("/api/tunnels")).await;
    assert_eq!(list[0]["online"], true, "{list}");
    let (_, agents) = send(&w, Who::Admin, TestRequest::get().uri("/api/agents")).await;
    let reader = agents.as_array().unwrap().iter().find(|a| a["label"] == "reader").unwrap();
    assert_eq!((reader["online"].as_bool(), reader["status"]["bytesOut"].as_u64()), (Some(true), Some(2)));

    let (s, _) = send(&w, Who::Admin, TestRequest::delete().uri(&format!("/api/tunnels/{id}"))).await;
    assert_eq!(s, 200);
    let (audit, _) =
        w.state.store.audit_entries(crate::store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    for action in ["tunnel.create", "tunnel.update", "tunnel.delete"] {
        assert!(audit.iter().any(|e| e.action == action), "{action} not audited");
    }
}

#[actix_web::test]
async fn agents_manage_only_their_own_tunnels() {
    let w = completed_world().await;
    let writer = agent(&w.state, "writer", &["tunnels:read", "tunnels:write"]).await;
    let as_writer = |req: TestRequest| cert_headers(req.peer_addr(LOOPBACK.parse().unwrap()), "agent:writer", &writer);
    let (s, other) =
        send(&w, Who::Admin, post(json!({"name": "theirs", "agent": "reader", "target": "127.0.0.1:80"}))).await;
    assert_eq!(s, 201);

    // Created without `agent`: it is the caller's.
    let (s, mine) = send(&w, Who::Nobody, as_writer(post(json!({"name": "mine", "target": "127.0.0.1:81"})))).await;
    assert_eq!((s, mine["agent"].as_str()), (201, Some("writer")), "{mine}");
    let (s, _) =
        send(&w, Who::Nobody, as_writer(post(json!({"name": "sneaky", "agent": "reader", "target": "127.0.0.1:82"}))))
            .await;
    assert_eq!(s, 403);
    let oid = other["id"].as_i64().unwrap();
    let patch = TestRequest::patch().uri(&format!("/api/tunnels/{oid}")).set_json(json!({"enabled": false}));
    assert_eq!(send(&w, Who::Nobody, as_writer(patch)).await.0, 404);
    assert_eq!(
        send(&w, Who::Nobody, as_writer(TestRequest::delete().uri(&format!("/api/tunnels/{oid}")))).await.0,
        404
    );
    // Reassigning its own tunnel to another agent is refused.
    let mid = mine["id"].as_i64().unwrap();
    let patch = TestRequest::patch().uri(&format!("/api/tunnels/{mid}")).set_json(json!({"agent": "reader"}));
    assert_eq!(send(&w, Who::Nobody, as_writer(patch)).await.0, 403);

    let (_, list) = send(&w, Who::Nobody, as_writer(TestRequest::get().uri("/api/tunnels"))).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mine"]);
    let (_, list) = send(&w, Who::AgentWithCap, TestRequest::get().uri("/api/tunnels")).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["theirs"]);
}
