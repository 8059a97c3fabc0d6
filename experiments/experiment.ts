/**
 * What the autoencoder and CNN experiments share: the optional learning-rate/damping grid, the runs (every optimizer
 * times every seed), the aggregation over seeds, the summary and the files written (results.json, one JSON per run,
 * figure.svg and figure.png in the style of the paper's Figures 2 and 3).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  trainRun,
  OPTIMIZER_LABELS,
  type Hyper,
  type OptimizerName,
  type RunConfig,
  type RunEvent,
  type RunResult,
} from './run.js';
import { aggregateAligned, aggregateInterpolated, interpolate, meanStd, type AggregateCurve } from './aggregate.js';
import { lineChart, type Panel } from './svg.js';
import { lineChartPng } from './png.js';

/** Grid settings: every candidate runs once (seed `seed`) for at most `epochs` epochs and `budget` process seconds. */
export interface GridOptions {
  budget: number;
  epochs: number;
  seed: number;
}

export interface GridCandidate {
  hp: Hyper;
  /** Mean minibatch loss over the last 20% of the candidate's steps (Infinity if it diverged). */
  loss: number;
  steps: number;
  cpu: number;
  stoppedBy: RunResult['stoppedBy'];
}

export interface GridResult {
  options: GridOptions;
  /** Per optimizer: the candidates tried and the chosen hyperparameters (the lowest loss). */
  byOptimizer: Partial<Record<OptimizerName, { candidates: GridCandidate[]; chosen: Hyper }>>;
}

export interface OptimizerSummary {
  label: string;
  hyperparameters: Hyper;
  runs: number;
  /** Epochs that every run of every optimizer completed, and the training loss there (mean and std over seeds). */
  epoch: number | null;
  lossAtEpoch: number | null;
  lossAtEpochStd: number | null;
  /** The latest process time every optimizer's aggregate reaches, and the mean training loss there. */
  time: number | null;
  lossAtTime: number | null;
  /** Mean over seeds of the last recorded epoch's training loss, and its epoch count. */
  finalLoss: number | null;
  finalEpoch: number | null;
  /** Mean process / wall seconds per training epoch (warm start excluded) and of the warm start. */
  cpuPerEpoch: number | null;
  wallPerEpoch: number | null;
  warmStartCpu: number | null;
  /** Mean validation error after the last common epoch (CNN experiments). */
  valErrorAtEpoch?: number | null;
}

export interface OptimizerAggregate {
  lossByEpoch: AggregateCurve;
  lossByTime: AggregateCurve;
  valErrorByEpoch?: AggregateCurve;
  valErrorByTime?: AggregateCurve;
}

export interface ExperimentResult {
  experiment: 'autoencoder' | 'cnn';
  title: string;
  /** Everything the experiment was run with (dataset, model, batch size, epochs, budget, ...). */
  config: Record<string, unknown>;
  hyperparameters: Partial<Record<OptimizerName, Hyper>>;
  grid: GridResult | null;
  runs: RunResult[];
  aggregate: Partial<Record<OptimizerName, OptimizerAggregate>>;
  summary: Partial<Record<OptimizerName, OptimizerSummary>>;
  /** Process seconds of the whole experiment, grid included. */
  seconds: number;
  files?: string[];
}

export type ExperimentEvent =
  | (RunEvent & { phase: 'grid' | 'main'; run: number; runs: number })
  | {
      type: 'run-start';
      phase: 'grid' | 'main';
      run: number;
      runs: number;
      optimizer: OptimizerName;
      seed: number;
      hp: Hyper;
    }
  | {
      type: 'run-end';
      phase: 'grid' | 'main';
      run: number;
      runs: number;
      optimizer: OptimizerName;
      seed: number;
      hp: Hyper;
      loss: number | null;
      cpu: number;
      stoppedBy: RunResult['stoppedBy'];
      /** Why a diverged run stopped, and what to change. */
      error?: string | null;
    }
  | { type: 'grid-chosen'; optimizer: OptimizerName; hp: Hyper; loss: number };

export interface ExperimentSpec {
  experiment: 'autoencoder' | 'cnn';
  title: string;
  config: Record<string, unknown>;
  optimizers: OptimizerName[];
  seeds: number[];
  hyperparameters: Record<OptimizerName, Hyper>;
  grid: GridOptions | null;
  /** The run configuration shared by all runs; the learning-rate decay may depend on the optimizer. */
  base: Omit<RunConfig, 'optimizer' | 'hp' | 'seed' | 'onEvent' | 'lrDecay'>;
  lrDecay?: (o: OptimizerName) => RunConfig['lrDecay'];
  onEvent?: (e: ExperimentEvent) => void;
}

/** The neighbours of v on the 1-3-10 ladder (1e-4 -> [3e-5, 1e-4, 3e-4]; 3e-3 -> [1e-3, 3e-3, 1e-2]). */
export function ladder(v: number): [number, number, number] {
  const snap = (x: number): number => {
    const k = Math.floor(Math.log10(x));
    const options = [10 ** k, 3 * 10 ** k, 10 ** (k + 1)];
    const best = options.reduce((a, b) => (Math.abs(Math.log10(b / x)) < Math.abs(Math.log10(a / x)) ? b : a));
    return +best.toPrecision(6);
  };
  return [snap(v / Math.sqrt(10)), v, snap(v * Math.sqrt(10))];
}

/** The grid around `hp`: learning rate times damping on the 1-3-10 ladder (3 x 3; SGD-m: 3 learning rates). */
export function gridCandidates(optimizer: OptimizerName, hp: Hyper): Hyper[] {
  const lrs = ladder(hp.lr);
  if (optimizer === 'sgd' || hp.damping === undefined) return lrs.map((lr) => ({ ...hp, lr }));
  const ds = ladder(hp.damping);
  return lrs.flatMap((lr) => ds.map((damping) => ({ ...hp, lr, damping })));
}

/** Mean of the last 20% (at least one) of the recorded minibatch-loss points; Infinity if the run diverged. */
function tailLoss(r: RunResult): number {
  if (r.stoppedBy === 'diverged' || r.points.length === 0) return Infinity;
  const k = Math.max(1, Math.ceil(r.points.length * 0.2));
  const tail = r.points.slice(-k).map((p) => p.loss);
  const m = tail.reduce((s, v) => s + v, 0) / tail.length;
  return Number.isFinite(m) ? m : Infinity;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Runs the grid (if asked), then every optimizer with every seed, and aggregates. */
export async function runExperiment(spec: ExperimentSpec): Promise<ExperimentResult> {
  const t0 = cpuSeconds();
  const hps: Partial<Record<OptimizerName, Hyper>> = {};
  for (const o of spec.optimizers) hps[o] = { ...spec.hyperparameters[o] };
  let grid: GridResult | null = null;

  if (spec.grid) {
    const g = spec.grid;
    grid = { options: g, byOptimizer: {} };
    const plan = spec.optimizers.flatMap((o) => gridCandidates(o, hps[o]!).map((hp) => ({ o, hp })));
    let run = 0;
    for (const o of spec.optimizers) {
      const candidates: GridCandidate[] = [];
      for (const { hp } of plan.filter((p) => p.o === o)) {
        run++;
        const info = { phase: 'grid' as const, run, runs: plan.length };
        spec.onEvent?.({ type: 'run-start', ...info, optimizer: o, seed: g.seed, hp });
        const r = await trainRun({
          ...spec.base,
          optimizer: o,
          hp,
          seed: g.seed,
          epochs: Math.min(g.epochs, spec.base.epochs),
          timeBudget: Math.min(g.budget, spec.base.timeBudget ?? Infinity),
          logEvery: 1,
          lrDecay: undefined,
          validate: undefined,
          onEvent: (e) => spec.onEvent?.({ ...e, ...info }),
        });
        const loss = tailLoss(r);
        candidates.push({ hp, loss, steps: r.steps, cpu: r.cpu, stoppedBy: r.stoppedBy });
        spec.onEvent?.({
          type: 'run-end',
          ...info,
          optimizer: o,
          seed: g.seed,
          hp,
          loss,
          cpu: r.cpu,
          stoppedBy: r.stoppedBy,
        });
      }
      const best = candidates.reduce((a, b) => (b.loss < a.loss ? b : a));
      // all diverged: keep the defaults
      const chosen = Number.isFinite(best.loss) ? best.hp : hps[o]!;
      grid.byOptimizer[o] = { candidates, chosen };
      hps[o] = { ...chosen };
      spec.onEvent?.({ type: 'grid-chosen', optimizer: o, hp: chosen, loss: best.loss });
    }
  }

  const runs: RunResult[] = [];
  const total = spec.optimizers.length * spec.seeds.length;
  let run = 0;
  for (const o of spec.optimizers)
    for (const seed of spec.seeds) {
      run++;
      const info = { phase: 'main' as const, run, runs: total };
      spec.onEvent?.({ type: 'run-start', ...info, optimizer: o, seed, hp: hps[o]! });
      const r = await trainRun({
        ...spec.base,
        optimizer: o,
        hp: hps[o]!,
        seed,
        lrDecay: spec.lrDecay?.(o),
        onEvent: (e) => spec.onEvent?.({ ...e, ...info }),
      });
      runs.push(r);
      const last = r.epochs[r.epochs.length - 1];
      spec.onEvent?.({
        type: 'run-end',
        ...info,
        optimizer: o,
        seed,
        hp: hps[o]!,
        loss: last?.loss ?? r.points[r.points.length - 1]?.loss ?? null,
        cpu: r.cpu,
        stoppedBy: r.stoppedBy,
        error: r.error,
      });
    }

  const validated = runs.some((r) => r.epochs.some((e) => e.valError !== undefined));
  const aggregate = aggregateRuns(runs, spec.optimizers, validated);
  return {
    experiment: spec.experiment,
    title: spec.title,
    config: spec.config,
    hyperparameters: hps,
    grid,
    runs,
    aggregate,
    summary: summarize(runs, aggregate, hps, spec.optimizers),
    seconds: cpuSeconds() - t0,
  };
}

/** Per optimizer: training loss (and validation error) over seeds, against epochs and against process time. */
export function aggregateRuns(
  runs: RunResult[],
  optimizers: OptimizerName[],
  validated = false,
): Partial<Record<OptimizerName, OptimizerAggregate>> {
  const out: Partial<Record<OptimizerName, OptimizerAggregate>> = {};
  for (const o of optimizers) {
    const rs = runs.filter((r) => r.optimizer === o);
    if (rs.length === 0) continue;
    const a: OptimizerAggregate = {
      lossByEpoch: aggregateAligned(
        rs.map((r) => ({ x: r.epochs.map((e) => e.epoch), y: r.epochs.map((e) => e.loss) })),
      ),
      lossByTime: aggregateInterpolated(
        rs.map((r) => ({ x: r.points.map((p) => p.cpu), y: r.points.map((p) => p.loss) })),
      ),
    };
    if (validated) {
      a.valErrorByEpoch = aggregateAligned(
        rs.map((r) => ({ x: r.epochs.map((e) => e.epoch), y: r.epochs.map((e) => e.valError ?? NaN) })),
      );
      a.valErrorByTime = aggregateInterpolated(
        rs.map((r) => ({ x: r.epochs.map((e) => e.cpu), y: r.epochs.map((e) => e.valError ?? NaN) })),
      );
    }
    out[o] = a;
  }
  return out;
}

function mean(v: (number | null)[]): number | null {
  const m = meanStd(v.filter((x): x is number => x !== null));
  return m.n === 0 ? null : m.mean;
}

/** The numbers a report quotes: loss at equal epochs, loss at equal process time, time per epoch. */
export function summarize(
  runs: RunResult[],
  aggregate: Partial<Record<OptimizerName, OptimizerAggregate>>,
  hps: Partial<Record<OptimizerName, Hyper>>,
  optimizers: OptimizerName[],
): Partial<Record<OptimizerName, OptimizerSummary>> {
  const present = optimizers.filter((o) => aggregate[o]);
  const commonEpoch = runs.length > 0 ? Math.min(...runs.map((r) => r.epochs.length)) : 0;
  const ends = present
    .map((o) => aggregate[o]!.lossByTime.x)
    .filter((x) => x.length > 0)
    .map((x) => x[x.length - 1]!);
  const commonTime = ends.length === present.length && ends.length > 0 ? Math.min(...ends) : null;
  const out: Partial<Record<OptimizerName, OptimizerSummary>> = {};
  for (const o of present) {
    const a = aggregate[o]!;
    const rs = runs.filter((r) => r.optimizer === o);
    const i = commonEpoch - 1;
    const lastI = a.lossByEpoch.x.length - 1;
    const s: OptimizerSummary = {
      label: OPTIMIZER_LABELS[o],
      hyperparameters: hps[o]!,
      runs: rs.length,
      epoch: commonEpoch > 0 ? commonEpoch : null,
      lossAtEpoch: commonEpoch > 0 ? a.lossByEpoch.mean[i]! : null,
      lossAtEpochStd: commonEpoch > 0 ? a.lossByEpoch.std[i]! : null,
      time: commonTime,
      lossAtTime:
        commonTime !== null && a.lossByTime.x.length > 0
          ? interpolate(a.lossByTime.x, a.lossByTime.mean, commonTime)
          : null,
      finalLoss: lastI >= 0 ? a.lossByEpoch.mean[lastI]! : null,
      finalEpoch: lastI >= 0 ? a.lossByEpoch.x[lastI]! : null,
      cpuPerEpoch: mean(rs.map((r) => r.cpuPerEpoch)),
      wallPerEpoch: mean(rs.map((r) => r.wallPerEpoch)),
      warmStartCpu: mean(rs.map((r) => r.warmStart?.cpu ?? null)),
    };
    if (a.valErrorByEpoch) s.valErrorAtEpoch = commonEpoch > 0 ? a.valErrorByEpoch.mean[i]! : null;
    out[o] = s;
  }
  return out;
}

/** The figure's panels: training loss (log scale) against epochs and process time, and for CNNs the validation error. */
export function figurePanels(result: Pick<ExperimentResult, 'title' | 'aggregate'>): Panel[] {
  const entries = Object.entries(result.aggregate) as [OptimizerName, OptimizerAggregate][];
  const series = (pick: (a: OptimizerAggregate) => AggregateCurve | undefined) =>
    entries
      .map(([o, a]) => [o, pick(a)] as const)
      .filter(([, c]) => c !== undefined && c.x.length > 0)
      .map(([o, c]) => ({ name: OPTIMIZER_LABELS[o], x: c!.x, y: c!.mean, band: c!.std }));
  const byEpoch = series((a) => a.lossByEpoch),
    byTime = series((a) => a.lossByTime);
  // One loss range for both panels, topped by the highest initial loss: a run that blows up before it is stopped
  // leaves the plot at the top instead of squashing every other curve to the bottom.
  const all = [...byEpoch, ...byTime]
    .flatMap((s) => s.y.map((y, i) => y - (s.band[i] ?? 0)).concat(s.y))
    .filter((v) => Number.isFinite(v) && v > 0);
  const firsts = [
    ...byEpoch.map((s) => Math.max(...s.y.filter(Number.isFinite))),
    ...byTime.map((s) => s.y.find(Number.isFinite) ?? NaN),
  ].filter((v) => Number.isFinite(v) && v > 0);
  const yRange: [number, number] | undefined =
    all.length > 0 && firsts.length > 0 ? [Math.min(...all), Math.max(...firsts) * 1.05] : undefined;
  const panels: Panel[] = [
    { title: `${result.title}`, xLabel: 'epoch', yLabel: 'training loss', logY: true, series: byEpoch, yRange },
    {
      title: `${result.title}`,
      xLabel: 'process time (s)',
      yLabel: 'training loss',
      logY: true,
      series: byTime,
      yRange,
    },
  ];
  if (entries.some(([, a]) => a.valErrorByEpoch)) {
    panels.push({
      title: `${result.title}`,
      xLabel: 'epoch',
      yLabel: 'validation error',
      series: series((a) => a.valErrorByEpoch),
    });
    panels.push({
      title: `${result.title}`,
      xLabel: 'process time (s)',
      yLabel: 'validation error',
      series: series((a) => a.valErrorByTime),
    });
  }
  return panels;
}

/** Writes results.json, runs/<optimizer>-seed<k>.json, figure.svg and figure.png under `dir`; returns the paths. */
export function writeExperiment(result: ExperimentResult, dir: string): string[] {
  mkdirSync(join(dir, 'runs'), { recursive: true });
  const files: string[] = [];
  for (const r of result.runs) {
    const f = join(dir, 'runs', `${r.optimizer}-seed${r.seed}.json`);
    writeFileSync(
      f,
      `${JSON.stringify({ experiment: result.experiment, title: result.title, config: result.config, ...r }, null, 1)}\n`,
    );
    files.push(f);
  }
  const panels = figurePanels(result);
  const columns = panels.length > 2 ? 2 : panels.length;
  const svg = join(dir, 'figure.svg'),
    png = join(dir, 'figure.png'),
    json = join(dir, 'results.json');
  writeFileSync(svg, lineChart(panels, { columns, width: 400, height: 300 }));
  writeFileSync(png, lineChartPng(panels, { columns, width: 400, height: 300 }));
  files.push(svg, png, json);
  result.files = files;
  writeFileSync(json, `${JSON.stringify(result, null, 1)}\n`);
  return files;
}

/** A plain-text table of the summary, one line per optimizer. */
export function summaryTable(result: ExperimentResult): string {
  const rows = Object.values(result.summary) as OptimizerSummary[];
  if (rows.length === 0) return '(no runs)';
  const f = (v: number | null | undefined, d = 3): string =>
    v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d);
  const ep = rows[0]!.epoch,
    t = rows[0]!.time;
  const val = rows.some((r) => r.valErrorAtEpoch !== undefined);
  const head = [
    'optimizer',
    `loss@epoch ${ep ?? '-'}`,
    `loss@${t === null ? '-' : t.toFixed(0)}s`,
    'final loss (epoch)',
    's/epoch (cpu)',
    's/epoch (wall)',
    'warm start (cpu s)',
    ...(val ? ['val error'] : []),
  ];
  const lines = rows.map((r) => [
    r.label,
    `${f(r.lossAtEpoch)} ± ${f(r.lossAtEpochStd)}`,
    f(r.lossAtTime),
    `${f(r.finalLoss)} (${r.finalEpoch ?? '-'})`,
    f(r.cpuPerEpoch, 1),
    f(r.wallPerEpoch, 1),
    f(r.warmStartCpu, 1),
    ...(val ? [f(r.valErrorAtEpoch, 4)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [head, ...lines].map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}
