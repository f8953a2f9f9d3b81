//! Schema changes as pure functions: each checks the request against the
//! current schema and returns the [`Entry`] to merge, save and gossip.
//! The caller stamps them ([`Stamp::next`]) and applies them with
//! [`Schema::merge_entry`].

use crate::auth::{Credentials, Grant, IssuedToken, Role, Scope, SecretHash, UserDef};
use crate::config::Config;

use super::{Body, Entry, EntryKey, KeyspaceDef, Schema, SchemaError, Stamp};

impl Schema {
    /// Seeds the config file's keyspaces and `default` with [`Stamp::ZERO`],
    /// each only when the schema has no entry of that name (live or dropped):
    /// the config is the initial schema only.
    pub fn seed_from_config(&mut self, config: &Config) {
        let r = &config.replication;
        let default = KeyspaceDef {
            conflict_mode: r.default_keyspace_conflict_mode,
            ..KeyspaceDef::named(crate::DEFAULT_KEYSPACE)
        };
        let defs = std::iter::once(default).chain(config.keyspaces.iter().map(KeyspaceDef::from_config));
        for def in defs {
            let key = EntryKey::keyspace(&def.name);
            if self.entry(&key).is_none() {
                self.merge_entry(Entry { key, stamp: Stamp::ZERO, body: Body::Keyspace(def) });
            }
        }
    }

    /// Creates a keyspace (a dropped name may be created again).
    pub fn create_keyspace(&self, def: KeyspaceDef, stamp: Stamp) -> Result<Entry, SchemaError> {
        def.validate()?;
        if self.keyspace(&def.name).is_some() {
            return Err(SchemaError::KeyspaceExists { name: def.name });
        }
        Ok(Entry { key: EntryKey::keyspace(&def.name), stamp, body: Body::Keyspace(def) })
    }

    /// Replaces a live keyspace's definition.
    pub fn alter_keyspace(&self, def: KeyspaceDef, stamp: Stamp) -> Result<Entry, SchemaError> {
        def.validate()?;
        self.live_keyspace(&def.name)?;
        Ok(Entry { key: EntryKey::keyspace(&def.name), stamp, body: Body::Keyspace(def) })
    }

    /// Drops a live keyspace (not `default`): a tombstone.
    pub fn drop_keyspace(&self, name: &str, stamp: Stamp) -> Result<Entry, SchemaError> {
        if name == crate::DEFAULT_KEYSPACE || name.is_empty() {
            return Err(SchemaError::DefaultKeyspace);
        }
        self.live_keyspace(name)?;
        Ok(Entry { key: EntryKey::keyspace(name), stamp, body: Body::Tombstone })
    }

    fn live_keyspace(&self, name: &str) -> Result<&KeyspaceDef, SchemaError> {
        match self.entry(&EntryKey::keyspace(name)).map(|e| &e.body) {
            Some(Body::Keyspace(def)) => Ok(def),
            Some(Body::Tombstone) => Err(SchemaError::KeyspaceDropped { name: name.to_owned() }),
            _ => Err(SchemaError::KeyspaceNotLearned { name: name.chars().take(64).collect() }),
        }
    }

    /// Creates a user; `secret` is `None` for a certificate-only user.
    pub fn create_user(&self, user: UserDef, stamp: Stamp) -> Result<Entry, SchemaError> {
        if self.user(&user.name).is_some() {
            return Err(SchemaError::UserExists { name: user.name });
        }
        for grant in &user.grants {
            self.check_grant_scope(&grant.scope)?;
        }
        Ok(Entry { key: EntryKey::user(&user.name), stamp, body: Body::User(user) })
    }

    /// Grants `role` on `scope` to a user; the keyspace must exist.
    pub fn grant(&self, name: &str, grant: Grant, stamp: Stamp) -> Result<Entry, SchemaError> {
        self.check_grant_scope(&grant.scope)?;
        self.change_user(name, stamp, |u| {
            u.grants.insert(grant);
        })
    }

    /// Revokes every role on `scope` from a user.
    pub fn revoke(&self, name: &str, scope: &Scope, stamp: Stamp) -> Result<Entry, SchemaError> {
        self.change_user(name, stamp, |u| u.grants.retain(|g| g.scope != *scope))
    }

    /// Adds a new secret to a user; the previous one stays valid until [`Self::retire_secrets`].
    pub fn rotate_secret(&self, name: &str, secret: SecretHash, stamp: Stamp) -> Result<Entry, SchemaError> {
        self.change_user(name, stamp, |u| u.rotate(secret))
    }

    /// Ends a rotation: only the user's newest secret stays valid.
    pub fn retire_secrets(&self, name: &str, stamp: Stamp) -> Result<Entry, SchemaError> {
        self.change_user(name, stamp, UserDef::retire_previous)
    }

    /// Drops a user: a tombstone (its tokens stop working everywhere the drop has spread).
    pub fn drop_user(&self, name: &str, stamp: Stamp) -> Result<Entry, SchemaError> {
        self.existing_user(name)?;
        Ok(Entry { key: EntryKey::user(name), stamp, body: Body::Tombstone })
    }

    fn existing_user(&self, name: &str) -> Result<&UserDef, SchemaError> {
        self.user(name).ok_or_else(|| SchemaError::UnknownUser { name: name.chars().take(64).collect() })
    }

    fn change_user(&self, name: &str, stamp: Stamp, change: impl FnOnce(&mut UserDef)) -> Result<Entry, SchemaError> {
        let mut user = self.existing_user(name)?.clone();
        change(&mut user);
        Ok(Entry { key: EntryKey::user(name), stamp, body: Body::User(user) })
    }

    fn check_grant_scope(&self, scope: &Scope) -> Result<(), SchemaError> {
        match scope {
            Scope::All => Ok(()),
            Scope::Keyspace(k) if self.keyspace(k).is_some() => Ok(()),
            Scope::Keyspace(k) => Err(SchemaError::GrantOnUnknownKeyspace { name: k.chars().take(64).collect() }),
        }
    }

    /// The bootstrap admin: when the schema has no entry for the token's user
    /// (live or dropped: a dropped admin is not brought back), the entry that
    /// creates it with `admin` on `*`. `credentials` come from
    /// [`super::store::bootstrap_credentials`].
    pub fn bootstrap_admin(
        &self,
        credentials: &Credentials,
        stamp: Stamp,
    ) -> Result<Option<Entry>, crate::auth::AuthError> {
        if self.entry(&EntryKey::user(&credentials.user)).is_some() {
            return Ok(None);
        }
        let hash = SecretHash::new(&credentials.secret);
        let admin = Grant { scope: Scope::All, role: Role::Admin };
        let user = UserDef::new(&credentials.user, Some(hash), [admin])?;
        Ok(Some(Entry { key: EntryKey::user(&user.name), stamp, body: Body::User(user) }))
    }
}

/// A new user with a generated token: the entry to merge and the token to show once.
pub fn new_user_with_token(
    schema: &Schema,
    name: &str,
    grants: Vec<Grant>,
    stamp: Stamp,
) -> Result<(Entry, IssuedToken), UserCreateError> {
    let token = IssuedToken::generate(name)?;
    let user = UserDef::new(name, Some(token.hash()), grants)?;
    Ok((schema.create_user(user, stamp)?, token))
}

/// Why [`new_user_with_token`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserCreateError {
    /// A bad user name.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The schema refused the user.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}
