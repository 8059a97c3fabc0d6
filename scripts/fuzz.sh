#!/bin/sh
# The longer fuzz run of issue #25: test/fuzz.test.ts (which npm test runs with TN_FUZZ_N=1, a few hundred cases)
# with TN_FUZZ_N times the cases: hostile .pth, safetensors and TorchScript files (test/fuzz/hostile.ts) through every
# loader, TorchScript mutants that pass the checks through jit.load({ isolate: true }), hostile arguments through the
# train and distributed namespaces.
#
#   scripts/fuzz.sh                                  # N=20, a seed from the clock (printed: rerun a failure with it)
#   TN_FUZZ_N=100 TN_FUZZ_SEED=7 scripts/fuzz.sh     # more cases, a fixed seed
#   TN_FUZZ_KEEP=/tmp/corpus scripts/fuzz.sh         # keep the generated files
set -eu
cd "$(dirname "$0")/.."
TN_FUZZ_N="${TN_FUZZ_N:-20}"
TN_FUZZ_SEED="${TN_FUZZ_SEED:-$(date +%s)}"
export TN_FUZZ_N TN_FUZZ_SEED
echo "fuzz: TN_FUZZ_N=$TN_FUZZ_N TN_FUZZ_SEED=$TN_FUZZ_SEED${TN_FUZZ_KEEP:+ TN_FUZZ_KEEP=$TN_FUZZ_KEEP}"
exec npx vitest run test/fuzz.test.ts --testTimeout=3600000
