#!/usr/bin/env python3
"""Offline validation of RingKV's Kubernetes manifests (run by .ci/run).

- renders charts/ringkv with Helm (helm-python-sdk: Helm's Go SDK as a library,
  no helm binary, no cluster), with default values and with every option on,
  lints it for Kubernetes 1.33, and validates every rendered manifest strictly
  against the Kubernetes 1.33 JSON schemas (kubernetes-validate); checks that
  it refuses `operator.replicas` other than 1 (no leader election);
- validates the CRD (crds/kvcluster.yaml and the chart's copy) as an
  apiextensions.k8s.io/v1 CustomResourceDefinition;
- validates every example KVCluster against the CRD's own openAPIV3Schema;
- validates the objects the operator builds for each example (`crdgen render`)
  against the Kubernetes 1.33 schemas.

Prometheus Operator kinds (ServiceMonitor, PrometheusRule) have no schema in
kubernetes-validate; they get a structural check instead (named, rules with
alert and expr). Exits non-zero on any failure.

Usage: scripts/validate-manifests.py [--crdgen PATH_TO_CRDGEN_BINARY]
"""

import argparse
import glob
import os
import subprocess
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.33.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "charts", "ringkv")
failures = []
checked = 0


def fail(what, why):
    failures.append(f"{what}: {why}")
    print(f"FAIL {what}: {why}")


def ok(what):
    global checked
    checked += 1
    print(f"ok   {what}")


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def validate_k8s(doc, where):
    name = f"{where} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        ok(name)
    except kubernetes_validate.SchemaNotFoundError:
        structural(doc, name)
    except kubernetes_validate.ValidationError as e:
        fail(name, f"{'.'.join(str(p) for p in e.path)}: {e.message}")


def structural(doc, name):
    """Kinds without a bundled schema (Prometheus Operator CRDs)."""
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        return fail(name, "no Kubernetes schema for this kind")
    if not doc.get("metadata", {}).get("name") or not isinstance(doc.get("spec"), dict):
        return fail(name, "needs metadata.name and spec")
    if doc["kind"] == "PrometheusRule":
        for group in doc["spec"].get("groups", []):
            for rule in group.get("rules", []):
                if not rule.get("alert") or not rule.get("expr"):
                    return fail(name, f"rule without alert/expr: {rule}")
    elif doc["kind"] == "ServiceMonitor":
        if not doc["spec"].get("endpoints") or "selector" not in doc["spec"]:
            return fail(name, "needs endpoints and selector")
    ok(name + " (structural: no bundled schema)")


def chart():
    lint = helm.lint(CHART, strict=True, kube_version="v" + K8S_VERSION)
    errors = [m for m in lint.get("messages") or [] if m.get("severity", 0) >= 2] + list(lint.get("errors") or [])
    if errors:
        fail("helm lint", errors)
    else:
        ok("helm lint (strict, kube 1.33)")
    c = helm.Chart.load(CHART)
    all_on = {"monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                             "grafanaDashboard": {"enabled": True}}}
    for label, values in [("defaults", None), ("all options", all_on)]:
        rendered = c.render(values, name="ringkv", namespace="ringkv-system", is_install=True)
        kinds = []
        for path, text in sorted(rendered.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for doc in docs(text):
                kinds.append(doc["kind"])
                validate_k8s(doc, f"chart[{label}] {os.path.basename(path)}")
        for needed in ["Deployment", "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Service"]:
            if needed not in kinds:
                fail(f"chart[{label}]", f"renders no {needed}")
        if values and not {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds):
            fail("chart[all options]", f"monitoring objects missing: {kinds}")
    # No leader election: the chart must refuse more than one operator replica.
    try:
        c.render({"operator": {"replicas": 2}}, name="ringkv", namespace="ringkv-system", is_install=True)
        fail("chart[operator.replicas=2]", "rendered; it must refuse (no leader election)")
    except Exception as e:  # helm_python raises HelmRenderError for a template `fail`
        if "operator.replicas must be 1" in str(e):
            ok("chart[operator.replicas=2] refused: no leader election")
        else:
            fail("chart[operator.replicas=2]", f"failed for another reason: {e}")
    crds = c.crds
    if len(crds) != 1:
        fail("chart crds/", f"expected the KVCluster CRD, found {len(crds)}")


def strictify(schema):
    """The API server silently prunes unknown fields; for examples that hides typos,
    so every object schema with properties refuses unknown ones here."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for v in schema.values():
            strictify(v)
    elif isinstance(schema, list):
        for v in schema:
            strictify(v)
    return schema


def crd_and_examples(crdgen):
    with open(os.path.join(ROOT, "crds", "kvcluster.yaml")) as f:
        crd_text = f.read()
    with open(os.path.join(CHART, "crds", "kvcluster.yaml")) as f:
        if f.read() != crd_text:
            fail("charts/ringkv/crds/kvcluster.yaml", "differs from crds/kvcluster.yaml; copy it over")
    (crd,) = docs(crd_text)
    validate_k8s(crd, "crds/kvcluster.yaml")
    schema = strictify(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    # metadata is not described by the CRD; the API server checks it.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    schema["properties"]["apiVersion"] = {"type": "string", "enum": ["ringkv.io/v1alpha1"]}
    schema["properties"]["kind"] = {"type": "string", "enum": ["KVCluster"]}
    for path in sorted(glob.glob(os.path.join(ROOT, "crds", "examples", "*.yaml"))):
        name = os.path.relpath(path, ROOT)
        with open(path) as f:
            (example,) = docs(f.read())
        try:
            jsonschema.Draft7Validator(schema).validate(example)
            ok(f"{name} against the CRD schema")
        except jsonschema.ValidationError as e:
            fail(name, f"{'.'.join(str(p) for p in e.path)}: {e.message}")
        if crdgen:
            out = subprocess.run([crdgen, "render", path], capture_output=True, text=True)
            if out.returncode != 0:
                fail(f"crdgen render {name}", out.stderr.strip())
                continue
            for doc in docs(out.stdout):
                validate_k8s(doc, f"operator objects for {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crdgen", help="path to the crdgen binary (validates the operator's objects too)")
    args = ap.parse_args()
    chart()
    crd_and_examples(args.crdgen)
    print(f"{checked} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
