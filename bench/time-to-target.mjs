#!/usr/bin/env node
/**
 * Time to target from `tensornormal experiment` results (not a timed test): for each labelled results folder (its
 * results.json), the process time each run needs to first reach given loss targets, the mean over seeds, the loss
 * per epoch (mean over seeds), and one figure (SVG and PNG) of loss against process time (mean over seeds).
 *
 *   node bench/time-to-target.mjs --run 'Adam=DIR' --run 'SGD-m=DIR' --run 'TNT=DIR' ... \
 *        --target 'Adam@60' --target 'SGD-m@60' [--optimizer adam] [--svg FILE] [--title TEXT]
 *
 * --run LABEL=DIR[:OPT]   a results folder, and which optimizer's runs to take from it (default: every optimizer in
 *                         it, labelled LABEL when it holds one, else LABEL OPT); several --run with one LABEL add up
 *                         (e.g. one process per seed: `--seeds 1 --first-seed K`)
 * --run LABEL=FILE.log    the experiment's `--json` output instead (runs still going or cut short): the points are
 *                         rebuilt from its step events (about ten an epoch, each with the epoch's running mean), so
 *                         a point's loss is the mean over the steps since the previous event
 * --target LABEL@S        the target: LABEL's loss at S seconds of process time (mean over its seeds of each run's
 *                         smoothed loss, interpolated at S)
 *
 * The loss of a point is the experiment's (mean minibatch training loss since the previous point, --log-every
 * steps); a run reaches a target at the first point at or below it (linear interpolation between points). Every
 * run of an experiment starts from the same initial weights and data order for a given seed (manualSeed(seed)
 * before the model is built; the loader's shuffle is seeded with the seed).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interpolate, meanStd, aggregateInterpolated } from '../dist/experiments/aggregate.js';
import { lineChart } from '../dist/experiments/svg.js';
import { lineChartPng } from '../dist/experiments/png.js';

const args = process.argv.slice(2);
const runs = [],
  targets = [];
let svg = null,
  title = 'Training loss against process time';
for (let i = 0; i < args.length; i++) {
  const a = args[i],
    v = args[i + 1];
  if (a === '--run') {
    const m = /^([^=]+)=([^:]+)(?::(\w+))?$/.exec(v);
    if (!m) throw new Error(`--run expects LABEL=DIR[:OPT] but received ${v}`);
    runs.push({ label: m[1], dir: m[2], optimizer: m[3] ?? null });
    i++;
  } else if (a === '--target') {
    const m = /^(.+)@([\d.]+)$/.exec(v);
    if (!m) throw new Error(`--target expects LABEL@SECONDS but received ${v}`);
    targets.push({ label: m[1], at: Number(m[2]) });
    i++;
  } else if (a === '--svg') svg = args[++i];
  else if (a === '--title') title = args[++i];
  else throw new Error(`unknown argument ${a}`);
}

/** A results.json-like object from an experiment's --json lines (finished runs and the one still going). */
function fromLog(file) {
  const res = { hyperparameters: {}, runs: [] };
  let cur = null,
    prev = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    if (e.phase !== 'main') continue;
    if (e.event === 'run-start') {
      res.hyperparameters[e.optimizer] = e.hp;
      cur = { optimizer: e.optimizer, seed: e.seed, points: [], epochs: [], stoppedBy: 'running', divergedAt: null };
      res.runs.push(cur);
      prev = null;
    } else if (e.event === 'step' && cur) {
      const n0 = prev && prev.epoch === e.epoch ? prev.step : 0;
      const s0 = prev && prev.epoch === e.epoch ? prev.step * prev.loss : 0;
      if (e.step > n0)
        cur.points.push({
          cpu: e.cpu,
          loss: (e.step * e.loss - s0) / (e.step - n0),
          epoch: e.epoch - 1 + e.step / e.steps,
        });
      prev = e;
    } else if (e.event === 'epoch' && cur) cur.epochs.push({ epoch: e.epoch, loss: e.loss, cpu: e.cpu });
    else if (e.event === 'run-end' && cur) {
      cur.stoppedBy = e.stoppedBy;
      if (e.stoppedBy === 'diverged') cur.divergedAt = /at step (\d+)/.exec(e.error ?? '')?.[1] ?? '?';
    }
  }
  for (const r of res.runs) {
    const e = r.epochs;
    r.cpuPerEpoch = e.length > 1 ? (e[e.length - 1].cpu - e[0].cpu) / (e.length - 1) : null;
  }
  return res;
}

/** label -> runs (each: seed, points [{cpu, loss, epoch}], epochs [{epoch, loss, cpu}], stoppedBy, divergedAt) */
const groups = new Map();
for (const r of runs) {
  const res = r.dir.endsWith('.log') ? fromLog(r.dir) : JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8'));
  const opts = [...new Set(res.runs.map((x) => x.optimizer))].filter((o) => r.optimizer === null || o === r.optimizer);
  for (const o of opts) {
    const label = opts.length === 1 ? r.label : `${r.label} ${o}`;
    const g = groups.get(label) ?? { hp: res.hyperparameters[o], runs: [] };
    for (const x of res.runs.filter((y) => y.optimizer === o)) {
      // a seed's finished run replaces one that a log shows cut short
      const k = g.runs.findIndex((y) => y.seed === x.seed);
      if (k < 0) g.runs.push(x);
      else if (g.runs[k].stoppedBy === 'running' && x.stoppedBy !== 'running') g.runs[k] = x;
    }
    groups.set(label, g);
  }
}

const lossAt = (run, t) =>
  interpolate(
    run.points.map((p) => p.cpu),
    run.points.map((p) => p.loss),
    t,
  );
/** First process time at which the run's smoothed loss is at or below `target` (interpolated), or null. */
function timeTo(run, target) {
  const p = run.points;
  for (let k = 0; k < p.length; k++) {
    if (!(p[k].loss <= target)) continue;
    if (k === 0) return p[0].cpu;
    const a = p[k - 1],
      b = p[k];
    return a.cpu + ((a.loss - target) / (a.loss - b.loss)) * (b.cpu - a.cpu);
  }
  return null;
}

const out = [];
const fmt = (v, d = 1) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(d));
const resolved = targets.map((t) => {
  const g = groups.get(t.label);
  if (!g) throw new Error(`no runs labelled ${t.label}`);
  // a run that diverged has no loss at later times: the target is the mean over the runs that did not
  const ok = g.runs.filter((r) => r.stoppedBy !== 'diverged');
  const v = meanStd(ok.map((r) => lossAt(r, t.at)));
  return { ...t, value: v.mean, n: v.n, of: g.runs.length };
});
out.push(
  `| Optimizer | seeds | diverged | loss at epoch 1 / 2 / 3 / 4 / 5 (mean) | s / epoch | ${resolved
    .map(
      (t) =>
        `time to ${t.label}'s ${t.at}-s loss ${t.value.toPrecision(4)}${t.n < t.of ? ` (${t.n} of ${t.of} seeds)` : ''} (s, mean; per seed)`,
    )
    .join(' | ')} |`,
);
out.push(`|---|---:|---:|---:|---:|${resolved.map(() => '---:|').join('')}`);
for (const [label, g] of groups) {
  const byEpoch = [1, 2, 3, 4, 5].map((e) =>
    meanStd(g.runs.map((r) => r.epochs.find((x) => x.epoch === e)?.loss ?? NaN)),
  );
  const perEpoch = meanStd(g.runs.map((r) => r.cpuPerEpoch ?? NaN));
  const diverged = g.runs.filter((r) => r.stoppedBy === 'diverged');
  const cells = resolved.map((t) => {
    // a run that diverged counts as not reaching the target (its last points are the blow-up)
    const ts = g.runs.map((r) => (r.stoppedBy === 'diverged' ? null : timeTo(r, t.value)));
    const all = ts.every((x) => x !== null);
    const mean = all ? ts.reduce((a, b) => a + b, 0) / ts.length : null;
    const seeds = ts.map((x, k) => (x !== null ? x.toFixed(1) : g.runs[k].stoppedBy === 'diverged' ? 'diverged' : '—'));
    return `${all ? fmt(mean) : `${ts.filter((x) => x !== null).length} of ${ts.length} seeds`} (${seeds.join(', ')})`;
  });
  out.push(
    `| ${label} | ${g.runs.length} | ${diverged.length ? diverged.map((r) => `seed ${r.seed} at step ${r.divergedAt}`).join(', ') : 'none'} | ${byEpoch.map((m) => (m.n === g.runs.length ? m.mean.toFixed(2) : '—')).join(' / ')} | ${fmt(perEpoch.mean)} | ${cells.join(' | ')} |`,
  );
}
console.log(out.join('\n'));
for (const [label, g] of groups) console.log(`${label}: ${JSON.stringify(g.hp)}`);

if (svg) {
  const series = [...groups].map(([label, g]) => {
    // the curve of the runs that did not diverge (a diverged run would end every seed's mean where it stopped)
    const ok = g.runs.filter((r) => r.stoppedBy !== 'diverged');
    const a = aggregateInterpolated(
      ok.map((r) => ({ x: r.points.map((p) => p.cpu), y: r.points.map((p) => p.loss) })),
      120,
    );
    const name =
      ok.length < g.runs.length ? `${label} (${g.runs.length - ok.length} of ${g.runs.length} diverged)` : label;
    return { name, x: a.x, y: a.mean, band: a.std };
  });
  const finite = series.flatMap((s) => s.y).filter(Number.isFinite);
  const lo = Math.min(...finite);
  const hi = Math.min(Math.max(...finite), lo * 2.2);
  const panels = [
    {
      title,
      xLabel: 'process time (s, one thread)',
      yLabel: 'training loss (mean over seeds)',
      series,
      logY: true,
      yRange: [lo * 0.97, hi],
    },
  ];
  writeFileSync(svg, lineChart(panels, { columns: 1, width: 560, height: 360 }));
  const png = svg.replace(/\.svg$/, '') + '.png';
  writeFileSync(png, lineChartPng(panels, { columns: 1, width: 560, height: 360 }));
  console.log(`wrote ${svg} and ${png}`);
}
