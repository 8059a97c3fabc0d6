/**
 * What the three second-order optimizers (TNT, Shampoo, KFAC) share: the T1/T2 schedule (with or without the
 * first-T2 rule), the moving-average rule of their statistics, and the counters that say where a run stands.
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
import { TorchError, is, typeError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { keep } from '../scope.js';
import { zerosLike } from '../creation.js';
import type { SampleableLikelihood } from '../likelihoods.js';
import { Optimizer, type BaseOptions, type ParamGroup, type Params, type StateSchema } from './optimizer.js';

/** Batches a warm start reads: tensors of inputs, or [inputs, targets, ...] (Shampoo needs the targets). */
export type WarmStartBatches =
  Iterable<[Tensor, ...unknown[]] | Tensor> | AsyncIterable<[Tensor, ...unknown[]] | Tensor>;
/** The moving-average rule of the statistics (see the file comment). */
export type StatisticsRule = 'convex' | 'authors';

/** The schedule options every curvature optimizer takes (each documents its defaults). */
export interface CurvatureSchedule {
  statsEvery: unknown;
  inverseEvery: unknown;
  statistics?: unknown;
  earlyRefresh?: unknown;
}

export abstract class CurvatureOptimizer<O extends BaseOptions & { statDecay: number }> extends Optimizer<O> {
  /** T1: gather statistics every this many steps. */
  readonly statsEvery: number;
  /** T2: refresh the inverses (roots) every this many steps, a multiple of T1. */
  readonly inverseEvery: number;
  /** The moving-average rule: 'convex' (default) or the authors' (see the file comment). */
  readonly statistics: StatisticsRule;
  /** The first-T2 rule: while fewer than T2 steps have run, refresh the inverses every T1 steps (default true). */
  readonly earlyRefresh: boolean;
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
  /** Batches folded in so far while warmStart() runs; -1 otherwise. */
  protected warmCount = -1;

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

  /** Per parameter these optimizers keep a momentum buffer (their curvature state travels beside it). */
  protected override stateSchema(): StateSchema {
    return { tensors: ['momentum'] };
  }

  /** The counters a state dict carries (under the optimizer's own key: `tnt`, `shampoo`, `kfac`). */
  protected counters(): {
    stepCount: number;
    statsUpdates: number;
    warmStarted: boolean;
    skippedSteps: number;
    skippedStatistics: number;
  } {
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
    if ((this as { onNonFinite?: string }).onNonFinite !== 'throw') return;
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
        const s = this.stateOf(p);
        let m = s.momentum;
        if (!(m instanceof Tensor)) {
          m = keep(zerosLike(p));
          s.momentum = m;
        }
        each(p, g);
        const h = g as unknown as { momentum: number; weightDecay: number };
        out.params.push(p._h);
        out.momenta.push(m._h);
        out.lr.push(g.lr);
        out.mu.push(h.momentum);
        out.wd.push(h.weightDecay);
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
    const decay = this.paramGroups[0]!.statDecay;
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
