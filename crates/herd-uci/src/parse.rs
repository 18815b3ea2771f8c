//! The UCI file parser, following libuci's `file.c` rule for rule.
//!
//! Input is read one physical line at a time into a buffer, exactly as
//! libuci's `uci_getln` does; quoted strings and backslash-newline pull the
//! next line into the same buffer. Words are joined from adjacent quoted and
//! unquoted pieces; `#` outside quotes ends the line, `;` ends a command.
//!
//! NUL bytes behave as with libuci's `fgets` + `strlen`: the rest of that
//! physical line is dropped and the next one spliced on. The one difference,
//! on purpose: values must be UTF-8 (a parse error otherwise).

use crate::model::{valid_name, valid_package_name, valid_type, Package, UciOption, Value};
use crate::tokenize::{LineReader, Tok};
use std::collections::HashMap;

/// How to treat bad lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Stop at the first error (libuci's default, `uci -s`).
    #[default]
    Strict,
    /// Skip the rest of a bad line, keep going, and report it (`uci -S`).
    Lenient,
}

/// One problem found in the input, with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {reason}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub reason: String,
    /// Where libuci would report it: lines read so far and the byte offset
    /// in its line buffer (see [`ParseError::libuci_message`]).
    pub libuci_line: usize,
    pub libuci_byte: usize,
}

impl ParseError {
    /// The message OpenWrt's `uci` prints for this error (without `uci: `).
    pub fn libuci_message(&self) -> String {
        format!(
            "Parse error ({}) at line {}, byte {}",
            self.reason, self.libuci_line, self.libuci_byte
        )
    }
}

/// A parsed package and, in lenient mode, the lines that were skipped.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub package: Package,
    pub skipped: Vec<ParseError>,
}

/// Parse the contents of one config file, the way `uci_load` does: the
/// package takes `name`; `package` lines are checked and otherwise ignored.
///
/// `file` only labels error messages.
pub fn parse(input: &[u8], name: &str, file: &str, mode: Mode) -> Result<Parsed, ParseError> {
    let mut parser = Parser::new(input, file, mode, Some(name.to_string()), true);
    parser.run()?;
    let skipped = std::mem::take(&mut parser.skipped);
    let mut packages = parser.finish();
    let package = packages.pop().unwrap_or_else(|| Package::new(name));
    Ok(Parsed { package, skipped })
}

/// Parse strictly; a shortcut for [`parse`] in strict mode.
pub fn parse_str(input: &str, name: &str) -> Result<Package, ParseError> {
    parse(input.as_bytes(), name, name, Mode::Strict).map(|p| p.package)
}

/// Parse an import stream (`uci import`): `package NAME` lines start new
/// packages; `default_name` is used until the first one.
pub fn parse_import(
    input: &[u8],
    default_name: Option<&str>,
    file: &str,
    mode: Mode,
) -> Result<(Vec<Package>, Vec<ParseError>), ParseError> {
    let single = default_name.is_some();
    let mut parser = Parser::new(input, file, mode, default_name.map(String::from), single);
    parser.run()?;
    let skipped = std::mem::take(&mut parser.skipped);
    Ok((parser.finish(), skipped))
}

/// Where one `config`/`option`/`list` statement sits in the input: the byte
/// range of the whole physical lines of its logical line (shared when one
/// line holds several statements separated by `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stmt {
    pub section: usize,
    /// `None` for the `config` line itself.
    pub option: Option<String>,
    pub start: usize,
    pub end: usize,
}

/// Parse strictly and record where every statement is (for the
/// format-preserving editor).
pub(crate) fn parse_with_layout(
    input: &[u8],
    name: &str,
) -> Result<(Package, Vec<Stmt>), ParseError> {
    let mut parser = Parser::new(input, name, Mode::Strict, Some(name.to_string()), true);
    parser.layout = Some(Vec::new());
    parser.run()?;
    let layout = parser.layout.take().unwrap_or_default();
    let package = parser.finish().pop().unwrap_or_else(|| Package::new(name));
    Ok((package, layout))
}

struct Current {
    package: Package,
    /// Hash of a section name -> index of the first section with that hash,
    /// so merging named sections stays linear (collisions fall back to a scan).
    index: HashMap<u64, usize, BuildFnv>,
}

/// FNV-1a: section names are short; SipHash's DoS resistance buys nothing here.
#[derive(Default, Clone, Copy)]
struct BuildFnv;

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

fn name_hash(name: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = BuildFnv.build_hasher();
    h.write(name.as_bytes());
    h.finish()
}

struct Parser<'a> {
    reader: LineReader<'a>,
    file: &'a str,
    mode: Mode,
    /// Name for the next package (from the caller or a `package` line).
    name: Option<String>,
    single: bool,
    current: Option<Current>,
    section: Option<usize>,
    done: Vec<Package>,
    skipped: Vec<ParseError>,
    layout: Option<Vec<Stmt>>,
    /// Byte offset where the current logical line starts.
    line_start: usize,
}

/// An error raised while parsing one line: reason and byte offset in the
/// line buffer (where to point the user, and where libuci points).
struct LineError {
    reason: String,
    pos: usize,
    byte: Option<usize>,
}

type LineResult<T> = Result<T, LineError>;

fn err<T>(tok: &Tok, reason: &str) -> LineResult<T> {
    Err(LineError {
        reason: reason.to_string(),
        pos: tok.pos,
        byte: None,
    })
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], file: &'a str, mode: Mode, name: Option<String>, single: bool) -> Self {
        Parser {
            reader: LineReader::new(input),
            file,
            mode,
            name,
            single,
            current: None,
            section: None,
            done: Vec::new(),
            skipped: Vec::new(),
            layout: None,
            line_start: 0,
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        let mut tok = Tok::default();
        while !self.reader.at_eof() {
            tok.pos = 0;
            self.line_start = self.reader.offset();
            let start_line = self.reader.line() + 1;
            self.reader.getln(&mut tok, 0);
            if tok.buf.is_empty() {
                continue;
            }
            if let Err(e) = self.parse_line(&mut tok) {
                let error = ParseError {
                    file: self.file.to_string(),
                    line: start_line,
                    column: e.pos + 1,
                    reason: e.reason,
                    libuci_line: self.reader.line(),
                    libuci_byte: e.byte.unwrap_or(e.pos),
                };
                match self.mode {
                    Mode::Strict => return Err(error),
                    Mode::Lenient => self.skipped.push(error),
                }
            }
        }
        if self.current.is_none() && self.name.is_some() && self.single {
            self.switch_package().map_err(|reason| ParseError {
                file: self.file.to_string(),
                line: self.reader.line(),
                column: 1,
                reason,
                libuci_line: self.reader.line(),
                libuci_byte: 0,
            })?;
        }
        Ok(())
    }

    fn finish(mut self) -> Vec<Package> {
        if let Some(c) = self.current.take() {
            self.done.push(c.package);
        }
        self.done
    }

    fn switch_package(&mut self) -> Result<(), String> {
        if let Some(c) = self.current.take() {
            self.done.push(c.package);
        }
        self.section = None;
        let Some(name) = self.name.clone() else {
            return Ok(());
        };
        if self.done.iter().any(|p| p.name == name) {
            return Err(format!("package '{name}' appears twice in the input"));
        }
        self.current = Some(Current {
            package: Package::new(name),
            index: HashMap::default(),
        });
        Ok(())
    }

    fn parse_line(&mut self, tok: &mut Tok) -> LineResult<()> {
        tok.skip_whitespace();
        loop {
            // strtok(cur, " \t"): skip blanks, take the word up to the next blank.
            let mut start = tok.pos;
            while start < tok.buf.len() && matches!(tok.buf[start], b' ' | b'\t') {
                start += 1;
            }
            if start >= tok.buf.len() {
                return Ok(());
            }
            let mut end = start;
            while end < tok.buf.len() && !matches!(tok.buf[end], b' ' | b'\t') {
                end += 1;
            }
            let word = &tok.buf[start..end];
            if word[0] == b'#' {
                return Ok(());
            }
            let kind = match (word[0], &word[1..]) {
                (b'p', b"" | b"ackage") => Keyword::Package,
                (b'c', b"" | b"onfig") => Keyword::Config,
                (b'o', b"" | b"ption") => Keyword::Option,
                (b'l', b"" | b"ist") => Keyword::List,
                _ => {
                    tok.pos = start;
                    return err(tok, "invalid command");
                }
            };
            // uci_increase_pos: the word must be followed by a blank.
            if end >= tok.buf.len() {
                tok.pos = start;
                return err(tok, kind.without_name());
            }
            tok.pos = end + 1;
            match kind {
                Keyword::Package => self.parse_package(tok)?,
                Keyword::Config => self.parse_config(tok)?,
                Keyword::Option => self.parse_option(tok, false)?,
                Keyword::List => self.parse_option(tok, true)?,
            }
        }
    }

    fn record(&mut self, section: usize, option: Option<String>) {
        let (start, end) = (self.line_start, self.reader.offset());
        if let Some(layout) = &mut self.layout {
            layout.push(Stmt {
                section,
                option,
                start,
                end,
            });
        }
    }

    fn assert_eol(&mut self, tok: &mut Tok) -> LineResult<()> {
        let (extra, at) = self.arg(tok, false)?;
        if !extra.is_empty() && self.mode == Mode::Strict {
            return Err(LineError {
                reason: "too many arguments".into(),
                pos: at,
                byte: None,
            });
        }
        Ok(())
    }

    /// Read an argument, letting quotes pull further lines from the reader.
    fn arg(&mut self, tok: &mut Tok, required: bool) -> LineResult<(String, usize)> {
        tok.skip_whitespace();
        let at = tok.pos;
        // An unterminated quote is reported where the argument starts.
        let arg = tok.next_arg(&mut self.reader).map_err(|reason| LineError {
            reason: reason.to_string(),
            pos: at,
            byte: Some(tok.pos),
        })?;
        if arg.is_empty() && required {
            return Err(LineError {
                reason: "insufficient arguments".into(),
                pos: at,
                byte: None,
            });
        }
        let s = String::from_utf8(arg).map_err(|_| LineError {
            reason: "value is not valid UTF-8".into(),
            pos: at,
            byte: None,
        })?;
        Ok((s, at))
    }

    fn parse_package(&mut self, tok: &mut Tok) -> LineResult<()> {
        let (name, at) = self.arg(tok, true)?;
        if !valid_package_name(&name) {
            return Err(LineError {
                reason: "invalid character in name field".into(),
                pos: at,
                byte: None,
            });
        }
        self.assert_eol(tok)?;
        if self.single {
            return Ok(());
        }
        self.name = Some(name);
        self.switch_package().map_err(|reason| LineError {
            reason,
            pos: at,
            byte: None,
        })
    }

    fn parse_config(&mut self, tok: &mut Tok) -> LineResult<()> {
        if self.current.is_none() {
            if self.name.is_none() {
                return err(tok, "attempting to import a file without a package name");
            }
            self.switch_package().map_err(|reason| LineError {
                reason,
                pos: 0,
                byte: None,
            })?;
        }
        let (kind, at) = self.arg(tok, true)?;
        if !valid_type(&kind) {
            return Err(LineError {
                reason: "invalid character in type field".into(),
                pos: at,
                byte: None,
            });
        }
        let (name, at) = self.arg(tok, false)?;
        if !name.is_empty() && !valid_name(&name) {
            return Err(LineError {
                reason: "invalid character in name field".into(),
                pos: at,
                byte: None,
            });
        }
        self.assert_eol(tok)?;
        let strict = self.mode == Mode::Strict;
        let cur = self.current.as_mut().expect("switched above");
        if name.is_empty() {
            cur.package.add_anonymous(kind);
            let i = cur.package.sections.len() - 1;
            self.section = Some(i);
            self.record(i, None);
            return Ok(());
        }
        let hash = name_hash(&name);
        let found = match cur.index.get(&hash) {
            Some(&i) if cur.package.sections[i].name == name => Some(i),
            Some(_) => cur.package.position(&name),
            None => None,
        };
        if let Some(i) = found {
            let s = &mut cur.package.sections[i];
            if strict && s.kind != kind {
                return Err(LineError {
                    reason: "section of different type overwrites prior section with same name"
                        .into(),
                    pos: at,
                    byte: None,
                });
            }
            s.kind = kind;
            self.section = Some(i);
            self.record(i, None);
            return Ok(());
        }
        cur.package.add_named(kind, name);
        let i = cur.package.sections.len() - 1;
        cur.index.entry(hash).or_insert(i);
        self.section = Some(i);
        self.record(i, None);
        Ok(())
    }

    fn parse_option(&mut self, tok: &mut Tok, list: bool) -> LineResult<()> {
        let Some(si) = self.section else {
            return err(tok, "option/list command found before the first section");
        };
        let (name, at) = self.arg(tok, true)?;
        if !valid_name(&name) {
            return Err(LineError {
                reason: "invalid character in name field".into(),
                pos: at,
                byte: None,
            });
        }
        let (value, _) = self.arg(tok, false)?;
        self.assert_eol(tok)?;
        self.record(si, Some(name.clone()));
        let cur = self.current.as_mut().expect("a section implies a package");
        let section = &mut cur.package.sections[si];
        let existing = section.options.iter().position(|o| o.name == name);
        if list {
            // uci_add_list: a single value becomes a list moved to the end.
            match existing {
                Some(i) => match &mut section.options[i].value {
                    Value::List(l) => l.push(value),
                    Value::Single(_) => {
                        let old = section.options.remove(i);
                        let Value::Single(first) = old.value else {
                            unreachable!("matched Single above")
                        };
                        section.options.push(UciOption {
                            name,
                            value: Value::List(vec![first, value]),
                        });
                    }
                },
                None => section.options.push(UciOption {
                    name,
                    value: Value::List(vec![value]),
                }),
            }
            return Ok(());
        }
        // uci_set: an empty value is dropped; a changed value moves to the end.
        if value.is_empty() {
            return Ok(());
        }
        if let Some(i) = existing {
            if section.options[i].value.as_single() == Some(value.as_str()) {
                return Ok(());
            }
            section.options.remove(i);
        }
        section.options.push(UciOption {
            name,
            value: Value::Single(value),
        });
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Keyword {
    Package,
    Config,
    Option,
    List,
}

impl Keyword {
    fn without_name(self) -> &'static str {
        match self {
            Keyword::Package => "package without name",
            Keyword::Config => "config without name",
            Keyword::Option | Keyword::List => "option without name",
        }
    }
}
