/**
 * The only file that loads the addon. `NativeBinding` describes everything native/ exports; handles are plain
 * numbers (slot + generation, see native/common.h), never wrapped objects, which keeps an op call cheap.
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blasCheckWarning, readCpuinfo, runtimeEnvironment, type BlasCheck } from './runtime-env.js';
import { TorchError, FREED_MESSAGES } from './errors.js';
import {
  checkOpcodes,
  type BinaryCode,
  type FactoryCode,
  type InterpolateCode,
  type LossReductionCode,
  type OpTables,
  type ReduceCode,
  type UnaryCode,
  type UnaryInplaceCode,
  type InverseMethodCode,
  type RootMethodCode,
} from './opcodes.js';

/** A native tensor handle. */
export type Handle = number;
type H = Handle;
type Opt<T> = T | undefined | null;

/** sgdStep's per-parameter state: the optimizer's momentum buffers (-1: none) and which of them the step sets
 *  to its direction (PyTorch's first-step clone) rather than updates. */
export interface SgdStepState {
  momentumBuffer: H[];
  initialize: boolean[];
}
export interface SgdStepOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}
/** adamStep's per-parameter state, one entry per parameter that has a gradient (maxExpAvgSq only with amsgrad). */
export interface AdamStepState {
  expAvg: H[];
  expAvgSq: H[];
  maxExpAvgSq: H[] | null;
  steps: number[];
}
export interface AdamStepOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  /** AdamW's decoupled weight decay. */
  decoupled: boolean;
  maximize: boolean;
}

export interface NativeBinding {
  // lifecycle and settings
  /** `disposedReasons[k]` is the DISPOSED message for a disposed wrapper's handle -2 - k (errors.ts FREED). */
  init(torchError: new (message: string, code: string) => Error, disposedReasons: readonly string[]): void;
  dispose(h: H): boolean;
  disposeMany(hs: H[]): number;
  isLive(h: H): boolean;
  memory(): { tensors: number; bytes: number; retainedBytes: number; externalBytes: number };
  liveCount(): number;
  setNumThreads(n: number): void;
  lowerThreadPriority(delta: number): number | null;
  threadScheduling(policy: 'idle' | 'batch' | 'normal' | 'short'): boolean;
  narrowThreads(mode: 'narrow' | 'widen' | 'reset'): boolean;
  shutdownBlasThreads(): boolean;
  raiseMallocThresholds(): boolean;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  /** Throws TorchError('DEVICE_UNAVAILABLE') for a CUDA device this libtorch or machine does not have. */
  checkDevice(device: string): void;
  versions(): { torch: string; parallel: string; blas?: string; blasCore?: string; blasThreads?: number };
  /** Relative errors of small BLAS/LAPACK problems against loops in double; null when firstInProcess and done. */
  blasSelfCheck(firstInProcess?: boolean): BlasCheck | null;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  throwForTest(kind: 'c10' | 'std' | 'alloc'): never;
  /** The op tables of native/opcodes.h; checked against lib/opcodes.ts when this file loads the addon. */
  opcodes(): OpTables;
  // creation
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: number, device?: string): H;
  factory(kind: FactoryCode, shape: number[], dtype: number, device: Opt<string>, a?: number, b?: number): H;
  arange(start: number, end: number, step: number, dtype: number, device: Opt<string>): H;
  linspace(start: number, end: number, steps: number, dtype: number, device: Opt<string>): H;
  // properties and data
  shape(h: H): number[];
  stride(h: H): number[];
  ndim(h: H): number;
  numel(h: H): number;
  dtype(h: H): number;
  device(h: H): string;
  isContiguous(h: H): boolean;
  requiresGrad(h: H): boolean;
  setRequiresGrad(h: H, on: boolean): void;
  isLeaf(h: H): boolean;
  gradFn(h: H): string | null;
  sameTensor(a: H, b: H): boolean;
  dataPtr(h: H): number;
  toBuffer(h: H): ArrayBuffer;
  copyToBuffer(h: H, span: Uint8Array): void;
  copyFromBuffer_(h: H, span: Uint8Array): void;
  item(h: H): number | boolean;
  to(h: H, dtype: number, device: Opt<string>, copy: boolean): H;
  clone(h: H): H;
  contiguous(h: H): H;
  detach(h: H): H;
  detach_(h: H): void;
  alias(h: H): H;
  // autograd
  backward(h: H, grad: H, retainGraph: boolean, createGraph: boolean): void;
  grad(h: H, cached: H): H | null;
  setGrad(h: H, grad: H): void;
  setData(h: H, data: H): void;
  retainGrad(h: H): void;
  registerHook(h: H, fn: (grad: H) => H): number;
  removeHook(h: H, position: number): void;
  hookIdentity(hs: H[], fn: (grads: H[]) => H[] | -1, materialize: boolean): H[];
  autogradGrad(
    outputs: H[],
    inputs: H[],
    gradOutputs: H[] | null,
    retainGraph: number,
    createGraph: boolean,
    allowUnused: boolean,
  ): (H | null)[];
  // element-wise
  unary(code: UnaryCode, h: H): H;
  unary_(code: UnaryInplaceCode, h: H): void;
  binary(code: BinaryCode, a: H, b: H, alpha?: number): H;
  binaryScalar(code: BinaryCode, a: H, s: number | boolean, alpha?: number): H;
  binary_(code: BinaryCode, a: H, b: H, alpha?: number): void;
  binaryScalar_(code: BinaryCode, a: H, s: number, alpha?: number): void;
  where(cond: H, a: H, b: H): H;
  clamp(h: H, min: Opt<number>, max: Opt<number>): H;
  clamp_(h: H, min: Opt<number>, max: Opt<number>): void;
  fill_(h: H, v: number | boolean): void;
  copy_(h: H, src: H): void;
  addcmul_(h: H, a: H, b: H, value: number): void;
  addcdiv_(h: H, a: H, b: H, value: number): void;
  lerp_(h: H, end: H, weight: number | H): void;
  addmm(h: H, a: H, b: H, beta: number, alpha: number): H;
  leakyRelu(h: H, slope: number): H;
  elu(h: H, alpha: number): H;
  hardtanh(h: H, min: number, max: number): H;
  gelu(h: H, tanh: boolean): H;
  allclose(a: H, b: H, rtol: number, atol: number, equalNan: boolean): boolean;
  // reductions
  reduce(code: ReduceCode, h: H, dims: number[] | null, keepdim: boolean): H;
  var(h: H, dims: number[] | null, correction: number, keepdim: boolean): H;
  std(h: H, dims: number[] | null, correction: number, keepdim: boolean): H;
  norm(h: H, p: number, dims: number[] | null, keepdim: boolean): H;
  maxDim(h: H, dim: number, keepdim: boolean): [H, H];
  minDim(h: H, dim: number, keepdim: boolean): [H, H];
  max(h: H): H;
  min(h: H): H;
  argmax(h: H, dim: Opt<number>, keepdim: boolean): H;
  argmin(h: H, dim: Opt<number>, keepdim: boolean): H;
  cumsum(h: H, dim: number): H;
  cumprod(h: H, dim: number): H;
  softmax(h: H, dim: number): H;
  logSoftmax(h: H, dim: number): H;
  sort(h: H, dim: number, descending: boolean): [H, H];
  topk(h: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  // shapes and indexing
  reshape(h: H, shape: number[]): H;
  view(h: H, shape: number[]): H;
  transpose(h: H, d0: number, d1: number): H;
  permute(h: H, dims: number[]): H;
  squeeze(h: H, dim?: number): H;
  unsqueeze(h: H, dim: number): H;
  flatten(h: H, start: number, end: number): H;
  expand(h: H, shape: number[]): H;
  repeat(h: H, reps: number[]): H;
  cat(hs: H[], dim: number): H;
  stack(hs: H[], dim: number): H;
  split(h: H, sizes: number | number[], dim: number): H[];
  chunk(h: H, n: number, dim: number): H[];
  unbind(h: H, dim: number): H[];
  narrow(h: H, dim: number, start: number, length: number): H;
  select(h: H, dim: number, index: number): H;
  slice(h: H, dim: number, start: Opt<number>, end: Opt<number>, step: number): H;
  indexSelect(h: H, dim: number, index: H): H;
  gather(h: H, dim: number, index: H): H;
  scatter(h: H, dim: number, index: H, src: H): H;
  scatterAdd(h: H, dim: number, index: H, src: H): H;
  maskedFill(h: H, mask: H, value: number | boolean): H;
  maskedSelect(h: H, mask: H): H;
  nonzero(h: H): H;
  indexTensors(h: H, indices: H[]): H;
  tril(h: H, diagonal: number): H;
  triu(h: H, diagonal: number): H;
  diag(h: H, diagonal: number): H;
  diagonal(h: H, offset: number, d1: number, d2: number): H;
  trace(h: H): H;
  flip(h: H, dims: number[]): H;
  roll(h: H, shifts: number[], dims: number[]): H;
  tensordot(a: H, b: H, dimsA: number[], dimsB: number[]): H;
  einsum(eq: string, hs: H[]): H;
  pad(h: H, pad: number[], value: number): H;
  // layers
  linear(x: H, w: H, b: Opt<H>): H;
  conv2d(x: H, w: H, b: Opt<H>, stride: number[], padding: number[], dilation: number[], groups: number): H;
  maxPool2d(x: H, k: number[], s: number[], p: number[], d: number[], ceil: boolean): H;
  avgPool2d(x: H, k: number[], s: number[], p: number[], ceil: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(x: H, out: number[]): H;
  batchNorm(
    x: H,
    mean: Opt<H>,
    variance: Opt<H>,
    w: Opt<H>,
    b: Opt<H>,
    training: boolean,
    momentum: number,
    eps: number,
  ): H;
  layerNorm(x: H, shape: number[], w: Opt<H>, b: Opt<H>, eps: number): H;
  dropout(x: H, p: number, training: boolean): H;
  embedding(w: H, idx: H, paddingIdx?: number | null): H;
  sdpa(
    q: H,
    k: H,
    v: H,
    mask: Opt<H>,
    dropoutP: number,
    training: boolean,
    isCausal: boolean,
    scale: number,
    needWeights: boolean,
  ): H[];
  unfold(x: H, k: number[], d: number[], p: number[], s: number[]): H;
  interpolate(x: H, size: number[], mode: InterpolateCode, alignCorners: boolean): H;
  // losses (reduction: a code of lib/opcodes.ts LOSS_REDUCTION)
  crossEntropy(x: H, t: H, w: Opt<H>, reduction: LossReductionCode, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(x: H, t: H, w: Opt<H>, reduction: LossReductionCode, ignoreIndex: number): H;
  bceWithLogits(x: H, t: H, w: Opt<H>, posWeight: Opt<H>, reduction: LossReductionCode): H;
  bce(x: H, t: H, w: Opt<H>, reduction: LossReductionCode): H;
  mseLoss(x: H, t: H, reduction: LossReductionCode): H;
  l1Loss(x: H, t: H, reduction: LossReductionCode): H;
  smoothL1Loss(x: H, t: H, reduction: LossReductionCode, beta: number): H;
  // sampling
  bernoulli(p: H, prob?: number): H;
  multinomial(p: H, n: number, replacement: boolean): H;
  normal(meanIsTensor: boolean, stdIsTensor: boolean, mean: number, std: number): H;
  uniform_(h: H, lo: number, hi: number): void;
  normal_(h: H, mean: number, std: number): void;
  getRngState(): H;
  setRngState(h: H): void;
  checkRngState(h: H): string;
  // TorchScript (native/jit.cc): modules by integer handle, per environment
  jitLoad(path: string): number;
  jitSave(m: number, path: string): void;
  jitForward(m: number, inputs: H[]): unknown;
  /** [name, handle, index of the first entry holding the same tensor (its own index when none)] */
  jitNamedParameters(m: number): [string, H, number][];
  jitNamedBuffers(m: number): [string, H, number][];
  jitTrain(m: number, mode: boolean): void;
  jitIsTraining(m: number): boolean;
  jitDispose(m: number): void;
  jitTrace(
    names: string[],
    tensors: H[],
    inputs: H[],
    forward: (...inputs: H[]) => H | H[],
    isParameter: boolean[],
  ): number;
  // linear algebra
  cholesky(h: H, upper: boolean): H;
  choleskyEx(h: H, upper: boolean): [H, H];
  choleskyInverse(h: H, upper: boolean): H;
  choleskySolve(b: H, l: H, upper: boolean): H;
  inv(h: H): H;
  solve(a: H, b: H): H;
  eigh(h: H, upper: boolean): [H, H];
  eigvalsh(h: H, upper: boolean): H;
  svd(h: H, fullMatrices: boolean): [H, H, H];
  qr(h: H, complete: boolean): [H, H];
  det(h: H): H;
  slogdet(h: H): [H, H];
  matrixNorm(h: H, ord: string): H;
  // first-order optimizers (native/optim/first_order.cc): one call per step for every parameter; the state's
  // tensors belong to the TypeScript optimizer and are updated in place. A missing or ill-typed field of state or
  // options is a TypeError naming it.
  sgdStep(params: H[], state: SgdStepState, options: SgdStepOptions): void;
  adamStep(params: H[], state: AdamStepState, options: AdamStepOptions): void;
  // TNT (native/optim/tnt.cc): shapes[p] is parameter p's factor shape; mains[p][i] / auxes[p][i] the packed state
  // of its i-th factor (full: P with A in the upper triangle and H's strict lower triangle, and diag(H); diagonal:
  // diag(H) and diag(A)). `blas` lets the packed kernels call cblas_?syrk / cblas_?symm where they exist.
  tntBlasAvailable(): boolean;
  tntStatistics(
    grads: H[],
    shapes: number[][],
    mains: H[][],
    auxes: H[][],
    weight: number,
    blas: boolean,
    keep?: number,
  ): { updated: number; skippedNonFinite: number };
  tntNormalizedFactors(shapes: number[][], mains: H[][], auxes: H[][]): H[][];
  tntInverses(shapes: number[][], mains: H[][], auxes: H[][], eps: number, method: InverseMethodCode): InverseReport;
  // asyncInverses: a job (an opaque external) per optimizer; one refresh pending at a time on its native thread
  tntAsyncNew(): AsyncJob;
  tntAsyncLaunch(
    job: AsyncJob,
    groups: [shapes: number[][], mains: H[][], auxes: H[][], eps: number][],
    method: InverseMethodCode,
    failForTest: boolean,
  ): void;
  tntAsyncStatus(job: AsyncJob): 0 | 1 | 2;
  tntAsyncSnapshotWait(job: AsyncJob): void;
  tntAsyncSwap(job: AsyncJob): (InverseReport & { intraOpThreads: number }) | null;
  tntAsyncCancel(job: AsyncJob): void;
  tntUnpack(main: H, aux: H): [H, H];
  tntPack(factor: H, inverse: H, main: H, aux: H): void;
  tntPackedDirection(m: H, shape: number[], mains: H[], auxes: H[], blas: boolean): H;
  tntPackedStep(
    params: H[],
    momentum: H[],
    shapes: number[][],
    mains: H[][],
    auxes: H[][],
    lr: number[],
    momentumCoef: number[],
    weightDecay: number[],
    blas: boolean,
    klClip?: number,
  ): StepReport & { scale?: number; quadratic?: number };
  // the same update from full matrices (Shampoo's step and direction, with its roots)
  tntDirection(m: H, shape: number[], inverses: H[]): H;
  kroneckerStep(
    params: H[],
    momentum: H[],
    shapes: number[][],
    inverses: H[][],
    lr: number[],
    momentumCoef: number[],
    weightDecay: number[],
  ): StepReport;
  // Shampoo (native/optim/shampoo.cc): TNT's shapes/factors layout; the step is kroneckerStep with the roots
  shampooStatistics(
    grads: H[],
    shapes: number[][],
    factors: H[][],
    weight: number,
    keep?: number,
  ): { updated: number; skippedNonFinite: number };
  shampooRoots(
    shapes: number[][],
    factors: H[][],
    roots: H[][],
    eps: number,
    method: RootMethodCode,
  ): ShampooRootReport;
  // KFAC (native/optim/kfac.cc): one entry per Linear / Conv2d layer
  kfacStatistics(
    layers: {
      a: H | null;
      g: H | null;
      A: H;
      G: H;
      bias: boolean;
      batch: number;
      aDivisor?: number;
      gScale?: number;
    }[],
    weight: number,
    keep?: number,
  ): { updated: number; skippedNonFinite: number };
  kfacInverses(layers: { A: H; G: H; invA: H; invG: H; damping: number }[], piCorrection: boolean): InverseReport;
  // distributed (native/distributed.cc): c10d process group of this environment; collectives settle on the JS thread
  distAvailable(): boolean;
  distNcclAvailable(): boolean;
  distInit(o: {
    backend: string;
    store: 'tcp' | 'file';
    host?: string;
    port?: number;
    path?: string;
    rank: number;
    worldSize: number;
    timeout: number;
  }): Promise<void>;
  distInfo(): {
    rank: number;
    worldSize: number;
    backend: string;
    pending: number;
    bytes: number;
    timeout: number;
  } | null;
  distAllReduce(h: H, op: string, group?: number): Promise<void>;
  distBroadcast(h: H, src: number, group?: number): Promise<void>;
  distAllGather(outs: H[], h: H, group?: number): Promise<void>;
  distBarrier(group?: number, timeoutMs?: number): Promise<void>;
  distReduce(h: H, dst: number, op: string, group?: number): Promise<void>;
  distReduceScatter(out: H, input: H, op: string, group?: number): Promise<void>;
  distAllGatherInto(out: H, input: H, group?: number): Promise<void>;
  distNewGroup(o: { ranks: number[]; timeout: number }): Promise<{ id: number; rank: number; size: number } | null>;
  distDestroyGroup(id: number): Promise<void>;
  distGroupBytes(): number;
  distDestroy(): Promise<void>;
  kfacStep(
    layers: {
      weight: H;
      bias: H | null;
      momentum: H;
      biasMomentum: H | null;
      invA: H;
      invG: H;
      lr: number;
      mu: number;
      wd: number;
    }[],
    plain: { param: H; momentum: H; lr: number; mu: number; wd: number }[],
  ): StepReport;
}

/**
 * What a second-order step did: applied (1) or skipped (0, counted in skippedNonFinite), and why: reason 1 a gradient
 * held NaN or Infinity, 2 a new momentum or parameter would have (a non-finite state, an overflowing update). A
 * skipped step changes nothing.
 */
export interface StepReport {
  applied: number;
  skippedNonFinite: number;
  reason: 0 | 1 | 2;
}

/** What shampooRoots did: roots computed (retries included), float64 retries, failures (last root kept),
 *  parameters skipped for non-finite factors, the largest accepted Newton error max|M - I| and the most Newton
 *  iterations any batch took. */
export interface ShampooRootReport {
  computed: number;
  retriedFloat64: number;
  failed: number;
  skippedNonFinite: number;
  newtonMaxError: number;
  newtonIterations: number;
}

/** A native background job (TNT's asynchronous inverse refresh): opaque. */
export type AsyncJob = { readonly __asyncJob: unique symbol };

/** What an inverse refresh of the Kronecker family (TNT, KFAC) did: factors inverted (retries included), float64
 * retries, extra-damping retries, failures (last good inverse kept), factors skipped as non-finite. */
export interface InverseReport {
  inverted: number;
  retriedFloat64: number;
  retriedDamping: number;
  failed: number;
  skippedNonFinite: number;
}
/** @deprecated the name from before KFAC and Shampoo shared it: {@link InverseReport}. */
export type TntInverseReport = InverseReport;

const here = dirname(fileURLToPath(import.meta.url));
/** Package root: lib/ in development (vitest runs the sources), dist/ once compiled; both sit one level down. */
export const packageRoot = join(here, '..');

/**
 * The libtorch (major.minor) a prebuild named `tensornormal.libtorch-<major>.<minor>.node` was built against, from
 * its name; undefined for other names.
 */
export function prebuildTorch(file: string): string | undefined {
  return /\.libtorch-(\d+\.\d+)\.node$/.exec(file)?.[1];
}

/**
 * The libtorch versions (major.minor) installed where the dynamic loader looks: Debian's libtorch names its
 * libraries libtorch_cpu.so.<major>.<minor>. A libtorch with unversioned names (a pip torch, an unpacked archive)
 * gives none, and no prebuild is preferred.
 */
export function installedTorchVersions(dirs = libraryDirs()): string[] {
  const found = new Set<string>();
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /^libtorch_cpu\.so\.(\d+\.\d+)$/.exec(n);
      if (m) found.add(m[1]!);
    }
  }
  return [...found];
}

function libraryDirs(): string[] {
  const multiarch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== '');
  return [...fromEnv, `/usr/lib/${multiarch}`, `/lib/${multiarch}`, '/usr/local/lib', '/usr/lib'];
}

/**
 * Addon files to try, in order: TENSORNORMAL_ADDON alone when set; this package's own build when there is one; the
 * prebuilds for this platform, those built against a libtorch installed here first (one per libtorch: `npm run
 * prebuilds` makes Debian 12's 1.13 and Debian 13's 2.6).
 */
export function candidates(): string[] {
  const out: string[] = [];
  // An explicit addon path wins (used to test a build made in another folder).
  if (process.env.TENSORNORMAL_ADDON) return [process.env.TENSORNORMAL_ADDON];
  // A build made here comes first: it exists only where the sources were compiled (a checkout, or an install that
  // found no prebuild), and it is newer than any prebuild lying beside it (a stale prebuild with the same op tables
  // would otherwise load and miss newer entry points).
  const built = join(packageRoot, 'build', 'Release', 'tensornormal.node');
  if (existsSync(built)) out.push(built);
  const pre = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  if (existsSync(pre)) {
    const here = new Set(installedTorchVersions());
    const files = readdirSync(pre)
      .filter((f) => f.endsWith('.node'))
      .sort();
    const matching = files.filter((f) => here.has(prebuildTorch(f) ?? ''));
    for (const f of [...matching, ...files.filter((f) => !matching.includes(f))]) out.push(join(pre, f));
  }
  if (!existsSync(built)) out.push(built); // tried last, for the error message that says how to build it
  return out;
}

/** Why an addon file did not load, in words (exported for tests). */
export function explain(file: string, err: Error): string {
  const m = String(err.message);
  // Installing builds the addon (or picks a prebuild that loads) in the package's install script; with scripts
  // skipped (`npm install --ignore-scripts`, some CI caches) neither file exists, and `npm rebuild` runs the script.
  if (/ENOENT|Cannot find module/.test(m))
    return `${file}: not built. The install script builds it and did not run (npm install --ignore-scripts?): run \`npm rebuild tensornormal\` (in a clone of the repository: \`npm run build:native\`)`;
  if (/libtorch|libc10|libtorch_cpu|libtorch_cuda/.test(m) && /cannot open shared object/.test(m))
    return `${file}: libtorch was not found at run time (${m.split('\n')[0]}). Install it (Debian: apt-get install libtorch-dev libopenblas0-pthread) or add its lib folder to LD_LIBRARY_PATH`;
  if (/cannot open shared object/.test(m))
    return `${file}: a library it needs is missing at run time (${m.split('\n')[0]}); install it or add its folder to LD_LIBRARY_PATH (a CUDA libtorch also needs cuDNN, cuBLAS and NCCL)`;
  if (/undefined symbol|version `.*' not found|wrong ELF/.test(m))
    return `${file}: built against another libtorch or C++ ABI (${m.split('\n')[0]}); rebuild with \`npm run build:native\``;
  return `${file}: ${m.split('\n')[0]}`;
}

/** The addon file that loaded (a child process that must load the same one uses it: jit.load's isolate). */
export let addonFile = '';

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  const files = candidates();
  for (const [i, file] of files.entries()) {
    let mod: NativeBinding;
    try {
      mod = require(file) as NativeBinding;
    } catch (err) {
      tried.push(explain(file, err as Error));
      continue;
    }
    // A prebuild from another revision of native/opcodes.h would run the wrong ops: while another file remains
    // (this checkout's build), go on to it; the last one is refused below by checkOpcodes with the entries named.
    if (i < files.length - 1) {
      try {
        checkOpcodes(mod.opcodes());
      } catch (err) {
        tried.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
        continue;
      }
    }
    addonFile = file;
    return mod;
  }
  throw new Error(`tensornormal: the native addon could not be loaded.\n  ${tried.join('\n  ')}`);
}

// Must run before the addon (and with it libtorch, OpenMP and OpenBLAS) is loaded: see runtime-env.ts.
const chosenEnv = runtimeEnvironment(process.env, readCpuinfo());
Object.assign(process.env, chosenEnv);

export const native: NativeBinding = load();
native.init(TorchError, FREED_MESSAGES);
// The addon defaults libtorch to every core; TENSORNORMAL_NUM_THREADS overrides that (the test runner sets 1 per
// worker process, since OpenMP threads spinning in several processes on 2 cores slow everything down).
if (process.env.TENSORNORMAL_NUM_THREADS) {
  const n = Number(process.env.TENSORNORMAL_NUM_THREADS);
  if (Number.isInteger(n) && n > 0) native.setNumThreads(n);
}
// An addon built from another revision of native/opcodes.h would run the wrong ops: refuse it, naming the entries.
checkOpcodes(native.opcodes());
// Kernels the library picked itself (OPENBLAS_CORETYPE from the CPU's flags) are checked once per process on small
// gemm, syrk, symm and potrf problems against plain loops (about a millisecond): older OpenBLAS builds compute wrong
// results on some processors newer than themselves. A user's own OPENBLAS_CORETYPE is the user's to check.
if (chosenEnv.OPENBLAS_CORETYPE !== undefined && process.env.TENSORNORMAL_BLAS_SELFCHECK !== 'off') {
  const check = native.blasSelfCheck(true);
  const warning = check && blasCheckWarning(check, chosenEnv.OPENBLAS_CORETYPE);
  if (warning) process.emitWarning(warning, { code: 'TENSORNORMAL_BLAS_KERNELS' });
}
