// The experiments and the `tensornormal` command: aggregation over seeds against hand-computed values, the grid
// ladder, the PNG encoder and rasteriser, the SVG figure, a tiny end-to-end autoencoder experiment (files, structure,
// figures), the time budget, the grid, progress output, and the command line's parsing and errors.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import {
  meanStd,
  interpolate,
  aggregateAligned,
  aggregateInterpolated,
  ladder,
  gridCandidates,
  aggregateRuns,
  encodePng,
  crc32,
  lineChart,
  lineChartPng,
  chartDrawing,
  Raster,
  main,
  parseCommand,
  UsageError,
  mergeCharLMResults,
  type CharLMResult,
  type ExperimentResult,
  type RunResult,
} from '../experiments/index.js';
import { openblasThreads } from '../experiments/cli.js';
import { readCpuinfo, threadsArgument } from '../lib/runtime-env.js';
import { noLeak, withTempDir } from './support/helpers.js';
import * as torch from '../lib/index.js';
import { readEventFile } from './support/tfevents.js';
import { runFisherSimilarity, tntMethod } from '../experiments/fisher-similarity.js';

/** A stream that records what is written; `isTTY` as given. */
function sink(isTTY = false): { write(s: string): boolean; isTTY: boolean; columns: number; text: string } {
  return {
    isTTY,
    columns: 160,
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

async function run(argv: string[], tty = false): Promise<{ code: number; out: string; err: string }> {
  const stdout = sink(tty),
    stderr = sink();
  const code = await main(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

/** Width and height from a PNG's IHDR chunk, after checking the signature and every chunk's CRC. */
function pngInfo(buf: Buffer): { width: number; height: number; pixels: Buffer } {
  expect([...buf.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let off = 8;
  const idat: Buffer[] = [];
  let width = 0,
    height = 0;
  const types: string[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    expect(buf.readUInt32BE(off + 8 + len), `CRC of ${type}`).toBe(crc32(buf.subarray(off + 4, off + 8 + len)));
    types.push(type);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect([body[8], body[9], body[10], body[11], body[12]]).toEqual([8, 2, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(body);
    off += 12 + len;
  }
  expect(types[0]).toBe('IHDR');
  expect(types[types.length - 1]).toBe('IEND');
  return { width, height, pixels: inflateSync(Buffer.concat(idat)) };
}

describe('aggregation over seeds', () => {
  it('meanStd: mean, population std (ddof 0) and standard error, by hand', () => {
    // [1, 2, 4]: mean 7/3; squared deviations 16/9, 1/9, 25/9 -> variance 42/27 = 14/9
    const m = meanStd([1, 2, 4]);
    expect(m.mean).toBeCloseTo(7 / 3, 14);
    expect(m.std).toBeCloseTo(Math.sqrt(14 / 9), 14);
    expect(m.sem).toBeCloseTo(Math.sqrt(14 / 9) / Math.sqrt(3), 14);
    expect(m.n).toBe(3);
    expect(meanStd([5])).toEqual({ mean: 5, std: 0, sem: 0, n: 1 });
    expect(meanStd([NaN, 3, Infinity, 1])).toMatchObject({ mean: 2, std: 1, n: 2 });
    expect(meanStd([]).n).toBe(0);
  });

  it('aggregateAligned: per epoch over the epochs every run has', () => {
    const a = aggregateAligned([
      { x: [1, 2, 3], y: [10, 6, 4] },
      { x: [1, 2], y: [12, 8] },
    ]);
    expect(a.x).toEqual([1, 2]);
    expect(a.mean).toEqual([11, 7]);
    expect(a.std).toEqual([1, 1]);
    expect(a.sem[0]).toBeCloseTo(1 / Math.SQRT2, 14);
    expect(a.runs).toBe(2);
  });

  it('interpolate: linear between points, NaN outside', () => {
    expect(interpolate([0, 1, 3], [10, 20, 0], 2)).toBe(10);
    expect(interpolate([0, 1, 3], [10, 20, 0], 0.25)).toBe(12.5);
    expect(interpolate([0, 1, 3], [10, 20, 0], 3)).toBe(0);
    expect(interpolate([0, 1, 3], [10, 20, 0], 3.5)).toBeNaN();
    expect(interpolate([0, 1, 3], [10, 20, 0], -1)).toBeNaN();
  });

  it('aggregateInterpolated: a common time grid from the latest start to the earliest end', () => {
    // run A: loss 10 - t on [0, 4]; run B: loss 2 t on [1, 3] (hand values at t = 1, 2, 3)
    const a = aggregateInterpolated(
      [
        { x: [0, 2, 4], y: [10, 8, 6] },
        { x: [1, 3], y: [2, 6] },
      ],
      3,
    );
    expect(a.x).toEqual([1, 2, 3]);
    // t=1: (9 + 2) / 2, std 3.5; t=2: (8 + 4) / 2, std 2; t=3: (7 + 6) / 2, std 0.5
    expect(a.mean).toEqual([5.5, 6, 6.5]);
    expect(a.std).toEqual([3.5, 2, 0.5]);
  });

  it('aggregateRuns: per optimizer, by epoch and by process time', () => {
    const mk = (optimizer: 'tnt' | 'sgd', seed: number, losses: number[]): RunResult => ({
      optimizer,
      label: optimizer,
      seed,
      hyperparameters: { lr: 1 },
      epochs: losses.map((loss, i) => ({ epoch: i + 1, loss, cpu: i + 1, wall: i + 1, steps: 1, lr: 1 })),
      points: losses.map((loss, i) => ({ step: i + 1, epoch: i + 1, cpu: i + 1, wall: i + 1, loss })),
      warmStart: null,
      steps: losses.length,
      stoppedBy: 'epochs',
      divergedAt: null,
      error: null,
      cpu: losses.length,
      wall: losses.length,
      cpuPerEpoch: 1,
      wallPerEpoch: 1,
    });
    const agg = aggregateRuns([mk('tnt', 0, [4, 2]), mk('tnt', 1, [6, 4]), mk('sgd', 0, [5, 5])], ['tnt', 'sgd']);
    expect(agg.tnt!.lossByEpoch).toMatchObject({ x: [1, 2], mean: [5, 3], std: [1, 1], runs: 2 });
    expect(agg.tnt!.lossByTime.x[0]).toBe(1);
    expect(agg.tnt!.lossByTime.mean[0]).toBe(5);
    expect(agg.tnt!.lossByTime.mean[agg.tnt!.lossByTime.mean.length - 1]).toBe(3);
    expect(agg.sgd!.lossByEpoch.std).toEqual([0, 0]);
  });
});

describe('grid', () => {
  it('ladder: the neighbours on the 1-3-10 ladder', () => {
    expect(ladder(1e-4)).toEqual([3e-5, 1e-4, 3e-4]);
    expect(ladder(3e-3)).toEqual([1e-3, 3e-3, 1e-2]);
    expect(ladder(0.1)).toEqual([0.03, 0.1, 0.3]);
    expect(ladder(0.3)).toEqual([0.1, 0.3, 1]);
  });
  it('gridCandidates: 3 x 3 with a damping, 3 learning rates for SGD-m', () => {
    const g = gridCandidates('tnt', { lr: 1e-4, damping: 0.1, statsEvery: 1 });
    expect(g).toHaveLength(9);
    expect(g).toContainEqual({ lr: 3e-4, damping: 0.03, statsEvery: 1 });
    expect(gridCandidates('sgd', { lr: 3e-3, momentum: 0.9 }).map((h) => h.lr)).toEqual([1e-3, 3e-3, 1e-2]);
  });
});

describe('PNG and SVG figures', () => {
  it('crc32: the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('encodePng: signature, IHDR, CRCs, filter-0 rows that inflate back to the pixels', () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const { width, height, pixels } = pngInfo(encodePng(3, 2, rgb));
    expect([width, height]).toEqual([3, 2]);
    expect([...pixels]).toEqual([0, ...rgb.slice(0, 9), 0, ...rgb.slice(9)]);
    expect(() => encodePng(2, 2, rgb)).toThrow('Expected 12 RGB bytes for 2 x 2 but received 18');
    expect(() => encodePng(0, 2, rgb)).toThrow('Expected positive integer PNG dimensions but received 0 x 2');
  });

  it('Raster: lines, translucent polygons and text land where drawn', () => {
    const r = new Raster(20, 10, 1);
    r.polyline(
      [
        [0, 5],
        [20, 5],
      ],
      '#ff0000',
      1,
    );
    r.polygon(
      [
        [0, 0],
        [4, 0],
        [4, 4],
        [0, 4],
      ],
      '#0000ff',
      0.5,
    );
    const px = (x: number, y: number): number[] => [...r.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3)];
    expect(px(10, 4)[0]).toBeGreaterThan(200); // the line's row (y 4..5 covers pixel row 4 half, 5 half)
    expect(px(10, 8)).toEqual([255, 255, 255]);
    expect(px(1, 1)).toEqual([128, 128, 255]); // white + 50% blue
    const t = new Raster(20, 10, 1);
    t.text(0, 8, 'I');
    // 'I' is 01110 / 00100 x5 / 01110: its stem is column 2, rows 1..7 above the baseline at y = 8
    expect([...t.data.subarray((4 * 20 + 2) * 3, (4 * 20 + 2) * 3 + 3)]).toEqual([0, 0, 0]);
    expect([...t.data.subarray((4 * 20 + 0) * 3, (4 * 20 + 0) * 3 + 3)]).toEqual([255, 255, 255]);
  });

  it('lineChart and lineChartPng draw the same panels: one polyline per series, bands clipped to the plot', () => {
    const panels = [1, 2].map((k) => ({
      title: `panel ${k}`,
      xLabel: 'epoch',
      yLabel: 'training loss',
      logY: true,
      series: ['TNT', 'Adam', 'SGD-m'].map((name, i) => ({
        name,
        x: [1, 2, 3],
        y: [100 - i, 80 - i, 70 - i],
        band: [150, 1, 1],
      })),
    }));
    const svg = lineChart(panels, { columns: 2 });
    expect(svg.match(/<polyline /g)).toHaveLength(6);
    expect(svg.match(/<polygon /g)).toHaveLength(6);
    expect(svg.match(/<clipPath /g)).toHaveLength(2);
    expect(svg).toContain('>training loss</text>');
    const d = chartDrawing(panels, { columns: 2 });
    expect([d.width, d.height]).toEqual([640, 264]);
    const { width, height, pixels } = pngInfo(lineChartPng(panels, { columns: 2, scale: 2 }));
    expect([width, height]).toEqual([1280, 528]);
    expect(pixels.length).toBe(528 * (1280 * 3 + 1));
  });
});

describe('tensornormal experiment autoencoder, end to end', () => {
  it('writes results.json, one JSON per run, figure.svg and figure.png; frees every tensor', async () => {
    await withTempDir('tn-exp-', async (dir) => {
      const argv = [
        'experiment',
        'autoencoder',
        '--dataset',
        'mnist-digits',
        '--widths',
        '784,32,8,32,784',
        '--limit',
        '256',
        '--batch',
        '64',
        '--seeds',
        '2',
        '--epochs',
        '2',
        '--optimizers',
        'tnt,adam',
        '--warm-batches',
        '2',
        '--log-every',
        '1',
        '--out',
        dir,
      ];
      const { code, out, err } = await noLeak(() => run(argv));
      expect(err).toBe('');
      expect(code).toBe(0);
      // JSON lines when stdout is not a terminal
      const events = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string });
      expect(events.filter((e) => e.event === 'run-end')).toHaveLength(4);
      expect(events.filter((e) => e.event === 'warm-start')).toHaveLength(2);
      expect(events[events.length - 1]!.event).toBe('summary');

      const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResult;
      expect(r.experiment).toBe('autoencoder');
      expect(r.config).toMatchObject({
        dataset: 'mnist-digits',
        samples: 256,
        widths: [784, 32, 8, 32, 784],
        batchSize: 64,
        epochs: 2,
        warmBatches: 2,
      });
      expect(r.hyperparameters).toEqual({
        tnt: {
          lr: 1e-4,
          damping: 0.1,
          statsEvery: 2,
          inverseEvery: 20,
          statsBatch: 0.25,
          statDecayPerStep: 1,
          klClip: 0.01,
        },
        adam: { lr: 1e-4, damping: 1e-4 },
      });
      expect(r.grid).toBeNull();
      expect(r.runs.map((x) => `${x.optimizer}${x.seed}`)).toEqual(['tnt0', 'tnt1', 'adam0', 'adam1']);
      for (const x of r.runs) {
        expect(x.stoppedBy).toBe('epochs');
        expect(x.steps).toBe(8);
        expect(x.epochs.map((e) => e.epoch)).toEqual([1, 2]);
        expect(x.points).toHaveLength(8);
        expect(x.points.map((p) => p.epoch)).toEqual([0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]);
        // the epoch's loss is the mean of its minibatch losses (here every point is one minibatch)
        expect(x.epochs[0]!.loss).toBeCloseTo(x.points.slice(0, 4).reduce((s, p) => s + p.loss, 0) / 4, 3);
        expect(x.epochs[1]!.cpu).toBeGreaterThan(x.epochs[0]!.cpu);
        expect(x.warmStart === null).toBe(x.optimizer === 'adam');
      }
      // the aggregate is the mean and population std of the two seeds, epoch by epoch
      const tnt = r.runs.filter((x) => x.optimizer === 'tnt');
      const ms = meanStd(tnt.map((x) => x.epochs[1]!.loss));
      expect(r.aggregate.tnt!.lossByEpoch.mean[1]).toBeCloseTo(ms.mean, 10);
      expect(r.aggregate.tnt!.lossByEpoch.std[1]).toBeCloseTo(ms.std, 10);
      expect(r.summary.tnt).toMatchObject({ label: 'TNT', epoch: 2, runs: 2 });
      expect(r.summary.tnt!.lossAtEpoch).toBeCloseTo(ms.mean, 10);
      expect(r.summary.adam!.cpuPerEpoch).toBeGreaterThan(0);

      expect(readdirSync(join(dir, 'runs')).sort()).toEqual([
        'adam-seed0.json',
        'adam-seed1.json',
        'tnt-seed0.json',
        'tnt-seed1.json',
      ]);
      const one = JSON.parse(readFileSync(join(dir, 'runs', 'tnt-seed1.json'), 'utf8')) as RunResult;
      expect(one).toMatchObject({ optimizer: 'tnt', seed: 1, label: 'TNT' });
      // the figure: two panels (per epoch, per process time), one line and one band per optimizer
      const svg = readFileSync(join(dir, 'figure.svg'), 'utf8');
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      // (On libtorch 2.6 one Adam run of 8 tiny steps took 0.04 s of process time against TNT's 1.1 s: its
      // per-time line then spans a few pixels and the chart may drop it; the per-epoch panel always has both.)
      expect(svg.match(/<polyline /g)!.length).toBeGreaterThanOrEqual(3);
      expect(svg.match(/<polyline /g)!.length).toBeLessThanOrEqual(4);
      expect(svg.match(/<polygon /g)!.length).toBeGreaterThanOrEqual(3);
      expect(svg.match(/<polygon /g)!.length).toBeLessThanOrEqual(4);
      expect(svg).toContain('>process time (s)</text>');
      const png = pngInfo(readFileSync(join(dir, 'figure.png')));
      expect([png.width, png.height]).toEqual([2 * 800, 2 * (300 + 24)]);
    });
  });

  it('--time-budget stops each run after the step that passes it; --grid records its candidates and choice', async () => {
    await withTempDir('tn-exp-', async (dir) => {
      const argv = [
        'experiment',
        'autoencoder',
        '--dataset',
        'mnist-digits',
        '--widths',
        '784,16,784',
        '--limit',
        '128',
        '--batch',
        '64',
        '--seeds',
        '1',
        '--epochs',
        '3',
        '--optimizers',
        'adam',
        '--grid',
        '--grid-epochs',
        '1',
        '--time-budget',
        '0.000001',
        '--out',
        dir,
      ];
      const { code, err } = await run(argv);
      expect(err).toBe('');
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResult;
      expect(r.runs).toHaveLength(1);
      expect(r.runs[0]).toMatchObject({ stoppedBy: 'time-budget', steps: 1, epochs: [] });
      const g = r.grid!.byOptimizer.adam!;
      expect(g.candidates.map((c) => [c.hp.lr, c.hp.damping])).toEqual([
        [3e-5, 3e-5],
        [3e-5, 1e-4],
        [3e-5, 3e-4],
        [1e-4, 3e-5],
        [1e-4, 1e-4],
        [1e-4, 3e-4],
        [3e-4, 3e-5],
        [3e-4, 1e-4],
        [3e-4, 3e-4],
      ]);
      const best = g.candidates.reduce((a, b) => (b.loss < a.loss ? b : a));
      expect(g.chosen).toEqual(best.hp);
      expect(r.hyperparameters.adam).toEqual(best.hp);
      expect(r.runs[0]!.hyperparameters).toEqual(best.hp);
    });
  });

  it('a run that diverges stops and is recorded as diverged; the others go on', async () => {
    await withTempDir('tn-exp-', async (dir) => {
      const argv = [
        'experiment',
        'autoencoder',
        '--dataset',
        'mnist-digits',
        '--widths',
        '784,16,784',
        '--limit',
        '128',
        '--batch',
        '64',
        '--seeds',
        '1',
        '--epochs',
        '2',
        '--optimizers',
        'tnt,adam,kfac',
        '--set',
        'tnt.lr=1e30',
        '--set',
        'tnt.klClip=0', // the clip (on by default here) would hold even this step to its bound
        '--set',
        'adam.lr=1e30',
        '--warm-batches',
        '1',
        '--out',
        dir,
      ];
      const { code, err } = await noLeak(() => run(argv));
      expect(err).toBe('');
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResult;
      const [tnt, adam, kfac] = r.runs;
      // the first step's loss is computed before the update; the second one sees the exploded weights
      expect(tnt).toMatchObject({ stoppedBy: 'diverged', divergedAt: 2, steps: 2, epochs: [] });
      expect(adam).toMatchObject({ stoppedBy: 'diverged', divergedAt: 2, steps: 2, epochs: [] });
      expect(kfac).toMatchObject({ stoppedBy: 'epochs', divergedAt: null, error: null, steps: 4 });
      // a diverged run says what to change: TNT names its learning rate, damping and update-size control
      expect(tnt!.error).toMatch(
        /at step 2: training diverged; TNT: lower the learning rate \(now 1e\+30.*damping.*klClip/,
      );
      expect(adam!.error).toMatch(/at step 2: training diverged; lower the learning rate$/);
      expect(readFileSync(join(dir, 'figure.svg'), 'utf8')).toContain('</svg>');
    });
  });

  it('on a terminal: a progress line with optimizer, seed, epoch, step, loss, elapsed and ETA', async () => {
    await withTempDir('tn-exp-', async (dir) => {
      const { code, out } = await run(
        [
          'experiment',
          'autoencoder',
          '--dataset',
          'mnist-digits',
          '--widths',
          '784,16,784',
          '--limit',
          '64',
          '--batch',
          '32',
          '--seeds',
          '1',
          '--epochs',
          '1',
          '--optimizers',
          'tnt',
          '--out',
          dir,
        ],
        true,
      );
      expect(code).toBe(0);
      expect(out).toMatch(
        /\rrun 1\/1 TNT seed 0 \| epoch 1\/1 \[[=> ]+\] \d\/2 \| loss [\d.]+ \| \d+s elapsed, ETA \d+s/,
      );
      expect(out).toContain('TNT seed 0: warm start over 2 batches');
      expect(out).toMatch(/TNT seed 0 epoch 1\/1 {2}loss [\d.]+/);
      expect(out).toContain('loss@epoch 1');
      expect(out).toContain('results.json, figure.svg, figure.png');
    });
  });
});

describe('tensornormal experiment cnn, end to end', () => {
  it('records training loss and validation error per epoch, decays the learning rate, draws four panels', async () => {
    await withTempDir('tn-exp-', async (dir) => {
      const argv = [
        'experiment',
        'cnn',
        '--model',
        'small-cnn',
        '--limit',
        '96',
        '--val-limit',
        '50',
        '--batch',
        '32',
        '--seeds',
        '1',
        '--epochs',
        '2',
        '--optimizers',
        'tnt,sgd',
        '--warm-batches',
        '1',
        '--out',
        dir,
      ];
      const { code, err } = await noLeak(() => run(argv));
      expect(err).toBe('');
      expect(code).toBe(0);
      const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResult;
      expect(r.config).toMatchObject({
        dataset: 'fashion-mnist',
        model: 'small-cnn',
        samples: 96,
        validationSamples: 50,
        batchSize: 32,
      });
      expect(r.hyperparameters.tnt).toEqual({
        lr: 1e-4,
        damping: 0.01,
        weightDecay: 10,
        statsEvery: 10,
        inverseEvery: 100,
      });
      for (const x of r.runs) {
        expect(x.epochs).toHaveLength(2);
        for (const e of x.epochs) {
          expect(e.valError).toBeGreaterThanOrEqual(0);
          expect(e.valError).toBeLessThanOrEqual(1);
          // errors of 50 images are multiples of 1/50
          expect(Math.abs(e.valError! * 50 - Math.round(e.valError! * 50))).toBeLessThan(1e-9);
          expect(e.valLoss).toBeGreaterThan(0);
        }
      }
      // 6 steps: x0.1 before steps 2 and 4 (30%, 60% of 6) for SGD-m, before steps 3 and 5 (40%, 80%) for TNT
      expect(r.runs.map((x) => x.epochs.map((e) => e.lr))).toEqual([
        [1e-4, 1e-4 * 0.1 * 0.1],
        [0.03 * 0.1, 0.03 * 0.1 * 0.1],
      ]);
      expect(r.aggregate.sgd!.valErrorByEpoch!.x).toEqual([1, 2]);
      expect(r.summary.tnt!.valErrorAtEpoch).toBe(r.runs[0]!.epochs[1]!.valError);
      const svg = readFileSync(join(dir, 'figure.svg'), 'utf8');
      expect(svg.match(/<polyline /g)).toHaveLength(8);
      expect(svg).toContain('>validation error</text>');
      const png = pngInfo(readFileSync(join(dir, 'figure.png')));
      expect([png.width, png.height]).toEqual([2 * 800, 2 * (600 + 24)]);
    });
  });
});

describe('command line', () => {
  it('parses the autoencoder flags into the experiment options', () => {
    const c = parseCommand([
      'experiment',
      'autoencoder',
      '--dataset',
      'fashion-mnist',
      '--optimizers',
      'tnt,KFAC,SGD-m',
      '--seeds',
      '3',
      '--epochs',
      '5',
      '--time-budget',
      '300',
      '--out',
      'results/ae',
      '--grid',
      '--grid-budget',
      '20',
      '--batch',
      '1000',
      '--threads',
      '2',
      '--set',
      'tnt.lr=3e-4',
      '--set',
      'kfac.inverseEvery=10',
      '--set',
      'tnt.statsBatch=0.25',
      '--set',
      'tnt.klClip=0.01',
      '--warm-batches',
      '0',
    ]);
    expect(c).toEqual({
      kind: 'autoencoder',
      out: 'results/ae',
      threads: 2,
      json: false,
      options: {
        dataset: 'fashion-mnist',
        optimizers: ['tnt', 'kfac', 'sgd'],
        seeds: 3,
        epochs: 5,
        timeBudget: 300,
        batchSize: 1000,
        warmBatches: 0,
        grid: { budget: 20, epochs: undefined },
        overrides: { tnt: { lr: 3e-4, statsBatch: 0.25, klClip: 0.01 }, kfac: { inverseEvery: 10 } },
      },
    });
    expect(parseCommand(['experiment', 'autoencoder'])).toEqual({
      kind: 'autoencoder',
      out: 'results/autoencoder',
      threads: undefined,
      json: false,
      options: {},
    });
  });

  it('parses the cnn and similarity flags', () => {
    expect(
      parseCommand([
        'experiment',
        'cnn',
        '--data',
        '/d',
        '--model',
        'vgg16bn',
        '--dataset',
        'cifar100',
        '--val-limit',
        '500',
        '--json',
      ]),
    ).toMatchObject({
      kind: 'cnn',
      json: true,
      out: 'results/cnn',
      options: { root: '/d', model: 'vgg16bn', dataset: 'cifar100', valLimit: 500 },
    });
    expect(parseCommand(['experiment', 'similarity', '--iterations', '50', '--optimizers', 'tnt,sgd'])).toMatchObject({
      kind: 'similarity',
      options: {
        iterations: 50,
        gamma: 3,
        lr: 0.1,
        batch: 100,
        seed: 0,
        every: 10,
        optimizers: ['tnt', 'sgd'],
        fisherEstimator: 'per-example',
        tntStatistics: 'batch-mean',
      },
    });
    expect(
      parseCommand(['experiment', 'similarity', '--fisher-estimator', 'batch-mean', '--tnt-statistics', 'per-example']),
    ).toMatchObject({
      options: { fisherEstimator: 'batch-mean', tntStatistics: 'per-example' },
    });
  });

  it('--help documents every flag of every experiment; exit code 0', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.out).toContain('experiment autoencoder');
    const flags: Record<string, string[]> = {
      autoencoder: [
        'dataset',
        'data',
        'widths',
        'optimizers',
        'seeds',
        'epochs',
        'time-budget',
        'batch',
        'limit',
        'warm-batches',
        'set',
        'grid',
        'grid-budget',
        'grid-epochs',
        'log-every',
        'out',
        'threads',
        'json',
        'help',
      ],
      cnn: [
        'data',
        'dataset',
        'model',
        'val-limit',
        'optimizers',
        'seeds',
        'epochs',
        'time-budget',
        'batch',
        'limit',
        'warm-batches',
        'set',
        'grid',
        'grid-budget',
        'grid-epochs',
        'log-every',
        'out',
        'threads',
        'json',
        'help',
      ],
      charlm: [
        'optimizers',
        'seeds',
        'first-seed',
        'steps',
        'time-budget',
        'batch',
        'context',
        'width',
        'layers',
        'heads',
        'eval-every',
        'val-windows',
        'limit',
        'data',
        'set',
        'grid',
        'grid-steps',
        'out',
        'threads',
        'json',
        'help',
      ],
      similarity: [
        'iterations',
        'gamma',
        'lr',
        'batch',
        'seed',
        'every',
        'optimizers',
        'fisher-estimator',
        'tnt-statistics',
        'out',
        'threads',
        'json',
        'help',
      ],
    };
    for (const [name, list] of Object.entries(flags)) {
      const h = await run(['experiment', name, '--help']);
      expect(h.code).toBe(0);
      for (const f of list) expect(h.out, `${name} --${f}`).toMatch(new RegExp(`^ {2}(-h, )?--${f}\\b`, 'm'));
    }
  });

  it('experiment charlm: every optimizer trains a tiny LM on a corpus folder; results, figure and table written', async () => {
    await withTempDir('tn-charlm-', async (dir) => {
      const corpus = join(dir, 'corpus');
      mkdirSync(corpus);
      writeFileSync(join(corpus, 'jokes'), 'To be or not to be, that is the question.\n%\n'.repeat(60));
      const out = join(dir, 'out');
      const r = await run([
        'experiment',
        'charlm',
        '--data',
        corpus,
        '--steps',
        '6',
        '--eval-every',
        '3',
        '--seeds',
        '1',
        '--width',
        '8',
        '--layers',
        '1',
        '--heads',
        '2',
        '--context',
        '16',
        '--batch',
        '8',
        '--val-windows',
        '8',
        '--out',
        out,
      ]);
      expect(r.code, r.err).toBe(0);
      const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
        runs: { optimizer: string; points: { step: number; valBpc: number }[] }[];
        summary: Record<string, { finalValBpc: number }>;
      };
      expect(res.runs.map((x) => x.optimizer)).toEqual(['tnt', 'kfac', 'shampoo', 'adam', 'sgd']);
      for (const x of res.runs) {
        expect(x.points.map((p) => p.step)).toEqual([0, 3, 6]);
        // starting from an untrained model: about log2(vocabulary) bits per character, and finite throughout
        for (const p of x.points) expect(Number.isFinite(p.valBpc)).toBe(true);
      }
      expect(pngInfo(readFileSync(join(out, 'figure.png'))).width).toBeGreaterThan(0);
      expect(readFileSync(join(out, 'figure.svg'), 'utf8')).toContain('<svg');
      // another seed in another process (--first-seed), merged with the first run's results
      const out1 = join(dir, 'out1');
      const small = ['--data', corpus, '--steps', '6', '--eval-every', '3', '--width', '8', '--layers', '1'];
      const more = ['--heads', '2', '--context', '16', '--batch', '8', '--val-windows', '8'];
      const r1 = await run(
        ['experiment', 'charlm', '--optimizers', 'sgd', '--seeds', '1', '--first-seed', '1'].concat(small, more, [
          '--out',
          out1,
        ]),
      );
      expect(r1.code, r1.err).toBe(0);
      const res1 = JSON.parse(readFileSync(join(out1, 'results.json'), 'utf8')) as CharLMResult;
      expect(res1.runs.map((x) => x.seed)).toEqual([1]);
      const merged = mergeCharLMResults([res as unknown as CharLMResult, res1]);
      expect(merged.config.seeds).toBe(2);
      expect(merged.runs.filter((x) => x.optimizer === 'sgd').map((x) => x.seed)).toEqual([0, 1]);
      const bad = await run(['experiment', 'charlm', '--width', '10', '--heads', '4']);
      expect(bad.code).toBe(2);
      expect(bad.err).toContain('--width (10) must be divisible by --heads (4)');
    });
  });

  it("`run` is the library's launcher (distributed.runCommand): its help, and its usage errors with exit code 2", async () => {
    const h = await run(['run', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^Usage: tensornormal run \[options\] script\.js/);
    const bad = await run(['run', '--nproc-per-node', '0', 'x.js']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^tensornormal run: .*\nRun 'tensornormal run --help' for the options\.\n$/);
  });

  it('bad flags: a message naming the flag, the way to the help, exit code 2', async () => {
    const cases: [string[], string][] = [
      [['frobnicate'], 'tensornormal: unknown command "frobnicate" (expected: experiment, run, board)'],
      [
        ['experiment', 'mlp'],
        'tensornormal experiment: unknown experiment "mlp" (expected one of autoencoder, cnn, similarity, charlm)',
      ],
      [['experiment', 'autoencoder', '--bogus'], 'tensornormal experiment autoencoder: unknown flag --bogus'],
      [
        ['experiment', 'autoencoder', '--seeds', 'x'],
        'tensornormal experiment autoencoder: --seeds expects a positive integer but received "x"',
      ],
      [
        ['experiment', 'autoencoder', '--seeds', '0'],
        'tensornormal experiment autoencoder: --seeds expects a positive integer but received "0"',
      ],
      [
        ['experiment', 'autoencoder', '--time-budget=-5'],
        'tensornormal experiment autoencoder: --time-budget expects a positive number but received "-5"',
      ],
      [
        ['experiment', 'autoencoder', '--time-budget', '-5'],
        'tensornormal experiment autoencoder: --time-budget needs a value (write --time-budget=VALUE for a value that starts with a dash)',
      ],
      [['experiment', 'autoencoder', '--epochs'], 'tensornormal experiment autoencoder: --epochs needs a value'],
      [
        ['experiment', 'autoencoder', '--grid=yes'],
        'tensornormal experiment autoencoder: --grid does not take a value',
      ],
      [
        ['experiment', 'autoencoder', '--dataset', 'cifar10'],
        'tensornormal experiment autoencoder: --dataset expects one of fashion-mnist, mnist-digits but received "cifar10"',
      ],
      [
        ['experiment', 'autoencoder', '--optimizers', 'tnt,lbfgs'],
        'tensornormal experiment autoencoder: --optimizers: unknown optimizer "lbfgs" (expected names from tnt,kfac,shampoo,adam,sgd)',
      ],
      [
        ['experiment', 'autoencoder', '--widths', '784,a,784'],
        'tensornormal experiment autoencoder: --widths (entry 2) expects a positive integer but received "a"',
      ],
      [
        ['experiment', 'autoencoder', '--widths', '784,784'],
        'tensornormal experiment autoencoder: --widths expects at least three comma-separated widths (input, code, output) but received "784,784"',
      ],
      [
        ['experiment', 'autoencoder', '--set', 'tnt.lr'],
        'tensornormal experiment autoencoder: --set expects OPTIMIZER.KEY=VALUE (e.g. tnt.lr=3e-4) but received "tnt.lr"',
      ],
      [
        ['experiment', 'autoencoder', '--set', 'tnt.beta=1'],
        'tensornormal experiment autoencoder: --set: unknown key "beta" in "tnt.beta=1" (expected one of lr, damping, weightDecay, momentum, statsEvery, inverseEvery, statsBatch, klClip, statDecayPerStep, asyncInverses)',
      ],
      [
        ['experiment', 'autoencoder', '--set', 'tnt.inverseEvery=2.5'],
        'tensornormal experiment autoencoder: --set tnt.inverseEvery expects a positive integer but received "2.5"',
      ],
      [
        ['experiment', 'autoencoder', '--grid-budget', '10'],
        'tensornormal experiment autoencoder: --grid-budget and --grid-epochs need --grid',
      ],
      [['experiment', 'autoencoder', 'extra'], 'tensornormal experiment autoencoder: unexpected argument "extra"'],
      [
        ['experiment', 'cnn', '--dataset', 'cifar10'],
        'tensornormal experiment cnn: --dataset cifar10 needs --data DIR (the folder of the CIFAR binary files)',
      ],
      [
        ['experiment', 'cnn', '--model', 'resnet50'],
        'tensornormal experiment cnn: --model expects one of resnet32, resnet20, resnet8, vgg16bn, small-cnn but received "resnet50"',
      ],
      [
        ['experiment', 'similarity', '--optimizers', 'tnt,bfgs'],
        'tensornormal experiment similarity: --optimizers: unknown optimizer "bfgs" (expected names from tnt,kfac,shampoo,adam,sgd)',
      ],
      [
        ['experiment', 'similarity', '--fisher-estimator', 'mean'],
        'tensornormal experiment similarity: --fisher-estimator expects one of per-example, batch-mean but received "mean"',
      ],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.out).toBe('');
      const cmd = message.slice(0, message.indexOf(':'));
      expect(r.err).toBe(`${message}\nRun '${cmd} --help' for the flags.\n`);
    }
    expect(() => parseCommand(['experiment', 'autoencoder', '--limit', '1.5'])).toThrow(UsageError);
  });

  it("--threads sets OpenBLAS's threads too, unless the user set them or OpenBLAS picks (or runs Prescott) kernels itself", () => {
    const spr = 'flags\t\t: fpu sse sse2 fma avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl\n';
    const sandy = 'flags\t\t: fpu sse sse2 ssse3 sse4_2 avx\n';
    expect(openblasThreads(1, {}, spr)).toBe('1');
    expect(openblasThreads(2, {}, spr)).toBe('2');
    expect(openblasThreads(undefined, {}, spr)).toBeUndefined();
    expect(openblasThreads(1, { OPENBLAS_NUM_THREADS: '2' }, spr)).toBeUndefined();
    expect(openblasThreads(1, { GOTO_NUM_THREADS: '2' }, spr)).toBeUndefined();
    // OpenBLAS's own detection (it may misdetect the CPU as Prescott): left alone
    expect(openblasThreads(1, {}, sandy)).toBeUndefined();
    expect(openblasThreads(1, {}, undefined)).toBeUndefined();
    expect(openblasThreads(1, { TENSORNORMAL_RUNTIME_ENV: 'off' }, spr)).toBeUndefined();
    expect(openblasThreads(1, { TENSORNORMAL_OPENBLAS_CORETYPE: 'auto' }, spr)).toBeUndefined();
    expect(openblasThreads(1, { OPENBLAS_CORETYPE: 'Prescott' }, spr)).toBeUndefined();
    // kernels the user chose
    expect(openblasThreads(1, { OPENBLAS_CORETYPE: 'Haswell' }, sandy)).toBe('1');
    expect(openblasThreads(1, { TENSORNORMAL_OPENBLAS_CORETYPE: 'Haswell' }, sandy)).toBe('1');
  });

  it('threadsArgument: --threads N or --threads=N, else TENSORNORMAL_NUM_THREADS, read before the addon loads', () => {
    expect(threadsArgument(['experiment', 'cnn', '--threads', '1'], {})).toBe(1);
    expect(threadsArgument(['experiment', 'cnn', '--threads=2'], { TENSORNORMAL_NUM_THREADS: '1' })).toBe(2);
    expect(threadsArgument(['experiment', 'cnn'], { TENSORNORMAL_NUM_THREADS: '3' })).toBe(3);
    expect(threadsArgument(['experiment', 'cnn'], {})).toBeUndefined();
    // the command's parser reports bad values; nothing is set for them
    expect(threadsArgument(['experiment', 'cnn', '--threads', 'two'], {})).toBeUndefined();
    expect(threadsArgument(['experiment', 'cnn', '--threads', '0'], {})).toBeUndefined();
    expect(threadsArgument(['experiment', 'cnn', '--threads', '1.5'], {})).toBeUndefined();
    expect(threadsArgument(['experiment', 'cnn', '--threads'], {})).toBeUndefined();
  });

  it("--threads 1 in a fresh process: OpenBLAS single-threaded, recorded in results.json; KFAC's inverses run", () => {
    return withTempDir('tn-exp-threads-', (dir) => {
      const env = { ...process.env };
      delete env.OPENBLAS_NUM_THREADS;
      delete env.GOTO_NUM_THREADS;
      const argv = [
        'dist/cli.js',
        'experiment',
        'autoencoder',
        '--dataset',
        'mnist-digits',
        '--widths',
        '784,64,8,64,784',
        '--limit',
        '512',
        '--batch',
        '128',
        '--seeds',
        '1',
        '--epochs',
        '1',
        '--optimizers',
        'kfac',
        '--set',
        'kfac.inverseEvery=1',
        '--threads',
        '1',
        '--out',
        dir,
      ];
      execFileSync(process.execPath, argv, { env, encoding: 'utf8' });
      const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResult;
      const t = r.config.threads as {
        torch: number;
        openblas: string | null;
        openblasSetByCli: boolean;
        openblasCoretype: string | null;
      };
      expect(t.torch).toBe(1);
      const chosen = openblasThreads(1, env, readCpuinfo()) !== undefined;
      expect(t.openblasSetByCli).toBe(chosen);
      // read back from OpenBLAS: the variable must be set before anything loads the addon (it was set too late
      // once, after the package's experiments entry had loaded it, and the pool kept its two threads)
      if (chosen) expect(t.openblas).toBe(1);
      expect(r.runs[0]!.stoppedBy).toBe('epochs');
    });
  });

  it("--logdir: each run's curves as TensorBoard event files, the step losses recovered from the running means", () =>
    withTempDir('tn-exp-logdir-', async (dir) => {
      const logdir = join(dir, 'runs');
      const r = await run([
        'experiment',
        'autoencoder',
        '--dataset',
        'mnist-digits',
        '--widths',
        '784,16,784',
        '--limit',
        '256',
        '--batch',
        '64',
        '--seeds',
        '1',
        '--epochs',
        '2',
        '--optimizers',
        'adam',
        '--log-every',
        '1',
        '--out',
        join(dir, 'out'),
        '--logdir',
        logdir,
      ]);
      expect(r.code, r.err).toBe(0);
      expect(readdirSync(logdir)).toEqual(['adam-seed0']);
      const runDir = join(logdir, 'adam-seed0');
      const file = readdirSync(runDir).find((f) => f.startsWith('events.out.tfevents.'))!;
      const byTag = new Map<string, [number, number][]>();
      for (const e of readEventFile(join(runDir, file)))
        for (const v of e.values)
          if (v.simpleValue !== undefined) byTag.set(v.tag, [...(byTag.get(v.tag) ?? []), [e.step, v.simpleValue]]);
      // 256 images in batches of 64: 4 steps per epoch, 8 in all
      const res = JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as ExperimentResult;
      const run0 = res.runs[0]!;
      const losses = byTag.get('loss/train')!;
      expect(losses.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      // --log-every 1: results.json has every step's loss (its points); the event file recovers the same
      run0.points.forEach((p, i) => expect(losses[i]![1]).toBeCloseTo(p.loss, 3));
      expect(byTag.get('loss/train_epoch')!.map(([s, v]) => [s, v])).toEqual(
        run0.epochs.map((e) => [4 * e.epoch, Math.fround(e.loss)]),
      );
      expect(readdirSync(runDir)).toContain('hparams');
    }));

  it('a failing experiment exits with code 1 and says why', async () => {
    const r = await run([
      'experiment',
      'autoencoder',
      '--dataset',
      'mnist-digits',
      '--widths',
      '100,10,100',
      '--epochs',
      '1',
      '--seeds',
      '1',
      '--out',
      join(tmpdir(), 'tn-never'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('Expected widths that start and end with the image size 784 but received 100,10,100');
  });
});

describe('Figure 1: similarity to the block-Fisher direction', () => {
  const tiny = () => {
    torch.manualSeed(3);
    const x = torch.tidy(() => torch.randn([96, 12]).sigmoid().keep());
    const y = torch.randint(0, 4, [96]).keep();
    return { x, y };
  };
  const base = { iterations: 6, every: 1, widths: [12, 5, 4, 4], gamma: 0.1, lr: 0.1 };

  it("tntMethod('batch-mean') is optim.TNT's direction, and batch size 1 makes both estimators the same", async () => {
    await noLeak(() => {
      const data = tiny();
      try {
        const r = runFisherSimilarity({
          ...base,
          batchSize: 8,
          data,
          extraMethods: [tntMethod(0.1, 'batch-mean', 'TNT (js)')],
        });
        expect(r.options).toMatchObject({ fisherEstimator: 'per-example', tntStatistics: 'batch-mean' });
        for (let l = 0; l < 3; l++) {
          expect(r.cosine.TNT![l]!.length).toBe(6);
          r.cosine.TNT![l]!.forEach((c, i) => expect(Math.abs(c - r.cosine['TNT (js)']![l]![i]!)).toBeLessThan(1e-4));
        }
        // B = 1: B Ḡ Ḡ^T is the per-example outer product, so the trajectory and every cosine are the same
        const one = (o: object) => runFisherSimilarity({ ...base, batchSize: 1, data, ...o });
        const a = one({}),
          b = one({ fisherEstimator: 'batch-mean', tntStatistics: 'per-example' });
        expect(b.options).toMatchObject({ fisherEstimator: 'batch-mean', tntStatistics: 'per-example' });
        a.loss.forEach((v, i) => expect(b.loss[i]).toBeCloseTo(v, 6));
        for (const n of Object.keys(a.cosine))
          for (let l = 0; l < 3; l++)
            a.cosine[n]![l]!.forEach((c, i) =>
              expect(Math.abs(c - b.cosine[n]![l]![i]!), `${n} l=${l}`).toBeLessThan(1e-4),
            );
        // B = 8: the options change the trajectory (block Fisher) and the TNT statistics, nothing else
        const c = runFisherSimilarity({ ...base, batchSize: 8, data, tntStatistics: 'per-example' });
        expect(c.loss).toEqual(r.loss);
        expect(c.cosine.KFAC).toEqual(r.cosine.KFAC);
        expect(c.cosine.TNT).not.toEqual(r.cosine.TNT);
        const d = runFisherSimilarity({ ...base, batchSize: 8, data, fisherEstimator: 'batch-mean' });
        expect(d.loss[0]).toBe(r.loss[0]);
        expect(Math.abs(d.loss.at(-1)! - r.loss.at(-1)!)).toBeGreaterThan(1e-6);
        expect(() => runFisherSimilarity({ ...base, data, fisherEstimator: 'mean' as never })).toThrow(
          /fisherEstimator/,
        );
      } finally {
        torch.dispose([data.x, data.y]);
      }
    });
  });

  it('per-example and batch-mean TNT statistics agree in expectation (sampled gradients have mean zero)', async () => {
    await noLeak(() => {
      torch.manualSeed(5);
      const B = 4,
        inW = 3,
        out = 3;
      const x = torch.tidy(() => torch.cat([torch.randn([B, inW]), torch.ones([B, 1])], 1).keep());
      const p = torch.tidy(() => torch.randn([B, out]).mul(1.5).softmax(1).keep());
      const m = torch.randn([out, inW + 1]);
      const pe = tntMethod(1, 'per-example'),
        bm = tntMethod(1, 'batch-mean');
      const cosine = (a: torch.Tensor, b: torch.Tensor) =>
        torch.tidy(() => a.flatten().dot(b.flatten()).item() / (a.norm().item() * b.norm().item()));
      const cos: number[] = [];
      try {
        for (let k = 0; k < 4000; k++) {
          torch.tidy(() => {
            // the last layer's per-example sampled output gradients p_n - e_{y_n}, y_n ~ p_n
            const y = torch.multinomial(p, 1, true).reshape([-1]);
            const g = p.sub(torch.eye(out).indexSelect(0, y));
            const ctx = [{ input: x, outputGrad: g, grad: m }];
            pe.observe(ctx, 1 / (k + 1));
            bm.observe(ctx, 1 / (k + 1));
            if (k === 0 || k === 3999) cos.push(cosine(pe.direction(0, m), bm.direction(0, m)));
          });
        }
        expect(cos[1]!).toBeGreaterThan(0.995);
        expect(cos[1]!).toBeGreaterThan(cos[0]!);
      } finally {
        pe.dispose();
        bm.dispose();
        torch.dispose([x, p, m]);
      }
    });
  });
});
