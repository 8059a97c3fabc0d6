// The sampled backward pass estimates the true Fisher: for a tiny linear model the second moment of TNT's sampled
// gradient equals the exact Fisher (by enumeration over y for Categorical and Bernoulli, in closed form for
// Gaussian), and TNT's statistics after a warm start equal its partial traces. Tolerances are derived from the
// samples' own spread: 5 standard errors of each entry's mean.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { TNT } from '../lib/optim/tnt.js';
import { Categorical, Bernoulli, Gaussian, type Likelihood } from '../lib/likelihoods.js';
import { Tensor } from '../lib/tensor.js';
import { noLeak } from './support/helpers.js';

const C = 3,
  D = 2,
  N = 2; // W is (C, D); two inputs, so the batch-mean gradient's second moment is mean_n F_n / N
const X = [
  [0.7, -1.2],
  [1.5, 0.4],
];
const W0 = [
  [0.3, -0.5],
  [0.8, 0.1],
  [-0.4, 0.6],
];

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
function logits(n: number): number[] {
  return W0.map((row) => row[0]! * X[n]![0]! + row[1]! * X[n]![1]!);
}
/** Per-example Fisher of vec(W) (row-major) for output-gradient second moment S (C x C): S (x) x x^T. */
function kronWithInput(S: number[][], x: number[]): number[][] {
  const F = Array.from({ length: C * D }, () => new Array<number>(C * D).fill(0));
  for (let a = 0; a < C; a++)
    for (let b = 0; b < C; b++)
      for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) F[a * D + i]![b * D + j] = S[a]![b]! * x[i]! * x[j]!;
  return F;
}
/** E_y[(dl/dz)(dl/dz)^T] for one example, exactly. */
const outputMoment: Record<string, (z: number[]) => number[][]> = {
  categorical(z) {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const p = e.map((v) => v / e.reduce((s, u) => s + u, 0));
    // enumerate y: dl/dz = p - onehot(y), with probability p_y
    const S = Array.from({ length: C }, () => new Array<number>(C).fill(0));
    for (let y = 0; y < C; y++) {
      const g = p.map((v, k) => v - (k === y ? 1 : 0));
      for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) S[a]![b]! += p[y]! * g[a]! * g[b]!;
    }
    return S;
  },
  bernoulli(z) {
    // enumerate y in {0,1}^C: dl/dz = sigmoid(z) - y
    const s = z.map(sigmoid);
    const S = Array.from({ length: C }, () => new Array<number>(C).fill(0));
    for (let mask = 0; mask < 1 << C; mask++) {
      const y = s.map((_, k) => (mask >> k) & 1);
      const prob = y.reduce((acc, v, k) => acc * (v ? s[k]! : 1 - s[k]!), 1);
      const g = s.map((v, k) => v - y[k]!);
      for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) S[a]![b]! += prob * g[a]! * g[b]!;
    }
    return S;
  },
  gaussian() {
    // dl/dz = z - y with y ~ N(z, I): the identity, in closed form
    return Array.from({ length: C }, (_, a) => Array.from({ length: C }, (_, b) => (a === b ? 1 : 0)));
  },
};

function exactFisherOfBatchMean(kind: string): number[][] {
  const F = Array.from({ length: C * D }, () => new Array<number>(C * D).fill(0));
  for (let n = 0; n < N; n++) {
    const Fn = kronWithInput(outputMoment[kind]!(logits(n)), X[n]!);
    for (let i = 0; i < C * D; i++) for (let j = 0; j < C * D; j++) F[i]![j]! += Fn[i]![j]! / (N * N);
  }
  return F;
}

const cases: [string, Likelihood][] = [
  ['categorical', new Categorical()],
  ['bernoulli', new Bernoulli()],
  ['gaussian', new Gaussian()],
];

describe('the sampled backward pass estimates the exact Fisher', () => {
  for (const [kind, lik] of cases) {
    it(`${kind}: second moment of the sampled batch-mean gradient and TNT's statistics`, async () => {
      await noLeak(async () => {
        torch.manualSeed(7);
        const W = torch.tensor(W0, { dtype: 'float64', requiresGrad: true });
        const x = torch.tensor(X, { dtype: 'float64' });
        const S = 6000;
        const samples: number[][] = [];
        const opt = new TNT([W], { lr: 0, factorDtype: 'float64' });
        // warmStart over S batches of the same inputs: TNT's statistics become the mean of G^(i) over the samples
        const batches = {
          *[Symbol.iterator]() {
            for (let s = 0; s < S; s++) yield x;
          },
        };
        await opt.warmStart(
          batches,
          (xb) => {
            const out = xb.matmul(W.t());
            // record the sampled gradient this warm-start step computes, by redoing it with the same RNG draw
            return out;
          },
          {
            loss: (o: Tensor, y: Tensor) => lik.loss(o, y),
            sample: (o: Tensor) => {
              const y = lik.sample(o);
              const g = torch.tidy(() => torch.grad(lik.loss(o, y), [W], { retainGraph: true })[0]!);
              samples.push(g.dataSync());
              g.dispose();
              return y;
            },
          },
        );
        const F = exactFisherOfBatchMean(kind);
        // 1) the full second moment, entry by entry, within 5 standard errors
        for (let i = 0; i < C * D; i++)
          for (let j = 0; j < C * D; j++) {
            const prods = samples.map((g) => g[i]! * g[j]!);
            const mean = prods.reduce((a, b) => a + b, 0) / S;
            const sd = Math.sqrt(prods.reduce((a, b) => a + (b - mean) ** 2, 0) / (S - 1));
            expect(Math.abs(mean - F[i]![j]!), `entry (${i}, ${j})`).toBeLessThanOrEqual(
              (5 * sd) / Math.sqrt(S) + 1e-12,
            );
          }
        // 2) TNT's warm-start statistics equal the empirical partial traces of the same samples (exactly), and the
        //    exact partial traces of F within the same statistical tolerance
        const [H1, H2] = torch.tidy(() => opt.curvatureState(W)!.factors.map((f) => f.dataSync()));
        for (let a = 0; a < C; a++)
          for (let b = 0; b < C; b++) {
            const emp =
              samples.reduce(
                (acc, g) => acc + g.slice(a * D, a * D + D).reduce((s, v, i) => s + v * g[b * D + i]!, 0),
                0,
              ) / S;
            expect(H1![a * C + b]!).toBeCloseTo(emp, 10);
            const exact = Array.from({ length: D }, (_, i) => F[a * D + i]![b * D + i]!).reduce((s, v) => s + v, 0);
            const prods = samples.map((g) =>
              Array.from({ length: D }, (_, i) => g[a * D + i]! * g[b * D + i]!).reduce((s, v) => s + v, 0),
            );
            const sd = Math.sqrt(prods.reduce((acc, v) => acc + (v - emp) ** 2, 0) / (S - 1));
            expect(Math.abs(emp - exact), `H1 (${a}, ${b})`).toBeLessThanOrEqual((5 * sd) / Math.sqrt(S) + 1e-12);
          }
        for (let i = 0; i < D; i++)
          for (let j = 0; j < D; j++) {
            const exact = Array.from({ length: C }, (_, a) => F[a * D + i]![a * D + j]!).reduce((s, v) => s + v, 0);
            const emp =
              samples.reduce(
                (acc, g) =>
                  acc + Array.from({ length: C }, (_, a) => g[a * D + i]! * g[a * D + j]!).reduce((s, v) => s + v, 0),
                0,
              ) / S;
            expect(H2![i * D + j]!).toBeCloseTo(emp, 10);
            const prods = samples.map((g) =>
              Array.from({ length: C }, (_, a) => g[a * D + i]! * g[a * D + j]!).reduce((s, v) => s + v, 0),
            );
            const sd = Math.sqrt(prods.reduce((acc, v) => acc + (v - emp) ** 2, 0) / (S - 1));
            expect(Math.abs(emp - exact), `H2 (${i}, ${j})`).toBeLessThanOrEqual((5 * sd) / Math.sqrt(S) + 1e-12);
          }
        // the empirical Fisher (true labels) is a different matrix: the sampled estimate is not trivially equal to it
        opt.dispose();
        torch.dispose([W, x]);
      });
    });
  }
});
