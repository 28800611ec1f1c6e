//! `scripts/prerequisites.sh`, which the README's two commands source: the
//! Debian mirror read from the host's apt sources, and the stop with one
//! `apt-get install` line for a user who cannot install.

use std::path::Path;
use std::process::{Command, Output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/prerequisites.sh");

fn bash(snippet: &str) -> Output {
    Command::new("bash").arg("-c").arg(format!(". '{SCRIPT}'; {snippet}")).output().expect("bash runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn mirrors(apt: &Path) -> (String, String) {
    let dir = apt.display();
    (
        stdout(&bash(&format!("host_debian_mirror debian '{dir}'"))),
        stdout(&bash(&format!("host_debian_mirror debian-security '{dir}'"))),
    )
}

#[test]
fn image_builds_use_the_mirrors_the_host_itself_uses() {
    let apt = tempfile::tempdir().unwrap();
    std::fs::create_dir(apt.path().join("sources.list.d")).unwrap();
    assert_eq!(mirrors(apt.path()), (String::new(), String::new()), "no sources: nothing, so the default applies");

    // One-line format, with options in brackets and a commented-out line first.
    std::fs::write(
        apt.path().join("sources.list"),
        "# deb http://old.example/debian bookworm main\n\
         deb [ arch=amd64 signed-by=/k.gpg ] http://mirror.example.org/debian/ bookworm main\n\
         deb http://mirror.example.org/debian-security bookworm-security main\n",
    )
    .unwrap();
    assert_eq!(
        mirrors(apt.path()),
        ("http://mirror.example.org/debian".into(), "http://mirror.example.org/debian-security".into())
    );

    // deb822 only, beside a third-party repository that is not Debian's.
    std::fs::remove_file(apt.path().join("sources.list")).unwrap();
    std::fs::write(
        apt.path().join("sources.list.d/debian.sources"),
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
         URIs: https://ftp.example.net/debian\nSuites: bookworm\nComponents: main\n\n\
         Types: deb\nURIs: https://ftp.example.net/debian-security/\nSuites: bookworm-security\n",
    )
    .unwrap();
    std::fs::write(
        apt.path().join("sources.list.d/node.sources"),
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n",
    )
    .unwrap();
    assert_eq!(
        mirrors(apt.path()),
        ("https://ftp.example.net/debian".into(), "https://ftp.example.net/debian-security".into())
    );
}

#[test]
fn present_tools_are_left_alone_and_a_user_who_cannot_install_gets_the_one_command() {
    let present = bash("need bash=portico-no-such-package '/bin/s*=portico-no-such-package' && echo ok");
    assert!(present.status.success() && stdout(&present) == "ok", "{present:?}");

    // As an unprivileged user the script stops before doing anything else.
    let root = bash("id -u").stdout == b"0\n";
    if !root || Command::new("runuser").arg("--version").output().is_err() {
        eprintln!("skipping the unprivileged half: needs root and runuser");
        return;
    }
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "bash", "-c"])
        .arg(format!(". '{SCRIPT}'; need portico-no-such-command=portico-no-such-package; echo went-on"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stdout(&out).contains("went-on"));
    assert!(stderr.contains("sudo apt-get install -y --no-install-recommends portico-no-such-package"), "{stderr}");
}
