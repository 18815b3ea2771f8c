//! Nothing panics on hostile input: libuci's fuzz corpus (crashes AFL found
//! in libuci), arbitrary bytes, and corpus files with random bytes spliced
//! in, through every entry point that reads text: the parser in both modes,
//! import streams, delta files, batch scripts and the `uci batch` command.

use herd_uci::cli::{main_with, Cli};
use herd_uci::{export, parse, parse_import, run_script, Mode, Package};
use proptest::prelude::*;
use std::path::PathBuf;

fn corpus_root() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/uci-libuci-tests"
    ));
    if p.exists() {
        p
    } else {
        PathBuf::from("/work/shared/corpus/uci-libuci-tests")
    }
}

fn corpus_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in [
        "fuzz/corpus",
        "fuzz/inputs",
        "shunit2/references",
        "cram/config",
    ] {
        let d = corpus_root().join(dir);
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let bytes = std::fs::read(e.path()).expect("read corpus file");
            out.push((e.path().display().to_string(), bytes));
        }
    }
    out
}

/// Feed one input to every reader; check the invariants that must hold
/// whatever the input.
fn exercise(input: &[u8]) {
    let strict = parse(input, "fuzz", "fuzz", Mode::Strict);
    let lenient = parse(input, "fuzz", "fuzz", Mode::Lenient).expect("lenient parsing never fails");
    if let Ok(strict) = &strict {
        // Whatever parses strictly parses the same leniently, and its export
        // parses back to the same config.
        assert!(lenient.skipped.is_empty());
        assert_eq!(lenient.package, strict.package);
        let text = export(&strict.package);
        let body = text.split_once('\n').map_or("", |(_, b)| b);
        let back = parse(body.as_bytes(), "fuzz", "export", Mode::Strict).expect("export parses");
        assert_eq!(back.package, strict.package);
    }
    let _ = parse_import(input, None, "fuzz", Mode::Lenient);
    let _ = parse_import(input, Some("fuzz"), "fuzz", Mode::Strict);
    let _ = herd_uci::delta::parse_deltas(input, "fuzz");
    let mut p = lenient.package.clone();
    let _ = run_script(&mut p, &String::from_utf8_lossy(input));
    let _ = run_script(&mut Package::new("fuzz"), &String::from_utf8_lossy(input));
}

#[test]
fn libuci_fuzz_corpus_and_references_never_panic() {
    let files = corpus_files();
    assert!(
        files.len() >= 40,
        "corpus incomplete: {} files",
        files.len()
    );
    for (name, bytes) in &files {
        let r = std::panic::catch_unwind(|| exercise(bytes));
        assert!(r.is_ok(), "{name} panicked");
    }
}

#[test]
fn uci_batch_and_import_survive_the_fuzz_corpus() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let conf = tmp.path().join("config");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::write(conf.join("fuzz"), b"config a 'b'\n").expect("seed config");
    for (name, bytes) in corpus_files() {
        for cmd in [&["batch"][..], &["import"][..], &["import", "fuzz"][..]] {
            let mut cli = Cli::default();
            cli.store.savedir = tmp.path().join("save");
            let mut args = vec![
                "-q".to_string(),
                "-c".to_string(),
                conf.display().to_string(),
            ];
            args.extend(cmd.iter().map(|s| s.to_string()));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let input = bytes.clone();
            let r = std::panic::catch_unwind(move || {
                main_with(cli, &args, &mut input.as_slice(), &mut out, &mut err)
            });
            assert!(r.is_ok(), "{name}: {cmd:?} panicked");
            // Keep the package importable for the next round.
            std::fs::write(conf.join("fuzz"), b"config a 'b'\n").expect("reset config");
        }
    }
}

fn spliced() -> impl Strategy<Value = Vec<u8>> {
    let files: Vec<Vec<u8>> = corpus_files().into_iter().map(|(_, b)| b).collect();
    (
        0..files.len(),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(i, at, noise)| {
            let mut b = files[i].clone();
            let at = if b.is_empty() { 0 } else { at % b.len() };
            b.splice(at..at, noise);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&input);
    }

    #[test]
    fn uci_like_text_never_panics(input in "([cplo]|config|option|list|package| |\t|\n|'|\"|\\\\|#|;|[a-z]{1,4}|\r\n){0,60}") {
        exercise(input.as_bytes());
    }

    #[test]
    fn corpus_files_with_noise_never_panic(input in spliced()) {
        exercise(&input);
    }
}
