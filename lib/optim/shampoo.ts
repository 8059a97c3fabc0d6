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
import { native, type ShampooRootReport, type StepReport } from '../native.js';
import { ROOT_METHOD } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { tidy } from '../scope.js';
import { eye, zeros } from '../creation.js';
import { grad as autogradGrad } from '../autograd.js';
import { is, typeError } from '../errors.js';
import type { Params, StateEntry } from './optimizer.js';
import { KroneckerOptimizer, gradientHandles, splitOptions, type StatisticsRule } from './kronecker/optimizer.js';
import { factorShape } from './kronecker/shapes.js';

/** Per-group options of optim.Shampoo: lr, epsilon, momentum, weightDecay, statDecay. */
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

/** Configuration of optim.Shampoo: the statistics and root schedule (statsEvery, inverseEvery, earlyRefresh, statistics), root method, factor dtype, size limit, conv factors, onNonFinite. */
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

/** A parameter's factors H_i and roots R_i: entries `factor<i>` and `root<i>` of its `state`, as in a state dict. */
interface Curvature {
  shape: number[];
  factors: Tensor[];
  roots: Tensor[];
}

/** Shampoo (Gupta et al. 2018): Kronecker-factored preconditioning by inverse roots of the gradient statistics, natively. See docs/shampoo-kfac.md. */
export class Shampoo extends KroneckerOptimizer<ShampooOptions, 'shampoo'> {
  readonly rootMethod: 'eigh' | 'newton';
  readonly maxFactorDim: number;
  private readonly convFactors: 'merge' | 'full';
  /** What the last root refresh did (retries, failures, Newton's error). */
  lastRootReport: ShampooRootReport | null = null;

  constructor(params: Params<ShampooOptions>, options: Partial<ShampooOptions> & { lr: number } & ShampooConfig) {
    const {
      statsEvery = 1,
      inverseEvery = 20,
      rootMethod = 'eigh',
      factorDtype,
      maxFactorDim = 4096,
      convFactors = 'merge',
      onNonFinite,
      statistics,
      earlyRefresh,
      ...rest
    } = splitOptions(options, [...OPTIONS, ...CONFIG], 'Shampoo');
    super(params, { epsilon: 1e-4, momentum: 0.9, weightDecay: 0, statDecay: 0.9, ...rest } as ShampooOptions, {
      statsEvery,
      inverseEvery,
      statistics,
      earlyRefresh,
      factorDtype,
      onNonFinite,
    });
    this.rootMethod = is.oneOf(rootMethod, 'rootMethod', ['eigh', 'newton'] as const);
    this.maxFactorDim = is.positiveInteger(maxFactorDim, 'maxFactorDim');
    this.convFactors = is.oneOf(convFactors, 'convFactors', ['merge', 'full'] as const);
  }

  protected get label(): 'Shampoo' {
    return 'Shampoo';
  }

  protected override get dampingOption(): string {
    return 'epsilon';
  }

  protected override factorShapeOf(p: Tensor): number[] {
    return factorShape(p, this.convFactors);
  }

  /** The curvature state of a parameter, made on first use: zero factors, roots epsilon^(-1/(2k)) I. */
  private curvatureOf(p: Tensor, epsilon: number): Curvature {
    const shape = this.shapeOf(p);
    const scale = epsilon ** (-1 / (2 * shape.length));
    const fo = { dtype: this.factorDtype, device: p.device };
    const ro = { dtype: p.dtype, device: p.device };
    const diag = (d: number): boolean => d > this.maxFactorDim;
    this.stateOf(p); // a parameter without factors has (empty) state too: curvatureState() reports its shape []
    const factors = shape.map((d, i) => this.stateTensor(p, `factor${i}`, () => zeros(diag(d) ? [d] : [d, d], fo)));
    const roots = shape.map((d, i) =>
      this.stateTensor(p, `root${i}`, () => tidy(() => (diag(d) ? zeros([d], ro).add(scale) : eye(d, ro).mul(scale)))),
    );
    return { shape, factors, roots };
  }

  private curvatureIfAny(p: Tensor): Curvature | undefined {
    const s = this.state.get(p);
    if (s === undefined) return undefined;
    const shape = this.shapeOf(p);
    if (shape.some((_, i) => !(s[`factor${i}`] instanceof Tensor))) return undefined;
    return {
      shape,
      factors: shape.map((_, i) => s[`factor${i}`] as Tensor),
      roots: shape.map((_, i) => s[`root${i}`] as Tensor),
    };
  }

  /** A parameter's factor<i> (factor dtype) and root<i> (the parameter's dtype), d x d or diagonal d. */
  protected override stateEntries(p: Tensor): Record<string, StateEntry> {
    const out: Record<string, StateEntry> = {};
    const dims = (d: number): number[] => (d > this.maxFactorDim ? [d] : [d, d]);
    const shape = this.shapeOf(p);
    shape.forEach((d, i) => (out[`factor${i}`] = { shape: dims(d), dtype: this.factorDtype }));
    shape.forEach((d, i) => (out[`root${i}`] = { shape: dims(d), dtype: p.dtype }));
    return out;
  }

  private curvatureList(): { params: Tensor[]; shapes: number[][]; factors: number[][] } {
    const shapes: number[][] = [];
    const factors: number[][] = [];
    const params: Tensor[] = [];
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (this.shard !== null && !this.shard.has(p)) continue; // another rank's (distributed.CurvatureSync)
        const c = this.curvatureOf(p, g.epsilon);
        params.push(p);
        shapes.push(c.shape);
        factors.push(c.factors.map((f) => f._h));
      }
    return { params, shapes, factors };
  }

  /**
   * Folds gradients (one per parameter, in `params` order; null for none) into the factors' moving averages, in one
   * native call. Returns false, changing nothing, when any gradient holds a non-finite value.
   */
  updateStatistics(grads: (Tensor | null)[]): boolean {
    let hs = gradientHandles(grads, this.params, 'grads');
    const { params, shapes, factors } = this.curvatureList();
    if (this.shard !== null) {
      const all = this.params;
      hs = params.map((p) => hs[all.indexOf(p)]!);
    }
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
      const owned = this.shard === null ? g.params : g.params.filter((p) => this.shard!.has(p));
      if (owned.length === 0) continue;
      const cs = owned.map((p) => this.curvatureOf(p, g.epsilon));
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

  protected refresh(): void {
    this.updateRoots();
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
    return this.warmLoop(
      batches,
      () => {
        for (const p of params) for (const f of this.curvatureIfAny(p)?.factors ?? []) f.zero_();
      },
      (b) => {
        if (!Array.isArray(b) || !(b[0] instanceof Tensor) || !(b[1] instanceof Tensor))
          throw typeError('[inputs, targets] batches', 'batches', b);
        tidy(() => {
          const l = loss(forward(b[0]), b[1]);
          if (!this.updateStatistics(autogradGrad(l, params, { allowUnused: true }))) this.skippedStatistics++;
        });
      },
      'warmStart: batches yielded no usable batch',
    );
  }

  /** Gathers statistics from `.grad` and refreshes the roots when due (a non-finite gradient skips the step). */
  protected beforeUpdate(): boolean {
    if (this.skipNonFinite) {
      // (CurvatureSync: a gradient of another rank's share is not finite; one process would change nothing either)
      this.skipStep('Shampoo', 1);
      return false;
    }
    if (this.statisticsDue() && !this.updateStatistics(this.params.map((p) => p.grad))) {
      this.skipStep('Shampoo', 1);
      return false;
    }
    if (this.inversesDue() && (this.statsUpdates > 0 || this.warmStarted)) this.updateRoots();
    return true;
  }

  /** The family's step: m <- mu m + g, p <- p (1 - lr wd) - lr (m x_1 R_1 ... x_k R_k); all or nothing. */
  protected update(): StepReport {
    const shapes: number[][] = [],
      roots: number[][] = [];
    const a = this.stepArguments((p, g) => {
      const c = this.curvatureOf(p, g.epsilon);
      shapes.push(c.shape);
      roots.push(c.roots.map((f) => f._h));
    });
    return native.kroneckerStep(a.params, a.momenta, shapes, roots, a.lr, a.mu, a.wd);
  }

  /** The preconditioned direction m x_1 R_1 ... x_k R_k of a tensor shaped like `param`, with the current roots. */
  precondition(param: Tensor, m: Tensor): Tensor {
    const g = this.groupOf(param);
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
    const c = this.curvatureIfAny(param);
    return c && { shape: [...c.shape], factors: [...c.factors], roots: [...c.roots] };
  }
}
