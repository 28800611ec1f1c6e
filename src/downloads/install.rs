//! `install.sh` and the lines the pages show.

use super::{Artifact, DEFAULT_NAME, PanelAddress, config_dir};

/// The script body; [`install_script`] puts this panel's settings at `#@SETTINGS@`.
const SCRIPT: &str = include_str!("install.sh");

/// A value as one single-quoted shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// curl's TLS options for this panel: its key pinned, and (by IP, where the
/// certificate is self-signed) the pin instead of the CA check.
fn curl_tls(p: &PanelAddress) -> String {
    match (&p.pubkey_pin, p.by_ip) {
        (Some(pin), true) => format!("-k --pinnedpubkey {pin}"),
        (Some(pin), false) => format!("--pinnedpubkey {pin}"),
        (None, _) => String::new(),
    }
}

/// `install.sh` with the panel URL, its pins, the relay and the checksum of
/// every served binary baked in.
pub fn install_script(p: &PanelAddress, artifacts: &[Artifact]) -> String {
    let sums: String = artifacts.iter().map(Artifact::checksum_line).collect();
    let settings = format!(
        "PANEL_URL={url}\nCURL_TLS={tls}\nFINGERPRINT={fp}\nRELAY={relay}\nCHECKSUMS={sums}\n",
        url = quote(&p.url),
        tls = quote(&curl_tls(p)),
        fp = quote(p.fingerprint.as_deref().unwrap_or("")),
        relay = quote(p.relay.as_deref().unwrap_or("")),
        sums = quote(&sums),
    );
    SCRIPT.replacen("#@SETTINGS@\n", &settings, 1)
}

/// The one line that installs, enrolls and starts the agent (run as root).
pub fn install_line(p: &PanelAddress, token: &str) -> String {
    let tls = curl_tls(p);
    let tls = if tls.is_empty() { tls } else { format!("{tls} ") };
    format!("curl -fsS {tls}{}/download/install.sh | sh -s -- --token {token}", p.url)
}

/// `portico agent enroll …` for a machine that has the binary already, with
/// the installer's config directory.
pub fn enroll_command(p: &PanelAddress, token: &str) -> String {
    let mut line =
        format!("portico agent --config-dir {} enroll --panel {} --token {token}", config_dir(DEFAULT_NAME), p.url);
    if let Some(fp) = &p.fingerprint {
        line.push_str(&format!(" --fingerprint {fp}"));
    }
    if let (true, Some(relay)) = (p.by_ip, &p.relay) {
        line.push_str(&format!(" --relay {relay}"));
    }
    line
}

/// The systemd unit `install.sh` writes for an installation (the same text,
/// so the tunnel page shows what the script installs).
pub fn systemd_unit(name: &str, bin: &str) -> String {
    let dir = config_dir(name);
    format!(
        "[Unit]\nDescription=Portico agent ({name})\nWants=network-online.target\nAfter=network-online.target\n\n\
         [Service]\nUser={name}\nExecStart={bin} agent --config-dir {dir} run\nRestart=always\nRestartSec=2\n\
         UMask=0077\nNoNewPrivileges=yes\nCapabilityBoundingSet=\nProtectSystem=strict\nProtectHome=yes\n\
         ReadWritePaths={dir}\nPrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\nProtectControlGroups=yes\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
         RestrictNamespaces=yes\nLockPersonality=yes\nSystemCallArchitectures=native\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// The launchd job `install.sh` writes on macOS.
pub fn launchd_plist(name: &str, bin: &str) -> String {
    let dir = config_dir(name);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n\
         \x20 <key>Label</key><string>app.portico.{name}</string>\n\
         \x20 <key>UserName</key><string>{name}</string>\n\
         \x20 <key>ProgramArguments</key>\n\
         \x20 <array><string>{bin}</string><string>agent</string><string>--config-dir</string><string>{dir}</string><string>run</string></array>\n\
         \x20 <key>RunAtLoad</key><true/>\n\
         \x20 <key>KeepAlive</key><true/>\n\
         \x20 <key>StandardErrorPath</key><string>{dir}/agent.log</string>\n</dict>\n</plist>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_ip() -> PanelAddress {
        PanelAddress {
            url: "https://203.0.113.7:9292".into(),
            by_ip: true,
            fingerprint: Some("ab".repeat(32)),
            pubkey_pin: Some("sha256//AAAA+/=".into()),
            relay: Some("wss://tunnel.example.test/".into()),
        }
    }

    #[test]
    fn script_carries_the_panel_its_pins_and_every_checksum() {
        let artifacts = [
            Artifact { name: "portico-linux-amd64", sha256: "11".repeat(32), size: 1 },
            Artifact { name: "portico-linux-arm64", sha256: "22".repeat(32), size: 2 },
        ];
        let s = install_script(&by_ip(), &artifacts);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(!s.contains("#@SETTINGS@"));
        assert!(s.contains("PANEL_URL='https://203.0.113.7:9292'\n"), "{s}");
        assert!(s.contains("CURL_TLS='-k --pinnedpubkey sha256//AAAA+/='\n"));
        assert!(s.contains(&format!("FINGERPRINT='{}'\n", "ab".repeat(32))));
        assert!(s.contains("RELAY='wss://tunnel.example.test/'\n"));
        let sums = format!(
            "CHECKSUMS='{}  portico-linux-amd64\n{}  portico-linux-arm64\n'\n",
            "11".repeat(32),
            "22".repeat(32)
        );
        assert!(s.contains(&sums), "{s}");
    }

    #[test]
    fn lines_pin_the_panel() {
        let p = by_ip();
        assert_eq!(
            install_line(&p, "TOK"),
            "curl -fsS -k --pinnedpubkey sha256//AAAA+/= https://203.0.113.7:9292/download/install.sh | sh -s -- --token TOK"
        );
        let enroll = enroll_command(&p, "TOK");
        assert!(
            enroll.contains("--fingerprint abab") && enroll.contains("--relay wss://tunnel.example.test/"),
            "{enroll}"
        );
        let named = PanelAddress { url: "https://panel.example.test".into(), by_ip: false, ..p };
        let line = install_line(&named, "TOK");
        assert!(line.starts_with("curl -fsS --pinnedpubkey sha256//"), "by name the CA is checked too: {line}");
        assert!(!enroll_command(&named, "TOK").contains("--relay"), "the agent derives tunnel.<d> from panel.<d>");
        let unknown = PanelAddress { fingerprint: None, pubkey_pin: None, ..named };
        assert_eq!(
            install_line(&unknown, "T"),
            "curl -fsS https://panel.example.test/download/install.sh | sh -s -- --token T"
        );
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
