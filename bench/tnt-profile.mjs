#!/usr/bin/env node
/**
 * Where a TNT step's time goes, phase by phase, in process time (CPU seconds of this process; run it with one
 * thread: TENSORNORMAL_NUM_THREADS=1, which the default below sets), beside an SGD-m and an Adam step of the same
 * model and batch:
 *
 *   node bench/tnt-profile.mjs [ae|mlp] [steps] [--set key=value ...]
 *
 *   ae    the paper's MNIST autoencoder 784-1000-500-250-30-250-500-1000-784, batch 1000, Bernoulli
 *   mlp   a 784-512-512-10 classifier, batch 128, Categorical (the "small batches and small layers")
 *
 * Phases of a TNT step (each timed on its own, in the order the step takes them): forward; drawing y; the sampled
 * backward (autograd.grad of the sampled loss, graph retained); statistics (updateStatistics); the real backward;
 * the inverse refresh (updateInverses, every inverseEvery steps: reported amortised); the update (step()). With
 * `--set statsBatch=N` the sampled pass runs on the first N rows (opt.splitForward), and with `--set statsEvery=T`
 * the sampled phases run every T steps (reported amortised). Inputs are uniform random pixels (the cost does not
 * depend on them). Each phase is the mean over `steps` steps after 20 warm-up steps (the first-T2 rule).
 */
import { cpus } from 'node:os';
import { cpuMs, loadAverage, parseSetValue, tntWorkload } from './tnt-workload.mjs';

process.env.TENSORNORMAL_NUM_THREADS ??= '1';
const torch = await import('../dist/index.js');
const { optim, tidy, grad } = torch;

const args = process.argv.slice(2);
const which = args[0] && !args[0].startsWith('--') ? args.shift() : 'ae';
const steps = args[0] && !args[0].startsWith('--') ? Number(args.shift()) : 40;
const sets = {};
for (let i = 0; i < args.length; i++)
  if (args[i] === '--set') {
    const [k, v] = args[++i].split('=');
    sets[k] = parseSetValue(v);
  }

const cpu = cpuMs;
const { build, x, target, lik, hyper, init } = tntWorkload(
  torch,
  which,
  {
    ae: { lr: 1e-4, damping: 0.1, statsEvery: 1, inverseEvery: 20 },
    mlp: { lr: 1e-3, damping: 0.1, statsEvery: 1, inverseEvery: 20 },
  },
  sets,
);

function fresh() {
  torch.manualSeed(0);
  const m = build();
  m.loadStateDict(init.stateDict());
  m.train();
  return m;
}

/** Mean total step time (ms of process time) of a first-order optimizer. */
function firstOrder(make) {
  const model = fresh();
  const opt = make(model.parameters());
  const once = () =>
    tidy(() => {
      const out = model.call(x);
      lik.loss(out, target).backward();
      opt.step();
      opt.zeroGrad();
    });
  for (let i = 0; i < 5; i++) once();
  const t0 = cpu();
  for (let i = 0; i < steps; i++) once();
  const ms = (cpu() - t0) / steps;
  opt.dispose();
  model.dispose();
  return ms;
}

function tntPhases() {
  const model = fresh();
  const params = model.parameters();
  const opt = new optim.TNT(params, hyper);
  const acc = { forward: 0, draw: 0, sampledBackward: 0, statistics: 0, backward: 0, inverses: 0, update: 0 };
  const once = (timed) =>
    tidy(() => {
      const t = [cpu()];
      const due = opt.statisticsDue();
      const split = due && typeof opt.splitForward === 'function' && opt.statsBatch !== 1;
      const fw = (v) => model.call(v);
      const out = split ? opt.splitForward(fw, x) : fw(x);
      t.push(cpu());
      if (due) {
        const sub = split ? opt.statisticsOutput(out) : out;
        const y = lik.sample(sub);
        t.push(cpu());
        const g = grad(lik.loss(sub, y), params, { retainGraph: true, allowUnused: true });
        t.push(cpu());
        opt.updateStatistics(g, { scale: sub.shape[0] / out.shape[0] });
        t.push(cpu());
      } else t.push(t[1], t[1], t[1]);
      lik.loss(out, target).backward();
      t.push(cpu());
      const inv = opt.inversesDue();
      if (inv) opt.updateInverses();
      t.push(cpu());
      opt.inversesRefreshed = inv; // the step keeps the refresh just made
      opt.step();
      opt.inversesRefreshed = false;
      opt.zeroGrad();
      t.push(cpu());
      if (timed) Object.keys(acc).forEach((k, i) => (acc[k] += t[i + 1] - t[i]));
    });
  for (let i = 0; i < 20; i++) once(false);
  for (let i = 0; i < steps; i++) once(true);
  opt.dispose();
  model.dispose();
  for (const k of Object.keys(acc)) acc[k] /= steps;
  return acc;
}

const load = loadAverage;
console.log(
  `${which === 'ae' ? 'autoencoder 784-1000-500-250-30-250-500-1000-784, batch 1000' : 'MLP 784-512-512-10, batch 128'}; ` +
    `${cpus()[0]?.model?.trim()}; threads ${torch.getNumThreads?.() ?? process.env.TENSORNORMAL_NUM_THREADS}; ` +
    `TNT ${JSON.stringify(hyper)}; ${steps} steps; ${load()}`,
);
const sgd = firstOrder((p) => new optim.SGD(p, { lr: 1e-3, momentum: 0.9 }));
const adam = firstOrder((p) => new optim.Adam(p, { lr: 1e-4 }));
const tnt = tntPhases();
const total = Object.values(tnt).reduce((a, b) => a + b, 0);
for (const [k, v] of Object.entries(tnt)) console.log(`  ${k.padEnd(16)} ${v.toFixed(1).padStart(7)} ms`);
console.log(`  ${'TNT step'.padEnd(16)} ${total.toFixed(1).padStart(7)} ms`);
console.log(`  ${'SGD-m step'.padEnd(16)} ${sgd.toFixed(1).padStart(7)} ms   TNT/SGD-m ${(total / sgd).toFixed(2)}x`);
console.log(`  ${'Adam step'.padEnd(16)} ${adam.toFixed(1).padStart(7)} ms   TNT/Adam  ${(total / adam).toFixed(2)}x`);
console.log(`  ${load()}`);
init.dispose();
