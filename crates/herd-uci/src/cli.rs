//! A drop-in for the subset of OpenWrt's `uci` command line that scripts
//! use: `uci [-c CONFDIR] [-p DIR] [-P SAVEDIR] [-q] [-X] [-d DELIM] [-f FILE]
//! [-s|-S] [-n|-N] COMMAND ARGS`, with `batch` reading commands from stdin.
//!
//! Every command loads the package from the [`Store`] (config file plus
//! staged deltas), applies one [`ops`] call and stages its delta, exactly as
//! libuci's `cli.c` does; `commit` writes the file.

use crate::export::{
    export_with, format_value, show, show_option, show_section, ExportOptions, ShowOptions,
};
use crate::ops::{self, Ptr};
use crate::parse::{parse_import, Mode};
use crate::store::Store;
use crate::tokenize::{batch_args, LineReader};
use std::io::{Read, Write};

/// Parsed global options of a `uci` invocation.
#[derive(Debug, Clone)]
pub struct Cli {
    pub store: Store,
    pub quiet: bool,
    /// `-P` given: `commit` does nothing.
    pub nocommit: bool,
    pub merge: bool,
    pub show: ShowOptions,
    pub name_anonymous: bool,
    pub input: Option<std::path::PathBuf>,
    in_batch: bool,
}

/// Outcome codes, as libuci's `uci` exits.
pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
const UNKNOWN: u8 = 255;

pub const USAGE: &str = "Usage: uci [<options>] <command> [<arguments>]

Commands:
\tbatch
\texport     [<config>]
\timport     [<config>]
\tchanges    [<config>]
\tcommit     [<config>]
\tadd        <config> <section-type>
\tadd_list   <config>.<section>.<option>=<string>
\tdel_list   <config>.<section>.<option>=<string>
\tshow       [<config>[.<section>[.<option>]]]
\tget        <config>.<section>[.<option>]
\tset        <config>.<section>[.<option>]=<value>
\tdelete     <config>[.<section>[[.<option>][=<id>]]]
\trename     <config>.<section>[.<option>]=<name>
\trevert     <config>[.<section>[.<option>]]
\treorder    <config>.<section>=<position>

Options:
\t-c <path>  set the search path for config files (default: /etc/config)
\t-d <str>   set the delimiter for list values in uci show
\t-f <file>  use <file> as input instead of stdin
\t-m         when importing, merge data into an existing package
\t-n         name unnamed sections on export
\t-N         don't name unnamed sections (default)
\t-p <path>  add a search path for config change files
\t-P <path>  add a search path for config change files and use as default
\t-q         quiet mode (don't print error messages)
\t-s         force strict mode (stop on parser errors, default)
\t-S         disable strict mode
\t-X         do not use extended syntax on 'show'
";

impl Default for Cli {
    fn default() -> Self {
        Cli {
            store: Store::new("/etc/config"),
            quiet: false,
            nocommit: false,
            merge: false,
            show: ShowOptions::default(),
            name_anonymous: false,
            input: None,
            in_batch: false,
        }
    }
}

/// Run `uci ARGS...` (without the program name). Returns the exit code.
pub fn main(args: &[String], stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    main_with(Cli::default(), args, stdin, out, err)
}

/// [`main`] starting from other defaults (tests use their own save directory).
pub fn main_with(
    mut cli: Cli,
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a.len() < 2 {
            break;
        }
        let flags: Vec<char> = a[1..].chars().collect();
        let mut j = 0;
        while j < flags.len() {
            let f = flags[j];
            if "cdfpP".contains(f) {
                let rest: String = flags[j + 1..].iter().collect();
                let value = if !rest.is_empty() {
                    rest
                } else if i + 1 < args.len() {
                    i += 1;
                    args[i].clone()
                } else {
                    let _ = writeln!(err, "uci: option requires an argument -- '{f}'\n{USAGE}");
                    return FAILED;
                };
                match f {
                    'c' => cli.store.confdir = value.into(),
                    'd' => cli.show.delimiter = value,
                    'f' => cli.input = Some(value.into()),
                    'p' => cli.store.add_delta_path(value),
                    _ => {
                        cli.store.set_savedir(value);
                        cli.nocommit = true;
                    }
                }
                break;
            }
            match f {
                'm' => cli.merge = true,
                's' => cli.store.mode = Mode::Strict,
                'S' => cli.store.mode = Mode::Lenient,
                'n' => cli.name_anonymous = true,
                'N' => cli.name_anonymous = false,
                'q' => cli.quiet = true,
                'X' => cli.show.extended = false,
                'L' => {}
                _ => {
                    let _ = write!(err, "{USAGE}");
                    return OK;
                }
            }
            j += 1;
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() {
        let _ = write!(err, "{USAGE}");
        return OK;
    }
    let mut input: Box<dyn Read + '_> = match &cli.input {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                let _ = writeln!(err, "uci: {}: {e}", path.display());
                return FAILED;
            }
        },
        None => Box::new(stdin),
    };
    let code = cli.command(rest, &mut *input, out, err);
    if code == UNKNOWN {
        let _ = write!(err, "{USAGE}");
    }
    code
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Get,
    Set,
    AddList,
    DelList,
    Delete,
    Rename,
    Revert,
    Reorder,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PackageCmd {
    Show,
    Changes,
    Export,
    Commit,
}

impl Cli {
    fn fail(&self, err: &mut dyn Write, message: impl std::fmt::Display) -> u8 {
        if !self.quiet {
            let _ = writeln!(err, "uci: {message}");
        }
        FAILED
    }

    /// `uci -S` prints the lines it skipped.
    fn report_skipped(&self, skipped: &[crate::parse::ParseError], err: &mut dyn Write) {
        if !self.quiet {
            for e in skipped {
                let _ = writeln!(err, "uci: Parse error: {e} (line skipped)");
            }
        }
    }

    /// Run one command (`argv[0]` is the command name).
    pub fn command(
        &mut self,
        argv: &[String],
        input: &mut dyn Read,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> u8 {
        let name = argv[0].to_ascii_lowercase();
        let section = match name.as_str() {
            "batch" if !self.in_batch => return self.batch(input, out, err),
            "get" => Some(Section::Get),
            "set" => Some(Section::Set),
            "add_list" => Some(Section::AddList),
            "del_list" => Some(Section::DelList),
            "del" | "delete" => Some(Section::Delete),
            "ren" | "rename" => Some(Section::Rename),
            "revert" => Some(Section::Revert),
            "reorder" => Some(Section::Reorder),
            _ => None,
        };
        if let Some(cmd) = section {
            if argv.len() != 2 {
                return UNKNOWN;
            }
            return self.section_cmd(cmd, &argv[1], out, err);
        }
        let package = match name.as_str() {
            "show" => Some(PackageCmd::Show),
            "changes" => Some(PackageCmd::Changes),
            "export" => Some(PackageCmd::Export),
            "commit" => Some(PackageCmd::Commit),
            _ => None,
        };
        if let Some(cmd) = package {
            return match argv.len() {
                1 => match self.store.list_configs() {
                    Ok(names) => {
                        for n in names {
                            self.package_cmd(cmd, &n, out, err);
                        }
                        OK
                    }
                    Err(e) => self.fail(err, e),
                },
                2 => self.package_cmd(cmd, &argv[1], out, err),
                _ => UNKNOWN,
            };
        }
        match name.as_str() {
            "add" if argv.len() == 3 => self.add(&argv[1], &argv[2], out, err),
            "import" if argv.len() <= 2 => self.import(argv.get(1).map(String::as_str), input, err),
            "help" => {
                let _ = write!(err, "{USAGE}");
                OK
            }
            _ => UNKNOWN,
        }
    }

    fn batch(&mut self, input: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let mut text = Vec::new();
        if let Err(e) = input.read_to_end(&mut text) {
            return self.fail(err, e);
        }
        self.in_batch = true;
        let mut reader = LineReader::new(&text);
        while let Some(args) = batch_args(&mut reader, 3) {
            let args = match args {
                Ok(a) => a,
                Err(e) => {
                    self.fail(err, e);
                    continue;
                }
            };
            if args.is_empty() {
                continue;
            }
            let args: Vec<String> = args
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            if args[0].eq_ignore_ascii_case("exit") {
                break;
            }
            let _ = out.flush();
            if self.command(&args, &mut std::io::empty(), out, err) == UNKNOWN && !self.quiet {
                let _ = writeln!(err, "Unknown command");
            }
        }
        self.in_batch = false;
        OK
    }

    fn package_cmd(
        &mut self,
        cmd: PackageCmd,
        tuple: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> u8 {
        let ptr = match Ptr::parse(tuple) {
            Ok(p) => p,
            Err(e) => return self.fail(err, e),
        };
        if cmd == PackageCmd::Commit {
            if self.nocommit {
                return OK;
            }
            return match self.store.commit(&ptr.package) {
                Ok(_) => OK,
                Err(e) => self.fail(err, e),
            };
        }
        let loaded = match self.store.load(&ptr.package) {
            Ok(l) => l,
            Err(e) => return self.fail(err, e),
        };
        self.report_skipped(&loaded.skipped, err);
        let p = &loaded.package;
        let text = match cmd {
            PackageCmd::Changes => loaded
                .changes
                .iter()
                .map(|d| d.to_change_line(&p.name) + "\n")
                .collect(),
            PackageCmd::Export => export_with(
                p,
                ExportOptions {
                    header: true,
                    name_anonymous: self.name_anonymous,
                },
            ),
            PackageCmd::Show => {
                let found = match ops::lookup(p, &ptr) {
                    Ok(f) => f,
                    Err(e) => return self.fail(err, e),
                };
                if !found.complete {
                    return self.fail(err, "Entry not found");
                }
                match (found.section, found.option) {
                    (None, _) => show(p, &self.show),
                    (Some(si), None) => show_section(p, &p.sections[si], &self.show),
                    (Some(si), Some(oi)) => {
                        let s = &p.sections[si];
                        show_option(p, s, &s.options[oi], &self.show)
                    }
                }
            }
            PackageCmd::Commit => unreachable!("handled above"),
        };
        let _ = out.write_all(text.as_bytes());
        OK
    }

    fn section_cmd(
        &mut self,
        cmd: Section,
        tuple: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> u8 {
        let ptr = match Ptr::parse(tuple) {
            Ok(p) => p,
            Err(e) => return self.fail(err, e),
        };
        if ptr.value.is_some() && matches!(cmd, Section::Get | Section::Revert) {
            return FAILED;
        }
        let loaded = match self.store.load(&ptr.package) {
            Ok(l) => l,
            Err(e) => return self.fail(err, e),
        };
        self.report_skipped(&loaded.skipped, err);
        let mut p = loaded.package;
        match cmd {
            Section::Get => {
                let f = match ops::lookup(&p, &ptr) {
                    Ok(f) => f,
                    Err(e) => return self.fail(err, e),
                };
                if !f.complete {
                    return self.fail(err, "Entry not found");
                }
                let text = match (f.section, f.option) {
                    (Some(si), None) => format!("{}\n", p.sections[si].kind),
                    (Some(si), Some(oi)) => {
                        format!(
                            "{}\n",
                            format_value(&p.sections[si].options[oi].value, false, " ")
                        )
                    }
                    (None, _) => String::new(),
                };
                let _ = out.write_all(text.as_bytes());
                OK
            }
            Section::Revert => {
                let section = match ops::lookup(&p, &ptr) {
                    Ok(f) => f
                        .section
                        .map(|i| p.sections[i].name.clone())
                        .or(ptr.section.clone()),
                    Err(e) => return self.fail(err, e),
                };
                match self
                    .store
                    .revert(&ptr.package, section.as_deref(), ptr.option.as_deref())
                {
                    Ok(()) => OK,
                    Err(e) => self.fail(err, e),
                }
            }
            _ => {
                let result = match cmd {
                    Section::Set => ops::set(&mut p, &ptr),
                    Section::AddList => ops::add_list(&mut p, &ptr),
                    Section::DelList => ops::del_list(&mut p, &ptr),
                    Section::Delete => ops::delete(&mut p, &ptr),
                    Section::Rename => ops::rename(&mut p, &ptr),
                    _ => ops::reorder(&mut p, &ptr),
                };
                match result {
                    Ok(delta) => match self.store.save(&p.name, delta.as_slice()) {
                        Ok(()) => OK,
                        Err(e) => self.fail(err, e),
                    },
                    Err(e) => self.fail(err, e),
                }
            }
        }
    }

    /// `uci import -m NAME`: merge the stream into the package as staged
    /// changes: named sections are set (created or retyped), anonymous ones
    /// added, options set and list items appended, then saved as deltas.
    fn import_merge(&mut self, name: &str, text: &[u8], err: &mut dyn Write) -> u8 {
        let incoming = match parse_import(text, Some(name), "stdin", self.store.mode) {
            Ok((mut p, _)) => p.pop().unwrap_or_else(|| crate::model::Package::new(name)),
            Err(e) => return self.fail(err, e),
        };
        let mut p = match self.store.load(name) {
            Ok(l) => l.package,
            Err(e) => return self.fail(err, e),
        };
        let mut deltas = Vec::new();
        for s in &incoming.sections {
            let section = if s.anonymous {
                match ops::add(&mut p, &s.kind) {
                    Ok((id, d)) => {
                        deltas.push(d);
                        id
                    }
                    Err(e) => return self.fail(err, e),
                }
            } else {
                let ptr = Ptr {
                    package: name.to_string(),
                    section: Some(s.name.clone()),
                    value: Some(s.kind.clone()),
                    ..Ptr::default()
                };
                match ops::set(&mut p, &ptr) {
                    Ok(d) => deltas.extend(d),
                    Err(e) => return self.fail(err, e),
                }
                s.name.clone()
            };
            for o in &s.options {
                for (i, item) in o.value.items().iter().enumerate() {
                    let ptr = Ptr {
                        package: name.to_string(),
                        section: Some(section.clone()),
                        option: Some(o.name.clone()),
                        value: Some(item.clone()),
                        extended: false,
                    };
                    let r = if o.value.is_list() {
                        ops::add_list(&mut p, &ptr)
                    } else {
                        debug_assert_eq!(i, 0);
                        ops::set(&mut p, &ptr)
                    };
                    match r {
                        Ok(d) => deltas.extend(d),
                        Err(e) => return self.fail(err, e),
                    }
                }
            }
        }
        match self.store.save(name, &deltas) {
            Ok(()) => OK,
            Err(e) => self.fail(err, e),
        }
    }

    fn add(&mut self, package: &str, kind: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let mut p = match self.store.load(package) {
            Ok(l) => l.package,
            Err(e) => return self.fail(err, e),
        };
        match ops::add(&mut p, kind) {
            Ok((name, delta)) => match self.store.save(package, &[delta]) {
                Ok(()) => {
                    let _ = writeln!(out, "{name}");
                    OK
                }
                Err(e) => self.fail(err, e),
            },
            Err(e) => self.fail(err, e),
        }
    }

    fn import(&mut self, name: Option<&str>, input: &mut dyn Read, err: &mut dyn Write) -> u8 {
        let mut text = Vec::new();
        if let Err(e) = input.read_to_end(&mut text) {
            return self.fail(err, e);
        }
        if self.merge {
            let Some(name) = name else { return UNKNOWN };
            return self.import_merge(name, &text, err);
        }
        let packages = match parse_import(&text, name, "stdin", self.store.mode) {
            Ok((p, _)) => p,
            Err(e) => return self.fail(err, e),
        };
        for p in &packages {
            if let Err(e) = self.store.write_config(p) {
                return self.fail(err, e);
            }
        }
        OK
    }
}
