//! One module per subcommand family. Every `run` returns
//! `anyhow::Result<ExitCode>`; `exit::report` prints errors and picks the code.

pub mod db;
pub mod exit;
pub mod fw;
pub mod hv;
pub mod inventory;
pub mod lab;
pub mod migrate;
pub mod serve;
pub mod uci;
pub mod users;
pub mod vm;

use std::path::PathBuf;

/// Options every subcommand understands.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// URL of the herd server (also HERD_URL, or `url` in the config file).
    #[arg(long, global = true, env = "HERD_URL")]
    pub url: Option<String>,
    /// Config file (default: $XDG_CONFIG_HOME/herd/config.toml, then /etc/herd/config.toml).
    #[arg(long, global = true, env = "HERD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Sign requests with this private key file instead of ssh-agent.
    #[arg(long, global = true, env = "HERD_KEY")]
    pub key: Option<PathBuf>,
}
