/**
 * The scheduling mechanism under bench/service.mjs, without HTTP, a model or a load generator: how late a thread
 * that sleeps 1 ms wakes up (then works 0.3 ms, as a request would) while a train.inWorker job spins on the same
 * core (`taskset -c 0`, so that they must share it). Each variant is a fresh process; variants are interleaved.
 *   none        nothing trains
 *   nice10      SCHED_OTHER at nice 10 (priority 'train', nice 10: the default before issue 23)
 *   nice19      SCHED_OTHER at nice 19 with the kernel's time slice, no pauses
 *   short       nice 19 with a 0.1 ms slice (scheduling 'short'), no pauses: the default's policy alone
 *   idle        SCHED_IDLE at nice 10, no pauses (the policy of 'serve' before 2026-12-08, alone)
 *   serve       priority 'serve' (the default): nice 19, 0.1 ms slice, and the job pauses while requests come
 *   serve-idle  priority 'serve' as before 2026-12-08: SCHED_IDLE at nice 10, and the pauses
 *   0.25        a training budget: nice 0, pauses down to a quarter of the time while requests come
 *   0.1n10      a training budget of 0.1 at nice 10
 *   train       priority 'train': nice 0, no pauses
 * (A variant without pauses is a 'serve' job the server never tells it is serving.)
 *
 *   npm run build:ts && node bench/service-wakeup.mjs [--repeat 3]
 *     [--variants none,nice10,nice19,short,idle,serve,serve-idle,0.25,train]
 * Linux only (taskset). Prints the oversleep's p50 / p90 / p99 / max per variant (median over the repetitions).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';

const HERE = fileURLToPath(import.meta.url);
const quantile = (v, p) => v[Math.min(v.length - 1, Math.ceil(p * v.length) - 1)];

async function one(variant) {
  const torch = await import('../dist/index.js');
  const options =
    {
      nice10: { priority: 'train', nice: 10 },
      nice19: { priority: 'serve', scheduling: 'normal' },
      short: { priority: 'serve' },
      idle: { priority: 'serve', scheduling: 'idle', nice: 10 },
      serve: { priority: 'serve' },
      'serve-idle': { priority: 'serve', scheduling: 'idle', nice: 10 },
      train: { priority: 'train' },
    }[variant] ??
    (variant.includes('n') // 0.1n10: a training budget of 0.1 at nice 10
      ? { priority: Number(variant.split('n')[0]), nice: Number(variant.split('n')[1]) }
      : { priority: Number(variant) });
  const trainer =
    variant === 'none'
      ? null
      : torch.train.inWorker(new URL('./service-spin-job.mjs', import.meta.url), { ...options, workerData: {} });
  const rates = [];
  trainer?.on('throughput', (e) => rates.push(e.stepsPerSecond));
  await new Promise((r) => setTimeout(r, 300));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const late = [];
  for (let i = 0; i < 1500; i++) {
    if (trainer && !['idle', 'nice19', 'short'].includes(variant)) trainer.serving();
    const t0 = performance.now();
    Atomics.wait(cell, 0, 0, 1);
    late.push(performance.now() - t0 - 1);
    const until = performance.now() + 0.3;
    while (performance.now() < until);
  }
  if (trainer) await trainer.cancel();
  late.sort((a, b) => a - b);
  const rate = rates.length > 1 ? rates.slice(1).reduce((a, b) => a + b, 0) / (rates.length - 1) : 0;
  process.stdout.write(JSON.stringify([...[0.5, 0.9, 0.99, 1].map((p) => quantile(late, p)), rate]) + '\n');
  process.exit(0);
}

function main() {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const variants = arg('variants', 'none,nice10,nice19,short,idle,serve,serve-idle,0.25,train').split(',');
  const repeat = Number(arg('repeat', 3));
  const runs = new Map(variants.map((v) => [v, []]));
  const loads = [loadavg()[0]];
  for (let k = 0; k < repeat; k++)
    for (const v of variants) {
      const out = execFileSync('taskset', ['-c', '0', process.execPath, HERE, 'one', v], { encoding: 'utf8' });
      runs.get(v).push(JSON.parse(out.trim().split('\n').at(-1)));
      loads.push(loadavg()[0]);
    }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(
    `wake-up delay of a thread sleeping 1 ms beside a spinning job on one core; median of ${repeat} (range); load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}; ${new Date().toISOString().slice(0, 16)}Z\n`,
  );
  console.log('| Job | p50 | p90 | p99 | max | job steps/s |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const rs = runs.get(v);
    const cell = (i) => {
      const xs = rs.map((r) => r[i]);
      return `${median(xs).toFixed(2)} ms${xs.length > 1 ? ` (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})` : ''}`;
    };
    console.log(
      `| ${v} | ${cell(0)} | ${cell(1)} | ${cell(2)} | ${cell(3)} | ${median(rs.map((r) => r[4])).toFixed(1)} |`,
    );
  }
}

if (process.argv[2] === 'one') await one(process.argv[3]);
else main();
