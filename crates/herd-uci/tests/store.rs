//! The config store under concurrency: `uci set` from many processes while
//! another keeps committing must lose no change (libuci locks the same way).

use herd_uci::cli::{main_with, Cli};

#[test]
fn concurrent_stagers_and_committer_lose_no_change() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let conf = tmp.path().join("config");
    let save = tmp.path().join("save");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::write(conf.join("t"), "config s 'sec'\n").expect("config");
    let uci = |args: &[&str]| {
        let mut cli = Cli::default();
        cli.store.savedir = save.clone();
        let mut argv = vec!["-c".to_string(), conf.display().to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main_with(cli, &argv, &mut std::io::empty(), &mut out, &mut err);
        assert_eq!(code, 0, "{args:?}: {}", String::from_utf8_lossy(&err));
    };
    std::thread::scope(|scope| {
        for t in 0..6 {
            let uci = &uci;
            scope.spawn(move || {
                for i in 0..15 {
                    uci(&["set", &format!("t.sec.o{t}_{i}=v")]);
                }
            });
        }
        let uci = &uci;
        scope.spawn(move || {
            for _ in 0..30 {
                uci(&["commit", "t"]);
            }
        });
    });
    uci(&["commit", "t"]);
    let p = herd_uci::parse_str(&std::fs::read_to_string(conf.join("t")).expect("read"), "t")
        .expect("parse");
    assert_eq!(p.sections[0].options.len(), 6 * 15);
}
