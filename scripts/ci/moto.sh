#!/usr/bin/env bash
# Installs the AWS emulator the live-AWS tests (tests/live_aws.rs) run against: moto's server
# (pinned) in a venv under target/moto-venv. Idempotent; only PyPI is needed.
# scripts/test.sh starts the server on a free loopback port and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/moto-venv
want="moto==5.2.5"
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, boto3; assert moto.__version__ == "5.2.5"' 2>/dev/null; then
  exit 0
fi
echo "scripts/ci/moto.sh: installing $want into $venv" >&2
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==5.2.5" "boto3"
