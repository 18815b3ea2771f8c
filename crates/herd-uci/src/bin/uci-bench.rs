//! `uci-bench`: parse and export throughput at several sizes, and the time
//! to diff two 10 000-section files and to derive the batch script.
//!
//! Run with `cargo run --release -p herd-uci --bin uci-bench`.

use herd_uci::{batch_script, commit_text, diff, parse, Mode};
use std::time::{Duration, Instant};

/// A firewall-like file: zones, named rules with lists, anonymous
/// forwardings, a comment now and then.
fn config(sections: usize, variant: usize) -> String {
    let mut s = String::with_capacity(sections * 160);
    for i in 0..sections {
        match i % 4 {
            0 => s.push_str(&format!(
                "config zone\n\toption name 'z{i}'\n\toption input ACCEPT\n\tlist network 'net{i}'\n\tlist network \"wan{i}\"\n\n"
            )),
            1 => s.push_str(&format!(
                "# rule {i}\nconfig rule 'r{i}'\n\toption name 'rule-{i}'\n\toption src z{}\n\toption dest_ip '10.{}.{}.{}'\n\toption target {}\n\n",
                i - 1,
                i % 250,
                (i / 250) % 250,
                (i + variant) % 250,
                if (i + variant).is_multiple_of(97) { "REJECT" } else { "ACCEPT" }
            )),
            2 => s.push_str(&format!("config forwarding\n\toption src z{}\n\toption dest wan\n\n", i - 2)),
            _ => s.push_str(&format!(
                "config host\n\toption name h{i}\n\toption mac '00:11:22:33:{:02x}:{:02x}'\n\toption ip 192.168.{}.{}\n\n",
                i % 256,
                (i / 256) % 256,
                i % 250,
                (i / 250) % 250
            )),
        }
    }
    s
}

/// CPU time of this thread: what the work costs, whatever else the shared
/// machine is doing (wall time is reported alongside).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Best CPU time (and the wall time of that run) over `runs` runs.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let (c, w) = (cpu_time(), Instant::now());
        let r = f();
        let (c, _w) = (cpu_time() - c, w.elapsed());
        best = best.min(c);
        drop(out.replace(r));
    }
    (best, out.expect("at least one run"))
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    println!(
        "CPU time per run (best of several runs), {} cores busy elsewhere or not.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| sections | bytes | parse MB/s | export MB/s | parse+export MB/s | parse+export time |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [100, 1_000, 10_000, 100_000] {
        let text = config(n, 0);
        let runs = if n >= 100_000 { 8 } else { 20 };
        let (tp, parsed) = best(runs, || {
            parse(text.as_bytes(), "firewall", "bench", Mode::Strict)
        });
        let p = match parsed {
            Ok(p) => p.package,
            Err(e) => panic!("bench config does not parse: {e}"),
        };
        let (te, out) = best(runs, || commit_text(&p));
        // Parse and export; freeing the parsed config happens after the clock stops.
        let (tb, _) = best(runs, || {
            let p = parse(text.as_bytes(), "firewall", "bench", Mode::Strict).map(|p| p.package);
            let len = p.as_ref().map(|p| commit_text(p).len()).ok();
            (len, p.ok())
        });
        println!(
            "| {n} | {} | {:.0} | {:.0} | {:.0} | {:.1} ms |",
            text.len(),
            mbps(text.len(), tp),
            mbps(out.len(), te),
            mbps(text.len(), tb),
            tb.as_secs_f64() * 1e3
        );
    }
    let n = 10_000;
    let old = parse(config(n, 0).as_bytes(), "firewall", "old", Mode::Strict).map(|p| p.package);
    let new = parse(config(n, 1).as_bytes(), "firewall", "new", Mode::Strict).map(|p| p.package);
    let (Ok(old), Ok(mut new)) = (old, new) else {
        panic!("bench configs do not parse")
    };
    // Drop 50 sections, add 50, reverse the options of every zone.
    new.sections.drain(100..150);
    for s in new.sections.iter_mut().filter(|s| s.kind == "zone") {
        s.options.reverse();
    }
    for i in 0..50 {
        new.add_anonymous("rule")
            .set("name", format!("new-{i}"))
            .set("target", "DROP");
    }
    let (td, d) = best(5, || diff(&old, &new));
    let (tb, script) = best(3, || batch_script(&old, &new));
    let script = script.unwrap_or_else(|e| panic!("batch script: {e}"));
    println!();
    println!(
        "diff of two {n}-section files: {:.1} ms ({} section changes); batch script: {:.1} ms ({} commands)",
        td.as_secs_f64() * 1e3,
        d.sections.len(),
        tb.as_secs_f64() * 1e3,
        script.lines().count()
    );
}
