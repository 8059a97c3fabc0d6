#!/usr/bin/env bash
# Runs the README's two commands (bash scripts/setup.sh; npm test) in a Debian 13 (trixie) root, where apt gives
# libtorch 2.6 instead of Debian 12's 1.13: the check that the sources, the build and the suite hold on both.
#
#   sudo bash scripts/test-debian13.sh            # root at /var/tmp/tensornormal-trixie (made once, ~5 min)
#   TN_TRIXIE_ROOT=/path bash scripts/test-debian13.sh
#   bash scripts/test-debian13.sh --fresh         # rebuild the root from scratch
#   bash scripts/test-debian13.sh --prepare       # only make the root (debootstrap), nothing else
#   bash scripts/test-debian13.sh --run 'CMD'     # run CMD in the root, in a fresh copy of the work tree
#                                                 # (scripts/cuda-build-check.sh and scripts/prebuilds.sh use this)
#
# Needs root (debootstrap, chroot, mounts) and Debian's mirror. The root gets this machine's node and npm (copied:
# trixie's own nodejs would also do) and the host's CA file, so that npm reaches the registry through whatever
# TLS interception the host trusts. The work tree (tracked and untracked, not ignored, files) is copied in fresh on
# every run, so the run tests exactly what is here. Exit status: npm test's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${TN_TRIXIE_ROOT:-/var/tmp/tensornormal-trixie}
# The Debian mirror: TN_DEBIAN_MIRROR, else the one this machine's own apt sources use (deb822 .sources files or
# sources.list lines; the first URI whose path ends in /debian), else deb.debian.org.
apt_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  echo http://deb.debian.org/debian
}
MIRROR=${TN_DEBIAN_MIRROR:-$(apt_mirror)}
[ "$(id -u)" = 0 ] || { echo "test-debian13: run as root (debootstrap and chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }

mode=test
cmd='bash scripts/setup.sh && npm test'
case "${1:-}" in
  --fresh) rm -rf --one-file-system "$ROOT" ;;
  --prepare) mode=prepare ;;
  --run) mode=run; cmd=${2:?--run needs a command} ;;
esac
started=$(date +%s)
if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.tn-ready" ]; then
  echo "test-debian13: debootstrap trixie into $ROOT from $MIRROR"
  rm -rf --one-file-system "$ROOT"
  debootstrap --variant=minbase --components=main,contrib,non-free,non-free-firmware \
    --include=ca-certificates,git trixie "$ROOT" "$MIRROR" > /tmp/tn-debootstrap.log 2>&1 ||
    { tail -20 /tmp/tn-debootstrap.log; exit 1; }
  touch "$ROOT/.tn-ready"
fi
[ "$mode" = prepare ] && { echo "test-debian13: root ready at $ROOT after $(($(date +%s) - started)) s"; exit 0; }

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

echo "test-debian13: debian $(cat "$ROOT/etc/debian_version"); in the root: $cmd"
set +e
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt npm_config_cafile=/etc/ssl/certs/host-ca.crt CI=true \
  TN_OUT=/work/out bash -c "mkdir -p /work/out && cd /work/tensornormal && $cmd"
status=$?
set -e
echo "test-debian13: exit $status after $(($(date +%s) - started)) s"
exit $status
