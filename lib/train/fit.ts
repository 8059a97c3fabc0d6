/**
 * fit() and evaluate(): the training loop, as the loop every PyTorch script writes by hand (forward, loss, backward,
 * optimizer step, zero the gradients), with metrics, callbacks, a scheduler, progress output and cancellation.
 *
 * fit() is async and gives the event loop a turn after every step (`setImmediate`), so an HTTP server, timers or
 * a UI in the same process keep answering while a model trains: a request waits at most for the step in progress.
 * Each step runs in its own tidy() scope, so nothing but the optimizer's state outlives it.
 */
import { Tensor } from '../tensor.js';
import { tidy } from '../scope.js';
import { noGrad } from '../autograd.js';
import { TorchError, is, typeError } from '../errors.js';
import { isSampleableLikelihood, type SampleableLikelihood } from '../likelihoods.js';
import type { WarmStartBatches } from '../optim/curvature.js';
import { barReporter, jsonReporter, silentReporter, type ProgressStream, type Reporter } from './progress.js';
import type { SummaryWriter } from '../tensorboard/writer.js';
import {
  EventSink,
  MetricsSink,
  memorySample,
  watchOptimizer,
  writerFor,
  type MemorySample,
  type MetricsOptions,
} from './telemetry.js';

/** What fit() needs of a model (nn.Module has all of it): `call` (preferred) or `forward`, and the mode switches. */
export interface FitModel {
  call?(x: Tensor): Tensor;
  forward?(x: Tensor): Tensor;
  train(mode?: boolean): unknown;
  eval(): unknown;
  parameters(): Iterable<Tensor>;
  /** Read to restore the model's mode when fit() returns (nn.Module has it). */
  training?: boolean;
  /** Awaited after each backward, before the optimizer step: nn.parallel.DistributedDataParallel's gradient averaging. */
  synchronize?(): Promise<void>;
}

/** Batches `[inputs, targets, ...]`: an array, a data.DataLoader (which owns and frees its batches), or an async iterable. */
export type BatchSource = (Iterable<Tensor[]> | AsyncIterable<Tensor[]>) & { length?: number };

/** What fit() needs of an optimizer (every optim.Optimizer). */
export interface FitOptimizer {
  step(): unknown;
  zeroGrad(options?: { setToNone?: boolean }): void;
  readonly paramGroups?: readonly { params: readonly Tensor[] }[];
  /** Called after the forward pass and before backward (TNT, KFAC: the sampled backward pass, when due). */
  beforeBackward?(output: Tensor, likelihood?: SampleableLikelihood): unknown;
  /** Whether beforeBackward needs `likelihood` (TNT, KFAC). */
  readonly needsLikelihood?: boolean;
  /** TNT: the forward pass, split for a sub-batch's statistics (`statsBatch`) when they are due. */
  splitForward?(forward: (x: Tensor) => Tensor, x: Tensor): Tensor;
  /** What to change when training diverges (TNT); fit()'s NON_FINITE message ends with it. */
  divergenceAdvice?(): string;
  /** True for distributed.CurvatureSync: statistics over the process group (required for TNT and KFAC under DDP). */
  readonly distributed?: boolean;
  /** The second-order optimizers' warm start (fit()'s `warmStart` option). */
  warmStart?(
    batches: WarmStartBatches,
    forward: (x: Tensor) => Tensor,
    likelihood: SampleableLikelihood,
  ): Promise<number>;
}

/** A metric `fit()` and `evaluate()` report: 'loss' or 'accuracy'. */
export type Metric = 'loss' | 'accuracy';

/** One epoch of `fit()`'s history. */
export interface HistoryEntry {
  /** 1 for the first epoch. */
  epoch: number;
  /** Mean training loss over the epoch's samples (each batch's loss weighted by its size, measured as it trained). */
  trainLoss: number;
  /** Fraction of correctly classified training samples, or null without the 'accuracy' metric. */
  trainAccuracy: number | null;
  /** Mean loss on the validation set after the epoch, or null without `val`. */
  valLoss: number | null;
  valAccuracy: number | null;
  /** Wall-clock seconds of the epoch, validation included. */
  seconds: number;
}

/** What `onBatchEnd` receives after each optimizer step. */
export interface BatchEnd {
  epoch: number;
  /** 1 for the epoch's first step. */
  step: number;
  loss: number;
  batchSize: number;
}

/** Callbacks `fit()` calls (and awaits) as it trains. */
export interface FitCallbacks {
  /** After each optimizer step; fit() awaits a returned promise. */
  onBatchEnd?(info: BatchEnd): void | Promise<void>;
  /** After each epoch (and its validation); fit() awaits a returned promise. */
  onEpochEnd?(entry: HistoryEntry): void | Promise<void>;
}

/** Options of `fit()`: the data, epochs, optimizer, loss or likelihood, and what to report and log while it trains. */
export interface FitOptions {
  train: BatchSource;
  val?: BatchSource;
  /** Number of passes over `train` (a positive integer). */
  epochs: number;
  optimizer: FitOptimizer;
  /**
   * (output, target) -> a scalar loss tensor (e.g. nn.functional.crossEntropy). Optional with `likelihood`, whose
   * loss it then is.
   */
  loss?: (output: Tensor, target: Tensor) => Tensor;
  /**
   * The likelihood the loss comes from (Categorical for cross-entropy, Bernoulli for BCE with logits, Gaussian for
   * squared error). Required by TNT and KFAC, which sample from it each step their statistics are due (the same
   * sampled backward pass as the README's loop: `optimizer.beforeBackward(output, likelihood)` before
   * `loss.backward()`); first-order optimizers and Shampoo only use its loss.
   */
  likelihood?: SampleableLikelihood;
  /**
   * Warm start of a second-order optimizer before the first epoch: this many batches of `train` (Infinity: one whole
   * pass, the paper's) at the initial weights, no updates, or another batch source to read. Default 0 (none).
   * Needs an optimizer with warmStart() and a `likelihood`.
   */
  warmStart?: number | BatchSource;
  /** Reported metrics: 'loss' always; 'accuracy' for classifiers (default ['loss']). */
  metrics?: Metric[];
  callbacks?: FitCallbacks;
  /** Stepped once after every epoch (an optim.lrScheduler scheduler). */
  scheduler?: { step(): void };
  /** Aborting stops training between two steps; fit() then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** 'auto' (default): a progress bar when `output` is a terminal, JSON lines otherwise; 'none' prints nothing. */
  progress?: 'auto' | 'bar' | 'json' | 'none';
  /** With JSON progress, one line every this many steps (default 100) and one per epoch. */
  logEvery?: number;
  /** Where progress goes (default process.stdout). */
  output?: ProgressStream;
  /**
   * TensorBoard logging: a run directory (fit() writes an event file there and closes it when it returns) or your
   * own tensorboard.SummaryWriter (left open). Every step: `loss/train` (the batch's loss), `train/step_seconds`,
   * `train/samples_per_second`, `optimizer/skipped_steps`, and after each inverse refresh
   * `optimizer/inverse_refresh_seconds` and `optimizer/inverse_retries`; every 10 steps `memory/native_bytes` and
   * `memory/live_tensors`; every epoch `loss/train_epoch`, `loss/val`, `accuracy/*`, `train/lr`. The x axis is the
   * step counted over the whole run.
   */
  logDir?: string | SummaryWriter;
  /**
   * Prometheus metrics in a prom-client registry you pass (`{ registry, prefix = 'tensornormal_', labels }`;
   * prom-client is an optional peer dependency): train_steps_total, train_samples_total, train_loss, train_epoch,
   * train_step_seconds (histogram), train_samples_per_second, optimizer_skipped_steps_total,
   * optimizer_inverse_refreshes_total, optimizer_inverse_refresh_seconds (histogram),
   * optimizer_inverse_retries_total, optimizer_inverse_failures_total, native_bytes, live_tensors.
   */
  prometheus?: MetricsOptions;
}

/** Options of `evaluate()`. */
export interface EvaluateOptions {
  /** (output, target) -> a scalar loss tensor; optional with `likelihood`, whose loss it then is. */
  loss?: (output: Tensor, target: Tensor) => Tensor;
  likelihood?: SampleableLikelihood;
  metrics?: Metric[];
  signal?: AbortSignal;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function forwardOf(model: FitModel): (x: Tensor) => Tensor {
  if (typeof model.call === 'function') return (x) => model.call!(x);
  if (typeof model.forward === 'function') return (x) => model.forward!(x);
  throw typeError('a model with call(x) or forward(x)', 'model', model);
}

function checkModel(model: unknown): FitModel {
  if (model === null || typeof model !== 'object')
    throw typeError('a model (call or forward, train, eval, parameters)', 'model', model);
  const m = model as FitModel;
  for (const k of ['train', 'eval', 'parameters'] as const)
    if (typeof m[k] !== 'function') throw typeError(`a model with ${k}()`, 'model', model);
  return m;
}

function checkSource(src: unknown, name: string): BatchSource {
  const ok =
    src !== null &&
    typeof src === 'object' &&
    (typeof (src as Iterable<unknown>)[Symbol.iterator] === 'function' ||
      typeof (src as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function');
  if (!ok) throw typeError('an iterable of [inputs, targets] batches (e.g. a data.DataLoader)', name, src);
  return src as BatchSource;
}

function checkMetrics(metrics: unknown): Set<Metric> {
  if (!Array.isArray(metrics)) throw typeError("an array of metrics ('loss', 'accuracy')", 'metrics', metrics);
  for (const [i, m] of metrics.entries()) is.oneOf(m, `metrics[${i}]`, ['loss', 'accuracy']);
  return new Set(metrics as Metric[]);
}

function batchParts(batch: unknown, name: string): [Tensor, Tensor] {
  if (!Array.isArray(batch) || !(batch[0] instanceof Tensor) || !(batch[1] instanceof Tensor))
    throw typeError('a batch [inputs, targets] of Tensors', name, batch);
  return [batch[0], batch[1]];
}

/** The loss function: `loss`, or the likelihood's loss without one. */
function lossOf(loss: unknown, likelihood: unknown): (o: Tensor, t: Tensor) => Tensor {
  if (loss !== undefined) return is.function(loss, 'loss') as (o: Tensor, t: Tensor) => Tensor;
  if (likelihood === undefined) throw typeError('a loss function (or a likelihood)', 'loss', loss);
  if (!isSampleableLikelihood(likelihood))
    throw typeError('a likelihood with loss() and sample() (e.g. new Categorical())', 'likelihood', likelihood);
  return (o, t) => likelihood.loss(o, t);
}

/** The first `n` batches of a source (all of them for Infinity), for a warm start; a loader's batches stay its own. */
function firstBatches(src: BatchSource, n: number): AsyncIterable<Tensor[]> {
  return {
    async *[Symbol.asyncIterator]() {
      if (n <= 0) return;
      let k = 0;
      for await (const b of src) {
        yield b;
        if (++k >= n) return;
      }
    },
  };
}

/**
 * Correct predictions in a batch. Scores [B, C] with C > 1: the arg-max class against class indices [B], or against
 * the arg-max of one-hot / probability targets of the scores' shape. One score per sample ([B] or [B, 1]): a logit,
 * positive for class 1, against 0/1 targets.
 */
function countCorrect(output: Tensor, target: Tensor): number {
  return tidy(() => {
    const s = output.shape;
    let pred: Tensor, truth: Tensor;
    if (s.length >= 2 && s[1]! > 1) {
      pred = output.argmax(1);
      const ts = target.shape;
      truth = ts.length === s.length && ts.every((d, i) => d === s[i]) ? target.argmax(1) : target.reshape(pred.shape);
    } else {
      pred = output.reshape([-1]).gt(0);
      truth = target.reshape([-1]).gt(0.5);
    }
    return pred.eq(truth).sum().item();
  });
}

function sizeOf(x: Tensor, y: Tensor): number {
  const s = y.ndim > 0 ? y.shape : x.shape;
  return s.length > 0 ? s[0]! : 1;
}

function scalarLoss(l: unknown): Tensor {
  if (!(l instanceof Tensor)) throw typeError('a Tensor from the loss function', 'loss result', l);
  if (l.numel() !== 1)
    throw new RangeError(`the loss function must return a scalar tensor, but returned shape [${l.shape.join(', ')}]`);
  return l;
}

/**
 * Loss and accuracy of `model` on `data` in evaluation mode, without gradients; restores the model's training
 * mode afterwards when it has a `training` flag. Yields to the event loop between batches.
 */
export async function evaluate(
  model: FitModel,
  data: BatchSource,
  options: EvaluateOptions,
): Promise<{ loss: number; accuracy: number | null }> {
  const m = checkModel(model);
  checkSource(data, 'data');
  if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
  const lossFn = lossOf(options.loss, options.likelihood);
  const metrics = checkMetrics(options.metrics ?? ['loss']);
  const wasTraining = m.training;
  m.eval();
  try {
    return await evaluateIn(m, data, lossFn, metrics.has('accuracy'), options.signal);
  } finally {
    if (wasTraining !== undefined) m.train(wasTraining);
  }
}

async function evaluateIn(
  model: FitModel,
  data: BatchSource,
  lossFn: (o: Tensor, t: Tensor) => Tensor,
  wantAccuracy: boolean,
  signal: AbortSignal | undefined,
): Promise<{ loss: number; accuracy: number | null }> {
  const forward = forwardOf(model);
  let lossSum = 0,
    correct = 0,
    n = 0;
  for await (const batch of data) {
    signal?.throwIfAborted();
    const [x, y] = batchParts(batch, 'val batch');
    const b = sizeOf(x, y);
    const [l, c] = noGrad(() =>
      tidy(() => {
        const out = forward(x);
        return [scalarLoss(lossFn(out, y)).item(), wantAccuracy ? countCorrect(out, y) : 0];
      }),
    );
    lossSum += l * b;
    correct += c;
    n += b;
    await yieldToEventLoop();
  }
  if (n === 0) throw new RangeError('evaluate: the data gave no batches');
  return { loss: lossSum / n, accuracy: wantAccuracy ? correct / n : null };
}

function reporterFor(progress: FitOptions['progress'], out: ProgressStream, every: number): Reporter {
  const mode = is.oneOf(progress, 'progress', ['auto', 'bar', 'json', 'none']);
  if (mode === 'none') return silentReporter;
  if (mode === 'bar' || (mode === 'auto' && out.isTTY === true)) return barReporter(out);
  return jsonReporter(out, every);
}

/**
 * Trains `model` for `epochs` passes over `train`. Every step: in one tidy() scope, forward, loss, backward; then
 * `optimizer.step()` and `optimizer.zeroGrad()`; then a turn of the event loop. After each epoch: validation on
 * `val` (model.eval(), no gradients), `scheduler.step()`, progress, `onEpochEnd`. Returns one HistoryEntry per epoch.
 *
 * With a `likelihood`, every step calls `optimizer.beforeBackward(output, likelihood)` between the forward pass and
 * backward: TNT and KFAC draw y ~ p(y | output) and gather their statistics there (when due), exactly as the README's
 * hand-written loop; they refuse to train without one. `warmStart` runs the optimizer's warm start first.
 *
 * A non-finite training loss stops training with a TorchError (code 'NON_FINITE') naming the epoch and step.
 * The loaders own their batches (fit() never disposes them).
 *
 *   const history = await fit(model, {
 *     train: new data.DataLoader(trainSet, { batchSize: 128, shuffle: true }),
 *     val: new data.DataLoader(testSet, { batchSize: 1000 }),
 *     epochs: 5,
 *     optimizer: new optim.Adam(model.parameters(), { lr: 1e-3 }),
 *     loss: (out, y) => nn.functional.crossEntropy(out, y),
 *     metrics: ['loss', 'accuracy'],
 *   });
 */
export async function fit(model: FitModel, options: FitOptions): Promise<HistoryEntry[]> {
  const m = checkModel(model);
  if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
  const train = checkSource(options.train, 'train');
  const val = options.val === undefined ? undefined : checkSource(options.val, 'val');
  const epochs = is.positiveInteger(options.epochs, 'epochs');
  const opt = options.optimizer;
  if (opt === null || typeof opt !== 'object' || typeof opt.step !== 'function' || typeof opt.zeroGrad !== 'function')
    throw typeError('an optimizer (step, zeroGrad)', 'optimizer', opt);
  const likelihood = options.likelihood;
  if (likelihood !== undefined && !isSampleableLikelihood(likelihood))
    throw typeError('a likelihood with loss() and sample() (e.g. new Categorical())', 'likelihood', likelihood);
  if (opt.needsLikelihood === true && likelihood === undefined)
    throw new TypeError(
      `fit: ${opt.constructor?.name ?? 'the optimizer'} gathers its statistics by sampling from the model's predictive distribution: ` +
        'pass `likelihood` (new Categorical() for cross-entropy, new Bernoulli() for BCE with logits, new Gaussian() for squared error)',
    );
  const lossFn = lossOf(options.loss, likelihood);
  if (
    typeof (m as { synchronize?: unknown }).synchronize === 'function' &&
    opt.needsLikelihood === true &&
    opt.distributed !== true
  )
    throw new TypeError(
      `fit: under DistributedDataParallel ${opt.constructor?.name ?? 'this optimizer'} must gather its statistics over every rank: ` +
        'pass `new distributed.CurvatureSync(optimizer)` as the optimizer (otherwise each replica preconditions with its own shard and they drift apart)',
    );
  const warm = options.warmStart ?? 0;
  let warmSource: BatchSource | null = null;
  if (typeof warm === 'number') {
    if (warm !== Infinity) is.nonNegativeInteger(warm, 'warmStart');
    if (warm > 0) warmSource = firstBatches(train, warm);
  } else {
    warmSource = checkSource(warm, 'warmStart');
  }
  if (warmSource !== null) {
    if (typeof opt.warmStart !== 'function')
      throw new TypeError(
        `fit: warmStart needs an optimizer with warmStart() (TNT, KFAC, Shampoo), not ${opt.constructor?.name ?? typeof opt}`,
      );
    if (likelihood === undefined)
      throw new TypeError('fit: warmStart needs `likelihood` (the statistics are sampled from it)');
  }
  const metrics = checkMetrics(options.metrics ?? ['loss']);
  const wantAccuracy = metrics.has('accuracy');
  const callbacks = options.callbacks ?? {};
  if (callbacks === null || typeof callbacks !== 'object')
    throw typeError('an object of callbacks', 'callbacks', callbacks);
  if (callbacks.onBatchEnd !== undefined) is.function(callbacks.onBatchEnd, 'callbacks.onBatchEnd');
  if (callbacks.onEpochEnd !== undefined) is.function(callbacks.onEpochEnd, 'callbacks.onEpochEnd');
  const scheduler = options.scheduler;
  if (scheduler !== undefined && (scheduler === null || typeof scheduler.step !== 'function'))
    throw typeError('a scheduler (step)', 'scheduler', scheduler);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw typeError('an AbortSignal', 'signal', signal);
  const logEvery = is.positiveInteger(options.logEvery ?? 100, 'logEvery');
  const output = options.output ?? process.stdout;
  if (output === null || typeof output !== 'object' || typeof output.write !== 'function')
    throw typeError('a stream (write)', 'output', output);
  const reporter = reporterFor(options.progress ?? 'auto', output, logEvery);

  // An optimizer built over another model's parameters trains nothing: catch it before the first epoch.
  if (Array.isArray(opt.paramGroups)) {
    const mine = new Set(m.parameters());
    if (mine.size > 0 && !opt.paramGroups.some((g) => g.params.some((p: Tensor) => mine.has(p))))
      throw new RangeError("fit: none of the optimizer's parameters belong to the model");
  }

  const forward = forwardOf(m);
  const wasTraining = m.training;
  const history: HistoryEntry[] = [];
  signal?.throwIfAborted();
  const log = writerFor(options.logDir);
  const events = log === null ? null : new EventSink(log.writer);
  let metricsSink: MetricsSink | null = null;
  try {
    if (options.prometheus !== undefined) metricsSink = new MetricsSink(options.prometheus);
  } catch (err) {
    if (log?.owned) log.writer.close();
    throw err;
  }
  const watched = events !== null || metricsSink !== null ? watchOptimizer(opt) : null;
  let globalStep = 0;
  let mem: MemorySample | null = null;
  const before =
    typeof opt.beforeBackward === 'function' && likelihood !== undefined ? opt.beforeBackward.bind(opt) : null;
  try {
    if (warmSource !== null) {
      m.train(true);
      await opt.warmStart!(warmSource as WarmStartBatches, forward, likelihood!);
      signal?.throwIfAborted();
    }
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const started = performance.now();
      const steps = typeof train.length === 'number' ? train.length : null;
      let lossSum = 0,
        correct = 0,
        n = 0,
        step = 0;
      m.train(true);
      for await (const batch of train) {
        signal?.throwIfAborted();
        const [x, y] = batchParts(batch, 'train batch');
        const b = sizeOf(x, y);
        let pending: unknown = undefined;
        const stepStart = performance.now();
        const [l, c] = tidy(() => {
          const out =
            before !== null && typeof opt.splitForward === 'function' ? opt.splitForward(forward, x) : forward(x);
          pending = before?.(out, likelihood);
          // a distributed optimizer (distributed.CurvatureSync) returns a promise: its collective finishes below
          if (pending instanceof Promise) pending.catch(() => undefined);
          const loss = scalarLoss(lossFn(out, y));
          loss.backward();
          return [loss.item(), wantAccuracy ? countCorrect(out, y) : 0];
        });
        step++;
        if (pending instanceof Promise) await pending;
        if (typeof m.synchronize === 'function') await m.synchronize();
        if (!Number.isFinite(l)) {
          opt.zeroGrad();
          const advice =
            typeof opt.divergenceAdvice === 'function' ? opt.divergenceAdvice() : 'lower the learning rate';
          throw new TorchError(
            `fit: the training loss is ${l} at epoch ${epoch}, step ${step}: training diverged; ${advice}`,
            'NON_FINITE',
          );
        }
        const stepped = opt.step();
        if (stepped instanceof Promise) await stepped;
        opt.zeroGrad();
        lossSum += l * b;
        correct += c;
        n += b;
        const now = performance.now();
        const elapsed = (now - started) / 1000;
        globalStep++;
        if (watched !== null) {
          if (globalStep % 10 === 1) mem = memorySample();
          const sample = {
            step: globalStep,
            epoch,
            loss: l,
            batchSize: b,
            stepSeconds: (now - stepStart) / 1000,
            samplesPerSecond: n / Math.max(elapsed, 1e-9),
          };
          const o = watched.sample();
          events?.step(sample, o, globalStep % 10 === 1 ? mem : null);
          metricsSink?.step(sample, o, mem);
        }
        reporter.step({
          epoch,
          epochs,
          step,
          steps,
          loss: lossSum / n,
          accuracy: wantAccuracy ? correct / n : null,
          samplesPerSecond: n / Math.max(elapsed, 1e-9),
          eta: steps === null ? null : (elapsed / step) * Math.max(0, steps - step),
        });
        if (callbacks.onBatchEnd) await callbacks.onBatchEnd({ epoch, step, loss: l, batchSize: b });
        await yieldToEventLoop();
      }
      signal?.throwIfAborted();
      if (n === 0) throw new RangeError(`fit: train gave no batches in epoch ${epoch}`);
      let valLoss: number | null = null,
        valAccuracy: number | null = null;
      if (val !== undefined) {
        m.eval();
        try {
          ({ loss: valLoss, accuracy: valAccuracy } = await evaluateIn(m, val, lossFn, wantAccuracy, signal));
        } finally {
          m.train(true);
        }
      }
      scheduler?.step();
      const entry: HistoryEntry = {
        epoch,
        trainLoss: lossSum / n,
        trainAccuracy: wantAccuracy ? correct / n : null,
        valLoss,
        valAccuracy,
        seconds: (performance.now() - started) / 1000,
      };
      history.push(entry);
      const lr = (opt.paramGroups?.[0] as { lr?: unknown } | undefined)?.lr;
      events?.epoch({ ...entry, lr: typeof lr === 'number' ? lr : null }, globalStep);
      reporter.epoch({ ...entry }, epochs);
      if (callbacks.onEpochEnd) await callbacks.onEpochEnd({ ...entry });
    }
  } finally {
    if (wasTraining !== undefined) m.train(wasTraining);
    watched?.detach();
    if (log !== null) {
      if (log.owned) log.writer.close();
      else log.writer.flush();
    }
  }
  return history;
}
