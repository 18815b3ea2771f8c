//! The in-memory configuration: a [`Package`] of ordered [`Section`]s, each
//! holding ordered [`UciOption`]s whose [`Value`] is a single string or a list.
//!
//! Mutations here are plain and unchecked against libuci's delta rules; the
//! libuci semantics of `set`, `add_list`, `delete`... live in [`crate::ops`].

use serde::Serialize;

/// One configuration file (`/etc/config/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub sections: Vec<Section>,
    /// How many sections were ever allocated in this package, as libuci
    /// counts them; the next anonymous section gets `cfg<n+1 in hex><hash>`.
    #[serde(skip)]
    pub allocated: u32,
}

/// A `config TYPE ['NAME']` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The section type (`zone`, `rule`, `interface`...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The name: given in the file, or the `cfgXXYYYY` id libuci computes
    /// for an anonymous section.
    pub name: String,
    /// True when the file did not name the section (export omits the name).
    pub anonymous: bool,
    pub options: Vec<UciOption>,
}

/// An `option` or the lines of one `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UciOption {
    pub name: String,
    pub value: Value,
}

/// A single value (`option`) or an ordered list of values (`list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Single(String),
    List(Vec<String>),
}

impl Value {
    /// The values in order: one for a single value, all items for a list.
    pub fn items(&self) -> &[String] {
        match self {
            Value::Single(s) => std::slice::from_ref(s),
            Value::List(l) => l,
        }
    }

    pub fn is_list(&self) -> bool {
        matches!(self, Value::List(_))
    }

    /// The single value, or `None` for a list.
    pub fn as_single(&self) -> Option<&str> {
        match self {
            Value::Single(s) => Some(s),
            Value::List(_) => None,
        }
    }
}

impl Package {
    /// An empty package. The name is not checked here; see [`valid_package_name`].
    pub fn new(name: impl Into<String>) -> Self {
        Package {
            name: name.into(),
            sections: Vec::new(),
            allocated: 0,
        }
    }

    /// The first section called `name` (named or `cfgXXYYYY` id).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn section_mut(&mut self, name: &str) -> Option<&mut Section> {
        self.sections.iter_mut().find(|s| s.name == name)
    }

    /// Index of the first section called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    /// Sections of one type, in file order.
    pub fn sections_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// Append an anonymous section, named as libuci names it (`cfg` + the
    /// allocation counter as two or more hex digits + a hash of the type).
    pub fn add_anonymous(&mut self, kind: impl Into<String>) -> &mut Section {
        let kind = kind.into();
        self.allocated += 1;
        let name = anonymous_id(self.allocated, &kind);
        self.sections.push(Section {
            kind,
            name,
            anonymous: true,
            options: Vec::with_capacity(4),
        });
        self.sections.last_mut().expect("just pushed")
    }

    /// Append a named section (no check for an existing one of that name).
    pub fn add_named(&mut self, kind: impl Into<String>, name: impl Into<String>) -> &mut Section {
        self.allocated += 1;
        self.sections.push(Section {
            kind: kind.into(),
            name: name.into(),
            anonymous: false,
            options: Vec::with_capacity(4),
        });
        self.sections.last_mut().expect("just pushed")
    }

    /// The libuci section reference used by `uci show`: the name for named
    /// sections, `@type[i]` for anonymous ones (i counts all sections of
    /// that type before it, named or not).
    pub fn show_ref(&self, index: usize) -> String {
        let s = &self.sections[index];
        if !s.anonymous {
            return s.name.clone();
        }
        let i = self.sections[..index]
            .iter()
            .filter(|o| o.kind == s.kind)
            .count();
        format!("@{}[{}]", s.kind, i)
    }

    /// Resolve `@type[i]`, `@type[-1]`, `@[i]` or a plain name to a section index.
    pub fn resolve(&self, reference: &str) -> Option<usize> {
        match parse_extended(reference) {
            Some((kind, idx)) => {
                let matching: Vec<usize> = self
                    .sections
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| kind.is_none_or(|k| s.kind == k))
                    .map(|(i, _)| i)
                    .collect();
                let idx = if idx < 0 {
                    idx + matching.len() as i64
                } else {
                    idx
                };
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| matching.get(i).copied())
            }
            None => self.position(reference),
        }
    }
}

/// Split `@type[i]` into (type or None for `@[i]`, i). None if not of that form.
pub(crate) fn parse_extended(reference: &str) -> Option<(Option<&str>, i64)> {
    let rest = reference.strip_prefix('@')?;
    let open = rest.find('[')?;
    let (kind, idx) = rest.split_at(open);
    let idx = idx.strip_prefix('[')?.strip_suffix(']')?;
    if idx.contains(']') || idx.is_empty() {
        return None;
    }
    let idx: i64 = idx.parse().ok()?;
    if kind.is_empty() {
        Some((None, idx))
    } else if valid_type(kind) {
        Some((Some(kind), idx))
    } else {
        None
    }
}

impl Section {
    pub fn option(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The value of an option, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.option(name).map(|o| &o.value)
    }

    /// The single value of an option, if present and not a list.
    pub fn get_single(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_single)
    }

    /// Set an option to a single value: replaces an existing one in place.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.put(name.into(), Value::Single(value.into()))
    }

    /// Set an option to a list: replaces an existing one in place.
    pub fn set_list<I, S>(&mut self, name: impl Into<String>, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let items = items.into_iter().map(Into::into).collect();
        self.put(name.into(), Value::List(items))
    }

    /// Append one item to a list option (creating it, or turning a single
    /// value into a list that starts with that value, as libuci does).
    pub fn add_list(&mut self, name: impl Into<String>, item: impl Into<String>) -> &mut Self {
        let name = name.into();
        let item = item.into();
        match self.options.iter_mut().find(|o| o.name == name) {
            Some(o) => match &mut o.value {
                Value::List(l) => l.push(item),
                Value::Single(s) => o.value = Value::List(vec![std::mem::take(s), item]),
            },
            None => self.options.push(UciOption {
                name,
                value: Value::List(vec![item]),
            }),
        }
        self
    }

    /// Remove an option; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.options.len();
        self.options.retain(|o| o.name != name);
        before != self.options.len()
    }

    fn put(&mut self, name: String, value: Value) -> &mut Self {
        match self.options.iter_mut().find(|o| o.name == name) {
            Some(o) => o.value = value,
            None => self.options.push(UciOption { name, value }),
        }
        self
    }
}

/// libuci's id for an anonymous section: `cfg%02x%04x` of the package's
/// section counter and the djb hash of the section type.
pub fn anonymous_id(counter: u32, kind: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(12);
    s.push_str("cfg");
    let digits = (32 - counter.leading_zeros()).div_ceil(4).max(2);
    for i in (0..digits).rev() {
        s.push(HEX[((counter >> (4 * i)) & 0xf) as usize] as char);
    }
    let hash = djbhash(kind) % (1 << 16);
    for i in (0..4).rev() {
        s.push(HEX[((hash >> (4 * i)) & 0xf) as usize] as char);
    }
    s
}

/// libuci's djbhash, with C `char` signedness (bytes >= 0x80 are negative).
fn djbhash(s: &str) -> u32 {
    let mut hash: u32 = 5381;
    for &b in s.as_bytes() {
        let c = b as i8 as i32 as u32;
        hash = (hash << 5).wrapping_add(hash).wrapping_add(c);
    }
    hash & 0x7FFF_FFFF
}

/// Section and option names: `[A-Za-z0-9_]+`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Package names: `[A-Za-z0-9_-]+`.
pub fn valid_package_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Section types: printable ASCII without spaces.
pub fn valid_type(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| (33..=126).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_ids_match_openwrt_defaults() {
        // Seen on every OpenWrt router: the first sections of /etc/config/firewall.
        assert_eq!(anonymous_id(1, "defaults"), "cfg01e63d");
        assert_eq!(anonymous_id(2, "zone"), "cfg02dc81");
        assert_eq!(anonymous_id(3, "zone"), "cfg03dc81");
        assert_eq!(anonymous_id(3, "device"), "cfg030f15");
        assert_eq!(anonymous_id(0x1ab, "zone"), "cfg1abdc81");
    }

    #[test]
    fn extended_references_resolve_from_both_ends() {
        let mut p = Package::new("firewall");
        p.add_anonymous("zone");
        p.add_named("zone", "wan");
        p.add_anonymous("rule");
        assert_eq!(p.resolve("@zone[1]"), Some(1));
        assert_eq!(p.resolve("@zone[-1]"), Some(1));
        assert_eq!(p.resolve("@zone[-2]"), Some(0));
        assert_eq!(p.resolve("@[2]"), Some(2));
        assert_eq!(p.resolve("@zone[2]"), None);
        assert_eq!(p.resolve("wan"), Some(1));
        assert_eq!(p.show_ref(2), "@rule[0]");
    }
}
