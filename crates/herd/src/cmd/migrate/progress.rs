//! Migration progress on the terminal (indicatif) or as JSON lines.

use herd_migrate::exec::{Notice, Phase};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

/// Progress on the terminal (a bar per phase, shown from the first sample
/// to the end of the migration step) or as JSON lines.
pub(super) struct Ui {
    json: bool,
    prefix: Option<String>,
    bar: ProgressBar,
    /// The phase the bar shows; `None` while it is hidden.
    phase: Mutex<Option<Phase>>,
}

impl Ui {
    pub(super) fn new(json: bool, prefix: Option<String>) -> Ui {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Ui {
            json,
            prefix,
            bar,
            phase: Mutex::new(None),
        }
    }

    pub(super) fn notice(&self, n: &Notice) {
        if self.json {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            if let (Some(p), Some(o)) = (&self.prefix, v.as_object_mut()) {
                o.insert("vm".into(), p.clone().into());
            }
            println!("{v}");
            return;
        }
        let tag = self
            .prefix
            .as_deref()
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let line = match n {
            Notice::Step { text } => format!("{tag}{text}"),
            Notice::Undo { text } => format!("{tag}undo: {text}"),
            Notice::Warning { text } => format!("{tag}warning: {text}"),
            Notice::Progress(p) => {
                if phase.is_none() {
                    self.bar.set_draw_target(ProgressDrawTarget::stderr());
                }
                if *phase != Some(p.phase) {
                    self.bar.reset();
                    *phase = Some(p.phase);
                    self.bar.set_prefix(match p.phase {
                        Phase::Disk => "disks",
                        Phase::Memory => "memory",
                    });
                }
                self.bar.set_length(p.total);
                self.bar.set_position(p.done);
                return;
            }
        };
        // A step after the migration: the bar has done its job.
        if phase.take().is_some() {
            self.bar.finish_and_clear();
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        eprintln!("{line}");
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
