#!/usr/bin/env bash
# The test command (npm test): the whole vitest suite, then one plain line
# `N passed, M failed` read from vitest's JSON report, so a run that tested
# nothing is visible. Device-gated tests skip with their reason when no
# device of their kind is present.
set -uo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/attnc-xdg}
mkdir -p "$XDG_RUNTIME_DIR"
report=$(mktemp -t attnc-vitest-XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? ` (${skipped} skipped)` : ""));
' "$report" || echo "0 passed, 1 failed (no test report was written)"
rm -f "$report"
exit $status
