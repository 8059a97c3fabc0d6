/**
 * `tensornormal experiment charlm`: a small decoder-only transformer (models.transformerLM: token and learned
 * position embeddings, pre-norm causal encoder layers, tied output projection) trained as a character-level
 * language model on Debian's `fortunes` corpus, with TNT, AdamW, SGD-m, Shampoo and KFAC. The paper never ran
 * this: what it measures is whether TNT's Kronecker-factored preconditioner, which needs no layer-specific
 * derivation, works on every tensor of an attention model (embeddings, packed q/k/v projections, LayerNorms,
 * biases), where KFAC covers only the Linear layers (attention's output projection, the feed-forward blocks and the
 * tied head) and leaves the rest to its plain momentum direction.
 *
 * Data: the corpus (data.fortunes()), characters as tokens (data.CharTokenizer), blocks of context + 1 characters,
 * a seeded 10% of them held out (data.textSplit). Every `evalEvery` steps: the validation loss in bits per
 * character (mean token cross-entropy / ln 2) on a fixed set of held-out windows. Clock: process time (user +
 * system CPU seconds) of the training steps, evaluation excluded. TNT and KFAC use the sampled likelihood
 * SequenceCategorical (one token drawn per position); Shampoo the true gradient.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tidy, manualSeed, noGrad, data, models, SequenceCategorical, type Tensor } from 'tensornormal';
import { makeOptimizer } from './run.js';
import { OPTIMIZERS, OPTIMIZER_LABELS, type Hyper, type OptimizerName } from './hyper.js';
import { aggregateAligned, aggregateInterpolated, meanStd, type AggregateCurve } from './aggregate.js';
import { lineChart, type Panel } from './svg.js';
import { lineChartPng } from './png.js';

/**
 * Defaults: the learning rates a grid of lr x {1/3, 1, 3} chose on this experiment's small configuration (width 64,
 * 2 layers, context 64, batch 32, 100 steps; docs/experiments.md); KFAC's, Shampoo's and SGD-m's are at an edge of
 * their grid.
 */
export const CHARLM_DEFAULTS: Record<OptimizerName, Hyper> = {
  tnt: { lr: 3e-3, damping: 0.1, weightDecay: 0, statsEvery: 1, inverseEvery: 20 },
  shampoo: { lr: 9e-3, damping: 1e-4, weightDecay: 0, statsEvery: 1, inverseEvery: 20 },
  kfac: { lr: 9e-3, damping: 0.1, weightDecay: 0, statsEvery: 1, inverseEvery: 20 },
  adam: { lr: 3e-3, damping: 1e-8, weightDecay: 0.01 },
  sgd: { lr: 0.1, momentum: 0.9 },
};

export interface CharLMExperimentOptions {
  optimizers?: OptimizerName[];
  /** Runs per optimizer, seeds firstSeed..firstSeed+n-1 (default 2). */
  seeds?: number;
  /** The first seed (default 0): one seed per process with `seeds: 1, firstSeed: k`, merged by mergeCharLMResults. */
  firstSeed?: number;
  /** Training steps per run (default 300). */
  steps?: number;
  /** Stop a run after this many process seconds of training. */
  timeBudget?: number;
  batchSize?: number;
  contextLength?: number;
  dModel?: number;
  nLayers?: number;
  nHead?: number;
  /** Validate every this many steps (default 25) on `valWindows` held-out windows (default 256). */
  evalEvery?: number;
  valWindows?: number;
  /** Use only the first this many characters of the corpus. */
  limitChars?: number;
  /** The corpus folder (default /usr/share/games/fortunes). */
  dir?: string;
  overrides?: Partial<Record<OptimizerName, Partial<Hyper>>>;
  /** First try lr x {1/3, 1, 3} for each optimizer (one seed, `gridSteps` steps) and keep the best final val bpc. */
  grid?: boolean;
  gridSteps?: number;
  onProgress?: (e: CharLMEvent) => void;
}

export type CharLMEvent =
  | {
      type: 'eval';
      phase: 'grid' | 'main';
      optimizer: OptimizerName;
      seed: number;
      lr: number;
      step: number;
      steps: number;
      cpu: number;
      valBpc: number;
      trainBpc: number;
    }
  | { type: 'grid-chosen'; optimizer: OptimizerName; hp: Hyper; valBpc: number };

export interface CharLMPoint {
  step: number;
  /** Process seconds of training so far. */
  cpu: number;
  wall: number;
  /** Mean training loss (bits per character) since the previous point. */
  trainBpc: number;
  valBpc: number;
}

export interface CharLMRun {
  optimizer: OptimizerName;
  label: string;
  seed: number;
  hyperparameters: Hyper;
  points: CharLMPoint[];
  steps: number;
  stoppedBy: 'steps' | 'time-budget' | 'diverged';
  cpu: number;
  cpuPerStep: number;
}

export interface CharLMResult {
  experiment: 'charlm';
  config: Record<string, unknown>;
  hyperparameters: Partial<Record<OptimizerName, Hyper>>;
  grid: Partial<Record<OptimizerName, { lr: number; valBpc: number }[]>> | null;
  runs: CharLMRun[];
  aggregate: Partial<Record<OptimizerName, { byStep: AggregateCurve; byTime: AggregateCurve }>>;
  summary: Partial<
    Record<
      OptimizerName,
      { label: string; finalValBpc: number; finalValBpcStd: number; steps: number; cpuPerStep: number }
    >
  >;
  seconds: number;
  files?: string[];
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface Corpus {
  vocab: number;
  train: data.TensorDataset<[Tensor, Tensor]>;
  valX: Tensor;
  valY: Tensor;
  chars: number;
}

function loadCorpus(
  o: Required<Pick<CharLMExperimentOptions, 'contextLength' | 'valWindows'>> & CharLMExperimentOptions,
): Corpus {
  let text = data.fortunes(o.dir === undefined ? {} : { dir: o.dir });
  if (o.limitChars !== undefined) text = text.slice(0, o.limitChars);
  const tok = data.CharTokenizer.fromText(text);
  const { train, val } = data.textSplit(tok.encode(text), {
    contextLength: o.contextLength,
    valFraction: 0.1,
    seed: 0,
  });
  const n = Math.min(o.valWindows, val.length);
  const [valX, valY] = tidy(() => [
    val.tensors[0].narrow(0, 0, n).clone().keep(),
    val.tensors[1].narrow(0, 0, n).clone().keep(),
  ]);
  val.dispose();
  return { vocab: tok.vocabSize, train, valX: valX!, valY: valY!, chars: text.length };
}

/** One run: `steps` steps of one optimizer from one seed; validation every `evalEvery` steps. */
function trainRun(
  name: OptimizerName,
  hp: Hyper,
  seed: number,
  corpus: Corpus,
  o: Required<
    Pick<
      CharLMExperimentOptions,
      'steps' | 'batchSize' | 'contextLength' | 'dModel' | 'nLayers' | 'nHead' | 'evalEvery'
    >
  > &
    CharLMExperimentOptions,
  phase: 'grid' | 'main',
): CharLMRun {
  manualSeed(seed);
  const model = models.transformerLM({
    vocabSize: corpus.vocab,
    contextLength: o.contextLength,
    dModel: o.dModel,
    nLayers: o.nLayers,
    nHead: o.nHead,
  });
  const opt = makeOptimizer(name, model, hp);
  const lik = new SequenceCategorical();
  const loader = new data.DataLoader(corpus.train, { batchSize: o.batchSize, shuffle: true, seed, dropLast: true });
  const LN2 = Math.log(2);
  const validate = (): number =>
    noGrad(() => {
      model.eval();
      let tot = 0;
      const n = corpus.valX.shape[0]!;
      for (let i = 0; i < n; i += 64)
        tidy(() => {
          const k = Math.min(64, n - i);
          const out = model.call(corpus.valX.narrow(0, i, k));
          tot += lik.loss(out, corpus.valY.narrow(0, i, k), { reduction: 'sum' }).item() as number;
        });
      model.train();
      return tot / (n * o.contextLength) / LN2;
    });
  const points: CharLMPoint[] = [];
  let cpu = 0;
  let wall = 0;
  let step = 0;
  let since = 0,
    sinceN = 0;
  let stoppedBy: CharLMRun['stoppedBy'] = 'steps';
  const record = (): void => {
    const valBpc = validate();
    const p = { step, cpu, wall, trainBpc: sinceN > 0 ? since / sinceN / LN2 : NaN, valBpc };
    points.push(p);
    since = 0;
    sinceN = 0;
    o.onProgress?.({
      type: 'eval',
      phase,
      optimizer: name,
      seed,
      lr: hp.lr,
      step,
      steps: o.steps,
      cpu,
      valBpc,
      trainBpc: p.trainBpc,
    });
  };
  try {
    record();
    outer: for (let epoch = 0; ; epoch++) {
      loader.setEpoch?.(epoch);
      for (const [x, y] of loader) {
        const c0 = cpuNow(),
          w0 = performance.now();
        const loss = tidy(() => {
          const out = model.call(x);
          opt.beforeBackward?.(out, lik);
          const l = lik.loss(out, y);
          l.backward();
          opt.step();
          opt.zeroGrad();
          return l.item() as number;
        });
        x.dispose();
        y.dispose();
        cpu += cpuNow() - c0;
        wall += (performance.now() - w0) / 1000;
        step++;
        if (!Number.isFinite(loss)) {
          stoppedBy = 'diverged';
          points.push({ step, cpu, wall, trainBpc: NaN, valBpc: NaN });
          break outer;
        }
        since += loss;
        sinceN++;
        const over = o.timeBudget !== undefined && cpu >= o.timeBudget;
        if (step % o.evalEvery === 0 || step === o.steps || over) record();
        if (step >= o.steps) break outer;
        if (over) {
          stoppedBy = 'time-budget';
          break outer;
        }
      }
    }
  } finally {
    (opt as { dispose?: () => void }).dispose?.();
    model.dispose();
  }
  return {
    optimizer: name,
    label: name === 'adam' ? 'AdamW' : OPTIMIZER_LABELS[name],
    seed,
    hyperparameters: hp,
    points,
    steps: step,
    stoppedBy,
    cpu,
    cpuPerStep: step > 0 ? cpu / step : NaN,
  };
}

export async function runCharLMExperiment(options: CharLMExperimentOptions = {}): Promise<CharLMResult> {
  const o = {
    seeds: 2,
    steps: 300,
    batchSize: 32,
    contextLength: 128,
    dModel: 128,
    nLayers: 4,
    nHead: 4,
    evalEvery: 25,
    valWindows: 256,
    gridSteps: 100,
    ...options,
  };
  const start = cpuNow();
  const optimizers = o.optimizers ?? [...OPTIMIZERS];
  const corpus = loadCorpus(o);
  try {
    const hps = Object.fromEntries(
      OPTIMIZERS.map((k) => [k, { ...CHARLM_DEFAULTS[k], ...(o.overrides?.[k] ?? {}) }]),
    ) as Record<OptimizerName, Hyper>;
    let grid: CharLMResult['grid'] = null;
    if (o.grid) {
      grid = {};
      for (const k of optimizers) {
        const tried: { lr: number; valBpc: number }[] = [];
        for (const f of [1 / 3, 1, 3]) {
          const hp = { ...hps[k], lr: +(hps[k].lr * f).toPrecision(3) };
          const r = trainRun(k, hp, 1000, corpus, { ...o, steps: o.gridSteps }, 'grid');
          const last = r.points[r.points.length - 1]!.valBpc;
          tried.push({ lr: hp.lr, valBpc: Number.isFinite(last) ? last : Infinity });
        }
        grid[k] = tried;
        const best = tried.reduce((a, b) => (b.valBpc < a.valBpc ? b : a));
        hps[k] = { ...hps[k], lr: best.lr };
        o.onProgress?.({ type: 'grid-chosen', optimizer: k, hp: hps[k], valBpc: best.valBpc });
      }
    }
    const runs: CharLMRun[] = [];
    for (const k of optimizers)
      for (let s = o.firstSeed ?? 0; s < (o.firstSeed ?? 0) + o.seeds; s++)
        runs.push(await Promise.resolve(trainRun(k, hps[k], s, corpus, o, 'main')));
    const { aggregate, summary } = summarize(runs);
    return {
      experiment: 'charlm',
      config: {
        corpus: 'Debian fortunes (data.fortunes())',
        characters: corpus.chars,
        vocabulary: corpus.vocab,
        trainWindows: corpus.train.length,
        valWindows: corpus.valX.shape[0],
        model: {
          contextLength: o.contextLength,
          dModel: o.dModel,
          nLayers: o.nLayers,
          nHead: o.nHead,
          tiedWeights: true,
        },
        parameters: tidy(() => {
          const m = models.transformerLM({
            vocabSize: corpus.vocab,
            contextLength: o.contextLength,
            dModel: o.dModel,
            nLayers: o.nLayers,
            nHead: o.nHead,
          });
          const n = m.parameters().reduce((s, p) => s + p.numel(), 0);
          m.dispose();
          return n;
        }),
        batchSize: o.batchSize,
        steps: o.steps,
        seeds: o.seeds,
        timeBudget: o.timeBudget ?? null,
        evalEvery: o.evalEvery,
        likelihood: 'SequenceCategorical (token cross-entropy, mean over B * T positions)',
        clock: 'process time (CPU seconds, user + system) of the training steps, validation excluded',
      },
      hyperparameters: Object.fromEntries(optimizers.map((k) => [k, hps[k]])),
      grid,
      runs,
      aggregate,
      summary,
      seconds: cpuNow() - start,
    };
  } finally {
    corpus.train.dispose();
    corpus.valX.dispose();
    corpus.valY.dispose();
  }
}

/** Mean and spread over seeds of each optimizer's validation curve (by step and by process time), and the finals. */
function summarize(runs: CharLMRun[]): Pick<CharLMResult, 'aggregate' | 'summary'> {
  const optimizers = [...new Set(runs.map((r) => r.optimizer))];
  const aggregate: CharLMResult['aggregate'] = {};
  const summary: CharLMResult['summary'] = {};
  for (const k of optimizers) {
    const rs = runs.filter((r) => r.optimizer === k);
    const curves = (x: (p: CharLMPoint) => number): { x: number[]; y: number[] }[] =>
      rs.map((r) => ({ x: r.points.map(x), y: r.points.map((p) => p.valBpc) }));
    aggregate[k] = {
      byStep: aggregateAligned(curves((p) => p.step)),
      byTime: aggregateInterpolated(
        curves((p) => p.cpu),
        60,
      ),
    };
    const finals = meanStd(rs.map((r) => r.points[r.points.length - 1]!.valBpc));
    summary[k] = {
      label: rs[0]!.label,
      finalValBpc: finals.mean,
      finalValBpcStd: finals.std,
      steps: Math.min(...rs.map((r) => r.steps)),
      cpuPerStep: meanStd(rs.map((r) => r.cpuPerStep)).mean,
    };
  }
  return { aggregate, summary };
}

/**
 * One result from several (runs of other optimizers, or other seeds, made with the same config): the runs side by
 * side, the hyperparameters and grids merged, the aggregates and the summary recomputed.
 */
export function mergeCharLMResults(results: CharLMResult[]): CharLMResult {
  if (results.length === 0) throw new RangeError('mergeCharLMResults: no results');
  const runs = results.flatMap((r) => r.runs);
  const grid = results.some((r) => r.grid !== null) ? Object.assign({}, ...results.map((r) => r.grid ?? {})) : null;
  return {
    experiment: 'charlm',
    config: { ...results[0]!.config, seeds: new Set(runs.map((r) => r.seed)).size },
    hyperparameters: Object.assign({}, ...results.map((r) => r.hyperparameters)),
    grid,
    runs,
    ...summarize(runs),
    seconds: results.reduce((a, r) => a + r.seconds, 0),
  };
}

/** A markdown table of the final validation bits per character. */
export function charlmTable(r: CharLMResult): string {
  const rows = Object.entries(r.summary).map(([k, s]) => {
    const hp = r.hyperparameters[k as OptimizerName]!;
    const hpText = Object.entries(hp)
      .map(([a, b]) => `${a} ${b}`)
      .join(', ');
    return `| ${s.label} | ${s.finalValBpc.toFixed(3)} ± ${s.finalValBpcStd.toFixed(3)} | ${s.steps} | ${(s.cpuPerStep * 1000).toFixed(0)} | ${hpText} |`;
  });
  return [
    '| optimizer | val bits/char (mean ± std over seeds) | steps | CPU ms/step | hyperparameters |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** Writes results.json, figure.svg and figure.png (validation bits per character against steps and process time). */
export function writeCharLM(r: CharLMResult, out: string): string[] {
  mkdirSync(out, { recursive: true });
  const series = (by: 'byStep' | 'byTime'): Panel['series'] =>
    Object.entries(r.aggregate).map(([k, a]) => ({
      name: r.summary[k as OptimizerName]!.label,
      x: a[by].x,
      y: a[by].mean,
      band: a[by].std,
    }));
  const panels: Panel[] = [
    { title: 'char LM on fortunes', xLabel: 'steps', yLabel: 'validation bits / char', series: series('byStep') },
    {
      title: 'char LM on fortunes',
      xLabel: 'process time (s)',
      yLabel: 'validation bits / char',
      series: series('byTime'),
    },
  ];
  const files = [join(out, 'results.json'), join(out, 'figure.svg'), join(out, 'figure.png')];
  writeFileSync(files[0]!, `${JSON.stringify({ ...r, files }, null, 1)}\n`);
  writeFileSync(files[1]!, lineChart(panels, { columns: 2 }));
  writeFileSync(files[2]!, lineChartPng(panels, { columns: 2 }));
  return files;
}
