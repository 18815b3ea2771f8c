//! libuci's editing operations (`uci_set`, `uci_add_list`, `uci_delete`...)
//! on a [`Package`], each returning the [`Delta`] libuci would record.
//!
//! Pure: no files. [`crate::store`] persists the deltas, [`crate::cli`]
//! parses command lines into these calls.

use crate::delta::{Cmd, Delta};
use crate::model::{
    parse_extended, valid_name, valid_package_name, valid_type, Package, UciOption, Value,
};

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("'{0}' is not a valid reference: use PACKAGE[.SECTION[.OPTION]][=VALUE] with names of letters, digits and '_' (or @type[index] for the section)")]
    BadPointer(String),
    #[error("'{0}' not found: check the name with `uci show`")]
    NotFound(String),
    #[error("'{0}' is not valid here: {1}")]
    Invalid(String, &'static str),
}

/// A parsed `package.section.option=value` reference (libuci's `uci_ptr`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ptr {
    pub package: String,
    pub section: Option<String>,
    pub option: Option<String>,
    pub value: Option<String>,
    /// The section is an `@type[i]` reference.
    pub extended: bool,
}

impl Ptr {
    /// libuci's `uci_parse_ptr`.
    pub fn parse(text: &str) -> Result<Ptr, OpError> {
        let bad = || OpError::BadPointer(text.to_string());
        let (path, value) = match text.split_once('=') {
            Some((p, v)) => (p, Some(v.to_string())),
            None => (text, None),
        };
        let mut parts = path.split('.');
        let package = parts.next().ok_or_else(bad)?.to_string();
        let section = parts.next().map(String::from);
        let option = parts.next().map(String::from);
        if parts.next().is_some() || !valid_package_name(&package) {
            return Err(bad());
        }
        let extended = section.as_deref().is_some_and(|s| !valid_name(s));
        if option.as_deref().is_some_and(|o| !valid_name(o)) {
            return Err(bad());
        }
        Ok(Ptr {
            package,
            section,
            option,
            value,
            extended,
        })
    }

    /// The reference without its value, for messages.
    pub fn path(&self) -> String {
        let mut s = self.package.clone();
        for part in [&self.section, &self.option].into_iter().flatten() {
            s.push('.');
            s.push_str(part);
        }
        s
    }
}

/// Where a pointer landed in a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub section: Option<usize>,
    pub option: Option<usize>,
    /// Everything the pointer names exists (libuci's `UCI_LOOKUP_COMPLETE`).
    pub complete: bool,
}

/// libuci's `uci_lookup_ptr` with extended syntax.
pub fn lookup(p: &Package, ptr: &Ptr) -> Result<Found, OpError> {
    let Some(sname) = &ptr.section else {
        return Ok(Found {
            section: None,
            option: None,
            complete: true,
        });
    };
    let section = if ptr.extended {
        if parse_extended(sname).is_none() {
            return Err(OpError::BadPointer(ptr.path()));
        }
        p.resolve(sname)
    } else {
        p.position(sname)
    };
    let Some(si) = section else {
        return Ok(Found {
            section: None,
            option: None,
            complete: false,
        });
    };
    let Some(oname) = &ptr.option else {
        return Ok(Found {
            section: Some(si),
            option: None,
            complete: true,
        });
    };
    let option = p.sections[si].options.iter().position(|o| &o.name == oname);
    Ok(Found {
        section: Some(si),
        option,
        complete: option.is_some(),
    })
}

fn delta(cmd: Cmd, section: &str, option: Option<&str>, value: Option<&str>) -> Delta {
    Delta {
        cmd,
        section: section.to_string(),
        option: option.map(String::from),
        value: value.map(String::from),
    }
}

fn need_section(p: &Package, ptr: &Ptr, f: &Found) -> Result<usize, OpError> {
    f.section.ok_or_else(|| {
        OpError::NotFound(format!(
            "{}.{}",
            p.name,
            ptr.section.as_deref().unwrap_or("")
        ))
    })
}

/// `uci set`.
pub fn set(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let value = ptr
        .value
        .as_deref()
        .ok_or(OpError::Invalid(ptr.path(), "set needs =VALUE"))?;
    let Some(sname) = ptr.section.as_deref() else {
        return Err(OpError::Invalid(ptr.path(), "set needs a section"));
    };
    let f = lookup(p, ptr)?;
    if ptr.option.is_none() && !value.is_empty() && !valid_type(value) {
        return Err(OpError::Invalid(
            value.to_string(),
            "a section type is printable ASCII without spaces",
        ));
    }
    if value.is_empty() {
        if !f.complete {
            return Ok(None);
        }
        return delete(p, ptr);
    }
    match (&ptr.option, f.section) {
        (None, None) => {
            if ptr.extended {
                return Err(OpError::NotFound(ptr.path()));
            }
            p.add_named(value, sname);
            Ok(Some(delta(Cmd::Change, sname, None, Some(value))))
        }
        (None, Some(si)) => {
            let s = &mut p.sections[si];
            s.kind = value.to_string();
            Ok(Some(delta(Cmd::Change, &s.name.clone(), None, Some(value))))
        }
        (Some(_), None) => Err(OpError::NotFound(format!("{}.{}", p.name, sname))),
        (Some(oname), Some(si)) => {
            let s = &mut p.sections[si];
            if let Some(oi) = f.option {
                if s.options[oi].value.as_single() == Some(value) {
                    return Ok(None);
                }
                s.options.remove(oi);
            }
            s.options.push(UciOption {
                name: oname.clone(),
                value: Value::Single(value.to_string()),
            });
            Ok(Some(delta(
                Cmd::Change,
                &s.name.clone(),
                Some(oname),
                Some(value),
            )))
        }
    }
}

/// `uci add_list`.
pub fn add_list(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let (Some(oname), Some(value)) = (&ptr.option, &ptr.value) else {
        return Err(OpError::Invalid(
            ptr.path(),
            "add_list needs PACKAGE.SECTION.OPTION=VALUE",
        ));
    };
    let f = lookup(p, ptr)?;
    let si = need_section(p, ptr, &f)?;
    let s = &mut p.sections[si];
    match f.option {
        Some(oi) => match &mut s.options[oi].value {
            Value::List(l) => l.push(value.clone()),
            Value::Single(_) => {
                let old = s.options.remove(oi);
                let first = old.value.items()[0].clone();
                s.options.push(UciOption {
                    name: oname.clone(),
                    value: Value::List(vec![first, value.clone()]),
                });
            }
        },
        None => s.options.push(UciOption {
            name: oname.clone(),
            value: Value::List(vec![value.clone()]),
        }),
    }
    Ok(Some(delta(
        Cmd::ListAdd,
        &s.name.clone(),
        Some(oname),
        Some(value),
    )))
}

/// `uci del_list`: removes every item equal to the value.
pub fn del_list(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let (Some(oname), Some(value)) = (&ptr.option, &ptr.value) else {
        return Err(OpError::Invalid(
            ptr.path(),
            "del_list needs PACKAGE.SECTION.OPTION=VALUE",
        ));
    };
    let f = lookup(p, ptr)?;
    let si = need_section(p, ptr, &f)?;
    let Some(oi) = f.option else { return Ok(None) };
    let s = &mut p.sections[si];
    let Value::List(items) = &mut s.options[oi].value else {
        return Ok(None);
    };
    items.retain(|i| i != value);
    Ok(Some(delta(
        Cmd::ListDel,
        &s.name.clone(),
        Some(oname),
        Some(value),
    )))
}

/// `uci delete`: a section, an option, or (`=N`) the N-th item of a list.
pub fn delete(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let f = lookup(p, ptr)?;
    let Some(si) = f.section.filter(|_| f.complete) else {
        return Err(OpError::NotFound(ptr.path()));
    };
    let sname = p.sections[si].name.clone();
    if let (Some(oi), Some(v)) = (f.option, ptr.value.as_deref().filter(|v| !v.is_empty())) {
        if let Value::List(items) = &mut p.sections[si].options[oi].value {
            let index = leading_int(v).ok_or(OpError::Invalid(
                v.to_string(),
                "the list index must be a number",
            ))?;
            if index >= 0 && (index as usize) < items.len() {
                items.remove(index as usize);
                return Ok(Some(delta(
                    Cmd::Remove,
                    &sname,
                    ptr.option.as_deref(),
                    Some(v),
                )));
            }
            return Ok(None);
        }
    }
    match f.option {
        Some(oi) => {
            p.sections[si].options.remove(oi);
            Ok(Some(delta(
                Cmd::Remove,
                &sname,
                ptr.option.as_deref(),
                None,
            )))
        }
        None => {
            p.sections.remove(si);
            Ok(Some(delta(Cmd::Remove, &sname, None, None)))
        }
    }
}

/// `uci rename`: a section (which then counts as named) or an option.
pub fn rename(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let value = ptr
        .value
        .as_deref()
        .ok_or(OpError::Invalid(ptr.path(), "rename needs =NEWNAME"))?;
    if !valid_name(value) {
        return Err(OpError::Invalid(
            value.to_string(),
            "names are letters, digits and '_'",
        ));
    }
    let f = lookup(p, ptr)?;
    let Some(si) = f.section.filter(|_| f.complete) else {
        return Err(OpError::NotFound(ptr.path()));
    };
    let sname = p.sections[si].name.clone();
    let s = &mut p.sections[si];
    match f.option {
        Some(oi) => s.options[oi].name = value.to_string(),
        None => {
            s.name = value.to_string();
            s.anonymous = false;
        }
    }
    Ok(Some(delta(
        Cmd::Rename,
        &sname,
        ptr.option.as_deref(),
        Some(value),
    )))
}

/// `uci reorder`: move a section to a position (0 = first).
pub fn reorder(p: &mut Package, ptr: &Ptr) -> Result<Option<Delta>, OpError> {
    let f = lookup(p, ptr)?;
    let (Some(si), Some(v)) = (f.section, ptr.value.as_deref()) else {
        return Err(OpError::NotFound(ptr.path()));
    };
    let pos = leading_uint(v);
    let s = p.sections.remove(si);
    let name = s.name.clone();
    let at = pos.min(p.sections.len());
    p.sections.insert(at, s);
    Ok(Some(delta(
        Cmd::Reorder,
        &name,
        None,
        Some(&pos.to_string()),
    )))
}

/// `uci add PACKAGE TYPE`: a new anonymous section; returns its id.
pub fn add(p: &mut Package, kind: &str) -> Result<(String, Delta), OpError> {
    if !valid_type(kind) {
        return Err(OpError::Invalid(
            kind.to_string(),
            "a section type is printable ASCII without spaces",
        ));
    }
    let name = p.add_anonymous(kind).name.clone();
    let d = delta(Cmd::Add, &name, None, Some(kind));
    Ok((name, d))
}

/// Apply one recorded delta (libuci's `uci_parse_delta_line`).
pub fn apply(p: &mut Package, d: &Delta) -> Result<(), OpError> {
    let ptr = Ptr {
        package: p.name.clone(),
        section: Some(d.section.clone()),
        option: d.option.clone(),
        value: d.value.clone(),
        extended: false,
    };
    match d.cmd {
        Cmd::Reorder => reorder(p, &ptr).map(drop),
        Cmd::Rename => rename(p, &ptr).map(drop),
        Cmd::Remove => delete(p, &ptr).map(drop),
        Cmd::ListAdd => add_list(p, &ptr).map(drop),
        Cmd::ListDel => del_list(p, &ptr).map(drop),
        Cmd::Add | Cmd::Change => {
            set(p, &ptr)?;
            if d.cmd == Cmd::Add && d.option.is_none() {
                if let Some(s) = p.section_mut(&d.section) {
                    s.anonymous = true;
                }
            }
            Ok(())
        }
    }
}

/// C `sscanf("%d")`: an optionally signed leading integer.
fn leading_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// C `strtoul(.., 10)` for a position: leading digits, else 0.
fn leading_uint(s: &str) -> usize {
    let t = s.trim_start();
    let end = t.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return 0;
    }
    t[..end].parse().unwrap_or(usize::MAX)
}
