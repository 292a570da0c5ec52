#!/usr/bin/env bash
# One-step set-up from a fresh clone: installs the npm dependencies and, only
# where no WebGPU adapter is found (a headless machine without a GPU), the
# software Vulkan driver that Dawn runs on (scripts/install-vulkan.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/attnc-xdg}
mkdir -p "$XDG_RUNTIME_DIR"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if adapter=$(node scripts/probe-webgpu.mjs 2>/dev/null); then
  echo "setup: WebGPU adapter: $adapter"
else
  echo "setup: no WebGPU adapter found; installing Mesa's software Vulkan driver (lavapipe)"
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: need root (or sudo) to install libvulkan1 and mesa-vulkan-drivers; see scripts/install-vulkan.sh" >&2
    exit 2
  fi
  bash scripts/install-vulkan.sh
  adapter=$(node scripts/probe-webgpu.mjs 2>/dev/null) || { echo "setup: still no WebGPU adapter after installing lavapipe" >&2; exit 2; }
  echo "setup: WebGPU adapter: $adapter"
fi
