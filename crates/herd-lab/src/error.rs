use crate::preflight::Problem;
use std::path::PathBuf;

/// Everything that can go wrong with a lab, each message saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab cannot start on this machine:\n{}", render_problems(.0))]
    Preflight(Vec<Problem>),
    #[error("a lab is already running in {}; stop it with `herd lab down --dir {}` or choose another --dir", .0.display(), .0.display())]
    AlreadyRunning(PathBuf),
    #[error("no lab in {} (no lab.json there); start one with `herd lab up --dir {}`", .0.display(), .0.display())]
    NoLab(PathBuf),
    #[error("lab dir {}: {reason}", dir.display())]
    BadDir { dir: PathBuf, reason: String },
    #[error("a lab needs between 1 and 16 hosts, not {0}")]
    BadHostCount(usize),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not come up within {secs} s; its logs:\n{log}")]
    StartTimeout {
        what: String,
        secs: u64,
        log: String,
    },
    #[error("{what} exited while starting; its logs:\n{log}")]
    StartFailed { what: String, log: String },
    #[error("lab state {} is unreadable ({detail}); stop its processes by hand (`ps -ef | grep {}`) and remove the directory", path.display(), path.display())]
    BadState { path: PathBuf, detail: String },
    #[error(
        "{what} still has {left} process(es) after SIGKILL; look at `ps -ef` and kill them by hand"
    )]
    StopFailed { what: String, left: usize },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str("  - ");
        out.push_str(&p.to_string());
        out.push('\n');
    }
    let packages = crate::preflight::packages_to_install(problems);
    if !packages.is_empty() {
        out.push_str(&format!(
            "install the missing packages with: apt-get install {}",
            packages.join(" ")
        ));
    } else if out.ends_with('\n') {
        out.pop();
    }
    out
}
