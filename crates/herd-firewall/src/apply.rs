//! `herd fw apply`: the effects. Reads the router's current configuration
//! over SSH, and runs the plan as `uci batch`, `uci commit` and a reload.
//!
//! ```text
//! Fetch -> Stage (uci batch) -> Commit (uci commit) -> Reload
//!            | failure            | failure
//!            v                    v
//!          Revert (uci revert network firewall)
//! ```
//!
//! Nothing is written before `uci commit`: staged changes live in uci's save
//! directory, and `uci revert` drops them, so a failure before the commit
//! leaves `/etc/config` as it was.

use herd_uci::{parse_str, Package};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How to reach the router.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub user: String,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    /// Extra `-o` options (`StrictHostKeyChecking=no`...).
    pub options: Vec<String>,
    /// The `uci` command on the router.
    pub uci: String,
    /// What reloads network and firewall after the commit.
    pub reload: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run ssh: {0}; is openssh-client installed?")]
    Spawn(std::io::Error),
    #[error("`{command}` on {host} failed (exit {code}): {stderr}")]
    Remote {
        host: String,
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("the router's {package} config does not parse: {reason}; fix it on the router first")]
    Parse { package: String, reason: String },
    #[error(
        "{step} failed, so the staged changes were reverted and /etc/config is unchanged: {source}"
    )]
    Reverted {
        step: &'static str,
        #[source]
        source: Box<ApplyError>,
    },
}

impl SshTarget {
    fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-o").arg("BatchMode=yes");
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        if let Some(p) = self.port {
            c.arg("-p").arg(p.to_string());
        }
        if let Some(i) = &self.identity {
            c.arg("-i").arg(i);
        }
        c.arg(format!("{}@{}", self.user, self.host)).arg(remote);
        c
    }

    /// Runs `remote` with `input` on stdin; its stdout.
    pub fn run(&self, remote: &str, input: &str) -> Result<String, ApplyError> {
        let mut child = self
            .command(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(ApplyError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            // a remote command that exits early closes the pipe: its status tells
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().map_err(ApplyError::Spawn)?;
        if !out.status.success() {
            return Err(ApplyError::Remote {
                host: self.host.clone(),
                command: remote.to_string(),
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `uci export PACKAGE` on the router, parsed.
    pub fn fetch(&self, package: &str) -> Result<Package, ApplyError> {
        let text = self.run(&format!("{} export {package}", self.uci), "")?;
        parse_str(&text, package).map_err(|e| ApplyError::Parse {
            package: package.to_string(),
            reason: e.to_string(),
        })
    }
}

/// What `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NothingToDo,
    Applied,
}

/// Stages `script` with `uci batch`, commits both packages and reloads;
/// reverts the staged changes if staging or committing fails.
pub fn apply_script(target: &SshTarget, script: &str) -> Result<Outcome, ApplyError> {
    if script.trim().is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    let uci = &target.uci;
    let revert = |step: &'static str, e: ApplyError| {
        let _ = target.run(&format!("{uci} revert network; {uci} revert firewall"), "");
        ApplyError::Reverted {
            step,
            source: Box::new(e),
        }
    };
    target
        .run(&format!("{uci} batch"), script)
        .map_err(|e| revert("uci batch", e))?;
    target
        .run(
            &format!("{uci} commit network && {uci} commit firewall"),
            "",
        )
        .map_err(|e| revert("uci commit", e))?;
    target.run(&target.reload, "")?;
    Ok(Outcome::Applied)
}
