/**
 * The Node side of the benchmarks: a long-lived worker driven by bench/run.mjs, speaking the same line protocol as
 * bench/python/worker.py (one JSON request per stdin line, replies on stdout lines starting with "@@bench ").
 * Started with --expose-gc so that each run begins from a collected heap.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';

// TENSORNORMAL_BENCH_CLOCK=process (bench/run.mjs --clock process): process time (CPU ms of this process) instead of
// wall time, for a machine loaded by other jobs (run with one thread: OpenBLAS's helpers would count too).
const clock =
  process.env.TENSORNORMAL_BENCH_CLOCK === 'process'
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      }
    : () => performance.now();

function reply(obj) {
  process.stdout.write(`@@bench ${JSON.stringify(obj)}\n`);
}

let torch, Problem, Unavailable;
try {
  torch = await import('../../dist/index.js');
  ({ Problem } = await import('./models.mjs'));
  ({ Unavailable } = await import('./optimizers.mjs'));
} catch (err) {
  const hint = /Cannot find module .*dist/.test(String(err?.message)) ? ' (run `npm run build:ts` first)' : '';
  reply({
    ok: false,
    fatal: `the library could not be loaded${hint}: ${String(err?.message ?? err)
      .split('\n')
      .slice(0, 4)
      .join(' | ')}`,
  });
  process.exit(3);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Tight loops of one small op, timed as a whole (per-op overhead). */
class Loop {
  constructor(op) {
    if (op === 'add1') {
      const a = torch.tensor([1]).keep(),
        b = torch.tensor([2]).keep();
      this.owned = [a, b];
      this.body = (n) => {
        for (let i = 0; i < n; i++) a.add(b).dispose();
      };
    } else if (op === 'chain10') {
      const x = torch.rand([16]).keep();
      this.owned = [x];
      this.body = (n) => {
        for (let i = 0; i < n; i++) {
          torch.tidy(() => {
            x.mul(2).add(1).relu().exp().neg().sigmoid().mul(3).sub(1).tanh().abs();
          });
        }
      };
    } else if (op === 'matmul512') {
      const a = torch.rand([512, 512]).keep(),
        b = torch.rand([512, 512]).keep();
      this.owned = [a, b];
      this.body = (n) => {
        for (let i = 0; i < n; i++) a.matmul(b).dispose();
      };
    } else throw new Error(`unknown op ${op}`);
    this.impl = 'Tensor methods';
  }
  run(warmup, count) {
    this.body(warmup);
    const t0 = clock();
    this.body(count);
    return { sample: (clock() - t0) / 1000 / count };
  }
  stateBytes() {
    return 0;
  }
  dispose() {
    for (const t of this.owned) t.dispose();
  }
}

class Train {
  constructor(c, problem) {
    this.case = c;
    this.problem = problem;
    this.impl = problem.impl;
  }
  run(warmup, count) {
    for (let i = 0; i < warmup; i++) this.problem.step();
    const times = [],
      losses = [];
    const tAll = clock();
    for (let i = 0; i < count; i++) {
      const t0 = clock();
      losses.push(this.problem.step());
      times.push((clock() - t0) / 1000);
    }
    const total = (clock() - tAll) / 1000;
    return { sample: this.case.amortised ? total / count : median(times), times, losses };
  }
  stateBytes() {
    return this.problem.stateBytes();
  }
  dispose() {
    this.problem.dispose();
  }
}

let bench = null;
const rl = createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  try {
    switch (req.cmd) {
      case 'hello':
        torch.setNumThreads(req.threads);
        reply({
          ok: true,
          torch: torch.versions().torch,
          blasCore: torch.versions().blasCore ?? null,
          threads: torch.getNumThreads(),
          node: process.version,
        });
        break;
      case 'setup':
        torch.manualSeed(req.seed ?? 0);
        bench =
          req.case.kind === 'loop'
            ? new Loop(req.case.op)
            : new Train(req.case, await new Problem(req.case, req.fixtures).init());
        torch.manualSeed(req.seed ?? 0);
        reply({ ok: true, impl: bench.impl, liveTensors: torch.liveTensors() });
        break;
      case 'run':
        globalThis.gc?.();
        reply({ ok: true, ...bench.run(req.warmup, req.count), liveTensors: torch.liveTensors() });
        break;
      case 'check':
        reply({ ok: true, losses: Array.from({ length: req.steps }, () => bench.problem.step()) });
        break;
      case 'stats':
        // maxRSS is in kilobytes.
        reply({
          ok: true,
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
          stateBytes: bench?.stateBytes() ?? 0,
          liveTensors: torch.liveTensors(),
        });
        break;
      case 'quit': {
        bench?.dispose();
        bench = null;
        globalThis.gc?.();
        reply({ ok: true, liveTensors: torch.liveTensors() });
        process.exit(0);
        break;
      }
      default:
        reply({ ok: false, error: `unknown command ${JSON.stringify(req.cmd)}` });
    }
  } catch (err) {
    if (err instanceof Unavailable) reply({ ok: false, skip: err.message });
    else
      reply({ ok: false, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}`, trace: String(err?.stack ?? '') });
  }
}
