// Watching training (issue 22): fit()'s and train.inWorker's `logDir` (TensorBoard event files, read back with the
// independent decoder of test/support/tfevents.ts) and `prometheus` (a prom-client registry, read back through its
// text exposition format), and examples/service.ts serving them at /metrics.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import client from 'prom-client';
import * as torch from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { readEventFile, type DecodedEvent } from './support/tfevents.js';
import { addonPath, transpileLib } from './support/transpile-lib.js';
import type * as Lib from '../lib/index.js';

let root = '';
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tn-telemetry-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function events(dir: string): DecodedEvent[] {
  const files = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
  expect(files.length).toBe(1);
  return readEventFile(join(dir, files[0]!));
}

/** tag -> [step, value][] */
function scalars(ev: DecodedEvent[]): Map<string, [number, number][]> {
  const m = new Map<string, [number, number][]>();
  for (const e of ev)
    for (const v of e.values)
      if (v.simpleValue !== undefined) {
        if (!m.has(v.tag)) m.set(v.tag, []);
        m.get(v.tag)!.push([e.step, v.simpleValue]);
      }
  return m;
}

/** Prometheus text format -> name{labels} -> value */
async function scrape(registry: client.Registry): Promise<Map<string, number>> {
  return parseExposition(await registry.metrics());
}
function parseExposition(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** 6 batches of 4 samples of y = x w + noise, float64. */
function regressionBatches(): { batches: torch.Tensor[][]; owned: torch.Tensor[] } {
  torch.manualSeed(3);
  const x = torch.randn([24, 3], { dtype: 'float64' });
  const y = torch.tidy(() => x.matmul(torch.tensor([[1], [-2], [0.5]], { dtype: 'float64' })).add(0.1));
  const batches = [0, 1, 2, 3, 4, 5].map((i) => [x.narrow(0, 4 * i, 4), y.narrow(0, 4 * i, 4)]);
  return { batches, owned: [x, y, ...batches.flat()] };
}

describe('fit(): logDir and prometheus', () => {
  it('every step and epoch in the event file and the registry, with the losses fit() computed', async () => {
    const { batches, owned } = regressionBatches();
    const model = new torch.nn.Linear(3, 1, { dtype: 'float64' });
    const opt = new torch.optim.SGD(model.parameters(), { lr: 0.05 });
    const registry = new client.Registry();
    const dir = join(root, 'fit-sgd');
    const losses: number[] = [];
    const before = torch.liveTensors();
    const history = await torch.fit(model, {
      train: batches,
      val: batches.slice(0, 2),
      epochs: 2,
      optimizer: opt,
      loss: (o, t) => torch.nn.functional.mseLoss(o, t),
      progress: 'none',
      logDir: dir,
      prometheus: { registry, labels: { run: 'sgd' } },
      callbacks: { onBatchEnd: (b) => void losses.push(b.loss) },
    });
    expect(torch.liveTensors()).toBe(before);
    const s = scalars(events(dir));
    // loss/train: each batch's loss at the run's step 1..12, as float32
    expect(s.get('loss/train')).toEqual(losses.map((l, i) => [i + 1, Math.fround(l)]));
    expect(s.get('loss/train_epoch')).toEqual(history.map((h, i) => [6 * (i + 1), Math.fround(h.trainLoss)]));
    expect(s.get('loss/val')).toEqual(history.map((h, i) => [6 * (i + 1), Math.fround(h.valLoss!)]));
    expect(s.get('train/lr')).toEqual([
      [6, Math.fround(0.05)],
      [12, Math.fround(0.05)],
    ]);
    expect(s.get('train/step_seconds')!.length).toBe(12);
    for (const [, v] of s.get('train/samples_per_second')!) expect(v).toBeGreaterThan(0);
    expect(s.get('memory/live_tensors')!.map(([step]) => step)).toEqual([1, 11]);
    expect(s.get('optimizer/skipped_steps')!.every(([, v]) => v === 0)).toBe(true);
    const m = await scrape(registry);
    expect(m.get('tensornormal_train_steps_total{run="sgd"}')).toBe(12);
    expect(m.get('tensornormal_train_samples_total{run="sgd"}')).toBe(48);
    expect(m.get('tensornormal_train_loss{run="sgd"}')).toBe(losses.at(-1));
    expect(m.get('tensornormal_train_epoch{run="sgd"}')).toBe(2);
    expect(m.get('tensornormal_train_step_seconds_count{run="sgd"}')).toBe(12);
    expect(m.get('tensornormal_optimizer_inverse_refreshes_total{run="sgd"}')).toBe(0);
    // read at scrape time: this thread's live tensors and bytes (the model's 4 float64 values at least)
    expect(m.get('tensornormal_live_tensors{run="sgd"}')).toBe(torch.liveTensors());
    expect(m.get('tensornormal_native_bytes{run="sgd"}')).toBeGreaterThanOrEqual(4 * 8);
    torch.dispose(owned);
    model.dispose();
  });

  it("TNT: every inverse refresh timed and counted; the optimizer's method is restored afterwards", async () => {
    const { batches, owned } = regressionBatches();
    const model = new torch.nn.Linear(3, 1, { dtype: 'float64' });
    const opt = new torch.optim.TNT(model.parameters(), { lr: 0.01, damping: 1, statsEvery: 1, inverseEvery: 4 });
    const spy = vi.spyOn(opt, 'updateInverses');
    const registry = new client.Registry();
    const writer = new torch.tensorboard.SummaryWriter(join(root, 'fit-tnt'));
    await torch.fit(model, {
      train: batches,
      epochs: 2,
      optimizer: opt,
      likelihood: new torch.Gaussian(),
      progress: 'none',
      logDir: writer, // the caller's writer: flushed, left open
      prometheus: { registry },
    });
    writer.addText('note', 'still open');
    writer.close();
    const refreshes = spy.mock.calls.length;
    expect(refreshes).toBeGreaterThan(2);
    expect(Object.hasOwn(opt, 'updateInverses')).toBe(true); // the spy's own property, put back as it was
    spy.mockRestore();
    expect(Object.hasOwn(opt, 'updateInverses')).toBe(false);
    const m = await scrape(registry);
    expect(m.get('tensornormal_optimizer_inverse_refreshes_total')).toBe(refreshes);
    expect(m.get('tensornormal_optimizer_inverse_refresh_seconds_count')).toBe(refreshes);
    expect(m.get('tensornormal_optimizer_inverse_refresh_seconds_sum')).toBeGreaterThan(0);
    expect(m.get('tensornormal_optimizer_inverse_retries_total')).toBe(0);
    const s = scalars(events(join(root, 'fit-tnt')));
    const timed = s.get('optimizer/inverse_refresh_seconds')!;
    expect(timed.length).toBeGreaterThan(0);
    expect(timed.length).toBeLessThanOrEqual(refreshes);
    for (const [, v] of timed) expect(v).toBeGreaterThan(0);
    torch.dispose(owned);
    model.dispose();
    opt.dispose();
  });

  it('bad options: TypeError naming them, nothing left open', async () => {
    const model = new torch.nn.Linear(1, 1);
    const opt = new torch.optim.SGD(model.parameters(), { lr: 0.1 });
    const base = { train: [], epochs: 1, optimizer: opt, loss: torch.nn.functional.mseLoss, progress: 'none' } as const;
    await expect(torch.fit(model, { ...base, logDir: 3 as never })).rejects.toThrow(/logDir/);
    await expect(torch.fit(model, { ...base, prometheus: { registry: {} } })).rejects.toThrow(
      'Expected a prom-client Registry for prometheus.registry',
    );
    model.dispose();
  });
});

describe('train.inWorker: logDir and prometheus from the job’s progress', () => {
  let work = '';
  let t: typeof Lib;
  beforeAll(async () => {
    process.env.TENSORNORMAL_ADDON = addonPath;
    work = mkdtempSync(join(tmpdir(), 'tn-telemetry-worker-'));
    transpileLib(work);
    t = (await import(pathToFileURL(join(work, 'lib', 'index.js')).href)) as typeof Lib;
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the steps the job reported (every 2 of 24), its memory and epochs', async () => {
    const lib = pathToFileURL(join(work, 'lib', 'index.js')).href;
    const registry = new client.Registry();
    const dir = join(root, 'worker');
    const trainer = t.train.inWorker(new URL('./support/train-job.mjs', import.meta.url), {
      workerData: { lib, mode: 'fit', seed: 1, epochs: 3 },
      logDir: dir,
      prometheus: { registry },
    });
    const progress: { kind: string; steps: number; loss?: number; memory?: { liveTensors: number } }[] = [];
    trainer.on('progress', (p) => progress.push(p as (typeof progress)[number]));
    await trainer.done;
    await new Promise<void>((r) => (trainer.worker.threadId === -1 ? r() : trainer.once('exit', () => r())));
    const steps = progress.filter((p) => p.kind === 'step');
    expect(steps.map((p) => p.steps)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
    const s = scalars(events(dir));
    expect(s.get('loss/train')).toEqual(steps.map((p) => [p.steps, Math.fround(p.loss!)]));
    expect(s.get('loss/train_epoch')!.map(([step]) => step)).toEqual([8, 16, 24]);
    // the worker's own tensors (its model and data), not this thread's
    expect(s.get('memory/live_tensors')!.map(([, v]) => v)).toEqual(steps.map((p) => p.memory!.liveTensors));
    const m = await scrape(registry);
    expect(m.get('tensornormal_train_steps_total')).toBe(24);
    expect(m.get('tensornormal_train_samples_total')).toBe(24 * 8);
    expect(m.get('tensornormal_train_step_seconds_count')).toBe(24);
    expect(m.get('tensornormal_live_tensors')).toBe(steps.at(-1)!.memory!.liveTensors);
  });
});

const serviceJs = join(packageRoot, 'dist', 'examples', 'service.js');
describe.skipIf(!existsSync(serviceJs))('examples/service.ts serves the metrics at /metrics', () => {
  it('a scrape while it trains: the trainer’s counters grow, /predict answers, the request histogram counts it', async () => {
    const child = spawn(process.execPath, [serviceJs, '--port', '0', '--epochs', '2'], {
      env: { ...process.env, TENSORNORMAL_ADDON: addonPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      let port = 0;
      for (let i = 0; i < 600 && port === 0; i++) {
        const m = /serving on http:\/\/localhost:(\d+)/.exec(out);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 100));
      }
      expect(port, out).toBeGreaterThan(0);
      const get = async (path: string): Promise<{ type: string; body: string }> => {
        const r = await fetch(`http://localhost:${port}${path}`);
        return { type: r.headers.get('content-type') ?? '', body: await r.text() };
      };
      let first = 0;
      for (let i = 0; i < 600 && first === 0; i++) {
        first = parseExposition((await get('/metrics')).body).get('tensornormal_train_steps_total') ?? 0;
        if (first === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(first, out).toBeGreaterThanOrEqual(10);
      const answer = await fetch(`http://localhost:${port}/predict`, {
        method: 'POST',
        body: JSON.stringify({ pixels: new Array(784).fill(0.5) }),
      });
      const predict = (await answer.json()) as { probabilities: number[] };
      expect(predict.probabilities.length).toBe(10);
      let later = first;
      for (let i = 0; i < 600 && later === first; i++) {
        await new Promise((r) => setTimeout(r, 100));
        later = parseExposition((await get('/metrics')).body).get('tensornormal_train_steps_total') ?? 0;
      }
      const scraped = await get('/metrics');
      expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const m = parseExposition(scraped.body);
      expect(m.get('tensornormal_train_steps_total')).toBeGreaterThan(first);
      expect(m.get('tensornormal_native_bytes')).toBeGreaterThan(0);
      expect(m.get('predict_request_seconds_count')).toBe(1);
      expect(m.has('process_cpu_seconds_total')).toBe(true); // prom-client's default metrics beside ours
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
