//! Output in libuci's formats: `uci export`, the committed file, `uci show`,
//! `uci get` and `uci changes` quoting.

use crate::model::{Package, Section, UciOption, Value};
use std::fmt::Write;

/// Options for [`export`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Print the `package NAME` header line (`uci export` does, a commit does not).
    pub header: bool,
    /// Name anonymous sections too (`uci -n`).
    pub name_anonymous: bool,
}

/// `uci export PACKAGE`: the header line, then every section.
pub fn export(p: &Package) -> String {
    export_with(
        p,
        ExportOptions {
            header: true,
            name_anonymous: false,
        },
    )
}

/// The file `uci commit` writes to `/etc/config/NAME`.
pub fn commit_text(p: &Package) -> String {
    export_with(p, ExportOptions::default())
}

/// libuci's `uci_export_package`.
pub fn export_with(p: &Package, opts: ExportOptions) -> String {
    let mut out = String::with_capacity(estimate(p));
    if opts.header {
        out.push_str("package ");
        escape_into(&mut out, &p.name);
        out.push('\n');
    }
    for s in &p.sections {
        write_section(&mut out, s, opts.name_anonymous);
    }
    out.push('\n');
    out
}

fn estimate(p: &Package) -> usize {
    p.sections
        .iter()
        .map(|s| {
            32 + s
                .options
                .iter()
                .map(|o| {
                    o.value
                        .items()
                        .iter()
                        .map(|v| v.len() + o.name.len() + 12)
                        .sum::<usize>()
                })
                .sum::<usize>()
        })
        .sum()
}

fn write_section(out: &mut String, s: &Section, name_anonymous: bool) {
    out.push_str("\nconfig ");
    // libuci writes the type bare. A type with a character the parser
    // treats specially (`config '#'` is a valid type) would then read back
    // as a comment or a broken quote, so herd quotes those; every other
    // type is written exactly as libuci writes it.
    if s.kind
        .bytes()
        .any(|c| matches!(c, b'\'' | b'"' | b'\\' | b'#' | b';'))
    {
        out.push('\'');
        escape_into(out, &s.kind);
        out.push('\'');
    } else {
        escape_into(out, &s.kind);
    }
    if !s.anonymous || name_anonymous {
        out.push_str(" '");
        escape_into(out, &s.name);
        out.push('\'');
    }
    out.push('\n');
    for o in &s.options {
        write_option(out, o);
    }
}

fn write_option(out: &mut String, o: &UciOption) {
    match &o.value {
        Value::Single(v) => {
            out.push_str("\toption ");
            escape_into(out, &o.name);
            out.push_str(" '");
            escape_into(out, v);
            out.push_str("'\n");
        }
        Value::List(items) => {
            for v in items {
                out.push_str("\tlist ");
                escape_into(out, &o.name);
                out.push_str(" '");
                escape_into(out, v);
                out.push_str("'\n");
            }
        }
    }
}

/// libuci's `uci_escape`: every `'` becomes `'\''` (the caller adds the quotes).
fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..i]);
        out.push_str("'\\''");
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// A value in single quotes, as `uci show` and `uci changes` print it.
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    escape_into(&mut out, v);
    out.push('\'');
    out
}

/// Options for [`show`].
#[derive(Debug, Clone)]
pub struct ShowOptions {
    /// `@type[i]` for anonymous sections (the default; `uci -X` turns it off).
    pub extended: bool,
    /// Separator between list items (`uci -d`).
    pub delimiter: String,
}

impl Default for ShowOptions {
    fn default() -> Self {
        ShowOptions {
            extended: true,
            delimiter: " ".into(),
        }
    }
}

/// `uci show PACKAGE`.
pub fn show(p: &Package, opts: &ShowOptions) -> String {
    let mut out = String::new();
    let mut counts: std::collections::HashMap<&str, usize> = Default::default();
    for s in &p.sections {
        let n = counts.entry(s.kind.as_str()).or_default();
        let reference = if opts.extended && s.anonymous {
            format!("@{}[{}]", s.kind, n)
        } else {
            s.name.clone()
        };
        *n += 1;
        show_section_into(&mut out, p, s, &reference, opts);
    }
    out
}

/// `uci show PACKAGE.SECTION` (the section's own name is used, as libuci does).
pub fn show_section(p: &Package, s: &Section, opts: &ShowOptions) -> String {
    let mut out = String::new();
    show_section_into(&mut out, p, s, &s.name, opts);
    out
}

/// `uci show PACKAGE.SECTION.OPTION`.
pub fn show_option(p: &Package, s: &Section, o: &UciOption, opts: &ShowOptions) -> String {
    let mut out = String::new();
    show_option_into(&mut out, &p.name, &s.name, o, opts);
    out
}

fn show_section_into(
    out: &mut String,
    p: &Package,
    s: &Section,
    reference: &str,
    opts: &ShowOptions,
) {
    let _ = writeln!(out, "{}.{}={}", p.name, reference, s.kind);
    for o in &s.options {
        show_option_into(out, &p.name, reference, o, opts);
    }
}

fn show_option_into(
    out: &mut String,
    package: &str,
    section: &str,
    o: &UciOption,
    opts: &ShowOptions,
) {
    let _ = write!(out, "{}.{}.{}=", package, section, o.name);
    out.push_str(&format_value(&o.value, true, &opts.delimiter));
    out.push('\n');
}

/// `uci get` / `uci show` value text (without the newline). Unquoted, list
/// items are quoted only when they hold blanks.
pub fn format_value(v: &Value, quoted: bool, delimiter: &str) -> String {
    match v {
        Value::Single(s) if quoted => quote(s),
        Value::Single(s) => s.clone(),
        Value::List(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(delimiter);
                }
                let blank = item.contains([' ', '\t', '\r', '\n']);
                if quoted || blank {
                    out.push_str(&quote(item));
                } else {
                    out.push_str(item);
                }
            }
            out
        }
    }
}
