use super::*;
use std::io::Write;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    path
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_match_the_design() {
    let s = Settings::load(&Sources::default()).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.panel.listen.to_string(), "127.0.0.1:3100");
    assert_eq!(s.ingress.listen.to_string(), "0.0.0.0:8099");
    assert_eq!(s.ingress.trusted_peers, vec!["172.30.32.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(s.data_dir, PathBuf::from("/data"));
    assert_eq!(s.auth.mode, AuthMode::Mtls);
}

#[test]
fn later_layers_win() {
    let dir = tempfile::tempdir().unwrap();
    let system = write(
        &dir,
        "system.yaml",
        "log:\n  level: debug\n  format: json\npanel:\n  listen: 127.0.0.1:4000\npublic_ip: 203.0.113.1\n",
    );
    let config = write(&dir, "config.yaml", "panel:\n  listen: 127.0.0.1:4001\naudit:\n  retention_days: 7\n");
    let options = write(&dir, "options.json", r#"{"audit": {"retention_days": 8}, "data_dir": "/srv/portico"}"#);
    let sources = Sources {
        system_file: Some(system),
        config_file: Some(config),
        options_file: Some(options),
        env: env(&[
            ("PORTICO__DATA_DIR", "/var/lib/portico"),
            ("PORTICO__INGRESS__TRUSTED_PEERS", "10.0.0.1,10.0.0.2"),
            ("PORTICO__AUTH__MODE", "ingress"),
            ("UNRELATED", "x"),
        ]),
    };
    let s = Settings::load(&sources).unwrap();
    assert_eq!(s.log.level, "debug", "system file applies");
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.public_ip, Some("203.0.113.1".parse().unwrap()));
    assert_eq!(s.panel.listen.to_string(), "127.0.0.1:4001", "$PORTICO_CONFIG beats the system file");
    assert_eq!(s.audit.retention_days, 8, "options.json beats $PORTICO_CONFIG");
    assert_eq!(s.data_dir, PathBuf::from("/var/lib/portico"), "env beats options.json");
    assert_eq!(s.auth.mode, AuthMode::Ingress);
    assert_eq!(s.ingress.trusted_peers.len(), 2);
}

#[test]
fn missing_optional_files_are_skipped_but_a_named_config_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let sources = Sources {
        system_file: Some(dir.path().join("absent.yaml")),
        options_file: Some(dir.path().join("absent.json")),
        ..Default::default()
    };
    assert!(Settings::load(&sources).is_ok());
    let sources = Sources { config_file: Some(dir.path().join("absent.yaml")), ..Default::default() };
    let err = Settings::load(&sources).unwrap_err().to_string();
    assert!(err.contains("absent.yaml"), "{err}");
}

/// Each bad value names its YAML key and environment variable.
#[test]
fn validation_errors_name_key_and_env() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PORTICO__PANEL__LISTEN", "not-an-address")], "panel.listen"),
        (&[("PORTICO__AUTH__MODE", "password")], "auth.mode"),
        (&[("PORTICO__DATA_DIR", "relative/dir")], "data_dir"),
        (&[("PORTICO__PUBLIC_IP", "999.1.1.1")], "public_ip"),
        (&[("PORTICO__AUDIT__RETENTION_DAYS", "0")], "audit.retention_days"),
        (&[("PORTICO__AUDIT__RETENTION_DAYS", "-3")], "audit.retention_days"),
        (&[("PORTICO__LOG__LEVEL", "loud=[")], "log.level"),
        (&[("PORTICO__LOG__FORMAT", "xml")], "log.format"),
        (&[("PORTICO__PKI__AGENT_CERT_DAYS", "9999")], "pki.agent_cert_days"),
        (&[("PORTICO__PKI__ENROLL_TOKEN_MINUTES", "0")], "pki.enroll_token_minutes"),
        (&[("PORTICO__PANEL__JSON_LIMIT", "10")], "panel.json_limit"),
        (&[("PORTICO__PANEL__SECRET", "short")], "panel.secret"),
        (&[("PORTICO__PANEL__SECRET_FILE", "/nonexistent/secret")], "panel.secret_file"),
        (&[("PORTICO__PANEL__VISITOR_LOG_PORT", "514")], "panel.visitor_log_port"),
        (&[("PORTICO__PANEL__VISITOR_LOG_PORT", "70000")], "panel.visitor_log_port"),
        (&[("PORTICO__INGRESS__TRUSTED_PEERS", "10.0.0.1,nope")], "ingress.trusted_peers"),
        (&[("PORTICO__AUTH__MODE", "ingress"), ("PORTICO__INGRESS__TRUSTED_PEERS", "")], "ingress.trusted_peers"),
        (
            &[("PORTICO__BACKUP__SCHEDULE", "every night"), ("PORTICO__BACKUP__PASSPHRASE", "long enough passphrase")],
            "backup.schedule",
        ),
        (&[("PORTICO__BACKUP__SCHEDULE", "0 30 3 * * *")], "backup.passphrase"),
        (&[("PORTICO__BACKUP__PASSPHRASE", "short")], "backup.passphrase"),
        (&[("PORTICO__BACKUP__KEEP", "0")], "backup.keep"),
        (&[("PORTICO__BACKUP__DIR", "relative")], "backup.dir"),
        (&[("PORTICO__PANEL__LISTEN", "0.0.0.0:3100")], "panel.listen"),
        (&[("PORTICO__AUTHD__LISTEN", "10.0.0.5:9091")], "authd.listen"),
        (&[("PORTICO__AUTHD__LISTEN", "127.0.0.1:0")], "authd.listen"),
        (&[("PORTICO__RELAY__AGENTS_LISTEN", "[::]:9090")], "relay.agents_listen"),
        (&[("PORTICO__RELAY__VISITORS_LISTEN", "192.168.1.2:9080")], "relay.visitors_listen"),
        (&[("PORTICO__RELAY__VISITORS_LISTEN", "127.0.0.1:9091")], "relay.visitors_listen"),
        (&[("PORTICO__RELAY__HALF_CLOSE_TIMEOUT_SECS", "0")], "relay.half_close_timeout_secs"),
        (&[("PORTICO__AUTHD__MODE", "authelia")], "authd.mode"),
        (&[("PORTICO__AUTHD__MODE", "external")], "authd.external.verify_url"),
        (
            &[
                ("PORTICO__AUTHD__MODE", "external"),
                ("PORTICO__AUTHD__EXTERNAL__VERIFY_URL", "http://authelia:9091/api/verify"),
            ],
            "authd.external.portal_url",
        ),
    ];
    for (vars, key) in cases {
        let sources = Sources { env: env(vars), ..Default::default() };
        let err = Settings::load(&sources).expect_err(key).to_string();
        assert!(err.contains(&format!("`{key}")), "{key}: {err}");
        assert!(err.contains(&env_name(key)), "{key}: {err}");
    }
}

/// nginx proxies to these listeners, so each is a loopback address with a
/// fixed port of its own; IPv4-mapped and IPv6 loopback count.
#[test]
fn internal_listeners_must_be_loopback() {
    let s = Settings::load(&Sources::default()).unwrap();
    let defaults: Vec<String> = s.internal_listeners().iter().map(|(k, a)| format!("{k}={a}")).collect();
    assert_eq!(
        defaults,
        [
            "panel.listen=127.0.0.1:3100",
            "authd.listen=127.0.0.1:9091",
            "relay.agents_listen=127.0.0.1:9090",
            "relay.visitors_listen=127.0.0.1:9080"
        ]
    );
    let moved = env(&[
        ("PORTICO__AUTHD__LISTEN", "127.0.0.2:9091"),
        ("PORTICO__RELAY__AGENTS_LISTEN", "[::1]:19090"),
        ("PORTICO__RELAY__VISITORS_LISTEN", "[::ffff:127.0.0.1]:19080"),
    ]);
    let s = Settings::load(&Sources { env: moved, ..Default::default() }).unwrap();
    assert_eq!(s.relay.agents_listen.to_string(), "[::1]:19090");

    let err =
        Settings::load(&Sources { env: env(&[("PORTICO__AUTHD__LISTEN", "0.0.0.0:9091")]), ..Default::default() })
            .unwrap_err()
            .to_string();
    assert!(err.contains("`authd.listen`") && err.contains("PORTICO__AUTHD__LISTEN"), "{err}");
    assert!(err.contains("0.0.0.0:9091 is not a loopback address"), "{err}");
    let clash = env(&[("PORTICO__RELAY__AGENTS_LISTEN", "[::ffff:127.0.0.1]:3100")]);
    let err = Settings::load(&Sources { env: clash, ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("`relay.agents_listen`") && err.contains("already used by panel.listen"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yaml", "relay:\n  agents_listen: 203.0.113.7:9090\n");
    let err = Settings::load(&Sources { config_file: Some(file), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("`relay.agents_listen`") && err.contains("PORTICO__RELAY__AGENTS_LISTEN"), "{err}");
}

#[test]
fn visitor_log_port_zero_turns_counting_off() {
    let on = Settings::load(&Sources::default()).unwrap();
    assert_eq!(on.panel.visitor_log(), Some("127.0.0.1:3101".parse().unwrap()));
    let sources = Sources { env: env(&[("PORTICO__PANEL__VISITOR_LOG_PORT", "0")]), ..Default::default() };
    assert_eq!(Settings::load(&sources).unwrap().panel.visitor_log(), None);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "c.yaml", "panel:\n  lisen: 127.0.0.1:1\n");
    let err = Settings::load(&Sources { config_file: Some(config), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn secrets_are_masked_and_read_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cret-value-that-is-long-enough-0123456789";
    let file = write(&dir, "secret", &format!("{secret}\n"));
    let sources =
        Sources { env: env(&[("PORTICO__PANEL__SECRET_FILE", file.to_str().unwrap())]), ..Default::default() };
    let s = Settings::load(&sources).unwrap();
    assert_eq!(s.panel.secret.as_ref().unwrap().expose(), secret);
    let yaml = s.to_yaml();
    assert!(!yaml.contains(secret), "{yaml}");
    assert!(yaml.contains("secret: '***'") || yaml.contains("secret: \"***\""), "{yaml}");
    assert!(!format!("{s:?}").contains(secret));
}

#[test]
fn an_endless_secret_file_is_refused_with_its_key() {
    let sources = Sources { env: env(&[("PORTICO__BACKUP__PASSPHRASE_FILE", "/dev/zero")]), ..Default::default() };
    let err = Settings::load(&sources).unwrap_err().to_string();
    assert!(err.contains("backup.passphrase_file") && err.contains("larger than 65536 bytes"), "{err}");
}

#[test]
fn mapped_ipv4_peers_count_as_ipv4() {
    let s = Settings::default();
    assert!(s.is_trusted_proxy("::ffff:127.0.0.1".parse().unwrap()));
    assert!(s.is_trusted_proxy("::1".parse().unwrap()));
    assert!(!s.is_trusted_proxy("10.0.0.1".parse().unwrap()));
    assert!(s.is_ingress_peer("172.30.32.2".parse().unwrap()));
    assert!(!s.is_ingress_peer("172.30.32.3".parse().unwrap()));
}

#[test]
fn acme_renew_schedule_must_be_a_cron_expression() {
    let s = Settings::load(&Sources::default()).unwrap();
    let next = s.acme.schedule().unwrap().upcoming(chrono::Utc).next().unwrap();
    assert!(matches!(next.format("%a").to_string().as_str(), "Mon" | "Thu"), "{next}");

    let sources = Sources { env: env(&[("PORTICO__ACME__RENEW_SCHEDULE", "every tuesday")]), ..Default::default() };
    let err = Settings::load(&sources).unwrap_err().to_string();
    assert!(err.contains("acme.renew_schedule") && err.contains("PORTICO__ACME__RENEW_SCHEDULE"), "{err}");
    assert!(err.contains("every tuesday"), "{err}");

    let sources = Sources { env: env(&[("PORTICO__ACME__RENEW_SCHEDULE", "0 0 4 * * Sun")]), ..Default::default() };
    assert_eq!(Settings::load(&sources).unwrap().acme.renew_schedule, "0 0 4 * * Sun");

    let sources = Sources { env: env(&[("PORTICO__ACME__RENEW_DAYS", "0")]), ..Default::default() };
    let err = Settings::load(&sources).unwrap_err().to_string();
    assert!(err.contains("acme.renew_days") && err.contains("PORTICO__ACME__RENEW_DAYS"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "c.yaml", "acme:\n  directory_url: https://example.test/dir\n");
    let err = Settings::load(&Sources { config_file: Some(file), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("directory_url"), "the old key name is refused: {err}");
}

/// `authd.mode: external`: both URLs are required and must be URLs nginx
/// can take verbatim; a good pair loads.
#[test]
fn external_visitor_auth_urls_are_checked() {
    let load = |verify: &str, portal: &str| {
        let vars = [
            ("PORTICO__AUTHD__MODE", "external"),
            ("PORTICO__AUTHD__EXTERNAL__VERIFY_URL", verify),
            ("PORTICO__AUTHD__EXTERNAL__PORTAL_URL", portal),
        ];
        Settings::load(&Sources { env: env(&vars), ..Default::default() })
    };
    let s = load("http://authelia:9091/api/verify", "https://auth.example.org/").unwrap();
    assert_eq!(s.authd.mode, crate::settings::AuthdMode::External);
    let cases = [
        (
            "ftp://authelia/api/verify",
            "https://auth.example.org/",
            "authd.external.verify_url",
            "must start with http:// or https://",
        ),
        ("http://authelia:9091/api/verify?x=1", "https://auth.example.org/", "authd.external.verify_url", "query"),
        ("http://u:p@authelia/api/verify", "https://auth.example.org/", "authd.external.verify_url", "credentials"),
        ("http://authelia/api/$host", "https://auth.example.org/", "authd.external.verify_url", "must not contain $"),
        ("http://authelia/api;verify", "https://auth.example.org/", "authd.external.verify_url", "must not contain $"),
        ("not a url", "https://auth.example.org/", "authd.external.verify_url", "is not a URL"),
        (
            "http://authelia/api/verify",
            "http://auth.example.org/",
            "authd.external.portal_url",
            "must start with https://",
        ),
        ("http://authelia/api/verify", "https://auth.example.org/#x", "authd.external.portal_url", "fragment"),
    ];
    for (verify, portal, key, says) in cases {
        let err = load(verify, portal).expect_err(verify).to_string();
        assert!(err.contains(&format!("`{key}`")) && err.contains(says), "{verify} {portal}: {err}");
    }
    // Builtin mode ignores the URLs.
    let vars = [("PORTICO__AUTHD__EXTERNAL__VERIFY_URL", "nonsense")];
    assert!(Settings::load(&Sources { env: env(&vars), ..Default::default() }).is_ok());
}
