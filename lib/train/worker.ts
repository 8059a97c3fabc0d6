/**
 * Training in a worker thread while the main thread serves: `train.inWorker(jobUrl, options)` starts a
 * `worker_threads` worker that runs a job module and returns a Trainer on the main thread, with progress events,
 * cancellation, and weight snapshots published by the job that can update a serving model in place.
 *
 * Why a worker: a training step (an Adam step on a large batch, a TNT inverse refresh) takes tens to hundreds of
 * milliseconds of CPU; fit() yields between steps, but a request arriving during a step waits for it. In a worker
 * the step runs on another thread and the main thread only pays for copying a snapshot into the serving model.
 *
 * Weights travel as one ArrayBuffer per snapshot, transferred (not copied) from the worker; the copy into the
 * serving model's parameters is the only copy on the main thread. When the next snapshot arrives the previous
 * buffer is transferred back for reuse, so a snapshot is valid until the next 'weights' event.
 */
import { EventEmitter } from 'node:events';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TorchError, type TorchErrorCode, is, typeError } from '../errors.js';
import { tidy } from '../scope.js';
import { noGrad } from '../autograd.js';
import { native } from '../native.js';
import type { FitCallbacks } from './fit.js';
import {
  checkSnapshot,
  itemBytes,
  loadSnapshot,
  type SnapshotModel,
  type WeightEntry,
  type WeightsSnapshot,
} from './snapshot.js';
import { Tensor } from '../tensor.js';
import { tensor } from '../creation.js';
import type { SummaryWriter } from '../tensorboard/writer.js';
import {
  EventSink,
  MetricsSink,
  writerFor,
  type MemorySample,
  type MetricsOptions,
  type OptimizerSample,
} from './telemetry.js';

/** Options of `ctx.publish()`. */
export interface PublishOptions {
  /** A step count to tag the snapshot with (`snapshot.step`). */
  step?: number;
  /** Any structured-cloneable value to send with the snapshot (`snapshot.info`). */
  info?: unknown;
}

/** What a job's training function receives in the worker. */
export interface JobContext {
  /** The `workerData` option given to inWorker() (structured-cloned). */
  readonly workerData: unknown;
  /** Aborted by trainer.cancel(); pass it to fit({ signal }) or check it between steps. */
  readonly signal: AbortSignal;
  /** Sends any structured-cloneable value to the main thread as a 'progress' event. */
  progress(data: unknown): void;
  /**
   * Packs the model's stateDict into one buffer (one copy) and transfers it to the main thread as a 'weights'
   * event. If the previous snapshot has not been taken yet, this one is held and sent when it has (replacing any
   * older held one). Returns the snapshot's version.
   */
  publish(model: SnapshotModel, options?: PublishOptions): number;
  /**
   * fit() callbacks that send progress every `progressEvery` steps (default 10) and after each epoch, and publish
   * the model every `publishEvery` steps (default 100; 0 for epochs only) and after each epoch. A step's progress
   * carries the batch's numbers (epoch, step, loss, batchSize), `steps` (all so far), `stepSeconds` and
   * `samplesPerSecond` over the steps since the last report, this thread's `memory` (nativeBytes, liveTensors),
   * and with `optimizer` its refreshes, retries and skipped steps (`optimizer`): what the Trainer's `logDir` and
   * `prometheus` options publish.
   */
  callbacks(
    model: SnapshotModel,
    options?: { publishEvery?: number; progressEvery?: number; optimizer?: unknown },
  ): FitCallbacks;
  /**
   * For a hand-written loop: call (and await) after each optimizer step, with the batch size. Counts the step for
   * the trainer's 'throughput' events and, with a numeric `priority`, pauses between steps while the server answers
   * requests (fit() with ctx.callbacks() does this by itself). Otherwise a turn of the event loop (cancel()).
   */
  afterStep(batchSize?: number): Promise<void>;
}

/** The job's training rate, as the 'throughput' event reports it (about once a second while it trains). */
export interface Throughput {
  /** Optimizer steps since the job started (those reported by ctx.callbacks() or ctx.afterStep()). */
  steps: number;
  /** Samples since the job started (the batch sizes given). */
  samples: number;
  /** Over the interval since the previous report: */
  stepsPerSecond: number;
  samplesPerSecond: number;
  /** Length of that interval in seconds. */
  seconds: number;
  /** Fraction of the interval the job spent paused for requests ('serve' or a numeric `priority`; 0 otherwise). */
  paused: number;
  /**
   * The job's pace over the interval against its pace with the server quiet: the steps' worth (each the mean time
   * of a step during which no request came, at most its own time less the longest wait for a core of one of the
   * job's threads during it), divided by the interval (1: as fast as on a quiet server; a numeric `priority` s keeps
   * it at s or more while the cores allow).
   */
  pace: number;
  /** The mean time of a step during which no request came (the job's quiet pace; null before the first). */
  quietStepSeconds: number | null;
}

/** @internal an error as it crosses the thread boundary */
export interface WorkerError {
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
}

/** @internal messages from the worker */
export type FromWorker =
  | { type: 'progress'; data: unknown }
  | {
      type: 'weights';
      version: number;
      step: number | null;
      info: unknown;
      time: number;
      entries: WeightEntry[];
      buffer: ArrayBuffer;
    }
  | { type: 'throughput'; data: Throughput }
  | { type: 'done'; result: unknown }
  | { type: 'error'; error: WorkerError };

/** @internal messages to the worker */
export type ToWorker = { type: 'cancel'; reason?: string } | { type: 'taken'; buffer?: ArrayBuffer };

/** Options of `train.inWorker()`. */
export interface InWorkerOptions {
  /** Passed to the job as `ctx.workerData` (structured-cloned). */
  workerData?: unknown;
  /** A model on this thread to keep updated: every snapshot is copied into it (under noGrad) as it arrives. */
  serve?: SnapshotModel;
  /** How long cancel() waits for the job to stop at its next step before terminating the worker (ms, default 10000). */
  graceMs?: number;
  /** Environment variables of the worker (default: this process's, shared). */
  env?: Record<string, string | undefined>;
  /** V8 heap limits of the worker. */
  resourceLimits?: ResourceLimits;
  /**
   * How much lower the training threads' nice value is than the server's (Linux: added to it, capped at 19; the
   * OpenMP and OpenBLAS threads the job starts inherit it; 0 to 19). Default 19 with priority 'serve', 0 with
   * 'train' or a training budget.
   */
  nice?: number;
  /**
   * The Linux scheduling policy of the job's threads (inherited by the helpers they start):
   * - 'short' (default with priority 'serve'): SCHED_OTHER with a 0.1 ms time slice (Linux 6.12+; earlier kernels
   *   keep their own): a request's thread that wakes waits at most that long for a core the job holds, where the
   *   default slice lets the job keep it for up to ~3 ms;
   * - 'idle': SCHED_IDLE, only cycles no other thread wants: a request's thread takes the core at once, but so does
   *   every other process's, and on a busy machine the job starves even while the server is quiet;
   * - 'batch': SCHED_BATCH; 'normal' (default otherwise): SCHED_OTHER.
   * docs/service.md has the measurements behind the default.
   */
  scheduling?: 'idle' | 'batch' | 'normal' | 'short';
  /**
   * 'worker' (default, with nice > 0): OpenBLAS's thread pool is restarted when the first trainer starts, so that
   * its next user, the job, creates the matmul helper threads and they inherit the job's lower priority (OpenBLAS
   * keeps one process-wide pool; at the server's priority its helpers take the cores from requests during every
   * large matmul of training). 'shared': leave the pool alone. See the README for the caveat.
   */
  blasThreads?: 'worker' | 'shared';
  /**
   * true: raise glibc malloc's mmap and trim thresholds (32 MiB, 256 MiB) for the process, so that the job's
   * per-step buffers are reused instead of mapped and unmapped (an munmap holds the process's memory-map lock, which
   * the server's thread can then wait for behind the low-priority job). Default false: on this project's shared VM
   * its effect on the worst request was within the noise (see the README). Freed memory then goes back to the
   * system later (RSS stays nearer its peak).
   */
  tuneMalloc?: boolean;
  /** A name for the worker thread (shown in inspectors). */
  name?: string;
  /**
   * TensorBoard logging of the job's progress (what `ctx.callbacks` sends): a run directory (closed when the
   * worker exits) or a tensorboard.SummaryWriter. Tags as fit()'s `logDir`, at the reported steps.
   */
  logDir?: string | SummaryWriter;
  /** Prometheus metrics of the job's progress in a prom-client registry (as fit()'s `prometheus`). */
  prometheus?: MetricsOptions;
  /**
   * Who gets the cores when requests and training compete (Linux; see docs/service.md for what each costs). The
   * job's pace is measured against its own pace with the server quiet (the mean step during which no request came):
   * - 'serve' (default): the job's threads (its own, its OpenMP team, OpenBLAS's pool) run at nice 19 with a
   *   0.1 ms time slice (`scheduling`), so a request's thread takes the core from them within that. While the
   *   server answers requests (the `serve` model's forwards, or trainer.serving()), the job's steps run on one
   *   thread, and it pauses between steps until 5 ms pass without one, as long as it keeps a tenth of its pace;
   *   when it falls below (the server keeps the cores busy), the server's thread steps aside for up to 1 ms in
   *   every 8 at the start of a forward. Measured: 0.09-0.12 of its pace at p99 within 1.5x of the server's
   *   without training on a quiet machine, and progress on a busy one (docs/service.md).
   * - a number s in (0, 1): a training budget. The job runs at nice 0 (unless `nice` says otherwise), on one thread
   *   while requests come, and pauses the same way, keeping at least s of its pace while the cores allow: on a
   *   busy machine too, at a normal thread's priority, and requests pay for it.
   * - 'train': the job at the server's priority (nice 0 unless `nice` says otherwise), never paused: requests and
   *   steps share the cores evenly.
   */
  priority?: 'serve' | 'train' | number;
}

/** The Trainer's events and their arguments. */
export interface TrainerEvents {
  progress: [data: unknown];
  throughput: [data: Throughput];
  weights: [snapshot: WeightsSnapshot];
  error: [error: Error];
  exit: [code: number];
}

/** The worker's error as an Error of this thread: TorchError (with its code), TypeError, RangeError or Error, with the worker's stack. */
function reviveError(e: WorkerError): Error {
  let err: Error;
  if (e.name === 'TorchError') err = new TorchError(e.message, (e.code ?? 'TORCH_ERROR') as TorchErrorCode);
  else if (e.name === 'TypeError') err = new TypeError(e.message);
  else if (e.name === 'RangeError') err = new RangeError(e.message);
  else {
    err = new Error(e.message);
    if (e.name !== 'Error') err.name = e.name;
    if (e.code !== undefined) (err as Error & { code?: string }).code = e.code;
  }
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

const RUNNER = new URL('./job-runner.js', import.meta.url);
/** The share of its quiet pace a job with priority 'serve' keeps while the server answers requests. */
const SERVE_SHARE = 0.1;
/** While a 'serve' job is below its share, the server's thread waits up to YIELD_MS once per YIELD_EVERY_MS. */
const YIELD_MS = 1;
const YIELD_EVERY_MS = 8;
const YIELD_BACKOFF_MS = 250;
/** The most bytes of a snapshot copied into the served model's second copy between two turns of the event loop. */
const SLICE_BYTES = 256 << 10;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
let running = 0; // trainers whose worker has not exited
let blasOfJobs = false; // OpenBLAS's pool was restarted for a job: its threads may have a job's priority
let ranJob = false; // a job at a lower priority ran since the last trainer exited
let autogradThreads = false; // this thread ran a backward pass before the first job (startAutogradThreads)

/**
 * libtorch 2.x starts its autograd engine's device threads (`pt_autograd_N`: for other devices' work, idle on a
 * CPU-only machine) once per process, from the thread that runs the first backward pass, and they inherit its
 * policy: a job's first backward left one at SCHED_IDLE for the rest of the process (libtorch 2.6, Debian 13). A
 * backward pass of one element here, before the first job, starts them at this thread's priority.
 */
function startAutogradThreads(): void {
  if (autogradThreads) return;
  autogradThreads = true;
  tidy(() => {
    const x = tensor([1], { requiresGrad: true });
    x.sum().backward();
    x.grad?.dispose();
  });
}

/**
 * A training job running in a worker thread. Events: 'progress' (whatever the job sent), 'weights' (a
 * WeightsSnapshot, after it was loaded into `serve`), 'error' (only emitted when someone listens; `done` rejects
 * with the same error), 'exit' (the worker's exit code).
 */
export class Trainer extends EventEmitter<TrainerEvents> {
  /** The underlying worker. */
  readonly worker: Worker;
  /** Resolves with what the job's function returned; rejects with its error (its stack is the worker's), or an AbortError after cancel(). */
  readonly done: Promise<unknown>;
  private latest: WeightsSnapshot | null = null;
  private readonly serve: SnapshotModel | undefined;
  private readonly graceMs: number;
  private exited = false;
  private readonly exitPromise: Promise<number>;
  private settled = false;
  private cancelReason: string | null = null;
  // [0]: requests served (forwards of `serve`, trainer.serving()); the job pauses while it changes
  // [1]: 1 while a 'serve' job is below its share: serving() then steps aside now and then (yieldToJob)
  private readonly activity = new Int32Array(new SharedArrayBuffer(8));
  private yielded = 0; // when serving() last stepped aside
  private hook: { remove(): void } | null = null;
  // the served model's second copy of its tensors (double buffer): a snapshot is copied into it in slices between
  // requests, then swapped in at once; null until the first snapshot, or when the model's tensors are not Tensors
  private standby: Tensor[] | null = null;
  // the snapshot loads in progress, in order; 'done' and 'exit' wait for them
  private loads: Promise<void> = Promise.resolve();

  /** @internal use train.inWorker() */
  constructor(job: URL | string, options: InWorkerOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    const jobUrl =
      typeof job === 'string'
        ? job.startsWith('file:')
          ? job
          : pathToFileURL(resolvePath(job)).href
        : job instanceof URL
          ? job.href
          : null;
    if (jobUrl === null)
      throw typeError("the job module's URL (new URL('./job.js', import.meta.url)) or file path", 'job', job);
    this.serve = options.serve;
    if (this.serve !== undefined && (this.serve === null || typeof this.serve.stateDict !== 'function'))
      throw typeError('a model with stateDict() (an nn.Module)', 'serve', this.serve);
    this.graceMs = is.nonNegative(options.graceMs ?? 10_000, 'graceMs');
    const priority = options.priority ?? 'serve';
    if (typeof priority === 'number') {
      if (!(priority > 0 && priority < 1))
        throw new RangeError(`Expected a number in (0, 1) for priority but received ${priority}`);
    } else is.oneOf(priority, 'priority', ['serve', 'train'] as const);
    const nice = is.integer(options.nice ?? (priority === 'serve' ? 19 : 0), 'nice');
    if (nice < 0 || nice > 19) throw new RangeError(`Expected an integer in [0, 19] for nice but received ${nice}`);
    if (!existsSync(fileURLToPath(RUNNER)))
      throw new Error(
        `train.inWorker needs the compiled library: ${fileURLToPath(RUNNER)} is missing (run \`npm run build:ts\`)`,
      );
    const scheduling = is.oneOf(options.scheduling ?? (priority === 'serve' ? 'short' : 'normal'), 'scheduling', [
      'idle',
      'batch',
      'normal',
      'short',
    ] as const);
    const blas = is.oneOf(options.blasThreads ?? 'worker', 'blasThreads', ['worker', 'shared'] as const);
    const log = writerFor(options.logDir);
    let metrics: MetricsSink | null = null;
    try {
      if (options.prometheus !== undefined) metrics = new MetricsSink(options.prometheus, null);
    } catch (err) {
      if (log?.owned) log.writer.close();
      throw err;
    }
    const events = log === null ? null : new EventSink(log.writer);
    // Only with no other trainer alive: the restart must not meet a BLAS call in progress on another thread (this
    // thread is here, not in one). Whatever the priority: the pool must not keep an earlier job's.
    if (blas === 'worker' && running === 0 && native.shutdownBlasThreads()) blasOfJobs = true;
    if (is.boolean(options.tuneMalloc ?? false, 'tuneMalloc')) native.raiseMallocThresholds();
    running++;
    if (nice > 0 || scheduling !== 'normal') {
      ranJob = true;
      startAutogradThreads();
    }
    this.worker = new Worker(RUNNER, {
      workerData: {
        job: jobUrl,
        data: options.workerData,
        nice,
        scheduling,
        stepAside: priority === 'serve',
        narrow: priority !== 'train',
        share: priority === 'serve' ? SERVE_SHARE : priority === 'train' ? null : priority,
        activity: this.activity,
      },
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.resourceLimits !== undefined ? { resourceLimits: options.resourceLimits } : {}),
      ...(options.name !== undefined ? { name: options.name } : {}),
    });
    let resolve!: (v: unknown) => void, reject!: (e: Error) => void;
    this.done = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.done.catch(() => {}); // observed through done or 'error'; never an unhandled rejection
    const fail = (err: Error): void => {
      if (this.settled) return;
      this.settled = true;
      if (this.listenerCount('error') > 0) this.emit('error', err);
      reject(err);
    };
    // the served model's forwards tell a job with a training budget that requests are being answered
    if (this.serve !== undefined && priority !== 'train') {
      const register = (this.serve as { registerForwardPreHook?: (h: () => void) => { remove(): void } })
        .registerForwardPreHook;
      if (typeof register === 'function') this.hook = register.call(this.serve, () => this.serving());
    }
    let reported = 0;
    const telemetry = (data: unknown): void => {
      const d = data as {
        kind?: unknown;
        steps?: unknown;
        epoch?: number;
        loss?: number;
        batchSize?: number;
        stepSeconds?: number;
        samplesPerSecond?: number;
        memory?: MemorySample;
        optimizer?: OptimizerSample;
      } | null;
      if (d === null || typeof d !== 'object' || typeof d.steps !== 'number') return;
      if (d.kind === 'step' && typeof d.loss === 'number' && typeof d.stepSeconds === 'number') {
        const sample = {
          step: d.steps,
          epoch: d.epoch ?? 0,
          loss: d.loss,
          batchSize: d.batchSize ?? 0,
          stepSeconds: d.stepSeconds,
          samplesPerSecond: d.samplesPerSecond ?? 0,
        };
        events?.step(sample, d.optimizer, d.memory);
        metrics?.step(sample, d.optimizer, d.memory, Math.max(1, d.steps - reported));
        reported = d.steps;
      } else if (d.kind === 'epoch') events?.epoch(d as { epoch: number }, d.steps);
    };
    this.worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'progress') {
        if (events !== null || metrics !== null) telemetry(msg.data);
        this.emit('progress', msg.data);
      } else if (msg.type === 'throughput') this.emit('throughput', msg.data);
      else if (msg.type === 'weights')
        // in order; whatever happens to one load, the next ones, 'done' and 'exit' still come
        this.loads = this.loads
          .then(() => this.onWeights(msg))
          .catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
      else if (msg.type === 'done') {
        this.settled = true;
        void this.loads.then(() => resolve(msg.result)); // once the last snapshot is in `serve`
      } else if (msg.type === 'error') {
        const err = reviveError(msg.error);
        void this.loads.then(() => fail(err));
      }
    });
    this.worker.on('error', (err) => fail(err instanceof Error ? err : new Error(String(err))));
    this.exitPromise = new Promise((res) => {
      this.worker.on('exit', (code) => void this.loads.then(() => exit(code)));
      const exit = (code: number): void => {
        this.exited = true;
        running--;
        Atomics.store(this.activity, 1, 0);
        for (const t of this.standby ?? []) t.dispose();
        this.standby = null;
        if (log !== null) {
          if (log.owned) log.writer.close();
          else log.writer.flush();
        }
        // the pool's threads have the job's priority: the next multi-threaded BLAS call (on this thread, say)
        // starts a new one at its own
        if (running === 0) native.narrowThreads('reset'); // a job terminated while its steps ran on one thread
        if (blasOfJobs && running === 0) blasOfJobs = !native.shutdownBlasThreads();
        // libtorch remakes its pthreadpool (XNNPACK's; one helper thread with 2 threads) on every setNumThreads, from
        // the calling thread: one a job made keeps the job's policy after it (a SCHED_IDLE helper, seen with 1.13 and
        // 2.6). Setting this thread's count again remakes it here, at the server's priority.
        if (running === 0 && ranJob) {
          native.setNumThreads(native.getNumThreads());
          ranJob = false;
        }
        this.hook?.remove();
        this.hook = null;
        if (this.cancelReason !== null) {
          // terminated after the grace period: still the cancellation the caller asked for
          const abort = new Error(this.cancelReason);
          abort.name = 'AbortError';
          fail(abort);
        } else fail(new Error(`the training worker exited (code ${code}) before its job finished`));
        this.emit('exit', code);
        res(code);
      };
    });
  }

  private async onWeights(msg: Extract<FromWorker, { type: 'weights' }>): Promise<void> {
    const snapshot: WeightsSnapshot = {
      version: msg.version,
      step: msg.step,
      info: msg.info,
      time: msg.time,
      entries: msg.entries,
      buffer: msg.buffer,
    };
    const previous = this.latest;
    let loadError: Error | null = null;
    if (this.serve !== undefined && !this.exited) {
      try {
        const timing = await this.swapIn(this.serve, snapshot);
        snapshot.loadMs = timing.loadMs;
        snapshot.loadBlockMs = timing.loadBlockMs;
      } catch (err) {
        loadError = err as Error;
      }
    }
    this.latest = snapshot;
    // hand the superseded buffer back for reuse (it is detached here from then on)
    const back =
      previous !== null && previous.buffer.byteLength === snapshot.buffer.byteLength && previous.buffer.byteLength > 0
        ? previous.buffer
        : undefined;
    if (!this.exited) this.worker.postMessage({ type: 'taken', buffer: back } satisfies ToWorker, back ? [back] : []);
    if (loadError !== null) {
      // a serving model that does not match the job's is a programming error: stop training and report it
      if (this.listenerCount('error') > 0) this.emit('error', loadError);
      void this.cancel(loadError.message);
      return;
    }
    this.emit('weights', snapshot);
  }

  /**
   * Loads a snapshot into the served model off the request path: copied into a second copy of the model's tensors
   * in slices of SLICE_BYTES, one per turn of the event loop (requests are answered between them, from the previous
   * weights), then swapped in at once (each tensor takes the second copy's storage, keeping its identity; the
   * previous storage becomes the second copy). Models whose stateDict holds other tensors get one synchronous copy.
   */
  private async swapIn(
    model: SnapshotModel,
    snapshot: WeightsSnapshot,
  ): Promise<{ loadMs: number; loadBlockMs: number }> {
    let t0 = performance.now();
    const tensors = checkSnapshot(model, snapshot);
    if (!tensors.every(([, t]) => t instanceof Tensor && t.device === 'cpu')) {
      noGrad(() => tidy(() => loadSnapshot(model, snapshot)));
      const ms = performance.now() - t0;
      return { loadMs: ms, loadBlockMs: ms };
    }
    const live = tensors.map(([, t]) => t as Tensor);
    if (this.standby === null || this.standby.length !== live.length)
      this.standby = live.map((t) => tidy(() => t.detach().clone().contiguous()));
    const standby = this.standby;
    let loadMs = 0,
      loadBlockMs = 0,
      budget = SLICE_BYTES;
    for (let i = 0; i < live.length; i++) {
      const e = snapshot.entries[i]!;
      const item = itemBytes(e.dtype);
      const numel = e.byteLength / item;
      for (let at = 0; at < numel;) {
        const n = Math.min(numel - at, Math.max(1, Math.floor(budget / item)));
        const span = new Uint8Array(snapshot.buffer, e.offset + at * item, n * item);
        if (at === 0 && n === numel) standby[i]!._copyFrom(span);
        else tidy(() => standby[i]!.reshape([-1]).narrow(0, at, n)._copyFrom(span));
        at += n;
        budget -= n * item;
        if (budget <= 0) {
          const ms = performance.now() - t0;
          loadMs += ms;
          loadBlockMs = Math.max(loadBlockMs, ms);
          await turn();
          if (this.standby !== standby) throw new Error('the trainer stopped while a snapshot was loading');
          t0 = performance.now();
          budget = SLICE_BYTES;
        }
      }
    }
    // the swap: a pointer per tensor, one synchronous step (no request sees a mix of two snapshots)
    noGrad(() => {
      for (let i = 0; i < live.length; i++) {
        const old = live[i]!.detach();
        native.setData(live[i]!._h, standby[i]!._h);
        standby[i]!.dispose();
        standby[i] = old;
      }
    });
    const ms = performance.now() - t0;
    return { loadMs: loadMs + ms, loadBlockMs: Math.max(loadBlockMs, ms) };
  }

  /**
   * Tells the job that a request is being served, for a numeric `priority` (the training budget): the forwards of
   * the `serve` model do it by themselves; call it from request handlers whose work is something else.
   */
  serving(): void {
    Atomics.add(this.activity, 0, 1);
    if (Atomics.load(this.activity, 1) !== 0) {
      // the 'serve' job is starved (its low priority gets few cycles while the server keeps the cores busy): wait for it
      // up to YIELD_MS, at most once per YIELD_EVERY_MS (the job clears the flag and wakes this thread when it has
      // its share again)
      const now = performance.now();
      if (now - this.yielded >= YIELD_EVERY_MS) {
        Atomics.wait(this.activity, 1, 1, YIELD_MS);
        this.yielded = performance.now();
        // back late: other processes took the core (a busy machine, where the job gains little from it), and
        // each wait costs the requests more than YIELD_MS: none for a quarter of a second
        if (this.yielded - now > 3 * YIELD_MS) this.yielded += YIELD_BACKOFF_MS;
      }
    }
  }

  /** The newest snapshot (valid until the next 'weights' event), or null before the first. */
  weights(): WeightsSnapshot | null {
    return this.latest;
  }

  /**
   * Copies a snapshot (default: the newest) into `model`'s parameters and buffers in place, under noGrad.
   * Returns the snapshot's version, or null when there is none yet. Throws RangeError when the model does not
   * match (names, dtypes, shapes).
   */
  loadInto(model: SnapshotModel, snapshot: WeightsSnapshot | null = this.latest): number | null {
    if (snapshot === null) return null;
    noGrad(() => tidy(() => loadSnapshot(model, snapshot)));
    return snapshot.version;
  }

  /**
   * Asks the job to stop (aborts `ctx.signal`); terminates the worker if it has not exited after `graceMs`.
   * Resolves with the worker's exit code once it has exited; `done` rejects with an AbortError unless the job
   * finished first.
   */
  async cancel(reason?: string): Promise<number> {
    if (reason !== undefined) is.string(reason, 'reason');
    if (!this.exited) {
      this.cancelReason ??= reason ?? 'training was cancelled';
      this.worker.postMessage({ type: 'cancel', reason } satisfies ToWorker);
      const timer = setTimeout(() => void this.worker.terminate(), this.graceMs);
      timer.unref();
      const code = await this.exitPromise;
      clearTimeout(timer);
      return code;
    }
    return this.exitPromise;
  }

  /** Stops the worker now (no grace); `done` rejects unless the job had finished. */
  async terminate(): Promise<number> {
    if (!this.exited) await this.worker.terminate();
    return this.exitPromise;
  }
}

/**
 * Starts a training job in a worker thread. The job module's default export (or its `train` export) is an async
 * function receiving a JobContext; what it returns resolves `trainer.done`.
 *
 *   // job.js
 *   import { fit, nn, optim } from 'tensornormal';
 *   export default async function (ctx) {
 *     const model = makeModel();
 *     await fit(model, { ..., signal: ctx.signal, callbacks: ctx.callbacks(model, { publishEvery: 50 }) });
 *     ctx.publish(model);
 *     return { done: true };
 *   }
 *
 *   // server.js
 *   const served = makeModel();
 *   const trainer = train.inWorker(new URL('./job.js', import.meta.url), { serve: served });
 *   trainer.on('progress', (p) => console.log(p));
 *   // requests use `served` (under noGrad); each snapshot is copied into it between two requests
 */
export function inWorker(job: URL | string, options: InWorkerOptions = {}): Trainer {
  return new Trainer(job, options);
}
