#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need
# (Graphviz, to check that `graph --format dot` is valid DOT), then cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "scripts/test.sh: installing graphviz (needed by tests/cli.rs)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
fi

cargo test --workspace --locked "$@"
