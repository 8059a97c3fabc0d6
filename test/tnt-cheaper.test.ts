// TNT's options for a cheaper step and its update-size control (docs/tnt.md, "A cheaper step"): statistics from a
// sub-batch (statsBatch, splitForward), the moving average counted per step (statDecayPerStep), KL clipping (klClip),
// and the divergence advice. References: the optimizer's own phases driven by hand (same draws), a float64
// re-computation of the clipped update, a Monte Carlo check that the sub-batch statistics estimate the same thing.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { TNT } from '../lib/optim/tnt.js';
import { Tensor } from '../lib/tensor.js';
import { Categorical } from '../lib/likelihoods.js';
import { lcg, maxRelDiff, noLeak } from './support/helpers.js';

const F = torch.nn.functional;

function params(seed: number, shapes: number[][]): Tensor[] {
  const r = lcg(seed);
  return shapes.map((shape) =>
    torch.tensor(
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5),
      { shape, dtype: 'float64', requiresGrad: true },
    ),
  );
}
const SHAPES = [[5, 3], [5], [4, 5], [4]];
const forwardOf =
  (ps: Tensor[]) =>
  (x: Tensor): Tensor =>
    torch.tidy(() => F.linear(F.linear(x, ps[0]!, ps[1]!).tanh(), ps[2]!, ps[3]!));

function inputs(seed: number, n: number): Tensor {
  const r = lcg(seed);
  return torch.tensor(
    Array.from({ length: n * 3 }, () => r() * 2 - 1),
    { shape: [n, 3], dtype: 'float64' },
  );
}

/** Every factor H_i of every parameter, as plain arrays. */
function factors(opt: TNT, ps: Tensor[]): number[][] {
  return torch.tidy(() => ps.flatMap((p) => opt.curvatureState(p)!.factors.map((f) => Array.from(f.dataSync()))));
}

describe('TNT statsBatch (statistics from a sub-batch)', () => {
  it('statisticsRows: a fraction of the batch, or a count of rows', () => {
    const ps = params(1, SHAPES);
    const half = new TNT(ps, { lr: 0.1, statsBatch: 0.5 });
    const count = new TNT(ps, { lr: 0.1, statsBatch: 3 });
    const all = new TNT(ps, { lr: 0.1 });
    expect([half.statisticsRows(8), half.statisticsRows(3), half.statisticsRows(1)]).toEqual([4, 2, 1]);
    expect([count.statisticsRows(8), count.statisticsRows(2)]).toEqual([3, 2]);
    expect(all.statisticsRows(8)).toBe(8);
    expect(() => new TNT(ps, { lr: 0.1, statsBatch: 0 })).toThrow(RangeError);
    expect(() => new TNT(ps, { lr: 0.1, statsBatch: 2.5 })).toThrow(/whole number of rows/);
    expect(() => new TNT(ps, { lr: 0.1, klClip: -1 })).toThrow(RangeError);
    for (const o of [half, count, all]) o.dispose();
    torch.dispose(ps);
  });

  it('splitForward gives the same output; the sampled pass then uses the first rows, weighted by rows / batch', async () => {
    await noLeak(() => {
      const ps = params(2, SHAPES);
      const x = inputs(3, 8);
      const forward = forwardOf(ps);
      const lik = new Categorical();
      const opt = new TNT(ps, { lr: 0.1, statsBatch: 0.25, factorDtype: 'float64' });
      const ref = new TNT(ps, { lr: 0.1, factorDtype: 'float64' });
      for (let step = 0; step < 3; step++) {
        torch.manualSeed(10 + step);
        torch.tidy(() => {
          const out = opt.splitForward(forward, x);
          const whole = forward(x);
          expect(out.shape).toEqual([8, 4]);
          expect(Math.max(...Array.from(out.sub(whole).abs().dataSync()))).toBeLessThan(1e-14);
          expect(opt.statisticsOutput(out).shape).toEqual([2, 4]);
          expect(opt.sampledBackward(out, lik)).toBe(true);
        });
        // by hand: y drawn for the first 2 rows only (the same draw), gradient of their mean loss, weight 2/8
        torch.manualSeed(10 + step);
        torch.tidy(() => {
          const sub = forward(x.narrow(0, 0, 2));
          const y = lik.sample(sub);
          const g = torch.grad(lik.loss(sub, y), ps);
          ref.updateStatistics(g, { scale: 2 / 8 });
        });
        expect(maxRelDiff(factors(opt, ps), factors(ref, ps))).toBeLessThan(1e-10);
        opt.statsUpdates = ref.statsUpdates;
      }
      // not split (a plain forward): the same rows and weight through a narrowed output
      const plain = new TNT(ps, { lr: 0.1, statsBatch: 2, factorDtype: 'float64' });
      const ref2 = new TNT(ps, { lr: 0.1, factorDtype: 'float64' });
      torch.manualSeed(99);
      torch.tidy(() => plain.sampledBackward(forward(x), lik));
      torch.manualSeed(99);
      torch.tidy(() => {
        const sub = forward(x.narrow(0, 0, 2));
        ref2.updateStatistics(torch.grad(lik.loss(sub, lik.sample(sub)), ps), { scale: 2 / 8 });
      });
      expect(maxRelDiff(factors(plain, ps), factors(ref2, ps))).toBeLessThan(1e-10);
      for (const o of [opt, ref, plain, ref2]) o.dispose();
      torch.dispose([ps, x]);
    });
  });

  it('estimates the same statistics as the whole batch (Monte Carlo, 5 standard errors)', async () => {
    await noLeak(() => {
      // identical rows: every example has the same Fisher, so the sub-batch's weighted statistics and the whole
      // batch's have the same expectation F_1 / N; single draws (statDecay 0: H is the last statistics) averaged
      const ps = params(4, SHAPES);
      const x = torch.tidy(() => inputs(5, 1).expand([8, 3]).contiguous());
      const forward = forwardOf(ps);
      const lik = new Categorical();
      const draws = 300;
      const run = (statsBatch: number): number[][] => {
        const opt = new TNT(ps, { lr: 0.1, statsBatch, statDecay: 0, factorDtype: 'float64' });
        const traces: number[][] = [];
        torch.manualSeed(statsBatch === 1 ? 1 : 2);
        for (let k = 0; k < draws; k++) {
          torch.tidy(() => opt.sampledBackward(opt.splitForward(forward, x), lik, { force: true }));
          // the trace of each factor of the first weight (tr H_i = ||G||^2 for every i) and its (0, 0) entry
          traces.push(
            torch.tidy(() => {
              const f = opt.curvatureState(ps[0]!)!.factors;
              return [f[0]!.diagonal().sum().item() as number, f[0]!.dataSync()[0]!, f[1]!.dataSync()[0]!];
            }),
          );
        }
        opt.dispose();
        return traces;
      };
      const stats = (rows: number[][], j: number): { mean: number; se: number } => {
        const v = rows.map((r) => r[j]!);
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
        return { mean, se: sd / Math.sqrt(v.length) };
      };
      const full = run(1),
        quarter = run(0.25);
      for (let j = 0; j < 3; j++) {
        const a = stats(full, j),
          b = stats(quarter, j);
        expect(Math.abs(a.mean - b.mean)).toBeLessThan(5 * Math.hypot(a.se, b.se));
        expect(Math.abs(a.mean)).toBeGreaterThan(3 * a.se); // a signal to compare, not noise
      }
      // (Which estimate is the noisier is not asserted: with 8 copies of one example the two standard errors came out
      // within 1% of each other, in either order depending on libtorch's sampling stream: 1.13 vs 2.6.)
      torch.dispose([ps, x]);
    });
  });
});

describe('TNT statDecayPerStep', () => {
  it('weights each statistics update 1 - statDecay^statsEvery', () => {
    const ps = params(6, SHAPES);
    const perStep = new TNT(ps, { lr: 0.1, statsEvery: 3, inverseEvery: 9, statDecayPerStep: true });
    const perUpdate = new TNT(ps, { lr: 0.1, statsEvery: 3, inverseEvery: 9 });
    expect(perStep.statDecayPerStep).toBe(true);
    expect(perUpdate.statDecayPerStep).toBe(false);
    // without a warm start: max(1/(t+1), 1 - decay) with decay = 0.9^3
    expect(perStep.statisticsWeight()).toBe(1);
    perStep.statsUpdates = 5;
    perUpdate.statsUpdates = 5;
    expect(perStep.statisticsWeight()).toBeCloseTo(1 - 0.9 ** 3, 15);
    expect(perUpdate.statisticsWeight()).toBeCloseTo(1 / 6, 15);
    perStep.warmStarted = true;
    perUpdate.warmStarted = true;
    expect(perStep.statisticsCoefficients()).toEqual({ keep: 0.9 ** 3, weight: 1 - 0.9 ** 3 });
    expect(perUpdate.statisticsWeight()).toBeCloseTo(0.1, 15);
    // with T1 = 1 it is today's rule
    const one = new TNT(ps, { lr: 0.1, statDecayPerStep: true });
    one.warmStarted = true;
    expect(one.statisticsWeight()).toBeCloseTo(0.1, 15);
    for (const o of [perStep, perUpdate, one]) o.dispose();
    torch.dispose(ps);
  });
});

describe('TNT klClip (update-size control)', () => {
  /** Two optimizers on copies of the same parameters, the same statistics (one warm-start batch), one step each. */
  function pair(klClip: number, lr: number): { deltas: number[][][]; q: number; scales: number[]; quad: number } {
    const base = params(7, SHAPES);
    const x = inputs(8, 6);
    const target = torch.tensor([0, 1, 2, 3, 1, 2], { dtype: 'int64' });
    const lik = new Categorical();
    const out: number[][][] = [];
    const scales: number[] = [];
    let q = 0,
      quad = 0;
    for (const clip of [0, klClip]) {
      const ps = base.map((p) => torch.tidy(() => p.detach().clone().requiresGrad_(true)));
      const opt = new TNT(ps, { lr, klClip: clip, factorDtype: 'float64', momentum: 0.9 });
      const forward = forwardOf(ps);
      torch.manualSeed(3);
      torch.tidy(() => opt.sampledBackward(forward(x), lik, { force: true }));
      opt.updateInverses();
      torch.tidy(() => lik.loss(forward(x), target).backward());
      // q by hand: momentum starts at zero, so m = g; q = lr^2 sum <g, P(g)>
      if (clip > 0)
        q = torch.tidy(() =>
          ps.reduce((s, p) => s + lr * lr * (opt.precondition(p, p.grad!).mul(p.grad!).sum().item() as number), 0),
        );
      const before = ps.map((p) => Array.from(p.dataSync()));
      opt.inversesRefreshed = true; // keep the inverses just computed
      opt.step();
      out.push(ps.map((p, i) => Array.from(p.dataSync()).map((v, k) => v - before[i]![k]!)));
      scales.push(opt.lastStepScale);
      if (clip > 0) quad = opt.lastStepQuadratic;
      opt.dispose();
      torch.dispose(ps);
    }
    torch.dispose([base, x, target]);
    return { deltas: out, q, scales, quad };
  }

  it('scales the step by min(1, sqrt(klClip / q)), q = sum lr^2 <m, P(m)>', async () => {
    await noLeak(() => {
      const lr = 0.5;
      const probe = pair(1e30, lr); // never clips: reports q
      expect(probe.scales).toEqual([1, 1]);
      expect(probe.q).toBeGreaterThan(0);
      expect(Math.abs(probe.quad - probe.q) / probe.q).toBeLessThan(1e-10);
      // unclipped step equals the clipped one with a clip above q
      probe.deltas[0]!.forEach((d, i) => d.forEach((v, k) => expect(probe.deltas[1]![i]![k]).toBeCloseTo(v, 14)));
      // klClip = q / 4: nu = 1/2, every parameter moves half as far
      const clipped = pair(probe.q / 4, lr);
      expect(clipped.scales[1]).toBeCloseTo(0.5, 10);
      clipped.deltas[0]!.forEach((d, i) =>
        d.forEach((v, k) =>
          expect(Math.abs(clipped.deltas[1]![i]![k]! - v / 2)).toBeLessThan(1e-12 + 1e-10 * Math.abs(v)),
        ),
      );
    });
  });

  it('a non-finite gradient still skips the whole step with klClip on', async () => {
    await noLeak(() => {
      const ps = params(9, SHAPES);
      const opt = new TNT(ps, { lr: 0.1, klClip: 1e-3, factorDtype: 'float64' });
      opt.warmStarted = true;
      const before = ps.map((p) => Array.from(p.dataSync()));
      ps.forEach((p, i) => {
        const g = torch.tidy(() => torch.onesLike(p).mul(i === 2 ? NaN : 1));
        p.grad = g;
        g.dispose(); // the parameter holds its own reference
      });
      opt.step();
      expect(opt.skippedSteps).toBe(1);
      ps.forEach((p, i) => expect(Array.from(p.dataSync())).toEqual(before[i]));
      opt.zeroGrad();
      opt.dispose();
      torch.dispose(ps);
    });
  });

  it('divergenceAdvice names the learning rate, the damping and the update-size control', () => {
    const ps = params(10, SHAPES);
    const opt = new TNT(ps, { lr: 1e-4, damping: 0.1 });
    expect(opt.divergenceAdvice()).toMatch(/learning rate \(now 0\.0001.*damping \(now 0\.1.*klClip/);
    const clipped = new TNT(ps, { lr: 1e-4, klClip: 0.01 });
    expect(clipped.divergenceAdvice()).toMatch(/smaller klClip \(now 0\.01/);
    opt.dispose();
    clipped.dispose();
    torch.dispose(ps);
  });
});
