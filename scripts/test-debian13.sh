#!/usr/bin/env bash
# Runs the README's two commands (bash scripts/setup.sh; npm test) in a Debian 13 (trixie) root, where apt gives
# libtorch 2.6 instead of Debian 12's 1.13: the check that the sources, the build and the suite hold on both.
#
#   sudo bash scripts/test-debian13.sh            # root at /var/tmp/tensornormal-trixie (made once, ~5 min)
#   TN_TRIXIE_ROOT=/path bash scripts/test-debian13.sh
#   bash scripts/test-debian13.sh --fresh         # rebuild the root from scratch
#
# Needs root (debootstrap, chroot, mounts) and Debian's mirror. The root gets this machine's node and npm (copied:
# trixie's own nodejs would also do) and the host's CA file, so that npm reaches the registry through whatever
# TLS interception the host trusts. The work tree (tracked and untracked, not ignored, files) is copied in fresh on
# every run, so the run tests exactly what is here. Exit status: npm test's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${TN_TRIXIE_ROOT:-/var/tmp/tensornormal-trixie}
MIRROR=${TN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "test-debian13: run as root (debootstrap and chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

if [ "${1:-}" = "--fresh" ]; then rm -rf --one-file-system "$ROOT"; fi
started=$(date +%s)
if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.tn-ready" ]; then
  echo "test-debian13: debootstrap trixie into $ROOT"
  rm -rf --one-file-system "$ROOT"
  debootstrap --variant=minbase --include=ca-certificates,git trixie "$ROOT" "$MIRROR" > /tmp/tn-debootstrap.log 2>&1 ||
    { tail -20 /tmp/tn-debootstrap.log; exit 1; }
  touch "$ROOT/.tn-ready"
fi

mounts=()
cleanup() { for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
for m in proc sys dev dev/pts; do
  mountpoint -q "$ROOT/$m" || { mount --bind "/$m" "$ROOT/$m"; mounts+=("$ROOT/$m"); }
done

# node and npm from this machine; the host's resolver and CA file
install -m 0755 "$(readlink -f "$(command -v node)")" "$ROOT/usr/local/bin/node"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$ROOT/usr/local/lib/node_modules"
rm -rf "$ROOT/usr/local/lib/node_modules/npm" && cp -a "$npm_dir" "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca.crt"

# a fresh copy of the work tree (node_modules, build outputs and other ignored files stay out)
rm -rf "$ROOT/work/tensornormal" && mkdir -p "$ROOT/work/tensornormal"
git ls-files -z --cached --others --exclude-standard | grep -zv '^node_modules$' | tar --null -T - -cf - | tar -xf - -C "$ROOT/work/tensornormal"

echo "test-debian13: debian $(cat "$ROOT/etc/debian_version"); set-up and npm test in the root"
set +e
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt npm_config_cafile=/etc/ssl/certs/host-ca.crt CI=true \
  bash -c 'cd /work/tensornormal && bash scripts/setup.sh && npm test'
status=$?
set -e
echo "test-debian13: exit $status after $(($(date +%s) - started)) s"
exit $status
