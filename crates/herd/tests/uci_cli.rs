//! `herd uci` end to end, through the real binary: the OpenWrt-compatible
//! face behind a wrapper script named `uci` (as on a test router), and
//! herd's own diff, batch, fmt and edit commands on files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HERD: &str = env!("CARGO_BIN_EXE_herd");

struct Router {
    tmp: tempfile::TempDir,
}

impl Router {
    /// A config directory, a save directory and a `uci` wrapper script.
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        for d in ["etc/config", "tmp/.uci", "bin"] {
            std::fs::create_dir_all(tmp.path().join(d)).expect("mkdir");
        }
        let wrapper = tmp.path().join("bin/uci");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexport HERD_UCI_CONFDIR={0}/etc/config HERD_UCI_SAVEDIR={0}/tmp/.uci\nexec {HERD} uci \"$@\"\n",
                tmp.path().display()
            ),
        )
        .expect("write wrapper");
        let mut perm = std::fs::metadata(&wrapper).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&wrapper, perm).expect("chmod");
        Router { tmp }
    }

    fn config(&self, name: &str) -> PathBuf {
        self.tmp.path().join("etc/config").join(name)
    }

    /// `sh -c SCRIPT` with the wrapper first on PATH.
    fn sh(&self, script: &str, stdin: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.tmp.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        run(
            Command::new("sh").arg("-c").arg(script).env("PATH", path),
            stdin,
        )
    }
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn herd(args: &[&str], stdin: &str) -> Output {
    run(Command::new(HERD).args(args), stdin)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FIREWALL: &str = "# defaults
config defaults
\toption input REJECT

config zone
\toption name lan
\tlist network lan
\toption input ACCEPT

config rule
\toption name Allow-Ping
\toption target ACCEPT
";

#[test]
fn uci_batch_stages_changes_until_commit() {
    let r = Router::new();
    std::fs::write(r.config("firewall"), FIREWALL).expect("write config");
    let o = r.sh(
        "uci batch && uci changes firewall",
        "add firewall zone\nset firewall.@zone[-1].name='limited'\nadd_list firewall.@zone[-1].network='limited_lan'\n",
    );
    assert!(o.status.success(), "{o:?}");
    // `add` prints the new section's id, as libuci's uci does in a batch too.
    assert_eq!(
        text(&o),
        "cfg04dc81\nfirewall.cfg04dc81='zone'\nfirewall.cfg04dc81.name='limited'\nfirewall.cfg04dc81.network+='limited_lan'\n"
    );
    // Not written before commit.
    assert_eq!(
        std::fs::read_to_string(r.config("firewall")).expect("read"),
        FIREWALL
    );
    let o = r.sh(
        "uci commit firewall && uci changes firewall && uci show firewall.@zone[1]",
        "",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        text(&o),
        "firewall.cfg04dc81=zone\nfirewall.cfg04dc81.name='limited'\nfirewall.cfg04dc81.network='limited_lan'\n"
    );
    assert_eq!(
        std::fs::read_to_string(r.config("firewall")).expect("read"),
        "\nconfig defaults\n\toption input 'REJECT'\n\nconfig zone\n\toption name 'lan'\n\tlist network 'lan'\n\toption input 'ACCEPT'\n\nconfig rule\n\toption name 'Allow-Ping'\n\toption target 'ACCEPT'\n\nconfig zone\n\toption name 'limited'\n\tlist network 'limited_lan'\n\n"
    );
}

#[test]
fn uci_errors_exit_like_openwrt() {
    let r = Router::new();
    std::fs::write(r.config("firewall"), FIREWALL).expect("write config");
    let o = r.sh("uci -q get firewall.nothere.name", "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o), "");
    let o = r.sh("uci frobnicate", "");
    assert_eq!(o.status.code(), Some(255));
    let o = r.sh("uci get firewall.@rule[-1].target", "");
    assert_eq!(text(&o), "ACCEPT\n");
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

#[test]
fn generated_batch_script_applied_by_uci_gives_the_new_config() {
    let r = Router::new();
    std::fs::write(r.config("firewall"), FIREWALL).expect("write config");
    let new = FIREWALL.replace("\toption input ACCEPT\n", "\toption input REJECT\n\tlist network guest\n")
        + "\nconfig rule\n\toption name dns\n\toption dest_ip '213.73.91.35'\n\toption target ACCEPT\n";
    let new_path = write(r.tmp.path(), "firewall.new", &new);
    let old_path = r.config("firewall").display().to_string();
    let script = herd(&["uci", "batch", &old_path, &new_path], "");
    assert!(script.status.success(), "{script:?}");
    let o = r.sh("uci batch && uci commit firewall", &text(&script));
    assert!(o.status.success(), "{o:?}");
    let d = herd(&["uci", "diff", &old_path, &new_path], "");
    assert!(d.status.success());
    assert_eq!(text(&d), "", "left over after applying:\n{}", text(&script));
}

#[test]
fn diff_json_lists_changed_sections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "firewall", FIREWALL);
    let new = write(
        dir.path(),
        "firewall.new",
        &FIREWALL.replace("input ACCEPT", "input 'accept'\n\toption masq yes"),
    );
    let o = herd(&["uci", "diff", &old, &new, "--json"], "");
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&text(&o)).expect("json");
    assert_eq!(v["package"], "firewall");
    let sections = v["sections"].as_array().expect("sections");
    assert_eq!(sections.len(), 1, "{v}");
    assert_eq!(sections[0]["change"], "changed");
    assert_eq!(sections[0]["section"]["label"], "name 'lan'");
    assert_eq!(sections[0]["options"][0]["name"], "masq");
}

#[test]
fn fmt_check_and_edit_keep_or_fix_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), "firewall", FIREWALL);
    assert_eq!(
        herd(&["uci", "fmt", &path, "--check"], "").status.code(),
        Some(1)
    );
    // edit keeps the comment and the unquoted style of untouched lines.
    let o = herd(
        &["uci", "edit", &path],
        "set firewall.@rule[0].target=REJECT\n",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        FIREWALL.replace("\toption target ACCEPT\n", "\toption target 'REJECT'\n")
    );
    assert!(herd(&["uci", "fmt", &path], "").status.success());
    assert!(herd(&["uci", "fmt", &path, "--check"], "").status.success());
    assert!(std::fs::read_to_string(&path)
        .expect("read")
        .starts_with("\nconfig defaults\n"));
}
