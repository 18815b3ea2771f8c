//! `herd query|set|create|delete|schema|history`: placeholder until the
//! inventory client lands; the owner replaces this file.

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

placeholder!(QueryArgs, query);
placeholder!(SetArgs, set);
placeholder!(CreateArgs, create);
placeholder!(DeleteArgs, delete);
placeholder!(SchemaArgs, schema);
placeholder!(HistoryArgs, history);
