//! Removing revoked agents from the list: refused while the agent is active
//! or still has tunnels; once removed, its certificate stays refused.

use super::*;

#[actix_web::test]
async fn only_a_revoked_agent_without_tunnels_leaves_the_list() {
    let w = completed_world().await;
    let remove = || TestRequest::delete().uri("/api/agents/reader");
    let res = w.call(Who::Admin, remove()).await;
    assert_eq!(res.status(), 409);
    assert_eq!(json_body(res).await["error"], "agent 'reader' is active; revoke it first, then remove it");

    let tunnel = json!({"name": "app", "agent": "reader", "target": "127.0.0.1:8080"});
    let res = w.call(Who::Admin, TestRequest::post().uri("/api/tunnels").set_json(tunnel)).await;
    assert_eq!(res.status(), 201);
    let tunnel_id = json_body(res).await["id"].as_i64().unwrap();
    assert_eq!(w.call(Who::Admin, TestRequest::delete().uri("/api/certs/agent/reader")).await.status(), 200);
    let res = w.call(Who::Admin, remove()).await;
    assert_eq!(res.status(), 409, "its tunnel would go with it");
    let message = json_body(res).await["error"].as_str().unwrap().to_string();
    assert!(message.contains("still has tunnels (app)"), "{message}");
    assert_eq!(w.state.store.tunnels().await.unwrap().len(), 1, "nothing lost");

    let res = w.call(Who::Admin, TestRequest::delete().uri(&format!("/api/tunnels/{tunnel_id}"))).await;
    assert_eq!(res.status(), 200);
    let res = w.call(Who::Admin, remove()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_body(res).await["label"], "reader");
    let list = json_body(w.call(Who::Admin, TestRequest::get().uri("/api/certs/agent")).await).await;
    assert!(!list.to_string().contains("\"reader\""), "{list}");
    let res = w.call(Who::AgentWithCap, TestRequest::get().uri("/api/audit")).await;
    assert_eq!(res.status(), 403, "a removed agent's certificate stays refused");

    assert_eq!(w.call(Who::Admin, remove()).await.status(), 404, "removing twice");
    let res = w.call(Who::Admin, TestRequest::delete().uri("/api/agents/Not_A_Label")).await;
    assert_eq!(res.status(), 404);
    let q = "/api/audit?action=cert.agent.remove";
    let entries = json_body(w.call(Who::KeyAdmin, TestRequest::get().uri(q)).await).await;
    assert!(entries.to_string().contains("reader"), "{entries}");
}
