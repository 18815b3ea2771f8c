//! Commits (serveradmin's `dataset/commit` body) and history records.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{Datetime, Object, ObjectId, Value};

/// The id of a commit, increasing.
pub type CommitId = i64;

/// One all-or-nothing change set.
///
/// JSON: `{"created": [object...], "changed": [{"object_id": N, "attr":
/// {"action": "update", "old": x, "new": y}}...], "deleted": [N...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// New objects: `hostname`, `servertype`, `intern_ip` and attributes.
    /// Attributes left out take the servertype's default.
    #[serde(default)]
    pub created: Vec<Object>,
    #[serde(default)]
    pub changed: Vec<Change>,
    #[serde(default)]
    pub deleted: Vec<ObjectId>,
}

impl Commit {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }

    /// Number of attribute changes, created and deleted objects.
    pub fn len(&self) -> usize {
        self.created.len()
            + self.deleted.len()
            + self
                .changed
                .iter()
                .map(|c| c.attributes.len())
                .sum::<usize>()
    }
}

/// Changes to one object, keyed by attribute id (`hostname` and `intern_ip`
/// included).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub object_id: ObjectId,
    pub attributes: BTreeMap<String, AttributeChange>,
}

impl Change {
    pub fn new(object_id: ObjectId) -> Change {
        Change {
            object_id,
            attributes: BTreeMap::new(),
        }
    }

    /// Adds an `update` of a single-valued attribute.
    pub fn update(mut self, attribute: &str, old: Value, new: Value) -> Change {
        self.attributes
            .insert(attribute.to_owned(), AttributeChange::Update { old, new });
        self
    }

    /// Adds a `multi` change of a multi attribute.
    pub fn multi(mut self, attribute: &str, add: Vec<Value>, remove: Vec<Value>) -> Change {
        self.attributes
            .insert(attribute.to_owned(), AttributeChange::Multi { add, remove });
        self
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        map.insert("object_id".into(), self.object_id.into());
        for (k, v) in &self.attributes {
            map.insert(
                k.clone(),
                serde_json::to_value(v).map_err(serde::ser::Error::custom)?,
            );
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::deserialize(d)?;
        let object_id = map
            .remove("object_id")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| D::Error::custom("each changed object needs an integer object_id"))?;
        let attributes = map
            .into_iter()
            .map(|(k, v)| {
                let change = serde_json::from_value(v).map_err(|e| {
                    D::Error::custom(format!(
                        "change of attribute {k:?} on object {object_id}: {e}"
                    ))
                })?;
                Ok((k, change))
            })
            .collect::<Result<_, D::Error>>()?;
        Ok(Change {
            object_id,
            attributes,
        })
    }
}

/// One attribute's change, with the value the client last saw (`old`) for
/// compare-and-swap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum AttributeChange {
    /// Single value: was `old`, becomes `new`. Fails if the stored value is
    /// no longer `old`.
    Update { old: Value, new: Value },
    /// Multi value: add and remove single values.
    Multi {
        #[serde(default)]
        add: Vec<Value>,
        #[serde(default)]
        remove: Vec<Value>,
    },
    /// Set a value that was empty (same as `update` with `old: null`).
    New { new: Value },
    /// Clear a value (same as `update` with `new: null`).
    Delete { old: Value },
}

/// How an object was touched by a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Changed,
    Deleted,
}

/// An attribute's value before and after a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDiff {
    pub old: Value,
    pub new: Value,
}

/// What one commit did to one object. Created and deleted objects list
/// every attribute that had a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub object_id: ObjectId,
    /// The hostname after the commit (before it, for a deletion).
    pub hostname: String,
    pub kind: ChangeKind,
    pub attributes: BTreeMap<String, AttributeDiff>,
}

/// A commit in history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub commit_id: CommitId,
    /// Who committed, as the caller named them (user, key or token name).
    pub author: String,
    pub time: DatetimeJson,
    pub changes: Vec<ObjectChange>,
}

/// A `Datetime` serialized as its ISO text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DatetimeJson(pub Datetime);

impl Serialize for DatetimeJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for DatetimeJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(DatetimeJson)
            .map_err(|_| D::Error::custom(format!("{s:?} is not a datetime")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serveradmin_commit_body_parses() {
        let c: Commit = serde_json::from_str(
            r#"{"created":[{"hostname":"vm1","servertype":"vm","num_cpu":2}],
               "changed":[{"object_id":7,"num_cpu":{"action":"update","old":2,"new":4},
                           "tags":{"action":"multi","add":["a"],"remove":[]}}],
               "deleted":[9]}"#,
        )
        .unwrap();
        assert_eq!(c.created[0].hostname(), Some("vm1"));
        assert_eq!(
            c.changed[0].attributes["num_cpu"],
            AttributeChange::Update {
                old: Value::number(2),
                new: Value::number(4)
            }
        );
        assert_eq!(c.deleted, vec![9]);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn change_without_object_id_is_refused() {
        let err = serde_json::from_str::<Change>(r#"{"x":{"action":"new","new":1}}"#).unwrap_err();
        assert!(err.to_string().contains("object_id"));
    }
}
