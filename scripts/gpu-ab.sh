#!/usr/bin/env bash
# The open kernel questions of issue 4 on a GPU machine, in one command: first that every candidate is correct
# (tests/cuda/suite.ts against float64), then a same-run A/B of their SM cycles per launch (scripts/cuda-bench.ts
# --clock-probe: cycles do not depend on the clock the GPU chose, bench/README.md), each group timed twice, the
# second time in reverse order, then one table (scripts/cuda-ab-table.py).
#
# The candidates (all off by default, built without spills by nvcc here; tests/cuda/nvcc.test.ts):
#   c   per-diagonal values carried in the producer's registers (CudaTiles.diagCarry)
#   d   per-diagonal values read by the consumers while S is on the tensor cores (CudaTiles.diagPrefetch)
#   12xBN...  three consumer warpgroups (BM 192): a third warp per scheduler to hide the element loop's waits
#             (12x128p3o: FlashAttention-3's D=64 tiling, not persistent, 160 registers a consumer thread)
#
# Usage: bash scripts/gpu-ab.sh [LOG_DIR]   (LOG_DIR gets suite-*.log, torch.log, torch-fuzz.log, ab-*.log, ab-table.txt,
#   ab.json, ab.svg, decode.log, webgpu.log, summary.txt)
# Knobs: AB_PARTS='suite torch bench decode webgpu' (any of them; decode: the CUDA kernel on one-row GQA calls;
#   webgpu: the WGSL kernel on decode and prefill calls through Dawn; torch: the torch target's modules from PyTorch, tests/torch, then
#   AB_TORCH_FUZZ_S=60 seconds of random specs through them), AB_GROUPS=0,1,2,3 (which timed groups, by index), AB_TIMEOUT=120 (s per timed variant), AB_ITERS=30, AB_SHAPES=2x16384,8x4096
# Wall time on an H200: about 2 minutes of suites and 6 of timing (first run not yet made; each variant compiles once
# through NVRTC, ~5 s). Exit status 1 when a suite case failed or a variant could not be timed.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-/tmp/attnc-ab}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-/tmp/attnc-cache}
AB_PARTS=${AB_PARTS:-suite torch bench decode webgpu}
AB_TIMEOUT=${AB_TIMEOUT:-120}
AB_ITERS=${AB_ITERS:-30}
AB_SHAPES=${AB_SHAPES:-2x16384,8x4096}
AB_GROUPS=${AB_GROUPS:-0,1,2,3}
# One line and exit 2 where there is no CUDA device, rather than a log per part saying so.
npx tsx -e "import('./src/runtime/cuda.ts').then(async (m) => (await m.openCuda()).dispose()).catch((e) => { console.error('gpu-ab: ' + e.message); process.exit(2); })" || exit 2
status=0
summary=()
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }

# name | environment | suite flags: each a kernel the A/B times, against float64 first (lengths to 1000; the persistent
# ones with 3 blocks, so that each block walks several items).
suites=(
  "diag-cd|ATTNC_CUDA_DIET=+cd|--only scale_invariant,scale_invariant_window --dtypes bf16,f16 --max-n 1000"
  "12x96-d64|ATTNC_CUDA_TILES=12,96,1,1,3,1,1,1 ATTNC_CUDA_MAX_BLOCKS=3|--dims 64 --dtypes bf16 --max-n 1000"
  "12x64cd-d64|ATTNC_CUDA_TILES=12,64,1,1,3,1,1,1 ATTNC_CUDA_DIET=+cd ATTNC_CUDA_MAX_BLOCKS=3|--dims 64 --dtypes bf16,f16 --only scale_invariant,scale_invariant_window --max-n 1000"
  "12x128-d64|ATTNC_CUDA_TILES=12,128,1,1,3,0,1,1 ATTNC_CUDA_MAX_BLOCKS=3|--dims 64 --dtypes bf16 --only scale_invariant,scale_invariant_window --max-n 1000"
  "12x128o-d64|ATTNC_CUDA_TILES=12,128,1,1,3,1,1,0|--dims 64 --dtypes bf16 --max-n 1000"
  "12x64-d128|ATTNC_CUDA_TILES=12,64,1,1,3,1,1,0|--dims 128 --dtypes bf16 --max-n 1000"
)
# specs | D | variants: the first variant of each group is the baseline of its ratios.
groups=(
  "scale_invariant|64|default,default+c,default+d,default+cd,12x128p3o,12x96p3oP,12x96p3oP+c,12x64p3oP,12x64p3oP+cd,12x128p3P"
  "scale_invariant|128|default,default+c,default+d,default+cd,12x64p3o,12x64p3o+c"
  "causal,alibi,softcap|64|default,12x128p3o,12x96p3oP,12x64p3oP"
  "causal,alibi|128|default,12x64p3o"
)

if [[ " $AB_PARTS " == *" suite "* ]]; then
  for s in "${suites[@]}"; do
    IFS='|' read -r name envs flags <<<"$s"
    log="$logs/suite-$name.log"
    # shellcheck disable=SC2086  # the environment and flags are word lists
    env $envs npx tsx tests/cuda/suite.ts $flags >"$log" 2>&1
    rc=$?
    line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    summary+=("suite $name ($envs): ${line:-no summary line, rc $rc} [$(elapsed)]")
    [ "$rc" -ne 0 ] && status=1
  done
fi

# The torch target's modules, called from PyTorch on this GPU, every example against float64 (tests/torch).
if [[ " $AB_PARTS " == *" torch "* ]]; then
  npx vitest run tests/torch >"$logs/torch.log" 2>&1 || status=1
  summary+=("torch modules (tests/torch): $(grep -E 'Tests ' "$logs/torch.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | xargs)$(grep -q 'GPU runs skipped\|calls skipped' "$logs/torch.log" && echo ' (GPU runs skipped)') [$(elapsed)]")
  # Random specs through the torch module against float64 (the differential fuzzer's torch backend).
  npm run -s fuzz -- --kind diff --backend torch --seconds "${AB_TORCH_FUZZ_S:-60}" --jobs 4 >"$logs/torch-fuzz.log" 2>&1 || status=1
  summary+=("torch module fuzz: $(grep -E 'fuzz summary' "$logs/torch-fuzz.log" | tail -1) [$(elapsed)]")
fi

if [[ " $AB_PARTS " == *" bench "* ]]; then
  abl=()
  for order in forward reverse; do
    i=0
    for g in "${groups[@]}"; do
      [[ ",$AB_GROUPS," == *",$i,"* ]] || { i=$((i + 1)); continue; }
      IFS='|' read -r specs D variants <<<"$g"
      [ "$order" = reverse ] && variants=$(tr ',' '\n' <<<"$variants" | tac | paste -sd,)
      log="$logs/ab-$i-$order.log"
      abl+=("$log")
      npx tsx scripts/cuda-bench.ts --bench-docs --shapes "$AB_SHAPES" --iters "$AB_ITERS" --clock-probe \
        --timeout-s "$AB_TIMEOUT" --specs "$specs" --D "$D" --variants "$variants" >"$log" 2>&1 || status=1
      summary+=("timed $specs D=$D $order: $(grep -c 'SM cycles per launch' "$log") variant-shapes, $(grep -c ': failed:\|killed after' "$log") failed [$(elapsed)]")
      i=$((i + 1))
    done
  done
  # Ratios against each group's first label, whatever order the runs were in: the table lists labels as first seen.
  python3 scripts/cuda-ab-table.py "${abl[@]}" --json "$logs/ab.json" >"$logs/ab-table.txt" 2>&1 || status=1
  npx tsx bench/plot-ab.ts "$logs/ab.json" -o "$logs/ab.svg" >/dev/null 2>&1 || true  # the same ratios as bars
fi

# Decode (one query row, GQA 32/8): how far the prefill kernel is from the memory bound there (no split-KV kernel
# yet); each shape's K/V bytes read per second, against the H200's ~4.8 TB/s.
if [[ " $AB_PARTS " == *" decode "* ]]; then
  npx tsx scripts/cuda-bench.ts --specs causal,scale_invariant --D 128 --H 32 --Hkv 8 --shapes 1x1x32768,8x1x8192,32x1x2048 \
    --iters 30 --timeout-s "$AB_TIMEOUT" --variants default >"$logs/decode.log" 2>&1 || status=1
  while IFS= read -r line; do summary+=("decode: $line"); done < <(grep -E 'GB/s' "$logs/decode.log" | sed -E 's/ +/ /g')
fi

# WebGPU (Dawn on the machine's Vulkan driver): the WGSL kernel on decode calls (rows past Nq skip their work, GQA
# packing) beside a full prefill call, end to end per call (scripts/webgpu-bench.ts); lavapipe's figures are in
# tests/cuda/results/lavapipe-2026-12-04-*.txt.
if [[ " $AB_PARTS " == *" webgpu "* ]]; then
  npx tsx scripts/webgpu-bench.ts --specs causal,scale_invariant,alibi --shapes 1x32x8x1x4096,8x32x8x1x4096,1x32x8x4096x4096 \
    --iters 10 >"$logs/webgpu.log" 2>&1 || status=1
  # The backward kernels (dQ, dK, dV) on a prefill call, against the forward above (lavapipe: 4.6-5.3x).
  npx tsx scripts/webgpu-bench.ts --specs causal,scale_invariant --shapes 1x32x8x4096x4096 --iters 5 --backward \
    >>"$logs/webgpu.log" 2>&1 || status=1
  while IFS= read -r line; do summary+=("webgpu: $line"); done < <(grep -E 'median|WebGPU' "$logs/webgpu.log" | sed -E 's/ +/ /g')
fi

{
  echo "scripts/gpu-ab.sh on $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), attnc $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ)"
  printf '%s\n' "${summary[@]}"
  [ -f "$logs/ab-table.txt" ] && cat "$logs/ab-table.txt"
  echo "status $status"
} | tee "$logs/summary.txt"
exit $status
