#!/usr/bin/env node
/**
 * Data-parallel benchmark (after `npm run build:ts`): the paper's MNIST autoencoder (784-1000-500-250-30-250-500-
 * 1000-784, Bernoulli likelihood, global batch 1000) with SGD-m and TNT, on
 *   - 1 process x 2 intra-op threads, batch 1000, and
 *   - 2 ranks x 1 thread (DDP over Gloo on 127.0.0.1), batch 500 each;
 * plus TNT and KFAC with inverses replicated vs sharded over the 2 ranks (T2 = 5, to weigh the inverses), and KFAC
 * with shard 'all' (each layer's statistics, inverses and update on one rank) against shard 'inverses'.
 * Reports steps/s, time per epoch (60 steps: 60,000 images at batch 1000), bytes each rank hands to collectives
 * per step, and an alpha-beta model of the all-reduce cost at 8, 64 and 512 ranks on 10 and 100 Gb/s networks.
 *
 *   node bench/distributed.mjs [--steps 20] [--only 4,5] [--rounds R] [--write]  (--write: appends to
 *                                                                        bench/distributed-results.md)
 *   node bench/distributed.mjs --scaling R        1 process vs 2 ranks, Adam and TNT, R interleaved rounds (below)
 *   node bench/distributed.mjs --netns R [--link delayed [--delay-ms 5]]   (root) 2 ranks in 2 network namespaces
 *
 * Inputs are random [0, 1) images: the timings do not depend on the pixels.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const argv = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const STEPS = Number(flag('steps', 20));
const WARMUP = 3;

// ------------------------------------------------------------------ one rank (or the single process)
if (process.env.TN_BENCH_RANK !== undefined) {
  const torch = await import(join(root, 'dist', 'index.js'));
  const { distributed: dist } = torch;
  const { opt: optName, mode, inverses, shard, T2, threads } = JSON.parse(process.env.TN_BENCH_RANK);
  torch.setNumThreads(threads ?? (mode === 'single' ? 2 : 1));
  const ddpMode = mode !== 'single';
  if (ddpMode) await dist.initProcessGroup({ timeout: 120_000 });
  if (optName === 'collectives') {
    // back-to-back all-reduces of float32 buffers of several sizes: the median time of each, for the alpha-beta fit
    const sizes = [1, 16_384, 262_144, 1_048_576, 2_097_152];
    const out = [];
    for (const n of sizes) {
      const t = torch.ones([n]);
      const ts = [];
      for (let i = 0; i < 9; i++) {
        const a = performance.now();
        await dist.allReduce(t, 'sum');
        if (i >= 2) ts.push(performance.now() - a);
      }
      t.dispose();
      ts.sort((a, b) => a - b);
      out.push({ bytes: n * 4, ms: ts[Math.floor(ts.length / 2)] });
    }
    if (dist.getRank() === 0) process.stdout.write(JSON.stringify({ collectives: out }) + '\n');
    await dist.destroyProcessGroup();
    process.exit(0);
  }
  const W = ddpMode ? dist.getWorldSize() : 1;
  torch.manualSeed(0);
  const model = torch.models.autoencoder('mnist');
  const B = 1000 / W;
  const x = torch.rand([B, 784]);
  const lik = new torch.Bernoulli();
  const net = ddpMode ? await torch.nn.parallel.DistributedDataParallel.create(model) : model;
  // earlyRefresh off: the steady state (with the first-T2 rule every step before step T2 refreshes the inverses)
  const o = { lr: 0.01, statsEvery: 1, inverseEvery: T2 ?? 20, earlyRefresh: false };
  const opt =
    optName === 'sgd'
      ? new torch.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 })
      : optName === 'adam'
        ? new torch.optim.Adam(model.parameters(), { lr: 1e-3 })
        : optName === 'tnt'
          ? new torch.optim.TNT(model.parameters(), o)
          : new torch.optim.KFAC(model, o);
  const curv = optName !== 'sgd' && optName !== 'adam';
  const sync = ddpMode && curv ? new dist.CurvatureSync(opt, shard !== undefined ? { shard } : { inverses }) : null;
  // single-process TNT: the phases, for the alpha-beta projection (batch work scales 1/W, curvature work by shard)
  const phase = { batch: 0, curvature: 0 };
  const times = [];
  let bytes0 = 0;
  for (let s = 0; s < WARMUP + STEPS; s++) {
    if (s === WARMUP) bytes0 = ddpMode ? dist.bytesCommunicated() : 0;
    const t0 = performance.now();
    opt.zeroGrad();
    const out = net.call(x);
    let tStats = 0;
    if (curv) {
      if (sync) await sync.sampledBackward(out, lik);
      else if (optName === 'tnt') {
        const grads = torch.tidy(() => {
          const gs = torch.autograd.grad(lik.loss(out, lik.sample(out)), opt.params, { retainGraph: true });
          gs.forEach((g) => torch.keep(g));
          return gs;
        });
        const a = performance.now();
        opt.updateStatistics(grads);
        tStats = performance.now() - a;
        grads.forEach((g) => g.dispose());
      } else opt.sampledBackward(out, lik);
    }
    torch.tidy(() => lik.loss(out, x).backward());
    out.dispose();
    if (ddpMode) await net.synchronize();
    const t1 = performance.now();
    if (sync) await sync.step();
    else opt.step();
    const t2 = performance.now();
    if (s >= WARMUP) {
      times.push(t2 - t0);
      phase.curvature += tStats + (curv ? t2 - t1 : 0);
      phase.batch += t1 - t0 - tStats;
    }
  }
  const bytes = ddpMode ? (dist.bytesCommunicated() - bytes0) / STEPS : 0;
  const stats = sync ? sync.statisticsBytes() : null;
  const params = model.parameters().reduce((a, p) => a + p.numel(), 0);
  if (!ddpMode || dist.getRank() === 0)
    process.stdout.write(
      JSON.stringify({
        meanMs: times.reduce((a, b) => a + b, 0) / times.length,
        bytes,
        stats,
        params,
        batchMs: phase.batch / STEPS,
        curvatureMs: phase.curvature / STEPS,
      }) + '\n',
    );
  if (ddpMode) await dist.destroyProcessGroup();
  process.exit(0);
}

// ------------------------------------------------------------------ runner
function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function run(cfg) {
  const W = cfg.mode === 'single' ? 1 : (cfg.world ?? 2);
  const port = await freePort();
  const outs = await Promise.all(
    Array.from(
      { length: W },
      (_, rank) =>
        new Promise((resolve, reject) => {
          // cfg.netns: rank r runs in namespace ns[r] and talks over its veth dev[r]; the store is at addr
          const ns = cfg.netns;
          const cmd = ns
            ? ['ip', ['netns', 'exec', ns.ns[rank], process.execPath, fileURLToPath(import.meta.url)]]
            : [process.execPath, [fileURLToPath(import.meta.url)]];
          const child = spawn(cmd[0], cmd[1], {
            env: {
              ...process.env,
              TN_BENCH_RANK: JSON.stringify(cfg),
              RANK: String(rank),
              WORLD_SIZE: String(W),
              MASTER_ADDR: ns ? ns.addr : '127.0.0.1',
              MASTER_PORT: String(port),
              OMP_NUM_THREADS: String(cfg.threads ?? (W === 1 ? 2 : 1)),
              // OpenBLAS keeps its own pool (2 threads here) unless told: the same count as libtorch's
              OPENBLAS_NUM_THREADS: String(cfg.threads ?? (W === 1 ? 2 : 1)),
              ...(ns ? { GLOO_SOCKET_IFNAME: ns.dev[rank] } : {}),
            },
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let s = '';
          child.stdout.on('data', (d) => (s += d));
          child.on('close', (code) =>
            code === 0 ? resolve(s) : reject(new Error(`${JSON.stringify(cfg)} rank ${rank} exited with ${code}`)),
          );
        }),
    ),
  );
  return JSON.parse(outs.find((s) => s.trim() !== '').trim());
}

// ------------------------------------------------------------------ the alpha-beta model (shared)
// The autoencoder's parameters as (out, in) weights and (out) biases, and CurvatureSync's per-parameter TNT cost model
// (T1 = 1, T2 = 20), for the largest owner's share of the curvature work under the LPT plan at W ranks.
const AE_DIMS = [784, 1000, 500, 250, 30, 250, 500, 1000, 784];
const aeCosts = (() => {
  const shapes = [];
  for (let i = 0; i + 1 < AE_DIMS.length; i++) shapes.push([AE_DIMS[i + 1], AE_DIMS[i]], [AE_DIMS[i + 1]]);
  return shapes.map((sh) => {
    const numel = sh.reduce((a, d) => a * d, 1);
    return numel * sh.reduce((a, d) => a + d, 0) * (1 + 2) + sh.reduce((a, d) => a + d ** 3 / 3, 0) / 20;
  });
})();
function largestShare(W) {
  const total = aeCosts.reduce((a, b) => a + b, 0);
  const load = new Array(W).fill(0);
  for (const c of [...aeCosts].sort((a, b) => b - a)) {
    let best = 0;
    for (let r = 1; r < W; r++) if (load[r] < load[best]) best = r;
    load[best] += c;
  }
  return Math.max(...load) / total;
}
/** Ring all-reduce of n bytes over W ranks: 2 (W - 1) alpha + 2 (W - 1) / W n / beta (seconds). */
const allreduceS = (W, n, alpha, beta) => (W > 1 ? 2 * (W - 1) * alpha + ((2 * (W - 1)) / W) * (n / beta) : 0);
/**
 * Step times (ms) at W ranks from the 1-process measurements (m: { aAdam, aTnt, cTnt } ms, n gradient bytes): Adam
 * A / W + DDP's all-reduce; TNT shard 'all' A / W + the largest owner's curvature share + DDP's all-reduce + the
 * sampled gradient reduced to its owners and the updated parameters broadcast from them (one more all-reduce's
 * messages and bytes). No overlap of communication with compute is assumed.
 */
function projectSteps(W, m, n, alpha, beta) {
  const ar = allreduceS(W, n, alpha, beta) * 1000;
  return { adam: m.aAdam / W + ar, tnt: m.aTnt / W + m.cTnt * largestShare(W) + 2 * ar };
}
/**
 * alpha and beta of a link from 2-rank all-reduce medians (t = 2 alpha + n / beta): alpha is half the time of the
 * smallest all-reduce (4 bytes: latency only), 1 / beta the least-squares slope over the sizes of 1 MiB and more.
 */
function fitAlphaBeta(points) {
  const small = Math.min(...points.map((p) => p.bytes));
  const t0 = points.filter((p) => p.bytes === small).map((p) => p.ms / 1000);
  const alpha = t0.reduce((a, b) => a + b, 0) / t0.length / 2;
  const big = points.filter((p) => p.bytes >= 2 ** 20);
  const xs = big.map((p) => p.bytes);
  const ys = big.map((p) => p.ms / 1000);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0,
    sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i] - my);
    sxx += (x - mx) ** 2;
  });
  return { alpha, beta: 1 / Math.max(sxy / sxx, 1e-12) };
}

// ------------------------------------------------------------------ --netns R: 2 ranks across a real link
// Root only. Two network namespaces (as test/distributed-netns.test.ts), R interleaved rounds of: Adam and TNT (T2 =
// 20) in 1 process x 1 thread (outside the namespaces), and over each link Adam and TNT shard 'all' with 2 ranks x 1
// thread plus back-to-back all-reduces of 4 B to 8 MiB (the alpha-beta fit of that link). Links:
//   default:          a veth pair as is, then slowed with tc: netem delay where the kernel has it, else tbf rate limits;
//   --link delayed:   a user-space delayed link (scripts/delay-link.py: TUN devices and a forwarder at SCHED_FIFO
//                     priority holding each packet --delay-ms one way; for kernels without sch_netem), with no
//                     delay and with the delay.
// Beside each 2-rank measurement the alpha-beta prediction: the 1-process batch and curvature work (divided as
// projectSteps does) plus the communication from the link's fitted alpha and beta; and the projection to 8 and 64
// ranks over each link.
if (argv.includes('--netns')) {
  const { spawnSync } = await import('node:child_process');
  const { loadavg } = await import('node:os');
  const R = Number(flag('netns', 2));
  const delayed = flag('link', 'tc') === 'delayed';
  const delayMs = Number(flag('delay-ms', 5));
  const sh = (...c) => {
    const r = spawnSync(c[0], c.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${c.join(' ')}: ${r.stderr || r.error}`);
    return r.stdout;
  };
  const id = process.pid % 10000;
  const ns = { ns: [`tbA${id}`, `tbB${id}`], dev: [`tbvA${id}`, `tbvB${id}`], addr: '10.211.0.1' };
  const tunNs = { ns: ns.ns, dev: [`tdA${id}`, `tdB${id}`], addr: '10.212.0.1' };
  let forwarder = null;
  const stopForwarder = async () => {
    if (!forwarder) return;
    const f = forwarder;
    forwarder = null;
    f.kill('SIGTERM');
    await new Promise((r) => f.once('close', r));
  };
  const startForwarder = async (ms) => {
    await stopForwarder();
    const f = spawn(
      'chrt',
      [
        '-f',
        '20',
        'python3',
        join(root, 'scripts', 'delay-link.py'),
        ...ns.ns,
        '--delay-ms',
        String(ms),
        '--dev-a',
        tunNs.dev[0],
        '--dev-b',
        tunNs.dev[1],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve, reject) => {
      f.stdout.on('data', (d) => String(d).includes('ready') && resolve());
      f.once('close', (code) => reject(new Error(`delay-link.py exited with ${code}`)));
    });
    forwarder = f;
  };
  const down = () => ns.ns.forEach((n) => spawnSync('ip', ['netns', 'del', n]));
  try {
    sh('ip', 'netns', 'add', ns.ns[0]);
    sh('ip', 'netns', 'add', ns.ns[1]);
    sh('ip', 'link', 'add', ns.dev[0], 'type', 'veth', 'peer', 'name', ns.dev[1]);
    ns.ns.forEach((n, r) => {
      sh('ip', 'link', 'set', ns.dev[r], 'netns', n);
      sh('ip', '-n', n, 'addr', 'add', `10.211.0.${r + 1}/24`, 'dev', ns.dev[r]);
      sh('ip', '-n', n, 'link', 'set', ns.dev[r], 'up');
      sh('ip', '-n', n, 'link', 'set', 'lo', 'up');
    });
    const netemOk =
      spawnSync('ip', [
        'netns',
        'exec',
        ns.ns[0],
        'tc',
        'qdisc',
        'add',
        'dev',
        ns.dev[0],
        'root',
        'netem',
        'delay',
        '1ms',
      ]).status === 0;
    if (netemOk) spawnSync('ip', ['netns', 'exec', ns.ns[0], 'tc', 'qdisc', 'del', 'dev', ns.dev[0], 'root']);
    // links: { label, qdisc args (veth) or forwarder delay (tun), the namespaces' addressing }
    const links = delayed
      ? [
          { label: 'user-space link, no delay', tun: 0, net: tunNs },
          { label: `user-space link, ${delayMs} ms one way`, tun: delayMs, net: tunNs },
        ]
      : netemOk
        ? [
            { label: 'veth, as is', q: null, net: ns },
            { label: 'netem delay 20ms', q: ['netem', 'delay', '20ms'], net: ns },
            { label: 'netem 1 Gbit/s + 2ms', q: ['netem', 'delay', '2ms', 'rate', '1gbit'], net: ns },
          ]
        : [
            { label: 'veth, as is', q: null, net: ns },
            { label: 'tbf 1 Gbit/s', q: ['tbf', 'rate', '1gbit', 'burst', '1mb', 'latency', '100ms'], net: ns },
            { label: 'tbf 200 Mbit/s', q: ['tbf', 'rate', '200mbit', 'burst', '256kb', 'latency', '200ms'], net: ns },
          ];
    const setLink = async (l) => {
      ns.ns.forEach((n, r) => spawnSync('ip', ['netns', 'exec', n, 'tc', 'qdisc', 'del', 'dev', ns.dev[r], 'root']));
      if (l.q)
        ns.ns.forEach((n, r) => sh('ip', 'netns', 'exec', n, 'tc', 'qdisc', 'add', 'dev', ns.dev[r], 'root', ...l.q));
      if (l.tun !== undefined) await startForwarder(l.tun);
      else await stopForwarder();
    };
    const single = {
      adam: { opt: 'adam', mode: 'single', threads: 1 },
      tnt: { opt: 'tnt', mode: 'single', threads: 1, T2: 20 },
    };
    const cfgs = {
      adam: { opt: 'adam', mode: 'ddp' },
      tnt: { opt: 'tnt', mode: 'ddp', shard: 'all', T2: 20 },
    };
    const res = {};
    const loads = [];
    const note = (k, r) => (res[k] ??= []).push(r);
    for (let round = 0; round < R; round++) {
      for (const [k, c] of Object.entries(single)) {
        loads.push(loadavg()[0]);
        process.stderr.write(`round ${round + 1}/${R}: ${k}, 1 process ...`);
        const r = await run(c);
        process.stderr.write(` ${r.meanMs.toFixed(0)} ms\n`);
        note(`${k}|single`, r);
      }
      for (const l of links) {
        await setLink(l);
        loads.push(loadavg()[0]);
        const coll = await run({ opt: 'collectives', mode: 'ddp', netns: l.net });
        note(`coll|${l.label}`, coll.collectives);
        process.stderr.write(
          `round ${round + 1}/${R}: all-reduce over ${l.label}: ${coll.collectives.map((p) => `${p.bytes} B ${p.ms.toFixed(1)} ms`).join(', ')}\n`,
        );
        for (const [k, c] of Object.entries(cfgs)) {
          loads.push(loadavg()[0]);
          process.stderr.write(`round ${round + 1}/${R}: ${k} over ${l.label} ...`);
          const r = await run({ ...c, netns: l.net });
          process.stderr.write(` ${r.meanMs.toFixed(0)} ms\n`);
          note(`${k}|${l.label}`, r);
        }
      }
      await setLink({ q: null });
    }
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const span = (xs) => `${mean(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
    const spanX = (xs) => `${mean(xs).toFixed(2)}x (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
    const n = res['adam|single'][0].params * 4;
    const m = {
      aAdam: mean(res['adam|single'].map((r) => r.meanMs)),
      aTnt: mean(res['tnt|single'].map((r) => r.batchMs)),
      cTnt: mean(res['tnt|single'].map((r) => r.curvatureMs)),
    };
    const rows = [];
    const fits = {};
    for (const l of links) fits[l.label] = fitAlphaBeta(res[`coll|${l.label}`].flat()); // every round's medians
    const base = links[0];
    for (const l of links) {
      const fit = fits[l.label];
      const pred = projectSteps(2, m, n, fit.alpha, fit.beta);
      const predBase = projectSteps(2, m, n, fits[base.label].alpha, fits[base.label].beta);
      for (const k of Object.keys(cfgs)) {
        const ms = res[`${k}|${l.label}`].map((r) => r.meanMs);
        const sp = ms.map((t, i) => res[`${k}|single`][i].meanMs / t);
        const singleMs = k === 'adam' ? m.aAdam : m.aTnt + m.cTnt;
        // the link's effect: the first link's measured step plus the model's extra communication on this one
        const baseMs = mean(res[`${k}|${base.label}`].map((r) => r.meanMs));
        const shifted = baseMs + pred[k] - predBase[k];
        rows.push(
          `| ${k === 'adam' ? 'Adam' : "TNT (T2=20), shard 'all'"} | ${l.label} | ${(fit.alpha * 1e6).toFixed(0)} us, ${((fit.beta * 8) / 1e9).toFixed(2)} Gbit/s | ${span(ms)} ms | ${l === base ? '(the base)' : `${shifted.toFixed(0)} ms (+${(pred[k] - predBase[k]).toFixed(0)})`} | ${pred[k].toFixed(0)} ms | ${spanX(sp)} | ${(singleMs / pred[k]).toFixed(2)}x |`,
        );
      }
    }
    const proj = [];
    for (const l of links)
      for (const W of [8, 64]) {
        const f = fits[l.label];
        const p = projectSteps(W, m, n, f.alpha, f.beta);
        const sa = m.aAdam / p.adam,
          st = (m.aTnt + m.cTnt) / p.tnt;
        proj.push(`| ${W} | ${l.label} | ${sa.toFixed(2)}x | ${st.toFixed(2)}x | ${(st / sa).toFixed(2)} |`);
      }
    const text = `<!-- Written by \`node bench/distributed.mjs --netns ${R}${delayed ? ` --link delayed --delay-ms ${delayMs}` : ''}\` (root). -->
Two ranks in two network namespaces, measured ${new Date().toISOString()} on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores, shared), Node ${process.version}; MNIST autoencoder, global batch 1000 (1 process x 1 thread, or 500 per rank, 1 thread each), ${STEPS} timed steps after ${WARMUP}, ${R} interleaved rounds; load average (1 min) ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}. ${netemOk ? '' : 'This kernel has no netem (CONFIG_NET_SCH_NETEM is not set: `tc qdisc add ... netem` answers "Specified qdisc kind is unknown"). '}${delayed ? `The delayed link is scripts/delay-link.py: a TUN device in each namespace (MTU 65000) and a user-space forwarder (SCHED_FIFO 20) holding every packet ${delayMs} ms before passing it on. ` : ''}1 process: Adam ${span(res['adam|single'].map((r) => r.meanMs))} ms, TNT ${span(res['tnt|single'].map((r) => r.meanMs))} ms (batch work ${m.aTnt.toFixed(0)} ms, curvature work ${m.cTnt.toFixed(0)} ms).

Alpha and beta are fitted per link from back-to-back 2-rank all-reduces (medians of 7, every round; t = 2 alpha + n / beta): alpha is half the 4-byte all-reduce, 1 / beta the least-squares slope over 1 to 8 MiB. The model's 2-rank step: Adam A / 2 + an all-reduce of the ${(n / 2 ** 20).toFixed(1)} MiB gradient; TNT A / 2 + the larger owner's share (${(100 * largestShare(2)).toFixed(0)}%) of the curvature work + two all-reduces' worth (DDP's, and the reduce to the owners with the broadcast from them); no overlap. "Link effect" predicts a link from the first one: its measured step plus the model's extra communication; "from 1 process" is the model alone (compute divided by 2: it assumes each rank has a core to itself, which a shared 2-core machine does not give).

| Optimizer | Link | Fitted alpha, beta | 2-rank step, mean (min-max) | Predicted: link effect | Predicted from 1 process | Speed-up over 1 process, measured | Predicted |
|---|---|---|---:|---:|---:|---:|---:|
${rows.join('\n')}

Projected with each link's fitted alpha and beta (speed-up over 1 process, compute as measured above, 1 thread per rank):

| Ranks | Link | Adam | TNT shard 'all' | TNT / Adam |
|---:|---|---:|---:|---:|
${proj.join('\n')}
`;
    process.stdout.write(text);
    if (argv.includes('--write')) appendFileSync(join(here, 'distributed-results.md'), '\n' + text);
  } finally {
    await stopForwarder();
    down();
  }
  process.exit(0);
}

// ------------------------------------------------------------------ --scaling R: the speed-ups, side by side
// Adam and TNT (T2 = 20, shard 'all' and, for comparison, 'none'), 1 process x 1 thread (global batch 1000) against
// 2 ranks x 1 thread (500 each), R interleaved rounds; the speed-up of each round is its own 1-process time over its
// own 2-rank time, so a load change between rounds cancels. Then the alpha-beta projection to 8 and 64 ranks.
if (argv.includes('--scaling')) {
  const { loadavg } = await import('node:os');
  const R = Number(flag('scaling', 3));
  const cfgs = {
    adam1: { opt: 'adam', mode: 'single', threads: 1 },
    adam2: { opt: 'adam', mode: 'ddp' },
    tnt1: { opt: 'tnt', mode: 'single', threads: 1, T2: 20 },
    tnt2: { opt: 'tnt', mode: 'ddp', shard: 'all', T2: 20 },
    tnt2none: { opt: 'tnt', mode: 'ddp', shard: 'none', T2: 20 },
  };
  const res = Object.fromEntries(Object.keys(cfgs).map((k) => [k, []]));
  const loads = [];
  for (let round = 0; round < R; round++)
    for (const [k, c] of Object.entries(cfgs)) {
      loads.push(loadavg()[0]);
      process.stderr.write(`round ${round + 1}/${R}: ${k} ...`);
      const r = await run(c);
      process.stderr.write(` ${r.meanMs.toFixed(0)} ms\n`);
      res[k].push(r);
    }
  const ms = (k) => res[k].map((r) => r.meanMs);
  const sp = (a, b) => ms(a).map((t, i) => t / ms(b)[i]);
  const spread = (xs) =>
    `${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)}x (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  const adamSp = sp('adam1', 'adam2');
  const tntSp = sp('tnt1', 'tnt2');
  const tntNone = sp('tnt1', 'tnt2none');
  const ratio = tntSp.map((t, i) => t / adamSp[i]);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // --- alpha-beta projection. Measured (1 process, 1 thread): batch work A (forward, backward, Adam's update; for
  // TNT also the sampled backward), TNT's curvature work C (statistics, inverses, preconditioned update). W ranks:
  // A / W, plus C's largest share under the LPT plan over the parameters (CurvatureSync's cost model), plus the
  // communication: DDP's ring all-reduce of the n-byte gradient, 2 (W - 1) alpha + 2 (W - 1) / W n / beta; TNT adds
  // the sampled gradient reduced to its owners and the updated parameters broadcast from them, each (W - 1) / W n
  // per rank, (W - 1) alpha each (a reduce-scatter and an all-gather, in effect: one more all-reduce's bytes).
  const n = res.adam1[0].params * 4;
  const aAdam = mean(ms('adam1'));
  const aTnt = mean(res.tnt1.map((r) => r.batchMs));
  const cTnt = mean(res.tnt1.map((r) => r.curvatureMs));
  const nets = [
    ['10 Gb/s', 20e-6, 10e9 / 8],
    ['100 Gb/s', 20e-6, 100e9 / 8],
  ];
  const m = { aAdam, aTnt, cTnt };
  const project = (W, alpha, beta) => {
    const p = projectSteps(W, m, n, alpha, beta);
    return { adam: aAdam / p.adam, tnt: (aTnt + cTnt) / p.tnt };
  };
  const proj = [];
  for (const [name, alpha, beta] of nets)
    for (const W of [2, 8, 64]) {
      const p = project(W, alpha, beta);
      proj.push(
        `| ${W} | ${name} | ${p.adam.toFixed(2)}x | ${p.tnt.toFixed(2)}x | ${(p.tnt / p.adam).toFixed(2)} | ${(100 * largestShare(W)).toFixed(0)}% |`,
      );
    }
  const text = `<!-- Written by \`node bench/distributed.mjs --scaling ${R}\`. -->
Scaling, measured ${new Date().toISOString()} on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores, shared), Node ${process.version}; MNIST autoencoder, global batch 1000, ${STEPS} timed steps after ${WARMUP}; ${R} interleaved rounds; load average (1 min) during the runs ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.

| Configuration | Step, mean (min-max) |
|---|---:|
${Object.entries(cfgs)
  .map(
    ([k, c]) =>
      `| ${c.opt === 'adam' ? 'Adam' : 'TNT (T2=20)'}, ${c.mode === 'single' ? '1 process x 1 thread, batch 1000' : `2 ranks x 1 thread, 500 each${c.shard ? `, shard '${c.shard}'` : ''}`} | ${mean(ms(k)).toFixed(0)} ms (${Math.min(...ms(k)).toFixed(0)}-${Math.max(...ms(k)).toFixed(0)}) |`,
  )
  .join('\n')}

2-rank speed-up (each round's 1-process time over its 2-rank time): Adam ${spread(adamSp)}; TNT shard 'all' ${spread(tntSp)}; TNT shard 'none' ${spread(tntNone)}. TNT's speed-up over Adam's: ${spread(ratio)} (goal >= 0.9).

Single-process TNT step split: ${aTnt.toFixed(0)} ms batch work (forward, backward, sampled backward), ${cTnt.toFixed(0)} ms curvature work (statistics, inverses / 20, preconditioned update); Adam ${aAdam.toFixed(0)} ms.

Alpha-beta projection (speed-up over 1 process; gradient ${(n / 2 ** 20).toFixed(1)} MiB float32; compute as measured above, 1 thread per rank, no overlap assumed):

| Ranks | Network | Adam | TNT shard 'all' | TNT / Adam | TNT's largest share of the curvature work |
|---:|---|---:|---:|---:|---:|
${proj.join('\n')}
`;
  process.stdout.write(text);
  if (argv.includes('--write')) {
    appendFileSync(join(here, 'distributed-results.md'), '\n' + text);
  }
  process.exit(0);
}

const configs = [
  { name: 'SGD-m, 1 process x 2 threads', opt: 'sgd', mode: 'single' },
  { name: 'SGD-m, 2 ranks x 1 thread (DDP)', opt: 'sgd', mode: 'ddp' },
  { name: 'TNT (T2=20), 1 process x 2 threads', opt: 'tnt', mode: 'single', T2: 20 },
  {
    name: 'TNT (T2=20), 2 ranks x 1 thread, inverses replicated',
    opt: 'tnt',
    mode: 'ddp',
    inverses: 'replicated',
    T2: 20,
  },
  { name: 'TNT (T2=5), 2 ranks, inverses replicated', opt: 'tnt', mode: 'ddp', inverses: 'replicated', T2: 5 },
  { name: 'TNT (T2=5), 2 ranks, inverses sharded', opt: 'tnt', mode: 'ddp', inverses: 'sharded', T2: 5 },
  { name: 'KFAC (T2=5), 2 ranks, inverses replicated', opt: 'kfac', mode: 'ddp', inverses: 'replicated', T2: 5 },
  { name: 'KFAC (T2=5), 2 ranks, inverses sharded', opt: 'kfac', mode: 'ddp', inverses: 'sharded', T2: 5 },
  { name: "KFAC (T2=5), 2 ranks, shard 'all'", opt: 'kfac', mode: 'ddp', shard: 'all', T2: 5 },
  { name: "KFAC (T2=20), 2 ranks, shard 'inverses'", opt: 'kfac', mode: 'ddp', shard: 'inverses', T2: 20 },
  { name: "KFAC (T2=20), 2 ranks, shard 'all'", opt: 'kfac', mode: 'ddp', shard: 'all', T2: 20 },
];

// --only 4,5: run some configurations (indices into the list above), e.g. to repeat a comparison
const only = flag('only', null)?.split(',').map(Number);
const chosen = only ? only.map((i) => configs[i]) : configs; // in the order given

// --rounds R: R interleaved rounds of the chosen configurations; each row then shows mean (min-max)
const ROUNDS = Number(flag('rounds', 1));
const MiB = 1024 * 1024;
const rows = [];
let params = 0;
let tntStats = null;
const { loadavg } = await import('node:os');
const loads = [];
const got = chosen.map(() => []);
for (let round = 0; round < ROUNDS; round++)
  for (const [i, c] of chosen.entries()) {
    loads.push(loadavg()[0]);
    process.stderr.write(`${ROUNDS > 1 ? `round ${round + 1}/${ROUNDS}: ` : ''}${c.name} ...`);
    const r = await run(c);
    process.stderr.write(
      ` ${r.meanMs.toFixed(0)} ms (rank 0: ${r.batchMs.toFixed(0)} ms to the step, ${r.curvatureMs.toFixed(0)} ms in it)\n`,
    );
    got[i].push(r);
  }
for (const [i, c] of chosen.entries()) {
  const rs = got[i];
  const ms = rs.map((r) => r.meanMs);
  const m = ms.reduce((a, b) => a + b, 0) / ms.length;
  const r = rs[0];
  params = r.params;
  if (c.opt === 'tnt' && r.stats) tntStats = r.stats;
  const bytes = rs.reduce((a, x) => a + x.bytes, 0) / rs.length;
  rows.push(
    `| ${c.name} | ${m.toFixed(0)} ms${ms.length > 1 ? ` (${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)})` : ''} | ${(1000 / m).toFixed(2)} | ${((60 * m) / 1000).toFixed(1)} s | ${c.mode === 'single' ? '—' : `${(bytes / MiB).toFixed(2)} MiB`} |`,
  );
}

// Alpha-beta model of a ring all-reduce of n bytes over W ranks: 2 (W - 1) alpha + 2 (W - 1) / W * n / beta.
const alpha = 20e-6; // s per message on a commodity Ethernet/TCP hop (Gloo over TCP, measured order: 10-50 us)
const gradBytes = params * 4;
const model = [];
for (const W of [8, 64, 512])
  for (const gbps of [10, 100]) {
    const beta = (gbps * 1e9) / 8;
    const ring = 2 * (W - 1) * alpha + (((2 * (W - 1)) / W) * gradBytes) / beta;
    // two-level tree (recursive halving/doubling): 2 log2(W) alpha + the same bandwidth term
    const tree = 2 * Math.log2(W) * alpha + (((2 * (W - 1)) / W) * gradBytes) / beta;
    model.push(
      `| ${W} | ${gbps} Gb/s | ${(ring * 1000).toFixed(1)} ms | ${(tree * 1000).toFixed(1)} ms | ${(2 * tree * 1000).toFixed(1)} ms |`,
    );
  }

const text = `<!-- Written by \`node bench/distributed.mjs --write\`. -->
Measured ${new Date().toISOString().slice(0, 16)} on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores, shared with other jobs: expect noise), Node ${process.version}, ${STEPS} timed steps after ${WARMUP} warm-up steps, random inputs, ${ROUNDS} interleaved round(s) (mean (min-max) over them); load average (1 min) ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}.

| Configuration (global batch 1000) | Mean step | Steps/s | Epoch (60 steps) | Sent per step and rank |
|---|---:|---:|---:|---:|
${rows.join('\n')}

Sent per step: payload bytes each rank hands to collectives (DDP's gradient buckets, TNT's sampled gradient, KFAC's
factors, sharded inverses), averaged over the timed steps. The model has ${params.toLocaleString('en-US')} parameters
(${(gradBytes / MiB).toFixed(1)} MiB of float32 gradient). TNT's statistics choice, per statistics step: all-reduce
the sampled gradient, ${tntStats ? (tntStats.gradient / MiB).toFixed(1) : '?'} MiB (what CurvatureSync does; exact), or the
factors, ${tntStats ? (tntStats.factors / MiB).toFixed(1) : '?'} MiB (and wrong: the factors are quadratic in the gradient).

Alpha-beta model of the gradient all-reduce per step (${(gradBytes / MiB).toFixed(1)} MiB, alpha = ${alpha * 1e6} us per message, beta = link bandwidth); TNT with T1 = 1 reduces a second gradient-sized buffer (the sampled gradient):

| Ranks | Network | Ring all-reduce (Gloo's default) | Halving-doubling | TNT (two reductions) |
|---:|---:|---:|---:|---:|
${model.join('\n')}
`;
process.stdout.write(text);
if (argv.includes('--write')) appendFileSync(join(here, 'distributed-results.md'), '\n' + text);
