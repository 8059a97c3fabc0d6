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
      const ga = a.to('cuda'),
        gb = b.to('cuda');
      expect(ga.device).toBe('cuda:0');
      const cpu = a.matmul(b).relu().sum(1);
      const gpu = ga.matmul(gb).relu().sum(1).cpu();
      expect(gpu.allclose(cpu, { rtol: 1e-10, atol: 1e-12 })).toBe(true);
      torch.dispose([a, b, ga, gb, cpu, gpu]);
    });
  });

  it("Module.to('cuda') keeps the parameters an optimizer holds; a gradient hook in a CUDA backward is a TorchError", async () => {
    await noLeak(() => {
      const lin = new torch.nn.Linear(4, 2);
      const opt = new torch.optim.SGD(lin.parameters(), { lr: 0.1 });
      const w = lin.weight;
      lin.to('cuda');
      expect(lin.weight).toBe(w);
      expect(w.device).toBe('cuda:0');
      const x = torch.randn([3, 4], { device: 'cuda' });
      torch.tidy(() => lin.call(x).sum().backward());
      opt.step(); // the optimizer's parameters are the module's, now on the device
      const y = torch.tidy(() => lin.call(x));
      y.registerHook((g) => g.mul(2));
      const l = y.sum();
      lin.zeroGrad();
      // libtorch runs a CUDA backward on its device threads, where JavaScript cannot run: a TorchError says so.
      // Should a libtorch run this hook on the calling thread, it must act: the bias gradient is 2 * 3 per entry.
      let error: unknown = null;
      try {
        l.backward();
      } catch (e) {
        error = e;
      }
      if (error !== null)
        expect(String((error as Error).message)).toMatch(/only the thread that called backward\(\) can do/);
      else expect(lin.bias!.grad!.cpu().dataSync()).toEqual([6, 6]);
      torch.dispose([x, y, l]);
      opt.dispose();
      lin.dispose();
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
      const a = run('cpu'),
        b = run('cuda');
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
