/**
 * What the three second-order optimizers (TNT, Shampoo, KFAC) share: the T1/T2 schedule with the first-T2 rule,
 * the moving-average weight of their statistics (the authors' max(1/(t+1), 1 - statDecay), or the plain running
 * mean during a warm start and 1 - statDecay after one), and the counters that say where a run stands.
 */
import { is, typeError } from '../errors.js';
import { Optimizer, type BaseOptions, type Params, type StateSchema } from './optimizer.js';

export abstract class CurvatureOptimizer<O extends BaseOptions & { statDecay: number }> extends Optimizer<O> {
  /** T1: gather statistics every this many steps. */
  readonly statsEvery: number;
  /** T2: refresh the inverses (roots) every this many steps, a multiple of T1. */
  readonly inverseEvery: number;
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

  constructor(params: Params<O>, defaults: O, schedule: { statsEvery: unknown; inverseEvery: unknown }) {
    super(params, defaults);
    this.statsEvery = is.positiveInteger(schedule.statsEvery, 'statsEvery');
    this.inverseEvery = is.positiveInteger(schedule.inverseEvery, 'inverseEvery');
    if (this.inverseEvery % this.statsEvery !== 0)
      throw new RangeError(`Expected inverseEvery (${schedule.inverseEvery}) to be a multiple of statsEvery (${schedule.statsEvery})`);
  }

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
  protected counters(): { stepCount: number; statsUpdates: number; warmStarted: boolean; skippedSteps: number; skippedStatistics: number } {
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
    for (const k of Object.keys(r)) if (!known.includes(k)) throw new RangeError(`${where} has '${k}', which is not one of ${known.join(', ')}`);
    const n = (k: string): number => (r[k] === undefined ? 0 : is.nonNegativeInteger(r[k], `${where}.${k}`));
    const c = { stepCount: n('stepCount'), statsUpdates: n('statsUpdates'), skippedSteps: n('skippedSteps'), skippedStatistics: n('skippedStatistics') };
    const warm = r.warmStarted === undefined ? false : is.boolean(r.warmStarted, `${where}.warmStarted`);
    return () => {
      Object.assign(this, c);
      this.warmStarted = warm;
    };
  }

  /** Whether the step about to be taken gathers statistics (every `statsEvery` steps). */
  statisticsDue(): boolean {
    return this.stepCount % this.statsEvery === 0;
  }

  /** Whether the step about to be taken refreshes the inverses (every `inverseEvery` steps, or `statsEvery` before that). */
  inversesDue(): boolean {
    const t = this.stepCount;
    return t % this.inverseEvery === 0 || (t < this.inverseEvery && t % this.statsEvery === 0);
  }

  /** The moving-average weight of the next statistics update. */
  statisticsWeight(): number {
    if (this.warmCount >= 0) return 1 / (this.warmCount + 1);
    const decay = this.paramGroups[0]!.statDecay;
    if (this.warmStarted) return 1 - decay;
    return Math.max(1 / (this.statsUpdates + 1), 1 - decay);
  }
}
