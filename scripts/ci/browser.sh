#!/usr/bin/env bash
# Installs the headless browser tests/audit_html.rs renders the audit evidence page in:
# Debian's `chromium`, only when /usr/bin/chromium is missing. Idempotent; runs as root or
# through sudo. The test itself fails (not skips) under CI when the browser is missing, so a
# failed install here shows up as a red test rather than as silence.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "scripts/ci/browser.sh: installing chromium (needed by tests/audit_html.rs)" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >&2
