//! The configuration fw4 reads: UCI packages as ordered sections of options.
//!
//! This is deliberately the smallest model that fw4's semantics need (section
//! type, name, anonymity, option values as a string or a list). It is filled
//! from `herd-uci` packages or from the JSON that firewall4's own test suite
//! uses for its mocked UCI cursor.

/// An option's value: `option` (single string) or `list` (several strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Single(String),
    List(Vec<String>),
}

/// One `config TYPE ['NAME']` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    /// The section name; `None` for anonymous sections.
    pub name: Option<String>,
    pub options: Vec<(String, Value)>,
}

impl Section {
    pub fn new(kind: &str, name: Option<&str>) -> Self {
        Section {
            kind: kind.to_string(),
            name: name.map(str::to_string),
            options: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of a single option (a list yields `None`).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Single(s) => Some(s),
            Value::List(_) => None,
        }
    }

    /// Values of an option, whether given as `option` or `list`. A single
    /// option is split on whitespace, like fw4's `to_array`.
    pub fn values(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Single(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::List(l)) => l.clone(),
        }
    }

    pub fn set(&mut self, key: &str, value: Value) {
        match self.options.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.options.push((key.to_string(), value)),
        }
    }
}

/// An ordered UCI package (`/etc/config/NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub sections: Vec<Section>,
}

impl Package {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// `@kind[N]` for anonymous sections, the name otherwise (libuci's way
    /// of naming a section in messages and comments).
    pub fn section_id(&self, section: &Section) -> String {
        if let Some(name) = &section.name {
            return name.clone();
        }
        let index = self
            .of_kind(&section.kind)
            .position(|s| std::ptr::eq(s, section))
            .unwrap_or(0);
        format!("@{}[{}]", section.kind, index)
    }
}

/// Errors reading the JSON form of a UCI package.
#[derive(Debug, thiserror::Error)]
pub enum JsonConfigError {
    #[error("invalid JSON: {0} (firewall4 test files allow trailing commas; anything else must be plain JSON)")]
    Syntax(#[from] serde_json::Error),
    #[error("expected an object mapping section types to arrays of sections, found {0}")]
    Shape(String),
}

/// Reads a package in the JSON form firewall4's tests give their mocked UCI
/// cursor: `{"zone": [{"name": "lan", ...}, ...], "rule": [...]}`. Keys
/// starting with `.` are metadata (`.name` names the section; others are
/// ignored); numbers and booleans become strings as libuci would store them.
pub fn package_from_json(text: &str) -> Result<Package, JsonConfigError> {
    let cleaned = strip_trailing_commas(text);
    let value: serde_json::Value = serde_json::from_str(&cleaned)?;
    let map = value
        .as_object()
        .ok_or_else(|| JsonConfigError::Shape(kind_of(&value).into()))?;
    let mut package = Package::default();
    for (kind, sections) in map {
        let list = match sections {
            serde_json::Value::Array(list) => list.clone(),
            serde_json::Value::Object(_) => vec![sections.clone()],
            other => {
                return Err(JsonConfigError::Shape(format!(
                    "{} for section type '{kind}'",
                    kind_of(other)
                )))
            }
        };
        for item in list {
            let obj = item.as_object().ok_or_else(|| {
                JsonConfigError::Shape(format!("{} inside '{kind}'", kind_of(&item)))
            })?;
            let name = obj.get(".name").and_then(|v| v.as_str());
            let mut section = Section::new(kind, name);
            for (key, v) in obj {
                if key.starts_with('.') {
                    continue;
                }
                let value = match v {
                    serde_json::Value::Array(items) => {
                        Value::List(items.iter().map(scalar_string).collect())
                    }
                    other => Value::Single(scalar_string(other)),
                };
                section.options.push((key.clone(), value));
            }
            package.sections.push(section);
        }
    }
    Ok(package)
}

fn scalar_string(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Removes commas directly before `]` or `}` outside strings.
fn strip_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some(']') | Some('}')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}
