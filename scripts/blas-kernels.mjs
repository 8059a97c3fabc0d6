#!/usr/bin/env node
// The BLAS-sensitive tests again, in child processes pinned to each OpenBLAS kernel set a machine of this kind may
// run: OPENBLAS_CORETYPE=Haswell (AVX2; CI machines with AMD EPYC CPUs set it in their environment), SkylakeX
// (AVX-512, where the CPU has it) and Prescott (SSE3, what an OpenBLAS older than the CPU falls back to). The same
// numbers must hold under every one of them: tests compare across kernels with tolerances, never bit for bit.
// `npm test` runs this after the suite; `node scripts/blas-kernels.mjs [--kernels Haswell,Prescott] [files...]`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Tests whose numbers go through gemm, syrk, symm, potrf or eigh, compared with fixtures written elsewhere (PyTorch
// outputs, older layouts), float64 references or each other.
const SENSITIVE = [
  'test/runtime-env.test.ts',
  'test/kronecker-state.test.ts',
  'test/tnt.test.ts',
  'test/tnt-math.test.ts',
  'test/tnt-fisher.test.ts',
  'test/tnt-cheaper.test.ts',
  'test/shampoo.test.ts',
  'test/kfac.test.ts',
  'test/linalg.test.ts',
  'test/fidelity.test.ts',
  'test/fit-curvature.test.ts',
  'test/nn-layers.test.ts',
  'test/optim.test.ts',
];

function avx512() {
  try {
    const flags =
      readFileSync('/proc/cpuinfo', 'utf8')
        .match(/^flags\s*:(.*)$/m)?.[1]
        .split(/\s+/) ?? [];
    return ['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.includes(f));
  } catch {
    return false;
  }
}

const args = process.argv.slice(2);
let kernels = ['Haswell', ...(avx512() ? ['SkylakeX'] : []), 'Prescott'];
const k = args.indexOf('--kernels');
if (k >= 0) {
  kernels = args[k + 1].split(',');
  args.splice(k, 2);
}
const files = args.length > 0 ? args : SENSITIVE;

// Only an OpenBLAS honours OPENBLAS_CORETYPE (a pip torch runs MKL): then there is nothing to vary.
const probe = spawnSync(
  process.execPath,
  ['-e', "import('./dist/index.js').then((t) => console.log(t.versions().blas ?? ''))"],
  { cwd: root, encoding: 'utf8' },
);
if (probe.status !== 0) {
  console.error(`blas-kernels: the library does not load (${probe.stderr.trim().split('\n').pop()}); build it first`);
  process.exit(1);
}
if (!probe.stdout.includes('OpenBLAS')) {
  console.log('blas-kernels: libtorch does not run OpenBLAS here; nothing to vary');
  process.exit(0);
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const failed = [];
for (const kernel of kernels) {
  const started = Date.now();
  const { OPENBLAS_CORETYPE: _drop, TENSORNORMAL_OPENBLAS_CORETYPE: _ours, ...env } = process.env;
  const r = spawnSync(process.execPath, [vitest, 'run', '--reporter=dot', ...files], {
    cwd: root,
    env: { ...env, OPENBLAS_CORETYPE: kernel },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const summary =
    (r.stdout + r.stderr)
      .match(/Tests\s+.*$/m)?.[0]
      .replace(new RegExp(String.fromCharCode(27) + '\\[[0-9;]*m', 'g'), '') ?? 'no summary';
  console.log(
    `blas-kernels: OPENBLAS_CORETYPE=${kernel}: ${summary} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
  if (r.status !== 0) {
    failed.push(kernel);
    process.stdout.write(r.stdout.slice(-20000));
    process.stderr.write(r.stderr.slice(-8000));
  }
}
if (failed.length > 0) {
  console.error(`blas-kernels: failed under ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`blas-kernels: ${files.length} files pass under ${kernels.join(', ')}`);
