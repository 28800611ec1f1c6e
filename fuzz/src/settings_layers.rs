//! The settings layers read at start (YAML file, add-on options JSON,
//! `PORTICO__*` environment): any text gives settings that validate or a
//! clear error naming what is wrong, never a panic; settings that load are
//! written back (`portico config`) as YAML that loads to the same settings.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use portico::settings::{Settings, Sources};

#[derive(Arbitrary, Debug)]
struct Layers {
    yaml: Option<String>,
    json: Option<String>,
    env: Vec<(String, String)>,
}

pub fn run(data: &[u8]) {
    let (mode, rest) = crate::split_mode(data);
    let text = || Some(String::from_utf8_lossy(rest).into_owned());
    // A config.yaml, an options.json, or all three layers at once.
    let layers = match mode % 3 {
        0 => Layers { yaml: text(), json: None, env: Vec::new() },
        1 => Layers { yaml: None, json: text(), env: Vec::new() },
        _ => {
            let Ok(layers) = Layers::arbitrary(&mut Unstructured::new(rest)) else { return };
            layers
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &Option<String>| {
        text.as_ref().map(|t| {
            let p = dir.path().join(name);
            std::fs::write(&p, t).unwrap();
            p
        })
    };
    let env: HashMap<String, String> =
        layers.env.iter().take(8).map(|(k, v)| (format!("PORTICO__{}", k.to_ascii_uppercase()), v.clone())).collect();
    let sources = Sources {
        system_file: None,
        config_file: write("config.yaml", &layers.yaml),
        options_file: write("options.json", &layers.json),
        env,
    };
    match Settings::load(&sources) {
        Ok(settings) => {
            settings.validate().expect("loaded settings validate");
            // `portico config` masks secrets; their round trip is not the YAML's.
            if settings.panel.secret.is_some() || settings.backup.passphrase.is_some() {
                return;
            }
            let again = dir.path().join("again.yaml");
            std::fs::write(&again, settings.to_yaml()).unwrap();
            let back = Settings::load(&Sources {
                system_file: None,
                config_file: Some(again),
                options_file: None,
                env: HashMap::new(),
            })
            .unwrap_or_else(|e| panic!("its own YAML does not load: {e}\n{}", settings.to_yaml()));
            assert_eq!(back.to_yaml(), settings.to_yaml(), "the YAML does not round-trip");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
