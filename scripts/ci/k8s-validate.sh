#!/usr/bin/env bash
# Validates the Kubernetes manifests under jobs/k8s/ against the OpenAPI schemas of a pinned
# Kubernetes version, offline once installed: kubernetes-validate (PyPI) ships the schemas.
#   - creates the venv target/k8s-venv (python3-venv from Debian if missing), idempotent;
#   - every *.yaml but kustomization.yaml is validated in --strict mode (unknown fields are
#     errors, so a misspelt securityContext key cannot pass);
#   - kustomization.yaml is checked on its own: every resource it lists exists and was
#     validated above, and every manifest is listed (or named in EXTRA below: applied by hand).
#   K8S_VERSION   Kubernetes version whose schemas are used (default 1.33.0)
#   K8S_VENV      venv directory (default target/k8s-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSION="${K8S_VERSION:-1.33.0}"
VALIDATOR_VERSION="1.37.0"
VENV="${K8S_VENV:-target/k8s-venv}"
# manifests deliberately outside the kustomization (a one-off run, created by hand)
EXTRA="plan-job.yaml"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if [ ! -x "$VENV/bin/kubernetes-validate" ] \
  || ! "$VENV/bin/python" -m pip show kubernetes-validate 2>/dev/null | grep -qx "Version: $VALIDATOR_VERSION"; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    echo "scripts/ci/k8s-validate.sh: installing python3-venv" >&2
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "scripts/ci/k8s-validate.sh: installing kubernetes-validate $VALIDATOR_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "kubernetes-validate==$VALIDATOR_VERSION"
fi

shopt -s nullglob
manifests=()
for f in jobs/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
if [ "${#manifests[@]}" -eq 0 ]; then
  echo "scripts/ci/k8s-validate.sh: no manifests under jobs/k8s/" >&2
  exit 1
fi
"$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "${manifests[@]}"

# the kustomization: resources exist, are validated manifests, and none is forgotten
"$VENV/bin/python" - "$EXTRA" <<'PY'
import os, sys, yaml
extra = set(sys.argv[1].split())
k = yaml.safe_load(open("jobs/k8s/kustomization.yaml"))
assert k.get("apiVersion") == "kustomize.config.k8s.io/v1beta1", "kustomization apiVersion"
assert k.get("kind") == "Kustomization", "kustomization kind"
listed = k.get("resources") or []
bad = [r for r in listed if not os.path.isfile(os.path.join("jobs/k8s", r))]
if bad:
    sys.exit(f"jobs/k8s/kustomization.yaml: resources not found: {bad}")
present = {f for f in os.listdir("jobs/k8s") if f.endswith(".yaml") and f != "kustomization.yaml"}
missing = sorted(present - set(listed) - extra)
if missing:
    sys.exit(f"jobs/k8s/kustomization.yaml: manifests not listed as resources: {missing}")
print(f"jobs/k8s/kustomization.yaml: {len(listed)} resources, all present")
PY

# what the schema cannot see: the job's own conventions, which drift apart silently
"$VENV/bin/python" - <<'PY'
import glob, re, sys, yaml
docs = [(f, d) for f in sorted(glob.glob("jobs/k8s/*.yaml")) if not f.endswith("kustomization.yaml")
        for d in yaml.safe_load_all(open(f)) if d]
problems = []
def bad(f, msg): problems.append(f"{f}: {msg}")
accounts = {d["metadata"]["name"]: d for f, d in docs if d["kind"] == "ServiceAccount"}
for f, d in docs:
    if d["kind"] not in ("CronJob", "Job"):
        continue
    job = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
    pod = job["template"]["spec"]
    labels = job["template"]["metadata"].get("labels", {})
    if labels.get("azure.workload.identity/use") != "true":
        bad(f, 'pod label azure.workload.identity/use: "true" missing')
    sa = accounts.get(pod.get("serviceAccountName"))
    if sa is None:
        bad(f, f"serviceAccountName {pod.get('serviceAccountName')} is not defined in jobs/k8s/")
    else:
        for a in ("eks.amazonaws.com/role-arn", "azure.workload.identity/client-id",
                  "iam.gke.io/gcp-service-account"):
            if a not in sa["metadata"].get("annotations", {}):
                bad(f, f"ServiceAccount lacks the annotation {a}")
    mounts = {}
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False:
            bad(f, f"{c['name']}: readOnlyRootFilesystem true and allowPrivilegeEscalation false required")
        words = " ".join(c.get("command", []) + c.get("args", []))
        if re.search(r"(^|[/ ])(ba)?sh( |$)", words):
            bad(f, f"{c['name']}: runs a shell")
        mounts[c["name"]] = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    sync = [c for c in pod.get("initContainers", []) if "git-sync" in c["image"]]
    main = [c for c in pod["containers"] if c["name"] == "intentwall"]
    if len(sync) != 1 or len(main) != 1:
        bad(f, "one git-sync init container and one intentwall container expected")
        continue
    sync, main = sync[0], main[0]
    if not sync["image"].startswith("registry.k8s.io/git-sync/git-sync:v4."):
        bad(f, "git-sync must be registry.k8s.io/git-sync/git-sync:v4.x")
    flags = dict(a.split("=", 1) for a in sync["args"] if "=" in a)
    if "--one-time" not in sync["args"]:
        bad(f, "git-sync needs --one-time (an init container must end)")
    if "command" in main:
        bad(f, "intentwall: `command` would replace the image's ENTRYPOINT; use args")
    args = dict(a.split("=", 1) for a in main["args"] if a.startswith("--") and "=" in a)
    intents = args.get("--intents", "")
    root, link = flags.get("--root", ""), flags.get("--link", "")
    if not intents.startswith(f"{root}/{link}/"):
        bad(f, f"--intents={intents} is not under git-sync's {root}/{link}/")
    if mounts["intentwall"].get(root) != mounts[sync["name"]].get(root):
        bad(f, f"intentwall does not mount git-sync's {root} volume")
    if args.get("--state") != "live":
        bad(f, "intentwall must run with --state=live")
    if job.get("completionMode") == "Indexed":
        env = {e["name"]: e.get("value") for e in main.get("env", [])}
        m = re.fullmatch(r"\$\(JOB_COMPLETION_INDEX\)/(\d+)", args.get("--shard", ""))
        count = int(m.group(1)) if m else int(env.get("INTENTWALL_SHARD_COUNT") or 0)
        if count != job.get("completions") or count != job.get("parallelism"):
            bad(f, f"shard count {count} must equal completions {job.get('completions')} and parallelism")
for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"jobs/k8s: conventions hold in {sum(d['kind'] in ('CronJob', 'Job') for _, d in docs)} job manifests")
PY
