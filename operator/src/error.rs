//! The reconciler's error type: what failed (with the kind of object) and
//! what to do about it. [`Error::reason`] gives a stable `PascalCase` reason
//! for the `ReconcileFailed` condition and the Warning event.

use crate::admin::AdminError;
use crate::crd::Phase;
use crate::resources::configmap::RenderError;

/// Why a reconcile failed (it is retried with a back-off).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error(
        "Kubernetes API call failed: {action} {object}: {}; check the operator's RBAC and the API server",
        cause(source)
    )]
    Kube {
        /// What was attempted (`apply`, `delete`, `list`, ...).
        action: &'static str,
        /// The object or collection, with its kind (`PodDisruptionBudget db/demo`).
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
    /// The planned step could not be carried out.
    #[error("step \"{step}\" failed: {source}")]
    Step {
        /// The step, as `status.lastStep` describes it.
        step: String,
        /// The phase the step belongs to (reported with the failure).
        phase: Phase,
        /// Why.
        #[source]
        source: Box<Error>,
    },
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

/// The API server's own words for a refused call (`403 Forbidden: pods "x" is
/// forbidden: ...`), not the debug dump of its Status; other errors as they are.
fn cause(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

impl Error {
    /// Wraps `source` as the failure of `step`.
    pub fn step(step: impl Into<String>, phase: Phase, source: Error) -> Self {
        Self::Step { step: step.into(), phase, source: Box::new(source) }
    }

    /// The phase of the failed step, when a step failed.
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Self::Step { phase, .. } => Some(*phase),
            _ => None,
        }
    }

    /// A stable reason (`PascalCase`) for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "KubernetesApiFailed",
            Self::Admin(_) => "AdminApiFailed",
            Self::Render(_) => "ConfigRenderFailed",
            Self::Step { .. } => "StepFailed",
            Self::Metadata { .. } => "MetadataMissing",
            Self::Finalizer { .. } => "FinalizerFailed",
        }
    }
}

/// `Kind namespace/name` of an object of type `K`, for error messages.
pub fn object_id<K: kube::Resource<DynamicType = ()>>(namespace: &str, name: &str) -> String {
    format!("{} {namespace}/{name}", K::kind(&()))
}

/// Adds context to a kube result.
pub(crate) trait KubeContext<T> {
    /// Names the action and object (with its kind) of a failed call.
    fn ctx(self, action: &'static str, object: impl Into<String>) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn ctx(self, action: &'static str, object: impl Into<String>) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { action, object: object.into(), source })
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;

    use super::*;

    #[test]
    fn a_kube_error_names_the_action_the_kind_and_the_object() {
        let source = kube::Error::Api(kube::core::Status::failure("forbidden", "Forbidden").with_code(403).boxed());
        let e = Error::Kube { action: "apply", object: object_id::<PodDisruptionBudget>("db", "demo"), source };
        let text = e.to_string();
        assert!(text.contains("apply PodDisruptionBudget db/demo"), "{text}");
        assert!(text.contains("forbidden") && text.contains("RBAC"), "{text}");
        let step = Error::step("decommission node h3 in pod demo-default-3", Phase::ScalingDown, e);
        assert_eq!(step.reason(), "StepFailed");
        assert!(step.to_string().starts_with("step \"decommission node h3"), "{step}");
    }
}
