#!/usr/bin/env bash
# Compiles every bench spec (bench/specs/*.attn) here, with Node, into
# bench/build/ so that the GPU machine needs only Python (torch, cupy):
#   bench/build/cuda/<spec>.<dtype>.d<D>.cu + .manifest.json   (bf16, f16; D 64, 128)
#   bench/build/flex/<spec>_flex.py                             (FlexAttention peer)
#   bench/build/torch/<spec>_<dtype>_d<D>.py                    (our kernel as a PyTorch module; run.py --torch-module)
#   bench/build/torch-bwd/<variant>/<spec>_<dtype>_d<D>.py       (the same with backward variants under evaluation,
#        BWD_VARIANTS, for train.py --variants; a variant's parts joined by '+')
#   bench/build/cubin/<spec>.<dtype>.d<D>.sm_90a.cubin          (nvcc, if nvcc is here: a
#        compile check with the ptxas resource report, and a fallback for run.py --prebuilt)
#   bench/build/build.json   (git revision, dirty flag, per-spec `attnc compile` wall times)
#
#   bash bench/prepare.sh                 # from the working tree
#   ATTNC_REV=HEAD bash bench/prepare.sh  # from a committed revision (git archive), so
#                                         # uncommitted renderer edits stay out of the numbers
#   NO_NVCC=1 bash bench/prepare.sh       # skip the nvcc check
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-$ROOT/bench/build}"
ARCH="${ARCH:-sm_90a}"
DTYPES="${DTYPES:-bf16 f16}"
DIMS="${DIMS:-64 128}"
BWD_VARIANTS="${BWD_VARIANTS:-tables async-stats scan-window tables+async-stats+scan-window wgmma wgmma+tables+async-stats+scan-window fused-dq wgmma+fused-dq wgmma+tables+async-stats+scan-window+fused-dq}"

SRC="$ROOT"
REV="$(git rev-parse HEAD)"
DIRTY="$(git status --porcelain --untracked-files=no -- src bin | grep -c . || true)"
if [ -n "${ATTNC_REV:-}" ]; then
  REV="$(git rev-parse "$ATTNC_REV")"
  SRC="$(mktemp -d /tmp/attnc-bench-src.XXXXXX)"
  git archive "$REV" | tar -x -C "$SRC"
  ln -s "$ROOT/node_modules" "$SRC/node_modules"
  DIRTY=0
  echo "compiling with attnc at $REV (git archive in $SRC)"
fi

rm -rf "$BUILD"
mkdir -p "$BUILD/cuda" "$BUILD/flex" "$BUILD/torch" "$BUILD/cubin"
now_ms() { date +%s%3N; }

TIMES="$BUILD/compile_times.tsv"
: > "$TIMES"
for spec in "$ROOT"/bench/specs/*.attn; do
  name="$(basename "$spec" .attn)"
  t0=$(now_ms)
  node "$SRC/bin/attnc.js" compile "$spec" --target flex -o "$BUILD/flex" > /dev/null
  echo -e "$name\tflex\t-\t$(( $(now_ms) - t0 ))" >> "$TIMES"
  for dt in $DTYPES; do
    for D in $DIMS; do
      t0=$(now_ms)
      node "$SRC/bin/attnc.js" compile "$spec" --target cuda --dtype "$dt" --head-dim "$D" --arch "$ARCH" -o "$BUILD/cuda" > /dev/null
      echo -e "$name\t$dt\t$D\t$(( $(now_ms) - t0 ))" >> "$TIMES"
      node "$SRC/bin/attnc.js" compile "$spec" --target torch --dtype "$dt" --head-dim "$D" -o "$BUILD/torch" > /dev/null
      for v in $BWD_VARIANTS; do
        node "$SRC/bin/attnc.js" compile "$spec" --target torch --dtype "$dt" --head-dim "$D" --cuda-bwd "${v//+/,}" -o "$BUILD/torch-bwd/$v" > /dev/null
      done
    done
  done
  echo "compiled $name"
done

# The compiler's half of spec -> module, in process (no Node start-up).
if [ "$SRC" != "$ROOT" ]; then mkdir -p "$SRC/bench" && cp "$ROOT/bench/render-time.ts" "$SRC/bench/"; fi
(cd "$SRC" && "$ROOT/node_modules/.bin/tsx" bench/render-time.ts "$ROOT"/bench/specs/*.attn) > "$BUILD/render_times.json"

NVCC_OK="skipped"
if [ -z "${NO_NVCC:-}" ] && command -v nvcc > /dev/null; then
  # ptxas's resource report per kernel (registers, spills) goes to <cubin>.log.
  ls "$BUILD"/cuda/*.cu | xargs -P "$(nproc)" -I{} sh -c '
    f="{}"; b="$(basename "$f" .cu)"
    nvcc -cubin -arch='"$ARCH"' -std=c++17 -Xptxas -v -o "'"$BUILD"'/cubin/$b.'"$ARCH"'.cubin" "$f" > "'"$BUILD"'/cubin/$b.log" 2>&1 \
      || { echo "nvcc FAILED on $f:"; cat "'"$BUILD"'/cubin/$b.log"; exit 255; }'
  if grep -H "[1-9][0-9]* bytes spill stores" "$BUILD"/cubin/*.log; then
    echo "WARNING: register spills (above)"
  fi
  NVCC_OK="$(nvcc --version | tail -1)"
  echo "nvcc: every .cu compiled for $ARCH"
fi

python3 - "$BUILD" "$REV" "$DIRTY" "$ARCH" "$NVCC_OK" << 'EOF'
import json, sys, os, datetime
build, rev, dirty, arch, nvcc = sys.argv[1:6]
times = {}
for line in open(os.path.join(build, 'compile_times.tsv')):
    name, dt, d, ms = line.rstrip('\n').split('\t')
    times.setdefault(name, {})['flex' if dt == 'flex' else f'{dt}.d{d}'] = int(ms)
info = {
    'attnc_rev': rev,
    'dirty_files_in_src_bin': int(dirty),
    'arch': arch,
    'nvcc': nvcc,
    'prepared_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    'attnc_compile_ms': times,  # wall time of `node bin/attnc.js compile` (Node start included), here
    # in-process compileSpec (parse..render CUDA-C, bf16 D128): first call and median of 6 more
    'attnc_render_ms': json.load(open(os.path.join(build, 'render_times.json'))),
}
json.dump(info, open(os.path.join(build, 'build.json'), 'w'), indent=1)
print(f"wrote {build}/build.json (attnc {rev[:10]}{' + uncommitted src/bin edits' if int(dirty) else ''})")
EOF
du -sh "$BUILD"
# The build, packed for the GPU machine's carry (text; about 1/100 of its size): carry bench/build.tar.xz and run
# `tar -xJf bench/build.tar.xz -C bench` there first.
tar -cJf "$ROOT/bench/build.tar.xz" -C "$(dirname "$BUILD")" "$(basename "$BUILD")"
echo "wrote $ROOT/bench/build.tar.xz ($(du -h "$ROOT/bench/build.tar.xz" | cut -f1))"
[ "$SRC" != "$ROOT" ] && rm -rf "$SRC"
exit 0
