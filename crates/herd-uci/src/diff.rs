//! Semantic diff of two versions of one package.
//!
//! Quoting, whitespace, comments and blank lines never show (both sides are
//! parsed first). Values are compared in canonical form ([`schema`]):
//! `option network 'lan wan'` equals two `list network` lines where the
//! option is list-typed, `yes` equals `1` for booleans, `accept` equals
//! `ACCEPT` for firewall targets. Anonymous sections are matched by their
//! key options (a zone's or rule's `name`) or, failing that, by content,
//! never by their `cfgXXYYYY` id. Sections whose order matters (firewall
//! rules) are reported as moved when their relative order changes.

use crate::export::quote;
use crate::model::{Package, Section, Value};
use crate::schema;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// What changed between two versions of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub package: String,
    pub sections: Vec<SectionChange>,
}

/// How one section is identified in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionId {
    #[serde(rename = "type")]
    pub kind: String,
    /// The section name, `None` for anonymous sections.
    pub name: Option<String>,
    /// Human label: key options (`name 'wan'`) or `@type[i]`.
    pub label: String,
}

/// One section added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SectionChange {
    Added {
        section: SectionId,
        options: Vec<OptionValue>,
        /// The section it follows in the new file (for order-sensitive types).
        after: Option<String>,
    },
    Removed {
        section: SectionId,
        options: Vec<OptionValue>,
    },
    Changed {
        section: SectionId,
        /// The old name, when the section was renamed (or was anonymous).
        renamed_from: Option<String>,
        /// The old type, when it changed.
        old_type: Option<String>,
        options: Vec<OptionChange>,
        /// Its position relative to other sections of its type changed.
        moved: bool,
    },
}

/// An option of an added or removed section, with its items as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionValue {
    pub name: String,
    pub value: Vec<String>,
    pub list: bool,
}

/// One option added, removed or changed (values are the items as written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum OptionChange {
    Added {
        name: String,
        value: Vec<String>,
        list: bool,
    },
    Removed {
        name: String,
        value: Vec<String>,
        list: bool,
    },
    Changed {
        name: String,
        old: Vec<String>,
        new: Vec<String>,
        list: bool,
    },
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// The canonical value of an option: what the diff compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Canon {
    Single(String),
    List(Vec<String>),
}

fn canon(package: &str, kind: &str, option: &str, v: &Value) -> Canon {
    let c = |s: &str| schema::canonical_value(package, option, s);
    if schema::is_list(package, kind, option) {
        let items = v
            .items()
            .iter()
            .flat_map(|i| i.split_whitespace())
            .map(c)
            .collect();
        return Canon::List(items);
    }
    match v {
        Value::Single(s) => Canon::Single(c(s)),
        Value::List(l) => Canon::List(l.iter().map(|s| c(s)).collect()),
    }
}

fn canon_section(package: &str, s: &Section) -> BTreeMap<String, Canon> {
    s.options
        .iter()
        .map(|o| (o.name.clone(), canon(package, &s.kind, &o.name, &o.value)))
        .filter(|(_, v)| !matches!(v, Canon::Single(s) if s.is_empty()))
        .collect()
}

/// Which old section became which new one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matching {
    /// (old index, new index), in new order.
    pub pairs: Vec<(usize, usize)>,
    pub removed: Vec<usize>,
    pub added: Vec<usize>,
}

fn identity(package: &str, s: &Section) -> Option<String> {
    let keys = schema::key_options(package, &s.kind);
    if !keys.is_empty() {
        let values: Option<Vec<String>> = keys
            .iter()
            .map(|k| {
                s.get_single(k)
                    .map(|v| format!("{k}={}", schema::canonical_value(package, k, v)))
            })
            .collect();
        if let Some(values) = values {
            return Some(format!("{}|{}", s.kind, values.join(",")));
        }
    }
    (!s.anonymous).then(|| format!("{}|@{}", s.kind, s.name))
}

pub(crate) fn match_sections(old: &Package, new: &Package) -> Matching {
    let pkg = new.name.as_str();
    let old_canon: Vec<_> = old.sections.iter().map(|s| canon_section(pkg, s)).collect();
    let new_canon: Vec<_> = new.sections.iter().map(|s| canon_section(pkg, s)).collect();
    let old_id: Vec<_> = old.sections.iter().map(|s| identity(pkg, s)).collect();
    let new_id: Vec<_> = new.sections.iter().map(|s| identity(pkg, s)).collect();

    let mut old_of: Vec<Option<usize>> = vec![None; new.sections.len()];
    let mut used = vec![false; old.sections.len()];

    // 1. Same identity (key options or section name), in order.
    let mut by_id: HashMap<&str, VecDeque<usize>> = HashMap::new();
    for (i, id) in old_id.iter().enumerate() {
        if let Some(id) = id {
            by_id.entry(id.as_str()).or_default().push_back(i);
        }
    }
    for (j, id) in new_id.iter().enumerate() {
        if let Some(i) = id
            .as_deref()
            .and_then(|id| by_id.get_mut(id))
            .and_then(VecDeque::pop_front)
        {
            old_of[j] = Some(i);
            used[i] = true;
        }
    }
    // 2. Same type and same content.
    let mut by_content: HashMap<(&str, &BTreeMap<String, Canon>), VecDeque<usize>> = HashMap::new();
    for (i, s) in old.sections.iter().enumerate() {
        if !used[i] && old_id[i].is_none() {
            by_content
                .entry((s.kind.as_str(), &old_canon[i]))
                .or_default()
                .push_back(i);
        }
    }
    for (j, s) in new.sections.iter().enumerate() {
        if old_of[j].is_some() || new_id[j].is_some() {
            continue;
        }
        if let Some(i) = by_content
            .get_mut(&(s.kind.as_str(), &new_canon[j]))
            .and_then(VecDeque::pop_front)
        {
            old_of[j] = Some(i);
            used[i] = true;
        }
    }
    // 3. Same type, no identity on either side, most options in common.
    for (j, s) in new.sections.iter().enumerate() {
        if old_of[j].is_some() || new_id[j].is_some() {
            continue;
        }
        let best = old
            .sections
            .iter()
            .enumerate()
            .filter(|(i, o)| !used[*i] && old_id[*i].is_none() && o.kind == s.kind)
            .map(|(i, _)| (similarity(&old_canon[i], &new_canon[j]), i))
            .filter(|(score, _)| *score * 2 >= old_canon_len(&old_canon, &new_canon, j))
            .max_by_key(|(score, i)| (*score, std::cmp::Reverse(*i)));
        if let Some((_, i)) = best {
            old_of[j] = Some(i);
            used[i] = true;
        }
    }
    let mut m = Matching::default();
    for (j, o) in old_of.iter().enumerate() {
        match o {
            Some(i) => m.pairs.push((*i, j)),
            None => m.added.push(j),
        }
    }
    m.removed = (0..old.sections.len()).filter(|i| !used[*i]).collect();
    m
}

fn old_canon_len(
    _old: &[BTreeMap<String, Canon>],
    new: &[BTreeMap<String, Canon>],
    j: usize,
) -> usize {
    new[j].len().max(1)
}

fn similarity(a: &BTreeMap<String, Canon>, b: &BTreeMap<String, Canon>) -> usize {
    a.iter().filter(|(k, v)| b.get(*k) == Some(v)).count()
}

/// Indices (into `seq`) of a longest increasing subsequence.
fn longest_increasing(seq: &[usize]) -> Vec<bool> {
    let n = seq.len();
    let mut tails: Vec<usize> = Vec::new();
    let mut prev = vec![usize::MAX; n];
    for i in 0..n {
        let pos = tails.partition_point(|&t| seq[t] < seq[i]);
        if pos > 0 {
            prev[i] = tails[pos - 1];
        }
        if pos == tails.len() {
            tails.push(i);
        } else {
            tails[pos] = i;
        }
    }
    let mut keep = vec![false; n];
    let mut cur = tails.last().copied().unwrap_or(usize::MAX);
    while cur != usize::MAX {
        keep[cur] = true;
        cur = prev[cur];
    }
    keep
}

fn label(p: &Package, index: usize) -> String {
    let s = &p.sections[index];
    let keys = schema::key_options(&p.name, &s.kind);
    let shown: Vec<String> = keys
        .iter()
        .filter_map(|k| s.get_single(k).map(|v| format!("{k} {}", quote(v))))
        .collect();
    if !shown.is_empty() {
        return shown.join(", ");
    }
    if !s.anonymous {
        return quote(&s.name);
    }
    p.show_ref(index)
}

fn section_id(p: &Package, index: usize) -> SectionId {
    let s = &p.sections[index];
    SectionId {
        kind: s.kind.clone(),
        name: (!s.anonymous).then(|| s.name.clone()),
        label: label(p, index),
    }
}

fn all_options(s: &Section) -> Vec<OptionValue> {
    s.options
        .iter()
        .map(|o| OptionValue {
            name: o.name.clone(),
            value: o.value.items().to_vec(),
            list: o.value.is_list(),
        })
        .collect()
}

/// Compare two versions of the same package.
pub fn diff(old: &Package, new: &Package) -> Diff {
    let pkg = new.name.as_str();
    let m = match_sections(old, new);

    // Moved: among order-sensitive sections matched on both sides, those
    // outside a longest run that kept its relative order.
    let mut moved = vec![false; new.sections.len()];
    let ordered: Vec<(usize, usize)> = m
        .pairs
        .iter()
        .copied()
        .filter(|(_, j)| schema::order_matters(pkg, &new.sections[*j].kind))
        .collect();
    let olds: Vec<usize> = ordered.iter().map(|(i, _)| *i).collect();
    for (k, keep) in longest_increasing(&olds).into_iter().enumerate() {
        if !keep {
            moved[ordered[k].1] = true;
        }
    }

    // Emit in new order; removed sections where they used to be.
    let mut entries: Vec<((usize, usize), SectionChange)> = Vec::new();
    let mut new_pos_of_old = vec![None; old.sections.len()];
    for (i, j) in &m.pairs {
        new_pos_of_old[*i] = Some(*j);
    }
    for &i in &m.removed {
        let anchor = (0..i)
            .rev()
            .find_map(|k| new_pos_of_old[k])
            .map_or(0, |j| j + 1);
        entries.push((
            (anchor, 0),
            SectionChange::Removed {
                section: section_id(old, i),
                options: all_options(&old.sections[i]),
            },
        ));
    }
    for &j in &m.added {
        let s = &new.sections[j];
        let after = schema::order_matters(pkg, &s.kind).then(|| {
            match (0..j).rev().find(|&k| new.sections[k].kind == s.kind) {
                Some(k) => format!("{} {}", s.kind, label(new, k)),
                None => format!("before every {}", s.kind),
            }
        });
        entries.push((
            (j, 1),
            SectionChange::Added {
                section: section_id(new, j),
                options: all_options(s),
                after,
            },
        ));
    }
    for &(i, j) in &m.pairs {
        let (o, n) = (&old.sections[i], &new.sections[j]);
        let options = option_changes(pkg, o, n);
        let renamed_from =
            (!n.anonymous && (o.anonymous || o.name != n.name)).then(|| o.name.clone());
        let old_type = (o.kind != n.kind).then(|| o.kind.clone());
        if options.is_empty() && renamed_from.is_none() && old_type.is_none() && !moved[j] {
            continue;
        }
        entries.push((
            (j, 1),
            SectionChange::Changed {
                section: section_id(new, j),
                renamed_from,
                old_type,
                options,
                moved: moved[j],
            },
        ));
    }
    entries.sort_by_key(|(k, _)| *k);
    Diff {
        package: new.name.clone(),
        sections: entries.into_iter().map(|(_, c)| c).collect(),
    }
}

fn option_changes(pkg: &str, o: &Section, n: &Section) -> Vec<OptionChange> {
    let mut out = Vec::new();
    let oc = canon_section(pkg, o);
    let nc = canon_section(pkg, n);
    for opt in &n.options {
        let list = opt.value.is_list();
        match (oc.get(&opt.name), nc.get(&opt.name)) {
            (None, Some(_)) => out.push(OptionChange::Added {
                name: opt.name.clone(),
                value: opt.value.items().to_vec(),
                list,
            }),
            (Some(Canon::List(a)), Some(Canon::List(b)))
                if a != b && schema::is_list(pkg, &n.kind, &opt.name) =>
            {
                out.push(OptionChange::Changed {
                    name: opt.name.clone(),
                    old: a.clone(),
                    new: b.clone(),
                    list: true,
                })
            }
            (Some(a), Some(b)) if a != b => out.push(OptionChange::Changed {
                name: opt.name.clone(),
                old: o
                    .get(&opt.name)
                    .map(|v| v.items().to_vec())
                    .unwrap_or_default(),
                new: opt.value.items().to_vec(),
                list,
            }),
            _ => {}
        }
    }
    for opt in &o.options {
        if oc.contains_key(&opt.name) && !nc.contains_key(&opt.name) {
            out.push(OptionChange::Removed {
                name: opt.name.clone(),
                value: opt.value.items().to_vec(),
                list: opt.value.is_list(),
            });
        }
    }
    out
}

/// The diff as text: per section a `config` header and `+`/`-` option lines
/// in `uci export` syntax. Empty when nothing changed.
pub fn render(d: &Diff) -> String {
    let mut out = String::new();
    if d.is_empty() {
        return out;
    }
    out.push_str(&format!("--- {0} (old)\n+++ {0} (new)\n", d.package));
    for c in &d.sections {
        match c {
            SectionChange::Added {
                section,
                options,
                after,
            } => {
                let note = match after {
                    Some(a) if a.starts_with("before") => format!("new, {a}"),
                    Some(a) => format!("new, after {a}"),
                    None => "new".to_string(),
                };
                header(&mut out, '+', section, Some(&note));
                for o in options {
                    option_lines(&mut out, '+', &o.name, &o.value, o.list);
                }
            }
            SectionChange::Removed { section, options } => {
                header(&mut out, '-', section, Some("removed"));
                for o in options {
                    option_lines(&mut out, '-', &o.name, &o.value, o.list);
                }
            }
            SectionChange::Changed {
                section,
                renamed_from,
                old_type,
                options,
                moved,
            } => {
                let mut notes = Vec::new();
                if let Some(r) = renamed_from {
                    notes.push(format!("renamed from {}", quote(r)));
                }
                if let Some(t) = old_type {
                    notes.push(format!("type was {t}"));
                }
                if *moved {
                    notes.push("moved".to_string());
                }
                let note = notes.join(", ");
                header(
                    &mut out,
                    ' ',
                    section,
                    (!note.is_empty()).then_some(note.as_str()),
                );
                for ch in options {
                    match ch {
                        OptionChange::Added { name, value, list } => {
                            option_lines(&mut out, '+', name, value, *list)
                        }
                        OptionChange::Removed { name, value, list } => {
                            option_lines(&mut out, '-', name, value, *list)
                        }
                        OptionChange::Changed {
                            name,
                            old,
                            new,
                            list: true,
                        } => {
                            let gone = minus(old, new);
                            let came = minus(new, old);
                            if gone.is_empty() && came.is_empty() {
                                // Same items, new order: show both orders.
                                option_lines(&mut out, '-', name, old, true);
                                option_lines(&mut out, '+', name, new, true);
                            } else {
                                option_lines(&mut out, '-', name, &gone, true);
                                option_lines(&mut out, '+', name, &came, true);
                            }
                        }
                        OptionChange::Changed {
                            name,
                            old,
                            new,
                            list: false,
                        } => {
                            option_lines(&mut out, '-', name, old, old.len() > 1);
                            option_lines(&mut out, '+', name, new, false);
                        }
                    }
                }
            }
        }
    }
    out
}

fn header(out: &mut String, sign: char, s: &SectionId, note: Option<&str>) {
    out.push(sign);
    out.push_str("config ");
    out.push_str(&s.kind);
    if let Some(n) = &s.name {
        out.push(' ');
        out.push_str(&quote(n));
    }
    let mut comments = Vec::new();
    if s.name.is_none() || !s.label.starts_with('\'') {
        comments.push(s.label.clone());
    }
    if let Some(n) = note {
        comments.push(n.to_string());
    }
    if !comments.is_empty() {
        out.push_str("  # ");
        out.push_str(&comments.join("; "));
    }
    out.push('\n');
}

fn option_lines(out: &mut String, sign: char, name: &str, values: &[String], list: bool) {
    let word = if list { "list" } else { "option" };
    for v in values {
        out.push_str(&format!("{sign}\t{word} {name} {}\n", quote(v)));
    }
}

/// Items of `a` not matched by an equal item of `b` (multiset difference).
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut rest: Vec<&String> = b.iter().collect();
    a.iter()
        .filter(|x| match rest.iter().position(|y| y == x) {
            Some(i) => {
                rest.remove(i);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}
