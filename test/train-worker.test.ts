import { describe, it, expect, expectTypeOf, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { addonPath, transpileLib } from './support/transpile-lib.js';
import type * as Lib from '../lib/index.js';

// train.inWorker runs lib/train/job-runner in a worker thread, and a worker cannot run TypeScript: this file uses
// the library transpiled to JavaScript, on both threads (only that copy is loaded here, so its TorchError is the
// class the addon throws).
process.env.TENSORNORMAL_ADDON = addonPath;
const JOB = new URL('./support/train-job.mjs', import.meta.url);
let work: string;
let t: typeof Lib;
let lib: string;
let makeModel: (t: typeof Lib, seed: number) => Lib.nn.Sequential;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tn-train-worker-'));
  transpileLib(work);
  lib = pathToFileURL(join(work, 'lib', 'index.js')).href;
  t = (await import(lib)) as typeof Lib;
  ({ makeModel } = (await import(JOB.href)) as { makeModel: typeof makeModel });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const flatParams = (m: Lib.nn.Module): number[][] =>
  m.parameters().map((p) => Array.from(p.toTypedArray() as Float64Array));

describe('types', () => {
  it('the public API', () => {
    expectTypeOf<typeof Lib.train.inWorker>().returns.toEqualTypeOf<Lib.train.Trainer>();
    expectTypeOf<Lib.train.Trainer['done']>().toEqualTypeOf<Promise<unknown>>();
    expectTypeOf<ReturnType<Lib.train.Trainer['weights']>>().toEqualTypeOf<Lib.train.WeightsSnapshot | null>();
    expectTypeOf<Lib.train.JobContext['publish']>().returns.toEqualTypeOf<number>();
    expectTypeOf<Parameters<Lib.train.Trainer['loadInto']>[0]>().toEqualTypeOf<Lib.train.SnapshotModel>();
    expectTypeOf<ReturnType<typeof Lib.leaks>>().toEqualTypeOf<Lib.LeakSite[]>();
    expectTypeOf<ReturnType<typeof Lib.memory>>().toEqualTypeOf<Lib.MemoryInfo>();
  });
});

describe('train.inWorker', () => {
  it('trains with fit() and Adam in a worker; snapshots update the serving model in place; the final one equals the worker’s weights', async () => {
    const served = makeModel(t, 99); // a different initialisation: only snapshots can make it equal the job's
    const params = served.parameters();
    const handles = params.map((p) => p._h);
    const live0 = t.liveTensors();
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'fit', seed: 1, epochs: 3 }, serve: served });
    const progress: { kind: string; steps: number }[] = [];
    const versions: number[] = [];
    const predictions: number[] = [];
    trainer.on('progress', (p) => progress.push(p as { kind: string; steps: number }));
    trainer.on('weights', (s) => {
      versions.push(s.version);
      // the serving model answers between snapshots (no gradients, nothing left behind)
      predictions.push(
        t.noGrad(() =>
          t.tidy(() =>
            served
              .call(t.ones([1, 4], { dtype: 'float64' }))
              .sum()
              .item(),
          ),
        ),
      );
    });
    const result = (await trainer.done) as { losses: number[]; weights: number[][]; live: number };
    expect(await trainer.cancel()).toBe(0); // already finished: resolves with the exit code
    // 3 epochs of 8 steps: progress every 2 steps and per epoch; a snapshot every 4 steps, per epoch, and the final one
    expect(progress.filter((p) => p.kind === 'step').map((p) => p.steps)).toEqual([
      2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
    ]);
    expect(progress.filter((p) => p.kind === 'epoch').map((p) => p.steps)).toEqual([8, 16, 24]);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(versions.at(-1)).toBe(3 * 2 + 3 + 1); // every snapshot published arrived, the last one last
    expect(trainer.weights()!.info).toBe('final');
    expect(trainer.weights()!.step).toBe(24);
    // the serving model holds exactly the worker's final weights, in the same parameter tensors
    expect(flatParams(served)).toEqual(result.weights);
    expect(served.parameters().map((p) => p._h)).toEqual(handles);
    expect(served.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(predictions.length).toBe(versions.length);
    expect(result.losses[2]).toBeLessThan(result.losses[0]!);
    expect(result.live).toBe(0); // the job leaked nothing in its own thread
    expect(t.liveTensors()).toBe(live0); // loading snapshots created nothing on this one
    // loadInto() into another model of the same architecture gives the same weights
    const other = makeModel(t, 5);
    expect(trainer.loadInto(other)).toBe(versions.at(-1));
    expect(flatParams(other)).toEqual(result.weights);
    t.dispose([served.parameters(), other.parameters()]);
  });

  it('trains with TNT in its own loop (sampled backward, inverse refreshes) and publishes every 3 steps', async () => {
    const served = makeModel(t, 7);
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'tnt', seed: 2, epochs: 2 }, serve: served });
    let lastLoss = Infinity,
      firstLoss = Infinity;
    trainer.on('progress', (p) => {
      const { steps, loss } = p as { steps: number; loss: number };
      if (steps === 1) firstLoss = loss;
      lastLoss = loss;
    });
    const result = (await trainer.done) as { steps: number; weights: number[][] };
    expect(result.steps).toBe(16);
    expect(lastLoss).toBeLessThan(firstLoss);
    expect(flatParams(served)).toEqual(result.weights);
    expect(trainer.weights()!.step).toBe(16);
    t.dispose(served.parameters());
  });

  it('cancel() aborts ctx.signal: the job stops at its next step, done rejects with an AbortError, the worker exits', async () => {
    const served = makeModel(t, 3);
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'forever' }, serve: served });
    const exits: number[] = [];
    trainer.on('exit', (c) => exits.push(c));
    await new Promise((resolve) => trainer.once('weights', resolve));
    const code = await trainer.cancel('shutting down');
    await expect(trainer.done).rejects.toMatchObject({ name: 'AbortError', message: 'shutting down' });
    expect(code).toBe(0); // it stopped by itself, well within the grace period
    expect(exits).toEqual([0]);
    t.dispose(served.parameters());
  });

  it('cancel() terminates a job that ignores the signal after graceMs; done still rejects with an AbortError', async () => {
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'stubborn' }, graceMs: 200 });
    await new Promise((resolve) => trainer.once('progress', resolve));
    const t0 = performance.now();
    const code = await trainer.cancel();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(code).toBe(1); // terminated
    await expect(trainer.done).rejects.toMatchObject({ name: 'AbortError', message: 'training was cancelled' });
  });

  it('a job path relative to the working directory works as a string', async () => {
    const rel = fileURLToPath(JOB).replace(process.cwd() + '/', '');
    const trainer = t.train.inWorker(rel, { workerData: { lib, mode: 'nice' } });
    expect(await trainer.done).toHaveProperty('nice');
  });

  it("an error in the job rejects done with this thread's TorchError, its code and the worker's stack; 'error' fires", async () => {
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'throw' } });
    const seen: Error[] = [];
    trainer.on('error', (e) => seen.push(e));
    const err = (await trainer.done.catch((e: unknown) => e)) as Error & { code?: string };
    expect(err).toBeInstanceOf(t.TorchError);
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.message).toMatch(/mat1 and mat2 shapes cannot be multiplied/);
    expect(err.stack).toContain('train-job.mjs');
    expect(seen).toEqual([err]);
    // a job-level TypeError/RangeError keeps its class too
    const bad = t.train.inWorker(JOB, { workerData: { lib, mode: 'nope' } });
    await expect(bad.done).rejects.toThrow(new RangeError('unknown mode nope'));
  });

  it('a serving model that does not match the snapshots is reported (RangeError) and training is cancelled', async () => {
    const wrong = new t.nn.Sequential(
      new t.nn.Linear(4, 8, { dtype: 'float64' }),
      new t.nn.Tanh(),
      new t.nn.Linear(8, 2, { dtype: 'float64' }),
    );
    const before = flatParams(wrong);
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'forever' }, serve: wrong });
    const errors: Error[] = [];
    trainer.on('error', (e) => errors.push(e));
    await expect(trainer.done).rejects.toMatchObject({ name: 'AbortError' });
    expect(errors[0]).toEqual(
      new RangeError("loadInto: '2.weight' is float64 [3, 8] in the snapshot but float64 [2, 8] in the model"),
    );
    expect(flatParams(wrong)).toEqual(before); // nothing was copied
    t.dispose(wrong.parameters());
  });

  it.runIf(process.platform === 'linux')(
    'the job runs at a lower priority than the server (nice + 19 by default, as asked, or the same)',
    async () => {
      const { getPriority } = await import('node:os');
      const mine = getPriority(); // this process's main thread
      const run = async (nice?: number): Promise<number> =>
        (
          (await t.train.inWorker(JOB, { workerData: { lib, mode: 'nice' }, ...(nice === undefined ? {} : { nice }) })
            .done) as { nice: number }
        ).nice;
      expect(await run()).toBe(Math.min(19, mine + 19));
      expect(await run(3)).toBe(Math.min(19, mine + 3));
      expect(await run(0)).toBe(mine);
    },
  );

  it.runIf(process.platform === 'linux')(
    "priority 'serve' (the default) runs every thread of the job at nice + 19 with a 0.1 ms time slice (scheduling 'short'), its OpenMP and OpenBLAS helpers too; scheduling 'idle' puts them under SCHED_IDLE; 'train' and a budget leave them as the server's",
    async () => {
      const { readFileSync, readdirSync } = await import('node:fs');
      const stat = readFileSync('/proc/thread-self/stat', 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [mineNice, minePolicy] = [Number(f[16]), Number(f[38])];
      expect(minePolicy).toBe(0); // SCHED_OTHER
      type Threads = { self: number; threads: { tid: number; nice: number; policy: number }[] };
      const run = async (options: Lib.train.InWorkerOptions): Promise<Threads> => {
        // the job's library sets 2 intra-op threads as it loads (the suite's TENSORNORMAL_NUM_THREADS would say 1)
        const env = { ...process.env, TENSORNORMAL_NUM_THREADS: '2' };
        const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'threads' }, env, ...options });
        const r = (await trainer.done) as Threads;
        await trainer.cancel(); // finished: resolves once the worker has exited (and OpenBLAS's pool was stopped)
        return r;
      };
      // the time slice the kernel gives a thread (Linux 6.6+ shows it; older kernels ignore the request)
      const sliceOf = (tid: number): number | null => {
        const m = /se\.slice\s*:\s*(\d+)/.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
        return m === null ? null : Number(m[1]);
      };
      const SCHED_IDLE = 5;
      const jobNice = Math.min(19, mineNice + 19);
      for (const [options, policy] of [
        [{}, 0],
        [{ scheduling: 'idle' }, SCHED_IDLE],
      ] as const) {
        const job = await run(options);
        const ours = job.threads.filter((th) => th.nice === jobNice);
        // the job's own thread and at least one helper it started for its parallel work (OpenMP's team of two)
        expect(ours.map((th) => th.tid)).toContain(job.self);
        expect(ours.length).toBeGreaterThanOrEqual(2);
        // nothing the job started escaped: every thread at the job's nice has its policy, and the others are the
        // server's (SCHED_OTHER at this thread's nice)
        for (const th of job.threads)
          if (th.nice === jobNice) expect(th.policy).toBe(policy);
          else expect([th.policy, th.nice]).toEqual([0, mineNice]);
      }
      // the job thread's slice, read while it runs
      const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'stubborn' }, graceMs: 100 });
      await new Promise((r) => trainer.once('progress', r));
      const slices = readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]) === jobNice ? [sliceOf(Number(tid))] : [];
        } catch {
          return [];
        }
      });
      await trainer.cancel();
      expect(slices.length).toBeGreaterThanOrEqual(1);
      if (slices[0] !== null) expect(slices).toContain(100_000);
      // nothing is left at the job's priority once its trainer has exited: OpenBLAS's pool was stopped, and
      // libtorch's pthreadpool, which the job's setNumThreads remade from the job's thread (a helper at the job's
      // priority with 2 threads, seen with libtorch 1.13 and 2.6), was remade from this thread
      const left = readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const st = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          const g = st.slice(st.lastIndexOf(')') + 2).split(' ');
          // named, so that a failure says which pool kept the job's priority
          return Number(g[38]) === 0 && Number(g[16]) === mineNice
            ? []
            : [`${tid} (${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}) policy ${g[38]} nice ${g[16]}`];
        } catch {
          return []; // exited meanwhile
        }
      });
      expect(left).toEqual([]);
      for (const priority of ['train', 0.5] as const) {
        const other = await run({ priority });
        expect(other.threads.filter((th) => th.policy !== 0 || th.nice !== mineNice)).toEqual([]);
      }
    },
  );

  it("throughput events count the job's steps and samples; a budget (0.5) and 'serve' (0.1) hold the job's pace down while the served model answers; 'train' and a quiet server do not pause it", async () => {
    type Throughput = Lib.train.Throughput;
    const served = makeModel(t, 1);
    const x = t.ones([1, 4], { dtype: 'float64' });
    const run = async (
      priority: Lib.train.InWorkerOptions['priority'],
      busy: boolean,
      seconds: number,
    ): Promise<{ events: Throughput[]; steps: number }> => {
      const trainer = t.train.inWorker(JOB, {
        workerData: { lib, mode: 'paced', stepMs: 10, seconds },
        serve: served,
        priority,
        graceMs: 500,
      });
      const events: Throughput[] = [];
      trainer.on('throughput', (e) => events.push(e));
      // an idle-scheduled job on a machine busy with the rest of the suite may not get a core for long: stopped
      const timer = setTimeout(() => void trainer.cancel(), (seconds + 3) * 1000);
      // a busy server: the served model answers (its forwards tell the job) at every turn of the event loop (a gap of 5 ms is a quiet server; the suite may share the cores)
      let serving = busy;
      const answer = (): void => {
        if (!serving) return;
        t.noGrad(() => t.tidy(() => served.call(x).sum().item()));
        setImmediate(answer);
      };
      answer();
      const { steps } = (await trainer.done.catch(() => ({ steps: -1 }))) as { steps: number };
      clearTimeout(timer);
      serving = false;
      await trainer.cancel(); // finished: resolves once the worker has exited
      return { events, steps };
    };
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const budget = await run(0.5, true, 3);
    expect(budget.steps).toBeGreaterThan(0); // nice 0: it finished
    expect(budget.events.length).toBeGreaterThanOrEqual(2);
    for (const e of budget.events) {
      expect(e.samplesPerSecond).toBeCloseTo(8 * e.stepsPerSecond, 6); // batches of 8
      expect(e.samples).toBe(8 * e.steps);
      expect(e.seconds).toBeGreaterThanOrEqual(1);
      expect(e.steps).toBeLessThanOrEqual(budget.steps);
      expect(e.pace).toBeGreaterThanOrEqual(0);
      expect(e.pace).toBeLessThanOrEqual(1);
    }
    // The pace is the steps' time less the time the job's thread waited for a core, over the interval: the job
    // pauses while it is above half (10 ms steps: about as long a pause after each), so it stays near 0.5, where it
    // would be near 1 unpaused on a core of its own (the first event is left out: it covers the start). On a machine
    // so busy that the job gets less than half of a core it does not pause, and its pace is lower still.
    const after = budget.events.slice(1);
    expect(mean(after.map((e) => e.pace))).toBeLessThan(0.75);
    // (above the budget it must have paused; between 0.4 and 0.5 a job slowed by a busy machine need not: seen at
    // 0.45 with 4% paused while another suite ran beside this one)
    if (mean(after.map((e) => e.pace)) > 0.55) expect(mean(after.map((e) => e.paused))).toBeGreaterThan(0.15);
    // 'serve' holds the job down to a tenth of its pace the same way (an idle-scheduled job on a machine busy with
    // the rest of the suite may report only once in 3 s, or not at all)
    const serve = await run('serve', true, 3);
    const servePace = (serve.events.length > 1 ? serve.events.slice(1) : serve.events).map((e) => e.pace);
    if (servePace.length > 0) expect(mean(servePace)).toBeLessThan(0.4);
    // no pause without requests, nor under 'train'
    for (const [priority, busy] of [
      [0.5, false],
      ['train', true],
    ] as const) {
      const r = await run(priority, busy, 1.6);
      expect(r.steps).toBeGreaterThan(0);
      expect(r.events.length).toBeGreaterThanOrEqual(1);
      for (const e of r.events) expect(e.paused).toBe(0);
    }
    expect(served._forwardPreHooks.size).toBe(0); // the trainers removed their hooks when their workers exited
    x.dispose();
    t.dispose(served.parameters());
  });

  it("a starved 'serve' job makes the server's forwards step aside: up to 1 ms, at most once in 8 ms, until the job has its share", async () => {
    const served = makeModel(t, 1);
    const x = t.ones([1, 4], { dtype: 'float64' });
    const trainer = t.train.inWorker(JOB, { workerData: { lib, mode: 'stubborn' }, serve: served, graceMs: 100 });
    // the flag the job raises when its pace falls below its share (here by hand: the job is not starved)
    const flag = (trainer as unknown as { activity: Int32Array }).activity;
    const forward = (): number => {
      const t0 = performance.now();
      t.noGrad(() => t.tidy(() => served.call(x).sum().item()));
      return performance.now() - t0;
    };
    forward();
    const quiet = Math.min(forward(), forward(), forward());
    Atomics.store(flag, 1, 1);
    const waited = forward(); // the first one waits (for 1 ms: nothing wakes it)
    expect(waited).toBeGreaterThanOrEqual(0.9);
    const yielded = (trainer as unknown as { yielded: number }).yielded;
    forward(); // within 8 ms of that wait: no wait
    expect((trainer as unknown as { yielded: number }).yielded).toBe(yielded);
    // the job clears the flag when it has its share again, and wakes a waiting server at once: here at exit
    Atomics.store(flag, 1, 0);
    expect(Math.min(forward(), forward(), forward())).toBeLessThan(quiet + 0.9);
    await trainer.cancel();
    expect(Atomics.load(flag, 1)).toBe(0);
    x.dispose();
    t.dispose(served.parameters());
  });

  it.runIf(process.platform === 'linux')(
    "while the served model answers requests, a paced job's steps run on one thread (its OpenMP regions, OpenBLAS's calls), and on its own again once the server is quiet; 'train' never narrows",
    async () => {
      const served = makeModel(t, 1);
      const x = t.ones([1, 4], { dtype: 'float64' });
      const blasBefore = t.versions().blasThreads;
      const run = async (priority: Lib.train.InWorkerOptions['priority']): Promise<[number, number | null][]> => {
        const env = { ...process.env, TENSORNORMAL_NUM_THREADS: '2' };
        const trainer = t.train.inWorker(JOB, {
          workerData: { lib, mode: 'narrow', steps: 60 },
          serve: served,
          priority,
          env,
          graceMs: 500,
        });
        // requests (forwards of the served model) at every turn of the event loop while the job takes its steps
        // 5 to 30, then none
        let step = 0;
        trainer.on('progress', (p) => (step = (p as { step: number }).step));
        const answer = (): void => {
          if (step >= 30) return;
          if (step >= 5) t.noGrad(() => t.tidy(() => served.call(x).sum().item()));
          setImmediate(answer);
        };
        answer();
        const { seen } = (await trainer.done) as { seen: [number, number | null][] };
        await trainer.cancel();
        return seen;
      };
      // OpenBLAS's count is the process's, whatever the job's environment says (read once, when it loaded)
      const blas = (n: number | undefined): number | null => (blasBefore === undefined ? null : (n ?? blasBefore));
      const seen = await run(0.9);
      // before the requests: the job's own 2 threads; during them (from the step after the first request, to the
      // step after the last): one; after 5 ms with no request: 2 again
      expect(seen.slice(0, 5)).toEqual(Array(5).fill([2, blas(undefined)]));
      // (a step during which the server's thread stalled for its 3 ms, a GC or a busy machine, looks quiet: most,
      // not all, and never one count without the other)
      const during = seen.slice(12, 29);
      for (const s of during)
        expect([JSON.stringify([1, blas(1)]), JSON.stringify([2, blas(undefined)])]).toContain(JSON.stringify(s));
      expect(during.filter(([n]) => n === 1).length).toBeGreaterThanOrEqual(13);
      expect(seen.slice(-5)).toEqual(Array(5).fill([2, blas(undefined)]));
      for (const s of await run('train')) expect(s).toEqual([2, blas(undefined)]);
      // the process's OpenBLAS count is the server's again
      expect(t.versions().blasThreads).toBe(blasBefore);
      x.dispose();
      t.dispose(served.parameters());
    },
  );

  it('invalid arguments', () => {
    expect(() => t.train.inWorker(42 as never)).toThrow(
      new TypeError(
        "Expected the job module's URL (new URL('./job.js', import.meta.url)) or file path for job but received 42 of type number",
      ),
    );
    expect(() => t.train.inWorker(JOB, { graceMs: -1 })).toThrow(RangeError);
    expect(() => t.train.inWorker(JOB, { nice: 20 })).toThrow(
      new RangeError('Expected an integer in [0, 19] for nice but received 20'),
    );
    expect(() => t.train.inWorker(JOB, { nice: 1.5 })).toThrow(
      new RangeError('Expected an integer for nice but received 1.5 of type number'),
    );
    expect(() => t.train.inWorker(JOB, { serve: {} as never })).toThrow(TypeError);
    expect(() => t.train.inWorker(JOB, { priority: 1 })).toThrow(
      new RangeError('Expected a number in (0, 1) for priority but received 1'),
    );
    expect(() => t.train.inWorker(JOB, { priority: 'fast' as never })).toThrow(
      new RangeError("Expected one of 'serve', 'train' for priority but received \"fast\" of type string"),
    );
    expect(() => t.train.inWorker(JOB, { tuneMalloc: 1 as never })).toThrow(
      new TypeError('Expected a boolean for tuneMalloc but received 1 of type number'),
    );
    expect(() => t.train.inWorker(JOB, { blasThreads: 'all' as never })).toThrow(
      new RangeError("Expected one of 'worker', 'shared' for blasThreads but received \"all\" of type string"),
    );
    const m = makeModel(t, 1);
    const trainer = Object.create(t.train.Trainer.prototype) as Lib.train.Trainer;
    expect(trainer.loadInto(m, null)).toBe(null);
    t.dispose(m.parameters());
  });
});
