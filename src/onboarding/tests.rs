use super::*;

#[test]
fn domains() {
    let good = [
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("  home.example.org ", "home.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.example.test", "a-b.example.test"),
    ];
    for (input, want) in good {
        assert_eq!(validate_domain(input).as_deref(), Ok(want), "{input}");
    }
    let bad = [
        "",
        "localhost",
        "203.0.113.5",
        "[::1]",
        "::1",
        "https://example.com",
        "example.com:443",
        "example.com/x",
        "*.example.com",
        "-bad.example.com",
        "bad-.example.com",
        "exa_mple.com",
        "a..b",
        "user@example.com",
        "example.123",
        &format!("{}.com", "a".repeat(64)),
        &format!("{}com", "abcdefghi.".repeat(26)),
    ];
    for input in bad {
        let err = validate_domain(input).expect_err(input);
        assert_eq!(err.field, "domain");
    }
}

#[test]
fn emails() {
    assert_eq!(validate_email(" ops@example.com ").as_deref(), Ok("ops@example.com"));
    for bad in ["", "ops", "@example.com", "ops@", "ops@localhost", "o ps@example.com", "ops@1.2.3.4"] {
        assert_eq!(validate_email(bad).expect_err(bad).field, "email", "{bad}");
    }
}

#[test]
fn states_round_trip() {
    for s in ["FRESH", "DOMAIN_SET", "DNS_READY", "PROVISIONING", "COMPLETED"] {
        assert_eq!(OnboardingState::parse(s).unwrap().as_str(), s);
        assert_eq!(serde_json::to_string(&OnboardingState::parse(s).unwrap()).unwrap(), format!("\"{s}\""));
    }
    assert_eq!(OnboardingState::parse("done"), None);
}

#[test]
fn probe_names_are_random_and_under_the_domain() {
    let a = names_to_check("example.test");
    let b = names_to_check("example.test");
    assert_eq!(a.len(), 4);
    assert_eq!(&a[..3], &["panel.example.test", "auth.example.test", "tunnel.example.test"]);
    assert!(a[3].ends_with(".example.test"));
    assert_ne!(a[3], b[3]);
}
