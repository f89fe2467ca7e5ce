#!/usr/bin/env bash
# intentwall vs Aerleon on the same generated estate, in the same run.
#
#   benches/aerleon-compare.sh                      # sizes 250,1000,2000,8000
#   SCALE_SIZES=25,50,100 benches/aerleon-compare.sh
#
# Builds intentwall in release, installs Aerleon (PyPI `aerleon`) into a venv under the cargo
# target directory if it is missing, then runs `cargo bench --bench scale`, which generates
# each estate once and times `intentwall plan` (all 18 targets and the 6 GCP ones) and
# Aerleon's `aclgen` (GCE generator) on it one after the other, and prints both with their
# ratio. Every SCALE_* variable of benches/scale.rs passes through (see docs/benchmarks.md).
#
# Exits non-zero only when the setup fails (build, venv, install); slow or failing plans are
# reported in the table, not as a failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/aerleon-venv"

cargo build --release

if [[ ! -x "$venv/bin/aclgen" ]]; then
  echo "installing aerleon into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet aerleon
fi
"$venv/bin/python" -c "import aerleon.aclgen" || { echo "aerleon does not import in $venv" >&2; exit 1; }
echo "aerleon $("$venv/bin/pip" show aerleon 2>/dev/null | sed -n 's/^Version: //p'), $(python3 --version)"

AERLEON_ACLGEN="$venv/bin/aclgen" cargo bench --bench scale
