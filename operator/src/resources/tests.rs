//! Builder tests: each object has what the design asks for.

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use ringkv_node::config::Config;

use super::*;
use crate::crd::{ConflictModeSpec, ConsistencyLevelSpec, KVCluster, RackSpec, TlsSpec};

fn pod_spec(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> &PodSpec {
    sts.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod spec")
}

fn node_container(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> &Container {
    &pod_spec(sts).containers[0]
}

#[test]
fn statefulset_per_rack_is_operator_driven_on_local_ssd() {
    let mut kvc = KVCluster::test().nodes(3).racks(&["a", "b", "c"]).build();
    kvc.spec.storage.storage_class_name = Some("local-nvme".into());
    kvc.spec.storage.size = "200Gi".into();
    let sts = statefulset::build(&kvc, &kvc.spec.racks[1], 2, 0xabc);
    assert_eq!(sts.metadata.name.as_deref(), Some("kv-b"));
    let spec = sts.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.service_name.as_deref(), Some("kv-peers"));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()), Some("OnDelete"));
    let retention = spec.persistent_volume_claim_retention_policy.as_ref().expect("retention");
    assert_eq!(retention.when_scaled.as_deref(), Some("Retain"), "the operator applies pvcRetention itself");
    let claim = &spec.volume_claim_templates.as_ref().expect("claims")[0];
    let claim_spec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(claim.metadata.name.as_deref(), Some("data"));
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some("local-nvme"));
    let size = claim_spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage"));
    assert_eq!(size.map(|q| q.0.as_str()), Some("200Gi"));
    assert_eq!(spec.selector.match_labels.as_ref().and_then(|l| l.get(RACK_LABEL)).map(String::as_str), Some("b"));
    let owner = &sts.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("KVCluster", Some(true)));
    let annotations = spec.template.metadata.as_ref().and_then(|m| m.annotations.as_ref()).expect("annotations");
    assert_eq!(annotations.get(statefulset::CONFIG_HASH_ANNOTATION).map(String::as_str), Some("0000000000000abc"));
}

#[test]
fn node_pods_probe_readyz_drain_on_stop_and_run_as_non_root() {
    let kvc = KVCluster::test().build();
    let sts = statefulset::build(&kvc, &kvc.spec.racks[0], 3, 1);
    let c = node_container(&sts);
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone())
    };
    assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
    assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
    let pre_stop = c
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.as_ref())
        .expect("preStop");
    assert!(pre_stop.join(" ").contains("kv-operator drain --endpoint \"$POD_IP:7100\""), "{pre_stop:?}");
    let pod = pod_spec(&sts);
    assert_eq!(pod.termination_grace_period_seconds, Some(statefulset::TERMINATION_GRACE_SECONDS));
    let sc = pod.security_context.as_ref().expect("pod security context");
    assert_eq!((sc.run_as_non_root, sc.run_as_user), (Some(true), Some(10001)));
    assert_eq!(c.security_context.as_ref().and_then(|s| s.read_only_root_filesystem), Some(true));
    let anti = pod.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).expect("anti-affinity");
    let term = &anti.preferred_during_scheduling_ignored_during_execution.as_ref().expect("preferred")[0];
    assert_eq!(term.pod_affinity_term.topology_key, "kubernetes.io/hostname");
    let spread = &pod.topology_spread_constraints.as_ref().expect("spread")[0];
    assert_eq!((spread.max_skew, spread.topology_key.as_str()), (1, "kubernetes.io/hostname"));
}

#[test]
fn rack_zone_is_pinned_and_merged_with_user_affinity_and_tolerations() {
    let mut kvc = KVCluster::test().racks(&["a"]).build();
    let user_term = k8s_openapi::api::core::v1::NodeSelectorTerm {
        match_expressions: Some(vec![k8s_openapi::api::core::v1::NodeSelectorRequirement {
            key: "disk".into(),
            operator: "In".into(),
            values: Some(vec!["nvme".into()]),
        }]),
        ..Default::default()
    };
    kvc.spec.racks[0] = RackSpec {
        name: "a".into(),
        zone: Some("eu-1a".into()),
        node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(k8s_openapi::api::core::v1::NodeSelector {
                node_selector_terms: vec![user_term],
            }),
            ..Default::default()
        }),
        tolerations: Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]),
    };
    let sts = statefulset::build(&kvc, &kvc.spec.racks[0], 1, 1);
    let pod = pod_spec(&sts);
    let terms = &pod
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .expect("required")
        .node_selector_terms;
    let keys: Vec<&str> = terms[0].match_expressions.iter().flatten().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["disk", "topology.kubernetes.io/zone"]);
    assert_eq!(pod.tolerations.as_ref().map(Vec::len), Some(1));
    let env = node_container(&sts).env.as_ref().expect("env");
    assert!(env.iter().any(|e| e.name == "RINGKV_ZONE" && e.value.as_deref() == Some("eu-1a")));
}

#[test]
fn tls_and_auth_secrets_are_mounted_when_enabled() {
    let mut kvc = KVCluster::test().auth().build();
    kvc.spec.tls = Some(TlsSpec { enabled: true, secret_name: Some("kv-tls".into()) });
    let sts = statefulset::build(&kvc, &kvc.spec.racks[0], 1, 1);
    let volumes = pod_spec(&sts).volumes.as_ref().expect("volumes");
    let secret_of = |n: &str| {
        volumes.iter().find(|v| v.name == n).and_then(|v| v.secret.as_ref()).and_then(|s| s.secret_name.clone())
    };
    assert_eq!(secret_of("tls").as_deref(), Some("kv-tls"));
    assert_eq!(secret_of("auth").as_deref(), Some("kv-auth"));
    let s = secret::build_auth(&kvc, "t0k3n").expect("auth secret");
    assert_eq!(s.string_data.as_ref().and_then(|d| d.get(secret::TOKEN_KEY)).map(String::as_str), Some("t0k3n"));
    kvc.spec.auth.as_mut().expect("auth").secret_name = Some("mine".into());
    assert!(secret::build_auth(&kvc, "x").is_none(), "a user-named Secret is never created");
    assert!(secret::build_auth(&KVCluster::test().build(), "x").is_none());
}

#[test]
fn start_script_adds_replace_only_for_the_pod_being_replaced() -> Result<(), Box<dyn std::error::Error>> {
    let kvc = KVCluster::test().build();
    let sts = statefulset::build(&kvc, &kvc.spec.racks[0], 1, 1);
    let script = node_container(&sts).command.as_ref().expect("command")[2].clone();
    let dir = std::env::temp_dir().join(format!("ringkv-op-script-{}", std::process::id()));
    let bin = dir.join("bin");
    let replace = dir.join("replace");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&replace)?;
    // A stand-in kvnode that prints its arguments, one per line.
    let fake = bin.join("kvnode");
    std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n")?;
    std::process::Command::new("chmod").arg("+x").arg(&fake).status()?;
    std::fs::write(replace.join("kv-default-0"), "host-dead-1")?;
    let script = script.replace("/etc/ringkv/replace", replace.to_str().ok_or("path")?);
    let run = |pod: &str| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("POD_NAME", pod)
            .env("POD_IP", "10.1.2.3")
            .env("RINGKV_ZONE", "")
            .env("RINGKV_RACK", "default")
            .output()?;
        Ok(String::from_utf8(out.stdout)?.lines().map(String::from).collect())
    };
    let replaced = run("kv-default-0")?;
    let normal = run("kv-default-1")?;
    std::fs::remove_dir_all(&dir)?;
    assert!(replaced.windows(2).any(|w| w == ["--replace", "host-dead-1"]), "{replaced:?}");
    assert!(replaced.windows(2).any(|w| w == ["--grpc-addr", "10.1.2.3:7100"]), "{replaced:?}");
    assert!(!normal.iter().any(|a| a == "--replace"), "{normal:?}");
    let advertised = format!("kv-default-1.{}:7100", crate::resources::pod_dns(&kvc, "x").trim_start_matches("x."));
    assert!(
        normal.windows(2).any(|w| w[0] == "--advertise-name" && w[1] == advertised),
        "the pod's stable DNS name is advertised: {normal:?}"
    );
    assert!(normal.windows(2).any(|w| w == ["--zone", ""]), "empty zone passed as an empty value: {normal:?}");
    Ok(())
}

#[test]
fn services_give_peer_dns_and_client_access() {
    let kvc = KVCluster::test().build();
    let peers = service::build_peers(&kvc);
    let spec = peers.spec.as_ref().expect("spec");
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.publish_not_ready_addresses, Some(true), "joining nodes must be reachable by peers");
    let client = service::build_client(&kvc);
    let ports: Vec<i32> =
        client.spec.as_ref().and_then(|s| s.ports.as_ref()).expect("ports").iter().map(|p| p.port).collect();
    assert_eq!(ports, [GRPC_PORT, HTTP_PORT]);
    assert_eq!(client.metadata.name.as_deref(), Some("kv-client"));
    assert_eq!(
        pdb::build(&kvc).spec.and_then(|s| s.max_unavailable),
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
}

#[test]
fn configmap_is_the_nodes_own_config_and_passes_its_validation() -> Result<(), Box<dyn std::error::Error>> {
    let mut kvc = KVCluster::test().nodes(5).rf(3).racks(&["a", "b"]).build();
    kvc.spec.vnodes = 128;
    kvc.spec.consistency.read = ConsistencyLevelSpec::One;
    kvc.spec.consistency.write = ConsistencyLevelSpec::All;
    kvc.spec.conflict_mode = ConflictModeSpec::Lww;
    let cm = configmap::build(&kvc)?;
    let text = cm.data.as_ref().and_then(|d| d.get(configmap::CONFIG_KEY)).ok_or("no node.toml")?;
    let config: Config = toml::from_str(text)?;
    config.validate()?;
    assert_eq!(config.replication.replication_factor, 3);
    assert_eq!(config.ring.vnodes, 128);
    assert_eq!(config.replication.read_consistency.name(), "ONE");
    assert_eq!(config.replication.write_consistency.name(), "ALL");
    assert_eq!(config.replication.default_keyspace_conflict_mode, ringkv_node::version::ConflictMode::Lww);
    assert_eq!(config.storage.data_dir, std::path::PathBuf::from(DATA_DIR));
    let dns = |pod: &str| format!("{pod}.kv-peers.db.svc.cluster.local:7100");
    assert_eq!(config.membership.seeds, [dns("kv-a-0"), dns("kv-b-0"), dns("kv-a-1")]);
    Ok(())
}

/// D3: one seed (pod 0) let a restarted pod 0 start a ring of its own.
#[test]
fn seeds_are_the_first_pod_of_every_rack_filled_to_three_whatever_the_node_count() {
    let seeds = |racks: &[&str], nodes: i32| configmap::seed_pods(&KVCluster::test().nodes(nodes).racks(racks).build());
    assert_eq!(seeds(&["default"], 3), ["kv-default-0", "kv-default-1", "kv-default-2"]);
    assert_eq!(seeds(&["a", "b", "c"], 3), ["kv-a-0", "kv-b-0", "kv-c-0"]);
    assert_eq!(seeds(&["a", "b", "c", "d"], 4), ["kv-a-0", "kv-b-0", "kv-c-0", "kv-d-0"], "every rack has one");
    assert_eq!(seeds(&["a", "b"], 9), ["kv-a-0", "kv-b-0", "kv-a-1"]);
    // Scaling never changes node.toml (which would roll every pod).
    let toml = |nodes: i32| configmap::render(&KVCluster::test().nodes(nodes).build()).expect("render");
    assert_eq!(toml(3), toml(7));
    assert_eq!(toml(3).matches(".kv-peers.db.svc.cluster.local:7100").count(), 3, "{}", toml(3));
}

#[test]
fn every_spec_consistency_level_maps_to_the_node_level_of_the_same_name() -> Result<(), serde_json::Error> {
    use ConsistencyLevelSpec::*;
    for level in [One, Two, Three, Quorum, All, LocalQuorum, EachQuorum, Any] {
        let spec_name = serde_json::to_value(level)?;
        assert_eq!(spec_name, serde_json::to_value(configmap::consistency(level))?);
    }
    Ok(())
}

#[test]
fn quantities_parse_to_bytes() {
    assert_eq!(parse_quantity_bytes("10Gi"), Some(10 << 30));
    assert_eq!(parse_quantity_bytes("500M"), Some(500_000_000));
    assert_eq!(parse_quantity_bytes("1e9"), Some(1_000_000_000));
    assert_eq!(parse_quantity_bytes("4096"), Some(4096));
    assert_eq!(parse_quantity_bytes("ten"), None);
    assert_eq!(parse_quantity_bytes("10Gb"), None);
    assert_eq!(parse_quantity_bytes(""), None);
}
