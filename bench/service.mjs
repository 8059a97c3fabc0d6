/**
 * Serving beside training (issue 12): p50 / p99 / max latency of POST-less GET /predict (one 784-pixel input
 * through the MNIST autoencoder, noGrad) under 2000 loopback requests at concurrency 8, while the same process
 * trains the autoencoder (batch 1024) with Adam or TNT:
 *   - none: nothing trains (the reference);
 *   - same thread: the training loop runs on the server's thread, yielding between steps (as fit() does);
 *   - worker: train.inWorker(); the server's model is updated from the published snapshots (every 10 steps).
 * Training throughput (steps/s while the requests run, and in the seconds after them with the server idle) is
 * compared with a dedicated process that only trains.
 *
 *   npm run build:ts && node bench/service.mjs [--requests 2000] [--concurrency 8] [--warmup 200] [--repeat 3]
 *     [--rows none,worker-adam,...] [--dump DIR]
 *   BENCH_INVERSE_EVERY=1 (TNT refreshes its inverses every step), BENCH_NICE, BENCH_PUBLISH_EVERY, BENCH_TUNE_MALLOC
 *
 * Each row is a fresh server process; this process is the load generator (keep-alive connections). Prints a
 * markdown table. The machine's cores are shared with whatever else runs: rerun on a quiet machine before quoting.
 */
import { spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const HERE = fileURLToPath(import.meta.url);

/**
 * Training steps done in [from, to], counting the fraction of a step that overlaps the window (a step runs from
 * the previous step's end to its own), from the steps' end times.
 */
function stepsIn(ends, from, to) {
  let n = 0;
  for (let i = 1; i < ends.length; i++) {
    const s = ends[i - 1],
      e = ends[i];
    const overlap = Math.min(e, to) - Math.max(s, from);
    if (overlap > 0) n += overlap / (e - s);
  }
  return n;
}

// ---------------------------------------------------------------- server role
async function server(mode) {
  const torch = await import('../dist/index.js');
  const { createServer } = await import('node:http');
  const job = await import('./service-job.mjs');
  const [where, optimizer] = mode.split('-'); // none | same-adam | worker-tnt | dedicated-adam ...
  const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  const stepTimes = [];
  const controller = new AbortController();
  let served = job.makeModel();
  served.eval();
  let trainer = null,
    loadMs = [];
  // --dump: what the server's thread did (GC pauses, snapshot loads), to line up with the slow requests
  const events = [];
  const { PerformanceObserver } = await import('node:perf_hooks');
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      events.push({ what: 'gc', kind: e.detail?.kind, t: e.startTime + performance.timeOrigin, ms: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const inProcessCtx = (data) => ({
    workerData: data,
    signal: controller.signal,
    publish: () => 0,
    callbacks: () => ({}),
    progress: (p) => stepTimes.push(p.t),
  });
  let finished = null;
  if (where === 'same' || where === 'dedicated') {
    finished = job.default(
      inProcessCtx({ optimizer, publishEvery: 1e9, inverseEvery: Number(process.env.BENCH_INVERSE_EVERY ?? 20) }),
    ); // on this thread, between requests
  } else if (where === 'worker') {
    trainer = torch.train.inWorker(new URL('./service-job.mjs', import.meta.url), {
      workerData: {
        optimizer,
        publishEvery: Number(process.env.BENCH_PUBLISH_EVERY ?? 10),
        inverseEvery: Number(process.env.BENCH_INVERSE_EVERY ?? 20),
      },
      nice: Number(process.env.BENCH_NICE ?? 10),
      tuneMalloc: process.env.BENCH_TUNE_MALLOC === '1',
    });
    trainer.on('progress', (p) => stepTimes.push(p.t));
    trainer.on('weights', (s) => {
      const t0 = performance.now();
      trainer.loadInto(served, s);
      loadMs.push(performance.now() - t0);
      events.push({ what: 'load', t: t0 + performance.timeOrigin, ms: performance.now() - t0 });
    });
    finished = trainer.done;
  }
  const input = torch.tidy(() => torch.rand([1, 784]).keep());
  const srv = createServer((req, res) => {
    const v = torch.noGrad(() => torch.tidy(() => served.call(input).sigmoid().mean().item()));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ v }));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  // warm: wait for 3 training steps (none of them during the measurement's start-up)
  while (where !== 'none' && stepTimes.length < 3) await new Promise((r) => setTimeout(r, 20));
  say({ ready: true, port: srv.address().port });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line);
    if (cmd.stop) {
      // training throughput while the requests ran, then with the server idle for `idle` seconds
      const idleFrom = performance.now() + performance.timeOrigin;
      await new Promise((r) => setTimeout(r, cmd.idle * 1000));
      const idleTo = performance.now() + performance.timeOrigin;
      const during = stepsIn(stepTimes, cmd.from, cmd.to),
        idle = stepsIn(stepTimes, idleFrom, idleTo);
      controller.abort();
      if (trainer) await trainer.cancel();
      else if (finished) await finished;
      say({
        during: during / ((cmd.to - cmd.from) / 1000),
        idle: idle / ((idleTo - idleFrom) / 1000),
        loadMs: loadMs.length ? loadMs.reduce((a, b) => a + b) / loadMs.length : null,
        loads: loadMs.length,
        events,
        stepTimes,
      });
      srv.close();
      process.exit(0);
    }
  }
}

// ---------------------------------------------------------------- dedicated training (throughput reference)
async function dedicated(optimizer, seconds) {
  const job = await import('./service-job.mjs');
  const stepTimes = [];
  const controller = new AbortController();
  const run = job.default({
    workerData: { optimizer, publishEvery: 1e9 },
    signal: controller.signal,
    publish: () => 0,
    progress: (p) => stepTimes.push(p.t),
  });
  while (stepTimes.length < 3) await new Promise((r) => setTimeout(r, 20));
  const from = performance.now() + performance.timeOrigin;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const to = performance.now() + performance.timeOrigin;
  controller.abort();
  await run;
  process.stdout.write(JSON.stringify({ rate: stepsIn(stepTimes, from, to) / ((to - from) / 1000) }) + '\n');
  process.exit(0);
}

// ---------------------------------------------------------------- orchestrator (load generator)
function child(args) {
  const p = spawn(process.execPath, [HERE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout });
  const queue = [];
  let wake = null;
  lines.on('line', (l) => {
    if (!l.startsWith('{')) return;
    queue.push(JSON.parse(l));
    wake?.();
  });
  const next = async () => {
    while (queue.length === 0) await new Promise((r) => (wake = r));
    return queue.shift();
  };
  return { p, next };
}

async function load(port, requests, concurrency, agent) {
  const lat = [],
    log = [];
  let issued = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/predict', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          lat.push(performance.now() - t0);
          log.push({ i: log.length, t: t0 + performance.timeOrigin, ms: performance.now() - t0 });
          resolve();
        });
      });
      req.on('error', reject);
      req.end();
    });
  const from = performance.now() + performance.timeOrigin;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < requests) {
        issued++;
        await one();
      }
    }),
  );
  const to = performance.now() + performance.timeOrigin;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)];
  return { p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1], from, to, log };
}

/**
 * --dump DIR: writes DIR/<mode>-<k>.json (every request's start time and latency, the server thread's GC pauses
 * and snapshot loads, the job's step end times) and prints, for the 5 slowest requests, what overlapped them.
 */
async function dumpRun(dir, mode, k, r, stats) {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const { events = [], stepTimes = [] } = stats;
  writeFileSync(`${dir}/${mode}-${k}.json`, JSON.stringify({ requests: r.log, events, stepTimes }));
  const slow = [...r.log].sort((a, b) => b.ms - a.ms).slice(0, 5);
  for (const q of slow) {
    const end = q.t + q.ms;
    const over = events
      .filter((e) => e.t < end && e.t + e.ms > q.t)
      .map((e) => `${e.what}${e.kind !== undefined ? e.kind : ''} ${e.ms.toFixed(1)}ms`);
    const steps = stepTimes
      .map((t, i) => (i > 0 ? { s: stepTimes[i - 1], e: t } : null))
      .filter((s) => s && s.s < end && s.e > q.t)
      .map((s) => `step ${(s.e - s.s).toFixed(0)}ms`);
    process.stderr.write(
      `  slow #${q.i} at +${(q.t - r.from).toFixed(0)}ms: ${q.ms.toFixed(1)} ms; overlaps: ${[...over, ...steps].join(', ') || 'nothing recorded'}\n`,
    );
  }
}

async function main() {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const requests = Number(arg('requests', 2000));
  const concurrency = Number(arg('concurrency', 8));
  // same-adam and same-tnt (training on the server's thread) are not in the default rows: a request waits for a
  // whole step there, and 2000 requests take minutes
  const rows = arg('rows', 'none,worker-adam,worker-tnt').split(',');
  const dedicatedSeconds = Number(arg('dedicated-seconds', 8));
  const idleSeconds = Number(arg('idle-seconds', 8));
  const repeat = Number(arg('repeat', 1));
  // The first requests to a fresh server open the connections and run the forward for the first time (V8 compiles
  // the handler, OpenBLAS sizes its buffers): 20-36 ms with or without training (--dump showed the slowest requests
  // of every row among the first 30). They are not what serving beside training costs, so a warm-up of `--warmup`
  // requests (default 200) opens the connections the measured requests then reuse, and is not counted.
  const warmup = Number(arg('warmup', 200));
  const dump = arg('dump', null); // a folder: every request and the server's events of each run, as JSON
  const runs = new Map(rows.map((m) => [m, []]));
  for (let k = 0; k < repeat; k++) {
    for (const mode of rows) {
      const s = child(['server', mode]);
      const { port } = await s.next();
      // keep-alive connections, opened by the warm-up (not measured: connections, the first forwards, JIT) and
      // reused by the measured requests
      const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
      if (warmup > 0) await load(port, warmup, concurrency, agent);
      const r = await load(port, requests, concurrency, agent);
      agent.destroy();
      s.p.stdin.write(
        JSON.stringify({ stop: true, from: r.from, to: r.to, idle: mode === 'none' ? 0 : idleSeconds }) + '\n',
      );
      const stats = await s.next();
      runs.get(mode).push({ ...r, ...stats });
      if (dump) dumpRun(dump, mode, k, r, stats);
      process.stderr.write(
        `${mode}: p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} max ${r.max.toFixed(1)} ms; ${stats.during?.toFixed(2)} steps/s during, ${stats.idle?.toFixed(2)} after; snapshot loads ${stats.loads} of ${stats.loadMs?.toFixed(1)} ms\n`,
      );
    }
  }
  // with repeats: the median of each number over the runs, and the range of p99 and max
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b),
      m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const results = rows.map((mode) => {
    const rs = runs.get(mode);
    const m = (k) => median(rs.map((r) => r[k]));
    const range = (k) =>
      rs.length > 1
        ? ` (${Math.min(...rs.map((r) => r[k])).toFixed(1)}-${Math.max(...rs.map((r) => r[k])).toFixed(1)})`
        : '';
    return {
      mode,
      p50: m('p50'),
      p99: m('p99'),
      max: m('max'),
      during: m('during'),
      idle: m('idle'),
      p99Range: range('p99'),
      maxRange: range('max'),
    };
  });
  const dedicatedRate = {};
  for (const opt of new Set(rows.filter((m) => m !== 'none').map((m) => m.split('-')[1]))) {
    const rates = [];
    for (let k = 0; k < repeat; k++) {
      const d = child(['dedicated', opt, String(dedicatedSeconds)]);
      rates.push((await d.next()).rate);
    }
    dedicatedRate[opt] = median(rates);
    process.stderr.write(`dedicated ${opt}: ${rates.map((r) => r.toFixed(2)).join(', ')} steps/s\n`);
  }
  const base = results.find((r) => r.mode === 'none');
  const label = { none: 'nothing trains', same: 'same thread', worker: 'train.inWorker' };
  console.log(
    `${requests} requests at concurrency ${concurrency} after ${warmup} unmeasured warm-up requests${repeat > 1 ? `; median of ${repeat} runs (range)` : ''}; ${cpus().length} cores (${cpus()[0]?.model}); Node ${process.version}; ${new Date().toISOString().slice(0, 16)}Z\n`,
  );
  console.log(
    '| Training | Optimizer | p50 | p99 | max | p99 / no-training p99 | steps/s during the requests | steps/s after them | dedicated process | after / dedicated |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const [where, opt] = r.mode.split('-');
    const rates = opt
      ? `${r.during.toFixed(2)} | ${r.idle.toFixed(2)} | ${dedicatedRate[opt].toFixed(2)} | ${((100 * r.idle) / dedicatedRate[opt]).toFixed(0)}%`
      : '— | — | — | —';
    console.log(
      `| ${label[where]} | ${opt ?? '—'} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms${r.p99Range} | ${r.max.toFixed(1)} ms${r.maxRange} | ${base ? (r.p99 / base.p99).toFixed(2) + 'x' : ''} | ${rates} |`,
    );
  }
}

const role = process.argv[2];
if (role === 'server') await server(process.argv[3]);
else if (role === 'dedicated') await dedicated(process.argv[3], Number(process.argv[4]));
else await main();
