/**
 * Learning-rate schedulers (torch.optim.lr_scheduler): StepLR, MultiStepLR, CosineAnnealingLR and LambdaLR.
 *
 * As in PyTorch, building a scheduler records each group's `initialLr` and takes the first step (epoch 0), and
 * each `step()` advances `lastEpoch` by one and writes the new rate into every parameter group. The rates follow
 * PyTorch's recursive forms (`get_lr`): StepLR, MultiStepLR and CosineAnnealingLR update the rate each group holds
 * now, so schedulers chain (two schedulers stepping the same optimizer compose their factors, as in PyTorch) and a
 * rate changed by hand between steps carries on from its new value. LambdaLR sets base · λ(epoch) outright, as
 * PyTorch's does.
 *
 *     const opt = new optim.SGD(params, { lr: 0.1 });
 *     const sched = new optim.lrScheduler.StepLR(opt, { stepSize: 30, gamma: 0.1 });
 *     for (let epoch = 0; epoch < 100; epoch++) { train(); sched.step(); }
 */
import { is, typeError } from '../errors.js';
import type { BaseOptions, Optimizer } from './optimizer.js';

/** What a scheduler saves: its counters, base rates and options (never the optimizer). */
export type SchedulerStateDict = Record<string, unknown> & { lastEpoch: number; baseLrs: number[]; lastLr: number[] };

/** Base class of the learning-rate schedulers: `step()` once per epoch (or step), `getLastLr()`, as torch.optim.lr_scheduler. */
export abstract class LRScheduler {
  readonly optimizer: Optimizer<BaseOptions>;
  /** Each group's `initialLr`: the rates the schedule scales. */
  baseLrs: number[];
  /** Index of the last step taken (0 right after construction). */
  lastEpoch: number;
  protected lastLr: number[] = [];
  private stepCount = 0;

  /**
   * `lastEpoch` (default -1) resumes a schedule: with a value ≥ 0 every group must already hold `initialLr` (as
   * after loading an optimizer state dict saved while a scheduler ran), and the schedule continues from there.
   */
  constructor(optimizer: Optimizer<BaseOptions>, lastEpoch = -1) {
    if (
      optimizer === null ||
      typeof optimizer !== 'object' ||
      !Array.isArray((optimizer as { paramGroups?: unknown }).paramGroups)
    )
      throw typeError('an Optimizer', 'optimizer', optimizer);
    is.integer(lastEpoch, 'lastEpoch');
    if (lastEpoch < -1)
      throw new RangeError(`Expected an integer ≥ -1 for lastEpoch but received ${lastEpoch} of type number`);
    this.optimizer = optimizer;
    optimizer.paramGroups.forEach((g, i) => {
      if (lastEpoch === -1) g.initialLr ??= g.lr;
      else if (typeof g.initialLr !== 'number')
        throw new RangeError(
          `param 'initialLr' is not specified in paramGroups[${i}] when resuming an optimizer (lastEpoch ${lastEpoch})`,
        );
    });
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr as number);
    this.lastEpoch = lastEpoch;
  }

  /** Subclasses call this at the end of their constructor: the initial step, as PyTorch's constructor does. */
  protected init(): void {
    this.step();
  }

  /**
   * The rate of every group at `this.lastEpoch` (just advanced), from the rates the groups hold now (PyTorch's
   * `get_lr`).
   */
  protected abstract nextLr(): number[];

  /** The rates the groups hold now. */
  protected groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** Whether this is the first step of a scheduler built to resume (lastEpoch ≥ 0 given to the constructor). */
  protected resuming(): boolean {
    return this.stepCount === 1 && this.lastEpoch > 0;
  }

  /** Advances the schedule by one step and writes the new rates into the optimizer's groups. */
  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const lrs = this.nextLr();
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = lrs[i]!;
    });
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The rates the last step set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Fields that are not state: the optimizer, and user functions (which PyTorch does not save either). */
  protected unsaved(): string[] {
    return ['optimizer'];
  }

  /** The scheduler's state: counters, base rates and options. */
  stateDict(): SchedulerStateDict {
    const skip = this.unsaved();
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) if (!skip.includes(k)) out[k] = structuredClone(v);
    return out as SchedulerStateDict;
  }

  /** Restores a state saved by `stateDict()` of a scheduler of the same kind (it does not touch the optimizer). */
  loadStateDict(sd: SchedulerStateDict): void {
    if (sd === null || typeof sd !== 'object') throw typeError('a scheduler state dict', 'stateDict', sd);
    is.integer(sd.lastEpoch, 'stateDict.lastEpoch');
    const n = this.optimizer.paramGroups.length;
    for (const key of ['baseLrs', 'lastLr'] as const) {
      const v = sd[key];
      if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number'))
        throw typeError(`an array of ${n} numbers (one per parameter group)`, `stateDict.${key}`, v);
    }
    const skip = this.unsaved();
    for (const k of Object.keys(sd))
      if (!(k in this) || skip.includes(k))
        throw new TypeError(`stateDict: unknown key '${k}' for ${this.constructor.name}`);
    for (const [k, v] of Object.entries(sd)) (this as Record<string, unknown>)[k] = structuredClone(v);
  }
}

/**
 * Multiplies the rate by `gamma` every `stepSize` steps: lr = base · gamma^⌊epoch / stepSize⌋.
 * Options: `stepSize` (a positive integer, required), `gamma` (default 0.1), `lastEpoch` (default -1).
 */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;
  constructor(optimizer: Optimizer<BaseOptions>, options: { stepSize: number; gamma?: number; lastEpoch?: number }) {
    const { stepSize, gamma = 0.1, lastEpoch = -1 } = is.options(options);
    is.positiveInteger(stepSize, 'stepSize');
    is.finite(gamma, 'gamma');
    super(optimizer, lastEpoch);
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.init();
  }
  protected nextLr(): number[] {
    const lrs = this.groupLrs();
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return lrs;
    return lrs.map((lr) => lr * this.gamma);
  }
}

/**
 * Multiplies the rate by `gamma` at each milestone: lr = base · gamma^(number of milestones ≤ epoch). A milestone
 * listed twice applies gamma twice (as PyTorch's Counter). Options: `milestones` (non-negative integers, required),
 * `gamma` (default 0.1), `lastEpoch` (default -1).
 */
export class MultiStepLR extends LRScheduler {
  milestones: number[];
  gamma: number;
  constructor(
    optimizer: Optimizer<BaseOptions>,
    options: { milestones: number[]; gamma?: number; lastEpoch?: number },
  ) {
    const { milestones, gamma = 0.1, lastEpoch = -1 } = is.options(options);
    if (!Array.isArray(milestones) || milestones.some((m) => typeof m !== 'number' || !Number.isInteger(m) || m < 0))
      throw typeError('an array of non-negative integers', 'milestones', milestones);
    is.finite(gamma, 'gamma');
    super(optimizer, lastEpoch);
    this.milestones = [...milestones].sort((a, b) => a - b);
    this.gamma = gamma;
    this.init();
  }
  protected nextLr(): number[] {
    const hits = this.milestones.filter((m) => m === this.lastEpoch).length;
    return this.groupLrs().map((lr) => (hits === 0 ? lr : lr * this.gamma ** hits));
  }
}

/**
 * Cosine annealing from the base rate down to `etaMin` over `tMax` steps (SGDR without restarts):
 * lr = etaMin + (base - etaMin) · (1 + cos(π · epoch / tMax)) / 2; past tMax the cosine continues (the rate rises
 * again), as in PyTorch. Options: `tMax` (a positive integer, required), `etaMin` (default 0), `lastEpoch`.
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;
  constructor(optimizer: Optimizer<BaseOptions>, options: { tMax: number; etaMin?: number; lastEpoch?: number }) {
    const { tMax, etaMin = 0, lastEpoch = -1 } = is.options(options);
    is.positiveInteger(tMax, 'tMax');
    is.nonNegative(etaMin, 'etaMin');
    super(optimizer, lastEpoch);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.init();
  }
  protected nextLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    const lrs = this.groupLrs();
    if (e === 0) return lrs;
    if (this.resuming())
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    if ((e - 1 - T) % (2 * T) === 0)
      return lrs.map((lr, i) => lr + ((this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    return lrs.map(
      (lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - etaMin) + etaMin,
    );
  }
}

/**
 * The rate of each group is its base rate times `lrLambda(epoch)`: one function for every group, or one per group.
 * The functions are not part of the state dict (as in PyTorch).
 */
export class LambdaLR extends LRScheduler {
  lrLambdas: ((epoch: number) => number)[];
  constructor(
    optimizer: Optimizer<BaseOptions>,
    options: { lrLambda: ((epoch: number) => number) | ((epoch: number) => number)[]; lastEpoch?: number },
  ) {
    const { lrLambda, lastEpoch = -1 } = is.options(options);
    super(optimizer, lastEpoch);
    const n = optimizer.paramGroups.length;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== n)
        throw new RangeError(`Expected ${n} lrLambdas (one per parameter group) but received ${lrLambda.length}`);
      lrLambda.forEach((f, i) => is.function(f, `lrLambda[${i}]`));
      this.lrLambdas = [...lrLambda];
    } else
      this.lrLambdas = Array.from({ length: n }, () => is.function(lrLambda, 'lrLambda') as (epoch: number) => number);
    this.init();
  }
  protected nextLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lrLambdas[i]!(this.lastEpoch));
  }
  protected unsaved(): string[] {
    return ['optimizer', 'lrLambdas'];
  }
}
