//! `herd uci`: OpenWrt UCI files. Two faces:
//!
//! - herd's own commands on files: `fmt FILE`, `export FILE`, `show FILE`,
//!   `diff OLD NEW [--json]`, `batch OLD NEW`;
//! - a drop-in for OpenWrt's `uci` (`herd uci [-c CONFDIR] [-P SAVEDIR] batch`,
//!   `commit`, `changes`, `get`, `set`...), so a script named `uci` can
//!   `exec herd uci "$@"`. See docs/uci.md.

use super::exit::{Exit, USAGE};
use super::Global;
use std::process::ExitCode;

/// OpenWrt UCI: herd's file commands, or OpenWrt's `uci` command line.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "herd commands (a FILE for export/show must contain a `/`, e.g. ./firewall; a bare pkg[.section] means OpenWrt's uci):
  herd uci fmt FILE [--check|--dry-run]   rewrite FILE as `uci commit` would write it
  herd uci export FILE                    `uci export` of FILE (package name from the file name)
  herd uci show FILE                      `uci show` of FILE
  herd uci diff OLD NEW [--json]          semantic diff of two versions of one package
  herd uci batch OLD NEW                  the `uci batch` script that turns OLD into NEW
  herd uci edit FILE [--dry-run]          run a `uci batch` script (stdin) on FILE, keeping
                                          its comments, order and quoting

OpenWrt-compatible (see docs/uci.md):
  herd uci [-c CONFDIR] [-p DIR] [-P SAVEDIR] [-q] [-X] COMMAND ...
  COMMAND: batch, export, import, changes, commit, add, add_list, del_list,
           show, get, set, delete, rename, revert, reorder"
)]
pub struct Args {
    /// A herd command or OpenWrt `uci` options and command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub rest: Vec<String>,
}

pub fn run(_global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let rest = args.rest;
    if let Some(code) = herd_mode(&rest)? {
        return Ok(code);
    }
    // herd extension: a default config and save directory other than
    // /etc/config and /tmp/.uci (commit keeps working, unlike `-P`).
    let mut cli = herd_uci::cli::Cli::default();
    if let Some(dir) = std::env::var_os("HERD_UCI_CONFDIR") {
        cli.store.confdir = dir.into();
    }
    if let Some(dir) = std::env::var_os("HERD_UCI_SAVEDIR") {
        cli.store.savedir = dir.into();
    }
    let stdin = std::io::stdin();
    let code = herd_uci::cli::main_with(
        cli,
        &rest,
        &mut stdin.lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    Ok(ExitCode::from(code))
}

/// `export`/`show` take a file when the argument has a `/` (`./firewall`);
/// a bare `pkg[.section[.option]]` is OpenWrt's syntax.
fn is_path(s: &str) -> bool {
    s.contains('/')
}

/// herd's own file commands; `None` means "OpenWrt uci syntax".
fn herd_mode(rest: &[String]) -> anyhow::Result<Option<ExitCode>> {
    let (cmd, tail) = match rest.split_first() {
        Some((c, t)) => (c.as_str(), t),
        None => return Ok(None),
    };
    let json = tail.iter().any(|a| a == "--json");
    let check = tail.iter().any(|a| a == "--check");
    let files: Vec<&str> = tail
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match (cmd, files.as_slice()) {
        ("fmt", [file]) => fmt(file, check, tail.iter().any(|a| a == "--dry-run")).map(Some),
        ("fmt", _) => Err(Exit::new(USAGE, "usage: herd uci fmt FILE [--check|--dry-run]").into()),
        ("export", [file]) if is_path(file) => {
            print!("{}", herd_uci::export(&load(file)?));
            Ok(Some(ExitCode::SUCCESS))
        }
        ("show", [file]) if is_path(file) => {
            print!("{}", herd_uci::show(&load(file)?, &Default::default()));
            Ok(Some(ExitCode::SUCCESS))
        }
        ("diff", [old, new]) => diff(old, new, json).map(Some),
        ("diff", _) => Err(Exit::new(USAGE, "usage: herd uci diff OLD NEW [--json]").into()),
        ("batch", [old, new]) => batch(old, new).map(Some),
        ("edit", [file]) => edit(file, tail.iter().any(|a| a == "--dry-run")).map(Some),
        ("edit", _) => {
            Err(Exit::new(USAGE, "usage: herd uci edit FILE [--dry-run] < SCRIPT").into())
        }
        _ => Ok(None),
    }
}

fn package_name(file: &str) -> String {
    std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').next().unwrap_or(n).to_string())
        .filter(|n| herd_uci::valid_package_name(n))
        .unwrap_or_else(|| "config".to_string())
}

fn load(file: &str) -> anyhow::Result<herd_uci::Package> {
    let bytes = std::fs::read(file)
        .map_err(|e| Exit::new(super::exit::NOT_FOUND, format!("{file}: {e}")))?;
    let parsed = herd_uci::parse(&bytes, &package_name(file), file, herd_uci::Mode::Strict)
        .map_err(|e| Exit::new(USAGE, e.to_string()))?;
    Ok(parsed.package)
}

fn fmt(file: &str, check: bool, dry_run: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file)
        .map_err(|e| Exit::new(super::exit::NOT_FOUND, format!("{file}: {e}")))?;
    let p = load(file)?;
    let text = herd_uci::commit_text(&p);
    if text.as_bytes() == bytes.as_slice() {
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        eprintln!("{file}: not in `uci commit` format (run `herd uci fmt {file}`)");
        return Ok(ExitCode::from(super::exit::FAILURE));
    }
    if dry_run {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::write(file, text)?;
    Ok(ExitCode::SUCCESS)
}

fn edit(file: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let original = std::fs::read_to_string(file)
        .map_err(|e| Exit::new(super::exit::NOT_FOUND, format!("{file}: {e}")))?;
    let mut script = String::new();
    std::io::stdin().read_to_string(&mut script)?;
    let edited = herd_uci::edit_with_script(&original, &package_name(file), &script)
        .map_err(|e| Exit::new(USAGE, format!("{file}: {e}")))?;
    if edited.rewritten {
        eprintln!(
            "{file}: a changed statement shares its line with another; the whole file is rewritten"
        );
    }
    if dry_run {
        print!("{}", edited.text);
    } else if edited.text != original {
        let tmp = format!("{file}.herd-tmp");
        std::fs::write(&tmp, &edited.text)?;
        std::fs::rename(&tmp, file)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn load_pair(old: &str, new: &str) -> anyhow::Result<(herd_uci::Package, herd_uci::Package)> {
    let old = load(old)?;
    let mut new = load(new)?;
    // Two versions of one package: the new file's name may differ (firewall.new).
    new.name = old.name.clone();
    Ok((old, new))
}

fn diff(old: &str, new: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (old, new) = load_pair(old, new)?;
    let d = herd_uci::diff(&old, &new);
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", herd_uci::render_diff(&d));
    }
    Ok(ExitCode::SUCCESS)
}

fn batch(old: &str, new: &str) -> anyhow::Result<ExitCode> {
    let (old, new) = load_pair(old, new)?;
    print!("{}", herd_uci::batch_script(&old, &new)?);
    Ok(ExitCode::SUCCESS)
}
