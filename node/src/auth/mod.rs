//! Authentication and authorization: users, their secrets, roles per
//! keyspace, and the one authorization check every protocol edge calls.
//!
//! - [`token`]: the client credential (`<user>.<secret>`), its parser, the
//!   server-side generation and the salted hash stored in the schema.
//! - [`user`]: a user as stored in the cluster schema ([`UserDef`]: hashed
//!   secrets, grants), secret rotation, client-certificate mapping.
//! - here: [`Role`], [`Scope`], [`Grant`], [`Action`], [`Principal`] and
//!   [`authorize`], a pure function of the principal and the request.
//!
//! Roles are ordered: `read` < `write` (includes read) < `admin` (keyspace
//! and user management and topology operations). A grant applies to one
//! keyspace or to every keyspace (`*`). Cluster-wide actions (creating a
//! keyspace, managing users, decommission, removenode, repair, drain,
//! snapshot) need `admin` on `*`; altering or dropping keyspace `k` needs
//! `admin` on `k` or `*`.
//!
//! Invariants: no error message, log line or `Debug` output contains a secret
//! or a token (secrets are wrapped in [`token::Secret`], whose `Debug`
//! redacts). Pure: no I/O, no clock. May call nothing outside `auth` but the crate-root constants.

pub mod token;
pub mod user;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use token::{Credentials, IssuedToken, Secret, SecretHash};
pub use user::{UserDef, authenticate, identify_certificate};

/// What a grant allows, in increasing order: each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Read keys.
    Read,
    /// Read and write keys.
    Write,
    /// Everything: keyspace and user management, topology operations.
    Admin,
}

impl Role {
    /// The role's name as users write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        match text {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            _ => Err(AuthError::UnknownRole { role: text.chars().take(32).collect() }),
        }
    }
}

/// Where a grant applies: one keyspace, or all (`*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Scope {
    /// Every keyspace, present and future, and the cluster itself.
    All,
    /// One keyspace.
    Keyspace(String),
}

impl From<String> for Scope {
    fn from(s: String) -> Self {
        if s == "*" { Self::All } else { Self::Keyspace(s) }
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        match s {
            Scope::All => "*".to_owned(),
            Scope::Keyspace(k) => k,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Keyspace(k) => f.write_str(k),
        }
    }
}

/// One role on one scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Where it applies.
    pub scope: Scope,
    /// What it allows.
    pub role: Role,
}

/// What a request asks to do; the protocol edges map each call to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Read keys of a keyspace (GET, LIST, SCAN).
    Read,
    /// Write keys of a keyspace (PUT, DELETE, batch).
    Write,
    /// List keyspaces, cluster status: any authenticated user.
    Describe,
    /// Create a keyspace.
    CreateKeyspace,
    /// Alter a keyspace's settings.
    AlterKeyspace,
    /// Drop a keyspace and its data.
    DropKeyspace,
    /// Create, grant, revoke, rotate, drop and list users.
    ManageUsers,
    /// Decommission a node.
    Decommission,
    /// Remove a dead node.
    RemoveNode,
    /// Start a repair.
    Repair,
    /// Drain a node.
    Drain,
    /// Take a snapshot.
    Snapshot,
}

impl Action {
    /// The action's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Describe => "describe",
            Self::CreateKeyspace => "create keyspace",
            Self::AlterKeyspace => "alter keyspace",
            Self::DropKeyspace => "drop keyspace",
            Self::ManageUsers => "manage users",
            Self::Decommission => "decommission",
            Self::RemoveNode => "removenode",
            Self::Repair => "repair",
            Self::Drain => "drain",
            Self::Snapshot => "snapshot",
        }
    }

    /// The role the action needs, and whether it is scoped to the request's
    /// keyspace (`true`) or needs that role on `*` (`false`).
    pub fn requirement(self) -> Option<(Role, bool)> {
        match self {
            Self::Describe => None,
            Self::Read => Some((Role::Read, true)),
            Self::Write => Some((Role::Write, true)),
            Self::AlterKeyspace | Self::DropKeyspace => Some((Role::Admin, true)),
            Self::CreateKeyspace
            | Self::ManageUsers
            | Self::Decommission
            | Self::RemoveNode
            | Self::Repair
            | Self::Drain
            | Self::Snapshot => Some((Role::Admin, false)),
        }
    }
}

/// An authenticated caller: who, and what they were granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The user's grants at authentication time.
    pub grants: Vec<Grant>,
}

impl Principal {
    /// The highest role the principal holds on `keyspace` (`None`: on `*` only).
    pub fn role_on(&self, keyspace: Option<&str>) -> Option<Role> {
        self.grants
            .iter()
            .filter(|g| match (&g.scope, keyspace) {
                (Scope::All, _) => true,
                (Scope::Keyspace(k), Some(asked)) => k == asked,
                (Scope::Keyspace(_), None) => false,
            })
            .map(|g| g.role)
            .max()
    }
}

/// The one authorization check: may `principal` do `action` on `keyspace`?
///
/// `keyspace` is the request's keyspace (an empty name means `default`);
/// `None` for cluster-wide actions. A keyspace-scoped action without a
/// keyspace needs the role on `*`.
pub fn authorize(principal: &Principal, keyspace: Option<&str>, action: Action) -> Result<(), AuthError> {
    let Some((required, scoped)) = action.requirement() else { return Ok(()) };
    let keyspace = keyspace.map(|k| if k.is_empty() { crate::DEFAULT_KEYSPACE } else { k });
    let asked = if scoped { keyspace } else { None };
    match principal.role_on(asked) {
        Some(held) if held >= required => Ok(()),
        _ => Err(AuthError::PermissionDenied {
            user: principal.user.clone(),
            action: action.name(),
            scope: asked.map_or_else(|| "*".to_owned(), str::to_owned),
            required: required.name(),
        }),
    }
}

/// Why a caller was not let in, or not allowed. Messages never contain a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials came with the request.
    #[error(
        "RKV-UNAUTHENTICATED: authentication is required; send `Authorization: Bearer <user>.<secret>` (gRPC/HTTP), `AUTH <user> <secret>` (RESP) or a client certificate"
    )]
    Unauthenticated,
    /// The token or password is not of the form the server issues.
    #[error("RKV-BAD-TOKEN: malformed credentials ({reason}); use the token exactly as `kvctl user create` printed it")]
    BadToken {
        /// What is wrong with it (never the token itself).
        reason: &'static str,
    },
    /// The credentials do not match a user (unknown, dropped, or wrong secret).
    #[error(
        "RKV-INVALID-CREDENTIALS: user {user:?} does not exist or the secret does not match; ask an admin for a new token (`kvctl user rotate`)"
    )]
    InvalidCredentials {
        /// The user name given.
        user: String,
    },
    /// No name of the client certificate is a known user.
    #[error(
        "RKV-UNKNOWN-CERT-USER: no name of the client certificate ({names}) is a user; create one with `kvctl user create`"
    )]
    UnknownCertificateUser {
        /// The certificate's names, comma separated.
        names: String,
    },
    /// The client certificate names more than one user.
    #[error(
        "RKV-AMBIGUOUS-CERT-USER: the client certificate names several users ({users}); issue it with one user name as CN or SAN"
    )]
    AmbiguousCertificate {
        /// The users it names, comma separated.
        users: String,
    },
    /// The principal lacks the role.
    #[error(
        "RKV-PERMISSION-DENIED: user {user:?} may not {action} on {scope}: it needs role {required} there; ask an admin to `kvctl user grant`"
    )]
    PermissionDenied {
        /// The user.
        user: String,
        /// What was asked.
        action: &'static str,
        /// The keyspace, or `*`.
        scope: String,
        /// The role it needs.
        required: &'static str,
    },
    /// A role name that is not `read`, `write` or `admin`.
    #[error("RKV-UNKNOWN-ROLE: unknown role {role:?}; use read, write or admin")]
    UnknownRole {
        /// The name given (cut to 32 characters).
        role: String,
    },
    /// A user name outside `[A-Za-z0-9_-]{1,64}`.
    #[error("RKV-BAD-USER-NAME: user names are 1-64 characters of A-Z a-z 0-9 _ -")]
    BadUserName,
    /// The bootstrap admin token could not be read.
    #[error("RKV-ADMIN-TOKEN: cannot read the bootstrap admin token file {path}: {reason}; fix auth.admin_token_file")]
    AdminTokenFile {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
}

impl AuthError {
    /// The stable code at the start of the message, for mapping to protocol statuses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "RKV-UNAUTHENTICATED",
            Self::BadToken { .. } => "RKV-BAD-TOKEN",
            Self::InvalidCredentials { .. } => "RKV-INVALID-CREDENTIALS",
            Self::UnknownCertificateUser { .. } => "RKV-UNKNOWN-CERT-USER",
            Self::AmbiguousCertificate { .. } => "RKV-AMBIGUOUS-CERT-USER",
            Self::PermissionDenied { .. } => "RKV-PERMISSION-DENIED",
            Self::UnknownRole { .. } => "RKV-UNKNOWN-ROLE",
            Self::BadUserName => "RKV-BAD-USER-NAME",
            Self::AdminTokenFile { .. } => "RKV-ADMIN-TOKEN",
        }
    }

    /// True for "who are you" failures (HTTP 401, gRPC UNAUTHENTICATED, RESP
    /// `-NOAUTH`/`-WRONGPASS`); false for "not allowed" (403, PERMISSION_DENIED, `-NOPERM`).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated
                | Self::BadToken { .. }
                | Self::InvalidCredentials { .. }
                | Self::UnknownCertificateUser { .. }
                | Self::AmbiguousCertificate { .. }
        )
    }
}

/// True when `name` is a valid user name: 1-64 characters of `[A-Za-z0-9_-]`
/// (no `.`, which separates the user from the secret in a token).
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests;
