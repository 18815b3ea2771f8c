//! `uci batch` scripts: generate the script that turns one version of a
//! package into another ([`batch_script`]), and run a script against a
//! package in memory ([`run_script`]) with libuci's semantics from [`ops`].
//!
//! The generated script addresses sections by name, or `@type[i]` computed
//! on the package as it is at that point of the script, so it works on any
//! router whose file parses to `old`, whatever its `cfgXXYYYY` ids.

use crate::diff::match_sections;
use crate::export::quote;
use crate::model::{Package, Value};
use crate::ops::{self, OpError, Ptr};
use crate::schema;
use crate::tokenize::{batch_args, LineReader};

/// Why a script could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("line {line}: {source}")]
    Op { line: usize, source: OpError },
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// Run a `uci batch` script against `p` (commands for other packages are
/// refused). `commit` and comments are accepted and do nothing.
pub fn run_script(p: &mut Package, script: &str) -> Result<(), ScriptError> {
    let mut reader = LineReader::new(script.as_bytes());
    let mut line = 0;
    while let Some(args) = batch_args(&mut reader, 3) {
        line += 1;
        let args = args.map_err(|m| ScriptError::Syntax {
            line,
            message: m.to_string(),
        })?;
        let args: Vec<String> = args
            .into_iter()
            .map(|a| String::from_utf8_lossy(&a).into_owned())
            .collect();
        let Some(cmd) = args.first() else { continue };
        let op = |e| ScriptError::Op { line, source: e };
        let syntax = |m: &str| ScriptError::Syntax {
            line,
            message: m.to_string(),
        };
        match (cmd.as_str(), args.len()) {
            ("commit", _) => {}
            ("exit", _) => break,
            ("add", 3) => {
                if args[1] != p.name {
                    return Err(syntax("command for another package"));
                }
                ops::add(p, &args[2]).map_err(op)?;
            }
            (name, 2) => {
                let ptr = Ptr::parse(&args[1]).map_err(op)?;
                if ptr.package != p.name {
                    return Err(syntax("command for another package"));
                }
                let result = match name {
                    "set" => ops::set(p, &ptr),
                    "add_list" => ops::add_list(p, &ptr),
                    "del_list" => ops::del_list(p, &ptr),
                    "del" | "delete" => ops::delete(p, &ptr),
                    "ren" | "rename" => ops::rename(p, &ptr),
                    "reorder" => ops::reorder(p, &ptr),
                    _ => return Err(syntax("unknown command")),
                };
                result.map_err(op)?;
            }
            _ => return Err(syntax("unknown command or wrong number of arguments")),
        }
    }
    Ok(())
}

/// Emits commands and keeps a working copy in step, so that every section
/// reference is computed on the package as the router will see it.
struct Writer {
    work: Package,
    lines: Vec<String>,
    /// The first command that did not apply (a bug in the generator).
    error: Option<ScriptError>,
}

impl Writer {
    /// `pkg.name`, or `pkg.@type[i]` for an anonymous section whose type can
    /// be written in a reference (else its `cfgXXYYYY` id).
    fn reference(&self, name: &str) -> String {
        let r = match self.work.position(name) {
            Some(i)
                if self.work.sections[i].anonymous && simple_type(&self.work.sections[i].kind) =>
            {
                self.work.show_ref(i)
            }
            _ => name.to_string(),
        };
        format!("{}.{}", self.work.name, r)
    }

    fn emit(&mut self, line: String) {
        if self.error.is_some() {
            return;
        }
        match run_script(&mut self.work, &line) {
            Ok(()) => self.lines.push(line),
            Err(e) => self.error = Some(e),
        }
    }
}

fn simple_type(kind: &str) -> bool {
    kind.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// The `uci batch` script that turns `old` into (a config semantically
/// equal to) `new`: deletes, renames, option changes, new sections, then
/// reorders only where the order matters.
///
/// An error means the generator produced a command that does not apply; it
/// names the command.
pub fn batch_script(old: &Package, new: &Package) -> Result<String, ScriptError> {
    let pkg = new.name.clone();
    let m = match_sections(old, new);
    let mut w = Writer {
        work: Package {
            name: pkg.clone(),
            ..old.clone()
        },
        lines: Vec::new(),
        error: None,
    };
    // Track sections by their (unique) current name in the working copy.
    let mut name_of_old: Vec<String> = old.sections.iter().map(|s| s.name.clone()).collect();
    for &i in &m.removed {
        let r = w.reference(&name_of_old[i]);
        w.emit(format!("delete {r}"));
    }
    renames(&mut w, old, new, &m.pairs, &mut name_of_old);
    let mut target: Vec<Option<String>> = vec![None; new.sections.len()];
    for &(i, j) in &m.pairs {
        let (o, n) = (&old.sections[i], &new.sections[j]);
        if o.kind != n.kind {
            let r = w.reference(&name_of_old[i]);
            w.emit(format!("set {r}={}", quote(&n.kind)));
        }
        section_options(&mut w, &name_of_old[i], &pkg, o, n);
        target[j] = Some(name_of_old[i].clone());
    }
    for &j in &m.added {
        let n = &new.sections[j];
        let name = if n.anonymous || w.work.position(&n.name).is_some() {
            w.emit(format!("add {pkg} {}", quote(&n.kind)));
            w.work
                .sections
                .last()
                .map(|s| s.name.clone())
                .unwrap_or_default()
        } else {
            w.emit(format!("set {pkg}.{}={}", n.name, quote(&n.kind)));
            n.name.clone()
        };
        for o in &n.options {
            write_value(&mut w, &name, &o.name, &o.value);
        }
        target[j] = Some(name);
    }
    reorder(&mut w, &pkg, new, &target);
    if let Some(e) = w.error {
        return Err(e);
    }
    let mut out = w.lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Rename matched sections to their new names; when a name is held by a
/// section that is itself being renamed (a swap), move that one aside first.
fn renames(
    w: &mut Writer,
    old: &Package,
    new: &Package,
    pairs: &[(usize, usize)],
    name_of_old: &mut [String],
) {
    let mut pending: Vec<(usize, String)> = pairs
        .iter()
        .filter(|(i, j)| {
            let (o, n) = (&old.sections[*i], &new.sections[*j]);
            !n.anonymous && (o.anonymous || o.name != n.name)
        })
        .map(|(i, j)| (*i, new.sections[*j].name.clone()))
        .collect();
    let mut spare = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let mut k = 0;
        while k < pending.len() {
            let (i, to) = pending[k].clone();
            if w.work.position(&to).is_none() {
                let r = w.reference(&name_of_old[i]);
                w.emit(format!("rename {r}={to}"));
                name_of_old[i] = to;
                pending.remove(k);
            } else {
                k += 1;
            }
        }
        if pending.len() < before {
            continue;
        }
        // Every target is taken: move the holder of the first one aside.
        let holder = pending
            .iter()
            .position(|(i, _)| name_of_old[*i] == pending[0].1);
        let Some(h) = holder else {
            return; // held by a section that keeps its name: leave it
        };
        let temp = loop {
            spare += 1;
            let t = format!("herd_tmp{spare}");
            if w.work.position(&t).is_none() {
                break t;
            }
        };
        let i = pending[h].0;
        let r = w.reference(&name_of_old[i]);
        w.emit(format!("rename {r}={temp}"));
        name_of_old[i] = temp;
        if w.error.is_some() {
            return;
        }
    }
}

fn write_value(w: &mut Writer, section: &str, option: &str, v: &Value) {
    let r = w.reference(section);
    match v {
        Value::Single(s) => w.emit(format!("set {r}.{option}={}", quote(s))),
        Value::List(items) => {
            for item in items {
                w.emit(format!("add_list {r}.{option}={}", quote(item)));
            }
        }
    }
}

fn section_options(
    w: &mut Writer,
    section: &str,
    pkg: &str,
    o: &crate::Section,
    n: &crate::Section,
) {
    let same = |name: &str, a: &Value, b: &Value| {
        let kind = &n.kind;
        let c = |v: &Value| -> Vec<String> {
            let split = schema::is_list(pkg, kind, name);
            v.items()
                .iter()
                .flat_map(|i| {
                    if split {
                        i.split_whitespace().map(String::from).collect::<Vec<_>>()
                    } else {
                        vec![i.clone()]
                    }
                })
                .map(|i| schema::canonical_value(pkg, name, &i))
                .collect()
        };
        c(a) == c(b) && (a.is_list() == b.is_list() || schema::is_list(pkg, kind, name))
    };
    for opt in &o.options {
        if n.option(&opt.name).is_none() && !matches!(&opt.value, Value::Single(s) if s.is_empty())
        {
            let r = w.reference(section);
            w.emit(format!("delete {r}.{}", opt.name));
        }
    }
    for opt in &n.options {
        let old = o.get(&opt.name);
        if old.is_some_and(|ov| same(&opt.name, ov, &opt.value)) {
            continue;
        }
        let r = w.reference(section);
        match (old, &opt.value) {
            (Some(Value::List(a)), Value::List(b)) if b.starts_with(a) => {
                for item in &b[a.len()..] {
                    w.emit(format!("add_list {r}.{}={}", opt.name, quote(item)));
                }
            }
            (Some(Value::List(a)), Value::List(b)) if removal_only(a, b) => {
                let mut gone: Vec<&String> = a.iter().filter(|x| !b.contains(x)).collect();
                gone.dedup();
                for item in gone {
                    w.emit(format!("del_list {r}.{}={}", opt.name, quote(item)));
                }
            }
            (Some(Value::Single(a)), Value::List(b)) if b.first() == Some(a) => {
                for item in &b[1..] {
                    w.emit(format!("add_list {r}.{}={}", opt.name, quote(item)));
                }
            }
            (Some(Value::List(_)), _) | (Some(Value::Single(_)), Value::List(_)) => {
                w.emit(format!("delete {r}.{}", opt.name));
                write_value(w, section, &opt.name, &opt.value);
            }
            _ => write_value(w, section, &opt.name, &opt.value),
        }
    }
}

/// `b` is `a` with every occurrence of some values removed.
fn removal_only(a: &[String], b: &[String]) -> bool {
    let kept: Vec<&String> = a.iter().filter(|x| b.contains(x)).collect();
    kept.len() == b.len() && kept.iter().zip(b).all(|(x, y)| *x == y)
}

fn reorder(w: &mut Writer, pkg: &str, new: &Package, target: &[Option<String>]) {
    let ordered = |p: &Package| -> Vec<String> {
        p.sections
            .iter()
            .filter(|s| schema::order_matters(pkg, &s.kind))
            .map(|s| s.name.clone())
            .collect()
    };
    let want: Vec<String> = new
        .sections
        .iter()
        .zip(target)
        .filter(|(s, _)| schema::order_matters(pkg, &s.kind))
        .filter_map(|(_, t)| t.clone())
        .collect();
    if ordered(&w.work) == want {
        return;
    }
    let full: Vec<String> = target.iter().flatten().cloned().collect();
    for (pos, name) in full.iter().enumerate() {
        if w.work.sections.get(pos).map(|s| &s.name) != Some(name) {
            let r = w.reference(name);
            w.emit(format!("reorder {r}={pos}"));
        }
    }
}
