//! [`AuthStore`] on PostgreSQL: users, keys, tokens, ACL groups and the
//! replay window's nonces, shared by every server on the database.
//!
//! `remember_nonce` is one statement (a bounded cleanup of expired nonces,
//! then `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`): the primary key makes it atomic across servers, so of two
//! servers seeing the same nonce exactly one accepts it.

use herd_store::auth::{AclGroup, AttributeMode, AuthStore, StoredKey, StoredToken, User};
use herd_store::StoreError;
use postgres::error::SqlState;
use postgres::{GenericClient, Row};

use crate::{internal, PgStore};

fn unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn user_of(r: &Row, at: usize) -> User {
    User {
        name: r.get(at),
        admin: r.get(at + 1),
        read_only: r.get(at + 2),
        disabled: r.get(at + 3),
    }
}

fn key_of(r: &Row) -> StoredKey {
    StoredKey {
        fingerprint: r.get(0),
        user: r.get(1),
        algorithm: r.get(2),
        public_key: r.get(3),
    }
}

fn get_user(c: &mut impl GenericClient, name: &str) -> Result<User, StoreError> {
    c.query_opt(
        "SELECT name, admin, read_only, disabled FROM auth_users WHERE name = $1",
        &[&name],
    )
    .map_err(internal)?
    .map(|r| user_of(&r, 0))
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no user '{name}': list users with `herd user list`"
        ))
    })
}

fn mode_text(mode: AttributeMode) -> &'static str {
    match mode {
        AttributeMode::Allow => "allow",
        AttributeMode::Deny => "deny",
    }
}

fn load_groups(
    c: &mut impl GenericClient,
    member: Option<&str>,
) -> Result<Vec<AclGroup>, StoreError> {
    let rows = c
        .query(
            "SELECT g.name, g.query, g.mode, g.attributes,
                    coalesce(array_agg(m.user_name ORDER BY m.user_name)
                             FILTER (WHERE m.user_name IS NOT NULL), '{}')
             FROM auth_groups g LEFT JOIN auth_group_members m ON m.group_name = g.name
             WHERE $1::text IS NULL
                OR g.name IN (SELECT group_name FROM auth_group_members WHERE user_name = $1)
             GROUP BY g.name ORDER BY g.name",
            &[&member],
        )
        .map_err(internal)?;
    Ok(rows
        .iter()
        .map(|r| AclGroup {
            name: r.get(0),
            query: r.get(1),
            mode: if r.get::<_, &str>(2) == "deny" {
                AttributeMode::Deny
            } else {
                AttributeMode::Allow
            },
            attributes: r.get(3),
            members: r.get(4),
        })
        .collect())
}

impl AuthStore for PgStore {
    fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let mut c = self.client()?;
        c.execute(
            "INSERT INTO auth_users (name, admin, read_only, disabled) VALUES ($1, $2, $3, $4)",
            &[&user.name, &user.admin, &user.read_only, &user.disabled],
        )
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict(format!("user '{}' already exists", user.name))
            } else {
                internal(e)
            }
        })?;
        Ok(())
    }

    fn user(&self, name: &str) -> Result<User, StoreError> {
        get_user(&mut *self.client()?, name)
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT name, admin, read_only, disabled FROM auth_users ORDER BY name",
                &[],
            )
            .map_err(internal)?;
        Ok(rows.iter().map(|r| user_of(r, 0)).collect())
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let n = self
            .client()?
            .execute(
                "UPDATE auth_users SET disabled = $2 WHERE name = $1",
                &[&name, &disabled],
            )
            .map_err(internal)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no user '{name}'")));
        }
        Ok(())
    }

    fn add_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut c = self.client()?;
        let mut tx = c.transaction().map_err(internal)?;
        get_user(&mut tx, &key.user)?;
        let inserted = tx
            .execute(
                "INSERT INTO auth_keys (fingerprint, user_name, algorithm, public_key)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO NOTHING",
                &[&key.fingerprint, &key.user, &key.algorithm, &key.public_key],
            )
            .map_err(internal)?;
        if inserted == 0 {
            let owner: String = tx
                .query_one(
                    "SELECT user_name FROM auth_keys WHERE fingerprint = $1",
                    &[&key.fingerprint],
                )
                .map_err(internal)?
                .get(0);
            return Err(StoreError::Conflict(format!(
                "key {} already belongs to user '{owner}': one key belongs to exactly one user; remove it there first (`herd key remove {}`)",
                key.fingerprint, key.fingerprint
            )));
        }
        tx.commit().map_err(internal)
    }

    fn keys(&self, user: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT fingerprint, user_name, algorithm, public_key FROM auth_keys
                 WHERE $1::text IS NULL OR user_name = $1 ORDER BY user_name, fingerprint",
                &[&user],
            )
            .map_err(internal)?;
        Ok(rows.iter().map(key_of).collect())
    }

    fn remove_key(&self, fingerprint: &str) -> Result<StoredKey, StoreError> {
        self.client()?
            .query_opt(
                "DELETE FROM auth_keys WHERE fingerprint = $1
                 RETURNING fingerprint, user_name, algorithm, public_key",
                &[&fingerprint],
            )
            .map_err(internal)?
            .map(|r| key_of(&r))
            .ok_or_else(|| {
                StoreError::NotFound(format!("no key {fingerprint}: see `herd key list`"))
            })
    }

    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<(String, User)>, StoreError> {
        let rows = self.prepared(
            "SELECT k.fingerprint, u.name, u.admin, u.read_only, u.disabled
             FROM unnest($1::text[]) WITH ORDINALITY f(fingerprint, n)
             JOIN auth_keys k USING (fingerprint)
             JOIN auth_users u ON u.name = k.user_name ORDER BY f.n",
            |c, statement| c.query(statement, &[&fingerprints]),
        )?;
        Ok(rows.iter().map(|r| (r.get(0), user_of(r, 1))).collect())
    }

    fn add_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        let mut c = self.client()?;
        get_user(&mut *c, &token.user)?;
        c.execute(
            "INSERT INTO auth_tokens (user_name, name, app_id, secret) VALUES ($1, $2, $3, $4)",
            &[&token.user, &token.name, &token.app_id, &token.secret],
        )
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict(format!(
                    "user '{}' already has a token named '{}' (or the secret is reused): pick another name or remove it first",
                    token.user, token.name
                ))
            } else {
                internal(e)
            }
        })?;
        Ok(())
    }

    fn tokens(&self, user: Option<&str>) -> Result<Vec<StoredToken>, StoreError> {
        let rows = self
            .client()?
            .query(
                "SELECT user_name, name, app_id FROM auth_tokens
                 WHERE $1::text IS NULL OR user_name = $1 ORDER BY user_name, name",
                &[&user],
            )
            .map_err(internal)?;
        Ok(rows
            .iter()
            .map(|r| StoredToken {
                user: r.get(0),
                name: r.get(1),
                app_id: r.get(2),
                secret: String::new(),
            })
            .collect())
    }

    fn remove_token(&self, user: &str, name: &str) -> Result<(), StoreError> {
        let n = self
            .client()?
            .execute(
                "DELETE FROM auth_tokens WHERE user_name = $1 AND name = $2",
                &[&user, &name],
            )
            .map_err(internal)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "user '{user}' has no token '{name}'"
            )));
        }
        Ok(())
    }

    fn token_by_app_id(&self, app_id: &str) -> Result<Option<(StoredToken, User)>, StoreError> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT t.user_name, t.name, t.app_id, t.secret, u.name, u.admin, u.read_only, u.disabled
                 FROM auth_tokens t JOIN auth_users u ON u.name = t.user_name WHERE t.app_id = $1",
                &[&app_id],
            )
            .map_err(internal)?
            .map(|r| {
                (
                    StoredToken {
                        user: r.get(0),
                        name: r.get(1),
                        app_id: r.get(2),
                        secret: r.get(3),
                    },
                    user_of(&r, 4),
                )
            }))
    }

    fn put_group(&self, group: &AclGroup) -> Result<(), StoreError> {
        let mut c = self.client()?;
        let mut tx = c.transaction().map_err(internal)?;
        for member in &group.members {
            get_user(&mut tx, member)?;
        }
        tx.execute(
            "INSERT INTO auth_groups (name, query, mode, attributes) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET query = $2, mode = $3, attributes = $4",
            &[
                &group.name,
                &group.query,
                &mode_text(group.mode),
                &group.attributes,
            ],
        )
        .map_err(internal)?;
        tx.execute(
            "DELETE FROM auth_group_members WHERE group_name = $1",
            &[&group.name],
        )
        .map_err(internal)?;
        tx.execute(
            "INSERT INTO auth_group_members (group_name, user_name)
             SELECT $1, m FROM unnest($2::text[]) m ON CONFLICT DO NOTHING",
            &[&group.name, &group.members],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)
    }

    fn groups(&self) -> Result<Vec<AclGroup>, StoreError> {
        load_groups(&mut *self.client()?, None)
    }

    fn groups_of(&self, user: &str) -> Result<Vec<AclGroup>, StoreError> {
        load_groups(&mut *self.client()?, Some(user))
    }

    fn remove_group(&self, name: &str) -> Result<(), StoreError> {
        let n = self
            .client()?
            .execute("DELETE FROM auth_groups WHERE name = $1", &[&name])
            .map_err(internal)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no group '{name}'")));
        }
        Ok(())
    }

    fn remember_nonce(&self, nonce: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        // One statement, so one transaction and one WAL flush per request:
        // forget a few expired nonces on the way (bounded, so no request
        // pays for all; never the one being recorded, which the insert
        // takes over when it has expired), then record this one.
        let recorded = self.prepared(
            "WITH forgotten AS (
                 DELETE FROM auth_nonces WHERE nonce IN
                     (SELECT nonce FROM auth_nonces WHERE expires_at <= $3 AND nonce <> $1 LIMIT 100))
             INSERT INTO auth_nonces (nonce, expires_at) VALUES ($1, $2)
             ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
             WHERE auth_nonces.expires_at <= $3",
            |c, statement| c.execute(statement, &[&nonce, &expires_at, &now]),
        )?;
        Ok(recorded == 1)
    }
}
