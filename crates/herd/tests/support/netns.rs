//! Network namespaces for the real-packet firewall tests (`fw_packets`,
//! `fw_redirect`): a [`Lab`] of namespaces named `PREFIX<pid>ROLE`, veth
//! links between them, addresses and routes, and a router namespace that
//! loads a ruleset with `nft -f`. The namespaces and the processes started
//! in them are removed on drop, also when a test fails. Also the CLI side
//! those tests share: the router's configuration directory and
//! `herd fw check`'s verdict.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Namespaces and processes, removed on drop.
pub struct Lab {
    prefix: String,
    roles: Vec<&'static str>,
    /// Processes started in the namespaces (servers), killed on drop.
    pub children: Vec<Child>,
}

impl Lab {
    /// One namespace per role, each with its loopback up. `prefix` keeps
    /// the names of different test binaries apart (the process id those of
    /// concurrent runs).
    pub fn new(prefix: &str, roles: &[&'static str]) -> Lab {
        let lab = Lab {
            prefix: format!("{prefix}{}", std::process::id()),
            roles: roles.to_vec(),
            children: Vec::new(),
        };
        for role in roles {
            run(&["ip", "netns", "add", &lab.ns(role)]);
            run(&["ip", "-n", &lab.ns(role), "link", "set", "lo", "up"]);
        }
        lab
    }

    /// The namespace's name.
    pub fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// `ip netns exec NS ARGS...`, to be run or spawned.
    pub fn exec(&self, role: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(role)]).args(args);
        c
    }

    /// `ip -n NS ARGS...`, which must succeed.
    pub fn ip(&self, role: &str, args: &[&str]) -> Output {
        let ns = self.ns(role);
        let mut full = vec!["ip", "-n", ns.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    /// A veth pair between two namespaces, its ends named `a.1` and `b.1`,
    /// both up. `tag` makes the temporary names unique within the lab.
    pub fn link(&self, a: (&str, &str), b: (&str, &str), tag: &str) {
        let (ta, tb) = (
            format!("{}{tag}a", self.prefix),
            format!("{}{tag}b", self.prefix),
        );
        run(&[
            "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
        ]);
        for (tmp, (role, name)) in [(&ta, a), (&tb, b)] {
            let ns = self.ns(role);
            run(&["ip", "link", "set", tmp, "netns", &ns]);
            self.ip(role, &["link", "set", tmp, "name", name]);
            self.ip(role, &["link", "set", name, "up"]);
        }
    }

    pub fn addr(&self, role: &str, cidr: &str, dev: &str) {
        self.ip(role, &["addr", "add", cidr, "dev", dev]);
    }

    pub fn route(&self, role: &str, to: &str, via: &str) {
        self.ip(role, &["route", "add", to, "via", via]);
    }

    /// Starts a server in the namespace (killed on drop) and gives it a
    /// moment to listen.
    pub fn serve(&mut self, role: &str, args: &[&str], stdout: Stdio) {
        let server = self
            .exec(role, args)
            .stdout(stdout)
            .spawn()
            .expect("server");
        self.children.push(server);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Makes the namespace a router: IPv4 forwarding on, `ruleset` loaded
    /// with `nft -f` (which must accept it).
    pub fn load_router(&self, role: &str, ruleset: &str) {
        let ns = self.ns(role);
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("fw4.nft");
        std::fs::write(&file, ruleset).expect("write ruleset");
        let out = self
            .exec(role, &["nft", "-f", file.to_str().expect("utf8 path")])
            .output()
            .expect("nft");
        assert!(
            out.status.success(),
            "nft rejected herd's ruleset: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for role in &self.roles {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .output();
        }
    }
}

/// Runs a command that must succeed.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes a router's UCI configuration directory `dir/sub` (`network` and
/// `firewall`), as `herd fw ... --config sub` reads it.
pub fn write_config(dir: &Path, sub: &str, network: &str, firewall: &str) {
    let config = dir.join(sub);
    std::fs::create_dir_all(&config).expect("mkdir");
    std::fs::write(config.join("network"), network).expect("network");
    std::fs::write(config.join("firewall"), firewall).expect("firewall");
}

/// `herd ARGS` run in `dir` (where the configuration directories are).
pub fn herd(args: &[&str], dir: &Path) -> Output {
    super::herd_command(args)
        .current_dir(dir)
        .output()
        .expect("herd")
}

/// `herd fw nft --config CONFIG` in `dir`, which must succeed: the ruleset.
pub fn nft_ruleset(dir: &Path, config: &str) -> String {
    let nft = herd(&["fw", "nft", "--config", config], dir);
    assert!(
        nft.status.success(),
        "herd fw nft: {}",
        String::from_utf8_lossy(&nft.stderr)
    );
    String::from_utf8(nft.stdout).expect("utf8 ruleset")
}

/// `herd fw check`'s verdict: accept (exit 0) or reject/drop (exit 1); any
/// other exit fails the test.
pub fn check_accepted(out: &Output) -> bool {
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "herd fw check failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
