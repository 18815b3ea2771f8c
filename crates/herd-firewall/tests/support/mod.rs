//! Reading firewall4's own test case files (`tests/corpus/firewall4`).

use herd_firewall::config::package_from_json;
use herd_firewall::fw4::{self, parse_helpers, Environment, Network};
use std::path::{Path, PathBuf};

pub struct Case {
    pub files: Vec<(String, String)>,
    pub expect_stdout: Option<String>,
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/firewall4")
}

pub fn read_case(name: &str) -> Case {
    let path = corpus_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut files = Vec::new();
    let mut expect_stdout = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let header = line.trim();
        let Some(inner) = header
            .strip_prefix("-- ")
            .and_then(|h| h.strip_suffix(" --"))
        else {
            continue;
        };
        if inner == "End" {
            continue;
        }
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "-- End --" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if let Some(f) = inner.strip_prefix("File ") {
            files.push((f.to_string(), body));
        } else if inner == "Expect stdout" {
            expect_stdout = Some(body);
        }
    }
    Case {
        files,
        expect_stdout,
    }
}

pub fn all_cases() -> Vec<String> {
    let mut out = Vec::new();
    let dir = corpus_dir();
    for group in std::fs::read_dir(&dir).expect("corpus dir").flatten() {
        if !group.path().is_dir() {
            continue;
        }
        for case in std::fs::read_dir(group.path())
            .expect("group dir")
            .flatten()
        {
            let g = group.file_name().to_string_lossy().to_string();
            let c = case.file_name().to_string_lossy().to_string();
            out.push(format!("{g}/{c}"));
        }
    }
    out.sort();
    out
}

/// The interfaces of firewall4's mocked `network.interface dump`, as the
/// corpus's expected outputs show them (01_ruleset's defines).
pub fn mocked_networks() -> Environment {
    let mut env = Environment::default();
    let net = |dev: &str, addrs: &[(&str, u8)]| Network {
        device: Some(dev.to_string()),
        addrs: addrs
            .iter()
            .map(|(a, b)| (a.parse().expect("mock address"), *b))
            .collect(),
    };
    env.networks
        .insert("loopback".into(), net("lo", &[("127.0.0.1", 8)]));
    env.networks.insert(
        "lan".into(),
        net(
            "br-lan",
            &[
                ("10.0.0.1", 24),
                ("192.168.26.1", 24),
                ("2001:db8:1000:1::1", 60),
                ("fd63:e2f:f706:1::1", 60),
            ],
        ),
    );
    env.networks.insert(
        "guest".into(),
        net(
            "br-guest",
            &[
                ("10.1.0.1", 24),
                ("192.168.27.1", 24),
                ("2001:db8:1000:2::1", 60),
                ("fd63:e2f:f706:2::1", 60),
            ],
        ),
    );
    env.networks.insert("noaddr".into(), net("wwan0", &[]));
    env.networks
        .insert("wan".into(), net("pppoe-wan", &[("10.11.12.194", 24)]));
    env.networks.insert(
        "wan6".into(),
        net("pppoe-wan", &[("2001:db8:54:321::2", 64)]),
    );
    env
}

/// herd's rendering of a case, or why it cannot be rendered.
pub fn render_case(case: &Case) -> Result<String, String> {
    let fw = case
        .files
        .iter()
        .find(|(n, _)| n == "uci/firewall.json")
        .ok_or("case uses the default mocked firewall config, which the corpus does not include")?;
    let package = package_from_json(&fw.1).map_err(|e| e.to_string())?;
    let mut env = mocked_networks();
    // without uci/helpers.json the case uses firewall4's default mocked
    // helpers file, which the corpus does not include
    if let Some((_, helpers)) = case.files.iter().find(|(n, _)| n == "uci/helpers.json") {
        let helpers = package_from_json(helpers).map_err(|e| e.to_string())?;
        env.helpers = parse_helpers(&helpers).0;
    }
    // the mocked fs serves `open(PATH)` from `fs/open~PATH.txt` with '/' and
    // '.' in PATH as '_'
    for set in package.of_kind("ipset") {
        let Some(path) = set.single("loadfile") else {
            continue;
        };
        let mock = format!("fs/open~{}.txt", path.replace(['/', '.'], "_"));
        if let Some((_, body)) = case.files.iter().find(|(n, _)| *n == mock) {
            env.files.insert(path.to_string(), body.clone());
        }
    }
    for (name, body) in &case.files {
        let Some(dev) = name
            .strip_prefix("fs/open~_sys_class_net_")
            .and_then(|n| n.strip_suffix("_flags.txt"))
        else {
            continue;
        };
        let flags = u32::from_str_radix(body.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        if flags & 0x8 != 0 {
            env.loopback_devices.insert(dev.to_string());
        }
    }
    let (_, ruleset) = fw4::render(&package, &env);
    Ok(ruleset.render())
}

/// Ok(()) when herd's output equals fw4's expected stdout.
pub fn check(name: &str) -> Result<(), String> {
    let case = read_case(name);
    let expected = case.expect_stdout.clone().ok_or("no expected stdout")?;
    let got = render_case(&case)?;
    if got == expected {
        return Ok(());
    }
    let mut msg = String::from("first differing lines:\n");
    let (g, e): (Vec<&str>, Vec<&str>) = (got.lines().collect(), expected.lines().collect());
    let mut shown = 0;
    for i in 0..g.len().max(e.len()) {
        let (gl, el) = (
            g.get(i).copied().unwrap_or("<eof>"),
            e.get(i).copied().unwrap_or("<eof>"),
        );
        if gl != el {
            msg.push_str(&format!("line {}:\n  herd: {gl}\n  fw4:  {el}\n", i + 1));
            shown += 1;
            if shown == 6 {
                break;
            }
        }
    }
    Err(msg)
}
