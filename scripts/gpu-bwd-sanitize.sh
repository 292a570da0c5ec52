#!/usr/bin/env bash
# compute-sanitizer (racecheck and memcheck) over the CUDA backward kernels of every example, on a GPU machine:
# each example's backward checked once without a sanitizer (it compiles the kernels into the cache and must pass
# against float64), then under each tool with the same shapes (D 64 and 128, a ragged length, GQA with Nq < Nk).
# BWD_SETS: ';'-separated backward variant sets as --cuda-bwd takes them ('default' for the arch's defaults).
# Usage: BWD_SETS='default;wgmma,tables,async-stats,scan-window,two-wg' bash scripts/gpu-bwd-sanitize.sh [LOG_DIR]
# BACKEND=cuda-emu with a stand-in compute-sanitizer first on PATH checks the script itself without a GPU.
# Logs: LOG_DIR/<set>.<tool>.<example>.log and LOG_DIR/summary.txt. Exit status 1 when a check failed or a tool found an error.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-/tmp/attnc-bwd-san}
mkdir -p "$logs"
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-/tmp/attnc-cache}
IFS=';' read -r -a sets <<< "${BWD_SETS:-default}"
backend=${BACKEND:-cuda}  # cuda-emu with a stand-in compute-sanitizer on PATH: a dry run of this script
shapes=(--shape 1,2,1,200,64 --shape 1,2,1,130,128 --shape 1,4,2,130,300,128)
status=0
for set in "${sets[@]}"; do
  tag=${set//,/+}
  for f in examples/*.attn; do
    if ! ATTNC_CUDA_BWD=$set node bin/attnc.js check "$f" --backend "$backend" --backward --dtype bf16 "${shapes[@]}" >>"$logs/$tag.check.log" 2>&1; then
      echo "FAIL check $set $f" | tee -a "$logs/summary.txt"; status=1
    fi
  done
  # Every example under both tools at once (the kernels load from the cache the checks above filled).
  pids=()
  for f in examples/*.attn; do
    for tool in racecheck memcheck; do
      name=$(basename "$f" .attn)
      ( ATTNC_CUDA_BWD=$set timeout 300 compute-sanitizer --tool "$tool" --target-processes all --print-limit 20 --error-exitcode 3 \
          node bin/attnc.js check "$f" --backend "$backend" --backward --dtype bf16 "${shapes[@]}" >"$logs/$tag.$tool.$name.log" 2>&1
        rc=$?
        [ "$rc" = 0 ] || echo "FAIL $tool $set $name (exit $rc)" >>"$logs/summary.txt" ) &
      pids+=($!)
    done
  done
  wait "${pids[@]}"
  grep -q "^FAIL .* $set " "$logs/summary.txt" 2>/dev/null && status=1
  errors=$(cat "$logs/$tag".{racecheck,memcheck}.*.log | grep -a -oE 'ERROR SUMMARY: [0-9]+' | awk '{s += $3} END {print s + 0}')
  runs=$(cat "$logs/$tag".{racecheck,memcheck}.*.log | grep -a -c 'ERROR SUMMARY')
  ok=$(cat "$logs/$tag".{racecheck,memcheck}.*.log | grep -a -c '^  ok')
  echo "$set: $(grep -c '^  ok' "$logs/$tag.check.log") cases ok without a sanitizer; under the sanitizers $ok cases ok, $errors errors in $runs summaries" | tee -a "$logs/summary.txt"
  [ "$errors" = 0 ] || status=1
done
echo "status $status" | tee -a "$logs/summary.txt"
exit $status
