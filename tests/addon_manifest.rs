//! The Home Assistant add-on manifest (`config.yaml`) checked the way the
//! Supervisor checks it before it starts the add-on or saves its options:
//! the defaults in `options` are merged with the user's options (top-level
//! keys, the user's win), validated against `schema` (unknown keys dropped, a
//! nested section without a default is a missing required option, `match()`
//! anchored at the start like Python's `re.match`), and written to
//! `/data/options.json` — which Portico then loads as a settings layer. Every
//! case that the Supervisor accepts must also start Portico, with each option
//! landing in the setting of the same name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portico::settings::{Settings, Sources};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(repo().join("config.yaml")).expect("config.yaml");
    serde_yaml::from_str(&text).expect("config.yaml is YAML")
}

/// The Supervisor's `options` property: defaults, then the user's, top level.
fn merged(defaults: &Value, user: &Value) -> Value {
    let mut out = defaults.as_object().cloned().unwrap_or_default();
    for (k, v) in user.as_object().cloned().unwrap_or_default() {
        out.insert(k, v);
    }
    Value::Object(out)
}

/// `AddonOptions.__call__`: validates `options` against `schema`.
fn validate(schema: &Value, options: &Value) -> Result<Value, String> {
    validate_dict(schema, options, "root")
}

fn validate_dict(schema: &Value, data: &Value, key: &str) -> Result<Value, String> {
    let schema = schema.as_object().expect("schema dict");
    let data = data.as_object().ok_or_else(|| format!("Invalid dict for option '{key}'"))?;
    let mut out = serde_json::Map::new();
    for (k, v) in data {
        let Some(typ) = schema.get(k) else { continue }; // unknown: dropped with a warning
        out.insert(k.clone(), validate_element(typ, v, k)?);
    }
    for (k, typ) in schema {
        if out.contains_key(k) {
            continue;
        }
        let typ = typ.as_array().and_then(|a| a.first()).unwrap_or(typ);
        if typ.as_str().is_some_and(|t| t.ends_with('?')) {
            continue;
        }
        return Err(format!("Missing option '{k}' in {key}"));
    }
    Ok(Value::Object(out))
}

fn validate_element(typ: &Value, value: &Value, key: &str) -> Result<Value, String> {
    match typ {
        Value::Object(_) => validate_dict(typ, value, key),
        Value::Array(a) => {
            let items = value.as_array().ok_or_else(|| format!("Invalid list for option '{key}'"))?;
            items.iter().map(|v| validate_element(&a[0], v, key)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        Value::String(t) => validate_single(t, value, key),
        other => panic!("schema type of {key} is not a string, list or dict: {other}"),
    }
}

/// The element grammar of `RE_SCHEMA_ELEMENT`.
fn element_grammar() -> regex::Regex {
    regex::Regex::new(
        r"^(?:|bool|email|url|port|device(?:\((?P<filter>subsystem=[a-z]+)\))?|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?|float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?|match\((?P<match>.*)\)|list\((?P<list>.+)\))\??$",
    )
    .unwrap()
}

fn validate_single(typ: &str, value: &Value, key: &str) -> Result<Value, String> {
    if value.is_null() {
        return Err(format!("Missing required option '{key}'"));
    }
    let caps = element_grammar().captures(typ).unwrap_or_else(|| panic!("unknown type '{typ}' for {key}"));
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bad = |why: &str| Err(format!("{why} for option '{key}': {text:?}"));
    if typ.starts_with("str") || typ.starts_with("password") {
        return Ok(Value::String(text));
    }
    if typ.starts_with("int") {
        let Ok(n) = text.parse::<i64>() else { return bad("not an integer") };
        let min = caps.name("i_min").map(|m| m.as_str().parse::<i64>().unwrap());
        let max = caps.name("i_max").map(|m| m.as_str().parse::<i64>().unwrap());
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            return bad("out of range");
        }
        return Ok(json!(n));
    }
    if typ.starts_with("bool") {
        return match value {
            Value::Bool(b) => Ok(json!(b)),
            _ => bad("not a boolean"),
        };
    }
    if typ.starts_with("url") {
        let ok = text.split_once("://").is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
        return if ok { Ok(Value::String(text)) } else { bad("not a URL") };
    }
    if typ.starts_with("match") {
        // voluptuous' Match uses re.match: anchored at the start only.
        let re = regex::Regex::new(&format!("^(?:{})", &caps["match"])).expect("match() pattern compiles");
        return if re.is_match(&text) { Ok(Value::String(text)) } else { bad("does not match") };
    }
    if typ.starts_with("list") {
        let choices: Vec<&str> = caps["list"].split('|').collect();
        return if choices.contains(&text.as_str()) { Ok(Value::String(text)) } else { bad("not one of the choices") };
    }
    panic!("type '{typ}' of {key} is not used by Portico's manifest; teach this test its rule first")
}

/// What the Supervisor would write to `/data/options.json` for these user options.
fn supervisor_options(user: Value) -> Result<Value, String> {
    let m = manifest();
    validate(&m["schema"], &merged(&m["options"], &user))
}

fn load(options: &Value) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("options.json");
    std::fs::write(&path, serde_json::to_vec(options).unwrap()).unwrap();
    Settings::load(&Sources { options_file: Some(path), ..Default::default() }).map_err(|e| e.to_string())
}

/// Every leaf of `options` has the same value at the same path of the
/// effective settings (secrets compare as their mask).
fn assert_lands_in_settings(options: &Value, settings: &Settings, schema: &Value) {
    let effective = serde_json::to_value(settings).unwrap();
    fn walk(opt: &Value, eff: &Value, schema: &Value, path: &str) {
        match opt {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let e = eff.get(k).unwrap_or_else(|| panic!("option {p} is not a Portico setting"));
                    walk(v, e, &schema[k], &p);
                }
            }
            leaf => {
                let expected = if schema.as_str().is_some_and(|t| t.starts_with("password")) {
                    json!("***")
                } else {
                    leaf.clone()
                };
                assert_eq!(eff, &expected, "option {path} did not land in the setting {path}");
            }
        }
    }
    walk(options, &effective, schema, "");
}

fn full_appliance_options() -> Value {
    json!({
        "mode": "appliance",
        "log": { "level": "debug" },
        "public_ip": "203.0.113.7",
        "acme": {
            "directory": "https://acme-staging-v02.api.letsencrypt.org/directory",
            "renew_schedule": "0 5 4 * * Sun",
            "renew_days": 20
        },
        "backup": { "schedule": "0 30 3 * * *", "keep": 14, "passphrase": "a long backup passphrase" },
        "agent": {}
    })
}

fn agent_options() -> Value {
    json!({
        "mode": "agent",
        "agent": {
            "panel_url": "https://203.0.113.7:9292",
            "token": "-Zq3xv_8Ykq2Lr0nWcQpTg",
            "fingerprint": "AB:".repeat(31) + "CD",
            "relay": "wss://tunnel.example.com/"
        }
    })
}

#[test]
fn every_schema_section_has_a_default_so_a_fresh_install_starts() {
    let m = manifest();
    let schema = m["schema"].as_object().unwrap();
    for (key, typ) in schema {
        if typ.is_object() {
            assert!(
                m["options"].get(key).is_some_and(Value::is_object),
                "schema section `{key}` has no `options` entry"
            );
        }
    }
    let options = supervisor_options(json!({})).expect("the defaults pass the Supervisor's check");
    let settings = load(&options).expect("Portico starts from the default options");
    assert_lands_in_settings(&options, &settings, &m["schema"]);
}

#[test]
fn realistic_option_sets_pass_and_land_in_portico_settings() {
    let m = manifest();
    for user in [
        json!({ "public_ip": "203.0.113.7" }),
        json!({ "public_ip": "2001:db8::7" }),
        full_appliance_options(),
        agent_options(),
    ] {
        let options = supervisor_options(user.clone()).unwrap_or_else(|e| panic!("{user}: {e}"));
        let settings = load(&options).unwrap_or_else(|e| panic!("{user}: Portico refused {options}: {e}"));
        assert_lands_in_settings(&options, &settings, &m["schema"]);
    }
    let settings = load(&supervisor_options(agent_options()).unwrap()).unwrap();
    assert_eq!(settings.mode, portico::settings::Mode::Agent);
    assert_eq!(settings.agent.token.as_ref().map(|t| t.expose()), Some("-Zq3xv_8Ykq2Lr0nWcQpTg"));
}

#[test]
fn bad_values_are_refused_by_the_supervisor_before_portico_sees_them() {
    let cases = [
        json!({ "public_ip": "not-an-ip" }),
        json!({ "public_ip": "example.com" }),
        json!({ "public_ip": "203.0.113.256" }),
        json!({ "public_ip": "203.0.113.7 " }),
        json!({ "mode": "relay" }),
        json!({ "log": { "level": "verbose" } }),
        json!({ "log": {} }),
        json!({ "acme": { "directory": "http://acme.example/dir" } }),
        json!({ "acme": { "renew_days": 90 } }),
        json!({ "acme": { "renew_schedule": "daily" } }),
        json!({ "backup": { "keep": 0 } }),
        json!({ "backup": { "schedule": "@daily" } }),
        json!({ "agent": { "panel_url": "panel.example.com" } }),
        json!({ "agent": { "fingerprint": "abc" } }),
        json!({ "agent": { "relay": "https://tunnel.example.com/" } }),
    ];
    for user in cases {
        assert!(supervisor_options(user.clone()).is_err(), "the Supervisor would accept {user}");
    }
}

#[test]
fn no_option_names_a_file_the_user_has_no_place_to_put() {
    let m = manifest();
    assert!(m["schema"]["acme"].get("ca_bundle").is_none(), "acme.ca_bundle needs a `map` entry or must go");
    // Every option is a setting Portico knows, even the ones not in `options`.
    let defaults = serde_json::to_value(Settings::default()).unwrap();
    fn known(schema: &Value, settings: &Value, path: &str) {
        for (k, v) in schema.as_object().unwrap() {
            let p = format!("{path}{k}");
            let s = settings.get(k).unwrap_or_else(|| panic!("option {p} is not a Portico setting"));
            if v.is_object() {
                known(v, s, &format!("{p}."));
            }
        }
    }
    known(&m["schema"], &defaults, "");
}

#[test]
fn the_entry_script_passes_every_option_to_portico_unrenamed() {
    // The entry script hands /data/options.json to portico as it is and reads
    // the mode back from `portico print-config`: run exactly that.
    let script = std::fs::read_to_string(repo().join("rootfs/usr/local/bin/portico-entry")).unwrap();
    assert!(script.contains("portico print-config"), "the entry script reads the effective settings");
    assert!(!script.contains("options.json |") && !script.contains("jq "), "options are not rewritten");
    let options = supervisor_options(full_appliance_options()).unwrap();
    // What `portico print-config` prints for these options.
    let printed: Value = serde_yaml::from_str(&load(&options).unwrap().to_yaml()).unwrap();
    let printed = serde_json::to_value(printed).unwrap();
    assert_eq!(printed["mode"], "appliance");
    assert_eq!(printed["public_ip"], "203.0.113.7");
    assert_eq!(printed["acme"]["renew_days"], 20);
    assert_eq!(printed["backup"]["keep"], 14);
    assert_eq!(printed["backup"]["passphrase"], "***");
}

/// `PurePath.match` for the patterns `backup_exclude` uses (`*` within one
/// component; an absolute pattern matches the whole path, a relative one
/// from the right).
fn pure_path_match(path: &str, pattern: &str) -> bool {
    fn glob(pat: &str, s: &str) -> bool {
        match pat.split_once('*') {
            None => pat == s,
            Some((head, tail)) => {
                s.starts_with(head) && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..]))
            }
        }
    }
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let q: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    if pattern.starts_with('/') && p.len() != q.len() || q.len() > p.len() {
        return false;
    }
    p.iter().rev().zip(q.iter().rev()).all(|(s, pat)| glob(pat, s))
}

#[test]
fn backup_exclude_drops_only_porticos_own_logs_and_backups() {
    let m = manifest();
    let patterns: Vec<String> =
        m["backup_exclude"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let excluded = |rel: &str| {
        // The Supervisor tests each directory and file as it walks the tree.
        let full = format!("/data/addons/data/local_portico/{rel}");
        let mut prefix = String::from("/data/addons/data/local_portico");
        rel.split('/').any(|part| {
            prefix = format!("{prefix}/{part}");
            patterns.iter().any(|pat| pure_path_match(&prefix, pat))
        }) || patterns.iter().any(|pat| pure_path_match(&full, pat))
    };
    for gone in ["logs", "logs/panel/current", "backups", "backups/2026-01-01.tar.zst.age"] {
        assert!(excluded(gone), "{gone} should stay out of Home Assistant backups");
    }
    for kept in [
        "portico.db",
        "pki/ca.key",
        "sites/blog/logs/index.html",
        "sites/logs/index.html",
        "sites/blog/backups/a.zip",
        "acme/certs/logs.example.com/fullchain.pem",
    ] {
        assert!(!excluded(kept), "{kept} must be in Home Assistant backups");
    }
    // The patterns of the old manifest dropped a site's logs/ folder.
    assert!(pure_path_match("/data/addons/data/local_portico/sites/blog/logs/x", "*/logs/*"));
}

#[test]
fn translations_name_every_option_nested_ones_too() {
    let m = manifest();
    let text = std::fs::read_to_string(repo().join("translations/en.yaml")).unwrap();
    let t: Value = serde_yaml::from_str(&text).unwrap();
    let config = &t["configuration"];
    for (k, v) in m["schema"].as_object().unwrap() {
        assert!(config[k]["name"].is_string(), "translations/en.yaml names no option `{k}`");
        if let Some(fields) = v.as_object() {
            for f in fields.keys() {
                assert!(config[k]["fields"][f]["name"].is_string(), "translations/en.yaml names no option `{k}.{f}`");
            }
        }
    }
    let ports: BTreeSet<&String> = m["ports"].as_object().unwrap().keys().collect();
    let named: BTreeSet<&String> = t["network"].as_object().unwrap().keys().collect();
    assert_eq!(ports, named, "every port has a description");
}

#[test]
fn store_files_are_in_the_add_on_directory() {
    let root = repo();
    for f in ["DOCS.md", "CHANGELOG.md", "icon.png", "logo.png", "apparmor.txt", "translations/en.yaml"] {
        assert!(root.join(f).is_file(), "{f} is missing");
    }
    assert_eq!(png_size(&root.join("icon.png")), (128, 128));
    assert_eq!(png_size(&root.join("logo.png")), (250, 100));
    let m = manifest();
    assert_eq!(m["ingress_stream"], true, "uploads through ingress above 16 MiB need ingress_stream");
    assert!(m["url"].as_str().is_some_and(|u| u.starts_with("https://")));
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
    let version = m["version"].as_str().unwrap();
    assert!(changelog.contains(&format!("## {version}")), "CHANGELOG.md has no entry for {version}");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn the_apparmor_profile_parses() {
    // -Q: parse and compile without loading into the kernel; -K: no cache.
    let out = std::process::Command::new("apparmor_parser")
        .args(["-Q", "-K"])
        .arg(repo().join("apparmor.txt"))
        .output()
        .expect("apparmor_parser runs (Debian package apparmor; .ci/run installs it)");
    assert!(out.status.success(), "apparmor.txt does not parse: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(repo().join("apparmor.txt")).unwrap();
    assert!(text.contains("profile portico "), "the profile is named after the add-on's slug");
}

#[test]
fn the_harness_add_on_starts_from_exactly_the_default_options() {
    let text = std::fs::read_to_string(repo().join("test-harness/ha/options.json")).unwrap();
    let harness: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        harness,
        supervisor_options(json!({})).unwrap(),
        "droplet-ha's options.json is what a fresh install gets"
    );
}

#[test]
fn the_store_repository_shows_the_short_readme_and_the_same_manifest() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("bash")
        .arg(repo().join("scripts/addon-repo"))
        .arg(out.path())
        .env("IMAGE", "ghcr.io/example/portico-{arch}")
        .status()
        .unwrap();
    assert!(status.success());
    let addon = out.path().join("portico");
    let readme = std::fs::read_to_string(addon.join("README.md")).unwrap();
    assert!(readme.len() < 2048, "the store's info tab gets the short README ({} bytes)", readme.len());
    let project = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(project.len() > 4 * readme.len(), "the project README stays the long one at the root");
    let text = std::fs::read_to_string(addon.join("config.yaml")).unwrap();
    let mut published: Value = serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap();
    assert_eq!(published["image"], "ghcr.io/example/portico-{arch}");
    published.as_object_mut().unwrap().remove("image");
    assert_eq!(published, manifest(), "the store's manifest is the repository's plus its image");
    for f in ["DOCS.md", "CHANGELOG.md", "icon.png", "logo.png", "apparmor.txt", "translations/en.yaml"] {
        assert_eq!(std::fs::read(addon.join(f)).unwrap(), std::fs::read(repo().join(f)).unwrap(), "{f}");
    }
    assert!(out.path().join("repository.yaml").is_file());
}
