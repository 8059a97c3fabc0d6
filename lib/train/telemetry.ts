/**
 * What a training run reports while it runs, to TensorBoard event files (a SummaryWriter) and to a Prometheus
 * registry (prom-client, an optional peer dependency): steps, loss, step time, samples per second, the optimizer's
 * skipped steps and inverse (root) refreshes with their time and retries, native bytes and live tensors. fit()
 * (options `logDir`, `prometheus`) and train.inWorker's Trainer (the same options, fed by the job's progress) use it.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { memory } from '../scope.js';
import { is, typeError } from '../errors.js';
import { SummaryWriter } from '../tensorboard/writer.js';

/** One step's numbers (`step` counts every step of the run, from 1). */
export interface StepSample {
  step: number;
  epoch: number;
  loss: number;
  batchSize: number;
  /** Wall-clock seconds of the step (forward, backward, optimizer step). */
  stepSeconds: number;
  samplesPerSecond: number;
}

/** The optimizer's running totals (second-order optimizers; zeros or absent for the others). */
export interface OptimizerSample {
  skippedSteps: number;
  /** Inverse (TNT, KFAC) or root (Shampoo) refreshes so far. */
  refreshes: number;
  /** Seconds of the last refresh, and of all of them. */
  lastRefreshSeconds: number;
  refreshSeconds: number;
  /** Factors retried in float64, and with more damping (TNT, KFAC), and left at their last good value. */
  retriedFloat64: number;
  retriedDamping: number;
  failed: number;
}

/** The native memory of the thread that trains. */
export interface MemorySample {
  nativeBytes: number;
  liveTensors: number;
}

interface Refreshing {
  updateInverses?: () => unknown;
  updateRoots?: () => unknown;
  skippedSteps?: number;
}

/**
 * Times an optimizer's refreshes (updateInverses for TNT and KFAC, updateRoots for Shampoo) by wrapping the method
 * on the instance until detach(); the optimizer's own code calls it through `this`, so every refresh is seen.
 */
export function watchOptimizer(optimizer: unknown): { sample(): OptimizerSample; detach(): void } {
  const o = (optimizer ?? {}) as Refreshing;
  const totals: OptimizerSample = {
    skippedSteps: 0,
    refreshes: 0,
    lastRefreshSeconds: 0,
    refreshSeconds: 0,
    retriedFloat64: 0,
    retriedDamping: 0,
    failed: 0,
  };
  const name =
    typeof o.updateInverses === 'function'
      ? 'updateInverses'
      : typeof o.updateRoots === 'function'
        ? 'updateRoots'
        : null;
  let restore = (): void => {};
  if (name !== null) {
    const own = Object.prototype.hasOwnProperty.call(o, name);
    const original = o[name]!;
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      const t0 = performance.now();
      const report = (original as (...a: unknown[]) => unknown).apply(this, args) as Record<string, number> | undefined;
      const s = (performance.now() - t0) / 1000;
      totals.refreshes++;
      totals.lastRefreshSeconds = s;
      totals.refreshSeconds += s;
      if (report && typeof report === 'object') {
        totals.retriedFloat64 += report.retriedFloat64 ?? 0;
        totals.retriedDamping += report.retriedDamping ?? 0;
        totals.failed += report.failed ?? 0;
      }
      return report;
    };
    o[name] = wrapped;
    restore = () => {
      if (own) o[name] = original;
      else delete o[name];
    };
  }
  return {
    sample: () => ({ ...totals, skippedSteps: typeof o.skippedSteps === 'number' ? o.skippedSteps : 0 }),
    detach: () => restore(),
  };
}

/** The native memory of this thread (an environment's tensors: a worker reports its own). */
export function memorySample(): MemorySample {
  const m = memory();
  return { nativeBytes: m.bytes, liveTensors: m.tensors };
}

/** What fit() and inWorker() take as `prometheus`: a prom-client Registry, and a prefix for the metric names. */
export interface MetricsOptions {
  /** A prom-client `Registry` (e.g. `new client.Registry()` or `client.register`). */
  registry: unknown;
  /** Prefix of every metric name (default 'tensornormal_'). */
  prefix?: string;
  /** Labels added to every sample (e.g. `{ job: 'digits' }`). */
  labels?: Record<string, string>;
}

interface PromClient {
  Counter: new (c: object) => { inc(labels: object, v?: number): void };
  Gauge: new (c: object) => { set(labels: object, v: number): void };
  Histogram: new (c: object) => { observe(labels: object, v: number): void };
}

function loadPromClient(registry: unknown): PromClient {
  // from this package's place first, then from the application's (a copy of the library outside node_modules)
  for (const from of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      return createRequire(from)('prom-client') as PromClient;
    } catch {
      // next
    }
  }
  void registry;
  throw new Error(
    'prometheus: prom-client is not installed (an optional peer dependency of tensornormal): run `npm install prom-client`',
  );
}

/**
 * The run's metrics in a prom-client registry. Counters and histograms are fed step by step; native memory is read
 * when the registry is scraped (collect) from the last sample the trainer reported.
 */
export class MetricsSink {
  private readonly m: {
    steps: { inc(l: object, v?: number): void };
    samples: { inc(l: object, v?: number): void };
    loss: { set(l: object, v: number): void };
    epoch: { set(l: object, v: number): void };
    stepSeconds: { observe(l: object, v: number): void };
    throughput: { set(l: object, v: number): void };
    skipped: { inc(l: object, v?: number): void };
    refreshes: { inc(l: object, v?: number): void };
    refreshSeconds: { observe(l: object, v: number): void };
    retries: { inc(l: object, v?: number): void };
    failed: { inc(l: object, v?: number): void };
  };
  private readonly labels: Record<string, string>;
  private last: OptimizerSample | null = null;
  private mem: MemorySample | null = null;

  constructor(options: MetricsOptions, memoryNow: (() => MemorySample) | null = memorySample) {
    if (options === null || typeof options !== 'object')
      throw typeError('{ registry } (a prom-client Registry)', 'prometheus', options);
    const registry = options.registry as { registerMetric?: unknown } | null;
    if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function')
      throw typeError('a prom-client Registry', 'prometheus.registry', options.registry);
    const p = options.prefix ?? 'tensornormal_';
    is.string(p, 'prometheus.prefix');
    this.labels = { ...(options.labels ?? {}) };
    const labelNames = Object.keys(this.labels);
    const client = loadPromClient(registry);
    const registers = [registry];
    const c = (name: string, help: string) => new client.Counter({ name: p + name, help, labelNames, registers });
    const g = (name: string, help: string, collect?: () => void) =>
      new client.Gauge({ name: p + name, help, labelNames, registers, ...(collect ? { collect } : {}) });
    const h = (name: string, help: string, buckets: number[]) =>
      new client.Histogram({ name: p + name, help, labelNames, registers, buckets });
    const current = (): MemorySample | null => (memoryNow ? memoryNow() : this.mem);
    const labels = this.labels;
    this.m = {
      steps: c('train_steps_total', 'Optimizer steps taken'),
      samples: c('train_samples_total', 'Training samples processed'),
      loss: g('train_loss', 'Loss of the last training batch'),
      epoch: g('train_epoch', 'Current epoch (1 for the first)'),
      stepSeconds: h(
        'train_step_seconds',
        'Wall-clock seconds per training step',
        [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ),
      throughput: g('train_samples_per_second', 'Training samples per second over the epoch so far'),
      skipped: c('optimizer_skipped_steps_total', 'Steps the optimizer skipped (a gradient held NaN or Infinity)'),
      refreshes: c('optimizer_inverse_refreshes_total', 'Inverse (TNT, KFAC) or root (Shampoo) refreshes'),
      refreshSeconds: h(
        'optimizer_inverse_refresh_seconds',
        'Wall-clock seconds per inverse refresh',
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      ),
      retries: c('optimizer_inverse_retries_total', 'Factors whose inversion was retried (float64, then more damping)'),
      failed: c('optimizer_inverse_failures_total', 'Factors that kept their last good inverse'),
    };
    // counters with labels show no sample until their first increment: start them at 0
    for (const k of ['steps', 'samples', 'skipped', 'refreshes', 'retries', 'failed'] as const)
      this.m[k].inc(this.labels, 0);
    g(
      'native_bytes',
      'Bytes of live native tensors of the training thread',
      function (this: { set(l: object, v: number): void }) {
        const m = current();
        if (m) this.set(labels, m.nativeBytes);
      },
    );
    g(
      'live_tensors',
      'Live native tensors of the training thread',
      function (this: { set(l: object, v: number): void }) {
        const m = current();
        if (m) this.set(labels, m.liveTensors);
      },
    );
  }

  /** Feeds one step (or, from a worker's progress, `steps` steps at once). */
  step(s: StepSample, optimizer?: OptimizerSample | null, mem?: MemorySample | null, steps = 1): void {
    const l = this.labels;
    this.m.steps.inc(l, steps);
    this.m.samples.inc(l, s.batchSize * steps);
    this.m.loss.set(l, s.loss);
    this.m.epoch.set(l, s.epoch);
    for (let i = 0; i < steps; i++) this.m.stepSeconds.observe(l, s.stepSeconds); // the mean of `steps` steps
    this.m.throughput.set(l, s.samplesPerSecond);
    if (mem) this.mem = mem;
    if (optimizer) {
      const prev = this.last ?? {
        skippedSteps: 0,
        refreshes: 0,
        lastRefreshSeconds: 0,
        refreshSeconds: 0,
        retriedFloat64: 0,
        retriedDamping: 0,
        failed: 0,
      };
      const d = (k: keyof OptimizerSample): number => Math.max(0, optimizer[k] - prev[k]);
      if (d('skippedSteps')) this.m.skipped.inc(l, d('skippedSteps'));
      const n = d('refreshes');
      if (n > 0) {
        this.m.refreshes.inc(l, n);
        // each refresh since the last sample took about the same time: observe the mean n times
        const each = d('refreshSeconds') / n;
        for (let i = 0; i < n; i++) this.m.refreshSeconds.observe(l, each);
      }
      if (d('retriedFloat64') + d('retriedDamping')) this.m.retries.inc(l, d('retriedFloat64') + d('retriedDamping'));
      if (d('failed')) this.m.failed.inc(l, d('failed'));
      this.last = { ...optimizer };
    }
  }
}

/** The same numbers as TensorBoard scalars (tags `loss/train`, `train/*`, `optimizer/*`, `memory/*`, `epoch/*`). */
export class EventSink {
  private lastRefreshes = 0;
  constructor(readonly writer: SummaryWriter) {}

  step(s: StepSample, optimizer?: OptimizerSample | null, mem?: MemorySample | null): void {
    const w = this.writer;
    w.addScalar('loss/train', s.loss, s.step);
    w.addScalar('train/step_seconds', s.stepSeconds, s.step);
    w.addScalar('train/samples_per_second', s.samplesPerSecond, s.step);
    if (optimizer) {
      w.addScalar('optimizer/skipped_steps', optimizer.skippedSteps, s.step);
      if (optimizer.refreshes > this.lastRefreshes) {
        w.addScalar('optimizer/inverse_refresh_seconds', optimizer.lastRefreshSeconds, s.step);
        w.addScalar('optimizer/inverse_retries', optimizer.retriedFloat64 + optimizer.retriedDamping, s.step);
        this.lastRefreshes = optimizer.refreshes;
      }
    }
    if (mem) {
      w.addScalar('memory/native_bytes', mem.nativeBytes, s.step);
      w.addScalar('memory/live_tensors', mem.liveTensors, s.step);
    }
  }

  epoch(
    e: {
      epoch: number;
      trainLoss?: number | null;
      valLoss?: number | null;
      trainAccuracy?: number | null;
      valAccuracy?: number | null;
      lr?: number | null;
    },
    step: number,
  ): void {
    const w = this.writer;
    if (typeof e.trainLoss === 'number') w.addScalar('loss/train_epoch', e.trainLoss, step);
    if (typeof e.valLoss === 'number') w.addScalar('loss/val', e.valLoss, step);
    if (typeof e.trainAccuracy === 'number') w.addScalar('accuracy/train', e.trainAccuracy, step);
    if (typeof e.valAccuracy === 'number') w.addScalar('accuracy/val', e.valAccuracy, step);
    if (typeof e.lr === 'number') w.addScalar('train/lr', e.lr, step);
    w.addScalar('train/epoch', e.epoch, step);
    w.flush();
  }
}

/** A writer from fit()'s or inWorker()'s `logDir` option: a path (the caller's to close) or the user's own writer. */
export function writerFor(logDir: unknown, flushSecs = 2): { writer: SummaryWriter; owned: boolean } | null {
  if (logDir === undefined) return null;
  if (logDir instanceof SummaryWriter) return { writer: logDir, owned: false };
  if (typeof logDir !== 'string' || logDir === '')
    throw typeError('a directory path or a tensorboard.SummaryWriter', 'logDir', logDir);
  return { writer: new SummaryWriter(logDir, { flushSecs, maxQueue: 100 }), owned: true };
}
