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
import { openSync, readSync } from 'node:fs';
import { native } from '../native.js';
import { layoutOf, namedTensors, packInto, type SnapshotModel } from './snapshot.js';
import type { FitCallbacks } from './fit.js';
import { memorySample, watchOptimizer } from './telemetry.js';
import type { FromWorker, JobContext, PublishOptions, ToWorker, WorkerError } from './worker.js';

const port = parentPort;
if (port === null) throw new Error('tensornormal job-runner: this module runs in a worker started by train.inWorker()');
const { job, data, nice, idle, share, activity } = workerData as {
  job: string;
  data: unknown;
  nice: number;
  idle: boolean;
  share: number | null;
  activity: Int32Array;
};
// Before the job's first parallel region: the threads this thread starts (its OpenMP team, OpenBLAS's pool after
// the trainer restarted it) inherit the lower priority and the scheduling policy.
if (nice !== 0) native.lowerThreadPriority(nice);
if (idle) native.idleThreadScheduling();

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
const QUIET_MS = 5; // no request for this long: the server is idle, the job runs freely
const TAU_MS = 1000; // memory of the pace (decay time)
const REPORT_MS = 1000;
let totalSteps = 0,
  totalSamples = 0;
let resumed = performance.now(); // when the step in progress started (the end of the previous pause)
// The budget counts progress, not time: a step is worth its time less the time this thread waited for a core during
// it (Linux: the run delay in /proc/thread-self/schedstat), so a step that shared the cores with requests, or under
// SCHED_IDLE waited for them, counts only the work it did, and at most the mean step during which no request came
// (`paceMs`), which also covers the waits of its helper threads; elsewhere that mean alone (the fastest step until
// there is one). The share is the job's pace against its
// pace with nothing in its way, what steps/s during requests against after them measures.
let paceMs = NaN;
let fastestMs = Infinity;
const schedstat = ((): { fd: number; buf: Buffer } | null => {
  try {
    const fd = openSync('/proc/thread-self/schedstat', 'r'); // this thread's (resolved now)
    return { fd, buf: Buffer.alloc(96) };
  } catch {
    return null;
  }
})();
/** Milliseconds this thread has waited for a core while runnable (NaN where unknown). */
function runDelayMs(): number {
  if (schedstat === null) return NaN;
  try {
    const n = readSync(schedstat.fd, schedstat.buf, 0, schedstat.buf.length, 0);
    return Number(schedstat.buf.toString('latin1', 0, n).split(' ')[1]) / 1e6;
  } catch {
    return NaN;
  }
}
let delayAt = runDelayMs();
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
  // the first step's time since the worker started includes the job's set-up: not training time
  if (totalSteps > 1) {
    const stepMs = now - resumed;
    fastestMs = Math.min(fastestMs, stepMs);
    if (!busy) paceMs = Number.isFinite(paceMs) ? paceMs + (stepMs - paceMs) / 16 : stepMs;
    const delay = runDelayMs();
    // at most the mean quiet step, too: a step whose time went to waiting for starved helper threads (OpenMP's,
    // OpenBLAS's: their waits are not this thread's run delay) is not worth more than one with nothing in its way
    const quiet = Number.isFinite(paceMs) ? paceMs : fastestMs;
    const worth = Number.isFinite(delay - delayAt)
      ? Math.max(0, Math.min(stepMs - (delay - delayAt), Number.isFinite(paceMs) ? paceMs : stepMs))
      : Math.min(stepMs, quiet);
    account(stepMs, worth);
    report.progress += worth;
    // no credit from a quiet server: requests that start now find the job at its budget, not ahead of it
    if (!busy && share !== null) progress = Math.min(progress, share * elapsed);
  }
  if (totalSteps === 1) report = { at: now, steps: 1, samples: batchSize, paused: 0, progress: 0 }; // rates from the first step on
  throughput(now);
  // an idle-scheduled job below its share while requests come: ask the server's thread to step aside now and then
  const starved = idle && share !== null && busy && progress < share * elapsed;
  if (starved !== (Atomics.load(activity, 1) !== 0)) {
    Atomics.store(activity, 1, starved ? 1 : 0);
    if (!starved) Atomics.notify(activity, 1);
  }
  if (share !== null && busy) {
    // give the cores to the server until it is quiet or the budget says to step
    let quietSince = now,
      seen = Atomics.load(activity, 0);
    for (;;) {
      const t = performance.now();
      if (t - quietSince >= QUIET_MS || controller.signal.aborted) break;
      if (progress <= share * (elapsed + (t - now))) break;
      await sleep(1);
      const a = Atomics.load(activity, 0);
      if (a !== seen) {
        seen = a;
        quietSince = performance.now();
      }
    }
    const waited = performance.now() - now;
    account(waited, 0);
    report.paused += waited;
  } else await turn();
  lastSeen = Atomics.load(activity, 0);
  resumed = performance.now();
  delayAt = runDelayMs(); // the next step's delay counts from here (waits while paused are not the step's)
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
  Atomics.store(activity, 1, 0); // the server's thread waits for this job no more
  Atomics.notify(activity, 1);
}
port.unref(); // nothing more to receive: the worker exits once the job's own handles are closed
