#!/usr/bin/env node
/**
 * Data-parallel benchmark (after `npm run build:ts`): the paper's MNIST autoencoder (784-1000-500-250-30-250-500-
 * 1000-784, Bernoulli likelihood, global batch 1000) with SGD-m and TNT, on
 *   - 1 process x 2 intra-op threads, batch 1000, and
 *   - 2 ranks x 1 thread (DDP over Gloo on 127.0.0.1), batch 500 each;
 * plus TNT and KFAC with inverses replicated vs sharded over the 2 ranks (T2 = 5, to weigh the inverses).
 * Reports steps/s, time per epoch (60 steps: 60,000 images at batch 1000), bytes each rank hands to collectives
 * per step, and an alpha-beta model of the all-reduce cost at 8, 64 and 512 ranks on 10 and 100 Gb/s networks.
 *
 *   node bench/distributed.mjs [--steps 20] [--only 4,5] [--write]    (--write: bench/distributed-results.md)
 *
 * Inputs are random [0, 1) images: the timings do not depend on the pixels.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
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
  const W = ddpMode ? dist.getWorldSize() : 1;
  torch.manualSeed(0);
  const model = torch.models.autoencoder('mnist');
  const B = 1000 / W;
  const x = torch.rand([B, 784]);
  const lik = new torch.Bernoulli();
  const net = ddpMode ? await torch.nn.parallel.DistributedDataParallel.create(model) : model;
  const o = { lr: 0.01, statsEvery: 1, inverseEvery: T2 ?? 20 };
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

// ------------------------------------------------------------------ --netns R: 2 ranks across a veth pair
// Root only. Two network namespaces joined by a veth pair (as test/distributed-netns.test.ts), Adam and TNT
// (shard 'all') with 2 ranks, the link as is, then limited by tc (netem delay where the kernel has it; else a tbf rate
// limit, which is what this kernel allows), R interleaved rounds. Beside each measurement the alpha-beta prediction:
// the unlimited veth's time plus the bytes each rank puts on the link per step over the rate, plus the delay per
// message (2 (W - 1) messages per all-reduce).
if (argv.includes('--netns')) {
  const { spawnSync } = await import('node:child_process');
  const { loadavg } = await import('node:os');
  const R = Number(flag('netns', 2));
  const sh = (...c) => {
    const r = spawnSync(c[0], c.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${c.join(' ')}: ${r.stderr || r.error}`);
    return r.stdout;
  };
  const id = process.pid % 10000;
  const ns = { ns: [`tbA${id}`, `tbB${id}`], dev: [`tbvA${id}`, `tbvB${id}`], addr: '10.211.0.1' };
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
    // link settings: [label, qdisc args or null, rate in bytes/s (Infinity: none), delay s]
    const links = netemOk
      ? [
          ['veth, no limit', null, Infinity, 0],
          ['netem delay 20ms', ['netem', 'delay', '20ms'], Infinity, 0.02],
          ['netem 1 Gbit/s + 2ms', ['netem', 'delay', '2ms', 'rate', '1gbit'], 1e9 / 8, 0.002],
        ]
      : [
          ['veth, no limit', null, Infinity, 0],
          ['tbf 1 Gbit/s', ['tbf', 'rate', '1gbit', 'burst', '1mb', 'latency', '100ms'], 1e9 / 8, 0],
          ['tbf 200 Mbit/s', ['tbf', 'rate', '200mbit', 'burst', '256kb', 'latency', '200ms'], 200e6 / 8, 0],
        ];
    const setLink = (q) =>
      ns.ns.forEach((n, r) => {
        spawnSync('ip', ['netns', 'exec', n, 'tc', 'qdisc', 'del', 'dev', ns.dev[r], 'root']);
        if (q) sh('ip', 'netns', 'exec', n, 'tc', 'qdisc', 'add', 'dev', ns.dev[r], 'root', ...q);
      });
    const cfgs = {
      adam: { opt: 'adam', mode: 'ddp', netns: ns },
      tnt: { opt: 'tnt', mode: 'ddp', shard: 'all', T2: 20, netns: ns },
    };
    const res = {};
    const loads = [];
    for (let round = 0; round < R; round++)
      for (const [label, q] of links) {
        setLink(q);
        for (const [k, c] of Object.entries(cfgs)) {
          loads.push(loadavg()[0]);
          process.stderr.write(`round ${round + 1}/${R}: ${k} over ${label} ...`);
          const r = await run(c);
          process.stderr.write(` ${r.meanMs.toFixed(0)} ms\n`);
          (res[`${k}|${label}`] ??= []).push(r);
        }
      }
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rows = [];
    for (const k of Object.keys(cfgs)) {
      const base = mean(res[`${k}|${links[0][0]}`].map((r) => r.meanMs));
      for (const [label, , rate, delay] of links) {
        const rs = res[`${k}|${label}`];
        const ms = rs.map((r) => r.meanMs);
        // link bytes per rank and step with 2 ranks: a ring all-reduce of n sends n; TNT's reduce to the owners and
        // broadcast from them send about n more (the other rank's share of the sampled gradient, its own parameters)
        const params = rs[0].params * 4;
        const linkBytes = k === 'adam' ? params : 2 * params;
        const messages = k === 'adam' ? 2 : 4; // per step, 2 ranks: the all-reduce (2), TNT's reduce and broadcast (2)
        const predicted = base + (Number.isFinite(rate) ? (linkBytes / rate) * 1000 : 0) + messages * delay * 1000;
        rows.push(
          `| ${k === 'adam' ? 'Adam' : "TNT (T2=20), shard 'all'"} | ${label} | ${mean(ms).toFixed(0)} ms (${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)}) | ${predicted.toFixed(0)} ms | ${(mean(rs.map((r) => r.bytes)) / 2 ** 20).toFixed(1)} MiB |`,
        );
      }
    }
    const text = `<!-- Written by \`node bench/distributed.mjs --netns ${R}\` (root). -->
Two ranks in two network namespaces joined by a veth pair, measured ${new Date().toISOString()} on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores, shared); MNIST autoencoder, global batch 1000 (500 per rank, 1 thread each), ${STEPS} timed steps, ${R} interleaved rounds; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}. ${netemOk ? '' : 'This kernel has no netem (CONFIG_NET_SCH_NETEM is not set: `tc qdisc add ... netem` answers "Specified qdisc kind is unknown"), so the link is slowed with a tbf rate limit instead of a delay. '}Predicted: the unlimited veth's mean plus the link bytes per rank and step (Adam n, TNT about 2n, n = the float32 gradient) over the rate, plus the delay per message.

| Optimizer | Link | Step, mean (min-max) | Alpha-beta prediction | Handed to collectives per step |
|---|---|---:|---:|---:|
${rows.join('\n')}
`;
    process.stdout.write(text);
    if (argv.includes('--write')) {
      const { appendFileSync } = await import('node:fs');
      appendFileSync(join(here, 'distributed-results.md'), '\n' + text);
    }
  } finally {
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
  const dims = [784, 1000, 500, 250, 30, 250, 500, 1000, 784];
  const shapes = [];
  for (let i = 0; i + 1 < dims.length; i++) shapes.push([dims[i + 1], dims[i]], [dims[i + 1]]);
  const costs = shapes.map((sh) => {
    const numel = sh.reduce((a, d) => a * d, 1);
    return numel * sh.reduce((a, d) => a + d, 0) * (1 + 2) + sh.reduce((a, d) => a + d ** 3 / 3, 0) / 20;
  });
  const total = costs.reduce((a, b) => a + b, 0);
  const largestShare = (W) => {
    const load = new Array(W).fill(0);
    for (const c of [...costs].sort((a, b) => b - a)) {
      let best = 0;
      for (let r = 1; r < W; r++) if (load[r] < load[best]) best = r;
      load[best] += c;
    }
    return Math.max(...load) / total;
  };
  const nets = [
    ['10 Gb/s', 20e-6, 10e9 / 8],
    ['100 Gb/s', 20e-6, 100e9 / 8],
  ];
  const allreduce = (W, alpha, beta) => 2 * (W - 1) * alpha + ((2 * (W - 1)) / W) * (n / beta);
  const project = (W, alpha, beta) => {
    const ar = W > 1 ? allreduce(W, alpha, beta) * 1000 : 0;
    const adam = aAdam / W + ar;
    const extra = W > 1 ? (2 * (W - 1) * alpha + ((2 * (W - 1)) / W) * (n / beta)) * 1000 : 0;
    const tnt = aTnt / W + cTnt * largestShare(W) + ar + extra;
    return { adam: aAdam / adam, tnt: (aTnt + cTnt) / tnt };
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
    const { appendFileSync } = await import('node:fs');
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
];

// --only 4,5: run some configurations (indices into the list above), e.g. to repeat a comparison
const only = flag('only', null)?.split(',').map(Number);
const chosen = only ? configs.filter((_, i) => only.includes(i)) : configs;

const MiB = 1024 * 1024;
const rows = [];
let params = 0;
let tntStats = null;
for (const c of chosen) {
  process.stderr.write(`${c.name} ...\n`);
  const r = await run(c);
  params = r.params;
  if (c.opt === 'tnt' && r.stats) tntStats = r.stats;
  rows.push(
    `| ${c.name} | ${r.meanMs.toFixed(0)} ms | ${(1000 / r.meanMs).toFixed(2)} | ${((60 * r.meanMs) / 1000).toFixed(1)} s | ${c.mode === 'single' ? '—' : `${(r.bytes / MiB).toFixed(2)} MiB`} |`,
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
Measured ${new Date().toISOString().slice(0, 10)} on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores, shared with other jobs: expect noise), Node ${process.version}, ${STEPS} timed steps after ${WARMUP} warm-up steps, random inputs.

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
if (argv.includes('--write')) writeFileSync(join(here, 'distributed-results.md'), text);
