#!/usr/bin/env bash
# Prebuilt addons for `npm pack` / `npm publish`, so that installing needs no compiler where a matching libtorch is
# installed: prebuilds/<platform>-<arch>/tensornormal.libtorch-<major>.<minor>.node, one per libtorch:
#   - this machine's libtorch (Debian 12: 1.13), built in build-prebuild/;
#   - Debian 13's libtorch 2.6, built in the Debian 13 root of scripts/test-debian13.sh (root and a mirror needed;
#     skipped with a message otherwise, or when this machine is itself Debian 13).
# The loader (lib/native.ts) and the install step (scripts/install.mjs) try the prebuild of the libtorch installed
# here first, then the others, then build/. Stripped: about 1 MB each.
#
#   npm run prebuilds            # both
#   npm run prebuilds -- --host  # this machine's only
set -euo pipefail
cd "$(dirname "$0")/.."
dest="prebuilds/$(node -p 'process.platform + "-" + process.arch')"
mkdir -p "$dest"

started=$(date +%s)
npx cmake-js compile -O build-prebuild > build-prebuild.log 2>&1 || { tail -20 build-prebuild.log; exit 1; }
tag=$(node -e "const a = require(process.argv[1]); console.log(a.versions().torch.split('.').slice(0, 2).join('.'))" "$PWD/build-prebuild/Release/tensornormal.node")
strip --strip-unneeded -o "$dest/tensornormal.libtorch-$tag.node" build-prebuild/Release/tensornormal.node
echo "prebuilds: $dest/tensornormal.libtorch-$tag.node ($(($(date +%s) - started)) s)"

if [ "${1:-}" = "--host" ]; then exit 0; fi
if [ "$(cut -d. -f1 /etc/debian_version 2>/dev/null)" = 13 ]; then
  echo "prebuilds: this machine is Debian 13; make the 1.13 prebuild on Debian 12"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "prebuilds: the Debian 13 (libtorch 2.6) prebuild needs root for scripts/test-debian13.sh's chroot; skipped"
  exit 0
fi
ROOT=${TN_TRIXIE_ROOT:-/var/tmp/tensornormal-trixie}
bash scripts/test-debian13.sh --run '
  export DEBIAN_FRONTEND=noninteractive
  dpkg -s libtorch-dev libgloo-dev build-essential cmake >/dev/null 2>&1 ||
    { apt-get update -q && apt-get install -y -q --no-install-recommends libtorch-dev libgloo-dev libopenblas0-pthread build-essential cmake; } > /work/out/apt.log 2>&1
  npm ci --ignore-scripts --no-audit --no-fund > /work/out/npm.log 2>&1 &&
  npx cmake-js compile -O build-prebuild > /work/out/prebuild.log 2>&1 &&
  strip --strip-unneeded -o /work/out/tensornormal.node build-prebuild/Release/tensornormal.node &&
  node -e "const a = require(process.argv[1]); console.log(a.versions().torch)" /work/out/tensornormal.node > /work/out/torch-version' ||
  { tail -20 "$ROOT/work/out/prebuild.log" 2>/dev/null; exit 1; }
tag=$(cut -d. -f1,2 "$ROOT/work/out/torch-version")
cp "$ROOT/work/out/tensornormal.node" "$dest/tensornormal.libtorch-$tag.node"
echo "prebuilds: $dest/tensornormal.libtorch-$tag.node"
ls -la "$dest"
