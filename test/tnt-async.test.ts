// TNT's inverses off the critical path (asyncInverses, docs/tnt.md): a native background thread computes the next
// inverses from a copy of the statistics while steps go on with the current ones. Reference: the deterministic TNT
// (the refresh inline) driven through its public API, whose inverses are computed from the statistics of the step
// the refresh was due and installed by hand at the step the asynchronous run swaps them in.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { TNT, type TNTConfig } from '../lib/optim/tnt.js';
import { Tensor } from '../lib/tensor.js';
import { Categorical } from '../lib/likelihoods.js';
import { native } from '../lib/native.js';
import { expectTorchError, lcg, maxRelDiff, noLeak } from './support/helpers.js';

const F = torch.nn.functional;
const SHAPES = [[6, 4], [6], [3, 6], [3]];

function params(seed: number): Tensor[] {
  const r = lcg(seed);
  return SHAPES.map((shape) =>
    torch.tensor(
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r()),
      { shape, dtype: 'float64', requiresGrad: true },
    ),
  );
}

function data(seed: number): { x: Tensor; y: Tensor } {
  const r = lcg(seed);
  const x = torch.tensor(
    Array.from({ length: 16 * 4 }, () => r() * 2),
    { shape: [16, 4], dtype: 'float64' },
  );
  const y = torch.tensor(
    Array.from({ length: 16 }, (_, i) => i % 3),
    { dtype: 'int64' },
  );
  return { x, y };
}

const lik = new Categorical();
const forwardOf =
  (ps: Tensor[]) =>
  (x: Tensor): Tensor =>
    torch.tidy(() => F.linear(F.linear(x, ps[0]!, ps[1]!).tanh(), ps[2]!, ps[3]!));

/** The sampled pass and the real backward of one step (the draws seeded by `seed`). */
function gradients(opt: TNT, ps: Tensor[], d: { x: Tensor; y: Tensor }, seed: number): void {
  torch.manualSeed(seed);
  torch.tidy(() => {
    const out = forwardOf(ps)(d.x);
    opt.sampledBackward(out, lik);
    lik.loss(out, d.y).backward();
  });
}

const values = (ps: Tensor[]): number[][] => ps.map((p) => Array.from(p.dataSync()));

/** The inverses the deterministic refresh computes from `ref`'s current statistics (new tensors, the caller's). */
function inversesNow(ref: TNT, ps: Tensor[], options: ConstructorParameters<typeof TNT>[1]): Tensor[][] {
  return torch.tidy(() => {
    const helper = new TNT(ps, options);
    helper.loadStateDict(ref.stateDict());
    helper.updateInverses();
    const out = ps.map((p) => torch.keep(helper.curvatureState(p)!.inverses));
    helper.dispose();
    return out;
  });
}

/** Writes `inverses` into `ref`'s state (its statistics, momenta and counters unchanged), then frees them. */
function install(ref: TNT, inverses: Tensor[][]): void {
  torch.tidy(() => {
    const sd = ref.stateDict();
    inverses.forEach((inv, k) => inv.forEach((A, i) => (sd.state[k]![`inverse${i}`] = A)));
    ref.loadStateDict(sd);
  });
  torch.dispose(inverses);
}

describe('TNT asyncInverses', () => {
  it('checks the option', () => {
    const ps = params(1);
    for (const bad of [0, -1, 1.5, 'yes', null])
      expect(() => new TNT(ps, { lr: 0.1, asyncInverses: bad as unknown as number })).toThrow(
        /asyncInverses to be true, false or a whole number of steps/,
      );
    const opts = [true, false, 3].map((a) => new TNT(ps, { lr: 0.1, asyncInverses: a }));
    expect(opts.map((o) => o.asyncInverses)).toEqual([true, false, 3]);
    for (const o of opts) o.dispose();
    torch.dispose(ps);
  });

  // (T1, T2, lag): the lag below the refresh interval, equal to it, and beyond it (a refresh due while one is
  // pending lands the pending one first), with the first-T2 rule's early refreshes and T1 > 1
  for (const [T1, T2, lag] of [
    [1, 4, 2],
    [2, 4, 1],
    [1, 3, 5],
  ] as const)
    it(`swapped in at a fixed lag, it is the deterministic run with the refresh applied that late (T1 ${T1}, T2 ${T2}, lag ${lag})`, async () => {
      await noLeak(() => {
        const ps = params(2);
        const psRef = ps.map((p) => torch.tidy(() => p.detach().clone().requiresGrad_(true)));
        const d = data(3);
        const base = { lr: 0.05, damping: 0.03, factorDtype: 'float64' as const, statsEvery: T1 };
        const opt = new TNT(ps, { ...base, inverseEvery: T2, asyncInverses: lag });
        // the reference never refreshes by itself after step 0 (inline there, as the asynchronous run's first)
        const refOptions = { ...base, inverseEvery: 1000 * T1, earlyRefresh: false };
        const ref = new TNT(psRef, refOptions);
        const due = (t: number): boolean => t % T2 === 0 || (t < T2 && t % T1 === 0);
        let pending: { inverses: Tensor[][]; due: number; swapAt: number } | null = null;
        let lagsSeen = 0;
        for (let t = 0; t < 14; t++) {
          gradients(opt, ps, d, 100 + t);
          opt.step();
          opt.zeroGrad();
          gradients(ref, psRef, d, 100 + t);
          if (pending !== null && (t >= pending.swapAt || due(t))) {
            install(ref, pending.inverses);
            expect(opt.lastInverseLag).toBe(t - pending.due);
            lagsSeen++;
            pending = null;
          }
          if (t > 0 && due(t)) pending = { inverses: inversesNow(ref, psRef, refOptions), due: t, swapAt: t + lag };
          ref.step();
          ref.zeroGrad();
          expect(maxRelDiff(values(ps), values(psRef)), `step ${t}`).toBeLessThan(1e-12);
        }
        expect(lagsSeen).toBeGreaterThan(2);
        expect(opt.backgroundThreads).toBe(1); // the thread's ATen ops ran on one intra-op thread
        if (pending !== null) torch.dispose(pending.inverses);
        opt.dispose();
        ref.dispose();
        torch.dispose([ps, psRef, d.x, d.y]);
      });
    });

  it('differs from the refresh inline (the lag changes the run), and lands at the next refresh at the latest', async () => {
    await noLeak(() => {
      const ps = params(4);
      const psInline = ps.map((p) => torch.tidy(() => p.detach().clone().requiresGrad_(true)));
      const d = data(5);
      const base = { lr: 0.05, damping: 0.03, factorDtype: 'float64' as const, inverseEvery: 3 };
      const opt = new TNT(ps, { ...base, asyncInverses: true });
      const inline = new TNT(psInline, base);
      for (let t = 0; t < 7; t++) {
        gradients(opt, ps, d, 7 + t);
        opt.step();
        opt.zeroGrad();
        gradients(inline, psInline, d, 7 + t);
        inline.step();
        inline.zeroGrad();
        if (t >= 2) expect(opt.lastInverseLag).toBeGreaterThanOrEqual(1);
        expect(opt.lastInverseLag).toBeLessThanOrEqual(3); // stale by at most one refresh (T2 = 3 steps)
      }
      expect(maxRelDiff(values(ps), values(psInline))).toBeGreaterThan(1e-6);
      // finishInverses waits and swaps in what is pending
      expect(opt.inversesPending).toBe(true);
      const r = opt.finishInverses();
      expect(r?.inverted).toBe(6);
      expect(opt.inversesPending).toBe(false);
      expect(opt.finishInverses()).toBe(null);
      opt.dispose();
      inline.dispose();
      torch.dispose([ps, psInline, d.x, d.y]);
    });
  });

  it('an error in the thread is a TorchError at the next step, which changes nothing; training then goes on', async () => {
    await noLeak(() => {
      const ps = params(6);
      const d = data(7);
      const opt = new TNT(ps, { lr: 0.05, factorDtype: 'float64', inverseEvery: 2, asyncInverses: 1 });
      gradients(opt, ps, d, 1);
      opt.step(); // step 0: inline
      opt.zeroGrad();
      gradients(opt, ps, d, 2);
      opt.step(); // step 1: not due
      opt.zeroGrad();
      gradients(opt, ps, d, 3);
      opt.failNextRefreshForTest = true;
      opt.step(); // step 2: launched (fails in the thread), stepped with the current inverses
      opt.zeroGrad();
      gradients(opt, ps, d, 4);
      const before = values(ps);
      const mom = torch.tidy(() => Array.from((opt.state.get(ps[0]!)!.momentum as Tensor).dataSync()));
      expectTorchError(() => opt.step(), null, /background inverse refresh failed: a failure injected for a test/);
      expect(values(ps)).toEqual(before);
      expect(torch.tidy(() => Array.from((opt.state.get(ps[0]!)!.momentum as Tensor).dataSync()))).toEqual(mom);
      expect(opt.stepCount).toBe(3);
      expect(opt.inversesPending).toBe(false);
      opt.step(); // the step again: it goes through
      opt.zeroGrad();
      expect(opt.stepCount).toBe(4);
      expect(maxRelDiff(values(ps), before)).toBeGreaterThan(0);
      gradients(opt, ps, d, 5);
      opt.step(); // step 4: due, launched
      opt.zeroGrad();
      expect(opt.inversesPending).toBe(true);
      gradients(opt, ps, d, 6);
      opt.step(); // step 5: lands
      opt.zeroGrad();
      expect(opt.lastInverseLag).toBe(1);
      expect(opt.lastInverseReport?.inverted).toBe(6);
      opt.dispose();
      torch.dispose([ps, d.x, d.y]);
    });
  });

  it('dispose, loadStateDict and updateInverses during a pending refresh: no crash, no leak, the refresh dropped', async () => {
    await noLeak(async () => {
      // large enough factors that the refresh is still running when dispose comes
      const ps = [torch.tidy(() => torch.randn([120, 120], { dtype: 'float64' }).requiresGrad_(true))];
      const config: TNTConfig = { inverseEvery: 1, asyncInverses: 5, factorDtype: 'float64' };
      for (const what of ['dispose', 'loadStateDict', 'updateInverses', 'stateDict', 'shutdownBlasThreads'] as const) {
        const opt = new TNT(ps, { lr: 1e-3, ...config });
        const stepOnce = (): void => {
          torch.tidy(() => {
            const g = torch.randn([120, 120], { dtype: 'float64' });
            opt.updateStatistics([g]);
            ps[0]!.grad = g.clone();
          });
          opt.step();
          ps[0]!.grad = null;
        };
        stepOnce(); // inline
        stepOnce(); // launched
        expect(opt.inversesPending).toBe(true);
        if (what === 'dispose') {
          opt.dispose();
          continue;
        }
        if (what === 'loadStateDict') {
          torch.tidy(() => opt.loadStateDict(opt.stateDict()));
          expect(opt.inversesPending).toBe(false);
        } else if (what === 'updateInverses') {
          opt.updateInverses();
          expect(opt.inversesPending).toBe(false);
          expect(opt.lastInverseLag).toBe(0);
        } else if (what === 'shutdownBlasThreads') {
          // the OpenBLAS pool restart waits for the thread; the finished refresh is kept and lands at the next step
          // (due: inverseEvery 1)
          native.shutdownBlasThreads();
          expect(opt.inversesPending).toBe(true);
          opt.lastInverseReport = null;
          stepOnce();
          expect(opt.lastInverseLag).toBe(1);
          expect(opt.lastInverseReport).toMatchObject({ inverted: 2, failed: 0 });
          opt.dispose();
          continue;
        } else {
          // a state dict reads the inverses in use; the refresh stays pending
          torch.tidy(() => {
            opt.stateDict();
          });
          expect(opt.inversesPending).toBe(true);
        }
        stepOnce();
        opt.dispose();
      }
      torch.dispose(ps);
    });
  });
});
