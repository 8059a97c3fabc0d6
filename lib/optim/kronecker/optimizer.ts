/**
 * The Kronecker-factored family (TNT, Shampoo, KFAC): what the three share, so that each of lib/optim/tnt.ts,
 * shampoo.ts and kfac.ts holds only what differs (its statistics, its inverse or root, its native step):
 * - the options every one takes and their checks (lr, the damping, momentum, weightDecay, statDecay; statsEvery,
 *   inverseEvery, statistics, earlyRefresh, factorDtype, onNonFinite), and the factor shape of a parameter;
 * - the T1/T2 schedule (with or without the first-T2 rule) and the moving-average rule of the statistics;
 * - the state: per parameter, in `state` as PyTorch's optimizer.state[p], a lazily made momentum buffer and the
 *   parameter's curvature tensors (factors, inverses or roots), so that stateDict() and loadStateDict() are the
 *   base Optimizer's, each optimizer declaring its curvature entries (`stateEntries`) and, where it packs them,
 *   how they read in a state dict (`exportState` / `importState`); the counters travel under the optimizer's own
 *   key (`tnt`, `shampoo`, `kfac`);
 * - the warm start loop, stateBytes(), and the one-call step (every group in one native call, all or nothing).
 *
 * Moving average, `statistics: 'convex'` (the default): H <- (1 - w) H + w S, with w the plain running-mean weight
 * 1/(j+1) for the j-th batch of a warm start, 1 - statDecay after a warm start, and max(1/(t+1), 1 - statDecay)
 * without one, t the number of statistics updates so far (from 0): a weighted mean of the statistics seen, whose
 * weights sum to 1.
 *
 * `statistics: 'authors'` is the rule of the authors' code (renyiryry/tnt_neurips_2021), `params['i']` there being
 * the iteration, i.e. `stepCount` here, not the number of statistics updates:
 * - TNT and Shampoo (utils_shampoo.py, shampoo_kron_matrices_per_variable): without a warm start
 *   H <- statDecay H + max(1/(i+1), 1 - statDecay) S, not convex (the weights sum to 1.4 at i = 1 with T1 = 1);
 *   after a warm start no statistics at step 0, then H <- statDecay H + (1 - statDecay) S.
 * - KFAC (utils_kfac.py, kfac_update): after a warm start the same as 'convex' (statistics are folded at step 0
 *   with weight 1 - statDecay); without one the convex weight max(1/(i+1), 1 - statDecay) with i the iteration
 *   (their `kfac-no-max-no-LM` branch, which their driver never reaches: kfac_if_inverse exits for it). With
 *   statsEvery = 1 that is 'convex' exactly.
 * Every run of the paper used a warm start (utils_git/jupyter_functions.py names only '-warmStart' algorithms).
 */
import { TorchError, is, typeError } from '../../errors.js';
import { Tensor } from '../../tensor.js';
import { keep } from '../../scope.js';
import { zerosLike } from '../../creation.js';
import type { SampleableLikelihood } from '../../likelihoods.js';
import type { StepReport } from '../../native.js';
import {
  Optimizer,
  checkKnownOptions,
  type BaseOptions,
  type OptimizerStateDict,
  type ParamGroup,
  type Params,
  type StateSchema,
} from '../optimizer.js';

/** Batches a warm start reads: tensors of inputs, or [inputs, targets, ...] (Shampoo needs the targets). */
export type WarmStartBatches =
  Iterable<[Tensor, ...unknown[]] | Tensor> | AsyncIterable<[Tensor, ...unknown[]] | Tensor>;
/** The moving-average rule of the statistics (see the file comment). */
export type StatisticsRule = 'convex' | 'authors';

/** The configuration every Kronecker-factored optimizer takes (each documents its defaults). */
export interface CurvatureSchedule {
  statsEvery: unknown;
  inverseEvery: unknown;
  statistics?: unknown;
  earlyRefresh?: unknown;
  factorDtype?: unknown;
  onNonFinite?: unknown;
  statDecayPerStep?: unknown;
}

/** The per-group options of the family; the damping is `damping` (TNT, KFAC) or `epsilon` (Shampoo). */
export type KroneckerOptions = BaseOptions & { momentum: number; weightDecay: number; statDecay: number };

/** The counters a state dict carries under the optimizer's key. */
export type KroneckerCounters = {
  stepCount: number;
  statsUpdates: number;
  warmStarted: boolean;
  skippedSteps: number;
  skippedStatistics: number;
};

/**
 * Splits a constructor's options into the per-group options (`rest`) and the configuration, after refusing unknown
 * keys and a missing object (the same checks and messages for the three).
 */
export function splitOptions<T extends object>(options: T, known: readonly string[], owner: string): T {
  checkKnownOptions(options, known, owner);
  if (options === undefined || options === null) throw typeError('an options object with lr', 'options', options);
  return options;
}

/** The family's state dict: the base one, with the counters under the optimizer's key K (`tnt`, `shampoo`, `kfac`). */
export type KroneckerStateDict<K extends string> = OptimizerStateDict & Record<K, KroneckerCounters>;

export abstract class KroneckerOptimizer<
  O extends KroneckerOptions,
  K extends 'tnt' | 'shampoo' | 'kfac' = 'tnt' | 'shampoo' | 'kfac',
> extends Optimizer<O> {
  /** T1: gather statistics every this many steps. */
  readonly statsEvery: number;
  /** T2: refresh the inverses (roots) every this many steps, a multiple of T1. */
  readonly inverseEvery: number;
  /** The moving-average rule: 'convex' (default) or the authors' (see the file comment). */
  readonly statistics: StatisticsRule;
  /** The first-T2 rule: while fewer than T2 steps have run, refresh the inverses every T1 steps (default true). */
  readonly earlyRefresh: boolean;
  /** The moving average's decay counted per step: weight 1 - statDecay^statsEvery per update (default false). */
  readonly statDecayPerStep: boolean;
  /** Steps taken (calls of step() that reached the update, skipped ones included). */
  stepCount = 0;
  /** Statistics updates so far (t in the moving-average weight). */
  statsUpdates = 0;
  /** Whether warmStart() initialised the statistics. */
  warmStarted = false;
  /** Steps skipped because a gradient held NaN or Infinity. */
  skippedSteps = 0;
  /**
   * True while distributed.CurvatureSync has refreshed the inverses itself (sharded across ranks and broadcast):
   * step() then keeps them instead of recomputing. @internal
   */
  inversesRefreshed = false;
  /**
   * distributed.CurvatureSync's shard: the parameters whose statistics, inverses and update this rank computes (the
   * others' come from their owners); null (the default) is every parameter. @internal
   */
  shard: ReadonlySet<Tensor> | null = null;
  /**
   * Set by CurvatureSync for one step when a gradient outside this rank's shard is not finite: the step is skipped
   * and counted on every rank, as one process would. @internal
   */
  skipNonFinite = false;
  /** Batches folded in so far while warmStart() runs; -1 otherwise. */
  protected warmCount = -1;
  /** dtype of the factors and of their factorisation (or roots). */
  readonly factorDtype: 'float32' | 'float64';
  /** What a non-finite gradient does: skip the step and count it, or throw. */
  readonly onNonFinite: 'skip' | 'throw';
  /** Factor shapes, computed once per parameter. */
  private readonly shapes = new Map<Tensor, number[]>();

  constructor(params: Params<O>, defaults: O, schedule: CurvatureSchedule) {
    super(params, defaults);
    this.statsEvery = is.positiveInteger(schedule.statsEvery, 'statsEvery');
    this.inverseEvery = is.positiveInteger(schedule.inverseEvery, 'inverseEvery');
    if (this.inverseEvery % this.statsEvery !== 0)
      throw new RangeError(
        `Expected inverseEvery (${schedule.inverseEvery}) to be a multiple of statsEvery (${schedule.statsEvery})`,
      );
    this.statistics = is.oneOf(schedule.statistics === undefined ? 'convex' : schedule.statistics, 'statistics', [
      'convex',
      'authors',
    ] as const);
    this.earlyRefresh = is.boolean(schedule.earlyRefresh === undefined ? true : schedule.earlyRefresh, 'earlyRefresh');
    this.factorDtype = is.oneOf(schedule.factorDtype ?? 'float32', 'factorDtype', ['float32', 'float64'] as const);
    this.onNonFinite = is.oneOf(schedule.onNonFinite ?? 'skip', 'onNonFinite', ['skip', 'throw'] as const);
    this.statDecayPerStep = is.boolean(schedule.statDecayPerStep ?? false, 'statDecayPerStep');
  }

  /** The optimizer's name in messages, and (lower-cased) the key of its counters in a state dict. */
  protected abstract get label(): 'TNT' | 'Shampoo' | 'KFAC';

  /** The name of the damping option: 'damping' (TNT, KFAC) or 'epsilon' (Shampoo). */
  protected get dampingOption(): string {
    return 'damping';
  }

  protected checkOptions(o: O, prefix: string): void {
    const r = o as unknown as Record<string, unknown>;
    is.nonNegative(o.lr, `${prefix}lr`);
    is.positive(r[this.dampingOption], `${prefix}${this.dampingOption}`);
    is.inRange(o.momentum, `${prefix}momentum`, 0, 1, { hiOpen: true });
    is.nonNegative(o.weightDecay, `${prefix}weightDecay`);
    is.inRange(o.statDecay, `${prefix}statDecay`, 0, 1, { hiOpen: true });
  }

  /** Every parameter, over all groups, in order. */
  get params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The group holding `p`, or undefined when it is not a parameter of this optimizer. */
  protected groupOf(p: Tensor): ParamGroup<O> | undefined {
    return this.paramGroups.find((g) => g.params.includes(p));
  }

  /**
   * The factor shape of a parameter, worked out once (`factorShapeOf` says how): a parameter's gradient is viewed
   * as a tensor of this shape, one factor per dimension; [] leaves it unpreconditioned.
   */
  protected shapeOf(p: Tensor): number[] {
    let s = this.shapes.get(p);
    if (s === undefined) {
      s = this.factorShapeOf(p);
      this.shapes.set(p, s);
    }
    return s;
  }

  /** The factor shape rule: TNT and Shampoo by `factorShape` (lib/optim/kronecker/shapes.ts); KFAC has none. */
  protected factorShapeOf(_p: Tensor): number[] {
    return [];
  }

  /** The parameter's momentum buffer, zero on first use. */
  protected momentumOf(p: Tensor): Tensor {
    const s = this.stateOf(p);
    let m = s.momentum;
    if (!(m instanceof Tensor)) {
      m = keep(zerosLike(p));
      s.momentum = m;
    }
    return m;
  }

  /** A tensor of the parameter's state (made by the caller's `make` on first use). */
  protected stateTensor(p: Tensor, name: string, make: () => Tensor): Tensor {
    const s = this.stateOf(p);
    let t = s[name];
    if (!(t instanceof Tensor)) {
      t = keep(make());
      s[name] = t;
    }
    return t;
  }

  /** Bytes held by the optimizer's state (momentum, and factors, inverses or roots). */
  stateBytes(): number {
    const size = (t: Tensor): number =>
      t.numel() *
      (t.dtype === 'float64' || t.dtype === 'int64' ? 8 : t.dtype === 'float16' || t.dtype === 'bfloat16' ? 2 : 4);
    let b = 0;
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) b += size(v);
    return b;
  }

  /** The base state dict, with the counters under the optimizer's key (`tnt`, `shampoo`, `kfac`). */
  override stateDict(): KroneckerStateDict<K> {
    return { ...super.stateDict(), [this.label.toLowerCase()]: this.counters() } as KroneckerStateDict<K>;
  }

  /**
   * Loads a state dict of this optimizer (and the layout before the curvature lived in `state`, which is the same
   * per parameter): everything, counters included, is validated before anything changes.
   */
  override loadStateDict(sd: OptimizerStateDict & { [k in K]?: Record<string, unknown> }): void {
    const key = this.label.toLowerCase() as K;
    if (sd === null || typeof sd !== 'object' || typeof sd.state !== 'object' || sd.state === null)
      throw typeError(`an optimizer state dict ({state, paramGroups, ${key}})`, 'stateDict', sd);
    const applyCounters = this.checkCounters((sd as Record<string, unknown>)[key], `stateDict.${key}`);
    super.loadStateDict({ state: sd.state, paramGroups: sd.paramGroups });
    applyCounters();
  }

  /** Recomputes the preconditioner (inverses or roots) from the current statistics. */
  protected abstract refresh(): void;

  /**
   * What comes before the update of a step: statistics and refreshes that are due. Returns false when the step is
   * to be skipped (it has then been counted).
   */
  protected abstract beforeUpdate(): boolean;

  /** The update of every group, one native call, all or nothing. */
  protected abstract update(): StepReport;

  /** Takes the step, then counts it (skipped steps included). */
  override step<L = undefined>(closure?: () => L): L | undefined {
    const loss = super.step(closure);
    this.stepCount++;
    return loss;
  }

  /** Every group is updated by one native call, made for group 0, so a skipped step leaves every group as it was. */
  protected stepGroup(_group: ParamGroup<O>, index: number): void {
    if (index !== 0 || !this.beforeUpdate()) return;
    if (this.skipNonFinite) {
      this.skipStep(this.label, 1);
      return;
    }
    const r = this.update();
    if (r.skippedNonFinite > 0) this.skipStep(this.label, r.reason);
  }

  /**
   * The warm-start loop: statistics reset by `reset`, each batch folded in by `fold` (which counts it in warmCount
   * through updateStatistics), then the preconditioner refreshed. Throws `empty` when nothing was folded in.
   */
  protected async warmLoop<B>(
    batches: Iterable<B> | AsyncIterable<B>,
    reset: () => void,
    fold: (b: B) => void,
    empty: string,
  ): Promise<number> {
    reset();
    this.warmCount = 0;
    try {
      for await (const b of batches as AsyncIterable<B>) fold(b);
      const n = this.warmCount;
      if (n === 0) throw new RangeError(empty);
      this.warmStarted = true;
      this.refresh();
      return n;
    } finally {
      this.warmCount = -1;
    }
  }

  /**
   * How `statistics: 'authors'` reads for this optimizer: whether its weight without a warm start is convex (KFAC)
   * or added to statDecay H (TNT, Shampoo), and whether step 0 after a warm start gathers nothing (TNT, Shampoo).
   */
  protected authorsRule = { convex: false, skipStepZeroAfterWarmStart: true };

  /**
   * Statistics left out because they held NaN or Infinity: TNT's updates that left out a parameter whose sampled
   * gradient was not finite, Shampoo's warm-start batches, KFAC's layer statistics.
   */
  skippedStatistics = 0;

  /** Per parameter these optimizers keep a momentum buffer (their curvature entries: `stateEntries`). */
  protected override stateSchema(): StateSchema {
    return { tensors: ['momentum'] };
  }

  /** The counters a state dict carries (under the optimizer's own key: `tnt`, `shampoo`, `kfac`). */
  protected counters(): KroneckerCounters {
    const { stepCount, statsUpdates, warmStarted, skippedSteps, skippedStatistics } = this;
    return { stepCount, statsUpdates, warmStarted, skippedSteps, skippedStatistics };
  }

  /**
   * Checks the counters of a state dict (`where` names them in messages, e.g. 'stateDict.tnt'); `apply` is then
   * called to set them, once everything else has been validated. Absent counters are 0 / false.
   */
  protected checkCounters(t: unknown, where: string): () => void {
    if (t === undefined) t = {};
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw typeError('an object of counters', where, t);
    const r = t as Record<string, unknown>;
    const known = ['stepCount', 'statsUpdates', 'warmStarted', 'skippedSteps', 'skippedStatistics'];
    for (const k of Object.keys(r))
      if (!known.includes(k)) throw new RangeError(`${where} has '${k}', which is not one of ${known.join(', ')}`);
    const n = (k: string): number => (r[k] === undefined ? 0 : is.nonNegativeInteger(r[k], `${where}.${k}`));
    const c = {
      stepCount: n('stepCount'),
      statsUpdates: n('statsUpdates'),
      skippedSteps: n('skippedSteps'),
      skippedStatistics: n('skippedStatistics'),
    };
    const warm = r.warmStarted === undefined ? false : is.boolean(r.warmStarted, `${where}.warmStarted`);
    return () => {
      Object.assign(this, c);
      this.warmStarted = warm;
    };
  }

  /**
   * Warm start: one pass over `batches` at the current weights, no updates; the statistics become the plain running
   * mean over those batches. The same call for TNT, KFAC and Shampoo (which reads the targets and takes the
   * likelihood's loss); fit()'s `warmStart` option and the experiment runner use it. Returns the batches folded in.
   */
  abstract warmStart(
    batches: WarmStartBatches,
    forward: (x: Tensor) => Tensor,
    likelihood: SampleableLikelihood,
  ): Promise<number>;

  /**
   * Throws a TorchError (code 'NO_STATISTICS') from step() when no statistics were ever gathered: the update would be
   * momentum SGD scaled by 1/damping, silently. Called before the step changes anything.
   */
  protected requireStatistics(name: string): void {
    if (this.statsUpdates > 0 || this.warmStarted) return;
    throw new TorchError(
      `${name}.step(): no curvature statistics have been gathered, so this step would be plain momentum SGD. ` +
        'Call opt.sampledBackward(output, likelihood) after the forward pass and before loss.backward() ' +
        '(or await opt.warmStart(batches, forward, likelihood) before training); fit() does both when given a `likelihood`.',
      'NO_STATISTICS',
    );
  }

  /**
   * Counts a step the native update left undone (reason 1: a gradient held NaN or Infinity; 2: a new momentum or
   * parameter would have, from a non-finite state or an overflowing update), or throws with `onNonFinite: 'throw'`.
   */
  protected skipStep(name: string, reason: number): void {
    this.skippedSteps++;
    if (this.onNonFinite !== 'throw') return;
    const why =
      reason === 2
        ? 'the update (momentum or parameters) would hold NaN or Infinity'
        : 'a gradient holds NaN or Infinity';
    throw new TorchError(`${name}: ${why} at step ${this.stepCount}; the step was not applied`, 'NON_FINITE');
  }

  /**
   * The arguments of a one-call native step over every group: each parameter's handle, its momentum buffer (made on
   * first use) and its group's lr, momentum and weight decay; `each` collects the optimizer's own state per parameter.
   */
  protected stepArguments(each: (p: Tensor, group: ParamGroup<O>) => void): {
    params: number[];
    momenta: number[];
    lr: number[];
    mu: number[];
    wd: number[];
  } {
    const out = {
      params: [] as number[],
      momenta: [] as number[],
      lr: [] as number[],
      mu: [] as number[],
      wd: [] as number[],
    };
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (this.shard !== null && !this.shard.has(p)) continue;
        const m = this.momentumOf(p);
        each(p, g);
        out.params.push(p._h);
        out.momenta.push(m._h);
        out.lr.push(g.lr);
        out.mu.push(g.momentum);
        out.wd.push(g.weightDecay);
      }
    return out;
  }

  /**
   * Whether the step about to be taken gathers statistics: every `statsEvery` steps, except step 0 after a warm
   * start with TNT's and Shampoo's `statistics: 'authors'`.
   */
  statisticsDue(): boolean {
    if (
      this.statistics === 'authors' &&
      this.authorsRule.skipStepZeroAfterWarmStart &&
      this.warmStarted &&
      this.stepCount === 0
    )
      return false;
    return this.stepCount % this.statsEvery === 0;
  }

  /**
   * Whether the step about to be taken refreshes the inverses: every `inverseEvery` steps, and with `earlyRefresh`
   * every `statsEvery` steps while fewer than `inverseEvery` have run.
   */
  inversesDue(): boolean {
    const t = this.stepCount;
    return t % this.inverseEvery === 0 || (this.earlyRefresh && t < this.inverseEvery && t % this.statsEvery === 0);
  }

  /** The next statistics update's H <- keep H + weight S (see the file comment for the rules). */
  statisticsCoefficients(): { keep: number; weight: number } {
    const convex = (w: number): { keep: number; weight: number } => ({ keep: 1 - w, weight: w });
    if (this.warmCount >= 0) return convex(1 / (this.warmCount + 1));
    const decay = this.paramGroups[0]!.statDecay ** (this.statDecayPerStep ? this.statsEvery : 1);
    if (this.warmStarted) return this.statistics === 'authors' ? { keep: decay, weight: 1 - decay } : convex(1 - decay);
    if (this.statistics === 'convex') return convex(Math.max(1 / (this.statsUpdates + 1), 1 - decay));
    const w = Math.max(1 / (this.stepCount + 1), 1 - decay);
    return this.authorsRule.convex ? convex(w) : { keep: decay, weight: w };
  }

  /** The weight of the new statistics in the next update (statisticsCoefficients().weight). */
  statisticsWeight(): number {
    return this.statisticsCoefficients().weight;
  }
}

/** The handles of a gradient list for a native statistics call (-1 for null), after checking it against `params`. */
export function gradientHandles(grads: (Tensor | null)[], params: Tensor[], what: string): number[] {
  if (!Array.isArray(grads) || grads.length !== params.length)
    throw new RangeError(
      `updateStatistics: expected ${params.length} gradients (one per parameter) but received ${Array.isArray(grads) ? grads.length : typeof grads}`,
    );
  return grads.map((g, i) => {
    if (g === null || g === undefined) return -1;
    if (!(g instanceof Tensor)) throw typeError('a Tensor or null', `${what}[${i}]`, g);
    const ps = params[i]!.shape,
      gs = g.shape;
    if (ps.length !== gs.length || ps.some((d, k) => d !== gs[k]))
      throw new RangeError(
        `updateStatistics: ${what}[${i}] has shape [${gs.join(', ')}] but parameter ${i} has shape [${ps.join(', ')}]`,
      );
    return g._h;
  });
}

/** @deprecated the name before the family's base moved to lib/optim/kronecker/: {@link KroneckerOptimizer}. */
export { KroneckerOptimizer as CurvatureOptimizer };
