// CUDA: runs where libtorch has CUDA (scripts/gpu-check.sh on a GPU machine); skipped elsewhere with the reason.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { TNT } from '../lib/optim/tnt.js';
import { noLeak } from './support/helpers.js';

const hasCuda = torch.cuda.isAvailable();

describe.skipIf(!hasCuda)('CUDA (libtorch built with CUDA and a GPU present)', () => {
  it('moves tensors with to("cuda") and computes the same values as the CPU', async () => {
    await noLeak(() => {
      torch.manualSeed(0);
      const a = torch.randn([64, 32], { dtype: 'float64' });
      const b = torch.randn([32, 16], { dtype: 'float64' });
      const ga = a.to('cuda'), gb = b.to('cuda');
      expect(ga.device).toBe('cuda:0');
      const cpu = a.matmul(b).relu().sum(1);
      const gpu = ga.matmul(gb).relu().sum(1).cpu();
      expect(gpu.allclose(cpu, { rtol: 1e-10, atol: 1e-12 })).toBe(true);
      torch.dispose([a, b, ga, gb, cpu, gpu]);
    });
  });

  it('runs autograd and Cholesky (cuSOLVER) on the device', async () => {
    await noLeak(() => {
      const x = torch.randn([8, 8], { device: 'cuda', dtype: 'float64', requiresGrad: true });
      const spd = torch.tidy(() => x.matmul(x.t()).add(torch.eye(8, { device: 'cuda', dtype: 'float64' })));
      const L = torch.linalg.cholesky(spd);
      const s = L.sum();
      s.backward();
      expect(x.grad!.device).toBe('cuda:0');
      const back = torch.tidy(() => L.matmul(L.t()).sub(spd).abs().max().item());
      expect(back).toBeLessThan(1e-10);
      torch.dispose([x, spd, L, s]);
    });
  });

  it('a TNT step on CUDA equals the same step on the CPU', async () => {
    await noLeak(() => {
      torch.manualSeed(1);
      const w0 = torch.randn([20, 10], { dtype: 'float64' });
      const g = torch.randn([20, 10], { dtype: 'float64' });
      const run = (device: 'cpu' | 'cuda'): number[] => {
        const w = w0.to(device).requiresGrad_();
        const opt = new TNT([w], { lr: 0.1, factorDtype: 'float64' });
        const gd = g.to(device);
        opt.updateStatistics([gd]);
        w.grad = gd;
        opt.step();
        const out = w.cpu();
        const v = out.dataSync();
        torch.dispose([w, gd, out]);
        opt.dispose();
        return v;
      };
      const a = run('cpu'), b = run('cuda');
      a.forEach((v, i) => expect(b[i]!).toBeCloseTo(v, 10));
      torch.dispose([w0, g]);
    });
  });
});

describe.skipIf(hasCuda)('without CUDA', () => {
  it('says CUDA is unavailable and refuses a cuda tensor with a TorchError, not a crash', () => {
    expect(torch.cuda.isAvailable()).toBe(false);
    expect(torch.cuda.deviceCount()).toBe(0);
    expect(() => torch.zeros([2], { device: 'cuda' })).toThrow(torch.TorchError);
  });
});
