//! The CLI's settings: command-line flags and environment first, then the
//! config file, then built-in defaults.
//!
//! The file is TOML, looked up at `--config`/`HERD_CONFIG`, else
//! `$XDG_CONFIG_HOME/herd/config.toml` (or `~/.config/herd/config.toml`),
//! else `/etc/herd/config.toml`. Missing files are fine; a file that exists
//! but does not parse is an error that names the file and the line.
//!
//! ```toml
//! url = "http://inventory.example.com:8740"   # server for query/set/create/...
//!
//! [serve]
//! db = "/var/lib/herd/inventory.sqlite"
//! listen = "127.0.0.1:8740"
//! read_cache = true      # PostgreSQL: answer queries from memory (default)
//! ```
//!
//! Keys this module does not know are ignored, so other subcommands can keep
//! their own settings in the same file.

use crate::cmd::Global;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where `herd serve` listens and the clients connect when nothing is said.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8740";
/// The database `herd serve` opens when nothing is said.
pub const DEFAULT_DB: &str = "herd.sqlite";

/// The settings read from the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Base URL of the herd server.
    pub url: Option<String>,
    /// Private key file to sign requests with.
    pub key: Option<PathBuf>,
    /// Settings of `herd serve`.
    pub serve: ServeConfig,
    /// The file these settings came from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    pub db: Option<PathBuf>,
    pub listen: Option<String>,
    /// PostgreSQL: `false` answers every query in SQL.
    pub read_cache: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Read the config file the global options point at, or the first one
    /// that exists in the default places, or none.
    pub fn load(global: &Global) -> Result<Config, ConfigError> {
        if let Some(path) = &global.config {
            return Config::read(path);
        }
        for path in default_paths() {
            if path.exists() {
                return Config::read(&path);
            }
        }
        Ok(Config::default())
    }

    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// The server URL: `--url`, then `HERD_URL` (both arrive in
    /// `global.url`), then the file, then the default listen address.
    pub fn server_url(&self, global: &Global) -> String {
        global
            .url
            .clone()
            .or_else(|| self.url.clone())
            .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"))
    }

    /// The key file to sign with: `--key`/`HERD_KEY`, then the file.
    pub fn key_file(&self, global: &Global) -> Option<PathBuf> {
        global.key.clone().or_else(|| self.key.clone())
    }
}

fn default_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        paths.push(PathBuf::from(dir).join("herd/config.toml"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        paths.push(PathBuf::from(home).join(".config/herd/config.toml"));
    }
    paths.push(PathBuf::from("/etc/herd/config.toml"));
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(url: Option<&str>) -> Global {
        Global {
            url: url.map(str::to_string),
            config: None,
            key: None,
        }
    }

    #[test]
    fn flag_or_env_url_wins_over_the_file() {
        let config: Config = toml::from_str(r#"url = "http://file:1""#).unwrap();
        assert_eq!(
            config.server_url(&global(Some("http://flag:2"))),
            "http://flag:2"
        );
        assert_eq!(config.server_url(&global(None)), "http://file:1");
    }

    #[test]
    fn without_any_setting_the_url_is_the_default_listen_address() {
        assert_eq!(
            Config::default().server_url(&global(None)),
            "http://127.0.0.1:8740"
        );
    }

    #[test]
    fn unknown_keys_are_left_to_other_subcommands() {
        let config: Config = toml::from_str(
            "url = \"http://x:1\"\n[lab]\nhosts = 2\n[serve]\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(config.serve.listen.as_deref(), Some("127.0.0.1:1"));
    }

    #[test]
    fn the_read_cache_can_be_switched_off_in_the_file() {
        let config: Config = toml::from_str("[serve]\nread_cache = false\n").unwrap();
        assert_eq!(config.serve.read_cache, Some(false));
        assert_eq!(Config::default().serve.read_cache, None, "on unless said");
    }

    #[test]
    fn a_broken_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "url = \n").unwrap();
        let err = Config::read(&path).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
    }
}
