//! `portico nginx render` and `portico nginx check` as the entry script runs them.

use std::path::Path;
use std::process::{Command, Output};

fn portico(data_dir: &Path, run_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .env_clear()
        .env("PORTICO__DATA_DIR", data_dir)
        .env("PORTICO_OPTIONS", data_dir.join("options.json"))
        .env("PORTICO__LOG__LEVEL", "warn")
        .env("PORTICO__PUBLIC_IP", "127.0.0.1")
        .env("PORTICO__NGINX__RUN_DIR", run_dir)
        .args(args)
        .output()
        .expect("portico runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn render_writes_a_tree_that_check_accepts_and_check_notices_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("data"), tmp.path().join("run"));
    assert!(portico(&data, &run, &["init"]).status.success());

    let out = portico(&data, &run, &["nginx", "render"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("written"), "{}", text(&out));
    assert!(data.join("nginx/live/nginx.conf").is_file());
    let again = portico(&data, &run, &["nginx", "render"]);
    assert!(text(&again).contains("unchanged"), "{}", text(&again));

    let out = portico(&data, &run, &["nginx", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("matches the store"), "{}", text(&out));

    let conf = data.join("nginx/live/servers/02-admin-ip.conf");
    let body = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{body}\n# hand edit\n")).unwrap();
    let out = portico(&data, &run, &["nginx", "check"]);
    assert!(out.status.success() && text(&out).contains("differs from the store"), "{}", text(&out));

    std::fs::write(&conf, "server { bogus_directive; }\n").unwrap();
    let out = portico(&data, &run, &["nginx", "check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("bogus_directive"), "{}", text(&out));
}
