//! `herd lab up|status|down` from the command line, as root and as nobody.

use std::path::Path;
use std::process::{Command, Output};

fn herd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herd"))
        .args(args)
        .env_remove("HERD_LAB_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            !zombie && String::from_utf8_lossy(&cmd).contains(&needle)
        })
        .collect()
}

/// Stops the lab even when an assertion fails.
struct Down<'a>(&'a Path);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("lab.json").exists() {
            let _ = herd(&["lab", "down", "--dir", self.0.to_str().unwrap()]);
        }
    }
}

#[test]
fn lab_up_status_down_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let d = dir.to_str().unwrap();
    let _guard = Down(&dir);

    let up = herd(&["lab", "up", "--hosts", "2", "--ssh", "--dir", d, "--json"]);
    assert!(up.status.success(), "{}", text(&up));
    let status: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    let hosts = status["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(hosts.iter().all(|h| h["running"] == true));
    assert!(hosts[0]["ssh_uri"]
        .as_str()
        .unwrap()
        .starts_with("qemu+ssh://root@127.0.0.1:"));
    assert_eq!(status["ssh_running"], true);

    let again = herd(&["lab", "up", "--dir", d]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let st = herd(&["lab", "status", "--dir", d]);
    assert!(st.status.success(), "{}", text(&st));
    assert!(String::from_utf8_lossy(&st.stdout).contains("hv2"));
    assert!(!processes_mentioning(&dir).is_empty());

    let down = herd(&["lab", "down", "--dir", d]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(processes_mentioning(&dir).is_empty());
    assert!(!dir.exists());
    let st = herd(&["lab", "status", "--dir", d]);
    assert_eq!(st.status.code(), Some(4), "{}", text(&st));
}

#[test]
fn lab_up_as_nobody_says_root_is_needed() {
    // A copy of the binary nobody may run, in a directory nobody may enter.
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("herd");
    std::fs::copy(env!("CARGO_BIN_EXE_herd"), &bin).unwrap();
    let dir = tmp.path().join("lab");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["lab", "up", "--dir", dir.to_str().unwrap()])
        .env_remove("HERD_LAB_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not running as root (uid 65534)"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing created");
}
