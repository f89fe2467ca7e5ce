#!/usr/bin/env bash
# Installs a Mermaid syntax checker for tests/formats.rs: the `mermaid` package's own parser
# (the one GitHub's renderer runs) in Node, under target/mermaid-check/ (or $MERMAID_CHECK_DIR).
#
# Why not @mermaid-js/parser: it covers only the diagrams ported to its new grammar (pie,
# gitGraph, packet, architecture, ...), not `flowchart`, which is what intentwall draws.
# mermaid.parse() needs a DOM to sanitise labels, so jsdom provides one (see check.mjs below).
#
# Idempotent: does nothing when the pinned versions are already installed. Installs Node.js
# and npm from Debian when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/../.."

MERMAID_VERSION=11.12.2
JSDOM_VERSION=26.1.0
dir="${MERMAID_CHECK_DIR:-target/mermaid-check}"
stamp="mermaid@$MERMAID_VERSION jsdom@$JSDOM_VERSION"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/ci/mermaid.sh: installing nodejs and npm (needed by tests/formats.rs)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

mkdir -p "$dir"
if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$stamp" ] || [ ! -d "$dir/node_modules/mermaid" ]; then
  echo "scripts/ci/mermaid.sh: installing $stamp into $dir" >&2
  printf '{ "private": true, "type": "module" }\n' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --save-exact --loglevel=error \
    "mermaid@$MERMAID_VERSION" "jsdom@$JSDOM_VERSION" >/dev/null)
  echo "$stamp" > "$dir/.installed"
fi

# `node check.mjs FILE...`: parses each file as Mermaid; prints `FILE: ok (type)` or the
# parser's error; exit 1 when any file does not parse.
cat > "$dir/check.mjs" <<'JS'
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';
// mermaid sanitises labels with DOMPurify, which needs a window: a minimal one
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const k of ['DOMParser', 'Element', 'HTMLElement', 'Node']) {
  if (!(k in globalThis)) globalThis[k] = dom.window[k];
}
const mermaid = (await import('mermaid')).default;
mermaid.initialize({ startOnLoad: false });
let bad = 0;
for (const file of process.argv.slice(2)) {
  try {
    const r = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`${file}: ok (${r.diagramType})`);
  } catch (e) {
    bad++;
    console.log(`${file}: ${e?.message ?? e}`);
  }
}
process.exit(bad ? 1 : 0);
JS
echo "scripts/ci/mermaid.sh: $dir/check.mjs ready ($stamp)" >&2
