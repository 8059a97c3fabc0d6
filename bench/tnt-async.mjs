#!/usr/bin/env node
/**
 * TNT's inverses off the critical path (`asyncInverses`, docs/tnt.md): the step-time distribution of a TNT run with
 * the refresh inline (the default) and on the background thread, interleaved repetitions, in wall time and in
 * process time (which counts the background thread's CPU too):
 *
 *   node bench/tnt-async.mjs [ae|mlp] [--reps 3] [--steps 40] [--set key=value ...] [--modes false,true,1]
 *
 *   ae    the paper's MNIST autoencoder 784-1000-500-250-30-250-500-1000-784, batch 1000, Bernoulli
 *   mlp   a 784-512-512-10 classifier, batch 128, Categorical
 *
 * Each repetition runs every mode once (the order rotating) from the same initial weights: 5 warm-up steps, then
 * `steps` timed training steps (forward, sampled backward, backward, step). TNT: inverseEvery 10, earlyRefresh false
 * (so that the timed steps hold steps / 10 refreshes, none from the first-T2 rule), one intra-op thread
 * (TENSORNORMAL_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1 unless set). Per mode: median, 90th percentile and maximum
 * wall step time, the mean wall time of the steps where a refresh was due and of the others, and process time per
 * step; each as the median over repetitions with the min-max.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { cpuMs, loadAverage, parseSetValue, tntWorkload } from './tnt-workload.mjs';

process.env.TENSORNORMAL_NUM_THREADS ??= '1';
process.env.OPENBLAS_NUM_THREADS ??= '1';
const torch = await import('../dist/index.js');
const { optim, tidy } = torch;

const args = process.argv.slice(2);
const which = args[0] && !args[0].startsWith('--') ? args.shift() : 'ae';
let reps = 3,
  steps = 40,
  modes = [false, true];
const sets = {};
const parse = parseSetValue;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--set') {
    const [k, v] = args[++i].split('=');
    sets[k] = parse(v);
  } else if (args[i] === '--reps') reps = Number(args[++i]);
  else if (args[i] === '--steps') steps = Number(args[++i]);
  else if (args[i] === '--modes') modes = args[++i].split(',').map(parse);
  else throw new Error(`unknown argument ${args[i]}`);
}

const cpu = cpuMs;
const { build, x, target, lik, hyper, init } = tntWorkload(
  torch,
  which,
  {
    ae: { lr: 1e-4, damping: 0.1, inverseEvery: 10, earlyRefresh: false },
    mlp: { lr: 1e-3, damping: 0.1, inverseEvery: 10, earlyRefresh: false },
  },
  sets,
);

function run(mode) {
  torch.manualSeed(0);
  const model = build();
  model.loadStateDict(init.stateDict());
  model.train();
  const opt = new optim.TNT(model.parameters(), { ...hyper, asyncInverses: mode });
  const once = () =>
    tidy(() => {
      const out = model.call(x);
      opt.sampledBackward(out, lik);
      lik.loss(out, target).backward();
      opt.step();
      opt.zeroGrad();
    });
  for (let i = 0; i < 5; i++) once();
  const wall = [],
    refresh = [];
  const c0 = cpu();
  const w0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const due = opt.inversesDue();
    const t0 = performance.now();
    once();
    wall.push(performance.now() - t0);
    refresh.push(due);
  }
  const total = performance.now() - w0;
  const proc = (cpu() - c0) / steps;
  opt.finishInverses();
  opt.dispose();
  model.dispose();
  const sorted = [...wall].sort((a, b) => a - b);
  const mean = (a) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : NaN);
  return {
    median: sorted[Math.floor(sorted.length / 2)],
    p90: sorted[Math.floor(sorted.length * 0.9)],
    max: sorted[sorted.length - 1],
    refreshSteps: mean(wall.filter((_, i) => refresh[i])),
    otherSteps: mean(wall.filter((_, i) => !refresh[i])),
    wallPerStep: total / steps,
    processPerStep: proc,
  };
}

const load = loadAverage;
console.log(
  `${which === 'ae' ? 'autoencoder 784-1000-500-250-30-250-500-1000-784, batch 1000' : 'MLP 784-512-512-10, batch 128'}; ` +
    `${cpus()[0]?.model?.trim()}, ${cpus().length} cores; TNT ${JSON.stringify(hyper)}; ${steps} timed steps, ` +
    `${reps} interleaved repetitions; ${load()}`,
);
const results = new Map(modes.map((m) => [m, []]));
for (let r = 0; r < reps; r++)
  for (let k = 0; k < modes.length; k++) {
    const mode = modes[(k + r) % modes.length];
    const res = run(mode);
    results.get(mode).push(res);
    console.error(
      `rep ${r + 1} asyncInverses ${mode}: ${JSON.stringify(res, (_, v) => (typeof v === 'number' ? +v.toFixed(1) : v))}`,
    );
  }
const keys = ['median', 'p90', 'max', 'refreshSteps', 'otherSteps', 'wallPerStep', 'processPerStep'];
const stat = (vs) => {
  const s = [...vs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)].toFixed(0)} (${s[0].toFixed(0)}-${s[s.length - 1].toFixed(0)})`;
};
console.log(`\n| ms per step | ${modes.map((m) => `asyncInverses: ${m}`).join(' | ')} |`);
console.log(`|---|${modes.map(() => '---:').join('|')}|`);
const label = {
  median: 'median wall step',
  p90: '90th percentile wall step',
  max: 'max wall step',
  refreshSteps: 'steps where a refresh is due (wall, mean)',
  otherSteps: 'other steps (wall, mean)',
  wallPerStep: 'wall time per step',
  processPerStep: 'process time per step',
};
for (const k of keys)
  console.log(`| ${label[k]} | ${modes.map((m) => stat(results.get(m).map((r) => r[k]))).join(' | ')} |`);
console.log(`\n${load()}`);
init.dispose();
