//! The OPaaS config file (TOML), default `~/.config/opaas/config.toml`.
//!
//! ```toml
//! cache_dir = "/var/cache/opaas"     # optional
//! preset = "tuna"                    # optional: a named mirror preset
//! [mirrors]                          # optional, per family
//! debian = "http://mirror.example/debian"
//! debian_security = "http://mirror.example/debian-security"
//! ubuntu = "http://mirror.example/ubuntu"
//! ubuntu_security = "http://mirror.example/ubuntu"
//! ubuntu_ports = "http://mirror.example/ubuntu-ports"
//! ubuntu_ports_security = "http://mirror.example/ubuntu-ports"
//! [keyrings]                         # optional, per keyring name of the catalog
//! debian = "/usr/share/keyrings/debian-archive-keyring.gpg"
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cache_dir: Option<PathBuf>,
    pub preset: Option<String>,
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    #[serde(default)]
    pub keyrings: BTreeMap<String, PathBuf>,
    /// Where this config was read from (not a TOML key).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// The default location: `$XDG_CONFIG_HOME/opaas/config.toml` or `~/.config/opaas/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
            return Some(PathBuf::from(x).join("opaas/config.toml"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/opaas/config.toml"))
    }

    /// Loads `explicit` (which must exist) or the default path (which may be absent).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, must_exist) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => match Self::default_path() {
                Some(p) => (p, false),
                None => return Ok(Config::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default())
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let mut c: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        c.path = Some(path);
        Ok(c)
    }
}
