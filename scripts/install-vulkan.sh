#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa lavapipe) so that Dawn, through the
# npm `webgpu` package, finds a WebGPU adapter on a machine without a GPU.
# Debian bookworm's own Mesa 22 is too old for Dawn, so libvulkan1 and
# mesa-vulkan-drivers come from bookworm-backports. The mirror is taken from
# this machine's own apt sources; no host name is written here.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
# The first non-security Debian URI of an active source: deb822 `URIs:` lines
# or one-line `deb URL suite` entries (comments skipped).
mirror=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'; } |
          grep -v security | head -1 || true)
[ -n "$mirror" ] || { echo "install-vulkan: no Debian mirror found in apt's sources" >&2; exit 2; }
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")-backports
list=/etc/apt/sources.list.d/attnc-backports.list
if ! grep -qs "$suite" "$list"; then
  echo "deb $mirror $suite main" | $SUDO tee "$list" >/dev/null
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t "$suite" libvulkan1 mesa-vulkan-drivers >/dev/null
echo "install-vulkan: $(dpkg-query -W -f='${Package} ${Version}\n' mesa-vulkan-drivers)"
