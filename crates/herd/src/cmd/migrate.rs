//! `herd vm migrate` and `herd hv evacuate`: placeholder until herd-migrate
//! lands; the owner replaces this file. `vm.rs` and `hv.rs` call into here.

use super::Global;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Arguments (not yet defined).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct EvacuateArgs {
    /// Arguments (not yet defined).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn migrate(_global: &Global, _args: MigrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("herd vm migrate is not built yet")
}

pub fn evacuate(_global: &Global, _args: EvacuateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("herd hv evacuate is not built yet")
}
