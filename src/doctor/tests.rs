//! Unit tests of the doctor's judgement; a live run against nginx is in
//! `src/nginx/tests/health.rs`.

use super::*;

#[test]
fn http_dates_parse() {
    let t = checks::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    assert_eq!(t.unix_timestamp(), 784111777);
    assert!(checks::parse_http_date("yesterday").is_none());
}

#[tokio::test]
async fn secret_modes_are_judged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
    crate::init::run(&settings).unwrap();
    let all = checks::secrets(&settings).await;
    assert!(all.iter().all(|f| f.level == Level::Ok), "{all:?}");
    let key = dir.path().join("pki/ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bad = checks::secrets(&settings).await;
    assert!(
        bad.iter().any(|f| f.level == Level::Fail && f.summary.contains("ca.key") && !f.next_step.is_empty()),
        "{bad:?}"
    );
}
