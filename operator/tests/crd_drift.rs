//! CI fails when the committed CRD (and the chart's copy) drifts from the Rust types.

const REGENERATE: &str = "regenerate with\n  cargo run -q -p ringkv-operator --bin crdgen > crds/kvcluster.yaml \
                          && cp crds/kvcluster.yaml charts/ringkv/crds/kvcluster.yaml";

#[test]
fn committed_crd_matches_crdgen_output() -> Result<(), Box<dyn std::error::Error>> {
    let generated = ringkv_operator::manifests::crd_yaml()?;
    let committed = include_str!("../../crds/kvcluster.yaml");
    assert!(committed == generated, "crds/kvcluster.yaml is out of date with operator/src/crd/; {REGENERATE}");
    let chart = include_str!("../../charts/ringkv/crds/kvcluster.yaml");
    assert!(chart == generated, "charts/ringkv/crds/kvcluster.yaml is out of date; {REGENERATE}");
    Ok(())
}
