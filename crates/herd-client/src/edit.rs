//! Edits as people type them, for command-line clients: `attr=value`
//! assignments typed by the schema ([`Assignment`], [`apply_assignments`])
//! and objects one per line of a `.jsonl` file ([`objects_from_jsonl`]).
//! Pure: nothing here talks to a server.

use std::io::BufRead;

use herd_model::{AttributeType, Object, Schema, Value};

use crate::TrackedObject;

/// One parsed `attr=value` argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Assignment {
    Set(String, String),
    Add(String, String),
    Remove(String, String),
}

impl std::str::FromStr for Assignment {
    type Err = String;
    fn from_str(s: &str) -> Result<Assignment, String> {
        let (left, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not attr=value"))?;
        let (make, attr): (fn(String, String) -> Assignment, &str) =
            if let Some(a) = left.strip_suffix('+') {
                (Assignment::Add, a)
            } else if let Some(a) = left.strip_suffix('-') {
                (Assignment::Remove, a)
            } else {
                (Assignment::Set, left)
            };
        if attr.is_empty() || attr.contains(char::is_whitespace) {
            return Err(format!("{s:?}: {attr:?} is not an attribute name"));
        }
        Ok(make(attr.to_string(), value.to_string()))
    }
}

/// Apply `assignments` to `object`, typing each value by the schema.
pub fn apply_assignments(
    schema: &Schema,
    object: &mut TrackedObject,
    assignments: &[Assignment],
) -> Result<(), String> {
    for assignment in assignments {
        let (Assignment::Set(attr, text)
        | Assignment::Add(attr, text)
        | Assignment::Remove(attr, text)) = assignment;
        let ty = attribute_type(schema, attr)?;
        let multi = schema.is_multi(attr);
        let typed = |t: &str| -> Result<Value, String> {
            Value::String(t.to_string())
                .coerce(ty)
                .map_err(|e| format!("{attr}: {e}"))
        };
        let new = match (assignment, multi) {
            (Assignment::Set(..), false) if text.is_empty() => Value::Null,
            (Assignment::Set(..), false) => typed(text)?,
            (Assignment::Set(..), true) => Value::set(
                text.split(',')
                    .filter(|t| !t.is_empty())
                    .map(typed)
                    .collect::<Result<_, _>>()?,
            ),
            (Assignment::Add(..) | Assignment::Remove(..), false) => {
                return Err(format!(
                    "{attr} holds one value; use {attr}=value (+= and -= are for multi attributes)"
                ))
            }
            (Assignment::Add(..), true) => {
                let mut values = current_set(object, attr);
                values.push(typed(text)?);
                Value::set(values)
            }
            (Assignment::Remove(..), true) => {
                let gone = typed(text)?;
                Value::set(
                    current_set(object, attr)
                        .into_iter()
                        .filter(|v| *v != gone)
                        .collect(),
                )
            }
        };
        object.set(attr, new);
    }
    Ok(())
}

fn attribute_type(schema: &Schema, attr: &str) -> Result<AttributeType, String> {
    match attr {
        "hostname" | "servertype" => Ok(AttributeType::String),
        "intern_ip" => Ok(AttributeType::Inet),
        "object_id" => Err("object_id can not be changed".to_string()),
        _ => schema.attribute_type(attr).ok_or_else(|| {
            format!("no attribute {attr:?}; `herd schema show` lists the attributes")
        }),
    }
}

fn current_set(object: &TrackedObject, attr: &str) -> Vec<Value> {
    match object.get(attr) {
        Some(Value::Set(values)) => values.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

/// Why a `.jsonl` file gave no objects.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("cannot read {0}")]
    Read(String),
    /// Every bad line, as `name:line: why`.
    #[error("{}", bad_lines(.0))]
    BadLines(Vec<String>),
}

fn bad_lines(problems: &[String]) -> String {
    let shown = problems
        .iter()
        .take(20)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    let more = problems.len().saturating_sub(20);
    let tail = if more > 0 {
        format!("\n... and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} bad lines, nothing was created:\n{shown}{tail}",
        problems.len()
    )
}

/// Every object of a `.jsonl` file (one per line, blank lines skipped),
/// each with a `hostname` and a `servertype`; all bad lines are reported
/// at once, `name` standing for the file.
pub fn objects_from_jsonl(reader: impl BufRead, name: &str) -> Result<Vec<Object>, JsonlError> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| JsonlError::Read(format!("{name}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Object>(&line) {
            Ok(o) if o.hostname().is_some() && o.servertype().is_some() => objects.push(o),
            Ok(_) => problems.push(format!(
                "{name}:{}: an object needs \"hostname\" and \"servertype\"",
                i + 1
            )),
            Err(e) => problems.push(format!("{name}:{}: {e}", i + 1)),
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(JsonlError::BadLines(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_set_add_and_remove() {
        assert_eq!(
            "memory=4096".parse::<Assignment>().unwrap(),
            Assignment::Set("memory".into(), "4096".into())
        );
        assert_eq!(
            "tags+=ha".parse::<Assignment>().unwrap(),
            Assignment::Add("tags".into(), "ha".into())
        );
        assert_eq!(
            "tags-=a=b".parse::<Assignment>().unwrap(),
            Assignment::Remove("tags".into(), "a=b".into())
        );
        assert!("memory".parse::<Assignment>().is_err());
        assert!("=4".parse::<Assignment>().is_err());
    }

    #[test]
    fn bad_jsonl_lines_are_all_reported_with_their_numbers() {
        let text = "{\"hostname\":\"a\",\"servertype\":\"vm\"}\nnot json\n\n{\"hostname\":\"b\"}\n";
        let err = objects_from_jsonl(text.as_bytes(), "f.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("f.jsonl:2:"), "{err}");
        assert!(err.contains("f.jsonl:4:"), "{err}");
        assert!(err.starts_with("2 bad lines"), "{err}");
    }
}
