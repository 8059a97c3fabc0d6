import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as torch from '../lib/index.js';
import { blasCheckWarning, chooseOpenblasCore, readCpuinfo, runtimeEnvironment } from '../lib/runtime-env.js';

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

  it('reaches OpenBLAS: the kernels it runs are the ones in effect, in this process and in fresh ones', () => {
    const v = torch.versions();
    if (v.blas === undefined) return; // libtorch on MKL (a pip torch): nothing to check
    expect(v.blas).toContain(v.blasCore!);
    // This process: whatever OPENBLAS_CORETYPE was in effect when the addon loaded, the user's (CI machines set
    // one) or, where none was set, the library's choice (lib/native.ts writes it into process.env before loading).
    const inEffect = process.env.OPENBLAS_CORETYPE;
    if (inEffect !== undefined) expect(v.blasCore!.toLowerCase()).toBe(inEffect.toLowerCase());
    const script =
      "import('./dist/index.js').then((t) => console.log(t.versions().blasCore + ' ' + process.env.OMP_WAIT_POLICY))";
    const {
      OPENBLAS_CORETYPE: _core,
      TENSORNORMAL_OPENBLAS_CORETYPE: _ours,
      TENSORNORMAL_RUNTIME_ENV: _off,
      OMP_WAIT_POLICY: _wait,
      ...clean
    } = process.env;
    // A fresh process with nothing set runs the kernels the library picks from /proc/cpuinfo.
    const expected = chooseOpenblasCore({}, readCpuinfo());
    const [core, wait] = execFileSync(process.execPath, ['-e', script], { env: clean, encoding: 'utf8' })
      .trim()
      .split(' ');
    if (expected !== undefined) expect(core).toBe(expected);
    expect(wait).toBe('PASSIVE');
    // A child with the user's own choice keeps it (Haswell kernels exist in every DYNAMIC_ARCH x86-64 OpenBLAS).
    const env = { ...clean, OPENBLAS_CORETYPE: 'Haswell', OMP_WAIT_POLICY: 'ACTIVE' };
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

  it('the BLAS self-check: right kernels pass it, wrong results are named with the variable to set', () => {
    // whatever kernels run here (CI machines set OPENBLAS_CORETYPE), they compute right
    const check = torch.blasSelfCheck();
    expect(Object.keys(check).sort()).toEqual(
      torch.versions().blas === undefined
        ? expect.arrayContaining(['dgemm', 'dpotrf', 'sgemm', 'spotrf'])
        : ['dgemm', 'dpotrf', 'dsymm', 'dsyrk', 'sgemm', 'spotrf', 'ssymm', 'ssyrk'],
    );
    for (const [k, e] of Object.entries(check)) expect(e, k).toBeLessThan(k.startsWith('s') ? 1e-5 : 1e-13);
    // and not trivially: a float32 kernel is not exact (the check compares against float64 loops)
    expect(check.sgemm).toBeGreaterThan(0);
    expect(blasCheckWarning(check, 'SkylakeX')).toBeUndefined();
    const bad = blasCheckWarning({ ...check, sgemm: 0.31, dpotrf: NaN }, 'SkylakeX')!;
    expect(bad).toContain("OpenBLAS's SkylakeX kernels");
    expect(bad).toContain('sgemm off by 3.1e-1 relative');
    expect(bad).toContain('dpotrf off by NaN relative');
    expect(bad).toContain('TENSORNORMAL_OPENBLAS_CORETYPE=auto');
    expect(blasCheckWarning({ ...check, dsyrk: 1e-9 }, 'Haswell')).toContain('dsyrk off by 1.0e-9');
    expect(blasCheckWarning({ ...check, ssymm: Infinity }, 'Haswell')).toContain('ssymm off by Infinity');
  });

  it('a fresh process that lets the library choose the kernels runs the check at load and stays quiet', () => {
    const { OPENBLAS_CORETYPE: _core, TENSORNORMAL_OPENBLAS_CORETYPE: _ours, ...clean } = process.env;
    const script = "import('./dist/index.js').then((t) => console.log(JSON.stringify(t.versions().blasCore)))";
    const r = spawnSync(process.execPath, ['-e', script], { env: clean, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('TENSORNORMAL_BLAS_KERNELS');
  });
});
