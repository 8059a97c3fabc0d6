/**
 * Tensor Normal Training (Ren & Goldfarb, NeurIPS 2021): an approximate natural-gradient method whose
 * preconditioner is the Kronecker-factored covariance of the *sampled* gradient (y drawn from the model's own
 * predictive distribution), estimated under a tensor-normal assumption.
 *
 * For a parameter W viewed as a tensor of shape (d_1, ..., d_k) with sampled batch-mean gradient G:
 *
 *     H_i  <- (1 - w) H_i + w G^(i),        G^(i) = mat_i(G) mat_i(G)^T       (every `statsEvery` steps)
 *     c0    = (tr(H_1) / prod_j d_j)^(1/k),  U_i = H_i / (c0^(k-1) prod_{j!=i} d_j)          (eq. 5)
 *     A_i   = (U_i + damping I)^-1                                     (every `inverseEvery` steps)
 *     m    <- momentum m + grad
 *     W    <- W (1 - lr weightDecay) - lr (m x_1 A_1 x_2 ... x_k A_k)                       (eq. 3, 4)
 *
 * The moving-average weight (`statistics: 'convex'`, the default) is w = max(1/(t+1), 1 - statDecay) on the t-th
 * statistics update (t from 0), so early statistics are not shrunk toward zero; after `warmStart()` it is the plain
 * 1 - statDecay from the warm-start mean. `statistics: 'authors'` is the authors' code instead
 * (utils_shampoo.py, shampoo_kron_matrices_per_variable): without a warm start H_i <- statDecay H_i +
 * max(1/(i+1), 1 - statDecay) G^(i), i the step (not the count of statistics updates), which is not a convex
 * combination; after a warm start nothing is gathered at step 0. While fewer than `inverseEvery` steps have run,
 * inverses are refreshed every `statsEvery` steps (the first-T2 rule, as the authors' TNT; `earlyRefresh: false`
 * turns it off).
 *
 * Factor shapes: a Linear weight (out, in) has two factors; a bias or any 1-d tensor one (full d x d); a conv
 * weight (out, in, kh, kw) three, (out, in, kh*kw) (`convFactors: 'full'` gives four); scalars are not
 * preconditioned (plain momentum direction). A dimension above `maxFactorDim` gets a diagonal factor.
 *
 * State, packed: H_i and A_i are symmetric, so a full factor keeps both in one d x d buffer (A_i in the upper
 * triangle with the diagonal, H_i's strict lower triangle below it) plus diag(H_i): a parameter costs
 * sum_i (d_i <= maxFactorDim ? d_i^2 + d_i : 2 d_i) numbers plus its momentum. On the CPU the statistics are a
 * symmetric rank-k update of the lower triangle (cblas_?syrk, half a GEMM's flops) and the update multiplies by
 * the upper triangle (cblas_?symm), when the BLAS libtorch was linked against exports them (OpenBLAS does);
 * elsewhere libtorch ops on full copies do the same work. The buffers have the factor dtype, or float64 for a
 * float64 parameter.
 *
 * Beyond the reference code: a non-finite gradient never reaches the parameters (the step is skipped and counted,
 * or throws with `onNonFinite: 'throw'`), non-finite statistics are never folded in, a failed factorisation is
 * retried in float64 and then with 10x-1000x damping (reported in `lastInverseReport`), and a factor that still
 * fails keeps its last good inverse.
 *
 * @example
 *   const opt = new optim.TNT(model.parameters(), { lr: 1e-4, damping: 0.1 });
 *   const lik = new Bernoulli();
 *   for (const [x] of loader) tidy(() => {
 *     const out = model.forward(x);
 *     opt.sampledBackward(out, lik);        // statistics from y ~ p(y | x), when due
 *     lik.loss(out, x).backward();          // the real loss
 *     opt.step();
 *     opt.zeroGrad();
 *   });
 */
import { native, type AsyncJob, type InverseReport, type StepReport } from '../native.js';
import { INVERSE_METHOD } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { keep, tidy } from '../scope.js';
import { eye, zeros } from '../creation.js';
import { cat } from '../ops.js';
import { grad as autogradGrad } from '../autograd.js';
import { is, typeError } from '../errors.js';
import type { ParamState, Params, StateEntry } from './optimizer.js';
import { KroneckerOptimizer, gradientHandles, splitOptions, type StatisticsRule } from './kronecker/optimizer.js';
import { factorShape } from './kronecker/shapes.js';

import { isSampleableLikelihood, type SampleableLikelihood } from '../likelihoods.js';
/** What TNT needs of a likelihood (lib/likelihoods.ts): its loss and samples from its predictive distribution. */
export type { SampleableLikelihood };

/** Per-group options of optim.TNT: lr, damping, momentum, weightDecay, statDecay. */
export interface TNTOptions {
  /** Learning rate. */
  lr: number;
  /** The eps added to every normalised factor before inversion (the paper's epsilon). Default 0.1. */
  damping: number;
  /** Momentum on the raw gradient (no dampening). Default 0.9. */
  momentum: number;
  /** Decoupled weight decay: W <- W (1 - lr weightDecay). Default 0. */
  weightDecay: number;
  /** Decay of the statistics' moving average. Default 0.9. */
  statDecay: number;
}

/** Configuration of optim.TNT: statsEvery (T1), inverseEvery (T2), earlyRefresh, statistics, factor dtype, inverse method, factor shapes and size limit, onNonFinite, blasKernels. */
export interface TNTConfig {
  /** T1: gather statistics every this many steps. Default 1. */
  statsEvery?: number;
  /** T2: refresh the inverses every this many steps. Default 20. */
  inverseEvery?: number;
  /** dtype of the factors and of their factorisation. Default 'float32'. */
  factorDtype?: 'float32' | 'float64';
  /** 'cholesky' (default) or 'lu' (the authors' choice). */
  inverseMethod?: 'cholesky' | 'lu';
  /** Factor dimensions above this get a diagonal factor. Default 4096. */
  maxFactorDim?: number;
  /** Conv weights (out, in, kh, kw): 'merge' (default) gives factors (out, in, kh*kw); 'full' gives four. */
  convFactors?: 'merge' | 'full';
  /** Overrides the factor shape of a parameter (return [] to leave it unpreconditioned). */
  factorShape?: (param: Tensor) => number[];
  /** What a non-finite gradient does: skip the step and count it (default), or throw. */
  onNonFinite?: 'skip' | 'throw';
  /** Moving-average rule: 'convex' (default) or 'authors' (their code's; see the file comment). */
  statistics?: StatisticsRule;
  /** The first-T2 rule: inverses every `statsEvery` steps while fewer than `inverseEvery` have run. Default true. */
  earlyRefresh?: boolean;
  /** CPU: call the BLAS's syrk/symm on the packed state where it exports them (default true); false: libtorch ops. */
  blasKernels?: boolean;
  /**
   * Statistics from a sub-batch: the sampled pass uses the batch's first rows only (a shuffled loader makes them a
   * random subset), this fraction of the batch when <= 1 (1, the default: the whole batch), this many rows when an
   * integer > 1. The statistics are weighted by rows / batch, so that they estimate the same F / N as the whole
   * batch's (with more variance). It saves the sampled backward pass only when the forward pass is split
   * (`opt.splitForward(forward, x)`, which fit() and the experiment runner call): then the sampled loss's graph
   * holds the sub-batch alone. Not for models whose forward mixes examples (BatchNorm in training mode).
   */
  statsBatch?: number;
  /**
   * Statistics every `statsEvery` steps with a moving average whose memory is counted in steps: true gives the
   * statistics update the weight 1 - statDecay^statsEvery (what statsEvery updates of weight 1 - statDecay add up
   * to), so that T1 > 1 keeps the same time constant as T1 = 1. Default false (1 - statDecay per update, the paper's).
   */
  statDecayPerStep?: boolean;
  /**
   * Update-size control (KL clipping, as distributed K-FAC): each step's preconditioned direction is scaled by
   * nu = min(1, sqrt(klClip / (sum_p lr^2 <m_p, P(m_p)>))), P the preconditioner. 0 (default): off.
   */
  klClip?: number;
  /**
   * Inverses off the critical path: when a refresh is due, a native background thread copies the statistics and
   * computes the new inverses while steps go on with the current ones, and the new ones are swapped in
   * - `true`: at the first step after they are ready (when wall time allows: not reproducible), at the latest at the
   *   next refresh (stale by at most one refresh);
   * - a whole number n >= 1: exactly n steps after the refresh was due (or at the next refresh, if that comes
   *   first), waiting for the thread if it has not finished: reproducible, the same run as a refresh inline whose
   *   inverses are applied n steps late.
   * `false` (default): the refresh inline, at the step it is due (the paper's). The first refresh of a run without
   * a warm start is inline in every mode. See docs/tnt.md.
   */
  asyncInverses?: boolean | number;
}

const OPTIONS = ['lr', 'damping', 'momentum', 'weightDecay', 'statDecay'] as const;
const CONFIG = [
  'statsEvery',
  'inverseEvery',
  'factorDtype',
  'inverseMethod',
  'maxFactorDim',
  'convFactors',
  'factorShape',
  'onNonFinite',
  'blasKernels',
  'statistics',
  'earlyRefresh',
  'statsBatch',
  'statDecayPerStep',
  'klClip',
  'asyncInverses',
] as const;

/**
 * A parameter's packed curvature state, entries of its `state` (see the file comment and native/optim/tnt.cc):
 * `main<i>`: full factor: P (d x d), A_i in the upper triangle and H_i's strict lower triangle; diagonal: diag(H_i).
 * `aux<i>`: full factor: diag(H_i); diagonal factor: diag(A_i).
 * A state dict holds them unpacked, as `factor<i>` (H_i) and `inverse<i>` (A_i).
 */
interface Curvature {
  shape: number[];
  mains: Tensor[];
  auxes: Tensor[];
}

/** Tensor Normal Training (Ren and Goldfarb 2021): a natural-gradient optimizer whose preconditioner is the Kronecker product of the tensor-normal covariances of each gradient, refreshed natively. See docs/tnt.md. */
export class TNT extends KroneckerOptimizer<TNTOptions, 'tnt'> {
  readonly inverseMethod: 'cholesky' | 'lu';
  readonly maxFactorDim: number;
  /** Whether the packed kernels call the BLAS directly (the option, and the BLAS exports them). */
  readonly blasKernels: boolean;
  private readonly convFactors: 'merge' | 'full';
  private readonly factorShapeFn?: (param: Tensor) => number[];
  /** What the last inverse refresh did (retries, failures). */
  lastInverseReport: InverseReport | null = null;
  /** The sampled pass's sub-batch: a fraction of the batch (<= 1) or a count of rows (> 1). */
  readonly statsBatch: number;
  /** The KL clip of the update (0: off). */
  readonly klClip: number;
  /** The last step's direction scale nu (1 unless clipped) and its quadratic form sum lr^2 <m, P(m)> (with klClip). */
  lastStepScale = 1;
  lastStepQuadratic = 0;
  /** Inverses off the critical path (see TNTConfig.asyncInverses): false, true (when ready) or the swap's lag in steps. */
  readonly asyncInverses: boolean | number;
  /**
   * Steps between the statistics of the inverses in use and the step that swapped them in: 0 for a refresh inline,
   * at least 1 with `asyncInverses` (a refresh due at step t and swapped in at step t + n gives n).
   */
  lastInverseLag = 0;
  /** @internal Test hook: the next background refresh fails in its thread (after copying the statistics). */
  failNextRefreshForTest = false;
  /** The native job of the background refresh (made on first use) and the refresh pending on it. */
  private asyncJob: AsyncJob | null = null;
  private pendingInverses: { due: number; swapAt: number } | null = null;
  /** The last splitForward()'s output and the sub-batch part of it that the sampled pass differentiates. */
  private split: { output: Tensor; sub: Tensor } | null = null;

  constructor(params: Params<TNTOptions>, options: Partial<TNTOptions> & { lr: number } & TNTConfig) {
    const {
      statsEvery = 1,
      inverseEvery = 20,
      factorDtype,
      inverseMethod = 'cholesky',
      maxFactorDim = 4096,
      convFactors = 'merge',
      factorShape,
      onNonFinite,
      blasKernels = true,
      statistics,
      earlyRefresh,
      statsBatch = 1,
      statDecayPerStep,
      klClip = 0,
      asyncInverses = false,
      ...rest
    } = splitOptions(options, [...OPTIONS, ...CONFIG], 'TNT');
    super(params, { damping: 0.1, momentum: 0.9, weightDecay: 0, statDecay: 0.9, ...rest } as TNTOptions, {
      statsEvery,
      inverseEvery,
      statistics,
      earlyRefresh,
      factorDtype,
      onNonFinite,
      statDecayPerStep,
    });
    this.statsBatch = is.positive(statsBatch, 'statsBatch');
    if (this.statsBatch > 1 && !Number.isInteger(this.statsBatch))
      throw new RangeError(
        `Expected statsBatch to be a fraction in (0, 1] or a whole number of rows but received ${statsBatch}`,
      );
    this.klClip = is.nonNegative(klClip, 'klClip');
    if (typeof asyncInverses === 'boolean') this.asyncInverses = asyncInverses;
    else if (typeof asyncInverses === 'number' && Number.isInteger(asyncInverses) && asyncInverses >= 1)
      this.asyncInverses = asyncInverses;
    else
      throw new RangeError(
        `Expected asyncInverses to be true, false or a whole number of steps >= 1 but received ${String(asyncInverses)}`,
      );
    this.inverseMethod = is.oneOf(inverseMethod, 'inverseMethod', ['cholesky', 'lu'] as const);
    this.maxFactorDim = is.positiveInteger(maxFactorDim, 'maxFactorDim');
    this.convFactors = is.oneOf(convFactors, 'convFactors', ['merge', 'full'] as const);
    if (factorShape !== undefined)
      this.factorShapeFn = is.function(factorShape, 'factorShape') as (p: Tensor) => number[];
    this.blasKernels = is.boolean(blasKernels, 'blasKernels') && native.tntBlasAvailable();
  }

  protected get label(): 'TNT' {
    return 'TNT';
  }

  protected override factorShapeOf(p: Tensor): number[] {
    return factorShape(p, this.convFactors, this.factorShapeFn);
  }

  /** The dtype of a parameter's packed state: the factor dtype, or float64 for a float64 parameter. */
  private stateDtype(p: Tensor): 'float32' | 'float64' {
    return p.dtype === 'float64' ? 'float64' : this.factorDtype;
  }

  /** The curvature state of a parameter, made on first use: zero statistics, inverses (0 + damping I)^-1. */
  private curvatureOf(p: Tensor, damping: number): Curvature {
    const shape = this.shapeOf(p);
    const o = { dtype: this.stateDtype(p), device: p.device };
    const full = (d: number): boolean => d <= this.maxFactorDim;
    this.stateOf(p); // a parameter without factors has (empty) state too: curvatureState() reports its shape []
    const mains = shape.map((d, i) =>
      this.stateTensor(p, `main${i}`, () => (full(d) ? tidy(() => eye(d, o).mul(1 / damping)) : zeros([d], o))),
    );
    const auxes = shape.map((d, i) =>
      this.stateTensor(p, `aux${i}`, () => (full(d) ? zeros([d], o) : tidy(() => zeros([d], o).add(1 / damping)))),
    );
    return { shape, mains, auxes };
  }

  /** The curvature state of a parameter when it has been made, else undefined. */
  private curvatureIfAny(p: Tensor): Curvature | undefined {
    const s = this.state.get(p);
    if (s === undefined) return undefined;
    const shape = this.shapeOf(p);
    if (shape.some((_, i) => !(s[`main${i}`] instanceof Tensor))) return undefined;
    return {
      shape,
      mains: shape.map((_, i) => s[`main${i}`] as Tensor),
      auxes: shape.map((_, i) => s[`aux${i}`] as Tensor),
    };
  }

  private curvatureList(): { params: Tensor[]; shapes: number[][]; mains: number[][]; auxes: number[][] } {
    const shapes: number[][] = [];
    const mains: number[][] = [];
    const auxes: number[][] = [];
    const params: Tensor[] = [];
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (this.shard !== null && !this.shard.has(p)) continue; // another rank's (distributed.CurvatureSync)
        const c = this.curvatureOf(p, g.damping);
        params.push(p);
        shapes.push(c.shape);
        mains.push(c.mains.map((f) => f._h));
        auxes.push(c.auxes.map((f) => f._h));
      }
    return { params, shapes, mains, auxes };
  }

  /** A state dict holds a parameter's factors unpacked: factor<i> (H_i) and inverse<i> (A_i), d x d or diagonal d. */
  protected override stateEntries(p: Tensor): Record<string, StateEntry> {
    const out: Record<string, StateEntry> = {};
    const dtype = this.stateDtype(p);
    const shape = this.shapeOf(p);
    const dims = (d: number): number[] => (d <= this.maxFactorDim ? [d, d] : [d]);
    shape.forEach((d, i) => (out[`factor${i}`] = { shape: dims(d), dtype }));
    shape.forEach((d, i) => (out[`inverse${i}`] = { shape: dims(d), dtype }));
    return out;
  }

  /** Unpacked (new tensors: checkpoint.save frees them; call stateDict() inside tidy() otherwise). */
  protected override exportState(p: Tensor, s: ParamState): ParamState {
    const out: ParamState = {};
    for (const [k, v] of Object.entries(s)) if (!/^(main|aux)\d+$/.test(k)) out[k] = v;
    const u = this.curvatureState(p);
    if (u === undefined || u.shape.length === 0) return out;
    u.factors.forEach((f, k) => (out[`factor${k}`] = f));
    u.inverses.forEach((f, k) => (out[`inverse${k}`] = f));
    return out;
  }

  /** Packs a loaded parameter's factor<i> and inverse<i> (validated copies, freed here) into main<i> and aux<i>. */
  protected override importState(p: Tensor, s: ParamState): ParamState {
    const shape = this.shapeOf(p);
    if (shape.length === 0 || !(s.factor0 instanceof Tensor)) return s;
    const out: ParamState = {};
    for (const [k, v] of Object.entries(s)) if (!/^(factor|inverse)\d+$/.test(k)) out[k] = v;
    const o = { dtype: this.stateDtype(p), device: p.device };
    shape.forEach((d, i) => {
      const H = s[`factor${i}`] as Tensor,
        A = s[`inverse${i}`] as Tensor;
      const main = (out[`main${i}`] = keep(zeros(d <= this.maxFactorDim ? [d, d] : [d], o)));
      const aux = (out[`aux${i}`] = keep(zeros([d], o)));
      native.tntPack(H._h, A._h, main._h, aux._h);
      H.dispose();
      A.dispose();
    });
    return out;
  }

  /**
   * Folds sampled gradients (one per parameter, in `params` order; null for a parameter that got none) into the
   * factors' moving averages, in one native call. A non-finite gradient is left out and counted.
   */
  updateStatistics(sampledGrads: (Tensor | null)[], options: { scale?: number } = {}): void {
    const { scale = 1 } = is.options(options);
    is.positive(scale, 'scale');
    let hs = gradientHandles(sampledGrads, this.params, 'sampledGrads');
    const { params, shapes, mains, auxes } = this.curvatureList();
    if (this.shard !== null) {
      const all = this.params;
      hs = params.map((p) => hs[all.indexOf(p)]!);
    }
    const { keep, weight } = this.statisticsCoefficients();
    // a background refresh copies the statistics first: they must not change under the copy
    if (this.pendingInverses !== null) native.tntAsyncSnapshotWait(this.asyncJob!);
    const r = native.tntStatistics(hs, shapes, mains, auxes, weight * scale, this.blasKernels, keep);
    this.skippedStatistics += r.skippedNonFinite;
    if (this.warmCount >= 0) this.warmCount++;
    else this.statsUpdates++;
  }

  /** Recomputes every (U_i + damping I)^-1 from the current statistics: batched Cholesky (or LU), natively. */
  updateInverses(): InverseReport {
    this.cancelInverses(); // a pending background refresh is older than this one
    const total: InverseReport = { inverted: 0, retriedFloat64: 0, retriedDamping: 0, failed: 0, skippedNonFinite: 0 };
    for (const g of this.paramGroups) {
      const owned = this.shard === null ? g.params : g.params.filter((p) => this.shard!.has(p));
      if (owned.length === 0) continue;
      const cs = owned.map((p) => this.curvatureOf(p, g.damping));
      const r = native.tntInverses(
        cs.map((c) => c.shape),
        cs.map((c) => c.mains.map((f) => f._h)),
        cs.map((c) => c.auxes.map((f) => f._h)),
        g.damping,
        INVERSE_METHOD[this.inverseMethod],
      );
      for (const k of Object.keys(total) as (keyof InverseReport)[]) total[k] += r[k];
    }
    this.lastInverseReport = total;
    this.lastInverseLag = 0;
    return total;
  }

  /** Starts the background refresh (asyncInverses) of every group's inverses from a copy of the current statistics. */
  private launchInverses(): void {
    this.asyncJob ??= native.tntAsyncNew();
    const groups: [number[][], number[][], number[][], number][] = [];
    for (const g of this.paramGroups) {
      const owned = this.shard === null ? g.params : g.params.filter((p) => this.shard!.has(p));
      if (owned.length === 0) continue;
      const cs = owned.map((p) => this.curvatureOf(p, g.damping));
      groups.push([
        cs.map((c) => c.shape),
        cs.map((c) => c.mains.map((f) => f._h)),
        cs.map((c) => c.auxes.map((f) => f._h)),
        g.damping,
      ]);
    }
    const fail = this.failNextRefreshForTest;
    this.failNextRefreshForTest = false;
    native.tntAsyncLaunch(this.asyncJob, groups, INVERSE_METHOD[this.inverseMethod], fail);
    const lag = this.asyncInverses === true ? 1 : (this.asyncInverses as number);
    this.pendingInverses = { due: this.stepCount, swapAt: this.stepCount + lag };
  }

  /** Swaps a pending background refresh's inverses in (waiting for it); its failure is thrown here as a TorchError. */
  private landInverses(): void {
    const p = this.pendingInverses;
    if (p === null) return;
    this.pendingInverses = null;
    const r = native.tntAsyncSwap(this.asyncJob!);
    if (r === null) return;
    const { intraOpThreads, ...report } = r;
    this.backgroundThreads = intraOpThreads;
    this.lastInverseReport = report;
    this.lastInverseLag = this.stepCount - p.due;
  }

  /** The intra-op threads the last background refresh ran on (1; 0 before any). @internal */
  backgroundThreads = 0;

  /** Stops a pending background refresh and discards it (waits for the factorisation in progress). */
  private cancelInverses(): void {
    if (this.asyncJob !== null) native.tntAsyncCancel(this.asyncJob);
    this.pendingInverses = null;
  }

  /** Whether a background refresh (asyncInverses) is pending: started and not yet swapped in. */
  get inversesPending(): boolean {
    return this.pendingInverses !== null;
  }

  /**
   * With `asyncInverses`: waits for a pending background refresh and swaps its inverses in now (its failure is
   * thrown here, as a TorchError). Returns its report, or null when none was pending.
   */
  finishInverses(): InverseReport | null {
    if (this.pendingInverses === null) return null;
    this.landInverses();
    return this.lastInverseReport;
  }

  /** Loads a state dict (see Optimizer.loadStateDict); a pending background refresh is discarded. */
  override loadStateDict(sd: Parameters<KroneckerOptimizer<TNTOptions, 'tnt'>['loadStateDict']>[0]): void {
    super.loadStateDict(sd);
    this.cancelInverses();
  }

  /** Frees the state tensors; a pending background refresh is stopped first. */
  override dispose(): void {
    this.cancelInverses();
    this.asyncJob = null;
    super.dispose();
  }

  protected refresh(): void {
    this.updateInverses();
  }

  /** Rows of a batch of `n` that the sampled pass uses (`statsBatch`). */
  statisticsRows(n: number): number {
    const b = this.statsBatch;
    return Math.max(1, Math.min(n, b <= 1 ? Math.round(b * n) : b));
  }

  /**
   * The forward pass of a training step, split for a sub-batch's statistics: when statistics are due this step and
   * `statsBatch` selects n of the batch's N rows, `forward(x[:n])` and `forward(x[n:])` joined along dim 0 (the
   * same output, for a model that treats examples independently), so that the next `sampledBackward(output, ...)`
   * differentiates the sampled loss through the first part's graph alone; otherwise `forward(x)`.
   */
  splitForward(forward: (x: Tensor) => Tensor, x: Tensor): Tensor {
    is.function(forward, 'forward');
    if (!(x instanceof Tensor) || x.ndim === 0) return forward(x);
    const N = x.shape[0]!;
    const n = this.statisticsRows(N);
    if (n >= N || !this.statisticsDue()) return forward(x);
    const sub = forward(x.narrow(0, 0, n));
    const output = cat([sub, forward(x.narrow(0, n, N - n))], 0);
    this.split = { output, sub };
    return output;
  }

  /** The part of `output` the sampled pass differentiates: splitForward's first part, or the first rows. */
  statisticsOutput(output: Tensor): Tensor {
    if (this.split !== null && this.split.output === output) return this.split.sub;
    const N = output.ndim === 0 ? 1 : output.shape[0]!;
    const n = this.statisticsRows(N);
    return n >= N ? output : output.narrow(0, 0, n);
  }

  /**
   * The sampled backward pass: draws y from the likelihood's predictive distribution at `output`, differentiates
   * the sampled loss with respect to every parameter (graph retained, `.grad` untouched) and folds the result into
   * the statistics. Does nothing (returns false) when statistics are not due this step, unless `force`. With
   * `statsBatch` below the batch, only the first rows take part (splitForward's sub-batch graph when `output` is
   * its output), weighted by rows / batch.
   */
  sampledBackward(output: Tensor, likelihood: SampleableLikelihood, options: { force?: boolean } = {}): boolean {
    const { force = false } = is.options(options);
    if (!(output instanceof Tensor)) throw typeError('a Tensor', 'output', output);
    if (!isSampleableLikelihood(likelihood))
      throw typeError('a likelihood with sample() and loss()', 'likelihood', likelihood);
    if (!force && !this.statisticsDue()) return false;
    const params = this.params;
    // An output holding NaN or Infinity has no predictive distribution to sample: the statistics skip this batch
    // (counted in skippedStatistics) instead of failing in the sampler.
    if (!tidy(() => output.detach().isfinite().all().item())) {
      this.skippedStatistics++;
      return false;
    }
    tidy(() => {
      const sub = this.statisticsOutput(output);
      this.split = null;
      const N = output.ndim === 0 ? 1 : output.shape[0]!;
      const n = sub.ndim === 0 ? 1 : sub.shape[0]!;
      const y = likelihood.sample(sub);
      const loss = likelihood.loss(sub, y);
      const grads = autogradGrad(loss, params, { retainGraph: true, allowUnused: true });
      this.updateStatistics(grads, { scale: n / N });
    });
    return true;
  }

  /**
   * Warm start: one pass over `batches` at the current weights, no updates; the statistics become the plain running
   * mean of the sampled statistics over those minibatches. `forward` maps a batch's inputs to the model output.
   */
  async warmStart(
    batches: Iterable<[Tensor, ...unknown[]] | Tensor> | AsyncIterable<[Tensor, ...unknown[]] | Tensor>,
    forward: (x: Tensor) => Tensor,
    likelihood: SampleableLikelihood,
  ): Promise<number> {
    is.function(forward, 'forward');
    // Statistics to zero, inverses kept: the strict lower triangle of each full buffer and every diag(H).
    const reset = (): void => {
      this.cancelInverses();
      for (const p of this.params) {
        const c = this.curvatureIfAny(p);
        c?.mains.forEach((m, i) => {
          if (m.ndim === 1) m.zero_();
          else tidy(() => m.copy_(m.triu()));
          if (m.ndim === 2) c.auxes[i]!.zero_();
        });
      }
    };
    return this.warmLoop(
      batches,
      reset,
      (b) => {
        const x = b instanceof Tensor ? b : b[0];
        tidy(() => this.sampledBackward(this.splitForward(forward, x), likelihood, { force: true }));
      },
      'warmStart: batches yielded nothing',
    );
  }

  /** fit()'s hook: the sampled backward pass, when statistics are due. */
  override beforeBackward(output: Tensor, likelihood?: SampleableLikelihood): boolean {
    if (likelihood === undefined)
      throw new TypeError(
        'TNT.beforeBackward: TNT samples from the predictive distribution: pass the likelihood (e.g. new Categorical())',
      );
    return this.sampledBackward(output, likelihood);
  }

  override get needsLikelihood(): boolean {
    return true;
  }

  /** Refreshes the inverses when due; throws a TorchError 'NO_STATISTICS' when statistics were never gathered. */
  protected beforeUpdate(): boolean {
    this.requireStatistics('TNT');
    if (this.inversesRefreshed) return true; // CurvatureSync has refreshed them
    const due = this.inversesDue();
    if (this.asyncInverses === false || this.shard !== null) {
      if (due) this.updateInverses();
      return true;
    }
    // asyncInverses: the pending refresh lands when ready (true) or at its step (a lag), and before the next starts
    const p = this.pendingInverses;
    if (p !== null) {
      const ready =
        this.asyncInverses === true ? native.tntAsyncStatus(this.asyncJob!) === 2 : this.stepCount >= p.swapAt;
      if (due || ready) this.landInverses();
    }
    if (due) {
      // the first refresh of a run without a warm start replaces the initial (damping I)^-1, which no statistics made
      if (this.stepCount === 0 && !this.warmStarted) this.updateInverses();
      else this.launchInverses();
    }
    return true;
  }

  /** Every parameter from its `.grad` (momentum, preconditioning, decay), every group in one native call. */
  protected update(): StepReport {
    const shapes: number[][] = [],
      mains: number[][] = [],
      auxes: number[][] = [];
    const a = this.stepArguments((p, g) => {
      const c = this.curvatureOf(p, g.damping);
      shapes.push(c.shape);
      mains.push(c.mains.map((f) => f._h));
      auxes.push(c.auxes.map((f) => f._h));
    });
    const r = native.tntPackedStep(
      a.params,
      a.momenta,
      shapes,
      mains,
      auxes,
      a.lr,
      a.mu,
      a.wd,
      this.blasKernels,
      this.klClip,
    );
    if (r.applied) {
      this.lastStepScale = r.scale ?? 1;
      this.lastStepQuadratic = r.quadratic ?? 0;
    }
    return r;
  }

  /** What to change when training with TNT diverges (fit() and the experiment runner add it to their message). */
  divergenceAdvice(): string {
    const g = this.paramGroups[0]!;
    const clip =
      this.klClip > 0
        ? `a smaller klClip (now ${this.klClip}, e.g. ${this.klClip / 10})`
        : 'the update-size control klClip (e.g. klClip: 1e-2; see docs/tnt.md)';
    return (
      `TNT: lower the learning rate (now ${g.lr}, e.g. ${g.lr / 3}), raise the damping (now ${g.damping}, e.g. ` +
      `${g.damping * 3}), or set ${clip}`
    );
  }

  /** The preconditioned direction m x_1 A_1 ... x_k A_k of a tensor shaped like `param`, with the current inverses. */
  precondition(param: Tensor, m: Tensor): Tensor {
    const g = this.groupOf(param);
    if (!g) throw new RangeError('precondition: the tensor is not a parameter of this optimizer');
    const c = this.curvatureOf(param, g.damping);
    return wrap(
      native.tntPackedDirection(
        m._h,
        c.shape,
        c.mains.map((f) => f._h),
        c.auxes.map((f) => f._h),
        this.blasKernels,
      ),
    );
  }

  /** The normalised factors U_i of a parameter (eq. 5), as new tensors. */
  normalizedFactors(param: Tensor): Tensor[] {
    const g = this.groupOf(param);
    if (!g) throw new RangeError('normalizedFactors: the tensor is not a parameter of this optimizer');
    const c = this.curvatureOf(param, g.damping);
    return native.tntNormalizedFactors([c.shape], [c.mains.map((f) => f._h)], [c.auxes.map((f) => f._h)])[0]!.map(wrap);
  }

  /**
   * Statistics H_i and inverses A_i of a parameter, unpacked into new tensors (full d x d, or d for a diagonal
   * factor) that the caller owns: dispose them, or call this inside tidy().
   */
  curvatureState(param: Tensor): { shape: number[]; factors: Tensor[]; inverses: Tensor[] } | undefined {
    const c = this.curvatureIfAny(param);
    if (!c) return undefined;
    const pairs = c.mains.map((m, i) => native.tntUnpack(m._h, c.auxes[i]!._h).map(wrap));
    return { shape: [...c.shape], factors: pairs.map((p) => p[0]!), inverses: pairs.map((p) => p[1]!) };
  }
}
