//! The sites API beyond create/delete: files (upload, list, delete, every
//! traversal attempt), the byte cap, PATCH, per-agent allowed sites and the
//! DNS check.

use std::path::{Path, PathBuf};

use super::*;

async fn send(w: &World, who: Who, req: TestRequest) -> (u16, Value) {
    let res = w.call(who, req).await;
    let status = res.status().as_u16();
    let bytes = read_body(res).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const BOUNDARY: &str = "portico-test-boundary-7f3a";

/// A multipart body with one `files` part per (filename, content).
fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload(id: i64, parts: &[(&str, &[u8])]) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/api/sites/{id}/files"))
        .insert_header(("content-type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(multipart(parts))
}

fn delete_file(id: i64, raw_query: &str) -> TestRequest {
    TestRequest::delete().uri(&format!("/api/sites/{id}/files?{raw_query}"))
}

async fn create_site(w: &World, name: &str) -> i64 {
    let req = TestRequest::post().uri("/api/sites").set_json(json!({"name": name, "access": "public"}));
    let (s, body) = send(w, Who::Admin, req).await;
    assert_eq!(s, 201, "{body}");
    body["id"].as_i64().unwrap()
}

async fn listed(w: &World, id: i64) -> Vec<(String, u64)> {
    let (s, body) = send(w, Who::Admin, TestRequest::get().uri(&format!("/api/sites/{id}/files"))).await;
    assert_eq!(s, 200, "{body}");
    body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["size"].as_u64().unwrap()))
        .collect()
}

fn root(w: &World, name: &str) -> PathBuf {
    crate::sites::site_dir(&w.state.settings.data_dir, name)
}

/// Every file below `dir` with its content, links not followed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            } else {
                out.push((e.path(), b"<link>".to_vec()));
            }
        }
    }
    out.sort();
    out
}

fn staging_is_empty(w: &World) -> bool {
    let staging = w.state.settings.data_dir.join("sites/.staging");
    std::fs::read_dir(staging).map(|mut d| d.next().is_none()).unwrap_or(true)
}

#[actix_web::test]
async fn files_upload_list_replace_and_delete() {
    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    assert_eq!(listed(&w, id).await.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["index.html"]);

    let (s, body) = send(
        &w,
        Who::Admin,
        upload(id, &[("index.html", b"<h1>hi</h1>"), ("assets/app.js", b"console.log(1)"), ("a b/ü.txt", b"x")]),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["files"].as_array().unwrap().len(), 3);
    assert_eq!(
        listed(&w, id).await,
        [("a b/ü.txt".to_string(), 1), ("assets/app.js".into(), 14), ("index.html".into(), 11)]
    );
    assert_eq!(std::fs::read(root(&w, "docs").join("assets/app.js")).unwrap(), b"console.log(1)");
    // A later part with the same path wins.
    let (s, _) = send(&w, Who::Admin, upload(id, &[("x.txt", b"first"), ("x.txt", b"second")])).await;
    assert_eq!(s, 200);
    assert_eq!(std::fs::read(root(&w, "docs").join("x.txt")).unwrap(), b"second");

    let (s, _) = send(&w, Who::Admin, delete_file(id, "path=x.txt")).await;
    assert_eq!(s, 204);
    let (s, _) = send(&w, Who::Admin, delete_file(id, "path=assets")).await;
    assert_eq!(s, 204);
    assert!(!root(&w, "docs").join("assets").exists());
    let (s, _) = send(&w, Who::Admin, delete_file(id, "path=x.txt")).await;
    assert_eq!(s, 404);
    let (s, body) = send(&w, Who::Admin, delete_file(id, "other=1")).await;
    assert_eq!((s, body["details"][0]["field"].as_str()), (400, Some("path")));

    // A file where a directory is needed, and the reverse, are conflicts.
    let (s, _) = send(&w, Who::Admin, upload(id, &[("index.html/x", b"1")])).await;
    assert_eq!(s, 409);
    let (s, _) = send(&w, Who::Admin, upload(id, &[("a b", b"1")])).await;
    assert_eq!(s, 409);
    let (s, _) = send(&w, Who::Admin, upload(id, &[("n", b"1"), ("n/m", b"2")])).await;
    assert_eq!(s, 409);
    // Not multipart, no parts, a part without a filename.
    let req = TestRequest::post().uri(&format!("/api/sites/{id}/files")).set_json(json!({"files": []}));
    assert_eq!(send(&w, Who::Admin, req).await.0, 400);
    assert_eq!(send(&w, Who::Admin, upload(id, &[])).await.0, 400);
    let nameless =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\nabc\r\n--{BOUNDARY}--\r\n");
    let req = TestRequest::post()
        .uri(&format!("/api/sites/{id}/files"))
        .insert_header(("content-type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(nameless);
    assert_eq!(send(&w, Who::Admin, req).await.0, 400);
    // Leftovers of an upload that never finished (a crash) are cleared.
    let stale = w.state.settings.data_dir.join("sites/.staging/dead");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("1"), "half a file").unwrap();
    assert_eq!(send(&w, Who::Admin, upload(id, &[("fresh.txt", b"1")])).await.0, 200);
    assert!(!stale.exists());
    assert_eq!(send(&w, Who::Admin, upload(999, &[("a", b"1")])).await.0, 404);
    assert_eq!(send(&w, Who::Admin, TestRequest::get().uri("/api/sites/999/files")).await.0, 404);
    assert!(staging_is_empty(&w));
}

#[actix_web::test]
async fn every_traversal_attempt_is_refused_and_changes_nothing() {
    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    let data = w.state.settings.data_dir.clone();
    let outside = data.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    let site = root(&w, "docs");
    std::os::unix::fs::symlink(&outside, site.join("evil")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), site.join("link.html")).unwrap();
    let before = (snapshot(&data.join("sites")), snapshot(&outside));

    // Upload: the part's filename is the path.
    for bad in [
        "../escape.txt",
        "a/../../escape.txt",
        "..",
        "/etc/escape.txt",
        "%2e%2e/escape.txt",
        "%2E%2E%2Fescape.txt",
        "..%2fescape.txt",
        "a%00b",
        "a\u{1}b",
        ".hidden",
        "dir/.htaccess",
        "./x",
        "a//b",
        "C:/x",
        "evil/secret.txt",
        "evil/new.txt",
        "link.html",
    ] {
        let (s, body) = send(&w, Who::Admin, upload(id, &[("ok.txt", b"fine"), (bad, b"pwned")])).await;
        assert_eq!(s, 400, "upload {bad:?}: {body}");
        // Control characters do not even pass the multipart header parser.
        let field = if bad.chars().any(char::is_control) { "body" } else { "path" };
        assert_eq!(body["details"][0]["field"], field, "upload {bad:?}: {body}");
    }
    // Delete: the query is decoded once; encodings of `..` stay refused.
    for bad in [
        "path=../outside/secret.txt",
        "path=..%2Foutside%2Fsecret.txt",
        "path=%2e%2e%2foutside%2fsecret.txt",
        "path=%252e%252e%252foutside",
        "path=/etc/passwd",
        "path=%2Fetc%2Fpasswd",
        "path=index.html%00.txt",
        "path=.staging",
        "path=..%5Coutside",
        "path=",
        "path=evil/secret.txt",
    ] {
        let (s, body) = send(&w, Who::Admin, delete_file(id, bad)).await;
        assert_eq!(s, 400, "delete {bad:?}: {body}");
    }
    assert_eq!((snapshot(&data.join("sites")), snapshot(&outside)), before, "nothing may change");
    assert!(staging_is_empty(&w));
    // Links are not listed, and deleting one removes only the link.
    assert_eq!(listed(&w, id).await.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["index.html"]);
    assert_eq!(send(&w, Who::Admin, delete_file(id, "path=evil")).await.0, 204);
    assert_eq!(send(&w, Who::Admin, delete_file(id, "path=link.html")).await.0, 204);
    assert_eq!(std::fs::read_to_string(outside.join("secret.txt")).unwrap(), "secret");
    assert!(std::fs::symlink_metadata(site.join("evil")).is_err());
}

#[actix_web::test]
async fn an_upload_over_the_cap_leaves_no_partial_files() {
    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    let patch = TestRequest::patch().uri(&format!("/api/sites/{id}")).set_json(json!({"maxBytes": 2048}));
    assert_eq!(send(&w, Who::Admin, patch).await.0, 200);
    let index = listed(&w, id).await[0].1;
    let before = snapshot(&root(&w, "docs"));

    let (s, _) = send(&w, Who::Admin, upload(id, &[("a.txt", &[b'a'; 1000]), ("b.txt", &[b'b'; 2000])])).await;
    assert_eq!(s, 413);
    assert_eq!(snapshot(&root(&w, "docs")), before, "no partial files");
    assert!(staging_is_empty(&w));

    assert_eq!(send(&w, Who::Admin, upload(id, &[("a.txt", &[b'a'; 1000])])).await.0, 200);
    // Replacing a file counts only the difference.
    let grown = vec![b'a'; (2048 - index) as usize];
    assert_eq!(send(&w, Who::Admin, upload(id, &[("a.txt", &grown)])).await.0, 200);
    assert_eq!(send(&w, Who::Admin, upload(id, &[("c.txt", b"1")])).await.0, 413);
    let (_, list) = send(&w, Who::Admin, TestRequest::get().uri(&format!("/api/sites/{id}/files"))).await;
    assert_eq!((list["totalBytes"].as_u64(), list["maxBytes"].as_u64()), (Some(2048), Some(2048)));
}

#[actix_web::test]
async fn patch_changes_fields_and_moves_files_on_rename() {
    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    assert_eq!(send(&w, Who::Admin, upload(id, &[("page.html", b"p")])).await.0, 200);
    let patch = |body: Value| TestRequest::patch().uri(&format!("/api/sites/{id}")).set_json(body);

    let (s, site) = send(
        &w,
        Who::Admin,
        patch(
            json!({"spaFallback": true, "access": "restricted", "allowedUsers": ["alice"], "allowedGroups": ["ops"]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{site}");
    assert_eq!((site["spaFallback"].as_bool(), site["access"].as_str()), (Some(true), Some("restricted")));
    assert_eq!(site["allowedUsers"], json!(["alice"]));
    // Leaving `restricted` drops the lists unless new ones are given.
    let (_, site) = send(&w, Who::Admin, patch(json!({"access": "authenticated"}))).await;
    assert_eq!((site["allowedUsers"].clone(), site["allowedGroups"].clone()), (json!([]), json!([])));

    for (bad, field) in [
        (json!({"maxBytes": 10}), "maxBytes"),
        (json!({"name": "Bad_Name"}), "name"),
        (json!({"name": "panel"}), "name"),
        (json!({"access": "open"}), "access"),
        (json!({"allowedUsers": ["bob"]}), "access"),
        (json!({"access": "restricted", "allowedUsers": ["two words"]}), "allowedUsers"),
    ] {
        let (s, body) = send(&w, Who::Admin, patch(bad.clone())).await;
        assert_eq!((s, body["details"][0]["field"].as_str()), (400, Some(field)), "{bad}: {body}");
    }
    assert_eq!(send(&w, Who::Admin, patch(json!({"color": "red"}))).await.0, 400);
    let unchanged = w.state.store.site(id).await.unwrap().unwrap();
    assert_eq!((unchanged.name.as_str(), unchanged.max_bytes), ("docs", crate::sites::DEFAULT_MAX_BYTES));

    let (s, site) = send(&w, Who::Admin, patch(json!({"name": "manual"}))).await;
    assert_eq!((s, site["name"].as_str()), (200, Some("manual")));
    assert!(!root(&w, "docs").exists());
    assert_eq!(std::fs::read(root(&w, "manual").join("page.html")).unwrap(), b"p");

    // A name taken by a tunnel is a conflict; the files stay where they are.
    let tunnel = json!({"name": "app", "agent": "reader", "target": "127.0.0.1:8080"});
    assert_eq!(send(&w, Who::Admin, TestRequest::post().uri("/api/tunnels").set_json(tunnel)).await.0, 201);
    assert_eq!(send(&w, Who::Admin, patch(json!({"name": "app"}))).await.0, 409);
    assert!(root(&w, "manual").join("page.html").exists());
    assert_eq!(send(&w, Who::Admin, TestRequest::patch().uri("/api/sites/999").set_json(json!({}))).await.0, 404);
}

#[actix_web::test]
async fn agents_manage_only_their_allowed_sites() {
    let w = completed_world().await;
    let serial = agent(&w.state, "siter", &["sites:read", "sites:write"]).await;
    let as_siter = |req: TestRequest| cert_headers(req.peer_addr(LOOPBACK.parse().unwrap()), "agent:siter", &serial);
    let docs = create_site(&w, "docs").await;
    let other = create_site(&w, "other").await;

    // Nothing is allowed until the admin says so.
    let (_, list) = send(&w, Who::Nobody, as_siter(TestRequest::get().uri("/api/sites"))).await;
    assert_eq!(list["sites"], json!([]));

    let allow = |sites: Value| TestRequest::put().uri("/api/agents/siter/sites").set_json(json!({ "sites": sites }));
    let (s, agent) = send(&w, Who::Admin, allow(json!(["docs", "future", "docs"]))).await;
    assert_eq!((s, agent["allowedSites"].clone()), (200, json!(["docs", "future"])));
    assert_eq!(send(&w, Who::Admin, allow(json!(["Not A Label"]))).await.0, 400);
    let ghost = TestRequest::put().uri("/api/agents/ghost/sites").set_json(json!({"sites": []}));
    assert_eq!(send(&w, Who::Admin, ghost).await.0, 404);
    assert_eq!(send(&w, Who::Nobody, as_siter(allow(json!(["other"])))).await.0, 403);

    let (_, list) = send(&w, Who::Nobody, as_siter(TestRequest::get().uri("/api/sites"))).await;
    let names: Vec<&str> = list["sites"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs"]);
    assert_eq!(send(&w, Who::Nobody, as_siter(upload(docs, &[("a.txt", b"1")]))).await.0, 200);
    assert_eq!(send(&w, Who::Nobody, as_siter(upload(other, &[("a.txt", b"1")]))).await.0, 404);
    assert!(!root(&w, "other").join("a.txt").exists());
    let other_files = TestRequest::get().uri(&format!("/api/sites/{other}/files"));
    assert_eq!(send(&w, Who::Nobody, as_siter(other_files)).await.0, 404);
    assert_eq!(send(&w, Who::Nobody, as_siter(delete_file(other, "path=index.html"))).await.0, 404);
    let other_patch = TestRequest::patch().uri(&format!("/api/sites/{other}")).set_json(json!({"spaFallback": true}));
    assert_eq!(send(&w, Who::Nobody, as_siter(other_patch)).await.0, 404);
    assert_eq!(send(&w, Who::Nobody, as_siter(TestRequest::delete().uri(&format!("/api/sites/{other}")))).await.0, 404);
    // Renaming its site to a name it is not allowed, creating one.
    let rename = TestRequest::patch().uri(&format!("/api/sites/{docs}")).set_json(json!({"name": "elsewhere"}));
    assert_eq!(send(&w, Who::Nobody, as_siter(rename)).await.0, 403);
    let create = |name: &str| TestRequest::post().uri("/api/sites").set_json(json!({ "name": name }));
    assert_eq!(send(&w, Who::Nobody, as_siter(create("nope"))).await.0, 403);
    assert_eq!(send(&w, Who::Nobody, as_siter(create("future"))).await.0, 201);
    assert!(root(&w, "other").join("index.html").exists());
}

#[actix_web::test]
async fn verify_dns_resolves_the_site_name() {
    let good = dns::Server::start("203.0.113.10".parse().unwrap());
    let w = world_with(|s| s.dns.resolver = Some(good.addr)).await;
    w.set_state(OnboardingState::Completed).await;
    let id = create_site(&w, "docs").await;
    let verify = || TestRequest::post().uri(&format!("/api/sites/{id}/verify-dns"));
    // No domain yet.
    assert_eq!(send(&w, Who::Admin, verify()).await.0, 409);
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    let (s, body) = send(&w, Who::Admin, verify()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!((body["name"].as_str(), body["report"]["ok"].as_bool()), (Some("docs.example.test"), Some(true)));
    let asked = good.queries();
    assert!(!asked.is_empty() && asked.iter().all(|q| q == "docs.example.test"), "{asked:?}");
    assert_eq!(send(&w, Who::Admin, TestRequest::post().uri("/api/sites/999/verify-dns")).await.0, 404);

    let wrong = dns::Server::start("198.51.100.7".parse().unwrap());
    let w = world_with(|s| s.dns.resolver = Some(wrong.addr)).await;
    w.set_state(OnboardingState::Completed).await;
    w.state.store.put_settings(vec![(onboarding::keys::DOMAIN, "example.test".into())]).await.unwrap();
    let id = create_site(&w, "docs").await;
    let (s, body) = send(&w, Who::Admin, TestRequest::post().uri(&format!("/api/sites/{id}/verify-dns"))).await;
    assert_eq!((s, body["report"]["ok"].as_bool()), (200, Some(false)), "{body}");
    assert!(body["report"]["names"][0]["message"].as_str().unwrap().contains("198.51.100.7"), "{body}");
}

/// The panel on a real loopback HTTP server.
fn serve(w: &World) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let state = w.state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = actix_web::HttpServer::new(move || App::new().configure(configure(state.clone(), Channel::Panel)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}

/// `VmRSS` or `VmHWM` of this process, KiB.
fn proc_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A multipart upload of `size` bytes of `pattern` written in 64 KiB chunks
/// to a real server; returns the response head and body.
async fn stream_upload(addr: SocketAddr, w: &World, id: i64, name: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\r\n");
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let request = format!(
        "POST /api/sites/{id}/files HTTP/1.1\r\nHost: panel\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nConnection: close\r\nX-SSL-Client-Verify: SUCCESS\r\n\
         X-SSL-Client-DN: CN=admin,O=Portico\r\nX-SSL-Client-Serial: {}\r\n\r\n{head}",
        head.len() + size + tail.len(),
        w.admin_serial,
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(sent + i);
        }
        tcp.write_all(&chunk[..n]).await.unwrap();
        sent += n;
    }
    tcp.write_all(tail.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).to_string()
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// 100 MB through a real HTTP server, checked byte for byte on disk. The
/// body is streamed to disk: this process's peak RSS grows by far less than
/// the upload (printed; bench/sites-upload.sh measures the panel alone).
#[actix_web::test]
async fn a_100_mb_upload_streams_to_disk_with_flat_memory() {
    const SIZE: usize = 100 * 1024 * 1024;
    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    let (addr, handle) = serve(&w);
    // Reset the peak so VmHWM covers the upload only (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = proc_kib("VmRSS:");
    let response = stream_upload(addr, &w, id, "big.bin", SIZE).await;
    let peak = proc_kib("VmHWM:");
    handle.stop(true).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("100 MB upload: RSS {} MiB before, peak {} MiB, growth {growth_mib} MiB", before / 1024, peak / 1024);
    assert!(growth_mib < 48, "peak RSS grew by {growth_mib} MiB for a 100 MiB upload");

    let stored = std::fs::File::open(root(&w, "docs").join("big.bin")).unwrap();
    assert_eq!(stored.metadata().unwrap().len(), SIZE as u64);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stored);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().enumerate().all(|(i, b)| *b == pattern(at + i)), "content differs near byte {at}");
        at += n;
    }
    assert_eq!(at, SIZE);
}

/// Through a real HTTP server: a body far larger than the cap is refused
/// while it streams (the handler must not wait for the rest of it), and
/// nothing of it stays on disk.
#[actix_web::test]
async fn a_streaming_upload_past_the_cap_is_answered_413_without_leftovers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let w = completed_world().await;
    let id = create_site(&w, "docs").await;
    let patch = TestRequest::patch().uri(&format!("/api/sites/{id}")).set_json(json!({"maxBytes": 65536}));
    assert_eq!(send(&w, Who::Admin, patch).await.0, 200);
    let before = snapshot(&root(&w, "docs"));

    let (addr, handle) = serve(&w);
    const BODY: usize = 16 * 1024 * 1024;
    let head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n\r\n");
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let request = format!(
        "POST /api/sites/{id}/files HTTP/1.1\r\nHost: panel\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nX-SSL-Client-Verify: SUCCESS\r\nX-SSL-Client-DN: CN=admin,O=Portico\r\n\
         X-SSL-Client-Serial: {}\r\n\r\n{head}",
        head.len() + BODY + tail.len(),
        w.admin_serial,
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(request.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..BODY / chunk.len() {
            wr.write_all(&chunk).await?; // fails once the server gave up on the body
        }
        wr.write_all(tail.as_bytes()).await
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed without a response");
            response.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no response while the body was still streaming");
    let status = String::from_utf8_lossy(&response).split(' ').nth(1).unwrap_or_default().to_string();
    assert_eq!(status, "413", "{}", String::from_utf8_lossy(&response));
    writer.abort();
    handle.stop(true).await;
    assert_eq!(snapshot(&root(&w, "docs")), before, "no partial files");
    assert!(staging_is_empty(&w));
}
