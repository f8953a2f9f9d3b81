//! `crdgen`: prints the KVCluster CRD as YAML (`crdgen > crds/kvcluster.yaml`).
//!
//! `crdgen render FILE` prints the objects the operator would build for the
//! KVCluster in FILE (for offline schema validation in CI).

use anyhow::Context;
use ringkv_operator::crd::KVCluster;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => print!("{}", ringkv_operator::manifests::crd_yaml()?),
        [cmd, file] if cmd == "render" => {
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
            let mut kvc: KVCluster =
                serde_saphyr::from_str(&text).with_context(|| format!("{file} is not a KVCluster"))?;
            // The API server fills these; the builders need them for owner references.
            kvc.metadata.namespace.get_or_insert_with(|| "default".into());
            kvc.metadata.uid.get_or_insert_with(|| "00000000-0000-4000-8000-000000000000".into());
            print!("{}", ringkv_operator::manifests::owned_objects_yaml(&kvc)?);
        }
        _ => anyhow::bail!(
            "usage: crdgen            (prints the CRD)\n       crdgen render FILE (prints the objects built for a KVCluster)"
        ),
    }
    Ok(())
}
