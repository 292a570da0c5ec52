#!/usr/bin/env bash
# The CUDA suite on a GPU machine (npm run test:gpu): every example against
# the float64 reference through the Node runtime (openCuda), D 64 and 128,
# f32/f16/bf16, lengths 1, 17, 300, 1000, 4096, 16384 (rows sampled for long
# ones), GQA and decode shapes (on Hopper: the wgmma kernels, then the
# mma.sync ones on short shapes); then the torch target's modules from PyTorch (tests/torch); then compute-sanitizer memcheck, racecheck
# and initcheck on every example; then a summary. Logs go to $ATTNC_GPU_LOGS (default /tmp/attnc-gpu).
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

# On Hopper the suite above ran the wgmma kernels; the mma.sync ones (what
# other GPUs get) are checked there too, on the short shapes.
mma_line=""
if nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | grep -q '^9\.0'; then
  echo "== Hopper: the mma.sync kernels too (ATTNC_CUDA_KERNEL=mma, short shapes)"
  ATTNC_CUDA_KERNEL=mma npx tsx tests/cuda/suite.ts --dtypes f16,bf16 >"$logs/suite-mma.log" 2>&1 || status=1
  grep -E '^FAIL' "$logs/suite-mma.log" | head -20
  mma_line="mma.sync on Hopper: $(grep 'CUDA differential suite' "$logs/suite-mma.log" || echo 'did not finish')"
fi

echo "== the torch target's modules from PyTorch, every example against float64 (tests/torch)"
npx vitest run tests/torch >"$logs/torch.log" 2>&1 || status=1
torch_line="torch modules: $(grep -E 'Tests .*(passed|failed)' "$logs/torch.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | xargs)"
grep -q 'GPU runs skipped\|calls skipped' "$logs/torch.log" && torch_line="$torch_line (GPU runs skipped: $(grep -o 'torch finds no CUDA device\|has no torch' "$logs/torch.log" | head -1))"

echo "== compute-sanitizer memcheck, racecheck, initcheck on every example (scripts/gpu-reliability.sh part c)"
san_summary=""
if command -v compute-sanitizer >/dev/null; then
  SKIP_CUDA_FUZZ=1 SKIP_WEBGPU=1 bash scripts/gpu-reliability.sh "$logs/sanitizer" >"$logs/sanitizer.log" 2>&1 || status=1
  san_summary=$(grep -E '^sanitizer ' "$logs/sanitizer/summary.txt" 2>/dev/null | tr '\n' ';')
else
  san_summary="compute-sanitizer not found: skipped"
fi

echo
echo "== summary"
echo "$suite_line"
[ -n "$mma_line" ] && echo "$mma_line"
echo "$torch_line"
echo "sanitizer: $san_summary"
echo "logs: $logs"
exit $status
