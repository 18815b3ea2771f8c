//! `herd fw apply` against a real sshd on loopback whose `uci` is herd's own
//! (`herd uci -c CONFDIR`): the router's files end up equal to `herd fw
//! render`'s, a dry run changes nothing, and a failure half-way (after
//! `uci batch` staged changes) leaves the files unchanged.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const HERD: &str = env!("CARGO_BIN_EXE_herd");
const FIREWALL: &str =
    include_str!("../../herd-firewall/tests/corpus/openwrt-defaults/firewall.fw4-default");
const NETWORK: &str = "config interface 'lan'\n\toption device 'br-lan'\n\toption proto 'static'\n\
\toption ipaddr '198.51.100.1'\n\toption netmask '255.255.255.0'\n\n\
config interface 'wan'\n\toption device 'wan'\n\toption proto 'dhcp'\n\n\
config switch\n\toption name 'switch0'\n\toption reset '1'\n\toption enable_vlan '1'\n\n\
config switch_vlan\n\toption device 'switch0'\n\toption vlan '1'\n\toption ports '1 2 3 4 5t'\n\n\
config switch_vlan\n\toption device 'switch0'\n\toption vlan '2'\n\toption ports '0 5t'\n";
const POLICY: &str = include_str!("../../herd-firewall/tests/seed/inventory.json");

/// A router: a config directory, herd's uci behind a wrapper, and an sshd.
struct Router {
    dir: tempfile::TempDir,
    port: u16,
    sshd: Child,
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

fn must(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Router {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn start() -> Router {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let d = dir.path();
        for sub in ["config", "uci-tmp", "bin"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        std::fs::write(d.join("config/network"), NETWORK).expect("network");
        std::fs::write(d.join("config/firewall"), FIREWALL).expect("firewall");
        std::fs::write(d.join("policy.json"), POLICY).expect("policy");
        for key in ["host_key", "client_key"] {
            must(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key))
                    .output()
                    .expect("ssh-keygen"),
                "ssh-keygen",
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
            .expect("authorized_keys");
        // OpenWrt's uci stages changes in /tmp/.uci; this router's uci
        // stages them in its own directory (HERD_UCI_SAVEDIR), so tests never
        // share staged changes, wherever the checkout and the binary live
        let wrapper = format!(
            "#!/bin/sh\n\
             run() {{ HERD_UCI_SAVEDIR='{d}/uci-tmp/.uci' '{HERD}' uci -c '{d}/config' \"$@\"; }}\n\
             if [ -e '{d}/fail-'\"$1\" ]; then run \"$@\" >/dev/null 2>&1; echo \"injected failure in uci $1\" >&2; exit 1; fi\n\
             run \"$@\"\n",
            d = d.display()
        );
        let uci = d.join("bin/uci");
        std::fs::write(&uci, wrapper).expect("wrapper");
        must(
            Command::new("chmod")
                .arg("755")
                .arg(&uci)
                .output()
                .expect("chmod"),
            "chmod",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                d = d.display()
            ),
        )
        .expect("sshd_config");
        std::fs::create_dir_all("/run/sshd").expect("sshd privilege separation dir");
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .spawn()
            .expect("sshd");
        let router = Router { dir, port, sshd };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        router
    }

    fn apply(&self, extra: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new(HERD)
            .args(["fw", "apply", "router1", "--host", "127.0.0.1"])
            .arg("--policy")
            .arg(d.join("policy.json"))
            .args(["--ssh-port", &self.port.to_string()])
            .arg("--ssh-key")
            .arg(d.join("client_key"))
            .args([
                "--ssh-option",
                "StrictHostKeyChecking=no",
                "--ssh-option",
                "UserKnownHostsFile=/dev/null",
                "--ssh-option",
                "LogLevel=ERROR",
            ])
            .arg("--remote-uci")
            .arg(d.join("bin/uci"))
            .arg("--reload")
            .arg(format!("touch {}/reloaded", d.display()))
            .args(extra)
            .output()
            .expect("herd fw apply")
    }

    /// `herd fw render --current` of the original files, as complete files.
    fn expected(&self) -> (String, String) {
        let d = self.dir.path();
        let orig = d.join("orig");
        std::fs::create_dir_all(&orig).expect("mkdir");
        std::fs::write(orig.join("network"), NETWORK).expect("network");
        std::fs::write(orig.join("firewall"), FIREWALL).expect("firewall");
        must(
            Command::new(HERD)
                .args(["fw", "render", "router1", "--policy"])
                .arg(d.join("policy.json"))
                .arg("--current")
                .arg(&orig)
                .arg("--output")
                .arg(d.join("expected"))
                .output()
                .expect("herd fw render"),
            "herd fw render",
        );
        (
            read(&d.join("expected/network")),
            read(&d.join("expected/firewall")),
        )
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn apply_over_ssh_leaves_the_files_render_produces() {
    let r = Router::start();
    let (network, firewall) = r.expected();
    must(r.apply(&[]), "herd fw apply");
    assert_eq!(read(&r.path("config/network")), network);
    assert_eq!(read(&r.path("config/firewall")), firewall);
    assert!(r.path("reloaded").exists(), "reload ran after the commit");
    // applying again finds nothing to do
    let again = must(r.apply(&[]), "second apply");
    assert!(String::from_utf8_lossy(&again.stderr).contains("up to date"));
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let r = Router::start();
    let out = must(r.apply(&["--dry-run"]), "dry run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("add firewall 'rule'"), "{stdout}");
    assert!(
        stdout.contains("set network.limited_lan='interface'"),
        "{stdout}"
    );
    assert_eq!(read(&r.path("config/network")), NETWORK);
    assert_eq!(read(&r.path("config/firewall")), FIREWALL);
    assert!(!r.path("reloaded").exists());
}

#[test]
fn failure_half_way_reverts_and_leaves_the_files_unchanged() {
    let r = Router::start();
    // uci batch stages every change, then fails
    std::fs::write(r.path("fail-batch"), "").expect("marker");
    let out = r.apply(&[]);
    assert!(!out.status.success(), "apply must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reverted"));
    assert_eq!(read(&r.path("config/network")), NETWORK);
    assert_eq!(read(&r.path("config/firewall")), FIREWALL);
    assert!(!r.path("reloaded").exists());
    // nothing stays staged: a later commit would not sneak the changes in
    let changes = must(
        Command::new(r.path("bin/uci"))
            .arg("changes")
            .output()
            .expect("uci changes"),
        "uci changes",
    );
    assert_eq!(String::from_utf8_lossy(&changes.stdout), "");
}
