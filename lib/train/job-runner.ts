/**
 * The worker side of train.inWorker(): the worker thread's entry module. It imports the job module, runs its
 * training function with a JobContext, and speaks the message protocol of lib/train/worker.ts: progress, weight
 * snapshots (each a transferred ArrayBuffer), the result or the error; cancel and snapshot acknowledgements back.
 *
 * At most one snapshot is in flight: a snapshot published while the main thread has not taken the previous one is
 * held and replaces any older held one, so a busy main thread never makes snapshots pile up. Buffers come back
 * with the acknowledgements and are reused.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { native } from '../native.js';
import { layoutOf, namedTensors, packInto, type SnapshotModel } from './snapshot.js';
import type { FitCallbacks } from './fit.js';
import { memorySample, watchOptimizer } from './telemetry.js';
import type { FromWorker, JobContext, PublishOptions, ToWorker, WorkerError } from './worker.js';

const port = parentPort;
if (port === null) throw new Error('tensornormal job-runner: this module runs in a worker started by train.inWorker()');
const { job, data, nice, scheduling, stepAside, narrow, share, activity } = workerData as {
  job: string;
  data: unknown;
  nice: number;
  scheduling: 'idle' | 'batch' | 'normal' | 'short';
  stepAside: boolean;
  narrow: boolean;
  share: number | null;
  activity: Int32Array;
};
// Before the job's first parallel region: the threads this thread starts (its OpenMP team, OpenBLAS's pool after
// the trainer restarted it) inherit the lower priority and the scheduling policy.
if (nice !== 0) native.lowerThreadPriority(nice);
if (scheduling !== 'normal') native.threadScheduling(scheduling);

const controller = new AbortController();
let version = 0;
let outstanding = 0;
let held: Extract<FromWorker, { type: 'weights' }> | null = null;
const pool: ArrayBuffer[] = [];

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

function sendWeights(msg: Extract<FromWorker, { type: 'weights' }>): void {
  outstanding++;
  post(msg, msg.buffer.byteLength > 0 ? [msg.buffer] : []);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'cancel') {
    controller.abort(new DOMException(msg.reason ?? 'training was cancelled', 'AbortError'));
  } else if (msg.type === 'taken') {
    outstanding = Math.max(0, outstanding - 1);
    if (msg.buffer !== undefined && pool.length < 2) pool.push(msg.buffer);
    if (held !== null && outstanding === 0) {
      const h = held;
      held = null;
      sendWeights(h);
    }
  }
});

function takeBuffer(byteLength: number): ArrayBuffer {
  const i = pool.findIndex((b) => b.byteLength === byteLength);
  if (i >= 0) return pool.splice(i, 1)[0]!;
  return new ArrayBuffer(byteLength);
}

function publish(model: SnapshotModel, options: PublishOptions = {}): number {
  if (options === null || typeof options !== 'object') throw new TypeError('publish: expected an options object');
  const step = options.step ?? null;
  if (step !== null && (typeof step !== 'number' || !Number.isFinite(step)))
    throw new TypeError(
      `publish: expected a finite number for step but received ${String(step)} of type ${typeof step}`,
    );
  const tensors = namedTensors(model, 'publish');
  const { entries, byteLength } = layoutOf(tensors);
  const buffer = takeBuffer(byteLength);
  packInto(tensors, entries, buffer);
  const msg = {
    type: 'weights' as const,
    version: ++version,
    step,
    info: options.info ?? null,
    time: Date.now(),
    entries,
    buffer,
  };
  if (outstanding === 0) sendWeights(msg);
  else {
    if (held !== null && pool.length < 2) pool.push(held.buffer);
    held = msg;
  }
  return msg.version;
}

// ---------------------------------------------------------------- pace and throughput
const WARMUP_STEPS = 3; // the job's first steps: slower than the rest, not a measure of its pace
const QUIET_MS = 5; // no request for this long: the server is idle, the job runs freely
const TAU_MS = 1000; // memory of the pace (decay time)
const REPORT_MS = 1000;
let totalSteps = 0,
  totalSamples = 0;
let resumed = performance.now(); // when the step in progress started (the end of the previous pause)
// The budget counts progress: a step is worth the mean quiet step (during which no request came), at most its own
// time less the time the job's threads waited for a core during it, so that the share is the job's steps/s
// against its steps/s with the server quiet (what bench/service.mjs measures as steps/s during requests against
// after them).
let paceMs = NaN;
let fastestMs = Infinity;

/**
 * The job's threads and how long each has waited for a core while runnable (Linux: the run delay in
 * /proc/self/task/<tid>/schedstat): this thread and the helpers it started for its parallel work (its OpenMP team,
 * OpenBLAS's pool after the trainer restarted it), found by their nice value and policy, which they inherit from
 * it. At nice 0 under SCHED_OTHER they cannot be told from the server's threads: this thread alone. A step's lost
 * time is the longest wait of one of them: while a helper waits for a core, the others wait for it, and that is not
 * their run delay. (Node closes the files a worker opened when it exits.)
 */
class JobThreads {
  private readonly fds = new Map<string, number>();
  private readonly buf = Buffer.alloc(128);
  private readonly mark: { nice: string; policy: string } | null = null;
  constructor() {
    try {
      const self = readlinkSync('/proc/thread-self').split('/').at(-1)!;
      this.fds.set(self, openSync(`/proc/self/task/${self}/schedstat`, 'r'));
      const f = this.fields(self);
      if (f !== null && (f.nice !== '0' || f.policy !== '0')) this.mark = f;
    } catch {
      // not Linux: no run delays
    }
  }
  private fields(tid: string): { nice: string; policy: string } | null {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return { nice: f[16]!, policy: f[38]! };
    } catch {
      return null; // exited
    }
  }
  /** Looks for helpers started since the last scan (and forgets those that exited). */
  scan(): void {
    if (this.mark === null) return;
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      return;
    }
    const live = new Set(tids);
    for (const [tid, fd] of this.fds)
      if (!live.has(tid)) {
        closeSync(fd);
        this.fds.delete(tid);
      }
    for (const tid of tids) {
      if (this.fds.has(tid) || tid === String(process.pid)) continue;
      const f = this.fields(tid);
      if (f === null || f.nice !== this.mark.nice || f.policy !== this.mark.policy) continue;
      try {
        this.fds.set(tid, openSync(`/proc/self/task/${tid}/schedstat`, 'r'));
      } catch {
        // exited meanwhile
      }
    }
  }
  /** Each known thread's run delay so far, in ms (empty where unknown). */
  delays(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tid, fd] of this.fds) {
      try {
        const n = readSync(fd, this.buf, 0, this.buf.length, 0);
        out.set(tid, Number(this.buf.toString('latin1', 0, n).split(' ')[1]) / 1e6);
      } catch {
        // exited: forgotten at the next scan
      }
    }
    return out;
  }
}
const jobThreads = new JobThreads();
/** The longest wait for a core of one of the job's threads between two delays() readings (NaN where unknown). */
function lostMs(from: Map<string, number>, to: Map<string, number>): number {
  if (to.size === 0) return NaN;
  let lost = 0;
  for (const [tid, d] of to) lost = Math.max(lost, d - (from.get(tid) ?? 0));
  return lost;
}
let delayAt = jobThreads.delays();
let elapsed = 0, // decayed ms since the job started (steps and pauses) and the quiet worth of the steps in it
  progress = 0;
let lastSeen = Atomics.load(activity, 0);
let report = { at: performance.now(), steps: 0, samples: 0, paused: 0, progress: 0 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function account(ms: number, worth: number): void {
  const decay = Math.exp(-ms / TAU_MS);
  elapsed = elapsed * decay + ms;
  progress = progress * decay + worth;
}

function throughput(now: number): void {
  const ms = now - report.at;
  if (ms < REPORT_MS) return;
  jobThreads.scan(); // helpers started since (an OpenMP team, OpenBLAS's pool start with the first large steps)
  post({
    type: 'throughput',
    data: {
      steps: totalSteps,
      samples: totalSamples,
      stepsPerSecond: ((totalSteps - report.steps) * 1000) / ms,
      samplesPerSecond: ((totalSamples - report.samples) * 1000) / ms,
      seconds: ms / 1000,
      paused: Math.min(1, report.paused / ms),
      pace: Math.min(1, report.progress / ms),
      quietStepSeconds: Number.isFinite(paceMs) ? paceMs / 1000 : null,
    },
  });
  report = { at: now, steps: totalSteps, samples: totalSamples, paused: 0, progress: 0 };
}

/**
 * After each step: counts it and, with a training budget (`share`), waits while requests are being served (the
 * activity counter changed within QUIET_MS) as long as the job's pace stays above `share` of its quiet pace.
 */
async function afterStep(batchSize = 0): Promise<void> {
  if (!Number.isFinite(batchSize) || batchSize < 0)
    throw new TypeError(`afterStep: expected a non-negative batch size but received ${String(batchSize)}`);
  const now = performance.now();
  totalSteps++;
  totalSamples += batchSize;
  const busy = Atomics.load(activity, 0) !== lastSeen; // requests came in during the step
  if (totalSteps <= WARMUP_STEPS) jobThreads.scan(); // the helpers the first steps started
  // the first step's time since the worker started includes the job's set-up: not training time
  if (totalSteps > 1) {
    const stepMs = now - resumed;
    // The first WARMUP_STEPS are slow (compilation, first allocations) and say nothing of the quiet step. A step
    // is worth its time less its threads' longest wait for a core, at most the mean quiet step after them (until
    // there is one, the fastest step after them).
    if (totalSteps > WARMUP_STEPS) {
      fastestMs = Math.min(fastestMs, stepMs);
      // quick to follow faster steps: TNT's first 20 refresh its inverses every step, and they are behind it
      if (!busy) paceMs = Number.isFinite(paceMs) ? paceMs + (stepMs - paceMs) / (stepMs < paceMs ? 4 : 16) : stepMs;
    }
    const lost = lostMs(delayAt, jobThreads.delays());
    const own = Number.isFinite(lost) ? Math.max(0, stepMs - lost) : stepMs;
    const worth = Math.min(own, Number.isFinite(paceMs) ? paceMs : fastestMs);
    account(stepMs, worth);
    report.progress += worth;
    // no credit from a quiet server: requests that start now find the job at its budget, not ahead of it
    if (!busy && share !== null) progress = Math.min(progress, share * elapsed);
  }
  if (totalSteps === 1) report = { at: now, steps: 1, samples: batchSize, paused: 0, progress: 0 }; // rates from the first step on
  throughput(now);
  if (share !== null && busy) {
    // give the cores to the server until it is quiet or the budget says to step
    let quietSince = now,
      seen = Atomics.load(activity, 0),
      owed = false;
    for (;;) {
      const t = performance.now();
      if (t - quietSince >= QUIET_MS || controller.signal.aborted) break;
      if (progress <= share * (elapsed + (t - now))) {
        owed = true; // the next step runs while requests come: it needs the server to step aside
        break;
      }
      stepAsideFor(false);
      await sleep(1);
      const a = Atomics.load(activity, 0);
      if (a !== seen) {
        seen = a;
        quietSince = performance.now();
      }
    }
    stepAsideFor(stepAside && owed);
    narrowFor(owed);
    const waited = performance.now() - now;
    account(waited, 0);
    report.paused += waited;
  } else {
    stepAsideFor(false);
    narrowFor(busy);
    await turn();
  }
  lastSeen = Atomics.load(activity, 0);
  resumed = performance.now();
  delayAt = jobThreads.delays(); // the next step's delay counts from here (waits while paused are not the step's)
}

/**
 * 'serve': while the job steps below its share with requests coming, the server's thread steps aside now and then
 * (the flag its forwards read) so that the job's low-priority threads get cycles; down while the job pauses.
 */
function stepAsideFor(starved: boolean): void {
  if (starved === (Atomics.load(activity, 1) !== 0)) return;
  Atomics.store(activity, 1, starved ? 1 : 0);
  if (!starved) Atomics.notify(activity, 1);
}

/**
 * While requests come, the job's steps run on one thread (its OpenMP regions, and OpenBLAS's calls, process-wide):
 * beside a busy server its helper threads wait for cores and the others spin while they wait for them. Back to
 * its threads once the server is quiet.
 */
let narrowed = false;
function narrowFor(serving: boolean): void {
  if (!narrow || serving === narrowed) return;
  native.narrowThreads(serving ? 'narrow' : 'widen');
  narrowed = serving;
}

function callbacks(
  model: SnapshotModel,
  {
    publishEvery = 100,
    progressEvery = 10,
    optimizer,
  }: { publishEvery?: number; progressEvery?: number; optimizer?: unknown } = {},
): FitCallbacks {
  for (const [k, v] of [
    ['publishEvery', publishEvery],
    ['progressEvery', progressEvery],
  ] as const)
    if (!Number.isInteger(v) || v < 0)
      throw new TypeError(`callbacks: expected a non-negative integer for ${k} but received ${String(v)}`);
  let steps = 0;
  // the numbers a Trainer's logDir and prometheus options publish: time per step and throughput over the steps
  // since the last report, this thread's native memory, and the optimizer's refreshes (when it is given)
  const watched = optimizer !== undefined ? watchOptimizer(optimizer) : null;
  let windowStart = performance.now(),
    windowSteps = 0,
    windowSamples = 0;
  return {
    onBatchEnd(b) {
      steps++;
      windowSteps++;
      windowSamples += b.batchSize;
      if (progressEvery > 0 && steps % progressEvery === 0) {
        const now = performance.now();
        const seconds = (now - windowStart) / 1000;
        const stats = {
          stepSeconds: seconds / windowSteps,
          samplesPerSecond: windowSamples / Math.max(seconds, 1e-9),
          memory: memorySample(),
          ...(watched !== null ? { optimizer: watched.sample() } : {}),
        };
        windowStart = now;
        windowSteps = 0;
        windowSamples = 0;
        post({ type: 'progress', data: { kind: 'step', steps, ...b, ...stats } });
      }
      if (publishEvery > 0 && steps % publishEvery === 0) publish(model, { step: steps });
      return afterStep(b.batchSize);
    },
    onEpochEnd(entry) {
      post({ type: 'progress', data: { kind: 'epoch', steps, ...entry } });
      publish(model, { step: steps, info: { epoch: entry.epoch } });
    },
  };
}

function serializeError(err: unknown): WorkerError {
  if (err instanceof Error || (err !== null && typeof err === 'object' && 'message' in err)) {
    const e = err as Error & { code?: unknown };
    return {
      name: String(e.name ?? 'Error'),
      message: String(e.message),
      stack: typeof e.stack === 'string' ? e.stack : undefined,
      code: typeof e.code === 'string' ? e.code : undefined,
    };
  }
  return { name: 'Error', message: `the training job threw a non-Error value: ${String(err)}` };
}

const ctx: JobContext = {
  workerData: data,
  signal: controller.signal,
  progress: (value) => post({ type: 'progress', data: value }),
  publish,
  callbacks,
  afterStep,
};

try {
  const mod = (await import(job)) as { default?: unknown; train?: unknown };
  const fn = typeof mod.default === 'function' ? mod.default : mod.train;
  if (typeof fn !== 'function')
    throw new TypeError(`train.inWorker: ${job} exports neither a default function nor train(ctx)`);
  const result = await (fn as (c: JobContext) => unknown)(ctx);
  if (held !== null) {
    const h = held;
    held = null;
    sendWeights(h);
  }
  post({ type: 'done', result });
} catch (err) {
  post({ type: 'error', error: serializeError(err) });
} finally {
  narrowFor(false);
  Atomics.store(activity, 1, 0); // the server's thread waits for this job no more
  Atomics.notify(activity, 1);
}
port.unref(); // nothing more to receive: the worker exits once the job's own handles are closed
