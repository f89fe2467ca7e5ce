#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: cargo test, then a longer
# release-mode pass of the parser fuzzers (tests/fuzz_parsers.rs), bounded in time.
#   FUZZ_SECONDS_RELEASE  seconds per fuzz target in the release pass (default 20; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ci/browser.sh  # headless chromium for tests/audit_html.rs
scripts/ci/mermaid.sh   # Mermaid parser for tests/formats.rs (Node: mermaid + jsdom)
scripts/ci/k8s-validate.sh   # jobs/k8s/ manifests against a pinned Kubernetes schema

cargo test --workspace --locked "$@"

fuzz_seconds="${FUZZ_SECONDS_RELEASE:-20}"
if [ "$fuzz_seconds" != "0" ]; then
  echo "scripts/test.sh: fuzzing every parser for ${fuzz_seconds}s each (release build)" >&2
  FUZZ_SECONDS="$fuzz_seconds" FUZZ_CASES=10000000 \
    cargo test --release --locked --test fuzz_parsers -- --nocapture --test-threads 2
fi
