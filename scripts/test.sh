#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: cargo test, then a longer
# release-mode pass of the parser fuzzers (tests/fuzz_parsers.rs), bounded in time.
#   FUZZ_SECONDS_RELEASE  seconds per fuzz target in the release pass (default 20; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci/browser.sh  # headless chromium for tests/audit_html.rs
scripts/ci/mermaid.sh   # Mermaid parser for tests/formats.rs (Node: mermaid + jsdom)
scripts/ci/k8s-validate.sh   # jobs/k8s/ manifests against a pinned Kubernetes schema

scripts/ci/moto.sh           # the AWS emulator for tests/live_aws.rs (moto, in target/moto-venv)

# moto on a free loopback port for the duration of the tests, stopped however they end
moto_py="$PWD/target/moto-venv/bin/python"
moto_port=$("$moto_py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/moto-venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
"$moto_py" - "$moto_port" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("scripts/test.sh: moto did not start (see target/moto.log)")
PY
export INTENTWALL_TEST_MOTO="http://127.0.0.1:$moto_port" INTENTWALL_TEST_PYTHON="$moto_py"

# Everything but the live backends, without the cloud SDKs: twenty-odd test binaries that would
# each link the SDKs otherwise (gigabytes of disk for nothing they use).
cargo test --workspace --locked "$@"
# `live`: the cloud SDKs, and the tests that use them (the AWS provider's live module and the
# end-to-end live tests against moto)
cargo test --locked -p intentwall-aws --features live --lib "$@"
cargo test --locked --features live --test live_aws "$@"
# the clouds without an emulator: each end-to-end test starts its own fake of the cloud's API
# (python3, standard library), whose own tests come first
python3 tests/live/azure_fake_test.py
cargo test --locked -p intentwall-azure --features live --lib "$@"
cargo test --locked --features live --test live_azure "$@"
cargo test --locked -p intentwall-gcp --features live --lib "$@"
cargo test --locked --features live --test live_gcp "$@"

fuzz_seconds="${FUZZ_SECONDS_RELEASE:-20}"
if [ "$fuzz_seconds" != "0" ]; then
  echo "scripts/test.sh: fuzzing every parser for ${fuzz_seconds}s each (release build)" >&2
  FUZZ_SECONDS="$fuzz_seconds" FUZZ_CASES=10000000 \
    cargo test --release --locked --test fuzz_parsers -- --nocapture --test-threads 2
fi
