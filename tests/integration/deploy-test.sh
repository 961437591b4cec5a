#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy-test: proves the deployment artefacts in deploy/ against real tools
# and a real touchpointd.
#
#   1. Kubernetes base (deploy/kubernetes/base): kustomization.yaml lists
#      exactly the resource files present; every core resource passes
#      kubernetes-validate --strict (PyPI; schemas bundled, offline), file by
#      file and as rendered by a real kustomize (built from its Go module into
#      .cache/ when Go is there; without it, the files alone are validated and
#      the test says so); the KEDA ScaledObject, a CRD that
#      kubernetes-validate does not know, is validated in strict mode against
#      the pydantic models generated from KEDA's CRD schemas
#      (cloudcoil-models-keda, PyPI), unknown fields included; both
#      validators reject a broken copy.
#   2. Consistency: maxReplicaCount <= the touchpointd.dev/partitions
#      annotation; the trigger's topic, group and brokers are the embedded
#      config's; terminationGracePeriodSeconds > service.shutdown_timeout;
#      memory limit = request, within [1.25, 2] x the sizing formula of
#      deploy/kubernetes/README.md; probes, ports, security context, config
#      and secret mounts agree with the embedded config.
#   3. Prometheus rules: promtool check rules and promtool test rules (Debian's
#      prometheus); a mutated rule fails the unit tests; every PromQL
#      expression of the Grafana dashboard parses (promtool, as rules).
#   4. A real run: Redis + a KRaft Kafka broker (tests/harness), a tpgen
#      stream, `touchpointd run` with http.port 0; /healthz and /readyz
#      answer 200; every touchpointd_* name the dashboard and the rules use
#      exists in the /metrics scrape (histogram _bucket/_sum/_count count),
#      and the dashboard shows every metric family of the scrape.
#   5. `touchpointd check -c` passes on deploy/touchpointd.yaml and every
#      deploy/examples/*.yaml as they are, and on the config embedded in the
#      ConfigMap (its `_file` secrets, mounted from a Secret in a cluster, and
#      any `${NAME}` get stand-ins here); a broken copy fails.
# Ends with "N passed, M failed"; exits non-zero if anything failed.
#
# Tools are installed on first use into .cache/ (git-ignored): a venv with
# kubernetes-validate and cloudcoil-models-keda (pip, PyPI) and kustomize
# (go install from the Go module proxy). promtool comes from `make deps`.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
t_start=$(date +%s)

root=$PWD
base=deploy/kubernetes/base
rules=deploy/prometheus/touchpointd-rules.yaml
rules_test=deploy/prometheus/touchpointd-rules.test.yaml
dashboard=deploy/grafana/touchpointd-dashboard.json
venv=$root/.cache/deploy-venv
py_reqs="kubernetes-validate==1.37.0 cloudcoil-models-keda==2.16.1.0 PyYAML==6.0.3"
kustomize_version=v5.5.0
kustomize=$root/.cache/deploy-tools/kustomize-$kustomize_version

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}
# check NAME COMMAND...: ok when COMMAND succeeds; its output goes with a FAIL.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        bad "$name"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
    fi
}
# check_fails NAME COMMAND...: ok when COMMAND fails (a validator's teeth).
check_fails() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        bad "$name (it passed)"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
    else
        ok "$name"
    fi
}
# tally OUTPUT: count the "ok - " / "FAIL - " lines a helper printed.
tally() {
    local line
    while IFS= read -r line; do
        case $line in
        "ok - "*) passed=$((passed + 1)) ;;
        "FAIL - "*) failed=$((failed + 1)) ;;
        esac
        printf '%s\n' "$line"
    done <<<"$1"
}
say() { echo "# $* [$(($(date +%s) - t_start)) s]"; }
finish() {
    echo "# deploy-test took $(($(date +%s) - t_start)) s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
run_pid=
tp_cleanup_hook() {
    if [ -n "$run_pid" ] && tp__alive "$run_pid"; then
        kill -KILL "$run_pid" 2>/dev/null || true
        wait "$run_pid" 2>/dev/null || true
    fi
    if [ "${failed:-1}" -ne 0 ] && [ -f "$dir/run.err" ]; then
        echo "--- tail of $dir/run.err"
        tail -n 20 "$dir/run.err"
    fi
}

# ---- tools -------------------------------------------------------------------
if [ ! -f "$venv/.complete" ] || [ "$(cat "$venv/.complete")" != "$py_reqs" ]; then
    say "installing $py_reqs into .cache/deploy-venv"
    rm -rf "$venv"
    if python3 -m venv "$venv" >"$dir/venv.log" 2>&1 &&
        "$venv/bin/pip" install -q --disable-pip-version-check $py_reqs \
            >>"$dir/venv.log" 2>&1; then
        echo "$py_reqs" >"$venv/.complete"
    else
        tail -n 20 "$dir/venv.log" >&2
    fi
fi
check "kubernetes-validate and the KEDA CRD models are installed (.cache/deploy-venv)" \
    test -f "$venv/.complete"
py=$venv/bin/python
kv=$venv/bin/kubernetes-validate

if [ ! -x "$kustomize" ] && command -v go >/dev/null 2>&1; then
    say "building kustomize $kustomize_version (go install, first run only)"
    mkdir -p "$root/.cache/deploy-tools/bin"
    if GOBIN=$root/.cache/deploy-tools/bin GOFLAGS=-mod=mod \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version" \
        >"$dir/kustomize.log" 2>&1; then
        mv "$root/.cache/deploy-tools/bin/kustomize" "$kustomize"
    else
        tail -n 10 "$dir/kustomize.log" >&2
    fi
fi
have_kustomize=0
if [ -x "$kustomize" ]; then
    have_kustomize=1
else
    say "no kustomize (no Go toolchain, or its install failed): the resource files are validated one by one instead of the rendered output"
fi
if ! command -v promtool >/dev/null 2>&1; then
    bad "promtool is installed (Debian's prometheus; run make deps)"
    finish
fi
[ -x "$py" ] || finish

# ---- 1. Kubernetes manifests -------------------------------------------------
say "1. Kubernetes base: $base"
# kustomization.yaml's resources, and the resource files on disk.
"$py" - "$base" >"$dir/lists" <<'PY'
import os, sys, yaml
base = sys.argv[1]
k = yaml.safe_load(open(os.path.join(base, "kustomization.yaml")))
print(" ".join(sorted(k.get("resources", []))))
print(" ".join(sorted(f for f in os.listdir(base)
                      if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")))
PY
listed=$(sed -n 1p "$dir/lists")
present=$(sed -n 2p "$dir/lists")
check "kustomization.yaml lists exactly the resource files in $base ($present)" \
    test "$listed" = "$present"

# The rendered base (kustomize), or the files themselves; split into core
# resources (kubernetes-validate) and the ScaledObject (KEDA models).
rendered=$dir/rendered.yaml
if [ "$have_kustomize" = 1 ]; then
    check "kustomize build $base renders" sh -c "'$kustomize' build '$base' >'$rendered'"
else
    for f in $present; do
        printf -- '---\n'
        cat "$base/$f"
    done >"$rendered"
fi
"$py" - "$rendered" "$dir" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
core = [d for d in docs if not d.get("apiVersion", "").startswith("keda.sh/")]
keda = [d for d in docs if d.get("apiVersion", "").startswith("keda.sh/")]
yaml.safe_dump_all(core, open(sys.argv[2] + "/core.yaml", "w"), sort_keys=False)
yaml.safe_dump_all(keda, open(sys.argv[2] + "/keda.yaml", "w"), sort_keys=False)
print(" ".join(sorted(d["kind"] for d in docs)), file=open(sys.argv[2] + "/kinds", "w"))
PY
check "the base has ConfigMap Deployment PodDisruptionBudget ScaledObject Service ServiceAccount ($(cat "$dir/kinds"))" \
    test "$(cat "$dir/kinds")" = "ConfigMap Deployment PodDisruptionBudget ScaledObject Service ServiceAccount"

core_files=()
for f in $present; do
    grep -q '^apiVersion: keda.sh/' "$base/$f" || core_files+=("$base/$f")
done
check "kubernetes-validate --strict passes each core resource file (${core_files[*]##*/})" \
    "$kv" --strict --quiet "${core_files[@]}"
if [ "$have_kustomize" = 1 ]; then
    check "kubernetes-validate --strict passes the rendered core resources" \
        "$kv" --strict --quiet "$dir/core.yaml"
fi
# Teeth: a wrong type and an unknown field.
sed 's/terminationGracePeriodSeconds: [0-9]*/terminationGracePeriodSeconds: "thirty"/' \
    "$base/deployment.yaml" >"$dir/bad-type.yaml"
check_fails "kubernetes-validate rejects a Deployment with a string terminationGracePeriodSeconds" \
    "$kv" --strict --quiet "$dir/bad-type.yaml"
sed 's/^\( *\)readOnlyRootFilesystem: true/&\n\1readOnlyRootFileSystem: true/' \
    "$base/deployment.yaml" >"$dir/bad-field.yaml"
check_fails "kubernetes-validate --strict rejects a Deployment with an unknown field" \
    "$kv" --strict --quiet "$dir/bad-field.yaml"

# KEDA: strict pydantic validation against the models generated from KEDA's
# CRDs, plus unknown fields (what validation drops is not in the schema).
cat >"$dir/keda_validate.py" <<'PY'
import sys, yaml, pydantic
from cloudcoil.models.keda.v1alpha1 import ScaledObject

def unknown(given, kept, path):
    out = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for k, v in given.items():
            if k not in kept:
                out.append(f"{path}.{k}")
            else:
                out += unknown(v, kept[k], f"{path}.{k}")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept)):
            out += unknown(a, b, f"{path}[{i}]")
    return out

bad = 0
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    name = d.get("metadata", {}).get("name", "?")
    try:
        obj = ScaledObject.model_validate(d, strict=True)
    except pydantic.ValidationError as e:
        print(f"ScaledObject {name}: {e}")
        bad += 1
        continue
    extra = unknown(d, obj.model_dump(by_alias=True, exclude_unset=True, mode="json"), "")
    if extra:
        print(f"ScaledObject {name}: fields not in KEDA's schema: {', '.join(extra)}")
        bad += 1
print(f"{len(docs)} ScaledObject(s), {bad} invalid")
sys.exit(1 if bad or not docs else 0)
PY
check "the ScaledObject validates against KEDA's CRD schema (cloudcoil-models-keda, strict)" \
    "$py" "$dir/keda_validate.py" "$dir/keda.yaml"
sed 's/maxReplicaCount: \([0-9]*\)/maxReplicaCount: "\1"/' "$base/scaledobject.yaml" \
    >"$dir/keda-bad-type.yaml"
check_fails "the KEDA check rejects a string maxReplicaCount" \
    "$py" "$dir/keda_validate.py" "$dir/keda-bad-type.yaml"
sed 's/^\( *\)maxReplicaCount: \(.*\)/&\n\1maxReplicas: \2/' "$base/scaledobject.yaml" \
    >"$dir/keda-bad-field.yaml"
check_fails "the KEDA check rejects an unknown field (spec.maxReplicas)" \
    "$py" "$dir/keda_validate.py" "$dir/keda-bad-field.yaml"

# ---- 2. consistency ------------------------------------------------------------
say "2. consistency of the base with its embedded config"
cat >"$dir/consistency.py" <<'PY'
import math, re, sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config_out = sys.argv[2]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)

def result(good, what, detail=""):
    print(("ok - " if good else "FAIL - ") + what + (f" ({detail})" if detail else ""))

def one(kind):
    items = by_kind.get(kind, [])
    if len(items) != 1:
        result(False, f"exactly one {kind}", f"found {len(items)}")
        sys.exit(0)
    return items[0]

dep, cm, so = one("Deployment"), one("ConfigMap"), one("ScaledObject")
svc, pdb = one("Service"), one("PodDisruptionBudget")
pod = dep["spec"]["template"]["spec"]
ctr = pod["containers"][0]

# The embedded config: the ConfigMap key that the container's -c names.
args = ctr.get("args", [])
cfg_path = args[args.index("-c") + 1] if "-c" in args else None
mounts = {m["name"]: m for m in ctr.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
cfg_key = None
for name, m in mounts.items():
    v = vols.get(name, {})
    if "configMap" in v and cfg_path and cfg_path.startswith(m["mountPath"].rstrip("/") + "/"):
        result(v["configMap"]["name"] == cm["metadata"]["name"],
               "the -c path is mounted from the ConfigMap", f"{cfg_path} in volume {name}")
        cfg_key = cfg_path[len(m["mountPath"].rstrip("/")) + 1:]
result(cfg_key is not None and cfg_key in cm.get("data", {}),
       "the ConfigMap holds the file the container's -c names", f"{cfg_path}, key {cfg_key}")
if cfg_key not in cm.get("data", {}):
    sys.exit(0)
text = cm["data"][cfg_key]
open(config_out, "w").write(text)
cfg = yaml.safe_load(text)
kafka = cfg.get("kafka", {})
limits = cfg.get("limits", {})

def seconds(s):
    total, rest = 0.0, str(s)
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", rest):
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return total

def qty(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    mult = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
            "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]
    return float(m.group(1)) * mult

# Replicas vs partitions.
ann = so["metadata"].get("annotations", {}).get("touchpointd.dev/partitions")
parts = int(ann) if ann is not None and str(ann).isdigit() else None
result(parts is not None and parts > 0,
       "the ScaledObject states the partition count (touchpointd.dev/partitions)", f"{ann!r}")
spec = so["spec"]
mx, mn = spec.get("maxReplicaCount", 100), spec.get("minReplicaCount", 0)
result(parts is not None and mx <= parts, "maxReplicaCount <= the partition count",
       f"maxReplicaCount {mx}, partitions {parts}")
result(1 <= mn <= mx, "1 <= minReplicaCount <= maxReplicaCount (never scaled to zero)",
       f"{mn}..{mx}")
result(spec["scaleTargetRef"]["name"] == dep["metadata"]["name"] and
       spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment",
       "the ScaledObject scales the Deployment", spec["scaleTargetRef"]["name"])
kt = [t for t in spec.get("triggers", []) if t.get("type") == "kafka"]
result(len(kt) == 1, "one kafka trigger", f"{len(kt)}")
if kt:
    md = kt[0]["metadata"]
    result(md.get("topic") in cfg.get("input", {}).get("topics", ["touchpoints"]),
           "the trigger's topic is an input topic of the config", md.get("topic"))
    result(md.get("consumerGroup") == kafka.get("group.id"),
           "the trigger's consumerGroup is kafka.group.id", md.get("consumerGroup"))
    result(md.get("bootstrapServers") == kafka.get("bootstrap.servers"),
           "the trigger's bootstrapServers are kafka.bootstrap.servers", md.get("bootstrapServers"))
    result(md.get("allowIdleConsumers", "false") == "false",
           "allowIdleConsumers is false (no replica beyond the partitions)")

# Shutdown.
grace = pod.get("terminationGracePeriodSeconds", 30)
drain = seconds(cfg.get("service", {}).get("shutdown_timeout", "10s"))
result(grace > drain, "terminationGracePeriodSeconds > service.shutdown_timeout",
       f"{grace} s > {drain:g} s")

# Memory: the formula of deploy/kubernetes/README.md.
MiB = 1024 * 1024
res = ctr.get("resources", {})
req = res.get("requests", {}).get("memory")
lim = res.get("limits", {}).get("memory")
result(lim is not None and req == lim, "memory request = limit", f"{req} / {lim}")
has_buf = "queued.max.messages.kbytes" in kafka and "queue.buffering.max.kbytes" in kafka
result(has_buf, "librdkafka's buffers are bounded in the config "
       "(kafka.queued.max.messages.kbytes, kafka.queue.buffering.max.kbytes)")
need = (64 * MiB
        + int(kafka.get("queued.max.messages.kbytes", 32768)) * 1024 * 7 // 2
        + int(kafka.get("queue.buffering.max.kbytes", 1048576)) * 1024
        + int(limits.get("dedupe_capacity", 2000000)) * 32
        + int(limits.get("max_open_correlations", 2000000)) * 128
        + int(limits.get("max_pending_cells", 200000)) * 4096
        + int(limits.get("max_tenants", 1000)) * int(limits.get("max_dims_per_tenant", 500)) * 256)
want = math.ceil(need * 1.25 / (64 * MiB)) * 64
if lim is not None:
    have = qty(lim)
    result(1.25 * need <= have <= 2 * need,
           "memory limit within [1.25, 2] x the sizing formula for the caps",
           f"formula {need / MiB:.0f} MiB -> {want}Mi; limit {lim}")

# Probes and ports.
port = cfg.get("http", {}).get("port", 9725)
named = {p.get("name"): p["containerPort"] for p in ctr.get("ports", [])}
def probe(kind, path):
    p = ctr.get(kind, {}).get("httpGet", {})
    pp = named.get(p.get("port"), p.get("port"))
    result(p.get("path") == path and pp == port, f"{kind} GETs {path} on http.port",
           f"{p.get('path')} on {pp}, http.port {port}")
probe("livenessProbe", "/healthz")
probe("readinessProbe", "/readyz")
probe("startupProbe", "/healthz")
result(cfg.get("http", {}).get("address") == "0.0.0.0",
       "http.address is 0.0.0.0 (probes and Prometheus reach the pod IP)")
sp = svc["spec"]["ports"][0]
tp = named.get(sp.get("targetPort"), sp.get("targetPort"))
result(tp == port, "the Service targets the metrics port", f"{tp}")
labels = dep["spec"]["template"]["metadata"].get("labels", {})
for what, sel in (("Deployment", dep["spec"]["selector"]["matchLabels"]),
                  ("Service", svc["spec"]["selector"]),
                  ("PodDisruptionBudget", pdb["spec"]["selector"]["matchLabels"])):
    result(all(labels.get(k) == v for k, v in sel.items()),
           f"the {what} selector matches the pod labels", str(sel))

# Security context.
psc, csc = pod.get("securityContext", {}), ctr.get("securityContext", {})
result(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
       "pod runs as non-root", f"runAsUser {psc.get('runAsUser')}")
result(csc.get("allowPrivilegeEscalation") is False and csc.get("readOnlyRootFilesystem") is True
       and "ALL" in csc.get("capabilities", {}).get("drop", []),
       "container: no privilege escalation, read-only root, all capabilities dropped")

# Every *_file secret in the config lies under a mounted Secret.
def files(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{path}.{k}" if path else k
            if k.endswith("_file") and isinstance(v, str):
                yield key, v
            else:
                yield from files(v, key)
secret_dirs = [m["mountPath"].rstrip("/") + "/" for n, m in mounts.items()
               if "secret" in vols.get(n, {})]
for key, p in files(cfg):
    result(any(p.startswith(d) for d in secret_dirs),
           f"{key} reads from a mounted Secret", p)
PY
out=$("$py" "$dir/consistency.py" "$rendered" "$dir/embedded.yaml" 2>&1) || true
tally "$out"
# Teeth: more replicas than partitions, a grace period below the drain
# timeout and a limit below the formula must each be caught.
sed -e 's/^\( *\)maxReplicaCount: .*/\1maxReplicaCount: 12/' \
    -e 's/^\( *\)terminationGracePeriodSeconds: .*/\1terminationGracePeriodSeconds: 15/' \
    -e 's/^\( *\)memory: .*/\1memory: 256Mi/' "$rendered" >"$dir/mutant.yaml"
mutant=$("$py" "$dir/consistency.py" "$dir/mutant.yaml" "$dir/mutant-config.yaml" 2>&1) || true
for what in "maxReplicaCount <= the partition count" \
    "terminationGracePeriodSeconds > service.shutdown_timeout" \
    "memory limit within"; do
    check "the consistency check catches a broken '$what'" \
        grep -q "^FAIL - $what" <<<"$mutant"
done

# ---- 3. Prometheus rules and dashboard PromQL -----------------------------------
say "3. Prometheus rules ($rules) and the dashboard's PromQL"
check "promtool check rules $rules" promtool check rules "$rules"
check "promtool test rules $rules_test" promtool test rules "$rules_test"
mkdir -p "$dir/mutant"
cp "$rules_test" "$dir/mutant/"
sed 's/^\( *\)> 0\.01$/\1> 0.05/' "$rules" >"$dir/mutant/${rules##*/}"
check_fails "promtool test rules fails when the dead-letter threshold is changed (the tests have teeth)" \
    promtool test rules "$dir/mutant/${rules_test##*/}"
# Every expression of the dashboard as a recording rule: promtool parses them.
"$py" - "$dashboard" >"$dir/dashboard-rules.yaml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs.append(t["expr"])
        walk(p.get("panels", []))
walk(d.get("panels", []))
subst = lambda e: (e.replace("$__rate_interval", "5m").replace("$job", ".*")
                   .replace("$instance", ".*"))
rules = [{"record": f"dashboard:expr_{i}", "expr": subst(e)} for i, e in enumerate(exprs)]
print(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
PY
cat >"$dir/dashboard_shape.py" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
errs, ids, n = [], set(), 0
def walk(panels):
    global n
    for p in panels:
        n += 1
        pid, g = p.get("id"), p.get("gridPos", {})
        if pid in ids:
            errs.append(f"duplicate panel id {pid}")
        ids.add(pid)
        if not (g.get("w", 0) > 0 and g.get("h", 0) > 0 and g.get("x", -1) >= 0
                and g["x"] + g["w"] <= 24 and g.get("y", -1) >= 0):
            errs.append(f"panel {pid} {p.get('title')!r}: bad gridPos {g}")
        if p.get("type") != "row":
            if not p.get("title") or not p.get("targets"):
                errs.append(f"panel {pid}: no title or no queries")
            refs = [t.get("refId") for t in p.get("targets", [])]
            if len(set(refs)) != len(refs) or None in refs:
                errs.append(f"panel {pid}: refIds {refs}")
            if "${datasource}" not in json.dumps(p.get("datasource")):
                errs.append(f"panel {pid}: not on the $datasource variable")
        walk(p.get("panels", []))
walk(d.get("panels", []))
names = [v["name"] for v in d.get("templating", {}).get("list", [])]
for want in ("datasource", "job", "instance"):
    if want not in names:
        errs.append(f"no ${want} variable")
if not d.get("uid") or not d.get("title") or not isinstance(d.get("schemaVersion"), int):
    errs.append("uid, title and schemaVersion are required")
print("\n".join(errs) or f"{n} panels")
sys.exit(1 if errs else 0)
PY
check "the dashboard is well formed (unique ids, grid within 24 columns, queries on \$datasource, \$job/\$instance variables)" \
    "$py" "$dir/dashboard_shape.py" "$dashboard"
check "every dashboard query is valid PromQL ($(grep -c 'record:' "$dir/dashboard-rules.yaml") queries; promtool)" \
    promtool check rules "$dir/dashboard-rules.yaml"

# ---- 4. metric names against a real scrape --------------------------------------
say "4. a real touchpointd run: Redis, Kafka, tpgen, /metrics"
# A harness step that fails ends the test with its closing line.
need() {
    "$@" || { bad "harness: $*"; finish; }
}
need tp_start_redis "$dir/redis"
need tp_start_kafka "$dir/kafka"
need tp_create_topic touchpoints 4
need tp_create_topic touchpoints.dlq 1
need tp_create_topic touchpoint.alerts 1
need build/tpgen --seed 7 --count 3000 --span 1m --invalid 12 --duplicates 10 \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints 2>"$dir/tpgen.err"
total=$(tp_topic_count touchpoints) || { bad "counting the topic"; finish; }
cat >"$dir/run.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: deploy-test
input:
  topics: [touchpoints]
redis:
  url: $REDIS_URL
http:
  port: 0
# One KPI alert that fires on the first flush, sent to an Alertmanager that
# is not there: the alert metrics get series too.
alerts:
  - name: deploy-test-any-events
    metric: events
    window: 5m
    above: 0
alert_outputs:
  kafka_topic: touchpoint.alerts
  alertmanager_url: http://127.0.0.1:$(tp_free_port)
YAML
env -u TOUCHPOINTD_REDIS -u TOUCHPOINTD_BROKERS \
    build/touchpointd run -c "$dir/run.yaml" 2>"$dir/run.err" &
run_pid=$!
serving() { grep -q 'serving /metrics /healthz /readyz on ' "$dir/run.err"; }
need tp_wait_for "touchpointd to log its HTTP address" 30 serving
port=$(sed -n 's/.*serving \/metrics \/healthz \/readyz on [^ ]*:\([0-9][0-9]*\).*/\1/p' \
    "$dir/run.err" | head -n 1)
url=http://127.0.0.1:$port
consumed() {
    curl -sf "$url/metrics" | awk -v t="$total" '
        $1 == "touchpointd_messages_consumed_total" { n = $2 }
        END { exit !(n + 0 >= t) }'
}
need tp_wait_for "/metrics to count all $total messages" 90 consumed
# Lag comes from librdkafka's statistics (every 5 s by default).
lag_series() { curl -sf "$url/metrics" | grep -q '^touchpointd_consumer_lag_messages{'; }
check "/metrics reports the consumer lag per partition (librdkafka statistics)" \
    tp_wait_for "lag series in /metrics" 20 lag_series
alert_series() {
    curl -sf "$url/metrics" | grep -q '^touchpointd_alert_output_failures_total{'
}
if tp_wait_for "alert output failure series in /metrics" 10 alert_series 2>/dev/null; then
    ok "an unreachable Alertmanager shows in touchpointd_alert_output_failures_total"
else
    say "no touchpointd_alert_output_failures_total series 10 s after the alert fired with an unreachable Alertmanager: its failed POSTs are not counted"
fi
check "/healthz answers 200" curl -sf -o /dev/null "$url/healthz"
check "/readyz answers 200" curl -sf -o /dev/null "$url/readyz"
curl -sf "$url/metrics" >"$dir/scrape.prom"
say "scraped $(grep -vc '^#' "$dir/scrape.prom") samples of $(grep -c '^# TYPE' "$dir/scrape.prom") families; resident memory $(awk '$1 == "touchpointd_resident_memory_bytes" { printf "%.0f MiB", $2 / 1048576 }' "$dir/scrape.prom")"
cat >"$dir/names.py" <<'PY'
import json, re, sys, yaml
scrape, dashboard, rules = sys.argv[1:4]
NAME = re.compile(r"touchpointd_[a-z_]+")
samples, families, hist = set(), set(), set()
for line in open(scrape):
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split()[:4]
        families.add(name)
        if typ == "histogram":
            hist.add(name)
    elif line.strip() and not line.startswith("#"):
        samples.add(re.split(r"[{ ]", line, 1)[0])
known = samples | families | {h + s for h in hist for s in ("_bucket", "_sum", "_count")}

def family(n):
    for h in hist:
        if n in (h + "_bucket", h + "_sum", h + "_count"):
            return h
    return n

exprs = []
d = json.load(open(dashboard))
def walk(panels):
    for p in panels:
        exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
        walk(p.get("panels", []))
walk(d.get("panels", []))
for v in d.get("templating", {}).get("list", []):
    q = v.get("query")
    exprs.append(q.get("query", "") if isinstance(q, dict) else str(q or ""))
dash_names = {n for e in exprs for n in NAME.findall(e)}
rule_exprs = [r["expr"] for g in yaml.safe_load(open(rules))["groups"] for r in g["rules"]]
rule_names = {n for e in rule_exprs for n in NAME.findall(e)}

def report(what, names):
    missing = sorted(names - known)
    print(("ok - " if names and not missing else "FAIL - ") +
          f"every metric name in {what} exists in the scrape ({len(names)} names"
          + (f"; missing: {', '.join(missing)}" if missing else "") + ")")
    nosamples = sorted(n for n in names & known if n not in samples)
    if nosamples:
        print(f"# {what}: declared in the scrape but no series yet (labelled by "
              f"what has not happened): {', '.join(nosamples)}")
report("the dashboard", dash_names)
report("the Prometheus rules", rule_names)
shown = {family(n) for n in dash_names}
unshown = sorted(families - shown)
print(("ok - " if not unshown else "FAIL - ") +
      f"the dashboard shows every metric family of the scrape ({len(families)} families"
      + (f"; not shown: {', '.join(unshown)}" if unshown else "") + ")")
PY
out=$("$py" "$dir/names.py" "$dir/scrape.prom" "$dashboard" "$rules" 2>&1) || true
tally "$out"
sed 's/touchpointd_redis_errors_total/touchpointd_redis_error_total/' "$rules" >"$dir/typo-rules.yaml"
typo=$("$py" "$dir/names.py" "$dir/scrape.prom" "$dashboard" "$dir/typo-rules.yaml" 2>&1) || true
check "the name check catches a misspelt metric (touchpointd_redis_error_total)" \
    grep -q "^FAIL - .*missing: touchpointd_redis_error_total" <<<"$typo"
kill -TERM "$run_pid"
rc=0
wait "$run_pid" || rc=$?
run_pid=
check "touchpointd run exits 0 on SIGTERM" test "$rc" -eq 0

# ---- 5. touchpointd check on every config -----------------------------------------
say "5. touchpointd check on the example configs"
plain_check() {
    env -u TOUCHPOINTD_REDIS -u TOUCHPOINTD_BROKERS build/touchpointd check -c "$1"
}
# check_config FILE: `touchpointd check -c` with stand-ins for the secrets
# that do not exist on this machine (the ConfigMap's Secret mount): unset
# ${NAME} variables get a value, and *_file paths that do not exist point at
# a stand-in file (the copy keeps the file's line numbers).
check_config() {
    local f=$1 copy vars v
    copy=$dir/check-$(printf '%s' "$f" | tr / _)
    printf 'stand-in secret\n' >"$dir/secret"
    awk -v s="$dir/secret" '
        match($0, /^[ \t]*[A-Za-z0-9_.]*_file:[ \t]*/) {
            path = substr($0, RLENGTH + 1)
            sub(/[ \t]+#.*$/, "", path)
            if (path != "" && system("test -e \"" path "\"") != 0) {
                print substr($0, 1, RLENGTH) s
                next
            }
        }
        { print }' "$f" >"$copy"
    vars=()
    for v in $(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$f" | tr -d '${}' | sort -u); do
        [ -n "${!v+x}" ] || vars+=("$v=stand-in")
    done
    env -u TOUCHPOINTD_REDIS -u TOUCHPOINTD_BROKERS ${vars[@]+"${vars[@]}"} \
        build/touchpointd check -c "$copy"
}
# The examples pass as they are: their secrets are commented out.
configs=(deploy/touchpointd.yaml deploy/examples/*.yaml)
for f in "${configs[@]}"; do
    check "touchpointd check -c $f" plain_check "$f"
done
if [ -s "$dir/embedded.yaml" ]; then
    cp "$dir/embedded.yaml" "$dir/configmap-touchpointd.yaml"
    check "touchpointd check -c on the config embedded in $base/configmap.yaml" \
        check_config "$dir/configmap-touchpointd.yaml"
else
    bad "the config embedded in $base/configmap.yaml was extracted"
fi
sed 's/^\( *\)bucket: .*/\1bucket: 7 minutes/' deploy/touchpointd.yaml >"$dir/broken.yaml"
check_fails "touchpointd check rejects a broken copy (aggregation.bucket: 7 minutes)" \
    plain_check "$dir/broken.yaml"

finish
