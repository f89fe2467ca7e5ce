#!/usr/bin/env bash
# Pull-request approval gate: plan, publish the Markdown summary and JUnit results, keep the
# plan file as the artifact a later `intentwall apply plan.json` consumes (stale plans are
# refused there). Exit: 0 no changes, 2 changes to review, 3 blocked, 1 error.
set -uo pipefail
out=${OUT:-intentwall-out}
mkdir -p "$out"
intentwall plan --out "$out/plan.json" --format markdown > "$out/plan.md"
rc=$?
intentwall simulate --format junit > "$out/simulation.xml" || true
case $rc in
  0) echo "intentwall: no changes" ;;
  2) echo "intentwall: changes planned; review $out/plan.md" ;;
  3) echo "intentwall: BLOCKED (see findings in $out/plan.md)" ;;
  *) echo "intentwall: error ($rc)" ;;
esac
# a wrapper must not swallow exit code 2 (the classic failure of setup-terraform wrappers): pass it through
exit $rc
