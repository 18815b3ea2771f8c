//! libuci's own test suite (`tests/shunit2/tests.d` of openwrt/uci), run
//! against herd's `uci` drop-in with the reference files from
//! `shared/corpus/uci-libuci-tests`. Each test replays one shunit2 test:
//! the same commands, the same inputs, compared byte for byte with the
//! reference (`assertSameFile`) or as the shell compares `$(...)` output
//! (`assertEquals`, trailing newlines stripped).

use herd_uci::cli::{main_with, Cli};
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/uci-libuci-tests"
);

fn reference(name: &str) -> PathBuf {
    corpus_dir().join("shunit2/references").join(name)
}

fn corpus_dir() -> PathBuf {
    let p = PathBuf::from(CORPUS);
    if p.exists() {
        p
    } else {
        PathBuf::from("/work/shared/corpus/uci-libuci-tests")
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One shunit2 fixture: CONFIG_DIR, CHANGES_DIR and TMP_DIR in a temp dir.
struct Suite {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    changes: PathBuf,
    tmp: PathBuf,
}

struct Run {
    code: u8,
    out: String,
}

impl Suite {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config = tmp.path().join("config");
        let changes = tmp.path().join("changes");
        let t = tmp.path().join("tmp");
        for d in [&config, &changes, &t] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        Suite {
            _tmp: tmp,
            config,
            changes,
            tmp: t,
        }
    }

    /// `${UCI} args...` = `uci -c CONFIG_DIR -p CHANGES_DIR args...` where
    /// CHANGES_DIR is also the default save directory.
    fn uci(&self, args: &[&str], stdin: &str) -> Run {
        let mut cli = Cli::default();
        cli.store.savedir = self.changes.clone();
        let mut argv: Vec<String> = vec![
            "-c".into(),
            self.config.display().to_string(),
            "-p".into(),
            self.changes.display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = main_with(cli, &argv, &mut stdin.as_bytes(), &mut out, &mut err);
        Run {
            code,
            out: String::from_utf8(out).expect("utf-8 output"),
        }
    }

    /// A fresh suite with reference `reference_name` copied to `config`.
    fn with(reference_name: &str, config: &str) -> Self {
        let t = Suite::new();
        t.cp(reference_name, config);
        t
    }

    /// A fresh suite with an empty `config`.
    fn with_empty(config: &str) -> Self {
        let t = Suite::new();
        t.touch(config);
        t
    }

    /// `${UCI} args...` with nothing on stdin.
    fn run(&self, args: &[&str]) -> Run {
        self.uci(args, "")
    }

    fn cp(&self, reference_name: &str, config: &str) {
        std::fs::write(self.config.join(config), read(&reference(reference_name))).expect("cp");
    }

    fn touch(&self, config: &str) {
        std::fs::write(self.config.join(config), b"").expect("touch");
    }

    /// shunit2's assertFailWithNoReturn: fails, prints nothing on stdout.
    fn assert_fail_with_no_return(&self, args: &[&str]) {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        let r = self.uci(&all, "");
        assert_ne!(r.code, 0, "{args:?} should fail");
        assert_eq!(r.out, "", "{args:?} should print nothing");
    }
}

/// `assertSameFile REF TEST`.
fn assert_same_file(reference_name: &str, actual: &Path) {
    let want = read(&reference(reference_name));
    let got = read(actual);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{} differs from {reference_name}",
        actual.display()
    );
}

/// `$(...)`: the shell strips trailing newlines.
fn shell(s: &str) -> &str {
    s.trim_end_matches('\n')
}

fn reference_text(name: &str) -> String {
    String::from_utf8(read(&reference(name))).expect("utf-8")
}

/// `assertEquals "$(cat REF)" "$(${UCI} ...)"`.
fn assert_same_output(r: &Run, reference_name: &str) {
    assert_eq!(
        shell(&r.out),
        shell(&reference_text(reference_name)),
        "output differs from {reference_name}"
    );
}

/// With reference `data` as config `test`, `uci -q CMD REF` fails and
/// prints nothing, for every one of `refs`.
fn assert_all_fail_with_no_return(data: &str, cmd: &str, refs: &[&str]) {
    let t = Suite::with(data, "test");
    for r in refs {
        t.assert_fail_with_no_return(&[cmd, r]);
    }
}

/// With reference `data` as config `test`, `uci get REF` prints `want`.
fn assert_get(data: &str, r: &str, want: &str) {
    let t = Suite::with(data, "test");
    assert_eq!(shell(&t.run(&["get", r]).out), want, "get {r}");
}

/// With reference `data` as config `set`, `uci set ASSIGNMENT` stages
/// exactly the delta of reference `result`.
fn assert_set_stages(data: &str, assignment: &str, result: &str) {
    let t = Suite::with(data, "set");
    t.run(&["set", assignment]);
    assert_same_file(result, &t.changes.join("set"));
}

// ---- 000_import -----------------------------------------------------------

#[test]
fn import_writes_the_package_named_in_the_stream() {
    let t = Suite::new();
    let data = reference_text("import.data");
    assert_eq!(t.uci(&["import"], &data).code, 0);
    assert_same_file("import.result", &t.config.join("import-test"));
}

// ---- 010_export -----------------------------------------------------------

#[test]
fn export_matches_reference_and_fails_on_missing_package() {
    let t = Suite::with("export.data", "export");
    assert_ne!(t.run(&["-q", "export", "nilpackage"]).code, 0);
    assert_eq!(t.run(&["-q", "export", "export"]).code, 0);
    let r = t.run(&["export"]);
    assert_eq!(r.code, 0);
    let out = t.tmp.join("export.result");
    std::fs::write(&out, r.out).expect("write");
    assert_same_file("export.result", &out);
}

// ---- 020_get --------------------------------------------------------------

/// The malformed references of libuci's `get`, `show` and `set` parsing
/// tests (without a value).
const MALFORMED: [&str; 6] = [
    "test.",
    "test.section.",
    "test.section.opt.",
    "test.section.opt.val.",
    "test.section.opt.val.qsdf.qsd",
    "test.section.opt.valqsqsd",
];

/// The malformed assignments of libuci's `set` and `add_list` tests.
const MALFORMED_ASSIGNMENTS: [&str; 4] = [
    "test.=val",
    "test.section.=val",
    "test.section.opt.=val",
    "test.section.opt.zflk=val",
];

#[test]
fn get_rejects_malformed_references() {
    assert_all_fail_with_no_return("get_parsing.data", "get", &MALFORMED);
}

#[test]
fn get_rejects_malformed_section_indexes() {
    assert_all_fail_with_no_return(
        "get_parsing.data",
        "get",
        &[
            "test.@",
            "test.@zer.",
            "test.@.",
            "test.@zer[1]",
            "test.@.opt",
            "test.@[28]",
            "test.@[1].",
            "test.@[1].val.",
        ],
    );
}

#[test]
fn get_option_prints_the_value() {
    assert_get("get.data", "test.section.opt", "val");
}

#[test]
fn get_multiline_option_keeps_quotes_and_newlines() {
    assert_get(
        "get_multiline.data",
        "test.section.opt",
        "\"Hello, World.\n'",
    );
}

#[test]
fn get_section_prints_its_type() {
    assert_get("get.data", "test.section", "type");
}

// ---- 030_set --------------------------------------------------------------

/// A value with a quote, a backslash and a newline, as libuci's set tests
/// pass it.
const MULTILINE_ASSIGNMENT: &str = "set.section.opt=Hello,\\'\nWorld\"";

#[test]
fn set_rejects_malformed_references() {
    assert_all_fail_with_no_return("set_parsing.data", "set", &MALFORMED_ASSIGNMENTS);
}

#[test]
fn set_named_section_stages_one_delta_line() {
    let t = Suite::with_empty("set");
    assert_eq!(t.run(&["set", "set.section=named"]).code, 0);
    assert_same_file("set_named_section.result", &t.changes.join("set"));
}

#[test]
fn set_option_in_missing_section_fails() {
    let t = Suite::with_empty("set");
    t.assert_fail_with_no_return(&["set", "test.nonexistentsection.opt=val"]);
    t.assert_fail_with_no_return(&["set", "set.nonexistentsection.opt=val"]);
}

#[test]
fn set_nonexisting_option_stages_it() {
    assert_set_stages(
        "set_nonexisting_option.data",
        "set.section.opt=val",
        "set_nonexisting_option.result",
    );
}

#[test]
fn set_nonexisting_option_multiline_is_quoted_in_the_delta() {
    assert_set_stages(
        "set_nonexisting_option.data",
        MULTILINE_ASSIGNMENT,
        "set_nonexisting_option_multiline.result",
    );
}

#[test]
fn set_existing_option_stages_it() {
    assert_set_stages(
        "set_existing_option.data",
        "set.section.opt=val",
        "set_existing_option.result",
    );
}

#[test]
fn set_existing_option_multiline_is_quoted_in_the_delta() {
    assert_set_stages(
        "set_existing_option.data",
        MULTILINE_ASSIGNMENT,
        "set_existing_option_multiline.result",
    );
}

// ---- 050_show -------------------------------------------------------------

#[test]
fn show_rejects_malformed_and_missing_references() {
    let missing = [
        "test.nilsection",
        "test.nilsection.nilopt",
        "test.section.nilopt",
    ];
    assert_all_fail_with_no_return(
        "show_parsing.data",
        "show",
        &[&MALFORMED[..], &missing].concat(),
    );
}

fn show_multiline(target: &str, reference_name: &str) {
    let t = Suite::with("show_parsing_multiline.data", "sockd");
    assert_same_output(&t.run(&["-q", "show", target]), reference_name);
}

#[test]
fn show_multiline_package() {
    show_multiline("sockd", "show_parsing_multiline_package.result");
}

#[test]
fn show_multiline_section() {
    show_multiline("sockd.instance0", "show_parsing_multiline_section.result");
}

#[test]
fn show_multiline_option() {
    show_multiline(
        "sockd.instance0.extra_config",
        "show_parsing_multiline_option.result",
    );
}

// ---- 060_batch ------------------------------------------------------------

#[test]
fn batch_set_then_commit() {
    let t = Suite::with_empty("batch_set");
    let script = "set batch_set.SEC0='section'
set batch_set.SEC0.option0='value0'
set batch_set.SEC0.option1='\"Hello,
'\"  World\\\"\"
set batch_set.SEC1='section'
set batch_set.SEC1.option0=\"value1\"

";
    t.uci(&["batch"], script);
    t.run(&["commit"]);
    assert_same_file("batch_set.result", &t.config.join("batch_set"));
}

#[test]
fn batch_ignores_comments_and_blank_lines() {
    let t = Suite::with_empty("batch_comments");
    let script = "# first line comment
set batch_comments.SEC0='section'
set batch_comments.SEC0.option0='value0'

# two consecutive blank lines
# two consecutive blank lines


set batch_comments.SEC0.option1='\"Hello,
'\"  World\\\"\"
set batch_comments.SEC1='section' # comment at end of line
set batch_comments.SEC1.option0=\"value1\"

 \t # comment line starts with spaces.

commit
# last line comment
";
    t.uci(&["batch"], script);
    assert_same_file("batch_comments.result", &t.config.join("batch_comments"));
}

// ---- 070_revert -----------------------------------------------------------

/// After libuci's revert setup (a section and two options staged),
/// `uci revert TARGET` leaves exactly the changes of reference `result`.
fn assert_revert_leaves(target: &str, result: &str) {
    let t = Suite::with_empty("revert");
    t.run(&["set", "revert.SEC0=section"]);
    t.run(&["set", "revert.SEC0.option0=value0"]);
    t.run(&["set", "revert.SEC0.option1=\"Hello,\n  World\""]);
    t.run(&["revert", target]);
    assert_same_file(result, &t.changes.join("revert"));
}

#[test]
fn revert_section_drops_all_its_changes() {
    assert_revert_leaves("revert.SEC0", "revert_section.result");
}

#[test]
fn revert_option_drops_only_that_option() {
    assert_revert_leaves("revert.SEC0.option0", "revert_option.result");
}

#[test]
fn revert_multiline_option() {
    assert_revert_leaves("revert.SEC0.option1", "revert_option_multiline.result");
}

// ---- 080_list -------------------------------------------------------------

/// The list item with a quote, a comma and a newline of libuci's list tests.
const MULTILINE_ITEM: &str = "list_test_config.SEC0.list0=\"Hello\n, world\"";

fn list_prepare() -> Suite {
    let t = Suite::with_empty("list_test_config");
    t.run(&["set", "list_test_config.SEC0=section"]);
    t.run(&["add_list", "list_test_config.SEC0.list0=value0"]);
    t.run(&["add_list", MULTILINE_ITEM]);
    t
}

/// After the list setup is committed, `uci del_list ITEM` and a commit
/// leave exactly the config of reference `result`.
fn assert_del_list_leaves(item: &str, result: &str) {
    let t = list_prepare();
    t.run(&["commit"]);
    t.run(&["del_list", item]);
    t.run(&["commit"]);
    assert_same_file(result, &t.config.join("list_test_config"));
}

#[test]
fn add_list_rejects_malformed_references() {
    assert_all_fail_with_no_return("set_parsing.data", "add_list", &MALFORMED_ASSIGNMENTS);
}

#[test]
fn add_list_commit() {
    let t = list_prepare();
    t.run(&["commit"]);
    assert_same_file("add_list_config.result", &t.config.join("list_test_config"));
}

#[test]
fn add_list_get_quotes_only_items_with_blanks() {
    let t = list_prepare();
    let r = t.run(&["get", "list_test_config.SEC0.list0"]);
    assert_eq!(shell(&r.out), "value0 '\"Hello\n, world\"'");
}

#[test]
fn add_list_show() {
    let t = list_prepare();
    assert_same_output(
        &t.run(&["show", "list_test_config"]),
        "add_list_show.result",
    );
}

#[test]
fn add_list_changes() {
    let t = list_prepare();
    assert_same_output(&t.run(&["changes"]), "add_list_changes.result");
}

#[test]
fn del_list_removes_the_item() {
    assert_del_list_leaves(
        "list_test_config.SEC0.list0=value0",
        "del_list_config.result",
    );
}

#[test]
fn del_list_removes_a_multiline_item() {
    assert_del_list_leaves(MULTILINE_ITEM, "del_list_multiline_config.result");
}

// ---- 090_cli_options ------------------------------------------------------

#[test]
fn extra_delta_directories_combine_in_order() {
    let t = Suite::new();
    let new_savedir = t.tmp.join("new_savedir");
    let nsd = new_savedir.display().to_string();
    t.touch("delta");
    t.run(&["set", "delta.sec0=sectype"]);
    t.run(&["add_list", "delta.sec0.li0=0"]);
    std::fs::create_dir_all(&new_savedir).expect("mkdir");
    std::fs::write(new_savedir.join("delta"), b"").expect("touch");
    t.run(&["-P", &nsd, "set", "delta.sec0=tmptype"]);
    t.run(&["-P", &nsd, "add_list", "delta.sec0.li0=1"]);
    t.run(&["-P", &nsd, "set", "delta.sec0=sectype"]);

    assert_eq!(
        shell(&t.run(&["changes"]).out),
        "delta.sec0='sectype'\ndelta.sec0.li0+='0'"
    );
    let r = t.run(&["-P", &nsd, "changes"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        shell(&r.out),
        "delta.sec0='sectype'\ndelta.sec0.li0+='0'\ndelta.sec0='tmptype'\ndelta.sec0.li0+='1'\ndelta.sec0='sectype'"
    );
    let r = t.run(&["-P", &nsd, "export"]);
    assert_eq!(r.code, 0);
    assert_same_output(&r, "cli.options.delta.export.result");

    // -P implies no commit.
    assert_eq!(t.run(&["-P", &nsd, "commit"]).code, 0);
    assert_eq!(
        shell(&String::from_utf8(read(&t.config.join("delta"))).expect("utf-8")),
        ""
    );

    assert_eq!(t.run(&["-p", &nsd, "commit"]).code, 0);
    assert_same_file("cli.options.delta.commit.result", &t.config.join("delta"));
}

// ---- 100_changes ----------------------------------------------------------

#[test]
fn changes_ignores_delta_lines_with_trailing_parts_or_missing_values() {
    for c in ["+", "", "@", "^", "|", "~"] {
        let t = Suite::with_empty("network");
        let lines = format!(
            "{c}network.foo bar\n{c}network.foo bar=baz\n{c}network.foo.bar baz\n{c}network.foo.bar baz=bazz\n"
        );
        std::fs::write(t.changes.join("network"), lines).expect("write");
        assert_eq!(t.run(&["changes"]).out, "", "prefix {c:?}");

        std::fs::write(
            t.changes.join("network"),
            format!("{c}network.foo\n{c}network.foo.bar\n"),
        )
        .expect("write");
        assert_eq!(t.run(&["changes"]).out, "", "prefix {c:?}");
    }
}

// ---- cram: config/network and config/broken ------------------------------

#[test]
fn cram_network_config_has_the_sections_ucilua_reports() {
    let text = read(&corpus_dir().join("cram/config/network"));
    let p = herd_uci::parse(&text, "network", "network", herd_uci::Mode::Strict)
        .expect("parses")
        .package;
    // basic.lua prints get_all of lan (.index 2) and wan (.index 3).
    let lan = &p.sections[2];
    assert_eq!(
        (lan.name.as_str(), lan.kind.as_str(), lan.anonymous),
        ("lan", "interface", false)
    );
    let opts: Vec<(&str, &str)> = lan
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_single().unwrap_or("")))
        .collect();
    assert_eq!(
        opts,
        [
            ("proto", "static"),
            ("ifname", "eth0"),
            ("test", "123"),
            ("enabled", "off"),
            ("ipaddr", "2.3.4.5")
        ]
    );
    let wan = &p.sections[3];
    assert_eq!(wan.name, "wan");
    assert_eq!(wan.get_single("aliases"), Some("c d"));
    assert_eq!(wan.get_single("enabled"), Some("on"));
}

#[test]
fn cram_broken_config_is_a_parse_error_with_position() {
    let text = read(&corpus_dir().join("cram/config/broken"));
    let e = herd_uci::parse(&text, "broken", "broken", herd_uci::Mode::Strict).expect_err("broken");
    assert_eq!(e.line, 1);
    assert!(e.reason.contains("unterminated"), "{e}");
}

// ---- ucimap-example (libuci's ucimap sample, run twice with -s) -----------

/// What `ucimap-example -s` prints for `shunit2/config/network`, computed the
/// way its ucimap maps do: interfaces with typed options, `aliases` as an
/// auto-split list of section references, alias sections linked back to
/// their interface. With `store`, lan's ipaddr is cleared and its aliases
/// list is rewritten from the linked aliases, staged as deltas (uci_save).
fn ucimap_example(store: &herd_uci::Store, save: bool) -> String {
    use herd_uci::ops::{self, Ptr};
    let mut p = store.load("network").expect("load network").package;
    let mut out = String::new();
    let interfaces: Vec<usize> = (0..p.sections.len())
        .filter(|&i| p.sections[i].kind == "interface")
        .collect();
    for i in interfaces {
        let s = p.sections[i].clone();
        let ip = s
            .get_single("ipaddr")
            .and_then(|v| {
                let parts: Vec<i64> = v.split('.').map_while(|x| x.parse().ok()).collect();
                (parts.len() == 4).then(|| {
                    parts
                        .iter()
                        .map(|b| (b & 0xff).to_string())
                        .collect::<Vec<_>>()
                        .join(".")
                })
            })
            .unwrap_or_else(|| "0.0.0.0".into());
        let enabled = matches!(
            s.get_single("enabled"),
            Some("1" | "on" | "true" | "yes" | "enabled")
        );
        out.push_str(&format!(
            "New network section '{}'\n\ttype: {}\n\tifname: {}\n\tipaddr: {ip}\n\ttest: {}\n\tenabled: {}\n",
            s.name,
            s.get_single("proto").unwrap_or("(null)"),
            s.get_single("ifname").unwrap_or("(null)"),
            s.get_single("test").and_then(|t| t.parse::<i64>().ok()).unwrap_or(-1),
            if enabled { "on" } else { "off" }
        ));
        let configured: Vec<String> = s
            .get("aliases")
            .map(|v| {
                v.items()
                    .iter()
                    .flat_map(|x| x.split_whitespace())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !configured.is_empty() {
            out.push_str(&format!("Configured aliases: {}\n", configured.join(" ")));
        }
        let linked: Vec<String> = p
            .sections
            .iter()
            .filter(|a| a.kind == "alias" && a.get_single("interface") == Some(&s.name))
            .map(|a| a.name.clone())
            .collect();
        for a in &linked {
            if !configured.contains(a) {
                out.push_str(&format!("New alias: {a}\n"));
            }
        }
        if save && s.name == "lan" {
            let mut deltas = Vec::new();
            let ptr = |t: &str| Ptr::parse(t).expect("pointer");
            deltas.extend(ops::set(&mut p, &ptr("network.lan.ipaddr=")).expect("clear ipaddr"));
            if p.sections[i].option("aliases").is_some() {
                deltas.extend(
                    ops::delete(&mut p, &ptr("network.lan.aliases")).expect("delete aliases"),
                );
            }
            for a in &linked {
                deltas.extend(
                    ops::add_list(&mut p, &ptr(&format!("network.lan.aliases={a}")))
                        .expect("add alias"),
                );
            }
            store.save("network", &deltas).expect("uci_save");
        }
    }
    out
}

#[test]
fn ucimap_example_runs_twice_with_saved_changes() {
    let t = Suite::new();
    std::fs::write(
        t.config.join("network"),
        read(&corpus_dir().join("shunit2/config/network")),
    )
    .expect("cp");
    let mut store = herd_uci::Store::new(&t.config);
    store.savedir = t.changes.clone();
    let first = ucimap_example(&store, true);
    assert_eq!(first, reference_text("ucimap_example_1.result"));
    let second = ucimap_example(&store, true);
    assert_eq!(second, reference_text("ucimap_example_2.result"));
}

// ---- cram: import of the fuzz corpus ---------------------------------------

/// libuci's cram test (`tests/cram/test_uci_import_merge.t`: `uci import
/// network -m -f FILE` for every fuzz corpus file, sorted) prints exactly
/// these three errors; herd's parser finds the same three, at the same
/// libuci line and byte, and accepts the other files.
#[test]
fn cram_fuzz_corpus_import_errors_match_libuci() {
    let dir = corpus_dir().join("fuzz/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fuzz corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let errors: Vec<String> = files
        .iter()
        .filter_map(|f| {
            herd_uci::parse(&read(f), "network", "network", herd_uci::Mode::Strict).err()
        })
        .map(|e| format!("uci: {}", e.libuci_message()))
        .collect();
    assert_eq!(
        errors,
        [
            "uci: Parse error (package without name) at line 0, byte 68",
            "uci: Parse error (invalid command) at line 0, byte 0",
            "uci: Parse error (invalid command) at line 1, byte 18",
        ]
    );
}

#[test]
fn import_merge_stages_the_stream_as_changes() {
    let t = Suite::with("get_parsing.data", "test");
    let r = t.uci(
        &["-m", "import", "test"],
        "config type 'section'\n\toption opt 'new'\n\tlist l 'a'\nconfig extra\n\toption x y\n",
    );
    assert_eq!(r.code, 0);
    // Nothing written before commit; the changes are staged.
    assert_eq!(
        read(&t.config.join("test")),
        read(&reference("get_parsing.data"))
    );
    // The new anonymous section is the package's third: cfg03 + hash("extra").
    let id = herd_uci::anonymous_id(3, "extra");
    assert_eq!(
        shell(&t.run(&["changes", "test"]).out),
        format!("test.section='type'\ntest.section.opt='new'\ntest.section.l+='a'\ntest.{id}='extra'\ntest.{id}.x='y'")
    );
    t.run(&["commit", "test"]);
    let p = herd_uci::parse(
        &read(&t.config.join("test")),
        "test",
        "test",
        herd_uci::Mode::Strict,
    )
    .expect("parses")
    .package;
    assert_eq!(p.sections.len(), 3);
    assert_eq!(p.sections[0].get_single("opt"), Some("new"));
    assert_eq!(p.sections[2].get_single("x"), Some("y"));
}
