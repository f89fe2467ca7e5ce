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
