//! From the router's current configuration to the rendered one: the
//! semantic changes (sections and options, not lines) and the `uci batch`
//! script that makes them.
//!
//! Sections are matched by name (libuci names anonymous sections too, and
//! rendering keeps the names of the sections it updates). The script
//! addresses anonymous sections as `@type[i]` counted in the current file:
//! it changes options first, deletes sections from the last to the first,
//! and adds new sections last (`@type[-1]`), so no index moves under it.

use herd_uci::{quote, Package, Section, Value};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    AddSection {
        package: String,
        section: Section,
    },
    DeleteSection {
        package: String,
        reference: String,
        index: usize,
        section: Section,
    },
    SetOption {
        package: String,
        reference: String,
        label: String,
        option: String,
        old: Option<Value>,
        new: Value,
    },
    DeleteOption {
        package: String,
        reference: String,
        label: String,
        option: String,
        old: Value,
    },
}

/// `@type[i]` for anonymous sections, the name otherwise.
fn reference(p: &Package, index: usize) -> String {
    let s = &p.sections[index];
    if !s.anonymous {
        return s.name.clone();
    }
    let i = p.sections[..index]
        .iter()
        .filter(|x| x.kind == s.kind)
        .count();
    format!("@{}[{i}]", s.kind)
}

fn label(s: &Section) -> String {
    match s.get_single("name") {
        Some(n) if s.anonymous => format!("{} '{n}'", s.kind),
        _ => s.kind.clone(),
    }
}

/// The changes that turn `current` into `desired` (one package).
pub fn changes(current: &Package, desired: &Package) -> Vec<Change> {
    let pkg = desired.name.clone();
    let mut out = Vec::new();
    for (i, cur) in current.sections.iter().enumerate() {
        let Some(want) = desired.sections.iter().find(|s| s.name == cur.name) else {
            continue;
        };
        let r = reference(current, i);
        for o in &want.options {
            let old = cur.get(&o.name);
            if old != Some(&o.value) {
                out.push(Change::SetOption {
                    package: pkg.clone(),
                    reference: r.clone(),
                    label: label(want),
                    option: o.name.clone(),
                    old: old.cloned(),
                    new: o.value.clone(),
                });
            }
        }
        for o in &cur.options {
            if want.get(&o.name).is_none() {
                out.push(Change::DeleteOption {
                    package: pkg.clone(),
                    reference: r.clone(),
                    label: label(cur),
                    option: o.name.clone(),
                    old: o.value.clone(),
                });
            }
        }
    }
    for (i, cur) in current.sections.iter().enumerate().rev() {
        if !desired.sections.iter().any(|s| s.name == cur.name) {
            out.push(Change::DeleteSection {
                package: pkg.clone(),
                reference: reference(current, i),
                index: i,
                section: cur.clone(),
            });
        }
    }
    for want in &desired.sections {
        if !current.sections.iter().any(|s| s.name == want.name) {
            out.push(Change::AddSection {
                package: pkg.clone(),
                section: want.clone(),
            });
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Single(s) => quote(s),
        Value::List(l) => format!(
            "[{}]",
            l.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A readable semantic diff.
pub fn diff_text(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let _ = match c {
            Change::AddSection { package, section } => {
                let name = if section.anonymous {
                    String::new()
                } else {
                    format!(" '{}'", section.name)
                };
                let _ = writeln!(out, "+ {package}: config {}{name}", section.kind);
                for o in &section.options {
                    let _ = writeln!(out, "+     {} = {}", o.name, value_text(&o.value));
                }
                Ok(())
            }
            Change::DeleteSection {
                package,
                reference,
                section,
                ..
            } => writeln!(out, "- {package}.{reference} ({})", label(section)),
            Change::SetOption {
                package,
                reference,
                label,
                option,
                old,
                new,
            } => match old {
                Some(old) => writeln!(
                    out,
                    "~ {package}.{reference}.{option} ({label}): {} -> {}",
                    value_text(old),
                    value_text(new)
                ),
                None => writeln!(
                    out,
                    "~ {package}.{reference}.{option} ({label}): (unset) -> {}",
                    value_text(new)
                ),
            },
            Change::DeleteOption {
                package,
                reference,
                label,
                option,
                old,
            } => writeln!(
                out,
                "~ {package}.{reference}.{option} ({label}): {} -> (unset)",
                value_text(old)
            ),
        };
    }
    out
}

fn set_value(out: &mut String, target: &str, v: &Value) {
    match v {
        Value::Single(s) => {
            let _ = writeln!(out, "set {target}={}", quote(s));
        }
        Value::List(items) => {
            let _ = writeln!(out, "delete {target}");
            for i in items {
                let _ = writeln!(out, "add_list {target}={}", quote(i));
            }
        }
    }
}

/// The `uci batch` script (without `commit`: `apply` commits separately so
/// that a failure before it can be reverted).
pub fn batch_script(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        match c {
            Change::SetOption {
                package,
                reference,
                option,
                new,
                old,
                ..
            } => {
                let target = format!("{package}.{reference}.{option}");
                if matches!((old, new), (Some(Value::Single(_)), Value::List(_))) {
                    let _ = writeln!(out, "delete {target}");
                }
                set_value(&mut out, &target, new);
            }
            Change::DeleteOption {
                package,
                reference,
                option,
                ..
            } => {
                let _ = writeln!(out, "delete {package}.{reference}.{option}");
            }
            Change::DeleteSection {
                package, reference, ..
            } => {
                let _ = writeln!(out, "delete {package}.{reference}");
            }
            Change::AddSection { package, section } => {
                let r = if section.anonymous {
                    let _ = writeln!(out, "add {package} {}", section.kind);
                    format!("@{}[-1]", section.kind)
                } else {
                    let _ = writeln!(out, "set {package}.{}={}", section.name, section.kind);
                    section.name.clone()
                };
                for o in &section.options {
                    set_value(&mut out, &format!("{package}.{r}.{}", o.name), &o.value);
                }
            }
        }
    }
    out
}
