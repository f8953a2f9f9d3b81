//! Fluent test fixtures: `KVCluster::test().nodes(5).rf(3).build()`.

use kube::api::ObjectMeta;

use super::*;

/// Builds a [`KVCluster`] for tests.
#[derive(Debug, Clone)]
pub struct KVClusterBuilder {
    cluster: KVCluster,
}

impl KVCluster {
    /// A valid 3-node, RF 3, one-rack cluster named `kv` in namespace `db`.
    pub fn test() -> KVClusterBuilder {
        let spec = KVClusterSpec {
            nodes: 3,
            racks: default_racks(),
            replication_factor: 3,
            vnodes: 64,
            consistency: ConsistencySpec::default(),
            conflict_mode: ConflictModeSpec::default(),
            storage: StorageSpec::default(),
            resources: None,
            image: default_image(),
            autoscaling: None,
            tls: None,
            auth: None,
            pvc_retention: PvcRetention::Retain,
            replacement: ReplacementSpec::default(),
        };
        let mut cluster = KVCluster::new("kv", spec);
        cluster.metadata = ObjectMeta {
            name: Some("kv".into()),
            namespace: Some("db".into()),
            uid: Some("0b3f5c2e-1111-4222-8333-944455556666".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        };
        KVClusterBuilder { cluster }
    }
}

impl KVClusterBuilder {
    /// Desired nodes.
    pub fn nodes(mut self, n: i32) -> Self {
        self.cluster.spec.nodes = n;
        self
    }
    /// Replication factor.
    pub fn rf(mut self, rf: i32) -> Self {
        self.cluster.spec.replication_factor = rf;
        self
    }
    /// Racks by name (zones `zone-<name>`).
    pub fn racks(mut self, names: &[&str]) -> Self {
        self.cluster.spec.racks = names
            .iter()
            .map(|n| RackSpec {
                name: (*n).into(),
                zone: Some(format!("zone-{n}")),
                node_affinity: None,
                tolerations: None,
            })
            .collect();
        self
    }
    /// PVC retention policy.
    pub fn pvc_retention(mut self, p: PvcRetention) -> Self {
        self.cluster.spec.pvc_retention = p;
        self
    }
    /// Container image.
    pub fn image(mut self, image: &str) -> Self {
        self.cluster.spec.image = image.into();
        self
    }
    /// Autoscaling within `[min, max]` at `ops` requests/s per node, with a window in seconds.
    pub fn autoscaling(mut self, min: i32, max: i32, ops: f64, window_s: i32) -> Self {
        self.cluster.spec.autoscaling = Some(AutoscalingSpec {
            min_nodes: min,
            max_nodes: max,
            target_ops_per_node: Some(ops),
            target_disk_utilisation: None,
            stabilisation_window_seconds: window_s,
        });
        self
    }
    /// Opt in to replacing a node DOWN for `after_s` seconds.
    pub fn replace_after_down(mut self, after_s: i32) -> Self {
        self.cluster.spec.replacement.on_down_time = Some(DownTimeReplacement { after_seconds: after_s });
        self
    }
    /// Auth with an operator-made token Secret.
    pub fn auth(mut self) -> Self {
        self.cluster.spec.auth = Some(AuthSpec { enabled: true, secret_name: None });
        self
    }
    /// Marks the object as being deleted (with the operator's finalizer).
    pub fn deleting(mut self) -> Self {
        self.cluster.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        self.cluster.metadata.finalizers = Some(vec![crate::controller::FINALIZER.into()]);
        self
    }
    /// With the operator's finalizer already present.
    pub fn finalized(mut self) -> Self {
        self.cluster.metadata.finalizers = Some(vec![crate::controller::FINALIZER.into()]);
        self
    }
    /// With this status.
    pub fn status(mut self, status: KVClusterStatus) -> Self {
        self.cluster.status = Some(status);
        self
    }
    /// The cluster.
    pub fn build(self) -> KVCluster {
        self.cluster
    }
}
