/**
 * Shampoo (Gupta, Koren & Singer, ICML 2018), as the TNT paper ran it as a baseline: TNT's Kronecker-factored
 * statistics and schedule, but of the *empirical* gradient (the true-label `.grad`, no sampled pass), and each factor
 * raised to the power -1/(2k) instead of inverted.
 *
 * For a parameter W viewed as a tensor of shape (d_1, ..., d_k) with gradient G:
 *
 *     H_i  <- (1 - w) H_i + w mat_i(G) mat_i(G)^T                      (every `statsEvery` steps, in step())
 *     R_i   = (H_i + epsilon I)^(-1/(2k))                               (every `inverseEvery` steps)
 *     m    <- momentum m + G
 *     W    <- W (1 - lr weightDecay) - lr (m x_1 R_1 x_2 ... x_k R_k)
 *
 * The roots come from a symmetric eigendecomposition, H = Q diag(l) Q^T, R = Q diag((max(l, 0) + epsilon)^(-1/(2k)))
 * Q^T (`rootMethod: 'eigh'`, the default), or from the coupled Newton iteration for the inverse p-th root that the
 * paper's Shampoo used (`'newton'`, Guo & Higham 2006, as in Anil et al.'s distributed Shampoo). Both batch every
 * same-size factor of the model into one native call. Unlike TNT's factors, H_i are not normalised: epsilon is
 * absolute.
 *
 * Moving-average weight (`statistics: 'convex' | 'authors'`), warm start, schedule, factor shapes (`maxFactorDim`,
 * `convFactors`), momentum, decoupled weight decay, the non-finite skip and the state dict are TNT's (lib/optim/tnt.ts).
 * The roots follow the first-T2 rule by default (every `statsEvery` steps while fewer than `inverseEvery` have run),
 * as the authors' CIFAR Shampoo (`shampoo-allVariables-filterFlattening-warmStart`); `earlyRefresh: false` computes
 * them only every `inverseEvery` steps from step 0, as their MNIST/FACES Shampoo (`...-warmStart-lessInverse`,
 * utils_shampoo.py, shampoo_inversion_per_variable).
 * A diagonal factor (dimension above `maxFactorDim`) takes the elementwise root. A failed root is retried in float64,
 * then keeps its last good value (see `lastRootReport`). A step whose gradient holds NaN or Infinity changes nothing,
 * statistics included.
 *
 * Options (defaults): lr (required), epsilon 1e-4 (Gupta et al.'s value; the paper tuned 3e-4 on MNIST and used
 * 0.01 on CIFAR), momentum 0.9, weightDecay 0, statDecay 0.9; statsEvery 1, inverseEvery 20, earlyRefresh true,
 * statistics 'convex', rootMethod 'eigh', factorDtype 'float32', maxFactorDim 4096, convFactors 'merge',
 * onNonFinite 'skip'.
 *
 * @example
 *   const opt = new optim.Shampoo(model.parameters(), { lr: 3e-4, epsilon: 3e-4 });
 *   await opt.warmStart(trainLoader, (x) => model.call(x), (out, y) => lik.loss(out, y));
 *   for (const [x, y] of loader) tidy(() => {
 *     lik.loss(model.call(x), y).backward();
 *     opt.step();                              // statistics from .grad (when due), roots (when due), update
 *     opt.zeroGrad();
 *   });
 */
import { native, type ShampooRootReport } from '../native.js';
import { ROOT_METHOD } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { keep, tidy } from '../scope.js';
import { eye, zeros } from '../creation.js';
import { grad as autogradGrad } from '../autograd.js';
import { is, typeError } from '../errors.js';
import { checkKnownOptions, type OptimizerStateDict, type ParamGroup, type Params } from './optimizer.js';
import { CurvatureOptimizer, type StatisticsRule } from './curvature.js';

export interface ShampooOptions {
  /** Learning rate. */
  lr: number;
  /** Added to every factor before its root is taken. Default 1e-4. */
  epsilon: number;
  /** Momentum on the raw gradient (no dampening). Default 0.9. */
  momentum: number;
  /** Decoupled weight decay: W <- W (1 - lr weightDecay). Default 0. */
  weightDecay: number;
  /** Decay of the statistics' moving average. Default 0.9. */
  statDecay: number;
}

export interface ShampooConfig {
  /** Gather statistics every this many steps. Default 1. */
  statsEvery?: number;
  /** Recompute the roots every this many steps. Default 20. */
  inverseEvery?: number;
  /** 'eigh' (default): symmetric eigendecomposition; 'newton': coupled Newton iteration. */
  rootMethod?: 'eigh' | 'newton';
  /** dtype of the factors and of the root computation. Default 'float32'. */
  factorDtype?: 'float32' | 'float64';
  /** Factor dimensions above this get a diagonal factor. Default 4096. */
  maxFactorDim?: number;
  /** Conv weights (out, in, kh, kw): 'merge' (default) gives factors (out, in, kh*kw); 'full' gives four. */
  convFactors?: 'merge' | 'full';
  /** What a non-finite gradient does: skip the step and count it (default), or throw. */
  onNonFinite?: 'skip' | 'throw';
  /** Moving-average rule: 'convex' (default) or 'authors' (their code's; see lib/optim/curvature.ts). */
  statistics?: StatisticsRule;
  /** The first-T2 rule: roots every `statsEvery` steps while fewer than `inverseEvery` have run. Default true;
   *  false: every `inverseEvery` steps from step 0 (the authors' MNIST Shampoo). */
  earlyRefresh?: boolean;
}

/** The loss of a warm-start batch from the model output and the batch's targets (true labels). */
export type WarmStartLoss =
  ((output: Tensor, target: Tensor) => Tensor) | { loss(output: Tensor, target: Tensor): Tensor };

const OPTIONS = ['lr', 'epsilon', 'momentum', 'weightDecay', 'statDecay'] as const;
const CONFIG = [
  'statsEvery',
  'inverseEvery',
  'rootMethod',
  'factorDtype',
  'maxFactorDim',
  'convFactors',
  'onNonFinite',
  'statistics',
  'earlyRefresh',
] as const;

interface Curvature {
  shape: number[];
  factors: Tensor[];
  roots: Tensor[];
}

export class Shampoo extends CurvatureOptimizer<ShampooOptions> {
  readonly rootMethod: 'eigh' | 'newton';
  readonly factorDtype: 'float32' | 'float64';
  readonly maxFactorDim: number;
  readonly onNonFinite: 'skip' | 'throw';
  private readonly convFactors: 'merge' | 'full';
  private readonly curvature = new Map<Tensor, Curvature>();
  /** What the last root refresh did (retries, failures, Newton's error). */
  lastRootReport: ShampooRootReport | null = null;

  constructor(params: Params<ShampooOptions>, options: Partial<ShampooOptions> & { lr: number } & ShampooConfig) {
    checkKnownOptions(options, [...OPTIONS, ...CONFIG], 'Shampoo');
    if (options === undefined || options === null) throw typeError('an options object with lr', 'options', options);
    const {
      statsEvery = 1,
      inverseEvery = 20,
      rootMethod = 'eigh',
      factorDtype = 'float32',
      maxFactorDim = 4096,
      convFactors = 'merge',
      onNonFinite = 'skip',
      statistics,
      earlyRefresh,
      ...rest
    } = options;
    super(params, { epsilon: 1e-4, momentum: 0.9, weightDecay: 0, statDecay: 0.9, ...rest } as ShampooOptions, {
      statsEvery,
      inverseEvery,
      statistics,
      earlyRefresh,
    });
    this.rootMethod = is.oneOf(rootMethod, 'rootMethod', ['eigh', 'newton'] as const);
    this.factorDtype = is.oneOf(factorDtype, 'factorDtype', ['float32', 'float64'] as const);
    this.maxFactorDim = is.positiveInteger(maxFactorDim, 'maxFactorDim');
    this.convFactors = is.oneOf(convFactors, 'convFactors', ['merge', 'full'] as const);
    this.onNonFinite = is.oneOf(onNonFinite, 'onNonFinite', ['skip', 'throw'] as const);
  }

  protected checkOptions(o: ShampooOptions, prefix: string): void {
    is.nonNegative(o.lr, `${prefix}lr`);
    is.positive(o.epsilon, `${prefix}epsilon`);
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
    if (s.reduce((a, b) => a * b, 1) <= 1) return [];
    if (s.length === 4 && this.convFactors === 'merge') return [s[0]!, s[1]!, s[2]! * s[3]!];
    return s;
  }

  /** The curvature state of a parameter, created on first use: zero factors, roots epsilon^(-1/(2k)) I. */
  private curvatureOf(p: Tensor, epsilon: number): Curvature {
    let c = this.curvature.get(p);
    if (c !== undefined) return c;
    const shape = this.shapeOf(p);
    const dtype = this.factorDtype;
    const scale = epsilon ** (-1 / (2 * shape.length));
    const factors = shape.map((d) =>
      keep(
        d > this.maxFactorDim ? zeros([d], { dtype, device: p.device }) : zeros([d, d], { dtype, device: p.device }),
      ),
    );
    const roots = shape.map((d) =>
      keep(
        tidy(() =>
          d > this.maxFactorDim
            ? zeros([d], { dtype: p.dtype, device: p.device }).add(scale)
            : eye(d, { dtype: p.dtype, device: p.device }).mul(scale),
        ),
      ),
    );
    c = { shape, factors, roots };
    this.curvature.set(p, c);
    return c;
  }

  private curvatureList(): { params: Tensor[]; shapes: number[][]; factors: number[][] } {
    const shapes: number[][] = [];
    const factors: number[][] = [];
    for (const g of this.paramGroups)
      for (const p of g.params) {
        const c = this.curvatureOf(p, g.epsilon);
        shapes.push(c.shape);
        factors.push(c.factors.map((f) => f._h));
      }
    return { params: this.params, shapes, factors };
  }

  /**
   * Folds gradients (one per parameter, in `params` order; null for none) into the factors' moving averages, in one
   * native call. Returns false, changing nothing, when any gradient holds a non-finite value.
   */
  updateStatistics(grads: (Tensor | null)[]): boolean {
    const { params, shapes, factors } = this.curvatureList();
    if (!Array.isArray(grads) || grads.length !== params.length)
      throw new RangeError(
        `updateStatistics: expected ${params.length} gradients (one per parameter) but received ${Array.isArray(grads) ? grads.length : typeof grads}`,
      );
    const hs = grads.map((g, i) => {
      if (g === null || g === undefined) return -1;
      if (!(g instanceof Tensor)) throw typeError('a Tensor or null', `grads[${i}]`, g);
      const ps = params[i]!.shape,
        gs = g.shape;
      if (ps.length !== gs.length || ps.some((d, k) => d !== gs[k]))
        throw new RangeError(
          `updateStatistics: grads[${i}] has shape [${gs.join(', ')}] but parameter ${i} has shape [${ps.join(', ')}]`,
        );
      return g._h;
    });
    const { keep, weight } = this.statisticsCoefficients();
    const r = native.shampooStatistics(hs, shapes, factors, weight, keep);
    if (r.skippedNonFinite > 0) return false;
    if (this.warmCount >= 0) this.warmCount++;
    else this.statsUpdates++;
    return true;
  }

  /** Recomputes every root (H_i + epsilon I)^(-1/(2k)) from the current statistics, batched, natively. */
  updateRoots(): ShampooRootReport {
    const total: ShampooRootReport = {
      computed: 0,
      retriedFloat64: 0,
      failed: 0,
      skippedNonFinite: 0,
      newtonMaxError: 0,
      newtonIterations: 0,
    };
    const method = ROOT_METHOD[this.rootMethod];
    for (const g of this.paramGroups) {
      const cs = g.params.map((p) => this.curvatureOf(p, g.epsilon));
      const r = native.shampooRoots(
        cs.map((c) => c.shape),
        cs.map((c) => c.factors.map((f) => f._h)),
        cs.map((c) => c.roots.map((f) => f._h)),
        g.epsilon,
        method,
      );
      total.computed += r.computed;
      total.retriedFloat64 += r.retriedFloat64;
      total.failed += r.failed;
      total.skippedNonFinite += r.skippedNonFinite;
      total.newtonMaxError = Math.max(total.newtonMaxError, r.newtonMaxError);
      total.newtonIterations = Math.max(total.newtonIterations, r.newtonIterations);
    }
    this.lastRootReport = total;
    return total;
  }

  /**
   * Warm start: one pass over `batches` ([inputs, targets, ...]) at the current weights, no updates; the statistics
   * become the plain running mean of the true-label gradients' statistics over those minibatches (`.grad` untouched).
   * A batch whose gradient is not finite is left out (and counted in skippedStatistics). Returns the batches used.
   */
  async warmStart(
    batches: Iterable<[Tensor, Tensor, ...unknown[]]> | AsyncIterable<[Tensor, Tensor, ...unknown[]]>,
    forward: (x: Tensor) => Tensor,
    lossFn: WarmStartLoss,
  ): Promise<number> {
    is.function(forward, 'forward');
    const loss =
      typeof lossFn === 'function'
        ? lossFn
        : lossFn !== null && typeof lossFn === 'object' && typeof lossFn.loss === 'function'
          ? lossFn.loss.bind(lossFn)
          : null;
    if (loss === null)
      throw typeError('a loss function (output, target) => Tensor or an object with loss()', 'lossFn', lossFn);
    const params = this.params;
    for (const c of this.curvature.values()) for (const f of c.factors) f.zero_();
    this.warmCount = 0;
    try {
      for await (const b of batches as AsyncIterable<[Tensor, Tensor, ...unknown[]]>) {
        if (!Array.isArray(b) || !(b[0] instanceof Tensor) || !(b[1] instanceof Tensor))
          throw typeError('[inputs, targets] batches', 'batches', b);
        tidy(() => {
          const l = loss(forward(b[0]), b[1]);
          if (!this.updateStatistics(autogradGrad(l, params, { allowUnused: true }))) this.skippedStatistics++;
        });
      }
      const n = this.warmCount;
      if (n === 0) throw new RangeError('warmStart: batches yielded no usable batch');
      this.warmStarted = true;
      this.updateRoots();
      return n;
    } finally {
      this.warmCount = -1;
    }
  }

  /** Gathers statistics from `.grad` and refreshes the roots when due, then updates every parameter. */
  override step<L = undefined>(closure?: () => L): L | undefined {
    const loss = super.step(closure);
    this.stepCount++;
    return loss;
  }

  /** Every group is updated by one native call, made for group 0, so a skipped step leaves every group as it was. */
  protected stepGroup(_group: ParamGroup<ShampooOptions>, index: number): void {
    if (index !== 0) return;
    if (this.statisticsDue()) {
      if (!this.updateStatistics(this.params.map((p) => p.grad))) return this.skipStep('Shampoo', 1);
    }
    if (this.inversesDue() && (this.statsUpdates > 0 || this.warmStarted)) this.updateRoots();
    const shapes: number[][] = [],
      roots: number[][] = [];
    const a = this.stepArguments((p, g) => {
      const c = this.curvatureOf(p, g.epsilon);
      shapes.push(c.shape);
      roots.push(c.roots.map((f) => f._h));
    });
    // TNT's step: m <- mu m + g, p <- p (1 - lr wd) - lr (m x_1 R_1 ... x_k R_k); all or nothing.
    const r = native.kroneckerStep(a.params, a.momenta, shapes, roots, a.lr, a.mu, a.wd);
    if (r.skippedNonFinite > 0) this.skipStep('Shampoo', r.reason);
  }

  /** The preconditioned direction m x_1 R_1 ... x_k R_k of a tensor shaped like `param`, with the current roots. */
  precondition(param: Tensor, m: Tensor): Tensor {
    const g = this.paramGroups.find((gr) => gr.params.includes(param));
    if (!g) throw new RangeError('precondition: the tensor is not a parameter of this optimizer');
    const c = this.curvatureOf(param, g.epsilon);
    return wrap(
      native.tntDirection(
        m._h,
        c.shape,
        c.roots.map((f) => f._h),
      ),
    );
  }

  /** Factors and roots of a parameter (the optimizer's own tensors: read, do not dispose). */
  curvatureState(param: Tensor): { shape: number[]; factors: Tensor[]; roots: Tensor[] } | undefined {
    const c = this.curvature.get(param);
    return c && { shape: [...c.shape], factors: [...c.factors], roots: [...c.roots] };
  }

  /** Bytes held by the optimizer's state (factors, roots, momentum). */
  stateBytes(): number {
    const size = (t: Tensor): number =>
      t.numel() *
      (t.dtype === 'float64' || t.dtype === 'int64' ? 8 : t.dtype === 'float16' || t.dtype === 'bfloat16' ? 2 : 4);
    let b = 0;
    for (const c of this.curvature.values()) for (const t of [...c.factors, ...c.roots]) b += size(t);
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) b += size(v);
    return b;
  }

  override stateDict(): OptimizerStateDict & { shampoo: Record<string, number | boolean> } {
    const sd = super.stateDict();
    this.params.forEach((p, i) => {
      const c = this.curvature.get(p);
      if (!c) return;
      const s = (sd.state[i] ??= {});
      c.factors.forEach((f, k) => (s[`factor${k}`] = f));
      c.roots.forEach((f, k) => (s[`root${k}`] = f));
    });
    return {
      ...sd,
      shampoo: this.counters(),
    };
  }

  override loadStateDict(sd: OptimizerStateDict & { shampoo?: Record<string, number | boolean> }): void {
    if (sd === null || typeof sd !== 'object' || typeof sd.state !== 'object' || sd.state === null)
      throw typeError('an optimizer state dict ({state, paramGroups, shampoo})', 'stateDict', sd);
    const params = this.params;
    const curv: [Tensor, Tensor[], Tensor[]][] = [];
    const base: Record<number, Record<string, Tensor | number>> = {};
    for (const [key, s] of Object.entries(sd.state)) {
      const rest: Record<string, Tensor | number> = {};
      const fs: Tensor[] = [],
        rs: Tensor[] = [];
      for (const [name, v] of Object.entries(s)) {
        const m = /^(factor|root)(\d+)$/.exec(name);
        if (!m) rest[name] = v;
        else if (!(v instanceof Tensor)) throw typeError('a Tensor', `stateDict.state[${key}].${name}`, v);
        else (m[1] === 'factor' ? fs : rs)[Number(m[2])] = v;
      }
      base[Number(key)] = rest;
      if (fs.length || rs.length) {
        const p = params[Number(key)];
        if (!p)
          throw new RangeError(`loaded state dict has state for parameter ${key}, which no parameter group lists`);
        const shape = this.shapeOf(p);
        if (fs.length !== shape.length || rs.length !== shape.length)
          throw new RangeError(
            `loaded state dict: parameter ${key} has ${fs.length} factors and ${rs.length} roots but its factor shape [${shape.join(', ')}] needs ${shape.length}`,
          );
        shape.forEach((d, k) => {
          for (const [what, t] of [
            ['factor', fs[k]],
            ['root', rs[k]],
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
        curv.push([p, fs, rs]);
      }
    }
    const applyCounters = this.checkCounters(sd.shampoo, 'stateDict.shampoo');
    super.loadStateDict({ state: base, paramGroups: sd.paramGroups });
    // Copy before freeing: `sd` may hold this optimizer's own factors (opt.loadStateDict(opt.stateDict())).
    const fresh = curv.map(
      ([p, fs, rs]) =>
        [
          p,
          {
            shape: this.shapeOf(p),
            factors: fs.map((f) => keep(f.to({ dtype: this.factorDtype, device: p.device, copy: true }))),
            roots: rs.map((f) => keep(f.to({ dtype: p.dtype, device: p.device, copy: true }))),
          },
        ] as const,
    );
    for (const c of this.curvature.values()) for (const t of [...c.factors, ...c.roots]) t.dispose();
    this.curvature.clear();
    for (const [p, c] of fresh) this.curvature.set(p, c);
    applyCounters();
  }

  override dispose(): void {
    super.dispose();
    for (const c of this.curvature.values()) for (const t of [...c.factors, ...c.roots]) t.dispose();
    this.curvature.clear();
  }
}
