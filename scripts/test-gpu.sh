#!/usr/bin/env bash
# The CUDA suite on a GPU machine (npm run test:gpu): every example against
# the float64 reference through the Node runtime (openCuda), D 64 and 128,
# f32/f16/bf16, lengths 1, 17, 300, 1000, 4096, 16384 (rows sampled for long
# ones), GQA and decode shapes; then compute-sanitizer memcheck and racecheck
# on a sample; then a summary. Logs go to $ATTNC_GPU_LOGS (default /tmp/attnc-gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${ATTNC_GPU_LOGS:-/tmp/attnc-gpu}
mkdir -p "$logs"
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-$logs/cache}
status=0

echo "== differential suite (every example, f32/f16/bf16, D 64/128, short + long shapes)"
npx tsx tests/cuda/suite.ts --long >"$logs/suite.log" 2>&1 || status=1
grep -E '^(FAIL|CUDA )' "$logs/suite.log" | head -40
suite_line=$(grep 'CUDA differential suite' "$logs/suite.log" || echo 'CUDA differential suite: did not finish')

echo "== compute-sanitizer on a sample (causal + scale_invariant + document, small shapes)"
san_summary=""
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 3 --target-processes all \
      npx tsx tests/cuda/suite.ts --only causal,scale_invariant,document --dtypes bf16,f32 --max-n 300 >"$logs/sanitizer-$tool.log" 2>&1
    rc=$?
    errs=$(grep -c '========= ' "$logs/sanitizer-$tool.log" || true)
    san_summary+="$tool rc=$rc (${errs} sanitizer lines); "
    [ $rc -eq 0 ] || status=1
    grep -m5 -E 'ERROR SUMMARY|Invalid|hazard' "$logs/sanitizer-$tool.log"
  done
else
  san_summary="compute-sanitizer not found: skipped"
fi

echo
echo "== summary"
echo "$suite_line"
echo "sanitizer: $san_summary"
echo "logs: $logs"
exit $status
