//! The reconciler's error type: what failed and what to do about it.

use crate::admin::AdminError;
use crate::resources::configmap::RenderError;

/// Why a reconcile failed (it is retried with a back-off).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call {action} on {object} failed: {source}; check the operator's RBAC and the API server")]
    Kube {
        /// What was attempted (`apply`, `delete`, `list`, ...).
        action: &'static str,
        /// The object or collection.
        object: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The RingKV Admin API failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The node configuration could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The object lacks a namespace or name (the API server always sets them).
    #[error("KVCluster has no {field}; this operator only handles namespaced, named objects")]
    Metadata {
        /// The missing field.
        field: &'static str,
    },
    /// The finalizer machinery failed.
    #[error("finalizer {name}: {message}")]
    Finalizer {
        /// The finalizer.
        name: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Adds context to a kube result.
pub(crate) trait KubeContext<T> {
    /// Names the action and object of a failed call.
    fn ctx(self, action: &'static str, object: impl Into<String>) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn ctx(self, action: &'static str, object: impl Into<String>) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { action, object: object.into(), source })
    }
}
