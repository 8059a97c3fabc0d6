/**
 * Likelihoods: losses against float64 formulas for every reduction, their gradients, and the statistics of samples
 * from the predictive distributions within tolerances of 5 standard deviations of the estimators.
 */
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Categorical, Bernoulli, Gaussian, Tensor } from '../lib/index.js';
import { expectClose, noLeak, lcg } from './support/helpers.js';

function values(n: number, seed: number, scale: number): number[] {
  const r = lcg(seed);
  return Array.from({ length: n }, () => r() * scale);
}
const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
const sum = (a: number[]): number => a.reduce((s, v) => s + v, 0);

/** Per-example losses and the three reductions of them. */
function reductions(perExample: number[]): { none: number[]; sum: number; mean: number } {
  return { none: perExample, sum: sum(perExample), mean: mean(perExample) };
}
function checkReductions(
  lik: torch.Likelihood,
  z: Tensor,
  y: Tensor,
  want: { none: number[]; sum: number; mean: number },
): void {
  torch.tidy(() => {
    expectClose(lik.loss(z, y), [want.mean], { atol: 1e-10, rtol: 1e-10 }); // the default is the batch mean
    expectClose(lik.loss(z, y, { reduction: 'mean' }), [want.mean], { atol: 1e-10, rtol: 1e-10 });
    expectClose(lik.loss(z, y, { reduction: 'sum' }), [want.sum], { atol: 1e-10, rtol: 1e-10 });
    const none = lik.loss(z, y, { reduction: 'none' });
    expect(none.shape).toEqual([want.none.length]);
    expectClose(none, Float64Array.from(want.none), { atol: 1e-10, rtol: 1e-10 });
  });
}

describe('losses', () => {
  it('Categorical: cross-entropy of the logits, averaged over the batch', async () => {
    await noLeak(() => {
      const zv = values(12, 1, 6),
        labels = [0, 2, 1, 2];
      const z = torch.tensor(zv, { shape: [4, 3], dtype: 'float64', requiresGrad: true });
      const y = torch.tensor(labels.map(BigInt));
      const rows = [0, 1, 2, 3].map((n) => zv.slice(3 * n, 3 * n + 3));
      const per = rows.map((r, n) => Math.log(sum(r.map(Math.exp))) - r[labels[n]!]!);
      const lik = new Categorical();
      checkReductions(lik, z, y, reductions(per));
      // d mean / dz = (softmax(z) - onehot(y)) / N
      torch.tidy(() => lik.loss(z, y).backward());
      const want = rows.flatMap((r, n) =>
        r.map((v, c) => (Math.exp(v) / sum(r.map(Math.exp)) - (c === labels[n] ? 1 : 0)) / 4),
      );
      expectClose(z.grad!, Float64Array.from(want), { atol: 1e-12 });
      torch.dispose([z, y]);
    });
  });

  it('Bernoulli: BCE on logits summed over all features, averaged over the batch', async () => {
    await noLeak(() => {
      const zv = values(12, 2, 8),
        yv = values(12, 3, 1).map((v) => v + 0.5); // soft targets in [0, 1]
      yv[0] = 0;
      yv[1] = 1;
      const z = torch.tensor(zv, { shape: [3, 2, 2], dtype: 'float64', requiresGrad: true });
      const y = torch.tensor(yv, { shape: [3, 2, 2], dtype: 'float64' });
      // -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))
      const bce = zv.map((v, k) => Math.max(v, 0) - v * yv[k]! + Math.log1p(Math.exp(-Math.abs(v))));
      const per = [0, 1, 2].map((n) => sum(bce.slice(4 * n, 4 * n + 4)));
      const lik = new Bernoulli();
      checkReductions(lik, z, y, reductions(per));
      torch.tidy(() => lik.loss(z, y).backward());
      expectClose(
        z.grad!,
        Float64Array.from(zv, (v, k) => (1 / (1 + Math.exp(-v)) - yv[k]!) / 3),
        { atol: 1e-12 },
      );
      torch.dispose([z, y]);
    });
  });

  it('Gaussian: half the squared error summed over features, averaged over the batch', async () => {
    await noLeak(() => {
      const zv = values(10, 4, 4),
        yv = values(10, 5, 4);
      const z = torch.tensor(zv, { shape: [5, 2], dtype: 'float64', requiresGrad: true });
      const y = torch.tensor(yv, { shape: [5, 2], dtype: 'float64' });
      const per = [0, 1, 2, 3, 4].map(
        (n) => 0.5 * ((zv[2 * n]! - yv[2 * n]!) ** 2 + (zv[2 * n + 1]! - yv[2 * n + 1]!) ** 2),
      );
      const lik = new Gaussian();
      checkReductions(lik, z, y, reductions(per));
      torch.tidy(() => lik.loss(z, y).backward());
      expectClose(
        z.grad!,
        Float64Array.from(zv, (v, k) => (v - yv[k]!) / 5),
        { atol: 1e-12 },
      );
      // a 1-d output is a batch of scalars
      const z1 = torch.tensor([1, 2], { dtype: 'float64' }),
        y1 = torch.tensor([0, 0], { dtype: 'float64' });
      checkReductions(lik, z1, y1, reductions([0.5, 2]));
      torch.dispose([z, y, z1, y1]);
    });
  });
});

describe('samples', () => {
  it('carry no gradient and have the target types', async () => {
    await noLeak(() => {
      const z = torch.randn([5, 3], { requiresGrad: true });
      const c = new Categorical().sample(z),
        b = new Bernoulli().sample(z),
        g = new Gaussian().sample(z);
      expect([c.shape, c.dtype]).toEqual([[5], 'int64']);
      expect([b.shape, b.dtype]).toEqual([[5, 3], 'float32']);
      expect(b.dataSync().every((v) => v === 0 || v === 1)).toBe(true);
      expect([g.shape, g.dtype]).toEqual([[5, 3], 'float32']);
      expect([c, b, g].some((t) => t.requiresGrad || t.gradFn !== null)).toBe(false);
      torch.dispose([z, c, b, g]);
    });
  });

  it('Bernoulli sample means approach sigmoid(z)', async () => {
    await noLeak(() => {
      torch.manualSeed(11);
      const zs = [-2, -0.5, 0, 1.5],
        n = 20000;
      const z = torch.tidy(() => torch.tensor(zs).reshape([1, 4]).expand([n, 4]).contiguous());
      const s = new Bernoulli().sample(z);
      const m = torch.tidy(() => s.mean(0).dataSync());
      zs.forEach((v, j) => {
        const p = 1 / (1 + Math.exp(-v));
        expect(Math.abs(m[j]! - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      });
      torch.dispose([z, s]);
    });
  });

  it('Categorical class frequencies approach softmax(z)', async () => {
    await noLeak(() => {
      torch.manualSeed(12);
      const zs = [1, 0, -1, 0.5],
        n = 20000;
      const z = torch.tidy(() => torch.tensor(zs).reshape([1, 4]).expand([n, 4]).contiguous());
      const s = new Categorical().sample(z);
      const counts = [0, 0, 0, 0];
      for (const k of s.dataSync()) counts[k]! += 1;
      const e = zs.map(Math.exp);
      zs.forEach((_, j) => {
        const p = e[j]! / sum(e);
        expect(Math.abs(counts[j]! / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      });
      torch.dispose([z, s]);
    });
  });

  it('Gaussian samples are z plus unit-variance noise', async () => {
    await noLeak(() => {
      torch.manualSeed(13);
      const n = 20000;
      const z = torch.tidy(() => torch.linspace(-3, 3, n).reshape([n / 2, 2]));
      const s = new Gaussian().sample(z);
      const e = torch.tidy(() => s.sub(z).dataSync());
      const m = mean(e),
        v = mean(e.map((x) => (x - m) ** 2));
      expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(n));
      expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n)); // var of the sample variance of N(0,1): 2/n
      torch.dispose([z, s]);
    });
  });
});

describe('invalid arguments', () => {
  it('names the argument and the problem', () => {
    const z = torch.zeros([2, 3]),
      y = torch.zeros([3, 2]),
      idx = torch.tensor([0n, 1n]),
      v = torch.zeros([3]),
      s = torch.zeros([]);
    expect(() => new Categorical().loss(v, idx)).toThrow(
      new RangeError('Expected output of shape (N, C) but received shape [3]'),
    );
    expect(() => new Categorical().sample(v)).toThrow(
      new RangeError('Expected output of shape (N, C) but received shape [3]'),
    );
    expect(() => new Bernoulli().loss(z, y)).toThrow(
      new RangeError("Expected target of the output's shape [2, 3] but received shape [3, 2]"),
    );
    expect(() => new Gaussian().loss(s, s)).toThrow(
      new RangeError('Expected output with a batch dimension (at least 1-d) but received a 0-d tensor'),
    );
    expect(() => new Gaussian().loss(z, z, { reduction: 'avg' as never })).toThrow(
      new RangeError("Expected one of 'mean', 'sum', 'none' for reduction but received \"avg\" of type string"),
    );
    expect(() => new Bernoulli().sample([1, 2] as never)).toThrow(
      new TypeError('Expected a Tensor for output but received [1,2] of type array'),
    );
    torch.dispose([z, y, idx, v, s]);
  });
});
