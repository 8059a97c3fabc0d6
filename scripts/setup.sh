#!/usr/bin/env bash
# One-command set-up on a fresh Debian 12 or 13 machine: system packages, npm dependencies, the native build,
# the TypeScript build, then a short demo. Run as root (or with sudo available) for the apt step; otherwise it
# prints exactly what to install and continues with what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# libgloo-dev: the Gloo headers that c10d's ProcessGroupGloo.hpp includes (distributed training).
PKGS=(libtorch-dev libgloo-dev libopenblas0-pthread python3-torch build-essential cmake dataset-fashion-mnist fortunes)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: please install these system packages first: ${missing[*]}" >&2
    echo "       (Debian/Ubuntu: apt-get install ${missing[*]}; elsewhere: a libtorch 1.13+ with LIBTORCH=/path/to/libtorch)" >&2
  fi
fi

echo "setup: debian $(cat /etc/debian_version 2>/dev/null || echo '?'), node $(node --version)"
# npm ci runs the package's install script (prebuild or cmake-js build) and prepare (tsc).
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
# npm ci skips rebuilding when nothing changed in node_modules; make sure both builds exist.
[ -f build/Release/tensornormal.node ] || ls prebuilds/*/*.node >/dev/null 2>&1 || npm run build:native
npm run build:ts
npm run demo
