import { readFileSync } from 'node:fs';

/**
 * Environment for the native libraries under libtorch, chosen before the addon loads them (lib/native.ts applies
 * it; bench/run.mjs gives the Python side the same). Each of these libraries reads its variables once, when it is
 * loaded, so they cannot be changed afterwards. A variable the user has set is never overridden, and
 * TENSORNORMAL_RUNTIME_ENV=off leaves all of them alone.
 *
 * - OPENBLAS_CORETYPE. OpenBLAS (Debian's libtorch does its CPU matmuls with it) picks its kernels from the CPU
 *   model, and a release older than the CPU falls back to its oldest x86-64 kernels ("Prescott", SSE3): on the
 *   Sapphire Rapids VMs this project runs on, OpenBLAS 0.3.21 does that and sgemm runs at a quarter of the speed of
 *   its AVX-512 kernels. Chosen from the instruction sets the kernel reports: AVX-512 (F, CD, BW, DQ, VL) ->
 *   SkylakeX, AVX2 + FMA -> Haswell, otherwise OpenBLAS's own detection. TENSORNORMAL_OPENBLAS_CORETYPE=auto keeps
 *   OpenBLAS's detection; any other value of it is passed on. `versions().blasCore` reports what OpenBLAS chose.
 * - OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4. libtorch runs element-wise work on OpenMP threads and
 *   matmuls on OpenBLAS's own threads. By default both keep spinning after their work is done (libgomp for 300,000
 *   pause instructions, OpenBLAS for 2^28 cycles), so on a machine with as many cores as threads each pool takes
 *   the cores the other one is about to use: on two cores this made the TNT autoencoder step about 1.7x slower.
 *   With these set, idle threads sleep at once.
 */
export function runtimeEnvironment(env: NodeJS.ProcessEnv, cpuinfo: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (env.TENSORNORMAL_RUNTIME_ENV === 'off') return out;
  const core = chooseOpenblasCore(env, cpuinfo);
  if (core !== undefined) out.OPENBLAS_CORETYPE = core;
  if (!env.OMP_WAIT_POLICY && !env.GOMP_SPINCOUNT) out.OMP_WAIT_POLICY = 'PASSIVE';
  if (!env.OPENBLAS_THREAD_TIMEOUT && !env.GOTO_THREAD_TIMEOUT) out.OPENBLAS_THREAD_TIMEOUT = '4';
  // Debian 13's libtorch links MPI and with it UCX, whose memory hooks (libucm) patch mmap/munmap in every loaded
  // library from a constructor run inside our dlopen: one run of the suite there crashed in V8's allocator while the
  // addon registered (a segfault in napi_create_function, UCX's handler printing the trace). tensornormal never
  // uses UCX (Gloo speaks TCP); without its memory events the hooks are not installed.
  if (!env.UCX_MEM_EVENTS) out.UCX_MEM_EVENTS = 'no';
  return out;
}

/** The OPENBLAS_CORETYPE to set (see runtimeEnvironment), or undefined to leave OpenBLAS's detection alone. */
export function chooseOpenblasCore(env: NodeJS.ProcessEnv, cpuinfo: string | undefined): string | undefined {
  if (env.OPENBLAS_CORETYPE) return undefined;
  const forced = env.TENSORNORMAL_OPENBLAS_CORETYPE;
  if (forced) return forced === 'auto' ? undefined : forced;
  const line = cpuinfo?.split('\n').find((l) => l.startsWith('flags'));
  if (line === undefined) return undefined;
  const flags = new Set(
    line
      .slice(line.indexOf(':') + 1)
      .trim()
      .split(/\s+/),
  );
  if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return undefined;
}

/** /proc/cpuinfo on x86-64 Linux (the only place these choices apply), else undefined. */
export function readCpuinfo(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
}

/** Relative errors of the BLAS/LAPACK self-check, per kernel (`sgemm`, `dpotrf`, `ssyrk`, ...; see blasSelfCheck). */
export type BlasCheck = Record<string, number>;

/**
 * The warning to print when the kernels the library chose compute wrong results, or undefined when they are right.
 * The bounds are a hundred times the rounding of these sizes (errors seen: ~4e-7 in float32, ~5e-16 in float64, on
 * every kernel set of Debian 12's OpenBLAS); wrong kernels are off by orders of magnitude more, or not finite.
 */
export function blasCheckWarning(check: BlasCheck, core: string): string | undefined {
  const bad = Object.entries(check)
    .filter(([k, e]) => !(e <= (k.startsWith('s') ? 1e-4 : 1e-10)))
    .map(([k, e]) => `${k} off by ${Number.isFinite(e) ? e.toExponential(1) : e} relative`);
  if (bad.length === 0) return undefined;
  return (
    `tensornormal: OpenBLAS's ${core} kernels, which tensornormal chose from this CPU's instruction sets, computed ` +
    `wrong results in a self-check at load (${bad.join(', ')}). Set TENSORNORMAL_OPENBLAS_CORETYPE=auto (OpenBLAS's ` +
    `own choice) or OPENBLAS_CORETYPE to another kernel set (Haswell, Prescott) in the environment before the ` +
    `process starts; a newer OpenBLAS may know this CPU.`
  );
}

/**
 * The OPENBLAS_NUM_THREADS to set before the library loads for `threads` libtorch threads, or undefined to leave
 * OpenBLAS's count alone. libtorch's matrix products run on OpenBLAS's own pool, which set_num_threads does not
 * reach: left alone it has one thread per core, and process time counts their work (and their spinning until
 * OPENBLAS_THREAD_TIMEOUT); with the same count as libtorch, `--threads 1` times one core's work.
 *
 * Not set when the user set it, and not where OpenBLAS picks its kernels itself (neither the user nor
 * runtime-env.ts chose an OPENBLAS_CORETYPE) or runs the Prescott ones: OpenBLAS 0.3.21 misdetects newer CPUs as
 * Prescott, and single-threaded those kernels crash in cholesky_inverse (KFAC's inverses; reproduced on this
 * project's Sapphire Rapids VMs with OPENBLAS_CORETYPE=Prescott OPENBLAS_NUM_THREADS=1, while SkylakeX kernels run
 * single-threaded without trouble).
 */
export function openblasThreads(
  threads: number | undefined,
  env: NodeJS.ProcessEnv,
  cpuinfo: string | undefined,
): string | undefined {
  if (threads === undefined || env.OPENBLAS_NUM_THREADS !== undefined || env.GOTO_NUM_THREADS !== undefined)
    return undefined;
  const core = env.OPENBLAS_CORETYPE || runtimeEnvironment(env, cpuinfo).OPENBLAS_CORETYPE;
  if (!core || /^prescott$/i.test(core)) return undefined;
  return String(threads);
}

/**
 * The libtorch thread count a command line asks for: its `--threads N` (or `--threads=N`), else
 * TENSORNORMAL_NUM_THREADS; undefined when neither is a positive integer (the command's own parser reports a bad
 * value). The `tensornormal` command reads it before anything loads the addon, so that openblasThreads can still
 * reach OpenBLAS.
 */
export function threadsArgument(argv: readonly string[], env: NodeJS.ProcessEnv): number | undefined {
  let value: string | undefined = env.TENSORNORMAL_NUM_THREADS;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === '--threads') value = argv[i + 1];
    else if (argv[i]!.startsWith('--threads=')) value = argv[i]!.slice('--threads='.length);
  }
  const n = Number(value);
  return value !== undefined && /^\d+$/.test(value.trim()) && Number.isInteger(n) && n > 0 ? n : undefined;
}
