//! The CRD's shape and the spec checks.

use kube::CustomResourceExt;

use super::*;

#[test]
fn crd_has_subresources_columns_short_name_and_cel_rules() -> Result<(), serde_json::Error> {
    let crd = KVCluster::crd();
    assert_eq!(crd.spec.group, "ringkv.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["kvc".to_string()][..]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    let sub = v.subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some());
    let scale = sub.scale.as_ref().expect("scale");
    assert_eq!(scale.spec_replicas_path, ".spec.nodes");
    assert_eq!(scale.status_replicas_path, ".status.nodes");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
    let columns: Vec<&str> = v.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["Nodes", "Ready", "Phase", "Age"]);
    let schema = serde_json::to_string(&v.schema)?;
    for rule in
        ["self.nodes >= self.replicationFactor", "self.autoscaling.minNodes <= self.autoscaling.maxNodes", "self >= 1"]
    {
        assert!(schema.contains(rule), "CEL rule {rule:?} missing");
    }
    Ok(())
}

fn valid() -> KVClusterSpec {
    KVCluster::test().build().spec
}

fn fields(spec: &KVClusterSpec) -> Vec<&'static str> {
    spec.problems().iter().map(|p| p.field).collect()
}

#[test]
fn a_valid_spec_has_no_problems() {
    assert!(valid().problems().is_empty());
}

#[test]
fn each_rule_names_its_field() {
    let mut s = valid();
    s.replication_factor = 0;
    assert_eq!(fields(&s), ["replicationFactor"]);
    let mut s = valid();
    s.nodes = 2;
    assert_eq!(fields(&s), ["nodes"]);
    let mut s = KVCluster::test().nodes(5).autoscaling(6, 4, 100.0, 60).build().spec;
    assert_eq!(fields(&s), ["autoscaling.minNodes"]);
    s.autoscaling = KVCluster::test().autoscaling(2, 4, 100.0, 60).build().spec.autoscaling;
    assert_eq!(fields(&s), ["autoscaling.minNodes"], "minNodes below RF");
    let mut s = valid();
    s.racks = KVCluster::test().racks(&["a", "a", "Bad_Name"]).build().spec.racks;
    assert_eq!(fields(&s), ["racks[].name", "racks[].name"]);
    let mut s = valid();
    s.storage.size = "lots".into();
    assert_eq!(fields(&s), ["storage.size"]);
    let mut s = valid();
    s.tls = Some(TlsSpec { enabled: true, secret_name: None });
    assert_eq!(fields(&s), ["tls.secretName", "tls.enabled"]);
    let mut s = valid();
    s.tls = Some(TlsSpec { enabled: true, secret_name: Some("kv-tls".into()) });
    assert_eq!(fields(&s), ["tls.enabled"], "kvnode has no TLS yet: refused, not ignored");
    let mut s = valid();
    s.auth = Some(AuthSpec { enabled: true, secret_name: None });
    assert_eq!(fields(&s), ["auth.enabled"], "kvnode checks no tokens yet: refused, not ignored");
    let mut s = valid();
    s.tls = Some(TlsSpec { enabled: false, secret_name: None });
    s.auth = Some(AuthSpec { enabled: false, secret_name: None });
    assert!(fields(&s).is_empty(), "disabled TLS and auth are fine");
    let mut s = valid();
    s.vnodes = 0;
    assert_eq!(fields(&s), ["vnodes"]);
    let mut s = valid();
    s.replacement.on_down_time = Some(DownTimeReplacement { after_seconds: 30 });
    assert_eq!(fields(&s), ["replacement.onDownTime.afterSeconds"]);
}

/// D11: an object stored before (the API server defaulted
/// `downTimeoutSeconds: 900` into every one) still parses, and opts in to nothing.
#[test]
fn an_old_replacement_block_parses_and_does_not_opt_in_to_downtime_replacement() -> Result<(), serde_json::Error> {
    let old: ReplacementSpec = serde_json::from_value(serde_json::json!({"enabled": true, "downTimeoutSeconds": 900}))?;
    assert_eq!((old.enabled, old.on_down_time, old.down_timeout_seconds), (true, None, Some(900)));
    let absent: KVClusterSpec = serde_json::from_value(serde_json::json!({"nodes": 3}))?;
    assert_eq!(absent.replacement, ReplacementSpec::default());
    Ok(())
}

#[test]
fn examples_parse_and_are_valid() -> Result<(), Box<dyn std::error::Error>> {
    for (name, text) in [
        ("kvcluster.yaml", include_str!("../../../crds/examples/kvcluster.yaml")),
        ("kvcluster-production.yaml", include_str!("../../../crds/examples/kvcluster-production.yaml")),
    ] {
        let kvc: KVCluster = serde_saphyr::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        assert!(kvc.spec.problems().is_empty(), "{name}: {:?}", kvc.spec.problems());
    }
    let minimal: KVCluster = serde_saphyr::from_str(include_str!("../../../crds/examples/kvcluster.yaml"))?;
    assert_eq!(minimal.spec.replication_factor, 3, "defaults fill what the minimal example leaves out");
    assert_eq!(minimal.spec.racks.len(), 1);
    assert_eq!(minimal.spec.pvc_retention, PvcRetention::Retain);
    Ok(())
}
