// optim.TNT end to end: ten steps on a small MLP against an independent float64 implementation (dense Kronecker
// solves in plain JS), the schedules, robustness (NaN, bad factors), state dicts, and argument errors.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { native } from '../lib/native.js';
import { TNT } from '../lib/optim/tnt.js';
import { Tensor } from '../lib/tensor.js';
import { lcg, noLeak } from './support/helpers.js';
import { type Mat } from './support/dense.js';
import {
  prod,
  eye,
  contraction,
  movingAverage,
  normalizedFactors,
  damped,
  kronSolve,
} from './support/tnt-reference.js';

/** A Gaussian likelihood whose "samples" are fixed draws, so both implementations see the same sampled gradients. */
function fixedGaussian(noise: () => number): { loss(o: Tensor, y: Tensor): Tensor; sample(o: Tensor): Tensor } {
  return {
    loss: (o, y) =>
      torch.tidy(() =>
        o
          .sub(y)
          .square()
          .sum()
          .mul(0.5 / o.shape[0]!),
      ),
    sample: (o) =>
      torch.tidy(() =>
        o.detach().add(torch.tensor(Array.from({ length: o.numel() }, noise), { shape: o.shape, dtype: 'float64' })),
      ),
  };
}

function mlp(seed: number): Tensor[] {
  const r = lcg(seed);
  const t = (shape: number[]): Tensor =>
    torch.tensor(
      Array.from({ length: prod(shape) }, () => r()),
      { shape, dtype: 'float64', requiresGrad: true },
    );
  return [t([4, 3]), t([4]), t([2, 4]), t([2])];
}
function forward(ps: Tensor[], x: Tensor): Tensor {
  return torch.tidy(() =>
    torch.nn.functional.linear(torch.nn.functional.linear(x, ps[0]!, ps[1]!).tanh(), ps[2]!, ps[3]!),
  );
}

describe('optim.TNT', () => {
  // both kernel paths of the packed state: the BLAS's syrk/symm where it exports them, libtorch ops otherwise
  it.each(native.tntBlasAvailable() ? [true, false] : [false])(
    'ten steps on a small MLP equal an independent float64 computation of the same steps (BLAS kernels: %s)',
    async (blasKernels) => {
      await noLeak(() => {
        const rx = lcg(5);
        const x = torch.tensor(
          Array.from({ length: 24 }, () => rx()),
          { shape: [8, 3], dtype: 'float64' },
        );
        const target = torch.tensor(
          Array.from({ length: 16 }, () => rx()),
          { shape: [8, 2], dtype: 'float64' },
        );
        const ps = mlp(1);
        const refPs = ps.map((p) => p.dataSync());
        const shapes = ps.map((p) => p.shape);
        const lr = 0.1,
          eps = 0.05,
          mu = 0.9,
          wd = 0.01,
          T1 = 1,
          T2 = 3;
        const opt = new TNT(ps, {
          lr,
          damping: eps,
          momentum: mu,
          weightDecay: wd,
          statsEvery: T1,
          inverseEvery: T2,
          factorDtype: 'float64',
          blasKernels,
        });
        expect(opt.blasKernels).toBe(blasKernels);
        const lik = fixedGaussian(lcg(11));
        const refLik = fixedGaussian(lcg(11));

        // reference state
        const H: Mat[][] = shapes.map((s) =>
          s.map((d) => Array.from({ length: d }, () => new Array<number>(d).fill(0))),
        );
        let A: Mat[][] = shapes.map((s) => s.map((d) => eye(d).map((row) => row.map((v) => v * eps))));
        const m: number[][] = shapes.map((s) => new Array<number>(prod(s)).fill(0));
        let statsCount = 0;

        for (let t = 0; t < 10; t++) {
          // --- reference, on its own parameter copies
          const rps = refPs.map((v, i) => torch.tensor(v, { shape: shapes[i]!, dtype: 'float64', requiresGrad: true }));
          const rout = forward(rps, x);
          if (t % T1 === 0) {
            const sg = torch.tidy(() => torch.grad(refLik.loss(rout, refLik.sample(rout)), rps, { retainGraph: true }));
            const w = Math.max(1 / (statsCount + 1), 0.1);
            sg.forEach((g, p) => {
              const gv = g!.dataSync();
              shapes[p]!.forEach((_, i) => (H[p]![i] = movingAverage(H[p]![i]!, contraction(gv, shapes[p]!, i), w)));
            });
            torch.dispose(sg);
            statsCount++;
          }
          if (t % T2 === 0 || (t < T2 && t % T1 === 0)) {
            A = shapes.map((s, p) => normalizedFactors(H[p]!, s).map((U) => damped(U, eps)));
          }
          const rl = torch.tidy(() =>
            rout
              .sub(target)
              .square()
              .sum()
              .mul(0.5 / 8),
          );
          const rg = torch.grad(rl, rps);
          rps.forEach((_, p) => {
            const g = rg[p]!.dataSync();
            m[p] = m[p]!.map((v, k) => mu * v + g[k]!);
            const dir = kronSolve(A[p]!, m[p]!);
            refPs[p] = refPs[p]!.map((v, k) => v * (1 - lr * wd) - lr * dir[k]!);
          });
          torch.dispose([rps, rout, rl, rg]);

          // --- the optimizer
          torch.tidy(() => {
            const out = forward(ps, x);
            expect(opt.sampledBackward(out, lik)).toBe(t % T1 === 0);
            out
              .sub(target)
              .square()
              .sum()
              .mul(0.5 / 8)
              .backward();
            opt.step();
            opt.zeroGrad();
          });
          ps.forEach((p, i) => {
            const got = p.dataSync();
            const want = refPs[i]!;
            const err = Math.sqrt(
              got.reduce((s, v, k) => s + (v - want[k]!) ** 2, 0) / want.reduce((s, v) => s + v * v, 0),
            );
            expect(err, `step ${t} parameter ${i}`).toBeLessThan(1e-10);
          });
        }
        expect(opt.stepCount).toBe(10);
        expect(opt.statsUpdates).toBe(10);
        opt.dispose();
        torch.dispose([x, target, ps]);
      });
    },
  );

  it('follows the T1/T2 schedule with the first-T2 rule', () => {
    const p = torch.zeros([3, 2], { requiresGrad: true });
    const opt = new TNT([p], { lr: 0.1, statsEvery: 10, inverseEvery: 100 });
    const stats: number[] = [],
      invs: number[] = [];
    for (let t = 0; t < 300; t++) {
      if (opt.statisticsDue()) stats.push(t);
      if (opt.inversesDue()) invs.push(t);
      opt.stepCount++;
    }
    expect(stats).toEqual(Array.from({ length: 30 }, (_, i) => i * 10));
    expect(invs).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200]);
    opt.dispose();
    p.dispose();
  });

  it('weights early statistics by max(1/(t+1), 1 - statDecay), and uses the plain average after a warm start', async () => {
    await noLeak(async () => {
      const p = torch.zeros([2], { requiresGrad: true, dtype: 'float64' });
      const opt = new TNT([p], { lr: 0.1, factorDtype: 'float64' });
      const g = (a: number, b: number): Tensor => torch.tensor([a, b], { dtype: 'float64' });
      const gs = [g(1, 0), g(0, 2), g(3, 1)];
      for (const x of gs) opt.updateStatistics([x]);
      // H = G0 -> (G0 + G1)/2 -> 2/3 * previous + 1/3 G2 (weights 1, 1/2, 1/3 while above 0.1)
      const outer = (a: number[]): number[] => [a[0]! * a[0]!, a[0]! * a[1]!, a[1]! * a[0]!, a[1]! * a[1]!];
      const o = gs.map((x) => outer(x.dataSync()));
      const want = o[0]!.map((_, k) => ((o[0]![k]! + o[1]![k]!) / 2) * (2 / 3) + o[2]![k]! / 3);
      expect(torch.tidy(() => opt.curvatureState(p)!.factors[0]!.dataSync())).toEqual(
        want.map((v) => expect.closeTo(v, 14)),
      );
      // warm start: plain running mean of the batches, then 1 - statDecay
      const lik = { loss: (o2: Tensor, y: Tensor) => o2.mul(y).sum(), sample: (o2: Tensor) => torch.onesLike(o2) };
      const seen: number[][] = [];
      const batches = [torch.tensor([1, 2], { dtype: 'float64' }), torch.tensor([3, -1], { dtype: 'float64' })];
      const n = await opt.warmStart(
        batches,
        (x) => {
          seen.push(x.dataSync());
          return x.mul(p).sum().reshape([1]);
        },
        lik,
      );
      expect(n).toBe(2);
      expect(opt.warmStarted).toBe(true);
      const mean = seen.map(outer).reduce((acc, v) => acc.map((a, k) => a + v[k]! / 2), [0, 0, 0, 0]);
      expect(torch.tidy(() => opt.curvatureState(p)!.factors[0]!.dataSync())).toEqual(
        mean.map((v) => expect.closeTo(v, 14)),
      );
      expect(opt.statisticsWeight()).toBeCloseTo(0.1, 15);
      torch.dispose([gs, batches]);
      opt.dispose();
      p.dispose();
    });
  });

  it('skips a step whose gradient is not finite, keeping parameters and momentum, or throws when asked', async () => {
    await noLeak(() => {
      const p = torch.tensor(
        [
          [1, 2],
          [3, 4],
        ],
        { requiresGrad: true },
      );
      const opt = new TNT([p], { lr: 0.1 });
      const setGrad = (v: number[][]): void => {
        const g = torch.tensor(v);
        p.grad = g;
        g.dispose(); // the parameter holds its own reference
      };
      const stat = torch.tensor([
        [1, 0.5],
        [-0.5, 2],
      ]);
      opt.updateStatistics([stat]); // a step needs statistics (NO_STATISTICS otherwise)
      setGrad([
        [1, 1],
        [1, 1],
      ]);
      opt.step();
      const after1 = p.dataSync();
      const mom = (opt.state.get(p)!.momentum as Tensor).dataSync();
      setGrad([
        [NaN, 1],
        [1, 1],
      ]);
      opt.step();
      expect(p.dataSync()).toEqual(after1);
      expect((opt.state.get(p)!.momentum as Tensor).dataSync()).toEqual(mom);
      expect(opt.skippedSteps).toBe(1);
      const strict = new TNT([p], { lr: 0.1, onNonFinite: 'throw' });
      strict.updateStatistics([stat]);
      stat.dispose();
      expect(() => strict.step()).toThrow(
        expect.objectContaining({
          name: 'TorchError',
          code: 'NON_FINITE',
          message: expect.stringContaining('a gradient holds NaN'),
        }),
      );
      // a non-finite sampled gradient never reaches the statistics
      const inf = torch.tensor([
        [Infinity, 0],
        [0, 0],
      ]);
      opt.updateStatistics([inf]);
      inf.dispose();
      expect(opt.skippedStatistics).toBe(1);
      expect(torch.tidy(() => opt.curvatureState(p)!.factors.every((f) => f.isfinite().all().item()))).toBe(true);
      p.grad = null;
      void p.grad;
      strict.dispose();
      opt.dispose();
      p.dispose();
    });
  });

  it('uses a diagonal factor above maxFactorDim and reports its state bytes by the formula', async () => {
    await noLeak(() => {
      const w = torch.zeros([3, 10], { requiresGrad: true });
      const b = torch.zeros([3], { requiresGrad: true });
      const s = torch.zeros([1], { requiresGrad: true });
      const conv = torch.zeros([4, 2, 3, 3], { requiresGrad: true });
      const opt = new TNT([w, b, s, conv], { lr: 0.1, maxFactorDim: 8 });
      for (const p of [w, b, s, conv]) {
        const g = torch.onesLike(p);
        p.grad = g;
        g.dispose();
      }
      opt.updateStatistics([w, b, s, conv].map((p) => p.grad));
      opt.step();
      expect(torch.tidy(() => opt.curvatureState(w)!.factors.map((f) => f.shape))).toEqual([[3, 3], [10]]);
      expect(torch.tidy(() => opt.curvatureState(b)!.shape)).toEqual([3]);
      expect(torch.tidy(() => opt.curvatureState(s)!.shape)).toEqual([]);
      expect(torch.tidy(() => opt.curvatureState(conv)!.shape)).toEqual([4, 2, 9]);
      expect(torch.tidy(() => opt.curvatureState(conv)!.factors.map((f) => f.shape))).toEqual([[4, 4], [2, 2], [9]]);
      // float32, packed: d^2 + d for a full factor (statistics and inverse in one buffer, and diag(H)), 2d for a
      // diagonal one (here 10 and 9 > maxFactorDim), plus momentum (numel)
      const want = 4 * (9 + 3 + 2 * 10 + (9 + 3) + (16 + 4) + (4 + 2) + 2 * 9 + (30 + 3 + 1 + 72));
      expect(opt.stateBytes()).toBe(want);
      for (const p of [w, b, s, conv]) {
        p.grad = null;
        void p.grad;
      }
      opt.dispose();
      torch.dispose([w, b, s, conv]);
    });
  });

  it('a resumed run continues identically from stateDict()', async () => {
    await noLeak(() => {
      const rx = lcg(3);
      const x = torch.tensor(
        Array.from({ length: 24 }, () => rx()),
        { shape: [8, 3], dtype: 'float64' },
      );
      const run = (ps: Tensor[], opt: TNT, lik: ReturnType<typeof fixedGaussian>, steps: number): void => {
        for (let t = 0; t < steps; t++)
          torch.tidy(() => {
            const out = forward(ps, x);
            opt.sampledBackward(out, lik);
            out.square().sum().backward();
            opt.step();
            opt.zeroGrad();
          });
      };
      const a = mlp(2),
        b = mlp(2);
      const cfg = { lr: 0.05, statsEvery: 1, inverseEvery: 4, factorDtype: 'float64' as const };
      const optA = new TNT(a, cfg);
      const noiseA = lcg(8),
        noiseB = lcg(8);
      run(a, optA, fixedGaussian(noiseA), 5);
      // b catches up to a's parameters and optimizer state, then both continue
      a.forEach((p, i) => torch.noGrad(() => b[i]!.copy_(p)));
      for (let i = 0; i < 5 * 16; i++) noiseB();
      const optB = new TNT(b, cfg);
      torch.tidy(() => optB.loadStateDict(optA.stateDict()));
      // loading its own state dict changes nothing; corrupt counters are refused before anything changes
      torch.tidy(() => optA.loadStateDict(optA.stateDict()));
      torch.tidy(() => {
        const sd = optA.stateDict();
        expect(() => optA.loadStateDict({ ...sd, tnt: { ...sd.tnt, stepCount: -1 } })).toThrow(
          'Expected a non-negative integer for stateDict.tnt.stepCount but received -1',
        );
        expect(() => optA.loadStateDict({ ...sd, tnt: { ...sd.tnt, warmStarted: 1 } })).toThrow(
          'Expected a boolean for stateDict.tnt.warmStarted but received 1',
        );
        expect(() => optA.loadStateDict({ ...sd, tnt: { ...sd.tnt, steps: 3 } })).toThrow(
          "stateDict.tnt has 'steps', which is not one of stepCount",
        );
        expect(() =>
          optA.loadStateDict({ ...sd, state: { ...sd.state, 0: { ...sd.state[0], expAvg: sd.state[0]!.momentum! } } }),
        ).toThrow("state[0] has 'expAvg', which TNT does not keep (it keeps momentum)");
      });
      expect(optA.stepCount).toBe(5);
      run(a, optA, fixedGaussian(noiseA), 5);
      run(b, optB, fixedGaussian(noiseB), 5);
      a.forEach((p, i) => expect(b[i]!.dataSync()).toEqual(p.dataSync()));
      expect(optB.stepCount).toBe(10);
      optA.dispose();
      optB.dispose();
      torch.dispose([a, b, x]);
    });
  });

  it('rejects bad hyperparameters and mismatched gradient lists with clear errors', () => {
    const p = torch.zeros([2, 2], { requiresGrad: true });
    expect(() => new TNT([p], { lr: -1 })).toThrow(
      new RangeError('Expected a non-negative number for lr but received -1 of type number'),
    );
    expect(() => new TNT([p], { lr: 0.1, damping: 0 })).toThrow(
      new RangeError('Expected a positive number for damping but received 0 of type number'),
    );
    expect(() => new TNT([p], { lr: 0.1, statDecay: 1 })).toThrow(
      new RangeError('Expected a number in [0, 1) for statDecay but received 1 of type number'),
    );
    expect(() => new TNT([p], { lr: 0.1, statsEvery: 3, inverseEvery: 10 })).toThrow(
      'Expected inverseEvery (10) to be a multiple of statsEvery (3)',
    );
    expect(() => new TNT([p], { lr: 0.1, statsEvery: 0 })).toThrow(
      new RangeError('Expected a positive integer for statsEvery but received 0 of type number'),
    );
    expect(() => new TNT([p], { lr: 0.1, factorDtype: 'int32' as 'float32' })).toThrow(RangeError);
    expect(() => new TNT([p], { lr: 0.1, stat_decay: 0.9 } as never)).toThrow("TNT: unknown option 'stat_decay'");
    const opt = new TNT([p], { lr: 0.1 });
    expect(() => opt.updateStatistics([])).toThrow(
      'updateStatistics: expected 1 gradients (one per parameter) but received 0',
    );
    const wrong = torch.zeros([3]);
    expect(() => opt.updateStatistics([wrong])).toThrow(
      'updateStatistics: sampledGrads[0] has shape [3] but parameter 0 has shape [2, 2]',
    );
    expect(() => opt.sampledBackward(wrong, {} as never)).toThrow(TypeError);
    wrong.dispose();
    opt.dispose();
    p.dispose();
  });
});
