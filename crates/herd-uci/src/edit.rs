//! Format-preserving editing: change a hand-written file so that it parses
//! to a target config, touching only the lines that must change. Comments,
//! blank lines, indentation, quoting and the order of everything else stay
//! as they were — libuci cannot do this; `uci commit` rewrites the file.
//!
//! Rules: an option whose value is unchanged (even if spelled differently,
//! e.g. `yes` for `1`) keeps its lines; a changed option is rewritten in
//! place (all its lines replaced by the new ones where the last one was); a
//! new option goes after the last line of its section, indented like its
//! neighbours; a removed option or section loses its lines; a new section
//! goes after the section that precedes it in the target, or at the end.
//! Existing sections are not moved. When a statement to change shares its
//! line with another (`config a; option b c`), the file is rewritten as
//! `uci commit` would write it and [`Edited::rewritten`] says so.

use crate::diff::match_sections;
use crate::export::{commit_text, quote};
use crate::model::{Package, Section, Value};
use crate::parse::{parse_with_layout, ParseError, Stmt};
use crate::schema;
use crate::script::{run_script, ScriptError};

/// The edited text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// True when the whole file had to be rewritten in `uci commit` format.
    pub rewritten: bool,
}

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("the batch script does not apply: {0}")]
    Script(#[from] ScriptError),
}

/// Run a `uci batch` script against a hand-written file, keeping its format.
pub fn edit_with_script(original: &str, package: &str, script: &str) -> Result<Edited, EditError> {
    let (mut target, _) = parse_with_layout(original.as_bytes(), package)?;
    run_script(&mut target, script)?;
    Ok(edit(original, &target)?)
}

/// Rewrite `original` so that it parses to `target` (semantically), changing
/// only the lines it must.
pub fn edit(original: &str, target: &Package) -> Result<Edited, ParseError> {
    let (old, layout) = parse_with_layout(original.as_bytes(), &target.name)?;
    let mut edits = Edits::default();
    let shared = |st: &Stmt| layout.iter().filter(|o| o.start == st.start).count() > 1;
    let mut needs_rewrite = false;
    let m = match_for_edit(&old, target);
    let stmts_of = |section: usize| layout.iter().filter(move |s| s.section == section);

    for &i in &m.removed {
        for st in stmts_of(i) {
            needs_rewrite |= shared(st);
            edits.delete(st.start, st.end);
        }
    }
    for &(i, j) in &m.pairs {
        let (o, n) = (&old.sections[i], &target.sections[j]);
        let mut touched = false;
        let header_changed =
            o.kind != n.kind || (!n.anonymous && (o.anonymous || o.name != n.name));
        if header_changed {
            for st in stmts_of(i).filter(|s| s.option.is_none()) {
                touched |= shared(st);
                let indent = indent_at(original, st.start);
                edits.replace(st.start, st.end, format!("{indent}{}", header(n)));
            }
        }
        let last_end = stmts_of(i).map(|s| s.end).max().unwrap_or(original.len());
        let option_indent = stmts_of(i)
            .rfind(|s| s.option.is_some())
            .map_or_else(|| "\t".to_string(), |s| indent_at(original, s.start));
        for opt in &o.options {
            if n.option(&opt.name).is_none() {
                for st in stmts_of(i).filter(|s| s.option.as_deref() == Some(&opt.name)) {
                    touched |= shared(st);
                    edits.delete(st.start, st.end);
                }
            }
        }
        for opt in &n.options {
            let old_value = o.get(&opt.name);
            if old_value
                .is_some_and(|v| same_value(&target.name, &n.kind, &opt.name, v, &opt.value))
            {
                continue;
            }
            let lines: Vec<&Stmt> = stmts_of(i)
                .filter(|s| s.option.as_deref() == Some(&opt.name))
                .collect();
            match (old_value, lines.last()) {
                (Some(Value::List(a)), Some(last)) if matches!(&opt.value, Value::List(b) if b.starts_with(a)) =>
                {
                    let Value::List(b) = &opt.value else {
                        unreachable!("matched above")
                    };
                    let indent = indent_at(original, last.start);
                    let text: String = b[a.len()..]
                        .iter()
                        .map(|item| format!("{indent}list {} {}\n", opt.name, quote(item)))
                        .collect();
                    edits.insert(last.end, text);
                }
                (_, Some(last)) => {
                    let indent = indent_at(original, last.start);
                    for st in &lines {
                        touched |= shared(st);
                        edits.delete(st.start, st.end);
                    }
                    edits.insert(last.end, value_lines(&indent, &opt.name, &opt.value));
                }
                (_, None) => {
                    edits.insert(last_end, value_lines(&option_indent, &opt.name, &opt.value))
                }
            }
        }
        needs_rewrite |= touched;
    }
    // New sections: after the section before them in the target.
    let mut end_of_target: Vec<Option<usize>> = vec![None; target.sections.len()];
    for &(i, j) in &m.pairs {
        end_of_target[j] = stmts_of(i).map(|s| s.end).max();
    }
    for &j in &m.added {
        let at = (0..j)
            .rev()
            .find_map(|k| end_of_target[k])
            .unwrap_or(original.len());
        let mut text = String::new();
        if at == original.len() && !original.is_empty() && !original.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&header(&target.sections[j]));
        for opt in &target.sections[j].options {
            text.push_str(&value_lines("\t", &opt.name, &opt.value));
        }
        edits.insert(at, text);
        end_of_target[j] = Some(at);
    }
    if needs_rewrite {
        return Ok(Edited {
            text: commit_text(target),
            rewritten: true,
        });
    }
    let text = edits.apply(original);
    // The edit must mean the target; if it does not (a case this editor does
    // not handle), fall back to a full rewrite rather than write wrong config.
    let ok = parse_with_layout(text.as_bytes(), &target.name)
        .map(|(p, _)| crate::diff::diff(&p, target).is_empty())
        .unwrap_or(false);
    if !ok {
        return Ok(Edited {
            text: commit_text(target),
            rewritten: true,
        });
    }
    Ok(Edited {
        text,
        rewritten: false,
    })
}

/// Sections keep their names (or `cfgXXYYYY` ids) through a batch script,
/// so match by name first; whatever is left is matched semantically.
fn match_for_edit(old: &Package, target: &Package) -> crate::diff::Matching {
    let mut m = crate::diff::Matching::default();
    let mut used = vec![false; old.sections.len()];
    let mut left_new = Vec::new();
    for (j, n) in target.sections.iter().enumerate() {
        match old
            .sections
            .iter()
            .enumerate()
            .position(|(i, o)| !used[i] && o.name == n.name)
        {
            Some(i) => {
                used[i] = true;
                m.pairs.push((i, j));
            }
            None => left_new.push(j),
        }
    }
    let left_old: Vec<usize> = (0..old.sections.len()).filter(|i| !used[*i]).collect();
    let sub = |p: &Package, idx: &[usize]| Package {
        name: p.name.clone(),
        sections: idx.iter().map(|&i| p.sections[i].clone()).collect(),
        allocated: p.allocated,
    };
    let rest = match_sections(&sub(old, &left_old), &sub(target, &left_new));
    m.pairs
        .extend(rest.pairs.iter().map(|&(i, j)| (left_old[i], left_new[j])));
    m.removed = rest.removed.iter().map(|&i| left_old[i]).collect();
    m.added = rest.added.iter().map(|&j| left_new[j]).collect();
    m.added.sort_unstable();
    m
}

fn same_value(pkg: &str, kind: &str, option: &str, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let split = schema::is_list(pkg, kind, option);
    let canon = |v: &Value| -> Vec<String> {
        v.items()
            .iter()
            .flat_map(|i| {
                if split {
                    i.split_whitespace().map(String::from).collect::<Vec<_>>()
                } else {
                    vec![i.clone()]
                }
            })
            .map(|i| schema::canonical_value(pkg, option, &i))
            .collect()
    };
    canon(a) == canon(b) && (a.is_list() == b.is_list() || split)
}

fn header(s: &Section) -> String {
    if s.anonymous {
        format!("config {}\n", quote_word(&s.kind))
    } else {
        format!("config {} {}\n", quote_word(&s.kind), quote(&s.name))
    }
}

/// Types are written bare when they can be (as `uci export` does), quoted
/// when they hold characters the parser treats specially.
fn quote_word(s: &str) -> String {
    if s.bytes()
        .any(|c| matches!(c, b'\'' | b'"' | b'\\' | b'#' | b';'))
    {
        quote(s)
    } else {
        s.to_string()
    }
}

fn value_lines(indent: &str, name: &str, v: &Value) -> String {
    match v {
        Value::Single(s) => format!("{indent}option {name} {}\n", quote(s)),
        Value::List(items) => items
            .iter()
            .map(|i| format!("{indent}list {name} {}\n", quote(i)))
            .collect(),
    }
}

/// The blanks at the start of the line at `offset`.
fn indent_at(text: &str, offset: usize) -> String {
    text[offset..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// Byte-range edits on the original text, applied in one pass.
#[derive(Default)]
struct Edits {
    deletes: Vec<(usize, usize)>,
    /// (offset, order of insertion, text)
    inserts: Vec<(usize, usize, String)>,
}

impl Edits {
    fn delete(&mut self, start: usize, end: usize) {
        self.deletes.push((start, end));
    }

    fn insert(&mut self, at: usize, text: String) {
        let n = self.inserts.len();
        self.inserts.push((at, n, text));
    }

    fn replace(&mut self, start: usize, end: usize, text: String) {
        self.delete(start, end);
        self.insert(end, text);
    }

    fn apply(mut self, original: &str) -> String {
        self.deletes.sort_unstable();
        self.deletes.dedup();
        self.inserts.sort_by_key(|(at, n, _)| (*at, *n));
        let mut out = String::with_capacity(original.len() + 256);
        let mut pos = 0;
        let mut del = self.deletes.iter().peekable();
        let mut ins = self.inserts.iter().peekable();
        loop {
            let next_del = del.peek().map(|d| d.0);
            let next_ins = ins.peek().map(|i| i.0);
            let next = match (next_del, next_ins) {
                (None, None) => break,
                (Some(d), Some(i)) => d.min(i),
                (Some(d), None) => d,
                (None, Some(i)) => i,
            };
            if next > pos {
                out.push_str(&original[pos..next]);
                pos = next;
            }
            if next_ins == Some(next) {
                // Insertions at an offset go before a deletion starting there.
                let (_, _, text) = ins.next().expect("peeked");
                out.push_str(text);
            } else {
                let (start, end) = *del.next().expect("peeked");
                pos = pos.max(end).max(start);
            }
        }
        if pos < original.len() {
            out.push_str(&original[pos..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAND: &str = "# my router
config zone
\toption name\t\tlan   # the inside
\tlist   network\t'lan'
\toption input\tACCEPT

config zone
\toption name wan
\toption masq yes

# rules
config rule
\toption name 'Allow-Ping'
\toption target ACCEPT
";

    fn edited(script: &str) -> Edited {
        edit_with_script(HAND, "firewall", script).expect("edit")
    }

    #[test]
    fn changing_one_option_rewrites_only_its_line() {
        let e = edited("set firewall.@zone[1].masq=0\n");
        assert!(!e.rewritten);
        assert_eq!(
            e.text,
            HAND.replace("\toption masq yes\n", "\toption masq '0'\n")
        );
    }

    #[test]
    fn new_option_goes_after_the_section_with_its_indent() {
        let e = edited("set firewall.@rule[0].dest_ip=10.0.0.1\n");
        assert_eq!(e.text, format!("{HAND}\toption dest_ip '10.0.0.1'\n"));
    }

    #[test]
    fn appended_list_items_keep_existing_lines() {
        let e = edited("add_list firewall.@zone[0].network=guest\n");
        assert_eq!(
            e.text,
            HAND.replace(
                "\tlist   network\t'lan'\n",
                "\tlist   network\t'lan'\n\tlist network 'guest'\n"
            )
        );
    }

    #[test]
    fn deleted_section_loses_only_its_lines() {
        let e = edited("delete firewall.@zone[1]\n");
        assert_eq!(
            e.text,
            HAND.replace("config zone\n\toption name wan\n\toption masq yes\n", "")
        );
    }

    #[test]
    fn new_section_is_appended_in_commit_format() {
        let e = edited("add firewall forwarding\nset firewall.@forwarding[0].src=lan\n");
        assert_eq!(
            e.text,
            format!("{HAND}\nconfig forwarding\n\toption src 'lan'\n")
        );
    }

    #[test]
    fn same_value_in_another_spelling_is_left_alone() {
        // `yes` and `1` are the same boolean: nothing to change.
        let e = edited("set firewall.@zone[1].masq=1\n");
        assert_eq!(e.text, HAND);
    }

    #[test]
    fn shared_lines_fall_back_to_a_full_rewrite() {
        let text = "config zone 'z'; option name lan\n";
        let e =
            edit_with_script(text, "firewall", "set firewall.@zone[0].name=wan\n").expect("edit");
        assert!(e.rewritten);
        assert_eq!(e.text, "\nconfig zone 'z'\n\toption name 'wan'\n\n");
    }
}
