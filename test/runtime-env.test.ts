import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as torch from '../lib/index.js';
import { chooseOpenblasCore, readCpuinfo, runtimeEnvironment } from '../lib/runtime-env.js';

// Flags lines as the Linux kernel prints them (abridged): a Sapphire Rapids VM, a Haswell, a pre-AVX2 CPU.
const spr =
  'processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 fma avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 amx_tile\n';
const haswell = 'flags\t\t: fpu sse sse2 ssse3 sse4_2 fma avx avx2 bmi2\n';
const sandy = 'flags\t\t: fpu sse sse2 ssse3 sse4_2 avx\n';
const avx512f = 'flags\t\t: fpu sse sse2 fma avx avx2 avx512f\n'; // Knights-Landing-like: no BW/VL

describe('runtime environment of the native libraries', () => {
  it('picks OpenBLAS kernels from the instruction sets the kernel reports', () => {
    expect(chooseOpenblasCore({}, spr)).toBe('SkylakeX');
    expect(chooseOpenblasCore({}, haswell)).toBe('Haswell');
    expect(chooseOpenblasCore({}, avx512f)).toBe('Haswell');
    expect(chooseOpenblasCore({}, sandy)).toBeUndefined();
    expect(chooseOpenblasCore({}, undefined)).toBeUndefined();
    expect(chooseOpenblasCore({}, 'processor\t: 0\n')).toBeUndefined();
  });

  it('never overrides what the user set, and can be switched off', () => {
    expect(chooseOpenblasCore({ OPENBLAS_CORETYPE: 'Zen' }, spr)).toBeUndefined();
    expect(chooseOpenblasCore({ TENSORNORMAL_OPENBLAS_CORETYPE: 'auto' }, spr)).toBeUndefined();
    expect(chooseOpenblasCore({ TENSORNORMAL_OPENBLAS_CORETYPE: 'Haswell' }, spr)).toBe('Haswell');
    expect(runtimeEnvironment({}, spr)).toEqual({
      OPENBLAS_CORETYPE: 'SkylakeX',
      OMP_WAIT_POLICY: 'PASSIVE',
      OPENBLAS_THREAD_TIMEOUT: '4',
      UCX_MEM_EVENTS: 'no',
    });
    expect(
      runtimeEnvironment({ OMP_WAIT_POLICY: 'ACTIVE', OPENBLAS_THREAD_TIMEOUT: '10', UCX_MEM_EVENTS: 'yes' }, sandy),
    ).toEqual({});
    expect(runtimeEnvironment({ GOMP_SPINCOUNT: '1000' }, haswell)).toEqual({
      OPENBLAS_CORETYPE: 'Haswell',
      OPENBLAS_THREAD_TIMEOUT: '4',
      UCX_MEM_EVENTS: 'no',
    });
    expect(runtimeEnvironment({ TENSORNORMAL_RUNTIME_ENV: 'off' }, spr)).toEqual({});
  });

  it('reaches OpenBLAS: the kernels it runs are the ones chosen, in this process and in a fresh one', () => {
    const v = torch.versions();
    if (v.blas === undefined) return; // libtorch on MKL (a pip torch): nothing to check
    const expected = chooseOpenblasCore({}, readCpuinfo());
    if (expected !== undefined) expect(v.blasCore).toBe(expected);
    expect(v.blas).toContain(v.blasCore!);
    // A child with the user's own choice keeps it (Haswell kernels exist in every DYNAMIC_ARCH x86-64 OpenBLAS).
    const script =
      "import('./dist/index.js').then((t) => console.log(t.versions().blasCore + ' ' + process.env.OMP_WAIT_POLICY))";
    const env = { ...process.env, OPENBLAS_CORETYPE: 'Haswell', OMP_WAIT_POLICY: 'ACTIVE' };
    const out = execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).trim();
    expect(out).toBe('Haswell ACTIVE');
  });
  it('libtorch uses every core by default (getNumThreads in a fresh process), TENSORNORMAL_NUM_THREADS overrides it', () => {
    const script =
      "import('./dist/index.js').then((t) => console.log(t.getNumThreads(), require('node:os').availableParallelism()))";
    const { TENSORNORMAL_NUM_THREADS: _unset, ...env } = process.env;
    const [threads, cores] = execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' })
      .trim()
      .split(' ')
      .map(Number);
    expect(threads).toBe(cores);
    const one = execFileSync(process.execPath, ['-e', script], {
      env: { ...env, TENSORNORMAL_NUM_THREADS: '1' },
      encoding: 'utf8',
    }).trim();
    expect(one.split(' ')[0]).toBe('1');
  });
});
