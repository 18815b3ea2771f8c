//! Who may change what: roles per route and serveradmin's ACL groups on
//! commits.
//!
//! A commit by a user who is neither superuser nor read-only is allowed
//! when **one** of the user's groups allows all of it (serveradmin's rule):
//! every created object, every changed object before and after the change,
//! and every deleted object matches the group's query, and every changed
//! attribute passes the group's allow-list or deny-list. Otherwise the
//! refusal lists, per group, which rule denied what.
//!
//! [`decide`] is pure (facts in, verdict out); [`authorize_commit`] gathers
//! the facts from the stores.

use crate::auth::Auth;
use crate::error::ApiError;
use crate::AppState;
use herd_auth::{Account, Principal};
use herd_model::compile::NoNetworks;
use herd_model::{
    compile, parse_query, AttributeChange, Commit, CompiledQuery, Filter, Number, Object, ObjectId,
    Query, Value,
};
use herd_store::auth::{AclGroup, AttributeMode};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a request was refused by a role or an ACL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclDenied {
    #[error("user '{user}' is read-only: it may query but not {action}")]
    ReadOnly { user: String, action: String },
    #[error("only administrators may change the schema, and user '{user}' is not one")]
    AdminOnly { user: String },
    #[error("user '{user}' belongs to no ACL group, so it may not commit: ask an administrator to add it to one (`herd user group add`)")]
    NoGroup { user: String },
    #[error("commit refused for user '{user}': {}", render(.groups))]
    Denied {
        user: String,
        groups: Vec<GroupVerdict>,
    },
}

/// What one group found wrong with a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVerdict {
    pub group: String,
    pub violations: Vec<String>,
}

fn render(groups: &[GroupVerdict]) -> String {
    groups
        .iter()
        .map(|g| format!("group '{}': {}", g.group, g.violations.join("; ")))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Role rules per route: read-only users may only read and query;
/// changing the schema is for administrators.
pub fn check_route(user: &Account, method: &str, path: &str) -> Result<(), AclDenied> {
    let reads = method == "GET" || method == "HEAD" || path == "/api/dataset/query";
    if user.read_only && !reads {
        return Err(AclDenied::ReadOnly {
            user: user.name.clone(),
            action: format!("{method} {path}"),
        });
    }
    if path.starts_with("/api/schema") && !reads && !user.admin {
        return Err(AclDenied::AdminOnly {
            user: user.name.clone(),
        });
    }
    Ok(())
}

/// A group with its query compiled against the schema.
pub struct Scope {
    pub group: AclGroup,
    /// `Err` when the group's query no longer fits the schema: such a group
    /// allows nothing, and says why.
    pub filters: Result<CompiledQuery, String>,
}

/// The verdict on one commit, from the facts: the user's groups and the
/// changed and deleted objects as they are now (by id).
pub fn decide(
    user: &Account,
    scopes: &[Scope],
    commit: &Commit,
    before: &BTreeMap<ObjectId, Object>,
) -> Result<(), AclDenied> {
    if user.admin {
        return Ok(());
    }
    if user.read_only {
        return Err(AclDenied::ReadOnly {
            user: user.name.clone(),
            action: "commit".into(),
        });
    }
    if scopes.is_empty() {
        return Err(AclDenied::NoGroup {
            user: user.name.clone(),
        });
    }
    let mut verdicts = Vec::new();
    for scope in scopes {
        let violations = violations(scope, commit, before);
        if violations.is_empty() {
            return Ok(());
        }
        verdicts.push(GroupVerdict {
            group: scope.group.name.clone(),
            violations,
        });
    }
    Err(AclDenied::Denied {
        user: user.name.clone(),
        groups: verdicts,
    })
}

fn violations(scope: &Scope, commit: &Commit, before: &BTreeMap<ObjectId, Object>) -> Vec<String> {
    let group = &scope.group;
    let filters = match &scope.filters {
        Ok(f) => f,
        Err(e) => {
            return vec![format!(
                "its query '{}' does not fit the schema ({e})",
                group.query
            )]
        }
    };
    let out_of_scope = |what: &str| format!("{what} is outside its scope '{}'", group.query);
    let mut found = Vec::new();
    for object in &commit.created {
        let name = name_of(object);
        if !in_scope(filters, object) {
            found.push(out_of_scope(&format!("new object {name}")));
        }
        for attribute in object.fields.keys() {
            if attribute != "object_id" && !attribute_allowed(group, attribute) {
                found.push(attribute_denied(group, attribute, &name));
            }
        }
    }
    for change in &commit.changed {
        let Some(old) = before.get(&change.object_id) else {
            continue; // the store reports the missing object
        };
        let name = name_of(old);
        if !in_scope(filters, old) {
            found.push(out_of_scope(&format!("object {name}")));
            continue;
        }
        for attribute in change.attributes.keys() {
            if !attribute_allowed(group, attribute) {
                found.push(attribute_denied(group, attribute, &name));
            }
        }
        if !in_scope(filters, &apply(old, &change.attributes)) {
            found.push(format!(
                "the change would move object {name} out of its scope '{}'",
                group.query
            ));
        }
    }
    for id in &commit.deleted {
        if let Some(old) = before.get(id) {
            if !in_scope(filters, old) {
                found.push(out_of_scope(&format!("deleted object {}", name_of(old))));
            }
        }
    }
    found
}

fn attribute_allowed(group: &AclGroup, attribute: &str) -> bool {
    let listed = group.attributes.iter().any(|a| a == attribute);
    match group.mode {
        AttributeMode::Allow => listed,
        AttributeMode::Deny => !listed,
    }
}

fn attribute_denied(group: &AclGroup, attribute: &str, object: &str) -> String {
    match group.mode {
        AttributeMode::Allow => format!(
            "attribute '{attribute}' of {object} is not in its allow-list [{}]",
            group.attributes.join(", ")
        ),
        AttributeMode::Deny => format!("attribute '{attribute}' of {object} is in its deny-list"),
    }
}

fn in_scope(filters: &CompiledQuery, object: &Object) -> bool {
    filters.filters.iter().all(|(attribute, matcher)| {
        matcher.matches(
            object.fields.get(attribute).unwrap_or(&Value::Null),
            &NoNetworks,
        )
    })
}

fn name_of(object: &Object) -> String {
    match (object.fields.get("hostname"), object.object_id()) {
        (Some(Value::String(h)), _) => h.clone(),
        (_, Some(id)) => format!("#{id}"),
        _ => "(unnamed)".to_string(),
    }
}

/// The object as it would be after the change.
fn apply(object: &Object, changes: &BTreeMap<String, AttributeChange>) -> Object {
    let mut after = object.clone();
    for (attribute, change) in changes {
        let value = match change {
            AttributeChange::Update { new, .. } | AttributeChange::New { new } => new.clone(),
            AttributeChange::Delete { .. } => Value::Null,
            AttributeChange::Multi { add, remove } => {
                let mut items = match after.fields.get(attribute) {
                    Some(Value::Set(items)) => items.clone(),
                    _ => Vec::new(),
                };
                items.retain(|v| !remove.contains(v));
                items.extend(add.iter().cloned());
                items.sort();
                items.dedup();
                Value::Set(items)
            }
        };
        after.fields.insert(attribute.clone(), value);
    }
    after
}

/// Gather the facts for [`decide`] and apply it to the commit in `body`.
/// A body that is not a commit is left to the handler to refuse.
pub async fn authorize_commit(
    state: &AppState,
    auth: &Arc<Auth>,
    principal: &Principal,
    body: &[u8],
) -> Result<(), ApiError> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    let Ok(commit) = crate::dataset::parse_commit(json) else {
        return Ok(());
    };
    let user = principal.user.clone();
    let groups = {
        let auth = Arc::clone(auth);
        let name = user.name.clone();
        tokio::task::spawn_blocking(move || auth.store.groups_of(&name))
            .await
            .map_err(|e| ApiError::internal(format!("acl task failed: {e}")))??
    };
    let ids: Vec<ObjectId> = commit
        .changed
        .iter()
        .map(|c| c.object_id)
        .chain(commit.deleted.iter().copied())
        .collect();
    let (schema, objects) = state
        .with_store(move |store| {
            let schema = store.schema()?;
            let objects = if ids.is_empty() {
                Vec::new()
            } else {
                let any = ids
                    .iter()
                    .map(|id| Filter::Equals(Value::Number(Number::from_i64(*id))))
                    .collect();
                store.query(&Query::filter("object_id", Filter::Any(any)))?
            };
            Ok((schema, objects))
        })
        .await?;
    let before: BTreeMap<ObjectId, Object> = objects
        .into_iter()
        .filter_map(|o| o.object_id().map(|id| (id, o)))
        .collect();
    let scopes: Vec<Scope> = groups
        .into_iter()
        .map(|group| {
            let filters = parse_query(&group.query)
                .map_err(|e| e.to_string())
                .and_then(|q| compile(&q, &schema).map_err(|e| e.to_string()));
            Scope { group, filters }
        })
        .collect();
    decide(&user, &scopes, &commit, &before)
        .map_err(|denied| ApiError::Forbidden(denied.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herd_model::{Change, Schema};

    fn schema() -> Schema {
        serde_json::from_value(serde_json::json!({
            "attributes": {
                "project": {"attribute_id": "project", "type": "string"},
                "os": {"attribute_id": "os", "type": "string"},
                "num_cpu": {"attribute_id": "num_cpu", "type": "number"},
            },
            "servertypes": {}
        }))
        .unwrap()
    }

    fn user(name: &str) -> Account {
        Account {
            name: name.into(),
            admin: false,
            read_only: false,
            disabled: false,
        }
    }

    fn scope(name: &str, query: &str, mode: AttributeMode, attributes: &[&str]) -> Scope {
        let group = AclGroup {
            name: name.into(),
            query: query.into(),
            mode,
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            members: vec![],
        };
        let filters = compile(&parse_query(query).unwrap(), &schema()).map_err(|e| e.to_string());
        Scope { group, filters }
    }

    fn object(id: i64, hostname: &str, project: &str) -> Object {
        let mut o = Object::default();
        o.fields
            .insert("object_id".into(), Value::Number(Number::from_i64(id)));
        o.fields
            .insert("hostname".into(), Value::String(hostname.into()));
        o.fields
            .insert("project".into(), Value::String(project.into()));
        o.fields
            .insert("os".into(), Value::String("bookworm".into()));
        o
    }

    fn before() -> BTreeMap<ObjectId, Object> {
        [(1, object(1, "web1", "web")), (2, object(2, "db1", "db"))].into()
    }

    fn set_os(id: i64) -> Commit {
        Commit {
            changed: vec![Change::new(id).update(
                "os",
                Value::String("bookworm".into()),
                Value::String("trixie".into()),
            )],
            ..Commit::default()
        }
    }

    /// One `check(commit, expect)` per case: `Ok` or a message fragment.
    fn check(scopes: &[Scope], who: &Account, commit: &Commit, expect: Result<(), &str>) {
        let got = decide(who, scopes, commit, &before());
        match (got, expect) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{e}"),
            (got, expect) => panic!("got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn group_allows_a_change_in_scope_to_an_allowed_attribute() {
        let scopes = [scope("web", "project=web", AttributeMode::Allow, &["os"])];
        check(&scopes, &user("bob"), &set_os(1), Ok(()));
    }

    #[test]
    fn change_outside_the_scope_is_denied_naming_group_and_query() {
        let scopes = [scope("web", "project=web", AttributeMode::Allow, &["os"])];
        check(
            &scopes,
            &user("bob"),
            &set_os(2),
            Err("group 'web': object db1 is outside its scope 'project=web'"),
        );
    }

    #[test]
    fn attribute_outside_the_allow_list_or_in_the_deny_list_is_denied() {
        let commit = Commit {
            changed: vec![Change::new(1).update(
                "num_cpu",
                Value::Null,
                Value::Number(Number::from_i64(4)),
            )],
            ..Commit::default()
        };
        let allow = [scope("web", "project=web", AttributeMode::Allow, &["os"])];
        check(
            &allow,
            &user("bob"),
            &commit,
            Err("attribute 'num_cpu' of web1 is not in its allow-list [os]"),
        );
        let deny = [scope(
            "web",
            "project=web",
            AttributeMode::Deny,
            &["num_cpu"],
        )];
        check(
            &deny,
            &user("bob"),
            &commit,
            Err("attribute 'num_cpu' of web1 is in its deny-list"),
        );
    }

    #[test]
    fn moving_an_object_out_of_scope_is_denied() {
        let commit = Commit {
            changed: vec![Change::new(1).update(
                "project",
                Value::String("web".into()),
                Value::String("db".into()),
            )],
            ..Commit::default()
        };
        let scopes = [scope("web", "project=web", AttributeMode::Deny, &[])];
        check(
            &scopes,
            &user("bob"),
            &commit,
            Err("would move object web1 out of its scope"),
        );
    }

    #[test]
    fn one_group_must_allow_the_whole_commit() {
        let scopes = [
            scope("web", "project=web", AttributeMode::Deny, &[]),
            scope("db", "project=db", AttributeMode::Deny, &[]),
        ];
        let mut both = set_os(1);
        both.changed.extend(set_os(2).changed);
        check(&scopes, &user("bob"), &both, Err("group 'web': object db1"));
        check(&scopes, &user("bob"), &set_os(2), Ok(()));
    }

    #[test]
    fn superuser_passes_read_only_and_groupless_users_are_refused() {
        let admin = Account {
            admin: true,
            ..user("root")
        };
        check(&[], &admin, &set_os(2), Ok(()));
        let ro = Account {
            read_only: true,
            ..user("audit")
        };
        check(&[], &ro, &set_os(1), Err("user 'audit' is read-only"));
        check(
            &[],
            &user("bob"),
            &set_os(1),
            Err("belongs to no ACL group"),
        );
    }

    #[test]
    fn read_only_users_may_query_but_not_commit_and_schema_is_for_admins() {
        let ro = Account {
            read_only: true,
            ..user("audit")
        };
        assert!(check_route(&ro, "POST", "/api/dataset/query").is_ok());
        assert!(check_route(&ro, "GET", "/api/dataset/attributes").is_ok());
        assert!(check_route(&ro, "POST", "/api/dataset/commit").is_err());
        let err = check_route(&user("bob"), "POST", "/api/schema").unwrap_err();
        assert_eq!(err, AclDenied::AdminOnly { user: "bob".into() });
    }
}
