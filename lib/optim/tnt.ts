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
import { native, type InverseReport } from '../native.js';
import { INVERSE_METHOD } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { keep, tidy } from '../scope.js';
import { eye, zeros } from '../creation.js';
import { grad as autogradGrad } from '../autograd.js';
import { is, typeError } from '../errors.js';
import { checkKnownOptions, type OptimizerStateDict, type ParamGroup, type Params } from './optimizer.js';
import { CurvatureOptimizer, type StatisticsRule } from './curvature.js';

import { isSampleableLikelihood, type SampleableLikelihood } from '../likelihoods.js';
/** What TNT needs of a likelihood (lib/likelihoods.ts): its loss and samples from its predictive distribution. */
export type { SampleableLikelihood };

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
] as const;

/** A parameter's packed curvature state (see the file comment and native/optim/tnt.cc). */
interface Curvature {
  shape: number[];
  /** Full factor: P (d x d), A_i in the upper triangle and H_i's strict lower triangle; diagonal factor: diag(H_i). */
  mains: Tensor[];
  /** Full factor: diag(H_i); diagonal factor: diag(A_i). */
  auxes: Tensor[];
}

export class TNT extends CurvatureOptimizer<TNTOptions> {
  readonly factorDtype: 'float32' | 'float64';
  readonly inverseMethod: 'cholesky' | 'lu';
  readonly maxFactorDim: number;
  readonly onNonFinite: 'skip' | 'throw';
  /** Whether the packed kernels call the BLAS directly (the option, and the BLAS exports them). */
  readonly blasKernels: boolean;
  private readonly convFactors: 'merge' | 'full';
  private readonly factorShapeFn?: (param: Tensor) => number[];
  private readonly curvature = new Map<Tensor, Curvature>();
  /** What the last inverse refresh did (retries, failures). */
  lastInverseReport: InverseReport | null = null;

  constructor(params: Params<TNTOptions>, options: Partial<TNTOptions> & { lr: number } & TNTConfig) {
    checkKnownOptions(options, [...OPTIONS, ...CONFIG], 'TNT');
    if (options === undefined || options === null) throw typeError('an options object with lr', 'options', options);
    const {
      statsEvery = 1,
      inverseEvery = 20,
      factorDtype = 'float32',
      inverseMethod = 'cholesky',
      maxFactorDim = 4096,
      convFactors = 'merge',
      factorShape,
      onNonFinite = 'skip',
      blasKernels = true,
      statistics,
      earlyRefresh,
      ...rest
    } = options;
    super(params, { damping: 0.1, momentum: 0.9, weightDecay: 0, statDecay: 0.9, ...rest } as TNTOptions, {
      statsEvery,
      inverseEvery,
      statistics,
      earlyRefresh,
    });
    this.factorDtype = is.oneOf(factorDtype, 'factorDtype', ['float32', 'float64'] as const);
    this.inverseMethod = is.oneOf(inverseMethod, 'inverseMethod', ['cholesky', 'lu'] as const);
    this.maxFactorDim = is.positiveInteger(maxFactorDim, 'maxFactorDim');
    this.convFactors = is.oneOf(convFactors, 'convFactors', ['merge', 'full'] as const);
    if (factorShape !== undefined)
      this.factorShapeFn = is.function(factorShape, 'factorShape') as (p: Tensor) => number[];
    this.onNonFinite = is.oneOf(onNonFinite, 'onNonFinite', ['skip', 'throw'] as const);
    this.blasKernels = is.boolean(blasKernels, 'blasKernels') && native.tntBlasAvailable();
  }

  protected checkOptions(o: TNTOptions, prefix: string): void {
    is.nonNegative(o.lr, `${prefix}lr`);
    is.positive(o.damping, `${prefix}damping`);
    is.inRange(o.momentum, `${prefix}momentum`, 0, 1, { hiOpen: true });
    is.nonNegative(o.weightDecay, `${prefix}weightDecay`);
    is.inRange(o.statDecay, `${prefix}statDecay`, 0, 1, { hiOpen: true });
  }

  /** Every parameter, over all groups, in order. */
  get params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  private shapeOf(p: Tensor): number[] {
    const s = p.shape;
    const n = s.reduce((a, b) => a * b, 1);
    let f: number[];
    if (this.factorShapeFn) {
      f = this.factorShapeFn(p);
      if (!Array.isArray(f) || f.some((d) => !Number.isInteger(d) || d < 1))
        throw typeError('an array of positive integers', 'factorShape(param)', f);
      if (f.length > 0 && f.reduce((a, b) => a * b, 1) !== n)
        throw new RangeError(
          `factorShape(param) returned [${f.join(', ')}], which does not hold the ${n} elements of a parameter of shape [${s.join(', ')}]`,
        );
      return f;
    }
    if (n <= 1) return [];
    if (s.length === 4 && this.convFactors === 'merge') return [s[0]!, s[1]!, s[2]! * s[3]!];
    return s;
  }

  /** The dtype of a parameter's packed state: the factor dtype, or float64 for a float64 parameter. */
  private stateDtype(p: Tensor): 'float32' | 'float64' {
    return p.dtype === 'float64' ? 'float64' : this.factorDtype;
  }

  /** The curvature state of a parameter, created on first use: zero statistics, inverses (0 + damping I)^-1. */
  private curvatureOf(p: Tensor, damping: number): Curvature {
    let c = this.curvature.get(p);
    if (c !== undefined) return c;
    const shape = this.shapeOf(p);
    const o = { dtype: this.stateDtype(p), device: p.device };
    const full = (d: number): boolean => d <= this.maxFactorDim;
    const mains = shape.map((d) => keep(full(d) ? tidy(() => eye(d, o).mul(1 / damping)) : zeros([d], o)));
    const auxes = shape.map((d) => keep(full(d) ? zeros([d], o) : tidy(() => zeros([d], o).add(1 / damping))));
    c = { shape, mains, auxes };
    this.curvature.set(p, c);
    return c;
  }

  private curvatureList(): { params: Tensor[]; shapes: number[][]; mains: number[][]; auxes: number[][] } {
    const params = this.params;
    const shapes: number[][] = [];
    const mains: number[][] = [];
    const auxes: number[][] = [];
    for (const g of this.paramGroups)
      for (const p of g.params) {
        const c = this.curvatureOf(p, g.damping);
        shapes.push(c.shape);
        mains.push(c.mains.map((f) => f._h));
        auxes.push(c.auxes.map((f) => f._h));
      }
    return { params, shapes, mains, auxes };
  }

  /**
   * Folds sampled gradients (one per parameter, in `params` order; null for a parameter that got none) into the
   * factors' moving averages, in one native call. A non-finite gradient is left out and counted.
   */
  updateStatistics(sampledGrads: (Tensor | null)[]): void {
    const { params, shapes, mains, auxes } = this.curvatureList();
    if (!Array.isArray(sampledGrads) || sampledGrads.length !== params.length)
      throw new RangeError(
        `updateStatistics: expected ${params.length} gradients (one per parameter) but received ${Array.isArray(sampledGrads) ? sampledGrads.length : typeof sampledGrads}`,
      );
    const hs = sampledGrads.map((g, i) => {
      if (g === null || g === undefined) return -1;
      if (!(g instanceof Tensor)) throw typeError('a Tensor or null', `sampledGrads[${i}]`, g);
      const ps = params[i]!.shape,
        gs = g.shape;
      if (ps.length !== gs.length || ps.some((d, k) => d !== gs[k]))
        throw new RangeError(
          `updateStatistics: sampledGrads[${i}] has shape [${gs.join(', ')}] but parameter ${i} has shape [${ps.join(', ')}]`,
        );
      return g._h;
    });
    const { keep, weight } = this.statisticsCoefficients();
    const r = native.tntStatistics(hs, shapes, mains, auxes, weight, this.blasKernels, keep);
    this.skippedStatistics += r.skippedNonFinite;
    if (this.warmCount >= 0) this.warmCount++;
    else this.statsUpdates++;
  }

  /** Recomputes every (U_i + damping I)^-1 from the current statistics: batched Cholesky (or LU), natively. */
  updateInverses(): InverseReport {
    const total: InverseReport = { inverted: 0, retriedFloat64: 0, retriedDamping: 0, failed: 0, skippedNonFinite: 0 };
    for (const g of this.paramGroups) {
      const cs = g.params.map((p) => this.curvatureOf(p, g.damping));
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
    return total;
  }

  /**
   * The sampled backward pass: draws y from the likelihood's predictive distribution at `output`, differentiates
   * the sampled loss with respect to every parameter (graph retained, `.grad` untouched) and folds the result into
   * the statistics. Does nothing (returns false) when statistics are not due this step, unless `force`.
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
      const y = likelihood.sample(output);
      const loss = likelihood.loss(output, y);
      const grads = autogradGrad(loss, params, { retainGraph: true, allowUnused: true });
      this.updateStatistics(grads);
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
    for (const c of this.curvature.values())
      c.mains.forEach((m, i) => {
        if (m.ndim === 1) m.zero_();
        else tidy(() => m.copy_(m.triu()));
        if (m.ndim === 2) c.auxes[i]!.zero_();
      });
    this.warmCount = 0;
    try {
      for await (const b of batches as AsyncIterable<[Tensor, ...unknown[]] | Tensor>) {
        const x = b instanceof Tensor ? b : b[0];
        tidy(() => this.sampledBackward(forward(x), likelihood, { force: true }));
      }
      const n = this.warmCount;
      if (n === 0) throw new RangeError('warmStart: batches yielded nothing');
      this.warmStarted = true;
      this.updateInverses();
      return n;
    } finally {
      this.warmCount = -1;
    }
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

  /**
   * Refreshes the inverses when due, then updates every parameter from its `.grad` (momentum, preconditioning, decay),
   * every group in one native call. Throws a TorchError 'NO_STATISTICS' when statistics were never gathered.
   */
  override step<L = undefined>(closure?: () => L): L | undefined {
    const loss = super.step(closure);
    this.stepCount++;
    return loss;
  }

  /** Every group is updated by one native call, made for group 0, so a skipped step leaves every group as it was. */
  protected stepGroup(_group: ParamGroup<TNTOptions>, index: number): void {
    if (index !== 0) return;
    this.requireStatistics('TNT');
    if (!this.inversesRefreshed && this.inversesDue()) this.updateInverses(); // CurvatureSync may have refreshed them
    const shapes: number[][] = [],
      mains: number[][] = [],
      auxes: number[][] = [];
    const a = this.stepArguments((p, g) => {
      const c = this.curvatureOf(p, g.damping);
      shapes.push(c.shape);
      mains.push(c.mains.map((f) => f._h));
      auxes.push(c.auxes.map((f) => f._h));
    });
    const r = native.tntPackedStep(a.params, a.momenta, shapes, mains, auxes, a.lr, a.mu, a.wd, this.blasKernels);
    if (r.skippedNonFinite > 0) this.skipStep('TNT', r.reason);
  }

  /** The preconditioned direction m x_1 A_1 ... x_k A_k of a tensor shaped like `param`, with the current inverses. */
  precondition(param: Tensor, m: Tensor): Tensor {
    const g = this.paramGroups.find((gr) => gr.params.includes(param));
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
    const g = this.paramGroups.find((gr) => gr.params.includes(param));
    if (!g) throw new RangeError('normalizedFactors: the tensor is not a parameter of this optimizer');
    const c = this.curvatureOf(param, g.damping);
    return native.tntNormalizedFactors([c.shape], [c.mains.map((f) => f._h)], [c.auxes.map((f) => f._h)])[0]!.map(wrap);
  }

  /**
   * Statistics H_i and inverses A_i of a parameter, unpacked into new tensors (full d x d, or d for a diagonal
   * factor) that the caller owns: dispose them, or call this inside tidy().
   */
  curvatureState(param: Tensor): { shape: number[]; factors: Tensor[]; inverses: Tensor[] } | undefined {
    const c = this.curvature.get(param);
    if (!c) return undefined;
    const pairs = c.mains.map((m, i) => native.tntUnpack(m._h, c.auxes[i]!._h).map(wrap));
    return { shape: [...c.shape], factors: pairs.map((p) => p[0]!), inverses: pairs.map((p) => p[1]!) };
  }

  /** Bytes held by the optimizer's state (packed factors and inverses, momentum). */
  stateBytes(): number {
    const size = (t: Tensor): number =>
      t.numel() *
      (t.dtype === 'float64' || t.dtype === 'int64' ? 8 : t.dtype === 'float16' || t.dtype === 'bfloat16' ? 2 : 4);
    let b = 0;
    for (const c of this.curvature.values()) for (const t of [...c.mains, ...c.auxes]) b += size(t);
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) b += size(v);
    return b;
  }

  override stateDict(): OptimizerStateDict & { tnt: Record<string, number | boolean> } {
    const sd = super.stateDict();
    this.params.forEach((p, i) => {
      const c = this.curvature.get(p);
      if (!c) return;
      const s = (sd.state[i] ??= {});
      // unpacked: new tensors (checkpoint.save frees them; call stateDict() inside tidy() otherwise)
      const u = this.curvatureState(p)!;
      u.factors.forEach((f, k) => (s[`factor${k}`] = f));
      u.inverses.forEach((f, k) => (s[`inverse${k}`] = f));
    });
    return {
      ...sd,
      tnt: this.counters(),
    };
  }

  override loadStateDict(sd: OptimizerStateDict & { tnt?: Record<string, number | boolean> }): void {
    if (sd === null || typeof sd !== 'object' || typeof sd.state !== 'object' || sd.state === null)
      throw typeError('an optimizer state dict ({state, paramGroups, tnt})', 'stateDict', sd);
    const params = this.params;
    const curv: [Tensor, Tensor[], Tensor[]][] = [];
    const base: Record<number, Record<string, Tensor | number>> = {};
    for (const [key, s] of Object.entries(sd.state)) {
      const rest: Record<string, Tensor | number> = {};
      const fs: Tensor[] = [],
        is_: Tensor[] = [];
      for (const [name, v] of Object.entries(s)) {
        const m = /^(factor|inverse)(\d+)$/.exec(name);
        if (!m) rest[name] = v;
        else if (!(v instanceof Tensor)) throw typeError('a Tensor', `stateDict.state[${key}].${name}`, v);
        else (m[1] === 'factor' ? fs : is_)[Number(m[2])] = v;
      }
      base[Number(key)] = rest;
      if (fs.length || is_.length) {
        const p = params[Number(key)];
        if (!p)
          throw new RangeError(`loaded state dict has state for parameter ${key}, which no parameter group lists`);
        const shape = this.shapeOf(p);
        if (fs.length !== shape.length || is_.length !== shape.length)
          throw new RangeError(
            `loaded state dict: parameter ${key} has ${fs.length} factors and ${is_.length} inverses but its factor shape [${shape.join(', ')}] needs ${shape.length}`,
          );
        shape.forEach((d, k) => {
          for (const [what, t] of [
            ['factor', fs[k]],
            ['inverse', is_[k]],
          ] as const) {
            const ts = t!.shape;
            const ok =
              (ts.length === 2 && ts[0] === d && ts[1] === d) ||
              (ts.length === 1 && ts[0] === d && d > this.maxFactorDim);
            if (!ok)
              throw new RangeError(
                `loaded state dict: state[${key}].${what}${k} has shape [${ts.join(', ')}] but the factor needs [${d}, ${d}]`,
              );
          }
        });
        curv.push([p, fs, is_]);
      }
    }
    const applyCounters = this.checkCounters(sd.tnt, 'stateDict.tnt');
    super.loadStateDict({ state: base, paramGroups: sd.paramGroups });
    for (const c of this.curvature.values()) for (const t of [...c.mains, ...c.auxes]) t.dispose();
    this.curvature.clear();
    for (const [p, fs, is_] of curv) {
      const g = this.paramGroups.find((gr) => gr.params.includes(p))!;
      const c = this.curvatureOf(p, g.damping);
      fs.forEach((f, k) =>
        tidy(() =>
          native.tntPack(
            f.to({ device: p.device })._h,
            is_[k]!.to({ device: p.device })._h,
            c.mains[k]!._h,
            c.auxes[k]!._h,
          ),
        ),
      );
    }
    applyCounters();
  }

  override dispose(): void {
    super.dispose();
    for (const c of this.curvature.values()) for (const t of [...c.mains, ...c.auxes]) t.dispose();
    this.curvature.clear();
  }
}
