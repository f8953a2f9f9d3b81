//! The Services: a headless one for peer DNS and seeds (every pod, ready or
//! not, so that a joining node can be found), and a client one (ready pods).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

/// Label telling the peers Service (scraped by the ServiceMonitor) from the client one.
pub const SERVICE_LABEL: &str = "ringkv.io/service";

fn ports() -> Vec<ServicePort> {
    [("grpc", GRPC_PORT), ("http", HTTP_PORT)]
        .into_iter()
        .map(|(name, port)| ServicePort {
            name: Some(name.into()),
            port,
            target_port: Some(IntOrString::String(name.into())),
            protocol: Some("TCP".into()),
            app_protocol: Some(if name == "grpc" { "kubernetes.io/h2c".into() } else { "http".into() }),
            ..ServicePort::default()
        })
        .collect()
}

/// The headless peers Service (`<pod>.<cluster>-peers.<ns>.svc`).
pub fn build_peers(kvc: &KVCluster) -> Service {
    let mut metadata = owned_meta(kvc, peers_service_name(kvc));
    // The ServiceMonitor scrapes the nodes through this Service only.
    metadata.labels.get_or_insert_with(Default::default).insert(SERVICE_LABEL.into(), "peers".into());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(kvc)),
            ports: Some(ports()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The client Service (ClusterIP over ready nodes).
pub fn build_client(kvc: &KVCluster) -> Service {
    Service {
        metadata: owned_meta(kvc, client_service_name(kvc)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(kvc)),
            ports: Some(ports()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
