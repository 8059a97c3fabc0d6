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
        [(g: Tensor) => g.sum(), /hook has changed the size of value: expected \[2\] but got \[\]/],
        [(g: Tensor) => g.float(), /hook has changed the type of value: expected Double/],
        [() => 3, 'Expected a Tensor or nothing for the value returned by the hook but received 3'],
      ];
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

describe('module backward hooks', () => {
  // y = x W^T + b with L = sum(y^2) / 2: dL/dy = y, dL/dx = y W, dL/dW = y^T x (computed by hand below)
  const W = [[1, -2, 0.5], [0.25, 3, -1]];
  const B = [0.5, -1];
  const X = [[1, 2, 3], [-1, 0.5, 2], [0, -3, 1], [2, 2, -2]];
  const Y = X.map((r) => W.map((w, o) => w.reduce((s, v, k) => s + v * r[k]!, B[o]!)));
  const YW = Y.map((y) => W[0]!.map((_, k) => y.reduce((s, v, o) => s + v * W[o]![k]!, 0)));
  const YtX = W.map((_, o) => W[0]!.map((_, k) => Y.reduce((s, y, n) => s + y[o]! * X[n]![k]!, 0)));
  const layer = (): nn.Linear => {
    const lin = new nn.Linear(3, 2, { dtype: 'float64' });
    torch.tidy(() => torch.noGrad(() => {
      lin.weight.copy_(f64(W));
      lin.bias!.copy_(f64(B));
    }));
    return lin;
  };
  const lossOf = (y: Tensor): Tensor => y.square().sum().div(2);
  const flat = (m: number[][]): number[] => m.flat();
  const close = (got: number[], want: number[]): void => got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));

  it('gradOutput is dL/dy and gradInput dL/dx, as computed by hand; the parameters get their usual gradients', async () => {
    await noLeak(() => {
      const lin = layer();
      const x = f64(X, true);
      const seen: { gi: number[][]; go: number[][] }[] = [];
      const h = lin.registerFullBackwardHook((m, gi, go) => {
        expect(m).toBe(lin);
        seen.push({ gi: gi.map((t) => t!.dataSync()), go: go.map((t) => t!.dataSync()) });
      });
      torch.tidy(() => lossOf(lin.call(x)).backward());
      expect(seen.length).toBe(1);
      close(seen[0]!.go[0]!, flat(Y));
      close(seen[0]!.gi[0]!, flat(YW));
      close(x.grad!.dataSync(), flat(YW));
      close(lin.weight.grad!.dataSync(), flat(YtX));
      h.remove();
      lin.zeroGrad();
      torch.tidy(() => lossOf(lin.call(x)).backward());
      expect(seen.length).toBe(1); // removed
      lin.dispose();
      x.dispose();
    });
  });

  it('a pre-hook may replace gradOutput (the backward hook and every gradient see it), a backward hook gradInput', async () => {
    await noLeak(() => {
      const lin = layer();
      const x = f64(X, true);
      let go: number[] = [];
      lin.registerFullBackwardPreHook((_m, [g]) => [g!.mul(2)]);
      lin.registerFullBackwardHook((_m, [gi], [g]) => {
        go = g!.dataSync();
        return [gi!.mul(0)];
      });
      torch.tidy(() => lossOf(lin.call(x)).backward());
      close(go, flat(Y).map((v) => 2 * v));
      close(lin.weight.grad!.dataSync(), flat(YtX).map((v) => 2 * v));
      close(x.grad!.dataSync(), new Array(12).fill(0));
      lin.dispose();
      x.dispose();
    });
  });

  it('a first layer fed with data (no input requires grad) gets gradInput [null] and gradOutput', async () => {
    await noLeak(() => {
      const lin = layer();
      const x = f64(X);
      let got: [boolean, number[]] | null = null;
      lin.registerFullBackwardHook((_m, [gi], [g]) => void (got = [gi === null, g!.dataSync()]));
      torch.tidy(() => lossOf(lin.call(x)).backward());
      expect(got![0]).toBe(true);
      close(got![1], flat(Y));
      lin.dispose();
      x.dispose();
    });
  });

  it("gives KFAC what it needs: a forward hook's input and the backward hook's gradOutput make the weight gradient", async () => {
    await noLeak(() => {
      const net = new nn.Sequential(layer(), new nn.Tanh(), new nn.Linear(2, 2, { dtype: 'float64' }));
      const first = net.at(0) as nn.Linear;
      let a: Tensor | null = null, g: Tensor | null = null;
      first.registerForwardHook((_m, [inp]) => void (a = torch.keep((inp as Tensor).clone())));
      first.registerFullBackwardHook((_m, _gi, [go]) => void (g = torch.keep(go!.clone())));
      const x = f64(X);
      torch.tidy(() => net.call(x).square().sum().backward());
      // dL/dW = g^T a for a linear layer
      const gw = torch.tidy(() => g!.t().matmul(a!).dataSync());
      close(first.weight.grad!.dataSync(), gw);
      torch.dispose([a, g, x]);
      net.dispose();
    });
  });

  it('hooks on a container see the gradients at its boundary; a forward without backward frees what it held', async () => {
    await noLeak(() => {
      const lin = layer();
      const net = new nn.Sequential(lin);
      const x = f64(X, true);
      const order: string[] = [];
      lin.registerFullBackwardHook(() => void order.push('inner'));
      let gi: number[] = [];
      net.registerFullBackwardHook((_m, [g]) => {
        order.push('outer');
        gi = g!.dataSync();
      });
      torch.tidy(() => lossOf(net.call(x)).backward());
      expect(order).toEqual(['inner', 'outer']);
      close(gi, flat(YW));
      // forward passes whose backward never runs, then no-grad forwards (no hooks wired)
      torch.tidy(() => void net.call(x));
      torch.tidy(() => void net.call(x));
      torch.noGrad(() => torch.tidy(() => void net.call(x)));
      net.dispose();
      x.dispose();
    });
  });

  it('rejects a hook that returns the wrong number of gradients, and a non-function', async () => {
    await noLeak(() => {
      const lin = layer();
      const x = f64(X, true);
      lin.registerFullBackwardHook(() => [null, null]);
      expect(() => torch.tidy(() => lossOf(lin.call(x)).backward())).toThrow(
        'Linear: a backward hook must return nothing or an array of 1 Tensors or nulls (its new gradInput)',
      );
      expect(() => lin.registerFullBackwardHook(3 as never)).toThrow(TypeError);
      lin.dispose();
      x.dispose();
    });
  });
});

describe('backward hooks on a whole model', () => {
  it('observing hooks on every layer of a CNN change no gradient, see every layer once per backward, and leak nothing', async () => {
    await noLeak(() => {
      const run = (withHooks: boolean): { grads: number[][]; seen: string[] } => {
        torch.manualSeed(4);
        const model = torch.models.smallCnn();
        const seen: string[] = [];
        if (withHooks)
          for (const [name, m] of model.namedModules())
            if (name !== '') m.registerFullBackwardHook((_m, gi, go) => void seen.push(`${name}:${gi.length}:${go.length}`));
        const x = torch.rand([4, 1, 28, 28]);
        const y = torch.tensor([1, 0, 3, 9], { dtype: 'int64' });
        torch.tidy(() => torch.nn.functional.crossEntropy(model.call(x), y).backward());
        const grads = model.parameters().map((p) => p.grad!.dataSync());
        torch.dispose([x, y]);
        model.dispose();
        return { grads, seen };
      };
      const plain = run(false), hooked = run(true);
      expect(hooked.grads).toEqual(plain.grads);
      expect(hooked.seen.length).toBeGreaterThan(5);
      expect(new Set(hooked.seen).size).toBe(hooked.seen.length); // once each
    });
  });
});
