//! Exit codes scripts can rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the operation failed (see the message) |
//! | 2 | bad usage or bad input (clap uses 2 as well) |
//! | 3 | conflict: newer data available, name or volume exists |
//! | 4 | not found |
//! | 5 | refused: authentication or permission |
//! | 6 | a plan was refused before anything was changed |
//! | 130 | interrupted (Ctrl-C), after undoing what was started |

use std::process::ExitCode;

/// An error that carries its exit code. Library errors are mapped to one of
/// these in the command modules; anything else exits with 1.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const CONFLICT: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const REFUSED: u8 = 5;
pub const PLAN_REFUSED: u8 = 6;
pub const INTERRUPTED: u8 = 130;

/// Print an error chain to stderr and turn the result into an exit code.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = err
                .downcast_ref::<Exit>()
                .map(|e| e.code)
                .unwrap_or(FAILURE);
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(code)
        }
    }
}
