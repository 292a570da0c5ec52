#!/usr/bin/env bash
# Correctness on a GPU machine after a kernel change, in one command (logs under LOG_DIR, a summary at the end):
#   1. the CUDA backward kernels against the float64 backward reference (tests/cuda/backward.test.ts)
#      with the backward variants under evaluation alongside (VERIFY_BWD_VARIANTS: ';'-separated sets, each a
#      comma list as --cuda-bwd takes; default: every variant on, on mma.sync and on wgmma, and the single pass
#      (fused-dq) alone and with all the others; '' for none)
#   2. the torch module's autograd the same way (tests/torch, its gradient test)
#   3. the CUDA differential suite of the forward defaults, bf16 and f16, lengths to 2100 (past the long-row
#      variant's 2048 rows), then at D=64 again with 3 blocks so that each persistent block walks several items
#      (VERIFY_FORWARD=0 leaves these out, e.g. when only backward kernels changed: the whole script then fits the
#      device tool's 10 minutes a call with two variant sets)
# Usage: bash scripts/gpu-verify.sh [LOG_DIR]   Exit status 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-/tmp/attnc-verify}
mkdir -p "$logs"
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-/tmp/attnc-cache}
status=0
t0=$(date +%s)
line() { echo "$1: $2 [$(( $(date +%s) - t0 )) s]" | tee -a "$logs/summary.txt"; }
vitest_line() { grep -E 'Tests ' "$1" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | xargs; }

# The backward variants under evaluation ride along: each case against the same float64 reference.
ATTNC_CUDA_BWD_VARIANTS=${VERIFY_BWD_VARIANTS-tables,async-stats,scan-window;wgmma,tables,async-stats,scan-window;fused-dq;wgmma,fused-dq,tables,async-stats,scan-window} \
  timeout 420 npx vitest run tests/cuda/backward.test.ts >"$logs/backward.log" 2>&1 || status=1
line 'CUDA backward (and its variants) vs float64' "$(vitest_line "$logs/backward.log")"
grep -E '^\S+ D=[0-9]+ \[' "$logs/backward.log" | awk '{print $3}' | sort | uniq -c | sed 's/^/  cases per variant: /' | tee -a "$logs/summary.txt"
timeout 240 npx vitest run tests/torch/torch-target.test.ts -t 'gradients through' >"$logs/torch-grad.log" 2>&1 || status=1
line 'torch module autograd vs float64' "$(vitest_line "$logs/torch-grad.log")"
if [ "${VERIFY_FORWARD:-1}" != 0 ]; then
  timeout 200 npx tsx tests/cuda/suite.ts --dtypes bf16,f16 --long --max-n 2100 >"$logs/suite-defaults.log" 2>&1 || status=1
  line 'forward suite (defaults)' "$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$logs/suite-defaults.log" | tail -1)"
  ATTNC_CUDA_MAX_BLOCKS=3 timeout 100 npx tsx tests/cuda/suite.ts --dims 64 --dtypes bf16,f16 --long --max-n 2100 >"$logs/suite-d64-3blocks.log" 2>&1 || status=1
  line 'forward suite D=64, 3 persistent blocks' "$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$logs/suite-d64-3blocks.log" | tail -1)"
  grep -h 'FAIL' "$logs"/suite-*.log | head -20
fi
echo "status $status" | tee -a "$logs/summary.txt"
exit $status
