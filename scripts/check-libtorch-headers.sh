#!/usr/bin/env bash
# Compiles every native source (syntax only) against another libtorch's headers, e.g. Debian 13's 2.6 on a Debian
# 12 machine, to catch API differences without that libtorch installed:
#   bash scripts/check-libtorch-headers.sh            # fetches Debian trixie's libtorch-dev into /tmp/tn-libtorch-hdr
#   bash scripts/check-libtorch-headers.sh /path/to/include
set -euo pipefail
cd "$(dirname "$0")/.."
INC=${1:-}
if [ -z "$INC" ]; then
  D=/tmp/tn-libtorch-hdr
  mkdir -p $D/state/lists/partial $D/cache/archives/partial
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > $D/trixie.sources
  APT=(-o Dir::Etc::SourceList=$D/trixie.sources -o Dir::Etc::SourceParts=/dev/null -o Dir::State=$D/state -o Dir::Cache=$D/cache)
  apt-get "${APT[@]}" update -q >/dev/null
  (cd $D && apt-get "${APT[@]}" download libtorch-dev 2>/dev/null)
  dpkg -x $D/libtorch-dev_*.deb $D/root
  INC=$D/root/usr/include
fi
echo "libtorch $(grep -E "define TORCH_VERSION_(MAJOR|MINOR)" -h $INC/torch/csrc/api/include/torch/version.h | awk '{print $3}' | paste -sd.)"
# native/distributed.cc's Gloo path needs Gloo's headers (libgloo-dev), taken alone so that no other header of
# this machine's libtorch is picked up.
GLOO=()
if [ -f /usr/include/gloo/context.h ]; then
  mkdir -p /tmp/tn-gloo-only && ln -sfn /usr/include/gloo /tmp/tn-gloo-only/gloo
  GLOO=(-DTN_HAVE_GLOO -DUSE_C10D_GLOO -I/tmp/tn-gloo-only)
fi
fail=0
for f in native/*.cc native/optim/*.cc; do
  if g++ -std=c++17 -fsyntax-only -DNAPI_VERSION=8 -DNODE_ADDON_API_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED \
      -I"$INC" -I"$INC/torch/csrc/api/include" -Inode_modules/node-addon-api -Inode_modules/node-api-headers/include -Inative "${GLOO[@]}" "$f" 2>/tmp/tn-hdr.err; then
    echo "ok   $f"
  else
    echo "FAIL $f"; grep -E 'error' /tmp/tn-hdr.err | head -5; fail=1
  fi
done
exit $fail
