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
  const { opt: optName, mode, inverses, T2 } = JSON.parse(process.env.TN_BENCH_RANK);
  torch.setNumThreads(mode === 'single' ? 2 : 1);
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
      : optName === 'tnt'
        ? new torch.optim.TNT(model.parameters(), o)
        : new torch.optim.KFAC(model, o);
  const curv = optName !== 'sgd';
  const sync = ddpMode && curv ? new dist.CurvatureSync(opt, { inverses }) : null;
  const times = [];
  let bytes0 = 0;
  for (let s = 0; s < WARMUP + STEPS; s++) {
    if (s === WARMUP) bytes0 = ddpMode ? dist.bytesCommunicated() : 0;
    const t0 = performance.now();
    opt.zeroGrad();
    const out = net.call(x);
    if (curv) {
      if (sync) await sync.sampledBackward(out, lik);
      else opt.sampledBackward(out, lik);
    }
    torch.tidy(() => lik.loss(out, x).backward());
    out.dispose();
    if (ddpMode) await net.synchronize();
    if (sync) await sync.step();
    else opt.step();
    if (s >= WARMUP) times.push(performance.now() - t0);
  }
  const bytes = ddpMode ? (dist.bytesCommunicated() - bytes0) / STEPS : 0;
  const stats = sync ? sync.statisticsBytes() : null;
  const params = model.parameters().reduce((a, p) => a + p.numel(), 0);
  if (!ddpMode || dist.getRank() === 0)
    process.stdout.write(
      JSON.stringify({ meanMs: times.reduce((a, b) => a + b, 0) / times.length, bytes, stats, params }) + '\n',
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
  const W = cfg.mode === 'single' ? 1 : 2;
  const port = await freePort();
  const outs = await Promise.all(
    Array.from(
      { length: W },
      (_, rank) =>
        new Promise((resolve, reject) => {
          const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
            env: {
              ...process.env,
              TN_BENCH_RANK: JSON.stringify(cfg),
              RANK: String(rank),
              WORLD_SIZE: String(W),
              MASTER_ADDR: '127.0.0.1',
              MASTER_PORT: String(port),
              OMP_NUM_THREADS: W === 1 ? '2' : '1',
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
