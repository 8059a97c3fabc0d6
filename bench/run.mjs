#!/usr/bin/env node
/**
 * Benchmarks against PyTorch, side by side: `npm run bench` (after `npm run build:ts`).
 *
 * Every case runs in a Node worker (bench/node/worker.mjs, this library) and in a Python worker
 * (bench/python/worker.py, Debian's python3-torch: the same libtorch), both fresh for each case, with the same
 * number of intra-op threads. The runner alternates a Node run and a Python run (who goes first alternates too)
 * `reps` times, and reports per case the median of each side with its spread (min-max over the runs), the
 * Node/PyTorch ratio of the medians with the spread of the per-repetition ratios (each Node run over the Python run
 * beside it), each process's peak RSS and the bytes held in optimizer state. A ratio whose spread includes 1 is
 * parity. The `tnt-sgd-ratio` case runs SGD-m, TNT as the paper and TNT's cheaper step (docs/tnt.md) interleaved
 * on the Node side and reports TNT's step over SGD-m's, with the same spread. The markdown table goes to stdout and to bench/results.md (which the README
 * embeds) when every case ran; `--cases` runs leave results.md alone unless `--write` is given.
 *
 *   npm run bench                              all cases
 *   npm run bench -- --cases add-1,ae-sgd      some cases (names, or the groups `ops` and `train`)
 *   npm run bench -- --reps 5 --steps 10       repetitions per side; timed steps per training run
 *   npm run bench -- --warmup 2                warm-up steps of a training case's first run (a quick smoke run)
 *   npm run bench -- --threads 1               intra-op threads on both sides (default 2)
 *   npm run bench -- --data random             random [0, 1) inputs instead of MNIST digits
 *   npm run bench -- --json                    machine-readable results on stdout (progress on stderr)
 *   npm run bench -- --check                   same weights and data on both sides; the first 3 losses must agree
 *   npm run bench -- --check --cases ae-tnt    some checks (ae-sgd, ae-adam, ae-tnt, cnn-sgd, cnn-tnt; or ae, cnn)
 *   npm run bench -- --clock process           process time (CPU time of each worker) instead of wall time: for a
 *                                              machine loaded by other jobs; with --threads 1 and OPENBLAS_NUM_THREADS=1
 *   npm run bench -- --python-env default      Python without tensornormal's native-library environment (below)
 *
 * The Python interpreter is /usr/bin/python3 unless --python or TENSORNORMAL_BENCH_PYTHON says otherwise.
 * Both sides run with the native-library environment tensornormal chooses (lib/runtime-env.ts); see below.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCpuinfo, runtimeEnvironment } from '../dist/runtime-env.js';
import { CASES, CHECKS } from './cases.mjs';
import { defaultDataSource, makeFixtures } from './fixtures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// Both sides run with the environment tensornormal gives the native libraries at load (lib/runtime-env.ts:
// OpenBLAS kernels for this CPU, threads that sleep when idle), set here so that the Python worker inherits it too
// and the ratios measure the libraries' own work. TENSORNORMAL_RUNTIME_ENV=off npm run bench measures both sides
// with the libraries' defaults; --python-env default gives only the Python side its defaults (out of the box).
const runtimeEnv = runtimeEnvironment(process.env, readCpuinfo());
Object.assign(process.env, runtimeEnv);

// ------------------------------------------------------------------------------------------------ arguments
const USAGE = `usage: npm run bench -- [--cases a,b] [--reps N] [--steps N] [--warmup N] [--threads N] [--data mnist|random]
                          [--json] [--check] [--write | --no-write] [--python PATH] [--python-env same|default] [--cap SECONDS]
                          [--clock wall|process]
cases: ${CASES.map((c) => c.name).join(', ')} (groups: ops, train)`;

function parseArgs(argv) {
  const o = {
    json: false,
    check: false,
    threads: 2,
    pythonEnv: 'same',
    reps: null,
    steps: null,
    warmup: null,
    cases: null,
    data: null,
    write: null,
    cap: null,
    python: process.env.TENSORNORMAL_BENCH_PYTHON || '/usr/bin/python3',
    clock: 'wall',
  };
  const value = (i, name) => {
    if (i + 1 >= argv.length) fail(`${name} needs a value`);
    return argv[i + 1];
  };
  const positive = (v, name) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      fail(`Expected a positive integer for ${name} but received ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--check') o.check = true;
    else if (a === '--write') o.write = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--cases')
      o.cases = value(i++, a)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else if (a === '--reps') o.reps = positive(value(i++, a), a);
    else if (a === '--steps') o.steps = positive(value(i++, a), a);
    else if (a === '--warmup') o.warmup = positive(value(i++, a), a);
    else if (a === '--threads') o.threads = positive(value(i++, a), a);
    else if (a === '--cap') o.cap = positive(value(i++, a), a);
    else if (a === '--python') o.python = value(i++, a);
    else if (a === '--python-env') {
      o.pythonEnv = value(i++, a);
      if (!['same', 'default'].includes(o.pythonEnv))
        fail(`Expected 'same' or 'default' for --python-env but received ${JSON.stringify(o.pythonEnv)}`);
    } else if (a === '--clock') {
      o.clock = value(i++, a);
      if (!['wall', 'process'].includes(o.clock))
        fail(`Expected 'wall' or 'process' for --clock but received ${JSON.stringify(o.clock)}`);
    } else if (a === '--data') {
      o.data = value(i++, a);
      if (!['mnist', 'random'].includes(o.data))
        fail(`Expected 'mnist' or 'random' for --data but received ${JSON.stringify(o.data)}`);
    } else fail(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
  }
  return o;
}

function fail(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

function selectCases(names) {
  if (names === null) return CASES;
  const out = [];
  for (const n of names) {
    const found = n === 'ops' || n === 'train' ? CASES.filter((c) => c.group === n) : CASES.filter((c) => c.name === n);
    if (found.length === 0)
      fail(`unknown case ${JSON.stringify(n)}; cases: ${CASES.map((c) => c.name).join(', ')} (groups: ops, train)`);
    for (const c of found) if (!out.includes(c)) out.push(c);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ workers
/** One worker process and its request/reply line protocol. */
class Side {
  constructor(label, command, args, env = process.env) {
    this.label = label;
    this.command = command;
    this.stderr = '';
    this.fatal = null;
    this.pending = null;
    this.exited = null;
    this.child = spawn(command, args, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.on('error', (err) =>
      this.onExit(err.code === 'ENOENT' ? `${command} was not found` : String(err.message)),
    );
    this.child.on('exit', (code, signal) => this.onExit(signal ? `killed by ${signal}` : `exited with code ${code}`));
    this.child.stdin.on('error', () => {}); // a dead worker's closed pipe is reported by 'exit'
    let buf = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('@@bench ')) this.onReply(JSON.parse(line.slice(8)));
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
  }

  onReply(msg) {
    if (msg.fatal) this.fatal = msg.fatal; // may come before any request (e.g. Python without torch exits at once)
    const p = this.pending;
    this.pending = null;
    if (p === null) return;
    clearTimeout(p.timer);
    if (msg.fatal) p.reject(Object.assign(new Error(msg.fatal), { fatal: true }));
    else p.resolve(msg);
  }

  onExit(why) {
    if (this.exited !== null) return;
    this.exited = why;
    const p = this.pending;
    this.pending = null;
    if (p !== null) {
      clearTimeout(p.timer);
      const tail = this.stderr.trim().split('\n').slice(-6).join('\n    ');
      p.reject(
        Object.assign(new Error(`the ${this.label} worker ${why}${tail ? `:\n    ${tail}` : ''}`), { crashed: true }),
      );
    }
  }

  /** Sends a request; resolves with the reply, rejects on a crash or after `timeoutS` (and kills the worker). */
  request(obj, timeoutS) {
    if (this.exited !== null)
      return Promise.reject(new Error(this.fatal ?? `the ${this.label} worker is not running (${this.exited})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending = null;
          this.kill();
          reject(
            Object.assign(new Error(`timed out after ${Math.round(timeoutS)} s (the case's time cap)`), {
              timedOut: true,
            }),
          );
        },
        Math.max(1, timeoutS) * 1000,
      );
      this.pending = { resolve, reject, timer };
      this.child.stdin.write(`${JSON.stringify(obj)}\n`);
    });
  }

  kill() {
    if (this.exited === null) this.child.kill('SIGKILL');
  }

  async quit() {
    if (this.exited !== null) return null;
    try {
      return await this.request({ cmd: 'quit' }, 20);
    } catch {
      this.kill();
      return null;
    }
  }
}

const nodeSide = () => new Side('Node', process.execPath, ['--expose-gc', join(here, 'node', 'worker.mjs')]);
const pythonSide = (python, pythonEnv) =>
  new Side(
    'Python',
    python,
    ['-u', '-B', join(here, 'python', 'worker.py')],
    pythonEnv === 'default'
      ? Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in runtimeEnv)))
      : process.env,
  );

// ------------------------------------------------------------------------------------------------ helpers
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const SCALE = { us: [1e6, 'µs'], ms: [1e3, 'ms'], s: [1, 's'] };
function fmtTime(sec, unit) {
  if (sec === null || sec === undefined) return '—';
  const [k, suffix] = SCALE[unit];
  const v = sec * k;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${suffix}`;
}
function fmtBytes(b) {
  if (b === null || b === undefined) return '—';
  if (b === 0) return '0';
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(2)} GiB`;
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}
const fmtRatio = (r) => (r === null || r === undefined ? '—' : `${r.toFixed(2)}x`);
const fmtRange = (r) => (r ? `${r[0].toFixed(2)}-${r[1].toFixed(2)}x` : '—');

let log = (msg) => console.log(msg);

/** Starts both workers and says hello; a side that cannot start is reported, not fatal. */
async function startPair(opts, python) {
  const sides = { node: nodeSide(), python: python.unavailable ? null : pythonSide(opts.python, opts.pythonEnv) };
  const info = {};
  for (const key of ['node', 'python']) {
    const side = sides[key];
    if (side === null) continue;
    try {
      info[key] = await side.request({ cmd: 'hello', threads: opts.threads }, 120);
    } catch (err) {
      side.kill();
      sides[key] = null;
      info[key] = { error: err.message };
      if (key === 'python') python.unavailable = `Python side unavailable: ${err.message}`;
      else throw new Error(`Node side unavailable: ${err.message}`, { cause: err });
    }
  }
  return { sides, info };
}

// ------------------------------------------------------------------------------------------------ one case
async function runCase(c, opts, fixtures, python) {
  const capS = opts.cap ?? c.capS;
  const deadline = Date.now() + capS * 1000;
  const left = () => (deadline - Date.now()) / 1000;
  const reps = opts.reps ?? c.reps;
  const count = c.kind === 'train' ? (opts.steps ?? c.steps) : c.iters;
  const result = {
    name: c.name,
    title: c.title,
    unit: c.unit,
    group: c.group,
    reps,
    count,
    node: { runs: [] },
    python: { runs: [] },
  };
  const { sides, info } = await startPair(opts, python);
  result.versions = { node: info.node, python: info.python };
  if (sides.python === null) result.python.error = python.unavailable;
  if (c.nodeOnly && sides.python !== null) {
    await sides.python.quit();
    sides.python = null;
    result.python.skip = 'Node only (options the Python TNT does not have)';
  }

  for (const key of ['node', 'python']) {
    const side = sides[key];
    if (side === null) continue;
    try {
      const r = await side.request({ cmd: 'setup', case: c, fixtures: fixtures?.paths[c.model], seed: 0 }, left());
      if (r.ok) result[key].impl = r.impl;
      else {
        result[key][r.skip ? 'skip' : 'error'] = r.skip ?? r.error;
        if (r.trace && process.env.BENCH_DEBUG) console.error(r.trace);
        await side.quit();
        sides[key] = null;
      }
    } catch (err) {
      result[key].error = err.message;
      sides[key] = null;
    }
  }

  for (let rep = 0; rep < reps; rep++) {
    // Only the first run warms up fully (TNT: the first T2 steps); later runs continue the same training.
    const first = c.kind === 'train' ? (opts.warmup ?? c.warmup) : c.warmup;
    const warmup = rep === 0 ? first : Math.min(first, c.kind === 'train' ? 3 : first);
    const order = rep % 2 === 0 ? ['node', 'python'] : ['python', 'node'];
    for (const key of order) {
      const side = sides[key];
      if (side === null) continue;
      if (left() <= 0) {
        result[key].capped = `stopped at the ${capS} s cap after ${result[key].runs.length} of ${reps} runs`;
        continue;
      }
      try {
        const r = await side.request({ cmd: 'run', warmup, count }, left());
        if (!r.ok) throw new Error(r.error);
        result[key].runs.push(r.sample);
        if (r.losses) result[key].lastLoss = r.losses[r.losses.length - 1];
        if (key === 'node' && r.liveTensors !== undefined) {
          if (result.node.liveAfterRun !== undefined && r.liveTensors > result.node.liveAfterRun)
            result.node.leak = `live tensors grew from ${result.node.liveAfterRun} to ${r.liveTensors} between runs`;
          result.node.liveAfterRun = r.liveTensors;
        }
      } catch (err) {
        result[key].error = err.message;
        if (err.timedOut) result[key].capped = err.message;
        side.kill();
        sides[key] = null;
      }
    }
  }

  for (const key of ['node', 'python']) {
    const side = sides[key];
    if (side === null) continue;
    try {
      const s = await side.request({ cmd: 'stats' }, Math.max(left(), 20));
      result[key].peakRssBytes = s.peakRssBytes;
      result[key].stateBytes = s.stateBytes;
    } catch (err) {
      result[key].error ??= err.message;
    }
    const bye = await side.quit();
    if (key === 'node' && bye?.liveTensors)
      result.node.leak = `${bye.liveTensors} tensors still live after disposing everything`;
  }

  for (const key of ['node', 'python']) Object.assign(result[key], spreadOf(result[key].runs));
  result.ratio = result.node.median && result.python.median ? result.node.median / result.python.median : null;
  const pairs = result.node.runs
    .slice(0, result.python.runs.length)
    .map((v, i) => v / result.python.runs[i])
    .filter(Number.isFinite);
  result.ratioRange = pairs.length > 0 ? [Math.min(...pairs), Math.max(...pairs)] : null;
  return result;
}

/** Median and min-max of a side's samples. */
function spreadOf(runs) {
  return {
    median: median(runs),
    min: runs.length ? Math.min(...runs) : null,
    max: runs.length ? Math.max(...runs) : null,
  };
}

// ------------------------------------------------------------------------------------------------ ratio cases
/**
 * Node alone: each member case in its own worker, set up once, then `reps` rounds in which every member runs once
 * (the order rotates), so that the members see the same load; per member the median sample, and per member after
 * the first the ratio of medians to the first's and the min-max of the per-round ratios.
 */
async function runRatio(c, opts, fixtures) {
  const capS = opts.cap ?? c.capS;
  const deadline = Date.now() + capS * 1000;
  const left = () => (deadline - Date.now()) / 1000;
  const reps = opts.reps ?? c.reps;
  const members = c.members.map((n) => CASES.find((k) => k.name === n));
  const result = { name: c.name, title: c.title, unit: c.unit, group: c.group, kind: 'ratio', reps, members: [] };
  const sides = [];
  for (const m of members) {
    const side = nodeSide();
    const r = { name: m.name, title: m.title, runs: [], error: null };
    result.members.push(r);
    sides.push(side);
    try {
      const hello = await side.request({ cmd: 'hello', threads: opts.threads }, 120);
      result.versions ??= { node: hello };
      const s = await side.request({ cmd: 'setup', case: m, fixtures: fixtures?.paths[m.model], seed: 0 }, left());
      if (!s.ok) throw new Error(s.skip ?? s.error);
    } catch (err) {
      r.error = err.message;
      side.kill();
    }
  }
  for (let rep = 0; rep < reps && left() > 0; rep++) {
    for (let j = 0; j < members.length; j++) {
      const k = (j + rep) % members.length;
      const m = members[k],
        r = result.members[k];
      if (r.error !== null || left() <= 0) continue;
      const warmup = rep === 0 ? (opts.warmup ?? m.warmup) : Math.min(m.warmup, 3);
      try {
        const out = await sides[k].request({ cmd: 'run', warmup, count: opts.steps ?? m.steps }, left());
        if (!out.ok) throw new Error(out.error);
        r.runs.push({ rep, sample: out.sample });
      } catch (err) {
        r.error = err.message;
        sides[k].kill();
      }
    }
  }
  for (const side of sides) await side.quit();
  const base = result.members[0];
  for (const r of result.members) {
    Object.assign(r, spreadOf(r.runs.map((x) => x.sample)));
    if (r === base || base.median === null || r.median === null) continue;
    r.ratio = r.median / base.median;
    const per = r.runs
      .map((x) => {
        const b = base.runs.find((y) => y.rep === x.rep);
        return b ? x.sample / b.sample : NaN;
      })
      .filter(Number.isFinite);
    r.ratioRange = per.length > 0 ? [Math.min(...per), Math.max(...per)] : null;
  }
  return result;
}

function ratioLines(r) {
  return r.members
    .map(
      (m) =>
        `${m.name.padEnd(12)} ${m.median !== null ? fmtTime(m.median, r.unit) : `failed: ${m.error ?? 'no runs'}`}` +
        ` (${fmtTime(m.min, r.unit)}-${fmtTime(m.max, r.unit)}, ${m.runs.length} runs)` +
        (m.ratio !== undefined ? `  / ${r.members[0].name} ${fmtRatio(m.ratio)} (${fmtRange(m.ratioRange)})` : ''),
    )
    .join('\n');
}

function caseLine(r) {
  if (r.kind === 'ratio') return ratioLines(r);
  const side = (s) =>
    s.skip
      ? s.skip
      : s.median !== null
        ? `${fmtTime(s.median, r.unit)} (${fmtTime(s.min, r.unit)}-${fmtTime(s.max, r.unit)})`
        : `failed: ${s.error ?? 'no runs'}`;
  const lines = [
    `${r.name.padEnd(12)} node ${side(r.node)} | python ${side(r.python)} | node/python ${fmtRatio(r.ratio)} (${fmtRange(r.ratioRange)})` +
      `  (${r.node.runs.length}/${r.python.runs.length} runs; peak RSS ${fmtBytes(r.node.peakRssBytes)} / ${fmtBytes(r.python.peakRssBytes)}` +
      `${r.group === 'train' ? `; optimizer state ${fmtBytes(r.node.stateBytes)} / ${fmtBytes(r.python.stateBytes)}` : ''})`,
  ];
  lines.push(`             node: ${r.node.impl ?? '—'}; python: ${r.python.impl ?? '—'}`);
  for (const key of ['node', 'python']) {
    if (r[key].capped) lines.push(`             ${key}: ${r[key].capped}`);
    if (r[key].leak) lines.push(`             ${key}: LEAK: ${r[key].leak}`);
    if (r[key].error && r[key].median !== null) lines.push(`             ${key}: ${r[key].error}`);
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------------ table
function markdown(results, meta) {
  const out = [];
  out.push(
    `Measured ${meta.date}${meta.clock === 'process' ? ' (process time, not wall time)' : ''} on ${meta.cpu} (${meta.cores} cores, ${meta.memGiB} GiB), ${meta.threads} intra-op thread${meta.threads > 1 ? 's' : ''} ` +
      `on each side; Node ${meta.node} with tensornormal (libtorch ${meta.torchNode ?? '?'}), Python ${meta.python ?? '?'} with torch ${meta.torchPython ?? '?'}; ` +
      `OpenBLAS kernels: ${meta.blasNode ?? '?'} (Node) / ${meta.blasPython ?? '?'} (Python); native-library environment ` +
      `(lib/runtime-env.ts): ${
        Object.entries(meta.runtimeEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || 'none'
      } ` +
      `${meta.pythonEnv === 'same' ? 'on both sides' : 'on the Node side only (Python with its defaults)'}; inputs: ${meta.data}.`,
  );
  out.push('');
  if (results.some((r) => r.kind !== 'ratio')) {
    out.push(
      '| Case | Node (min-max) | PyTorch (min-max) | Node / PyTorch (min-max) | Peak RSS (Node / PyTorch) | Optimizer state (Node / PyTorch) |',
    );
    out.push('|---|---:|---:|---:|---:|---:|');
  }
  for (const r of results) {
    if (r.kind === 'ratio') continue;
    const cell = (s) =>
      s.skip
        ? s.skip.replace(/ \(.*$/, '')
        : s.median !== null
          ? `${fmtTime(s.median, r.unit)} (${fmtTime(s.min, r.unit)}-${fmtTime(s.max, r.unit)})`
          : 'failed';
    const state = r.group === 'train' ? `${fmtBytes(r.node.stateBytes)} / ${fmtBytes(r.python.stateBytes)}` : '—';
    const ratio = r.ratio === null ? '—' : `${fmtRatio(r.ratio)} (${fmtRange(r.ratioRange)})`;
    out.push(
      `| ${r.title} | ${cell(r.node)} | ${cell(r.python)} | ${ratio} | ${fmtBytes(r.node.peakRssBytes)} / ${fmtBytes(r.python.peakRssBytes)} | ${state} |`,
    );
  }
  for (const r of results.filter((x) => x.kind === 'ratio')) {
    out.push('', `${r.title}, interleaved (${r.reps} rounds):`, '');
    out.push(`| Case | Node (min-max) | / ${r.members[0].title.replace(/.*, /, '')} (min-max) |`, '|---|---:|---:|');
    for (const m of r.members)
      out.push(
        `| ${m.title} | ${m.median !== null ? `${fmtTime(m.median, r.unit)} (${fmtTime(m.min, r.unit)}-${fmtTime(m.max, r.unit)})` : 'failed'} | ${m.ratio !== undefined ? `${fmtRatio(m.ratio)} (${fmtRange(m.ratioRange)})` : '1'} |`,
      );
  }
  out.push('');
  out.push(
    'Times are medians over alternating Node and Python runs, each side in its own process, with the min-max over ' +
      'the runs; the ratio is of the medians, with the min-max of the per-repetition ratios (a spread that includes ' +
      '1 is parity). Per-op rows: time per ' +
      'iteration of a tight loop. Training rows: forward, backward and optimizer step on a batch of 1000 (autoencoder) or ' +
      '128 (CNN); a run times its steps after a warm-up and reports the median step; TNT rows report the mean over 100 ' +
      'steps (40 for the autoencoder), which amortises the statistics (every T1 steps) and inverses (every T2 steps). Node / PyTorch below 1 ' +
      'means Node is faster. Peak RSS is the whole process (libtorch, the interpreter and the data); optimizer state ' +
      "sums numel x element size over the optimizer's state tensors.",
  );
  const overrides = [
    ['reps', meta.reps],
    ['steps', meta.steps],
    ['warmup', meta.warmup],
  ].filter(([, v]) => v !== null);
  if (overrides.length > 0)
    out.push(
      '',
      `Not the default settings: ${overrides.map(([k, v]) => `--${k} ${v}`).join(' ')} (the defaults are 7 runs of each per-op loop; 7 runs of 20 steps after 3 warm-up steps per first-order training case; TNT: 5 runs of 40 steps (autoencoder) or 4 of 100 (CNN) after the first T2 steps).`,
    );
  return out.join('\n');
}

// ------------------------------------------------------------------------------------------------ check mode
async function runChecks(opts, fixtures, python) {
  const TOL = 1e-4; // float32 on the same libtorch and thread count: the two sides should agree far closer than this
  const results = [];
  let failed = false;
  const wanted =
    opts.cases === null
      ? CHECKS
      : CHECKS.filter((c) =>
          opts.cases.some((n) => c.name === n || c.name === `check-${n}` || c.name.startsWith(`check-${n}-`)),
        );
  if (wanted.length === 0)
    fail(
      `no check matches --cases ${opts.cases.join(',')}; checks: ${CHECKS.map((c) => c.name.slice(6)).join(', ')} (or ae, cnn)`,
    );
  for (const c of wanted) {
    const res = { name: c.name, node: null, python: null, status: 'ok' };
    const { sides } = await startPair(opts, python);
    try {
      if (sides.python === null) throw new Error(python.unavailable); // nothing to compare against: a failure
      for (const key of ['node', 'python']) {
        const r = await sides[key].request(
          { cmd: 'setup', case: { ...c, kind: 'train' }, fixtures: fixtures.paths[c.model], seed: 0 },
          300,
        );
        if (!r.ok) throw Object.assign(new Error(r.skip ?? r.error), { skip: Boolean(r.skip) });
      }
      for (const key of ['node', 'python']) {
        const r = await sides[key].request({ cmd: 'check', steps: c.steps }, 600);
        if (!r.ok) throw new Error(`${key}: ${r.error}`);
        res[key] = r.losses;
      }
      res.relErr = res.node.map((a, i) => Math.abs(a - res.python[i]) / Math.max(Math.abs(res.python[i]), 1e-12));
      if (!res.relErr.every((e) => e <= TOL)) {
        res.status = 'FAIL';
        failed = true;
      }
    } catch (err) {
      res.status = err.skip ? 'skipped' : 'FAIL';
      res.message = err.message;
      if (!err.skip) failed = true;
    }
    for (const s of Object.values(sides)) await s?.quit();
    results.push(res);
    if (res.node && res.python) {
      log(
        `${c.name.padEnd(15)} ${res.status.padEnd(4)} ` +
          res.node
            .map(
              (a, i) =>
                `step ${i + 1}: ${a.toPrecision(8)} vs ${res.python[i].toPrecision(8)} (rel ${res.relErr[i].toExponential(1)})`,
            )
            .join('; '),
      );
    } else log(`${c.name.padEnd(15)} ${res.status}: ${res.message}`);
  }
  return { results, failed, tolerance: TOL };
}

// ------------------------------------------------------------------------------------------------ main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.json) log = (msg) => console.error(msg);
  if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is missing: run `npm run build:ts` first');
  const cases = opts.check ? [] : selectCases(opts.cases);
  const data = opts.data ?? defaultDataSource();
  const needFixtures = opts.check || cases.some((c) => c.kind === 'train' || c.kind === 'ratio');
  const fixtures = needFixtures ? makeFixtures(data) : null;
  const python = { unavailable: null };
  process.on('exit', () => fixtures?.cleanup());
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

  const meta = {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model?.trim() ?? 'unknown CPU',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    threads: opts.threads,
    timeUnit: 'seconds',
    reps: opts.reps,
    steps: opts.steps,
    warmup: opts.warmup,
    node: process.version,
    data: data === 'mnist' ? 'MNIST digits (npm `mnist`)' : 'uniform random [0, 1)',
    python: null,
    torchNode: null,
    torchPython: null,
    blasNode: null,
    blasPython: null,
    runtimeEnv,
    pythonEnv: opts.pythonEnv,
    clock: opts.clock,
  };
  // the workers read it (bench/node/worker.mjs, bench/python/worker.py)
  if (opts.clock === 'process') process.env.TENSORNORMAL_BENCH_CLOCK = 'process';
  else delete process.env.TENSORNORMAL_BENCH_CLOCK;

  if (opts.check) {
    log(
      `check: same initial weights and ${data} batch on both sides, ${opts.threads} threads; first ${CHECKS[0].steps} losses must agree to 1e-4 relative`,
    );
    const { results, failed, tolerance } = await runChecks(opts, fixtures, python);
    if (opts.json) console.log(JSON.stringify({ meta, check: { tolerance, results } }, null, 2));
    log(failed ? 'check: FAILED' : 'check: passed');
    process.exitCode = failed ? 1 : 0;
    return;
  }

  log(
    `bench: ${cases.length} case(s), ${opts.threads} intra-op threads per side, inputs ${data}; Node and Python runs alternate`,
  );
  const results = [];
  for (const c of cases) {
    if (c.kind === 'ratio') {
      const r = await runRatio(c, opts, fixtures);
      meta.torchNode ??= r.versions?.node?.torch ?? null;
      meta.blasNode ??= r.versions?.node?.blasCore ?? null;
      delete r.versions;
      results.push(r);
      log(caseLine(r));
      continue;
    }
    const r = await runCase(c, opts, fixtures, python);
    meta.torchNode ??= r.versions.node?.torch ?? null;
    meta.torchPython ??= r.versions.python?.torch ?? null;
    meta.python ??= r.versions.python?.python ?? null;
    meta.blasNode ??= r.versions.node?.blasCore ?? null;
    meta.blasPython ??= r.versions.python?.blasCore ?? null;
    if (r.versions.node?.threads !== undefined && r.versions.node.threads !== opts.threads)
      log(`warning: Node runs ${r.versions.node.threads} threads, not ${opts.threads}`);
    if (r.versions.python?.threads !== undefined && r.versions.python.threads !== opts.threads)
      log(`warning: Python runs ${r.versions.python.threads} threads, not ${opts.threads}`);
    delete r.versions;
    results.push(r);
    log(caseLine(r));
  }
  if (python.unavailable) log(`\n${python.unavailable}`);

  const table = markdown(results, meta);
  const write = opts.write ?? opts.cases === null;
  if (write) {
    const path = join(here, 'results.md');
    const args = process.argv.slice(2).join(' ');
    const header = `<!-- Written by \`npm run bench${args ? ` -- ${args}` : ''}\` (bench/run.mjs); the README embeds this table. -->\n`;
    writeFileSync(path, `${header}${table}\n`);
  }
  if (opts.json) console.log(JSON.stringify({ meta, results }, null, 2));
  else {
    log('');
    log(table);
    log(
      write
        ? '\n(written to bench/results.md)'
        : '\n(bench/results.md left as it was: a partial run; pass --write to replace it)',
    );
  }
}

main().catch((err) => {
  console.error(`bench: ${process.env.BENCH_DEBUG ? err.stack : (err.message ?? err)}`);
  process.exit(1);
});
