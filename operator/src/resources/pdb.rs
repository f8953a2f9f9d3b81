//! The PodDisruptionBudget: voluntary disruptions (drains, upgrades of
//! Kubernetes nodes) take at most one RingKV node down at a time, so every
//! range with RF ≥ 3 keeps a quorum.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

/// One PDB over every node pod, `maxUnavailable: 1`.
pub fn build(kvc: &KVCluster) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owned_meta(kvc, cluster_name(kvc)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(selector_labels(kvc)), ..LabelSelector::default() }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
