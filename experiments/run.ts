/**
 * One training run of an experiment (one optimizer, one seed) and the optimizers as the paper ran them.
 *
 * The loop is the one of lib/optim/tnt.ts's doc comment, under tidy():
 *
 *     out = model.call(x); opt.beforeBackward(out, lik)    (TNT, KFAC: statistics from y ~ p(y | x), when due; as fit())
 *     lik.loss(out, target).backward(); opt.step(); opt.zeroGrad()
 *
 * Shampoo gathers its statistics from the true-label gradient inside step(); SGD-m and Adam are first order.
 *
 * Clock: process time (CPU seconds of the whole process, user + system, as Python's time.process_time() that the
 * authors' code reads) and wall time, both from the start of the run (after the model is built) and so including
 * the warm start; the time spent on validation is left out of both. A run stops after `epochs` epochs, when its
 * process time passes `timeBudget`, or when the loss is not finite (diverged).
 *
 * What is recorded: per epoch, the training loss as the running mean of the minibatch losses over the epoch (the
 * quantity of the paper's per-epoch plots; no extra pass over the data) and, if the experiment validates, the
 * validation loss and error; every `logEvery` steps a (step, epoch, process time, wall time, loss) point whose loss
 * is the mean of the minibatch losses since the previous point.
 */
import { Tensor, tidy, manualSeed, noGrad, data, optim, type nn, type SampleableLikelihood } from 'tensornormal';
import { OPTIMIZER_LABELS, type Hyper, type OptimizerName } from './hyper.js';

const { DataLoader } = data;
const { SGD, AdamW, TNT, Shampoo, KFAC } = optim;
type DataLoader<T extends Tensor[]> = data.DataLoader<T>;
type TensorDataset = data.TensorDataset;
type AnyModule = nn.AnyModule;
type Optimizer<O extends optim.BaseOptions> = optim.Optimizer<O>;
type BaseOptions = optim.BaseOptions;
type TNT = optim.TNT;

export { OPTIMIZERS, OPTIMIZER_LABELS, HYPER_KEYS, type OptimizerName, type Hyper } from './hyper.js';

/** Builds the optimizer (KFAC needs the model, for its layers' forward hooks). */
export function makeOptimizer(name: OptimizerName, model: AnyModule, hp: Hyper): Optimizer<BaseOptions> {
  const params = model.parameters();
  const wd = hp.weightDecay ?? 0;
  const schedule = { statsEvery: hp.statsEvery ?? 1, inverseEvery: hp.inverseEvery ?? 20 };
  switch (name) {
    case 'tnt':
      return new TNT(params, {
        lr: hp.lr,
        damping: hp.damping ?? 0.1,
        momentum: hp.momentum ?? 0.9,
        weightDecay: wd,
        ...schedule,
        statsBatch: hp.statsBatch ?? 1,
        klClip: hp.klClip ?? 0,
        statDecayPerStep: (hp.statDecayPerStep ?? 0) > 0,
        asyncInverses: (hp.asyncInverses ?? 0) > 0 ? hp.asyncInverses! : false,
      });
    case 'kfac':
      return new KFAC(model, {
        lr: hp.lr,
        damping: hp.damping ?? 0.03,
        momentum: hp.momentum ?? 0.9,
        weightDecay: wd,
        ...schedule,
      });
    case 'shampoo':
      return new Shampoo(params, {
        lr: hp.lr,
        epsilon: hp.damping ?? 1e-4,
        momentum: hp.momentum ?? 0.9,
        weightDecay: wd,
        ...schedule,
      });
    case 'adam':
      // AdamW's decay is the decoupled one; with weightDecay 0 it is Adam.
      return new AdamW(params, { lr: hp.lr, eps: hp.damping ?? 1e-8, weightDecay: wd });
    case 'sgd':
      // SGD's own weightDecay is an L2 term; the decoupled decay is applied by the run loop.
      return new SGD(params, { lr: hp.lr, momentum: hp.momentum ?? 0.9 });
  }
}

export interface StepEvent {
  type: 'step';
  optimizer: OptimizerName;
  seed: number;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Running mean of the epoch's minibatch losses. */
  loss: number;
  cpu: number;
  wall: number;
  /** Estimated seconds (wall) left in this run. */
  eta: number | null;
}

export interface EpochRecord {
  epoch: number;
  /** Running mean of the minibatch losses over the epoch. */
  loss: number;
  cpu: number;
  wall: number;
  steps: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  valLoss?: number;
  valError?: number;
}

export interface PointRecord {
  step: number;
  /** Fractional epochs done (1.5: half-way through the second epoch). */
  epoch: number;
  cpu: number;
  wall: number;
  /** Mean minibatch loss since the previous point. */
  loss: number;
}

export type RunEvent =
  | StepEvent
  | ({ type: 'epoch'; optimizer: OptimizerName; seed: number; epochs: number } & EpochRecord)
  | { type: 'warm-start'; optimizer: OptimizerName; seed: number; batches: number; cpu: number; wall: number };

export interface RunResult {
  optimizer: OptimizerName;
  label: string;
  seed: number;
  hyperparameters: Hyper;
  epochs: EpochRecord[];
  points: PointRecord[];
  warmStart: { batches: number; cpu: number; wall: number } | null;
  steps: number;
  stoppedBy: 'epochs' | 'time-budget' | 'diverged';
  /** The step whose loss was not finite (the run stopped there), and the error a non-finite model raised, if any. */
  divergedAt: number | null;
  error: string | null;
  /** Process and wall seconds of the run (warm start included, validation excluded). */
  cpu: number;
  wall: number;
  /** Mean process seconds per completed training epoch, warm start excluded (null before one epoch). */
  cpuPerEpoch: number | null;
  wallPerEpoch: number | null;
}

export interface RunConfig {
  optimizer: OptimizerName;
  hp: Hyper;
  seed: number;
  epochs: number;
  /** Seconds of process time after which the run stops. */
  timeBudget?: number;
  batchSize: number;
  model: () => AnyModule;
  likelihood: SampleableLikelihood;
  /** [inputs] (the target is the input: autoencoders) or [inputs, labels]. */
  train: TensorDataset;
  /** Applied to each training batch's inputs (augmentation, normalisation). */
  transform?: (x: Tensor) => Tensor;
  /** Warm-start batches for TNT, KFAC and Shampoo (Infinity: one pass over the training set, the paper's; 0: none). */
  warmBatches: number;
  /** Record a time point every this many steps. */
  logEvery: number;
  /** Learning rate times `factor` when this fraction of all steps is done, for each fraction. */
  lrDecay?: { at: number[]; factor: number };
  /** Validation at the end of every epoch (excluded from the clock). */
  validate?: (model: AnyModule) => { loss: number; error: number };
  onEvent?: (e: RunEvent) => void;
}

/** Whether the model's output for x is finite. */
function finiteOutput(forward: (x: Tensor) => Tensor, x: Tensor): boolean {
  return tidy(() => noGrad(() => Boolean(forward(x).isfinite().all().item())));
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Yields the first n batches of a loader ([x] batches mapped to [x, x] when `pair`). */
function* take(loader: DataLoader<Tensor[]>, n: number, pair: boolean): Generator<[Tensor, Tensor]> {
  let k = 0;
  if (n <= 0) return;
  for (const b of loader) {
    yield (pair && b.length === 1 ? [b[0]!, b[0]!] : b) as [Tensor, Tensor];
    if (++k >= n) break;
  }
}

/** Trains one model with one optimizer and seed; see the file comment for what is measured. */
export async function trainRun(c: RunConfig): Promise<RunResult> {
  manualSeed(c.seed);
  const model = c.model();
  let opt: Optimizer<BaseOptions> | null = null;
  try {
    opt = makeOptimizer(c.optimizer, model, c.hp);
    const o = opt;
    const lik = c.likelihood;
    const autoencoder = c.train.tensors.length === 1;
    const loader = new DataLoader<Tensor[]>(c.train, {
      batchSize: c.batchSize,
      shuffle: true,
      seed: c.seed,
      transform: c.transform,
    });
    const stepsPerEpoch = loader.length;
    const totalSteps = stepsPerEpoch * c.epochs;
    const forward = (x: Tensor): Tensor => model.call(x) as Tensor;
    const excluded = { cpu: 0, wall: 0 };
    const cpu0 = cpuSeconds(),
      wall0 = performance.now() / 1000;
    const clock = (): { cpu: number; wall: number } => ({
      cpu: cpuSeconds() - cpu0 - excluded.cpu,
      wall: performance.now() / 1000 - wall0 - excluded.wall,
    });
    model.train();

    let warmStart: RunResult['warmStart'] = null;
    // The same hooks as fit(): warmStart() where the optimizer has one, beforeBackward() every step.
    const warmable = o as Optimizer<BaseOptions> & Partial<Pick<TNT, 'warmStart'>>;
    if (c.warmBatches > 0 && typeof warmable.warmStart === 'function') {
      const warmLoader = new DataLoader<Tensor[]>(c.train, {
        batchSize: c.batchSize,
        shuffle: true,
        seed: c.seed + 1_000_003,
        transform: c.transform,
      });
      const n = Math.min(c.warmBatches, warmLoader.length);
      const batches = await warmable.warmStart(take(warmLoader, n, true), forward, lik);
      warmStart = { batches, ...clock() };
      c.onEvent?.({ type: 'warm-start', optimizer: c.optimizer, seed: c.seed, ...warmStart });
    }
    const trainStart = clock();

    const epochs: EpochRecord[] = [];
    const points: PointRecord[] = [];
    let step = 0;
    let stoppedBy: RunResult['stoppedBy'] = 'epochs';
    let divergedAt: number | null = null;
    let error: string | null = null;
    const decayAt = [...(c.lrDecay?.at ?? [])].sort((a, b) => a - b);
    let decays = 0;
    let window = 0,
      windowN = 0;
    const split = o instanceof TNT ? o : null;
    outer: for (let e = 0; e < c.epochs; e++) {
      let sum = 0,
        n = 0;
      for (const batch of loader) {
        while (decays < decayAt.length && step >= decayAt[decays]! * totalSteps) {
          for (const g of o.paramGroups) g.lr *= c.lrDecay!.factor;
          decays++;
        }
        const x = batch[0]!,
          target = autoencoder ? batch[0]! : batch[1]!;
        let loss: number;
        try {
          loss = tidy(() => {
            const out = split ? split.splitForward(forward, x) : forward(x); // TNT: statsBatch's sub-batch graph
            o.beforeBackward(out, lik); // TNT, KFAC: the sampled backward pass (when due); fit() makes the same call
            const l = lik.loss(out, target);
            l.backward();
            if (c.optimizer === 'sgd' && (c.hp.weightDecay ?? 0) > 0)
              noGrad(() => {
                for (const g of o.paramGroups) for (const p of g.params) p.mul_(1 - g.lr * c.hp.weightDecay!);
              });
            o.step();
            o.zeroGrad();
            return l.item() as number;
          });
        } catch (err) {
          // A model whose output is no longer finite makes the sampled pass throw (sigmoid(NaN) is no probability):
          // that is a divergence, recorded as such. Any other error is a bug and propagates.
          if (finiteOutput(forward, x)) throw err;
          o.zeroGrad();
          loss = NaN;
          error = (err as Error).message;
        }
        step++;
        if (!Number.isFinite(loss)) {
          stoppedBy = 'diverged';
          divergedAt = step;
          const advice = (o as { divergenceAdvice?: () => string }).divergenceAdvice?.() ?? 'lower the learning rate';
          error = `${error ?? `the training loss is ${loss}`} at step ${step}: training diverged; ${advice}`;
          const t = clock();
          points.push({ step, epoch: e + (n + 1) / stepsPerEpoch, ...t, loss });
          break outer;
        }
        sum += loss;
        n++;
        window += loss;
        windowN++;
        const t = clock();
        if (step % c.logEvery === 0 || n === stepsPerEpoch) {
          points.push({ step, epoch: e + n / stepsPerEpoch, ...t, loss: window / windowN });
          window = 0;
          windowN = 0;
        }
        const perStep = (t.wall - trainStart.wall) / step;
        let eta: number | null = perStep * (totalSteps - step);
        if (c.timeBudget !== undefined)
          eta = Math.min(eta, Math.max(0, c.timeBudget - t.cpu) * (t.wall / Math.max(t.cpu, 1e-9)));
        c.onEvent?.({
          type: 'step',
          optimizer: c.optimizer,
          seed: c.seed,
          epoch: e + 1,
          epochs: c.epochs,
          step: n,
          steps: stepsPerEpoch,
          loss: sum / n,
          ...t,
          eta,
        });
        if (c.timeBudget !== undefined && t.cpu >= c.timeBudget) {
          stoppedBy = 'time-budget';
          if (windowN > 0) points.push({ step, epoch: e + n / stepsPerEpoch, ...t, loss: window / windowN });
          break outer;
        }
      }
      const t = clock();
      const rec: EpochRecord = { epoch: e + 1, loss: sum / n, ...t, steps: n, lr: o.paramGroups[0]!.lr };
      if (c.validate) {
        const v0 = cpuSeconds(),
          w0 = performance.now() / 1000;
        model.eval();
        const v = c.validate(model);
        model.train();
        excluded.cpu += cpuSeconds() - v0;
        excluded.wall += performance.now() / 1000 - w0;
        rec.valLoss = v.loss;
        rec.valError = v.error;
      }
      epochs.push(rec);
      c.onEvent?.({ type: 'epoch', optimizer: c.optimizer, seed: c.seed, epochs: c.epochs, ...rec });
    }
    const end = clock();
    const last = epochs[epochs.length - 1];
    return {
      optimizer: c.optimizer,
      label: OPTIMIZER_LABELS[c.optimizer],
      seed: c.seed,
      hyperparameters: c.hp,
      epochs,
      points,
      warmStart,
      steps: step,
      stoppedBy,
      divergedAt,
      error,
      cpu: end.cpu,
      wall: end.wall,
      cpuPerEpoch: last ? (last.cpu - trainStart.cpu) / epochs.length : null,
      wallPerEpoch: last ? (last.wall - trainStart.wall) / epochs.length : null,
    };
  } finally {
    opt?.dispose();
    model.dispose();
  }
}
