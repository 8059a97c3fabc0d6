// Non-finite safety of the second-order optimizers covers the update, not only the gradient: a NaN restored into the
// momentum or an inverse, or an update that overflows, skips the whole step (counted; a TorchError with
// onNonFinite 'throw'); statistics that would overflow are not folded in (counted); a model output holding NaN makes
// the sampled backward pass skip instead of failing in the sampler.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { optim, nn, Tensor, Bernoulli, Gaussian } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

type Curv = optim.TNT | optim.KFAC | optim.Shampoo;

function setGrad(p: Tensor, value: number): void {
  const g = torch.fullLike(p, value);
  p.grad = g;
  g.dispose();
}

/** Every parameter and momentum buffer, as numbers. */
function snapshot(opt: Curv, params: Tensor[]): number[][] {
  return [
    ...params.map((p) => p.dataSync() as number[]),
    ...params.map((p) => (opt.state.get(p)?.momentum as Tensor | undefined)?.dataSync() as number[]),
  ];
}

/** A Linear layer with one step taken (statistics gathered), ready for a second. */
function trained(
  kind: 'TNT' | 'KFAC' | 'Shampoo',
  options: Record<string, unknown> = {},
): { layer: nn.Linear; opt: Curv; x: Tensor } {
  torch.manualSeed(0);
  const layer = new nn.Linear(3, 2);
  const x = torch.randn([4, 3]);
  const opt: Curv =
    kind === 'TNT'
      ? new optim.TNT(layer.parameters(), { lr: 0.1, statsEvery: 5, inverseEvery: 10, ...options })
      : kind === 'KFAC'
        ? new optim.KFAC(layer, { lr: 0.1, statsEvery: 5, inverseEvery: 10, ...options })
        : new optim.Shampoo(layer.parameters(), { lr: 0.1, statsEvery: 5, inverseEvery: 10, ...options });
  torch.tidy(() => {
    const out = layer.call(x) as Tensor;
    opt.beforeBackward(out, new Gaussian());
    out.sum().backward();
    opt.step();
    opt.zeroGrad();
  });
  return { layer, opt, x };
}

describe('non-finite safety covers the update', () => {
  for (const kind of ['TNT', 'KFAC', 'Shampoo'] as const) {
    it(`${kind}: a NaN restored into a momentum buffer skips the whole step (and throws when asked)`, async () => {
      await noLeak(() => {
        const { layer, opt, x } = trained(kind);
        const params = layer.parameters();
        torch.tidy(() => {
          const sd = opt.stateDict();
          const m = sd.state[1]!.momentum as Tensor; // the bias's momentum: NaN in one element
          const v = [...(m.dataSync() as number[])];
          v[0] = NaN;
          sd.state[1]!.momentum = torch.tensor(v, { shape: m.shape });
          opt.loadStateDict(sd);
        });
        for (const p of params) setGrad(p, 0.5);
        const before = snapshot(opt, params);
        opt.step();
        expect(snapshot(opt, params)).toEqual(before); // the weight too, though its own momentum was finite
        expect(opt.skippedSteps).toBe(1);
        (opt as { onNonFinite: string }).onNonFinite = 'throw';
        expect(() => opt.step()).toThrow(
          `${kind}: the update (momentum or parameters) would hold NaN or Infinity at step 2; the step was not applied`,
        );
        expect(snapshot(opt, params)).toEqual(before);
        opt.zeroGrad();
        opt.dispose();
        layer.dispose();
        x.dispose();
      });
    });

    it(`${kind}: an update that overflows float32 skips the step, counted`, async () => {
      await noLeak(() => {
        const { layer, opt, x } = trained(kind);
        const params = layer.parameters();
        for (const g of opt.paramGroups) g.lr = 3e38; // finite, but lr * direction overflows float32
        for (const p of params) setGrad(p, 10);
        const before = snapshot(opt, params);
        opt.step();
        expect(snapshot(opt, params)).toEqual(before);
        expect(opt.skippedSteps).toBe(1);
        for (const g of opt.paramGroups) g.lr = 0.1; // a sane step goes through afterwards
        opt.step();
        expect(opt.skippedSteps).toBe(1);
        expect(snapshot(opt, params)).not.toEqual(before);
        opt.zeroGrad();
        opt.dispose();
        layer.dispose();
        x.dispose();
      });
    });
  }

  it('TNT: a NaN restored into an inverse skips the step until the inverses are refreshed', async () => {
    await noLeak(() => {
      const { layer, opt, x } = trained('TNT');
      const tnt = opt as optim.TNT;
      const params = layer.parameters();
      torch.tidy(() => {
        const sd = tnt.stateDict();
        sd.state[0]!.inverse1 = (sd.state[0]!.inverse1 as Tensor).clone().fill_(NaN);
        tnt.loadStateDict(sd);
      });
      for (const p of params) setGrad(p, 0.5);
      const before = snapshot(tnt, params);
      tnt.step(); // step 1: no refresh due (statsEvery 5, inverseEvery 10)
      expect(snapshot(tnt, params)).toEqual(before);
      expect(tnt.skippedSteps).toBe(1);
      opt.zeroGrad();
      opt.dispose();
      layer.dispose();
      x.dispose();
    });
  });

  it('TNT, Shampoo and KFAC: statistics that would overflow float32 are not folded in, and are counted', async () => {
    await noLeak(() => {
      const { layer, opt, x } = trained('TNT');
      const tnt = opt as optim.TNT;
      const factors = (): number[][] =>
        torch.tidy(() => tnt.curvatureState(layer.weight)!.factors.map((f) => f.dataSync() as number[]));
      const f0 = factors();
      const huge = torch.full([2, 3], 1e20); // finite, but its square is not in float32
      const ok = torch.full([2], 1);
      tnt.updateStatistics([huge, ok]);
      expect(tnt.skippedStatistics).toBe(1);
      expect(factors()).toEqual(f0);
      expect(factors().flat().every(Number.isFinite)).toBe(true);

      const sh = new optim.Shampoo(layer.parameters(), { lr: 0.1 });
      expect(sh.updateStatistics([huge, ok])).toBe(false);
      expect(
        torch.tidy(() => sh.params.every((p) => sh.curvatureState(p)!.factors.every((f) => f.isfinite().all().item()))),
      ).toBe(true);

      const kfac = new optim.KFAC(layer, { lr: 0.1 });
      const A0 = kfac.curvatureState(layer).A.dataSync();
      const g = torch.ones([4, 2]);
      const a = torch.full([4, 3], 1e20);
      kfac.updateStatistics([{ module: layer, input: a, outputGrad: g }]);
      expect(kfac.skippedStatistics).toBe(1);
      expect(kfac.curvatureState(layer).A.dataSync()).toEqual(A0);
      torch.dispose([huge, ok, g, a]);
      sh.dispose();
      kfac.dispose();
      opt.dispose();
      layer.dispose();
      x.dispose();
    });
  });

  for (const kind of ['TNT', 'KFAC'] as const)
    it(`${kind}: a NaN model output makes the sampled backward pass skip (counted), not throw, and later steps work`, async () => {
      await noLeak(() => {
        const { layer, opt, x } = trained(kind, { statsEvery: 1, inverseEvery: 1 });
        const tnt = opt as optim.TNT | optim.KFAC;
        const lik = new Bernoulli(); // sampling Bernoulli(sigmoid(NaN)) fails in libtorch
        const stats = tnt.statsUpdates;
        torch.tidy(() => {
          const out = (layer.call(x) as Tensor).mul(NaN);
          expect(tnt.sampledBackward(out, lik)).toBe(false);
        });
        expect(tnt.skippedStatistics).toBe(1);
        expect(tnt.statsUpdates).toBe(stats);
        torch.tidy(() => {
          const out = layer.call(x) as Tensor;
          expect(tnt.sampledBackward(out, lik)).toBe(true);
          lik.loss(out, torch.onesLike(out).mul(0.5)).backward();
          tnt.step();
          tnt.zeroGrad();
        });
        expect(tnt.statsUpdates).toBe(stats + 1);
        expect(tnt.skippedSteps).toBe(0);
        opt.dispose();
        layer.dispose();
        x.dispose();
      });
    });
});
