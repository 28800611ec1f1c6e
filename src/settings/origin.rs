//! Which bootstrap keys an operator set on purpose, and where: a key that a
//! settings file or the environment defines is *explicit*; every other key
//! holds its built-in default. Runtime settings edited in the panel never
//! override an explicit key.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};

/// Where an explicit key came from (the last layer that defines it wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML settings file (`/etc/portico/config.yaml` or `$PORTICO_CONFIG`).
    File(PathBuf),
    /// The Home Assistant add-on options (`/data/options.json`).
    AddonOptions(PathBuf),
    /// A `PORTICO__…` environment variable, by its name.
    Environment(String),
}

impl Origin {
    /// "set by PORTICO__AUTHD__SESSION_HOURS in the environment", "set in /etc/portico/config.yaml".
    pub fn describe(&self) -> String {
        match self {
            Origin::File(path) => format!("set in {}", path.display()),
            Origin::AddonOptions(path) => format!("set in the add-on options ({})", path.display()),
            Origin::Environment(var) => format!("set by {var} in the environment"),
        }
    }

    pub fn is_environment(&self) -> bool {
        matches!(self, Origin::Environment(_))
    }
}

/// One settings file layer as it was read at start.
pub(super) struct FileLayer {
    pub path: PathBuf,
    pub format: FileFormat,
    pub text: String,
}

/// The settings layers, kept so that any dotted key can be asked about later.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// Keys found in a file layer, in layer order: (origin, the layer's keys).
    files: Vec<(Origin, Config)>,
    env: Option<Config>,
    /// Lower-cased variable name → the name as the operator wrote it.
    env_names: BTreeMap<String, String>,
}

impl PartialEq for Origins {
    /// Two loads from the same layers are equal; a hand-built `Settings`
    /// (tests) has no layers at all.
    fn eq(&self, other: &Self) -> bool {
        let files = |o: &Origins| o.files.iter().map(|(origin, _)| origin.clone()).collect::<Vec<_>>();
        files(self) == files(other) && self.env_names == other.env_names
    }
}

impl Origins {
    /// Reads the layers the way [`super::Settings::load`] merges them.
    pub(super) fn read(files: &[FileLayer], options_file: Option<&PathBuf>, env: &HashMap<String, String>) -> Origins {
        let files = files
            .iter()
            .filter_map(|layer| {
                let config = Config::builder().add_source(File::from_str(&layer.text, layer.format)).build().ok()?;
                let origin = if Some(&layer.path) == options_file {
                    Origin::AddonOptions(layer.path.clone())
                } else {
                    Origin::File(layer.path.clone())
                };
                Some((origin, config))
            })
            .collect();
        let portico: HashMap<String, String> =
            env.iter().filter(|(k, _)| k.starts_with("PORTICO__")).map(|(k, v)| (k.clone(), v.clone())).collect();
        let env_names = portico.keys().map(|k| (k.to_lowercase(), k.clone())).collect();
        let source = Environment::with_prefix("PORTICO").prefix_separator("__").separator("__").source(Some(portico));
        Origins { files, env: Config::builder().add_source(source).build().ok(), env_names }
    }

    /// Where the dotted `key` (e.g. `authd.session_hours`) was set, or `None`
    /// when it holds its default.
    pub fn of(&self, key: &str) -> Option<Origin> {
        let defines = |c: &Config| c.get::<config::Value>(key).is_ok();
        if self.env.as_ref().is_some_and(defines) {
            let wanted = super::env_name(key);
            let name = self.env_names.get(&wanted.to_lowercase()).cloned().unwrap_or(wanted);
            return Some(Origin::Environment(name));
        }
        self.files.iter().rev().find(|(_, c)| defines(c)).map(|(origin, _)| origin.clone())
    }
}
