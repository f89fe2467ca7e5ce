#!/usr/bin/env bash
# Pull-request approval gate: plans once and leaves what a review needs in $OUT (default
# intentwall-out):
#   plan.json   the plan file: the artifact `intentwall apply plan.json` applies after merge
#               (refused there as stale if the intents or any target's state changed since)
#   plan.md     the pull-request comment: summary table with every verdict, findings, picture
#               of the changed flows, changes per target; under GitHub's 65,536-character
#               limit, with room left for a marker line
#   junit.xml   JUnit of the checks: a suite per target, a failure per blocking finding
#   status      no-changes | changes | blocked | error
# Extra arguments go to `intentwall plan` (e.g. --deployment us). $INTENTWALL names the
# binary (default: intentwall on PATH).
#
# Exit: plan's own code, 0 no changes, 2 changes to review, 3 blocked, 1 error. Exit 2 is
# not a failure: a wrapper maps it to "changes", never to red (jobs/ci/ shows how). With
# GATE_CHANGES_OK=1 it exits 0 on changes, for CI systems that only know pass and fail;
# `status` (and $GITHUB_OUTPUT, when set) still says `changes`.
set -uo pipefail
iw=${INTENTWALL:-intentwall}
out=${OUT:-intentwall-out}
mkdir -p "$out"

"$iw" plan --out "$out/plan.json" --format markdown "$@" > "$out/plan.md"
rc=$?
# a second pass from the same inputs, for the test report; the verdict is the first pass's
if [ "$rc" -ne 1 ]; then
  "$iw" plan --format junit "$@" > "$out/junit.xml" || true
fi

case $rc in
  0) status=no-changes; say="no changes" ;;
  2) status=changes; say="changes to review in $out/plan.md (exit 2 is not a failure)" ;;
  3) status=blocked; say="BLOCKED by a finding (see $out/plan.md)" ;;
  *) status=error; say="error (exit $rc); see the log above"
     printf '## intentwall plan: error\n\nThe plan failed (exit %s); nothing was planned. See the job log.\n' "$rc" > "$out/plan.md" ;;
esac
echo "$status" > "$out/status"
echo "intentwall: $say" >&2
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "status=$status"; echo "exit-code=$rc"; } >> "$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$out/plan.md" >> "$GITHUB_STEP_SUMMARY"
fi
# never swallow exit code 2 by accident (the classic failure of setup-terraform wrappers):
# it passes through unless the caller asked for the mapping
if [ "$rc" -eq 2 ] && [ "${GATE_CHANGES_OK:-0}" = "1" ]; then
  exit 0
fi
exit "$rc"
