//! `ringkv-operator`: runs RingKV on Kubernetes.
//!
//! # Layout
//! - [`crd`]: the `KVCluster` custom resource (`ringkv.io/v1alpha1`), its
//!   status, and the spec checks the API server cannot make.
//! - [`resources`]: pure builders, `fn build(&KVCluster) -> Object`: one
//!   StatefulSet per rack, the Services, the PDB, the ConfigMap rendered from
//!   the node's own `Config`, Secrets.
//! - [`plan`]: the pure planner: spec + observed state → the one next step.
//! - [`autoscale`]: the pure autoscaler (targets, stabilisation window) and
//!   the scraping of the nodes' `/metrics`.
//! - [`admin`]: [`admin::NodeAdmin`], what the operator asks of the cluster's
//!   Admin API, and its gRPC implementation.
//! - [`controller`]: the thin async shell: observe, plan, act, report status.
//! - [`telemetry`]: the operator's own `/metrics` and `/healthz`.
//! - [`manifests`]: YAML output (the CRD for `crdgen`).
#![warn(missing_docs)]

pub mod admin;
pub mod autoscale;
pub mod controller;
pub mod crd;
pub mod error;
pub mod manifests;
pub mod plan;
pub mod resources;
pub mod telemetry;
