#!/usr/bin/env bash
# Copies what bench/run.py wrote under the device call's $OUT (the folder the
# device tool reports as files_at) into bench/results/ here.
#   bash bench/collect.sh /work/.device/<...>/files
set -euo pipefail
src="${1:?usage: bash bench/collect.sh FILES_AT_DIR}"
dst="$(cd "$(dirname "$0")" && pwd)/results"
mkdir -p "$dst"
n=0
while IFS= read -r -d '' f; do
  name="$(basename "$f")"
  # *.log is git-ignored here: a run log is kept as <results>.run.log.txt
  case "$name" in *.log) name="$(basename "$(ls "$src"/*.json | head -1)" .json).run.log.txt" ;; esac
  cp "$f" "$dst/$name"
  echo "bench/results/$name"
  n=$((n + 1))
done < <(find "$src" -maxdepth 2 -type f \( -name '*.json' -o -name '*.log' \) -print0)
[ "$n" -gt 0 ] || { echo "no .json/.log under $src" >&2; exit 1; }
