#!/usr/bin/env bash
# Every example's backward (and with FORWARD=1 its forward) on the CUDA emulator against float64, for backward variant
# sets under the emulator's adversarial modes: warpgroups drifting apart (ATTNC_EMU_SCHEDULE=skew, skew-reverse) and
# cp.async landing at issue (ATTNC_EMU_COPIES=early), each set in every mode of MODES. No GPU needed.
# Usage: SETS='default;tables,wgmma,fused-dq' MODES='skew/early skew-reverse/late' bash scripts/emu-sweep.sh [LOG]
# Shapes: D 64 and 128, a ragged length, GQA with Nq < Nk, and two batches. Prints a line per (set, mode, example,
# head dim) that failed, then a summary; exit status 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:-/tmp/attnc-emu-sweep.log}
: > "$log"
IFS=';' read -r -a sets <<< "${SETS:-default}"
read -r -a modes <<< "${MODES:-skew/early skew-reverse/late round-robin/early}"
runs=0 bad=0
for set in "${sets[@]}"; do
  for mode in "${modes[@]}"; do
    schedule=${mode%/*} copies=${mode#*/}
    for f in examples/*.attn; do
      for D in 64 128; do
        args=(--backend cuda-emu --dtype bf16 --shape "1,2,1,200,$D" --shape "1,4,2,130,300,$D" --shape "2,2,2,257,257,$D")
        for pass in ${FORWARD:+forward} backward; do
          extra=(); [ "$pass" = backward ] && extra=(--backward)
          out=$(ATTNC_EMU_SCHEDULE=$schedule ATTNC_EMU_COPIES=$copies ATTNC_CUDA_BWD=$set node bin/attnc.js check "$f" "${args[@]}" "${extra[@]}" 2>&1)
          rc=$?
          runs=$((runs + 1))
          echo "== $set [$mode] $(basename "$f" .attn) D=$D $pass (exit $rc)" >> "$log"
          echo "$out" >> "$log"
          if [ "$rc" != 0 ]; then
            bad=$((bad + 1))
            echo "FAIL $set [$mode] $(basename "$f" .attn) D=$D $pass: $(echo "$out" | tail -1)"
          fi
        done
      done
    done
  done
done
echo "$((runs - bad)) of $runs runs passed (log: $log)"
[ "$bad" = 0 ]
