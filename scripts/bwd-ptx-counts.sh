#!/usr/bin/env bash
# Static PTX instruction counts of the CUDA backward kernels (the default and each variant under evaluation), no GPU
# needed: what a variant removes from or adds to the code of each launch, before ptxas (nvcc -ptx, compute_90a). A count
# is of instructions in the kernel's text: the element step appears twice (partial and full tiles), unrolled over a
# thread's elements of one tile, so these are proportional to the per-tile work, not equal to it. Last column: the
# registers ptxas gives each kernel for sm_90a (nvcc -cubin -Xptxas -v). fused-dq has three launches (prep, dkdv, dq_store).
# Usage: bash scripts/bwd-ptx-counts.sh [SPECS] [D] [VARIANTS]   e.g. bash scripts/bwd-ptx-counts.sh "causal scale_invariant document" 128
set -euo pipefail
cd "$(dirname "$0")/.."
specs=${1:-causal scale_invariant document}
D=${2:-128}
variants=${3:-default tables async-stats scan-window tables,async-stats,scan-window wgmma wgmma,tables,async-stats,scan-window fused-dq wgmma,fused-dq}
work=$(mktemp -d /tmp/attnc-ptx.XXXXXX)
trap 'rm -rf "$work"' EXIT
count() { grep -cE "$1" "$2" || true; }
for s in $specs; do
  for v in $variants; do
    d="$work/$s-${v//,/+}"
    mkdir -p "$d"
    flag=()
    [ "$v" != default ] && flag=(--cuda-bwd "$v")
    node bin/attnc.js compile "examples/$s.attn" --target cuda --backward --dtype bf16 --head-dim "$D" "${flag[@]}" -o "$d" > /dev/null
    nvcc -ptx -arch=compute_90a -o "$d/k.ptx" "$d/$s.bf16.d$D.bwd.cu"
    nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -o "$d/k.cubin" "$d/$s.bf16.d$D.bwd.cu" > "$d/ptxas.log" 2>&1
    for k in bwd_dq bwd_prep bwd_dkdv bwd_dq_store; do  # two launches, or fused-dq's three
      grep -q "\.entry attnc_${s}_bf16_d${D}_$k(" "$d/k.ptx" || continue
      f="$d/$k.ptx"
      # from the kernel's .entry to the next kernel's '// .globl' (inline asm blocks close braces at column 0 too)
      awk -v e="attnc_${s}_bf16_d${D}_$k" '$0 ~ ".entry "e"\\(" {on=1; print; next} on && /^[ \t]*\/\/ \.globl/ {exit} on {print}' "$d/k.ptx" > "$f"
      regs=$(awk -v e="attnc_${s}_bf16_d${D}_$k" '$0 ~ "entry function ." e "." {on=1} on && /Used [0-9]+ registers/ {match($0, /Used [0-9]+/); print substr($0, RSTART + 5, RLENGTH - 5); exit}' "$d/ptxas.log")
      printf '%-16s %-32s %-9s instructions %5d  sqrt %3d  ex2 %3d  mma %4d  wgmma %3d  ldmatrix %4d  ld.shared %4d  ld.global %4d  cp.async %3d  bar %2d  red %2d  registers %3s\n' \
        "$s" "$v" "$k" "$(count '^\s+[a-z@]' "$f")" "$(count 'sqrt\.r' "$f")" "$(count 'ex2\.approx' "$f")" "$(count 'mma\.sync' "$f")" "$(count 'wgmma\.mma_async' "$f")" \
        "$(count ldmatrix "$f")" "$(count 'ld\.shared' "$f")" "$(count 'ld\.global' "$f")" "$(count 'cp\.async\.c' "$f")" "$(count 'bar\.sync' "$f")" "$(count '^\s+red\.global' "$f")" "$regs"
    done
  done
done
