//! The text query syntax of adminapi's `parse_query`:
//!
//! ```text
//! web.* servertype=vm memory=GreaterThan(1024) os=Not(Empty()) hostname=Any(a "b c")
//! ```
//!
//! Space-separated `attribute=value` terms are ANDed. A leading term without
//! `=` filters the hostname (a `Regexp` if it contains regex characters).
//! Function names are case-insensitive. Unquoted literals are auto-typed
//! (`Value::auto_typed`); quoted ones (`'...'`, `"..."`, `\` escapes) are
//! strings.

use std::fmt;

use crate::query::{Filter, Query, MAX_FILTER_DEPTH};
use crate::value::Value;

/// A syntax error at a 1-based character column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

impl SyntaxError {
    /// The input with a caret under the column, then the message:
    ///
    /// ```text
    /// memory=GreaterThan(1024
    ///                        ^ unclosed GreaterThan( ...
    /// ```
    pub fn render(&self, input: &str) -> String {
        let line: String = input
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "{line}\n{}^ {}",
            " ".repeat(self.column.saturating_sub(1)),
            self.message
        )
    }
}

/// Characters that make a leading hostname term a regular expression.
const REGEX_CHARS: &[char] = &['^', '$', '*', '+', '?', '[', ']', '{', '}', '|', '\\'];

/// Parses the text syntax into a query (filters only).
pub fn parse_query(input: &str) -> Result<Query, SyntaxError> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    let mut query = Query::default();
    let mut first = true;
    loop {
        p.skip_ws();
        if p.at_end() {
            return Ok(query);
        }
        let start = p.pos;
        if let Some(key) = p.key() {
            let value = p.value(0)?;
            query = query.and(&key, value);
        } else if first {
            let filter = match p.value(0)? {
                Filter::Equals(Value::String(s)) if s.contains(REGEX_CHARS) => Filter::Regexp(s),
                Filter::Equals(v @ Value::String(_)) => Filter::Equals(v),
                Filter::Equals(other) => Filter::Equals(Value::String(other.to_text())),
                f => f,
            };
            query = query.and("hostname", filter);
        } else {
            return Err(p.error_at(
                start,
                "expected attribute=value (only the first term may be a bare hostname)",
            ));
        }
        first = false;
        if !p.at_end() && !p.peek().is_some_and(char::is_whitespace) {
            return Err(p.error("expected a space before the next term"));
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '=' | '"' | '\'')
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: &str) -> SyntaxError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: &str) -> SyntaxError {
        SyntaxError {
            column: pos + 1,
            message: message.to_owned(),
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// `attribute=` at the current position; leaves the position unchanged if
    /// there is none.
    fn key(&mut self) -> Option<String> {
        let start = self.pos;
        let word = self.word();
        if !word.is_empty() && self.peek() == Some('=') {
            self.pos += 1;
            return Some(word);
        }
        self.pos = start;
        None
    }

    fn quoted(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        let quote = self.chars[self.pos];
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        self.error_at(start, &format!("unclosed quote: add a closing {quote}"))
                    )
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err(self.error("backslash at the end of the query")),
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
    }

    /// A literal or a function call.
    fn value(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(self.error(&format!(
                "functions nest deeper than {MAX_FILTER_DEPTH} levels: simplify the query"
            )));
        }
        let start = self.pos;
        match self.peek() {
            None => return Err(self.error("expected a value")),
            Some('"' | '\'') => return Ok(Filter::Equals(Value::String(self.quoted()?))),
            Some(')') => return Err(self.error("unexpected ')': no function is open here")),
            Some('(') => return Err(self.error("expected a function name before '('")),
            Some('=') => return Err(self.error("unexpected '=': quote values that contain '='")),
            Some(c) if c.is_whitespace() => return Err(self.error("expected a value")),
            Some(_) => {}
        }
        let word = self.word();
        if self.peek() != Some('(') {
            if self.peek() == Some('=') {
                return Err(self.error("unexpected '=': quote values that contain '='"));
            }
            return Ok(Filter::Equals(Value::auto_typed(&word)));
        }
        self.pos += 1;
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        start,
                        &format!("unclosed {word}(: add ')' at the end of its arguments"),
                    ))
                }
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => args.push(self.value(depth + 1)?),
            }
            if !matches!(self.peek(), Some(')') | None)
                && !self.peek().is_some_and(char::is_whitespace)
            {
                return Err(self.error("expected a space or ')' after a function argument"));
            }
        }
        Filter::from_function(&word, args).map_err(|m| self.error_at(start, &m))
    }
}

impl fmt::Display for Query {
    /// The text syntax of the filters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms: Vec<String> = self
            .filters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&terms.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::parse_inet;

    fn check(input: &str, expect: &[(&str, Filter)]) {
        let q = parse_query(input).unwrap_or_else(|e| panic!("{}", e.render(input)));
        let got: Vec<(&str, &Filter)> = q.filters.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let want: Vec<(&str, &Filter)> = expect.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(got, want, "{input}");
    }

    fn eq(v: impl Into<Value>) -> Filter {
        Filter::Equals(v.into())
    }

    #[test]
    fn terms_are_anded_and_typed() {
        check(
            "hostname=vm1 servertype=vm num_cpu=4",
            &[
                ("hostname", eq("vm1")),
                ("num_cpu", eq(4)),
                ("servertype", eq("vm")),
            ],
        );
    }

    #[test]
    fn leading_bare_term_is_a_hostname_or_regexp() {
        check("vm1.example.com", &[("hostname", eq("vm1.example.com"))]);
        check("web.*", &[("hostname", Filter::Regexp("web.*".into()))]);
        check("10", &[("hostname", eq("10"))]);
    }

    #[test]
    fn functions_nest_and_are_case_insensitive() {
        check(
            "os=not(empty()) memory=GreaterThan(1024) hostname=Any(a 'b c')",
            &[
                ("hostname", Filter::Any(vec![eq("a"), eq("b c")])),
                ("memory", Filter::GreaterThan(Value::number(1024))),
                ("os", Filter::Not(Box::new(Filter::Empty))),
            ],
        );
        check(
            "intern_ip=ContainedBy(10.0.0.0/16)",
            &[(
                "intern_ip",
                Filter::ContainedBy(Value::Inet(parse_inet("10.0.0.0/16").unwrap())),
            )],
        );
    }

    #[test]
    fn quotes_keep_spaces_and_escapes() {
        check(r#"comment="a \"b\" c""#, &[("comment", eq(r#"a "b" c"#))]);
        check("comment='42'", &[("comment", eq("42"))]);
    }

    fn error_column(input: &str) -> usize {
        parse_query(input).unwrap_err().column
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        assert_eq!(error_column("memory=GreaterThan(1024"), 8);
        assert_eq!(error_column("a b"), 3);
        assert_eq!(error_column("x=Bogus(1)"), 3);
        assert_eq!(error_column("x='open"), 3);
        assert_eq!(error_column("x=1)"), 4);
        let e = parse_query("memory=GreaterThan(1024").unwrap_err();
        assert_eq!(
            e.render("memory=GreaterThan(1024"),
            "memory=GreaterThan(1024\n       ^ unclosed GreaterThan(: add ')' at the end of its arguments"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let q = format!("x={}1{}", "Not(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_query(&q).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn display_round_trips() {
        let input = "comment=\"a b\" memory=GreaterThan(1024) os=Not(Empty()) tags=Any(x y)";
        let q = parse_query(input).unwrap();
        assert_eq!(parse_query(&q.to_string()).unwrap(), q);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = parse_query(&s);
        }

        #[test]
        fn parser_never_panics_on_query_like_input(s in "[a-z=()'\" \\\\.*^A-Z0-9/:-]{0,60}") {
            if let Err(e) = parse_query(&s) {
                proptest::prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1);
            }
        }
    }
}
