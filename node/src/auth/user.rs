//! A user as the cluster schema stores it, and how callers become principals.
//!
//! A user holds one or two secret hashes: rotation ([`UserDef::rotate`]) adds
//! a new secret and keeps the previous one valid until
//! [`UserDef::retire_previous`], so clients can move to the new token without
//! a window of failures. Client certificates map to users by name: the
//! certificate's CN or any SAN name equal to a user's name.
//!
//! Pure: lookups go through a closure so this module does not depend on the schema.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::token::{Credentials, SecretHash};
use super::{AuthError, Grant, Principal, valid_user_name};

/// Secrets a user may hold at once (the current one and, during rotation, the previous one).
pub const MAX_SECRETS: usize = 2;

/// A user: name, hashed secrets (newest last), grants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserDef {
    /// The user name.
    pub name: String,
    /// Hashes of the valid secrets, oldest first; at most [`MAX_SECRETS`].
    /// Empty for a user that only authenticates with a client certificate.
    pub secrets: Vec<SecretHash>,
    /// What the user may do.
    pub grants: BTreeSet<Grant>,
}

impl UserDef {
    /// A user with one secret (or none, for certificate-only users) and `grants`.
    pub fn new(
        name: &str,
        secret: Option<SecretHash>,
        grants: impl IntoIterator<Item = Grant>,
    ) -> Result<Self, AuthError> {
        if !valid_user_name(name) {
            return Err(AuthError::BadUserName);
        }
        Ok(Self { name: name.to_owned(), secrets: secret.into_iter().collect(), grants: grants.into_iter().collect() })
    }

    /// Adds `new` as the current secret; the previous current one stays valid, older ones are dropped.
    pub fn rotate(&mut self, new: SecretHash) {
        self.secrets.push(new);
        let excess = self.secrets.len().saturating_sub(MAX_SECRETS);
        self.secrets.drain(..excess);
    }

    /// Ends a rotation: only the newest secret stays valid.
    pub fn retire_previous(&mut self) {
        let excess = self.secrets.len().saturating_sub(1);
        self.secrets.drain(..excess);
    }

    /// True when `credentials` are this user's name and one of its secrets.
    /// Checks every stored hash (no early exit), each in constant time.
    pub fn verify(&self, credentials: &Credentials) -> bool {
        let matched = self.secrets.iter().fold(false, |found, h| h.verify(&credentials.secret) | found);
        matched && credentials.user == self.name
    }

    /// The user as an authenticated principal.
    pub fn principal(&self) -> Principal {
        Principal { user: self.name.clone(), grants: self.grants.iter().cloned().collect() }
    }

    /// True when the definition can be stored (checked on entries from peers).
    pub fn is_well_formed(&self) -> bool {
        valid_user_name(&self.name)
            && self.secrets.len() <= MAX_SECRETS
            && self.secrets.iter().all(SecretHash::is_well_formed)
    }
}

/// Authenticates `credentials` against the users `lookup` knows.
pub fn authenticate<F>(credentials: &Credentials, lookup: F) -> Result<Principal, AuthError>
where
    F: FnOnce(&str) -> Option<UserDef>,
{
    match lookup(&credentials.user) {
        Some(user) if user.verify(credentials) => Ok(user.principal()),
        _ => Err(AuthError::InvalidCredentials { user: credentials.user.clone() }),
    }
}

/// The user a client certificate names: its CN or a SAN equal to a user's name.
///
/// `names` are the certificate's names as the TLS layer reads them. Exactly
/// one distinct user must match: a certificate naming two users is refused
/// rather than guessed.
pub fn identify_certificate<F>(names: &[String], lookup: F) -> Result<Principal, AuthError>
where
    F: Fn(&str) -> Option<UserDef>,
{
    let mut found: Vec<UserDef> = Vec::new();
    for name in names.iter().filter(|n| valid_user_name(n)) {
        if let Some(user) = lookup(name)
            && !found.iter().any(|u| u.name == user.name)
        {
            found.push(user);
        }
    }
    match found.as_slice() {
        [user] => Ok(user.principal()),
        [] => Err(AuthError::UnknownCertificateUser { names: cut_names(names) }),
        many => Err(AuthError::AmbiguousCertificate {
            users: many.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The certificate names for an error message, bounded (they come from the network).
fn cut_names(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(4).map(|n| n.chars().take(64).collect()).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 { format!("{}, and {more} more", shown.join(", ")) } else { shown.join(", ") }
}
