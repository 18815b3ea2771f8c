//! Building a [`herd_model::Commit`] from tracked objects: creations,
//! attribute changes with the values read as `old`, and deletions.

use crate::object::{State, TrackedObject};
use herd_model::{AttributeChange, Change, Commit, Value};

/// The commit that saves these objects. Objects that exist on the server
/// but have no `object_id` (read with a `restrict` that left it out) cannot
/// be addressed and are skipped; include `object_id` in the restrict.
pub fn commit_of<'a>(objects: impl IntoIterator<Item = &'a TrackedObject>) -> Commit {
    let mut commit = Commit::default();
    for object in objects {
        add_changes(&mut commit, object);
    }
    commit
}

/// Add what it takes to save `object` to `commit`.
pub fn add_changes(commit: &mut Commit, object: &TrackedObject) {
    match (object.state(), object.object_id()) {
        (State::New, _) => commit.created.push(object.object().clone()),
        (State::Deleted, Some(id)) => commit.deleted.push(id),
        (State::Saved, Some(id)) => {
            let mut change = Change::new(id);
            for (attribute, old, new) in object.changed_attributes() {
                change
                    .attributes
                    .insert(attribute.to_string(), change_between(old, new));
            }
            if !change.attributes.is_empty() {
                commit.changed.push(change);
            }
        }
        (_, None) => {}
    }
}

/// A multi attribute (a set on either side) changes by adding and removing
/// values, so values others added meanwhile are kept; anything else is a
/// compare-and-swap update.
fn change_between(old: &Value, new: &Value) -> AttributeChange {
    let as_set = |v: &Value| match v {
        Value::Set(items) => Some(items.clone()),
        Value::Null => Some(Vec::new()),
        _ => None,
    };
    let either_is_set = matches!(old, Value::Set(_)) || matches!(new, Value::Set(_));
    match (as_set(old), as_set(new)) {
        (Some(o), Some(n)) if either_is_set => AttributeChange::Multi {
            add: n.iter().filter(|v| !o.contains(v)).cloned().collect(),
            remove: o.iter().filter(|v| !n.contains(v)).cloned().collect(),
        },
        _ => AttributeChange::Update {
            old: old.clone(),
            new: new.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_model::Object;
    use serde_json::json;

    fn tracked(json: &str) -> TrackedObject {
        TrackedObject::from(serde_json::from_str::<Object>(json).unwrap())
    }

    fn wire(commit: &Commit) -> serde_json::Value {
        serde_json::to_value(commit).unwrap()
    }

    #[test]
    fn changed_objects_become_updates_with_the_value_read_as_old() {
        let mut vm = tracked(r#"{"object_id":7,"hostname":"vm1","memory":1024}"#);
        vm.set("memory", 2048);
        assert_eq!(
            wire(&commit_of([&vm])),
            json!({"created": [], "deleted": [], "changed": [
                {"object_id": 7, "memory": {"action": "update", "old": 1024, "new": 2048}}
            ]})
        );
    }

    #[test]
    fn multi_attributes_change_by_adding_and_removing() {
        let mut vm = tracked(r#"{"object_id":7,"tags":["a","b"]}"#);
        vm.set("tags", Value::set(vec!["b".into(), "c".into()]));
        assert_eq!(
            wire(&commit_of([&vm]))["changed"][0]["tags"],
            json!({"action": "multi", "add": ["c"], "remove": ["a"]})
        );
    }

    #[test]
    fn new_and_deleted_objects_go_to_created_and_deleted() {
        let mut new = TrackedObject::new_unsaved(
            serde_json::from_str(r#"{"hostname":"vm2","servertype":"vm"}"#).unwrap(),
        );
        new.set("memory", 512);
        let mut old = tracked(r#"{"object_id":3,"hostname":"vm0"}"#);
        old.delete();
        let json = wire(&commit_of([&new, &old]));
        assert_eq!(
            json["created"],
            json!([{"hostname": "vm2", "servertype": "vm", "memory": 512}])
        );
        assert_eq!(json["deleted"], json!([3]));
    }

    #[test]
    fn unchanged_objects_add_nothing() {
        let vm = tracked(r#"{"object_id":7,"memory":1024}"#);
        assert!(commit_of([&vm]).is_empty());
    }
}
