// Tensor hooks (registerHook) and module backward hooks, against hand-computed gradients and PyTorch's semantics.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { nn, Tensor } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

const f64 = (v: number[] | number[][], requiresGrad = false): Tensor => torch.tensor(v, { dtype: 'float64', requiresGrad });

describe('Tensor.registerHook', () => {
  it('sees the gradient of an intermediate tensor, and a returned tensor replaces it downstream', async () => {
    await noLeak(() => {
      // y = 3x, L = sum(y^2): dL/dy = 2y = 6x; dL/dx = 3 dL/dy
      const x = f64([1, -2], true);
      const seen: number[][] = [];
      torch.tidy(() => {
        const y = x.mul(3);
        const h = y.registerHook((g) => {
          seen.push(g.dataSync());
          return g.mul(10);
        });
        y.square().sum().backward();
        h.remove();
      });
      expect(seen).toEqual([[6, -12]]);
      expect(x.grad!.dataSync()).toEqual([180, -360]); // 3 * 10 * 6x
      x.dispose();
    });
  });

  it('on a leaf runs before accumulation into .grad; returning nothing leaves the gradient; remove() stops it', async () => {
    await noLeak(() => {
      const w = f64([2, 5], true);
      let calls = 0;
      const h = w.registerHook((g) => {
        calls++;
        expect(g.dataSync()).toEqual([1, 1]);
      });
      torch.tidy(() => w.sum().backward());
      expect(w.grad!.dataSync()).toEqual([1, 1]);
      const h2 = w.registerHook((g) => g.mul(-1));
      torch.tidy(() => w.sum().backward());
      expect(w.grad!.dataSync()).toEqual([0, 0]); // 1 + (-1): the second hook flipped the second gradient
      h.remove();
      h2.remove();
      h2.remove(); // idempotent
      torch.tidy(() => w.sum().backward());
      expect(w.grad!.dataSync()).toEqual([1, 1]);
      expect(calls).toBe(2);
      w.dispose();
    });
  });

  it('runs under autograd.grad, and in place of nothing keeps the gradient', async () => {
    await noLeak(() => {
      const x = f64([3], true);
      torch.tidy(() => {
        const y = x.square(); // dy/dx = 2x = 6
        y.registerHook((g) => g.add(1)); // dL/dy: 1 -> 2
        const [gx] = torch.autograd.grad([y.sum()], [x]);
        expect(gx!.item()).toBe(12);
      });
      x.dispose();
    });
  });

  it('an exception thrown by the hook reaches the caller of backward() unchanged, and the process goes on', async () => {
    await noLeak(() => {
      const x = f64([1, 2], true);
      class HookFailure extends Error {}
      torch.tidy(() => {
        const y = x.mul(2);
        y.registerHook(() => {
          throw new HookFailure('stop here');
        });
        const l = y.sum();
        let caught: unknown;
        try {
          l.backward();
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(HookFailure);
        expect((caught as Error).message).toBe('stop here');
      });
      // a later backward works
      torch.tidy(() => x.mul(2).sum().backward());
      expect(x.grad!.dataSync()).toEqual([2, 2]);
      x.dispose();
    });
  });

  it('refuses a replacement of another shape or dtype, a non-tensor, and a tensor that does not require grad', async () => {
    await noLeak(() => {
      const x = f64([1, 2], true);
      const cases: [(g: Tensor) => unknown, RegExp | string][] = [
        (g) => g.sum(),
        (g) => g.float(),
        () => 3,
      ].map((f, i) => [f, [/hook has changed the size of value: expected \[2\] but got \[\]/, /hook has changed the type of value: expected Double/, 'Expected a Tensor or nothing for the value returned by the hook but received 3'][i]!]);
      for (const [fn, message] of cases)
        torch.tidy(() => {
          const y = x.mul(1);
          y.registerHook(fn as (g: Tensor) => Tensor);
          expect(() => y.sum().backward()).toThrow(message);
        });
      const c = f64([1]);
      expect(() => c.registerHook(() => undefined)).toThrow(/cannot register a hook on a (tensor|variable) that doesn't require gradient/);
      expect(() => x.registerHook(3 as never)).toThrow(TypeError);
      torch.dispose([x, c]);
    });
  });

  it('a kept gradient outlives the hook; tensors it creates are freed after it', async () => {
    await noLeak(() => {
      const x = f64([4], true);
      let kept: Tensor | null = null;
      torch.tidy(() => {
        const y = x.mul(2);
        y.registerHook((g) => {
          g.mul(5); // freed after the hook
          kept = torch.keep(g.clone());
        });
        y.sum().backward();
      });
      expect(kept!.item()).toBe(1);
      kept!.dispose();
      x.dispose();
    });
  });
});
