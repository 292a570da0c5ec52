#!/usr/bin/env bash
# The reliability run on a GPU machine, in one command (docs/RELIABILITY.md):
#   a. CUDA differential fuzzing, $CUDA_JOBS worker processes (npm run fuzz -- --jobs),
#   b. at the same time, WebGPU differential fuzzing through Dawn on the
#      machine's NVIDIA Vulkan driver ($WEBGPU_JOBS workers), skipped with a
#      line saying why when Dawn finds no adapter or only a software one,
#   c. then compute-sanitizer memcheck, racecheck and initcheck over every
#      example (tests/cuda/suite.ts, small shapes), each tool split into
#      $SAN_SHARDS concurrent processes over the examples,
#   d. a summary: per backend programs / cases / mismatches, per sanitizer tool
#      the error count.
# Usage: bash scripts/gpu-reliability.sh [LOG_DIR]   (or ATTNC_GPU_LOGS=LOG_DIR)
# LOG_DIR gets at most 8 plain files (no folders): summary.txt, fuzz-cuda.log,
# fuzz-webgpu.log, sanitizer-prewarm.log, sanitizer-{memcheck,racecheck,initcheck}.log
# and, only when a mismatch was saved, regressions.tar.
#
# Knobs (environment), defaults sized for ~6 minutes on 16 cores:
#   FUZZ_SECONDS=240   fuzzing budget (both backends run during the same window)
#   FUZZ_SEED=<time>   first seed (printed; the spec seeds of a failure are in the logs)
#   CUDA_JOBS=12  WEBGPU_JOBS=4  FUZZ_GRACE=30 (s a worker may overrun before it is killed)
#   WEBGPU_BACKEND=webgpu  (ts: part b runs every kernel through its --target ts module instead)
#   FUZZ_ARGS=''       more `npm run fuzz` flags for both, e.g. '--max-len 300 --d 1,1,1'
#   SAN_TOOLS='memcheck racecheck initcheck'  SAN_DTYPES=bf16,f32  SAN_MAX_N=300
#   SAN_SHARDS=4       processes per tool (all tools run at once: tools x shards processes)
#   SAN_TIMEOUT=120    s per sanitizer (and prewarm) process (rc 124 = timed out)
# Worst case wall time: FUZZ_SECONDS + FUZZ_GRACE + 2 * SAN_TIMEOUT + ~20 s (530 s with the defaults).
#   SKIP_CUDA_FUZZ=1 SKIP_WEBGPU=1 SKIP_SAN=1   leave a part out
#   WEBGPU_ALLOW_ANY=1 accept an adapter that is not NVIDIA's (a local trial on lavapipe)
# Exit status 1 when anything failed (a mismatch, a worker that died, a sanitizer error).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
logs=${1:-${ATTNC_GPU_LOGS:-/tmp/attnc-reliability}}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-/tmp/attnc-cache}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/attnc-xdg}
mkdir -p "$XDG_RUNTIME_DIR"
FUZZ_SECONDS=${FUZZ_SECONDS:-240}
FUZZ_SEED=${FUZZ_SEED:-$(( $(date +%s) % 1000000 ))}
CUDA_JOBS=${CUDA_JOBS:-12}
WEBGPU_JOBS=${WEBGPU_JOBS:-4}
WEBGPU_BACKEND=${WEBGPU_BACKEND:-webgpu}
FUZZ_GRACE=${FUZZ_GRACE:-30}
FUZZ_ARGS=${FUZZ_ARGS:-}
SAN_TOOLS=${SAN_TOOLS:-memcheck racecheck initcheck}
SAN_DTYPES=${SAN_DTYPES:-bf16,f32}
SAN_MAX_N=${SAN_MAX_N:-300}
SAN_SHARDS=${SAN_SHARDS:-4}
SAN_TIMEOUT=${SAN_TIMEOUT:-120}
regdir=$(mktemp -d -t attnc-regressions-XXXXXX)
status=0
t_start=$(date +%s)
summary=()
note() { summary+=("$1"); }

# Node: on PATH, else from a carried .carry folder.
if ! command -v node >/dev/null; then
  for d in .carry/bin .carry/node/bin .carry/*/bin; do
    if [ -x "$d/node" ]; then export PATH="$root/$d:$PATH"; break; fi
  done
fi
command -v node >/dev/null || { echo "gpu-reliability: no node on PATH or under .carry/" >&2; exit 2; }
tsnode() { node --import tsx "$@"; }

echo "== gpu-reliability: seed $FUZZ_SEED, fuzz ${FUZZ_SECONDS} s (cuda ${CUDA_JOBS} jobs, webgpu ${WEBGPU_JOBS} jobs), logs in $logs"
echo "node $(node --version), $(nproc) cores"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,compute_mode,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
else
  echo "gpu: nvidia-smi not found"
fi

# Sums the `fuzz summary:` fields of a log; prints the line for the summary.
fuzz_line() { # name log
  local line
  line=$(grep -a "^fuzz summary: kind=diff backend=$1 " "$2" | tail -1)
  if [ -n "$line" ]; then
    echo "$1: $(sed -E 's/^fuzz summary: kind=diff backend=[a-z]+ //' <<<"$line")"
  elif grep -a -q -E "^$1: not available" "$2"; then
    echo "$1: SKIPPED: $(grep -a -m1 -E "^$1: not available" "$2" | sed -E "s/^$1: //")"
  else
    echo "$1: FAILED: no summary line (see $(basename "$2"))"
  fi
}

# ---- a. CUDA differential fuzzing (background)
cuda_pid=
if [ "${SKIP_CUDA_FUZZ:-}" = 1 ]; then
  note "cuda: skipped (SKIP_CUDA_FUZZ=1)"
else
  echo "== a. CUDA differential fuzz: $CUDA_JOBS jobs, ${FUZZ_SECONDS} s"
  # shellcheck disable=SC2086
  tsnode scripts/fuzz.ts --kind diff --backend cuda --jobs "$CUDA_JOBS" --seconds "$FUZZ_SECONDS" --seed "$FUZZ_SEED" \
    --grace "$FUZZ_GRACE" --save-dir "$regdir" $FUZZ_ARGS >"$logs/fuzz-cuda.log" 2>&1 &
  cuda_pid=$!
fi

# ---- b. WebGPU differential fuzzing on the NVIDIA Vulkan driver (background)
webgpu_pid=
webgpu_ready() {
  # The NVIDIA Vulkan ICD needs the GL vendor-neutral libraries too (libglvnd...), not only
  # the loader: unpack every .gl/*.deb that is there.
  if compgen -G '.gl/*.deb' >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  if ! ldconfig -p 2>/dev/null | grep -q libvulkan; then
    echo "webgpu: SKIPPED: no Vulkan loader (libvulkan.so.1) and no .gl/*.deb to unpack"
    return 1
  fi
  local adapter
  adapter=$(node scripts/probe-webgpu.mjs 2>"$logs/webgpu-probe.err")
  if [ -z "$adapter" ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    echo "webgpu: no adapter with the default ICD search; trying VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    adapter=$(node scripts/probe-webgpu.mjs 2>>"$logs/webgpu-probe.err")
  fi
  if [ -z "$adapter" ]; then
    echo "webgpu: SKIPPED: Dawn found no WebGPU adapter ($(tail -c 300 "$logs/webgpu-probe.err" | tr '\n' ' '))"
    return 1
  fi
  echo "webgpu: Dawn picked: $adapter"
  if ! grep -qi nvidia <<<"$adapter" && [ "${WEBGPU_ALLOW_ANY:-}" != 1 ]; then
    echo "webgpu: SKIPPED: that is not the NVIDIA GPU (a software or other adapter); WEBGPU_ALLOW_ANY=1 runs it anyway"
    return 1
  fi
}
if [ "${SKIP_WEBGPU:-}" = 1 ]; then
  note "webgpu: skipped (SKIP_WEBGPU=1)"
  : >"$logs/fuzz-webgpu.log"
else
  echo "== b. WebGPU differential fuzz (Dawn, Vulkan): $WEBGPU_JOBS jobs, ${FUZZ_SECONDS} s"
  if webgpu_ready >"$logs/fuzz-webgpu.log" 2>&1; then
    cat "$logs/fuzz-webgpu.log"
    # shellcheck disable=SC2086
    tsnode scripts/fuzz.ts --kind diff --backend "$WEBGPU_BACKEND" --jobs "$WEBGPU_JOBS" --seconds "$FUZZ_SECONDS" --seed "$FUZZ_SEED" \
      --grace "$FUZZ_GRACE" --save-dir "$regdir" $FUZZ_ARGS >>"$logs/fuzz-webgpu.log" 2>&1 &
    webgpu_pid=$!
  else
    cat "$logs/fuzz-webgpu.log"
    note "$(grep -m1 SKIPPED "$logs/fuzz-webgpu.log")"
  fi
fi

if [ -n "$cuda_pid" ]; then
  wait "$cuda_pid" || status=1
  grep -a -E '^(\[w[0-9]+\] )?(MISMATCH|spec [0-9]+: the backend threw)|^worker [0-9]+:|not available' "$logs/fuzz-cuda.log" | head -20
  line=$(fuzz_line cuda "$logs/fuzz-cuda.log")
  grep -q ': FAILED' <<<"$line" && status=1
  note "$line"
fi
if [ -n "$webgpu_pid" ]; then
  wait "$webgpu_pid" || status=1
  grep -a -E '^(\[w[0-9]+\] )?(MISMATCH|spec [0-9]+: the backend threw)|^worker [0-9]+:|not available' "$logs/fuzz-webgpu.log" | head -20
  line=$(fuzz_line "$WEBGPU_BACKEND" "$logs/fuzz-webgpu.log")
  grep -q ': FAILED' <<<"$line" && status=1
  grep -qi nvidia <<<"$line" || [ "${WEBGPU_ALLOW_ANY:-}" = 1 ] || { line="$line [NOT the NVIDIA adapter]"; status=1; }
  note "$line"
fi
echo "fuzzing done at +$(( $(date +%s) - t_start )) s"

# ---- c. compute-sanitizer over every example
if [ "${SKIP_SAN:-}" = 1 ]; then
  note "sanitizer: skipped (SKIP_SAN=1)"
elif ! command -v compute-sanitizer >/dev/null; then
  note "sanitizer: compute-sanitizer not found: skipped"
  echo "== c. compute-sanitizer not found: skipped"
elif ! tsnode -e "const { openCuda } = await import('./src/runtime/cuda.ts'); (await openCuda()).dispose(); process.exit(0);" >/dev/null 2>&1; then
  note "sanitizer: no CUDA device opens: skipped"
  echo "== c. no CUDA device opens: sanitizer runs skipped"
else
  mapfile -t examples < <(ls examples/*.attn | xargs -n1 basename | sed 's/\.attn$//')
  shards=()
  for ((s = 0; s < SAN_SHARDS; s++)); do
    list=""
    for ((i = s; i < ${#examples[@]}; i += SAN_SHARDS)); do list+="${list:+,}${examples[i]}"; done
    [ -n "$list" ] && shards+=("$list")
  done
  suite_args=(--dtypes "$SAN_DTYPES" --max-n "$SAN_MAX_N")
  echo "== c. compute-sanitizer ($SAN_TOOLS) over ${#examples[@]} examples, dtypes $SAN_DTYPES, lengths <= $SAN_MAX_N, ${#shards[@]} processes per tool"
  # Compile every kernel once, without a sanitizer (and check it), so the sanitized runs load cached cubins.
  tmp=$(mktemp -d -t attnc-san-XXXXXX)
  for ((s = 0; s < ${#shards[@]}; s++)); do
    timeout -k 10 "$SAN_TIMEOUT" node --import tsx tests/cuda/suite.ts --only "${shards[s]}" "${suite_args[@]}" >"$tmp/prewarm.$s" 2>&1 &
  done
  wait
  cat "$tmp"/prewarm.* >"$logs/sanitizer-prewarm.log"
  pre_pass=$(grep -a -oE 'suite: [0-9]+ passed' "$logs/sanitizer-prewarm.log" | awk '{s += $2} END {print s + 0}')
  pre_fail=$(grep -a -oE 'passed, [0-9]+ failed' "$logs/sanitizer-prewarm.log" | awk '{s += $2} END {print s + 0}')
  pre_done=$(grep -a -c 'CUDA differential suite:' "$logs/sanitizer-prewarm.log")
  line="suite without sanitizer (same shapes): $pre_pass passed, $pre_fail failed, $pre_done/${#shards[@]} processes finished"
  note "$line"
  echo "$line (+$(( $(date +%s) - t_start )) s)"
  grep -a -m5 '^FAIL' "$logs/sanitizer-prewarm.log"
  [ "$pre_fail" = 0 ] && [ "$pre_done" = "${#shards[@]}" ] || status=1
  for tool in $SAN_TOOLS; do
    for ((s = 0; s < ${#shards[@]}; s++)); do
      timeout -k 10 "$SAN_TIMEOUT" compute-sanitizer --tool "$tool" --target-processes all --print-limit 50 --error-exitcode 3 \
        node --import tsx tests/cuda/suite.ts --only "${shards[s]}" "${suite_args[@]}" >"$tmp/$tool.$s" 2>&1 &
      echo $! >"$tmp/$tool.$s.pid"
    done
  done
  for tool in $SAN_TOOLS; do
    rcs=""
    for ((s = 0; s < ${#shards[@]}; s++)); do
      wait "$(cat "$tmp/$tool.$s.pid")"
      rc=$?
      rcs+="${rcs:+,}$rc"
      { echo "### $tool, examples ${shards[s]}, rc $rc"; cat "$tmp/$tool.$s"; } >>"$tmp/$tool.all"
    done
    mv "$tmp/$tool.all" "$logs/sanitizer-$tool.log"
    f="$logs/sanitizer-$tool.log"
    errors=$(grep -a -oE 'ERROR SUMMARY: [0-9]+' "$f" | awk '{s += $3} END {print s + 0}')
    summaries=$(grep -a -c 'ERROR SUMMARY' "$f")
    passed=$(grep -a -oE 'suite: [0-9]+ passed' "$f" | awk '{s += $2} END {print s + 0}')
    failed=$(grep -a -oE 'passed, [0-9]+ failed' "$f" | awk '{s += $2} END {print s + 0}')
    finished=$(grep -a -c 'CUDA differential suite:' "$f")
    hazards=$(grep -a -oE 'RACECHECK SUMMARY: [0-9]+ hazard' "$f" | awk '{s += $3} END {print s + 0}')
    line="sanitizer $tool: $errors errors ($summaries ERROR SUMMARY lines), suite $passed passed / $failed failed, $finished/${#shards[@]} processes finished, rc $rcs"
    [ "$tool" = racecheck ] && line+=", $hazards hazards"
    note "$line"
    echo "$line"
    grep -a -m5 -E '^========= (Invalid|Uninitialized|Error|Warning)' "$f"
    if [ "$errors" != 0 ] || [ "$failed" != 0 ] || [ "$finished" != "${#shards[@]}" ] || grep -qvE '^(0,?)+$' <<<"$rcs"; then status=1; fi
  done
  rm -rf "$tmp"
fi

if compgen -G "$regdir/*" >/dev/null; then
  tar -C "$regdir" -cf "$logs/regressions.tar" .
  note "failing cases saved: $(ls "$regdir" | wc -l) files in $logs/regressions.tar"
fi
rm -rf "$regdir"

echo
echo "== summary (seed $FUZZ_SEED, fuzz ${FUZZ_SECONDS} s, total $(( $(date +%s) - t_start )) s)" | tee "$logs/summary.txt"
printf '%s\n' "${summary[@]}" | tee -a "$logs/summary.txt"
echo "status: $([ $status = 0 ] && echo ok || echo FAILED)" | tee -a "$logs/summary.txt"
echo "logs: $logs"
exit $status
