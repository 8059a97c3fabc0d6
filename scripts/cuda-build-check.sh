#!/usr/bin/env bash
# A CUDA build checked without a GPU: in a Debian 13 (trixie) root of its own (contrib and non-free enabled), the
# addon compiles and links against Debian's libtorch-cuda-dev (libtorch 2.6 with CUDA 12.4, cuSOLVER, NCCL; CMake finds
# CUDA through nvcc, from nvidia-cuda-toolkit), and the
# built addon is loaded on this GPU-less machine: it must report torch.cuda.isAvailable() false, refuse CUDA tensors
# with DEVICE_UNAVAILABLE, and report NCCL as compiled in; or fail to load with a message saying why.
#
#   sudo bash scripts/cuda-build-check.sh        # root at /var/tmp/tensornormal-trixie-cuda (TN_TRIXIE_CUDA_ROOT)
#
# Debian's libtorch-cuda-2.6 depends on nvidia-cudnn, whose install script downloads cuDNN from NVIDIA's servers:
# on a machine that reaches only Debian's mirror that step fails, and the package is then marked configured without
# cuDNN (its script replaced by `exit 0`). libtorch_cuda.so needs libcudnn.so.9 at load, so the addon cannot load
# there; the check records that message, then loads it again with an empty stand-in libcudnn.so.9 (symbols are
# bound lazily and nothing here calls cuDNN) to check the rest. The log and a summary land in $ROOT/work/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--inside" ]; then
  out=${TN_OUT:-/work/out}
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libtorch-cuda-dev libgloo-cuda-dev libnccl-dev nvidia-cuda-toolkit libopenblas0-pthread build-essential cmake > "$out/apt.log" 2>&1 || {
    if grep -q "nvidia-cudnn" "$out/apt.log" && [ -f /var/lib/dpkg/info/nvidia-cudnn.postinst ]; then
      echo "cuda-build-check: nvidia-cudnn could not download cuDNN ($(grep -m1 -o 'Could not resolve host: [^ ]*' "$out/apt.log" || echo 'download failed')); configuring it without"
      printf '#!/bin/sh\nexit 0\n' > /var/lib/dpkg/info/nvidia-cudnn.postinst
      dpkg --configure -a >> "$out/apt.log" 2>&1
    else
      tail -20 "$out/apt.log"
      exit 1
    fi
  }
  echo "cuda-build-check: $(dpkg-query -W -f='${Package} ${Version}\n' libtorch-cuda-dev libcudart12 libnccl2 libnccl-dev libcusolver11 2>/dev/null | tr '\n' ';')"
  npm ci --ignore-scripts --no-audit --no-fund > "$out/npm.log" 2>&1 || { tail -20 "$out/npm.log"; exit 1; }
  started=$(date +%s)
  # the build folder lives outside the work tree (copied afresh each run, with its files' times): a rerun compiles
  # only what changed
  build=/work/build-cuda
  export TENSORNORMAL_ADDON=$build/Release/tensornormal.node
  if ! npx cmake-js compile -O "$build" > "$out/cuda-build.log" 2>&1; then
    grep -E "error|Error" "$out/cuda-build.log" | head -30
    echo "cuda-build-check: BUILD FAILED (log: work/out/cuda-build.log)"
    exit 1
  fi
  echo "cuda-build-check: built in $(($(date +%s) - started)) s; $(grep -o 'tensornormal: libtorch [^(]*' "$out/cuda-build.log" | head -1)"
  grep -E "tensornormal: distributed" "$out/cuda-build.log" || true
  grep -rqs "TN_HAVE_NCCL" "$build/build.ninja" "$build/CMakeFiles/tensornormal.dir/flags.make" && echo "cuda-build-check: NCCL process groups compiled (TN_HAVE_NCCL)" ||
    echo "cuda-build-check: NCCL process groups NOT compiled"
  ldd "$TENSORNORMAL_ADDON" | grep -E "torch_cuda|cudart|nccl|cudnn|cusolver" | sed 's/^/  /'
  npm run -s build:ts > "$out/tsc.log" 2>&1 || { tail -20 "$out/tsc.log"; exit 1; }
  probe='import("./dist/index.js").then((t) => {
    const r = { torch: t.versions().torch, cudaAvailable: t.cuda.isAvailable(), deviceCount: t.cuda.deviceCount() };
    try { t.zeros([2], { device: "cuda" }); r.cudaTensor = "made?!"; } catch (e) { r.cudaTensor = e.code + ": " + e.message.split("\n")[0]; }
    const x = t.randn([4, 4], { dtype: "float64" }); const a = x.matmul(x.t()).add(t.eye(4, { dtype: "float64" }));
    r.cpuCholesky = t.linalg.cholesky(a).shape.join("x");
    console.log(JSON.stringify(r));
  }).catch((e) => { console.log("LOAD FAILED: " + e.message); process.exit(3); })'
  set +e
  node -e "$probe"
  status=$?
  set -e
  if [ $status -ne 0 ] && ! [ -e "$(readlink -f /usr/lib/x86_64-linux-gnu/libcudnn.so.9 2>/dev/null || echo /nonexistent)" ]; then
    echo "cuda-build-check: libcudnn.so.9 is absent (see above); loading again with a stand-in for it"
    # The stand-in defines, under libcudnn.so.9's symbol version, every cuDNN function libtorch's CUDA libraries
    # import (each returns CUDNN_STATUS_NOT_INITIALIZED); nothing calls them on a machine without a GPU.
    mkdir -p /tmp/cudnn-stub
    syms=$(for l in /usr/lib/x86_64-linux-gnu/libtorch_cuda*.so; do nm -D --undefined-only "$l"; done |
      sed -n 's/^ *U \([A-Za-z0-9_]*\)@libcudnn\.so\.9$/\1/p' | sort -u)
    { for f in $syms; do echo "int $f(void) { return 1; }"; done; } > /tmp/cudnn-stub/stub.c
    { echo 'libcudnn.so.9 { global:'; for f in $syms; do echo "  $f;"; done; echo 'local: *; };'; } > /tmp/cudnn-stub/stub.map
    gcc -shared -fPIC -Wl,-soname,libcudnn.so.9 -Wl,--version-script=/tmp/cudnn-stub/stub.map \
      -o /tmp/cudnn-stub/libcudnn.so.9 /tmp/cudnn-stub/stub.c
    echo "cuda-build-check: stand-in defines $(echo "$syms" | wc -w) cuDNN functions"
    LD_LIBRARY_PATH=/tmp/cudnn-stub node -e "$probe"
    status=$?
  fi
  exit $status
fi

ROOT=${TN_TRIXIE_CUDA_ROOT:-/var/tmp/tensornormal-trixie-cuda}
TN_TRIXIE_ROOT=$ROOT bash scripts/test-debian13.sh --run 'bash scripts/cuda-build-check.sh --inside' 2>&1 | tee "${TMPDIR:-/tmp}/cuda-build-check.log"
exit "${PIPESTATUS[0]}"
