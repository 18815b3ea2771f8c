//! `herd user|key|token`: placeholder until the
//! auth crate lands; the owner replaces this file.

use super::Global;
use std::process::ExitCode;

macro_rules! placeholder {
    ($args:ident, $func:ident) => {
        #[derive(clap::Args, Debug)]
        pub struct $args {
            /// Arguments (not yet defined).
            #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
            pub rest: Vec<String>,
        }

        pub fn $func(_global: &Global, _args: $args) -> anyhow::Result<ExitCode> {
            anyhow::bail!(concat!("herd ", stringify!($func), " is not built yet"))
        }
    };
}

placeholder!(UserArgs, user);
placeholder!(KeyArgs, key);
placeholder!(TokenArgs, token);
