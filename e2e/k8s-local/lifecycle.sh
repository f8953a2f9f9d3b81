# Scenario "lifecycle": what the demo does not cover — a rolling upgrade of 4 nodes,
# reconcile rate with autoscaling on under steady load, a failed step made visible,
# and a scale-down 4 -> 3 that decommissions the leaving node itself.
# Sourced by run.sh with the cluster and kv-operator up; lib.sh's functions are available.
# shellcheck shell=bash
NS=opcheck C=demo
CLIENT=$C-client.$NS.svc.cluster.local:$NODE_GRPC_PORT
ROLE=$(kc get clusterrolebinding -o json | python3 -c 'import json,sys; print(next(b["roleRef"]["name"] for b in json.load(sys.stdin)["items"] if any(x.get("name")=="ringkv-operator" for x in b.get("subjects") or [])))')
set +e

kvc_gone() { ! kc -n "$NS" get kvc "$C" >/dev/null 2>&1; }
ns_gone() { ! kc get ns "$NS" >/dev/null 2>&1; }
op_cleanup() {
  if kc get ns "$NS" >/dev/null 2>&1; then
    say "removing the $NS namespace"
    if kc -n "$NS" get kvc "$C" >/dev/null 2>&1; then
      kc -n "$NS" patch kvc "$C" --type merge -p '{"spec":{"pvcRetention":"Delete"}}' >/dev/null
      kc -n "$NS" delete kvc "$C" --wait=false >/dev/null
      wait_until 90 "KVCluster $C deleted" kvc_gone || true
    fi
    kc delete ns "$NS" --wait=false >/dev/null
    wait_until 120 "namespace $NS deleted" ns_gone || true
  fi
}
op_cleanup
[ -f "$RUN/role.orig.json" ] || kc get clusterrole "$ROLE" -o json >"$RUN/role.orig.json"
restore_role() {
  python3 -c 'import json,sys; r=json.load(sys.stdin); [r["metadata"].pop(k, None) for k in ("resourceVersion","uid","creationTimestamp","managedFields")]; json.dump(r, sys.stdout)' \
    <"$RUN/role.orig.json" | kc apply -f - >/dev/null
}

step_begin "create 3 nodes, then scale to 4"
kc create ns "$NS" >/dev/null
kc -n "$NS" apply -f "$ROOT/crds/examples/kvcluster.yaml" >/dev/null
if wait_cluster "$NS" "$C" 300 all_ready "$NS" "$C" 3; then
  kc -n "$NS" scale kvc "$C" --replicas 4 >/dev/null
  if wait_cluster "$NS" "$C" 240 all_ready "$NS" "$C" 4 && wait_until 60 "one ring of 4" ring "$NS" "$C"; then
    step_ok "$(ring "$NS" "$C")"
  else
    step_fail "$(kvc_line "$NS" "$C"); $(ring "$NS" "$C")"
  fi
else
  step_fail "$(kvc_line "$NS" "$C"); last reconcile error: $(last_reconcile_error)"
fi
kvctl --endpoint "$CLIENT" put greeting hello >/dev/null || say "put failed"

step_begin "rolling upgrade of 4 nodes: one ring at the end, every pod updated"
kc -n "$NS" patch kvc "$C" --type merge -p '{"spec":{"resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}}' >/dev/null
sleep 5
upgraded4() {
  tools updated 4 < <(kc -n "$NS" get sts,pods -l app.kubernetes.io/instance=$C -o json) && ring "$NS" "$C"
}
if wait_cluster "$NS" "$C" 480 upgraded4; then
  step_ok "$(tools updated 4 < <(kc -n "$NS" get sts,pods -l app.kubernetes.io/instance=$C -o json)); $(ring "$NS" "$C")"
else
  step_fail "$(tools updated 4 < <(kc -n "$NS" get sts,pods -l app.kubernetes.io/instance=$C -o json)); $(ring "$NS" "$C")"
fi
v=$(kvctl --endpoint "$CLIENT" get greeting 2>&1 | head -1); say "after the upgrade: greeting = $v"

step_begin "autoscaling on (min=max=4) under steady load: fewer than 10 reconciles a minute"
kc -n "$NS" patch kvc "$C" --type merge \
  -p '{"spec":{"autoscaling":{"minNodes":4,"maxNodes":4,"targetOpsPerNode":100000,"stabilisationWindowSeconds":60}}}' >/dev/null
( end=$((SECONDS + 100)); i=0; while ((SECONDS < end)); do
    kvctl --endpoint "$CLIENT" put "load-$((i % 50))" "v$i" >/dev/null 2>&1; i=$((i + 1)); sleep 0.2; done ) &
LOAD=$!
sleep 30   # the spec change itself is allowed its reconciles
r0=$(operator_reconciles); sleep 60; r1=$(operator_reconciles)
kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null
recs=$(kc -n "$NS" get kvc "$C" -o json | python3 -c 'import json,sys; s=json.load(sys.stdin).get("status",{}); print(len((s.get("autoscaler") or {}).get("recommendations") or []))')
if [ $((r1 - r0)) -lt 10 ]; then step_ok "$((r1 - r0)) reconciles in 60 s; $recs recommendation(s) kept"
else step_fail "$((r1 - r0)) reconciles in 60 s; $recs recommendation(s) kept"; fi
kc -n "$NS" patch kvc "$C" --type json -p '[{"op":"remove","path":"/spec/autoscaling"}]' >/dev/null

step_begin "a failed step is visible in kubectl describe within a minute (RBAC: no pod delete)"
kc get clusterrole "$ROLE" -o json | tools drop-verb delete pods | kc apply -f - >/dev/null
since=$(date +%s)
kc -n "$NS" patch kvc "$C" --type merge -p '{"spec":{"resources":{"requests":{"cpu":"110m","memory":"64Mi"}}}}' >/dev/null
visible() { tools failure-visible "$since" < <(printf '{"kvc": %s, "events": %s}' \
  "$(kc -n "$NS" get kvc "$C" -o json)" "$(kc -n "$NS" get events -o json)"); }
t0=$SECONDS
if wait_until 60 "the failure in the status or a Warning event" visible; then
  step_ok "after $((SECONDS - t0))s: $(visible)"
else
  step_fail "$(visible)"
fi
kc -n "$NS" describe kvc "$C" | sed -n '/Conditions:/,$p' | head -40 | sed 's/^/    /'
restore_role
if wait_cluster "$NS" "$C" 480 upgraded4; then say "after restoring RBAC the upgrade finished: $(ring "$NS" "$C")"
else say "after restoring RBAC the upgrade did not finish: $(kvc_line "$NS" "$C")"; fi

step_begin "scale 4 -> 3: the leaving node decommissions, StatefulSet back at 3, node LEFT"
IP3=$(pod_ip "$NS" $C-default-3); IP0=$(pod_ip "$NS" $C-default-0)
HID3=$(tools hostid "$PROJ_BIN/kvctl" "$IP3:$NODE_GRPC_PORT")
kc -n "$NS" scale kvc "$C" --replicas 3 >/dev/null
scaled_down() {
  [ "$(sts_field "$NS" $C-default .spec.replicas)" = 3 ] &&
    [[ "$(tools member "$PROJ_BIN/kvctl" "$IP0:$NODE_GRPC_PORT" "$HID3")" =~ ^(LEFT|absent)$ ]]
}
if wait_cluster "$NS" "$C" 240 scaled_down; then
  step_ok "StatefulSet at 3, node ${HID3:0:8} $(tools member "$PROJ_BIN/kvctl" "$IP0:$NODE_GRPC_PORT" "$HID3")"
else
  step_fail "$(kvc_line "$NS" "$C"); last reconcile error: $(last_reconcile_error)"
fi
wait_until 60 "Running" bash -c "[ \"\$($KBIN/kubectl --kubeconfig $RUN/admin.kubeconfig -n $NS get kvc $C -o jsonpath='{.status.phase}')\" = Running ]"
say "after the scale-down: $(kvc_line "$NS" "$C"); Degraded=$(kc -n "$NS" get kvc "$C" -o jsonpath='{.status.conditions[?(@.type=="Degraded")].status} {.status.conditions[?(@.type=="Degraded")].message}')"

op_cleanup
say "operator metrics for the deleted cluster: $(curl -fs "http://$OPERATOR_HTTP/metrics" | grep -c "cluster=\"$C\",.*namespace=\"$NS\"") series still exported"
steps_summary
set -e
[ ${#STEPS_FAILED[@]} = 0 ]
