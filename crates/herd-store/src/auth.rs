//! The `AuthStore` trait: users, their SSH keys and tokens, ACL groups, and
//! the nonces of herd's replay window. Nonces live where every server of an
//! installation sees them: in the database for PostgreSQL (several servers
//! share one replay window), in process memory for SQLite (one process per
//! database file is enforced; a restart forgets the last window's nonces).
//!
//! Contract every engine keeps:
//! - a key (by `SHA256:` fingerprint) belongs to exactly one user: adding a
//!   key another user owns is a [`StoreError::Validation`] with rule
//!   `key_owned` naming the owner (taken names: `user_exists`,
//!   `token_exists`);
//! - user and group names are unique; a token name is unique per user and
//!   its `app_id` (SHA-1 hex of the secret) unique overall;
//! - [`AuthStore::remember_nonce`] is atomic: of two servers (or threads)
//!   recording the same nonce at once, exactly one gets `true`.

use crate::StoreError;

/// An API user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Superuser: no ACL applies, may manage users.
    pub admin: bool,
    /// May query, may not commit.
    pub read_only: bool,
    /// Refused at authentication.
    pub disabled: bool,
}

/// A registered SSH public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// `SHA256:...`, as `ssh-keygen -l` prints it; the key's identity.
    pub fingerprint: String,
    pub user: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    pub algorithm: String,
    /// The OpenSSH public key line (`algorithm base64 [comment]`).
    pub public_key: String,
}

/// An API token. The secret is stored because both HMAC schemes need it to
/// recompute the MAC (see docs/auth.md for the threat model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    pub user: String,
    pub name: String,
    /// SHA-1 hex of the secret: serveradmin's `X-Application`.
    pub app_id: String,
    /// Empty in listings; filled only by [`AuthStore::token_by_app_id`].
    pub secret: String,
}

/// Whether an ACL group's attribute list allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeMode {
    /// Only the listed attributes may be changed.
    Allow,
    /// Every attribute but the listed ones may be changed.
    Deny,
}

/// A group of users allowed to commit changes to the objects its query
/// selects, restricted to some attributes (serveradmin's access control
/// groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclGroup {
    pub name: String,
    /// Text query (`servertype=vm project=web`) scoping the objects.
    pub query: String,
    pub mode: AttributeMode,
    pub attributes: Vec<String>,
    pub members: Vec<String>,
}

/// Users, keys, tokens, ACL groups and nonces.
pub trait AuthStore: Send + Sync + 'static {
    /// Creates a user; rule `user_exists` if the name is taken.
    fn add_user(&self, user: &User) -> Result<(), StoreError>;
    /// `NotFound` if there is no such user.
    fn user(&self, name: &str) -> Result<User, StoreError>;
    /// All users, by name.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Disables or enables a user.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError>;

    /// Registers a key; rule `key_owned` if any user already owns it.
    fn add_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Keys of one user, or of everyone, by user then fingerprint.
    fn keys(&self, user: Option<&str>) -> Result<Vec<StoredKey>, StoreError>;
    /// Removes a key by fingerprint and returns it.
    fn remove_key(&self, fingerprint: &str) -> Result<StoredKey, StoreError>;
    /// The registered keys among `fingerprints`, each with its owner.
    fn key_owners(&self, fingerprints: &[String]) -> Result<Vec<(String, User)>, StoreError>;

    /// Registers a token; rule `token_exists` if the user has one of that name.
    fn add_token(&self, token: &StoredToken) -> Result<(), StoreError>;
    /// Tokens of one user or of everyone, secrets left empty.
    fn tokens(&self, user: Option<&str>) -> Result<Vec<StoredToken>, StoreError>;
    /// Removes a user's token by name.
    fn remove_token(&self, user: &str, name: &str) -> Result<(), StoreError>;
    /// The token with this `app_id`, secret included, and its owner.
    fn token_by_app_id(&self, app_id: &str) -> Result<Option<(StoredToken, User)>, StoreError>;

    /// Creates or replaces a group (members included).
    fn put_group(&self, group: &AclGroup) -> Result<(), StoreError>;
    /// All groups, by name.
    fn groups(&self) -> Result<Vec<AclGroup>, StoreError>;
    /// Groups `user` is a member of.
    fn groups_of(&self, user: &str) -> Result<Vec<AclGroup>, StoreError>;
    /// Removes a group.
    fn remove_group(&self, name: &str) -> Result<(), StoreError>;

    /// Records `nonce` until `expires_at`; `false` if it is already
    /// recorded and not expired. Forgets expired nonces on the way.
    fn remember_nonce(&self, nonce: &str, expires_at: i64, now: i64) -> Result<bool, StoreError>;

    /// Whether what authenticating a request needs (`key_owners`,
    /// `token_by_app_id`, `groups_of`, `remember_nonce`) is answered
    /// without waiting on the network or on a writer's disk I/O. The HTTP
    /// server then verifies requests on its own threads instead of a
    /// blocking pool.
    fn fast_reads(&self) -> bool {
        false
    }
}
