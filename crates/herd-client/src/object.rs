//! Objects as the client holds them: the values read from the server plus
//! the originals of every attribute changed since, so that a commit can send
//! compare-and-swap `old` values without the caller keeping them.

use herd_model::{Object, ObjectId, Value};
use std::collections::BTreeMap;

/// An object read from the server (or made by `new_object`), with local
/// changes tracked. Build a [`crate::Commit`] from it to save the changes.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedObject {
    object: Object,
    /// Attribute → value as read from the server, for changed attributes.
    originals: BTreeMap<String, Value>,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Exists on the server.
    Saved,
    /// Made locally, to be created.
    New,
    /// Exists on the server, to be deleted.
    Deleted,
}

impl From<Object> for TrackedObject {
    fn from(object: Object) -> TrackedObject {
        TrackedObject {
            object,
            originals: BTreeMap::new(),
            state: State::Saved,
        }
    }
}

impl TrackedObject {
    /// An object that does not exist on the server yet.
    pub fn new_unsaved(object: Object) -> TrackedObject {
        TrackedObject {
            state: State::New,
            ..TrackedObject::from(object)
        }
    }

    pub fn object_id(&self) -> Option<ObjectId> {
        self.object.object_id()
    }

    pub fn hostname(&self) -> Option<&str> {
        self.object.hostname()
    }

    pub fn servertype(&self) -> Option<&str> {
        self.object.servertype()
    }

    pub fn get(&self, attribute: &str) -> Option<&Value> {
        self.object.get(attribute)
    }

    /// The object with its current (possibly changed) values.
    pub fn object(&self) -> &Object {
        &self.object
    }

    pub fn into_object(self) -> Object {
        self.object
    }

    /// Change an attribute locally. The value read from the server is kept
    /// as the `old` value the commit will compare against.
    pub fn set(&mut self, attribute: &str, value: impl Into<Value>) {
        let previous = self
            .object
            .fields
            .insert(attribute.to_string(), value.into())
            .unwrap_or(Value::Null);
        if self.state != State::New {
            self.originals
                .entry(attribute.to_string())
                .or_insert(previous);
        }
    }

    /// Mark the object to be deleted by the next commit built from it.
    pub fn delete(&mut self) {
        self.state = State::Deleted;
    }

    /// Whether a commit built from this object would do anything.
    pub fn is_dirty(&self) -> bool {
        match self.state {
            State::New | State::Deleted => true,
            State::Saved => self.changed_attributes().next().is_some(),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// `(attribute, old, new)` for every attribute whose value differs from
    /// the one read.
    pub(crate) fn changed_attributes(&self) -> impl Iterator<Item = (&str, &Value, &Value)> {
        self.originals.iter().filter_map(|(attribute, old)| {
            let new = self.object.fields.get(attribute).unwrap_or(&Value::Null);
            (new != old).then_some((attribute.as_str(), old, new))
        })
    }

    /// Forget local changes as saved (after a successful commit).
    pub fn mark_saved(&mut self) {
        self.originals.clear();
        self.state = State::Saved;
    }
}

impl std::ops::Deref for TrackedObject {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> TrackedObject {
        let object: Object =
            serde_json::from_str(r#"{"object_id":7,"hostname":"vm1","memory":1024}"#).unwrap();
        TrackedObject::from(object)
    }

    #[test]
    fn the_first_read_value_is_the_old_value_after_many_sets() {
        let mut o = vm();
        o.set("memory", 2048);
        o.set("memory", 4096);
        let changes: Vec<_> = o.changed_attributes().collect();
        assert_eq!(
            changes,
            vec![("memory", &Value::number(1024), &Value::number(4096))]
        );
    }

    #[test]
    fn setting_a_value_back_is_no_change() {
        let mut o = vm();
        o.set("memory", 2048);
        o.set("memory", 1024);
        assert!(!o.is_dirty());
    }
}
