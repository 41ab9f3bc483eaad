#!/usr/bin/env bash
# The long chaos run (`npm run chaos`): every scenario of test/chaos at TEKTREE_CHAOS_SCALE times
# its CI size (default 3), the in-process chaos scenario over TEKTREE_CHAOS_SEEDS seeds (default 60),
# the fuzz pass with TEKTREE_FUZZ_ITERATIONS times its cases (default 30). Each scenario appends its
# results to .chaos/results-<time>.jsonl; scripts/chaos-report.ts turns them (and vitest's JSON
# report) into the results section of RELIABILITY.md, with vitest's exit status (its JSON report
# misses errors outside the tests). Exits with vitest's status: a failed check
# is a finding, and the report says which.
set -uo pipefail
cd "$(dirname "$0")/.."

npm run build >/dev/null || exit 1
mkdir -p .chaos
stamp=$(date -u +%Y%m%dT%H%M%SZ)
export TEKTREE_CHAOS_RESULTS="$PWD/.chaos/results-$stamp.jsonl"
export TEKTREE_CHAOS_SCALE="${TEKTREE_CHAOS_SCALE:-3}"
export TEKTREE_CHAOS_SEEDS="${TEKTREE_CHAOS_SEEDS:-60}"
export TEKTREE_FUZZ_ITERATIONS="${TEKTREE_FUZZ_ITERATIONS:-30}"
: >"$TEKTREE_CHAOS_RESULTS"

echo "chaos: scale $TEKTREE_CHAOS_SCALE, $TEKTREE_CHAOS_SEEDS seeds, fuzz x$TEKTREE_FUZZ_ITERATIONS; results in $TEKTREE_CHAOS_RESULTS"
started=$(date +%s)
npx vitest run test/chaos --reporter=default --reporter=json --outputFile.json=".chaos/vitest-$stamp.json" "$@"
status=$?
seconds=$(( $(date +%s) - started ))

node --import tsx scripts/chaos-report.ts --results "$TEKTREE_CHAOS_RESULTS" --vitest ".chaos/vitest-$stamp.json" --seconds "$seconds" --status "$status" --write RELIABILITY.md
echo "chaos: ${seconds} s, vitest exit $status; RELIABILITY.md's results section rewritten"
exit $status
