//! Staged changes, as libuci keeps them in `/tmp/.uci/<package>`: one line
//! per change, `<prefix><package>.<section>[.<option>][='<value>']`.

use crate::export::quote;
use crate::model::{valid_name, valid_package_name};
use crate::tokenize::{batch_args, LineReader};

/// The kind of a staged change and its prefix in the delta file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `set` (no prefix).
    Change,
    /// `uci add`: an anonymous section (`+`).
    Add,
    /// `delete` (`-`).
    Remove,
    /// `rename` (`@`).
    Rename,
    /// `reorder` (`^`).
    Reorder,
    /// `add_list` (`|`).
    ListAdd,
    /// `del_list` (`~`).
    ListDel,
}

impl Cmd {
    fn prefix(self) -> &'static str {
        match self {
            Cmd::Change => "",
            Cmd::Add => "+",
            Cmd::Remove => "-",
            Cmd::Rename => "@",
            Cmd::Reorder => "^",
            Cmd::ListAdd => "|",
            Cmd::ListDel => "~",
        }
    }
}

/// One staged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub cmd: Cmd,
    pub section: String,
    pub option: Option<String>,
    pub value: Option<String>,
}

impl Delta {
    /// The line written to the delta file (without the newline).
    pub fn to_line(&self, package: &str) -> String {
        let mut s = format!("{}{}.{}", self.cmd.prefix(), package, self.section);
        if let Some(o) = &self.option {
            s.push('.');
            s.push_str(o);
        }
        if let Some(v) = &self.value {
            s.push('=');
            s.push_str(&quote(v));
        }
        s
    }

    /// The line `uci changes` prints (without the newline).
    pub fn to_change_line(&self, package: &str) -> String {
        let prefix = if self.cmd == Cmd::Remove { "-" } else { "" };
        let mut s = format!("{prefix}{package}.{}", self.section);
        if let Some(o) = &self.option {
            s.push('.');
            s.push_str(o);
        }
        if self.cmd != Cmd::Remove {
            let op = match self.cmd {
                Cmd::ListAdd => "+=",
                Cmd::ListDel => "-=",
                _ => "=",
            };
            s.push_str(op);
            s.push_str(&quote(self.value.as_deref().unwrap_or("")));
        }
        s
    }
}

/// Parse a delta file for `package`. Malformed entries are skipped, as
/// libuci skips them; they are returned as the second element.
pub fn parse_deltas(input: &[u8], package: &str) -> (Vec<Delta>, usize) {
    let mut reader = LineReader::new(input);
    let mut out = Vec::new();
    let mut bad = 0;
    while let Some(args) = batch_args(&mut reader, 1) {
        match args {
            Ok(args) if args.is_empty() => {}
            Ok(mut args) => match String::from_utf8(args.remove(0))
                .ok()
                .and_then(|line| parse_entry(&line, package))
            {
                Some(d) => out.push(d),
                None => bad += 1,
            },
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

fn parse_entry(line: &str, package: &str) -> Option<Delta> {
    let (cmd, rest) = match line.as_bytes().first()? {
        b'^' => (Cmd::Reorder, &line[1..]),
        b'-' => (Cmd::Remove, &line[1..]),
        b'@' => (Cmd::Rename, &line[1..]),
        b'+' => (Cmd::Add, &line[1..]),
        b'|' => (Cmd::ListAdd, &line[1..]),
        b'~' => (Cmd::ListDel, &line[1..]),
        _ => (Cmd::Change, line),
    };
    let (path, value) = match rest.split_once('=') {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (rest, None),
    };
    let mut parts = path.split('.');
    let pkg = parts.next()?;
    let section = parts.next()?.to_string();
    let option = parts.next().map(String::from);
    if parts.next().is_some() || pkg != package || !valid_package_name(pkg) || !valid_name(&section)
    {
        return None;
    }
    if option.as_deref().is_some_and(|o| !valid_name(o)) {
        return None;
    }
    let ok = match cmd {
        Cmd::Remove => true,
        Cmd::Reorder => value.is_some() && option.is_none(),
        Cmd::Rename => value.as_deref().is_some_and(valid_name),
        Cmd::ListAdd | Cmd::ListDel => option.is_some() && value.is_some(),
        Cmd::Add | Cmd::Change => value.is_some(),
    };
    ok.then_some(Delta {
        cmd,
        section,
        option,
        value,
    })
}
