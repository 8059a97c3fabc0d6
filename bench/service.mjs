/**
 * Serving beside training (issues 12 and 23): latency of POST /predict, one 784-pixel input per request, while the
 * same process trains in a worker (train.inWorker with `serve`, the README's recipe), against the same server with
 * nothing training. Two services:
 *   - mlp: a 784-512-512-10 classifier (answers the digit and the 10 probabilities); the job trains it with fit()
 *     (batch 128, Adam or TNT with a Categorical likelihood);
 *   - autoencoder: the MNIST autoencoder (784-1000-500-250-30-250-500-1000-784; answers the reconstruction error);
 *     the job trains it on a batch of 1024 in its own loop (Adam; TNT with T1 = 1, T2 = 20).
 * Rows: none (nothing trains), worker-adam, worker-tnt (train.inWorker, snapshots every 10 steps copied into the
 * served model), same-adam / same-tnt (the loop on the server's own thread; not in the default rows). A row may name
 * the trainer's options after an @, dash-separated (priorityOptions): worker-adam@train, worker-adam@0.25 (a
 * training budget), worker-adam@nice10 (SCHED_OTHER at nice 10, never paused: the default before issue 23), a nice
 * after an n (worker-adam@0.1n10: the budget 0.1 at nice 10) and a scheduling policy (worker-tnt@serve-idle-n10:
 * 'serve' as it was before 2026-12-08). Default rows: the recipe (priority 'serve') for both models, and for the
 * classifier @train and @0.25 with Adam too. Nothing is measured before the job has taken --train-warmup steps.
 * --busy N adds N processes that spin for the whole run, each in a session of its own (a busy machine); the
 * "during / dedicated" column is then the share that matters (the dedicated process competes with them too).
 *
 * This process is the load generator, and it is written the way an independent one is (wrk, autocannon): a closed
 * loop of `concurrency` clients on keep-alive connections, each POSTing a JSON body as soon as its previous answer
 * has arrived; `--warmup` requests on the same connections first (not measured: connections, the handler's first
 * compilation, the first forwards). Each server process is measured at every concurrency in turn (warm-up each).
 *
 *   npm run build:ts && node bench/service.mjs [--models mlp,autoencoder] [--rows none,worker-adam,worker-adam@train,...]
 *     [--concurrency 8,32] [--requests 6000] [--warmup 200] [--repeat 3] [--priority serve|train|<share>]
 *     [--idle-seconds 3] [--dedicated-seconds 4] [--train-warmup 25] [--busy N] [--dump DIR]
 *   BENCH_NICE (the trainer's nice), BENCH_PUBLISH_EVERY (10), BENCH_INVERSE_EVERY (autoencoder TNT, 20),
 *   BENCH_THREADS (the job's intra-op threads)
 *
 * Runs are interleaved (every row of every model, then again, `--repeat` times), and each row is a fresh server
 * process. Prints one markdown table per model: medians over the repetitions with their range, the p99 ratio to
 * the no-training row of the same repetition, the handler's p99 (on the server's thread, from the request's body to
 * its answer: JSON, the forward, the response; the rest of a request's latency is waiting for that thread), and
 * training throughput (steps/s while the requests run, then in the `--idle-seconds` after them with the server
 * idle, their ratio, the share of its pace the job kept during the requests, and a process that only trains), and
 * the copies of snapshots into the served model on the server's thread (mean and longest). The load average is
 * printed with it. The machine's cores are shared with whatever else runs: compare rows of one run only.
 */
import { spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const HERE = fileURLToPath(import.meta.url);
/** Training steps before anything is measured (--train-warmup): TNT's first 20 refresh its inverses every step. */
const TRAIN_WARMUP = Number(process.env.BENCH_TRAIN_WARMUP ?? 25);

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

const quantile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];

/**
 * inWorker options of a row's variant (worker-adam@train) or --priority: dash-separated tokens, each a priority
 * (serve, train, a share), a nice (n19; a share may carry one: 0.1n10), niceN (priority 'train' at that nice: SCHED_OTHER,
 * never paused) or a scheduling policy (idle, batch, normal): serve-batch-n19, 0.1-idle.
 */
function priorityOptions(p) {
  if (p === undefined) return {};
  const o = {};
  for (const t of p.split('-')) {
    const m = /^(.*?)n(\d+)$/.exec(t);
    if (t.startsWith('nice')) Object.assign(o, { priority: o.priority ?? 'train', nice: Number(t.slice(4)) });
    else if (['idle', 'batch', 'normal', 'short'].includes(t)) o.scheduling = t;
    else if (m) Object.assign(o, m[1] === '' ? {} : { priority: Number(m[1]) }, { nice: Number(m[2]) });
    else o.priority = /^[\d.]+$/.test(t) ? Number(t) : t;
  }
  return o;
}

// ---------------------------------------------------------------- server role
async function server(model, mode, priority) {
  const torch = await import('../dist/index.js');
  const { createServer } = await import('node:http');
  const job = await import('./service-job.mjs');
  const [base, variant] = mode.split('@'); // a variant: worker-adam@nice10, @serve, @train, @0.25 (priorityOptions)
  const [where, optimizer] = base.split('-'); // none | same-adam | worker-tnt ...
  const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  const stepTimes = [];
  const controller = new AbortController();
  const served = job.makeModel(model);
  served.eval();
  let trainer = null;
  const loadMs = [],
    blockMs = [];
  // --dump: what the server's thread did (GC pauses, snapshot loads), to line up with the slow requests
  const events = [];
  const { PerformanceObserver } = await import('node:perf_hooks');
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      events.push({ what: 'gc', kind: e.detail?.kind, t: e.startTime + performance.timeOrigin, ms: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const workerData = {
    model,
    optimizer,
    publishEvery: Number(process.env.BENCH_PUBLISH_EVERY ?? 10),
    inverseEvery: Number(process.env.BENCH_INVERSE_EVERY ?? 20),
    ...(process.env.BENCH_THREADS !== undefined ? { threads: Number(process.env.BENCH_THREADS) } : {}),
  };
  let finished = null;
  if (where === 'same') {
    finished = job.default({
      workerData: { ...workerData, publishEvery: 1e9 },
      signal: controller.signal,
      publish: () => 0,
      callbacks: () => ({}),
      progress: (p) => stepTimes.push(p.t),
    }); // on this thread, between requests
  } else if (where === 'worker') {
    trainer = torch.train.inWorker(new URL('./service-job.mjs', import.meta.url), {
      workerData,
      serve: served,
      ...(process.env.BENCH_NICE !== undefined ? { nice: Number(process.env.BENCH_NICE) } : {}),
      ...priorityOptions(variant ?? priority),
    });
    trainer.on('progress', (p) => {
      if (p.t !== undefined) stepTimes.push(p.t);
    });
    // BENCH_THROUGHPUT=1: the trainer's throughput events (pace, paused) on stderr
    if (process.env.BENCH_THROUGHPUT) trainer.on('throughput', (e) => process.stderr.write(`${JSON.stringify(e)}\n`));
    trainer.on('weights', (s) => {
      loadMs.push(s.loadMs ?? 0);
      blockMs.push(s.loadBlockMs ?? s.loadMs ?? 0);
      events.push({ what: 'load', t: performance.now() + performance.timeOrigin - (s.loadMs ?? 0), ms: s.loadMs ?? 0 });
    });
    finished = trainer.done;
  }
  // per request, on the server's thread: when its handler started and how long the forward took
  let handled = [];
  const respond = (req, res, body) => {
    const t0 = performance.now();
    const { pixels } = JSON.parse(body);
    const answer = torch.noGrad(() =>
      torch.tidy(() => {
        const x = torch.tensor(pixels).reshape([1, 784]);
        const out = served.call(x);
        if (model === 'mlp') {
          const p = out.softmax(1).reshape([10]);
          return { digit: p.argmax().item(), probabilities: Array.from(p.dataSync()) };
        }
        return { error: out.sigmoid().sub(x).square().mean().item() };
      }),
    );
    const t1 = performance.now();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
    handled.push([t0 + performance.timeOrigin, t1 - t0]);
  };
  const srv = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => respond(req, res, body));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  // warm: wait for the job's first steps (TNT's first 20 refresh its inverses at every step: slower than the rest)
  // (at most 60 s: a job starved on a busy machine may not get there)
  const warmUntil = Date.now() + 60_000;
  while (where !== 'none' && stepTimes.length < TRAIN_WARMUP && Date.now() < warmUntil)
    await new Promise((r) => setTimeout(r, 20));
  say({ ready: true, port: srv.address().port });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = JSON.parse(line);
    if (cmd.window) {
      // training throughput and the server's own time per request in a window of measured requests
      const inWin = handled.filter(([t]) => t >= cmd.from && t <= cmd.to).map(([, ms]) => ms);
      inWin.sort((a, b) => a - b);
      say({
        during: stepsIn(stepTimes, cmd.from, cmd.to) / ((cmd.to - cmd.from) / 1000),
        forwardP50: quantile(inWin, 0.5),
        forwardP99: quantile(inWin, 0.99),
        forwardMax: inWin.at(-1),
      });
      handled = [];
    } else if (cmd.stop) {
      // training throughput with the server idle for `idle` seconds
      const idleFrom = performance.now() + performance.timeOrigin;
      await new Promise((r) => setTimeout(r, cmd.idle * 1000));
      const idleTo = performance.now() + performance.timeOrigin;
      const idle = stepsIn(stepTimes, idleFrom, idleTo);
      controller.abort();
      if (trainer) await trainer.cancel();
      else if (finished) await finished;
      say({
        idle: idle / ((idleTo - idleFrom) / 1000),
        loadMs: loadMs.length ? loadMs.reduce((a, b) => a + b) / loadMs.length : null,
        loadMaxMs: blockMs.length ? Math.max(...blockMs) : null,
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
async function dedicated(model, optimizer, seconds) {
  const job = await import('./service-job.mjs');
  const stepTimes = [];
  const controller = new AbortController();
  const run = job.default({
    workerData: { model, optimizer, publishEvery: 1e9 },
    signal: controller.signal,
    publish: () => 0,
    callbacks: () => ({}),
    progress: (p) => stepTimes.push(p.t),
  });
  while (stepTimes.length < TRAIN_WARMUP) await new Promise((r) => setTimeout(r, 20));
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
  let exited = null;
  p.on('exit', (code) => {
    exited = code;
    wake?.();
  });
  const next = async () => {
    while (queue.length === 0) {
      if (exited !== null) throw new Error(`bench/service.mjs ${args.join(' ')} exited (code ${exited})`);
      await new Promise((r) => (wake = r));
    }
    return queue.shift();
  };
  return { p, next };
}

// request bodies: 64 different 784-pixel inputs (rounded to 3 decimals, as a client would send them)
const BODIES = Array.from({ length: 64 }, (_, k) =>
  JSON.stringify({
    pixels: Array.from({ length: 784 }, (_, i) => ((i * 7919 + k * 104729) % 1000) / 1000),
  }),
);

/** A closed loop of `concurrency` clients, `requests` POSTs in all, on the agent's keep-alive connections. */
async function load(port, requests, concurrency, agent) {
  const lat = [],
    log = [];
  let issued = 0;
  const one = (k) =>
    new Promise((resolve, reject) => {
      const body = BODIES[k % BODIES.length];
      const t0 = performance.now();
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/predict',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          res.resume();
          res.on('end', () => {
            const ms = performance.now() - t0;
            lat.push(ms);
            log.push({ i: log.length, t: t0 + performance.timeOrigin, ms });
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const from = performance.now() + performance.timeOrigin;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < requests) await one(issued++);
    }),
  );
  const to = performance.now() + performance.timeOrigin;
  lat.sort((a, b) => a - b);
  return {
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat.at(-1),
    rps: requests / ((to - from) / 1000),
    from,
    to,
    log,
  };
}

/**
 * --dump DIR: writes DIR/<model>-<mode>-c<concurrency>-<k>.json (every request's start time and latency, the
 * server thread's GC pauses and snapshot loads, the job's step end times) and prints, for the 5 slowest requests,
 * what overlapped them.
 */
async function dumpRun(dir, name, r, stats) {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const { events = [], stepTimes = [] } = stats;
  writeFileSync(`${dir}/${name}.json`, JSON.stringify({ requests: r.log, events, stepTimes }));
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
      `  ${name} slow #${q.i} at +${(q.t - r.from).toFixed(0)}ms: ${q.ms.toFixed(1)} ms; overlaps: ${[...over, ...steps].join(', ') || 'nothing recorded'}\n`,
    );
  }
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b),
    m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const range = (xs, digits = 1) =>
  xs.length > 1 ? ` (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})` : '';

async function main() {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const models = arg('models', 'mlp,autoencoder').split(',');
  const requests = Number(arg('requests', 6000));
  const levels = arg('concurrency', '8,32').split(',').map(Number);
  // default rows: the recipe (priority 'serve') beside nothing training, and for the classifier the other
  // priorities too ('train', a training budget of 0.25); --rows gives every model the same rows
  const rowsOf = (model) =>
    arg(
      'rows',
      model === 'mlp'
        ? 'none,worker-adam,worker-tnt,worker-adam@train,worker-adam@0.25'
        : 'none,worker-adam,worker-tnt',
    ).split(',');
  const dedicatedSeconds = Number(arg('dedicated-seconds', 4));
  const idleSeconds = Number(arg('idle-seconds', 3));
  const repeat = Number(arg('repeat', 3));
  const warmup = Number(arg('warmup', 200));
  const priority = arg('priority', undefined);
  const dump = arg('dump', null);
  process.env.BENCH_TRAIN_WARMUP = arg('train-warmup', String(TRAIN_WARMUP)); // the server and dedicated children's
  // --busy N: N other processes that keep a core busy each for the whole run (the rows and the dedicated
  // runs), each in a session of its own, as another user's work is (Linux's autogroup gives each session its share)
  const busy = Number(arg('busy', 0));
  const spinners = Array.from({ length: busy }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore', detached: true }),
  );
  spinners.forEach((p) => p.unref());
  process.on('exit', () => spinners.forEach((p) => p.kill('SIGKILL')));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  if (busy > 0) await new Promise((r) => setTimeout(r, 2000));
  const loads = [loadavg()];
  const runs = new Map(); // `${model} ${mode} ${c}` -> [{ p50, p99, max, rps, during, idle, ... }]
  const put = (key, v) => runs.set(key, [...(runs.get(key) ?? []), v]);
  const started = Date.now();
  for (let k = 0; k < repeat; k++) {
    for (const model of models) {
      for (const mode of rowsOf(model)) {
        const s = child(['server', model, mode, ...(priority !== undefined ? [priority] : [])]);
        const { port } = await s.next();
        const measured = [];
        for (const c of levels) {
          const agent = new Agent({ keepAlive: true, maxSockets: c });
          if (warmup > 0) await load(port, warmup, c, agent);
          const r = await load(port, requests, c, agent);
          agent.destroy();
          s.p.stdin.write(JSON.stringify({ window: true, from: r.from, to: r.to }) + '\n');
          measured.push({ c, r, w: await s.next() });
        }
        s.p.stdin.write(JSON.stringify({ stop: true, idle: mode === 'none' ? 0 : idleSeconds }) + '\n');
        const stats = await s.next();
        for (const { c, r, w } of measured) {
          put(`${model} ${mode} ${c}`, {
            ...r,
            ...w,
            idle: stats.idle,
            share: stats.idle > 0 ? w.during / stats.idle : null,
            loads: stats.loads,
            loadMs: stats.loadMs,
            loadMaxMs: stats.loadMaxMs,
            k,
          });
          if (dump) await dumpRun(dump, `${model}-${mode}-c${c}-${k}`, r, stats);
          process.stderr.write(
            `${model} ${mode} c${c}: p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} max ${r.max.toFixed(1)} ms, ${r.rps.toFixed(0)} req/s; ` +
              `server forward p99 ${w.forwardP99.toFixed(2)} max ${w.forwardMax.toFixed(1)} ms; ` +
              `${w.during.toFixed(2)} steps/s during, ${stats.idle.toFixed(2)} after; ${stats.loads} snapshot loads of ${stats.loadMs?.toFixed(1) ?? '-'} ms (longest block ${stats.loadMaxMs?.toFixed(1) ?? '-'}); load ${loadavg()[0].toFixed(2)}\n`,
          );
        }
        loads.push(loadavg());
      }
    }
  }
  const dedicatedRate = {};
  for (const model of models)
    for (const opt of new Set(
      rowsOf(model)
        .filter((m) => m !== 'none')
        .map((m) => m.split('@')[0].split('-')[1]),
    )) {
      const rates = [];
      for (let k = 0; k < Math.min(repeat, 2); k++) {
        const d = child(['dedicated', model, opt, String(dedicatedSeconds)]);
        rates.push((await d.next()).rate);
      }
      dedicatedRate[`${model} ${opt}`] = median(rates);
      process.stderr.write(`dedicated ${model} ${opt}: ${rates.map((r) => r.toFixed(2)).join(', ')} steps/s\n`);
    }
  loads.push(loadavg());
  const l1 = loads.map((l) => l[0]);
  console.log(
    `${requests} POST /predict at concurrency ${levels.join(' and ')}, after ${warmup} unmeasured warm-up requests each; ` +
      `${repeat > 1 ? `median of ${repeat} interleaved runs (range)` : 'one run'}; ${cpus().length} cores (${cpus()[0]?.model}); ` +
      `load average ${Math.min(...l1).toFixed(1)}-${Math.max(...l1).toFixed(1)}; Node ${process.version}; ` +
      `${priority !== undefined ? `priority ${priority}; ` : ''}${busy > 0 ? `${busy} other processes spinning (--busy ${busy}); ` : ''}${new Date().toISOString().slice(0, 16)}Z; ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  const label = { none: 'nothing trains', same: 'same thread', worker: 'train.inWorker' };
  for (const model of models) {
    console.log(
      `**${model === 'mlp' ? 'Classifier (784-512-512-10 MLP, fit() batch 128)' : 'Autoencoder (MNIST, batch 1024)'}**\n`,
    );
    console.log(
      '| Training (priority) | Optimizer | Clients | p50 | p99 | max | p99 / idle p99 | handler p99 | requests/s | steps/s during | steps/s after | share (during / after) | dedicated | during / dedicated | snapshot load: mean, longest block |',
    );
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of levels)
      for (const mode of rowsOf(model)) {
        const rs = runs.get(`${model} ${mode} ${c}`);
        const base = runs.get(`${model} none ${c}`);
        const col = (f) => rs.map((r) => r[f]);
        // the ratio to the no-training run of the same repetition
        const ratios = base ? rs.map((r) => r.p99 / base.find((b) => b.k === r.k).p99) : [];
        const [where, opt] = mode.split('@')[0].split('-');
        const shares = col('share').filter((x) => x !== null);
        const loadsMs = col('loadMs').filter((x) => x !== null);
        const tput = opt
          ? `${median(col('during')).toFixed(1)} | ${median(col('idle')).toFixed(1)} | ` +
            `${shares.length ? `${median(shares).toFixed(2)}${range(shares, 2)}` : '—'} | ${dedicatedRate[`${model} ${opt}`].toFixed(1)} | ` +
            `${(median(col('during')) / dedicatedRate[`${model} ${opt}`]).toFixed(2)} | ` +
            (loadsMs.length
              ? `${median(loadsMs).toFixed(1)} ms, ${Math.max(...col('loadMaxMs').filter((x) => x !== null)).toFixed(1)} ms`
              : '—')
          : '— | — | — | — | — | —';
        console.log(
          `| ${label[where]} (${mode.includes('@') ? mode.split('@')[1] : where === 'worker' ? 'serve' : '—'}) | ${opt ?? '—'} | ${c} | ${median(col('p50')).toFixed(1)} ms | ${median(col('p99')).toFixed(1)} ms${range(col('p99'))} | ` +
            `${median(col('max')).toFixed(1)} ms${range(col('max'))} | ${base ? `${median(ratios).toFixed(2)}x${range(ratios, 2)}` : ''} | ` +
            `${median(col('forwardP99')).toFixed(1)} ms | ${median(col('rps')).toFixed(0)} | ${tput} |`,
        );
      }
    console.log('');
  }
}

const role = process.argv[2];
if (role === 'server') await server(process.argv[3], process.argv[4], process.argv[5]);
else if (role === 'dedicated') await dedicated(process.argv[3], process.argv[4], Number(process.argv[5]));
else await main();
