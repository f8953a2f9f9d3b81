//! Secrets the operator creates when asked: the bearer token for
//! `auth.enabled` without a `secretName`. The token is made once and never
//! overwritten (the controller creates the Secret only when it is missing).
//! TLS material is not generated here: `tls.secretName` names a Secret the
//! user or cert-manager provides.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::*;

/// Key of the token in the auth Secret.
pub const TOKEN_KEY: &str = "token";

/// The auth Secret holding `token`, or None when auth is off or the user names their own Secret.
pub fn build_auth(kvc: &KVCluster, token: &str) -> Option<Secret> {
    let auth = kvc.spec.auth.as_ref()?;
    if !auth.enabled || auth.secret_name.is_some() {
        return None;
    }
    Some(Secret {
        metadata: owned_meta(kvc, auth_secret_name(kvc)),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([(TOKEN_KEY.to_string(), token.to_string())])),
        ..Secret::default()
    })
}
