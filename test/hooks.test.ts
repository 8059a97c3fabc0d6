// Tensor hooks (registerHook) and module backward hooks, against hand-computed gradients and PyTorch's semantics.
import { describe, it, expect, expectTypeOf } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import * as torch from '../lib/index.js';
import { nn, Tensor } from '../lib/index.js';
import { expectClose, noLeak, withTempDir } from './support/helpers.js';
import { addonPath, transpileLib } from './support/transpile-lib.js';

type M = number[][];
type Seen = { gradInput: (number[] | M | null)[]; gradOutput: (number[] | M | null)[] };
const ref = JSON.parse(readFileSync(new URL('./reference/backward_hooks.json', import.meta.url), 'utf8')) as {
  mlp: {
    x: M;
    target: M;
    layers: Record<
      '0' | '2',
      {
        weight: M;
        bias: number[];
        input: M;
        gradInput: (M | null)[];
        gradOutput: M[];
        weightGrad: M;
        kfacA: M;
        kfacG: M;
      }
    >;
  };
  shared: { weight: M; bias: number[]; x: M; calls: Seen[]; xGrad: M };
  multi_input: { a: number[]; b: number[]; c: number[]; seen: Seen[]; grads: number[][] };
  multi_output: { a: number[]; seen: Seen[]; aGrad: number[] };
};
const torchMajor = Number(torch.versions().torch.split('.')[0]);

const f64 = (v: number[] | number[][], requiresGrad = false): Tensor =>
  torch.tensor(v, { dtype: 'float64', requiresGrad });

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

  it('a thrown value that is not an Error (a number, a string, undefined) reaches the caller as it was', async () => {
    await noLeak(() => {
      const x = f64([1], true);
      for (const value of [42, 'plain string', undefined]) {
        let caught: unknown = 'nothing was thrown';
        torch.tidy(() => {
          const y = x.mul(2);
          y.registerHook(() => {
            throw value;
          });
          try {
            y.sum().backward();
          } catch (e) {
            caught = e;
          }
        });
        expect(caught).toBe(value);
      }
      x.dispose();
    });
  });

  it('under autograd.grad, hooks on the tensors in between act; a hook on one of `inputs` acts from libtorch 2.0 on', async () => {
    await noLeak(() => {
      const x = f64([3], true);
      torch.tidy(() => {
        // L = y^2, y = 2x: dL/dy = 2y = 12, the hook makes it 60, dL/dx = 2 * 60
        const y = x.mul(2);
        y.registerHook((g) => g.mul(5));
        expect(torch.autograd.grad(y.square().sum(), [x])[0]!.item()).toBe(120);
        // PyTorch 2.0 (pull 85849) runs tensor hooks on the gradients autograd.grad returns; 1.13 returned them as computed
        expect(torch.autograd.grad(y.square().sum(), [y])[0]!.item()).toBe(torchMajor >= 2 ? 60 : 12);
      });
      const h = x.registerHook((g) => g.mul(3)); // a leaf: d(x^2)/dx = 6
      torch.tidy(() => expect(torch.autograd.grad(x.square().sum(), [x])[0]!.item()).toBe(torchMajor >= 2 ? 18 : 6));
      torch.tidy(() => x.square().sum().backward());
      expect(x.grad!.item()).toBe(18);
      h.remove();
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
      expect(() => c.registerHook(() => undefined)).toThrow(
        /cannot register a hook on a (tensor|variable) that doesn't require gradient/,
      );
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
  const W = [
    [1, -2, 0.5],
    [0.25, 3, -1],
  ];
  const B = [0.5, -1];
  const X = [
    [1, 2, 3],
    [-1, 0.5, 2],
    [0, -3, 1],
    [2, 2, -2],
  ];
  const Y = X.map((r) => W.map((w, o) => w.reduce((s, v, k) => s + v * r[k]!, B[o]!)));
  const YW = Y.map((y) => W[0]!.map((_, k) => y.reduce((s, v, o) => s + v * W[o]![k]!, 0)));
  const YtX = W.map((_, o) => W[0]!.map((_, k) => Y.reduce((s, y, n) => s + y[o]! * X[n]![k]!, 0)));
  const layer = (): nn.Linear => {
    const lin = new nn.Linear(3, 2, { dtype: 'float64' });
    torch.tidy(() =>
      torch.noGrad(() => {
        lin.weight.copy_(f64(W));
        lin.bias!.copy_(f64(B));
      }),
    );
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
      close(
        go,
        flat(Y).map((v) => 2 * v),
      );
      close(
        lin.weight.grad!.dataSync(),
        flat(YtX).map((v) => 2 * v),
      );
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
      let a: Tensor | null = null,
        g: Tensor | null = null;
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
            if (name !== '')
              m.registerFullBackwardHook((_m, gi, go) => void seen.push(`${name}:${gi.length}:${go.length}`));
        const x = torch.rand([4, 1, 28, 28]);
        const y = torch.tensor([1, 0, 3, 9], { dtype: 'int64' });
        torch.tidy(() => torch.nn.functional.crossEntropy(model.call(x), y).backward());
        const grads = model.parameters().map((p) => p.grad!.dataSync());
        torch.dispose([x, y]);
        model.dispose();
        return { grads, seen };
      };
      const plain = run(false),
        hooked = run(true);
      expect(hooked.grads).toEqual(plain.grads);
      expect(hooked.seen.length).toBeGreaterThan(5);
      expect(new Set(hooked.seen).size).toBe(hooked.seen.length); // once each
    });
  });
});

describe('module backward hooks against PyTorch 1.13 (test/reference/backward_hooks.py)', () => {
  const linear = (w: M, b: number[]): nn.Linear => {
    const lin = new nn.Linear(w[0]!.length, w.length, { dtype: 'float64' });
    torch.tidy(() =>
      torch.noGrad(() => {
        lin.weight.copy_(f64(w));
        lin.bias!.copy_(f64(b));
      }),
    );
    return lin;
  };
  const values = (gs: (Tensor | null)[]): (number[] | M | null)[] =>
    gs.map((g) => (g === null ? null : (g.toArray() as number[] | M)));
  const expectSeen = (got: Seen[], want: Seen[]): void => {
    expect(got.length).toBe(want.length);
    got.forEach((s, k) => {
      for (const key of ['gradInput', 'gradOutput'] as const) {
        expect(s[key].length).toBe(want[k]![key].length);
        s[key].forEach((g, i) => {
          const w = want[k]![key][i]!;
          if (w === null) expect(g, `${key}[${i}] of call ${k}`).toBeNull();
          else torch.tidy(() => expectClose(f64(g as M), w as M, { atol: 1e-12, rtol: 1e-12 }));
        });
      }
    });
  };

  it("an MLP: each Linear's input, gradInput ([null] for the first), gradOutput and KFAC's factors A = a^T a / N, G = N g^T g", async () => {
    await noLeak(() => {
      const r = ref.mlp;
      const l1 = linear(r.layers['0'].weight, r.layers['0'].bias),
        l2 = linear(r.layers['2'].weight, r.layers['2'].bias);
      const net = new nn.Sequential(l1, new nn.Tanh(), l2);
      const got = new Map<
        string,
        { a: Tensor; g: Tensor; gradInput: (number[] | M | null)[]; gradOutput: (number[] | M | null)[] }
      >();
      for (const [name, layer] of [
        ['0', l1],
        ['2', l2],
      ] as const) {
        let a: Tensor | null = null;
        layer.registerForwardHook((_m, [inp]) => void (a = torch.keep((inp as Tensor).detach())));
        layer.registerFullBackwardHook(
          (_m, gi, go) =>
            void got.set(name, { a: a!, g: torch.keep(go[0]!.clone()), gradInput: values(gi), gradOutput: values(go) }),
        );
      }
      const x = f64(r.x),
        target = f64(r.target);
      torch.tidy(() => nn.functional.mseLoss(net.call(x), target).backward());
      const n = r.x.length;
      for (const [name, layer] of [
        ['0', l1],
        ['2', l2],
      ] as const) {
        const want = r.layers[name],
          have = got.get(name)!;
        const tol = { atol: 1e-12, rtol: 1e-12 };
        expectClose(have.a, want.input, tol);
        expectSeen(
          [{ gradInput: have.gradInput, gradOutput: have.gradOutput }],
          [{ gradInput: want.gradInput, gradOutput: want.gradOutput }],
        );
        expectClose(layer.weight.grad!, want.weightGrad, tol);
        torch.tidy(() => {
          expectClose(have.a.t().matmul(have.a).div(n), want.kfacA, tol);
          expectClose(have.g.t().matmul(have.g).mul(n), want.kfacG, tol);
          expectClose(have.g.t().matmul(have.a), want.weightGrad, tol); // the weight gradient from the two hooks
        });
        torch.dispose([have.a, have.g]);
      }
      expect(got.get('0')!.gradInput).toEqual([null]);
      torch.dispose([x, target]);
      net.dispose();
    });
  });

  it('a layer called twice in one forward runs its hook once per call, and again at a backward through the retained graph', async () => {
    await noLeak(() => {
      const r = ref.shared;
      const lin = linear(r.weight, r.bias);
      const calls: Seen[] = [];
      lin.registerFullBackwardHook((_m, gi, go) => void calls.push({ gradInput: values(gi), gradOutput: values(go) }));
      const x = f64(r.x, true);
      torch.tidy(() => {
        const loss = lin.call(lin.call(x).tanh()).square().sum();
        loss.backward(null, { retainGraph: true });
        loss.backward();
      });
      expectSeen(calls, r.calls);
      expect(calls.length).toBe(4);
      expectClose(x.grad!, r.xGrad, { atol: 1e-12, rtol: 1e-12 });
      lin.dispose();
      x.dispose();
    });
  });

  it('several inputs: one call with every gradInput (zeros for an unused input), all of which a hook may replace', async () => {
    await noLeak(() => {
      const r = ref.multi_input;
      class MultiInput extends nn.Module<[Tensor, Tensor, Tensor], Tensor> {
        forward(a: Tensor, b: Tensor, _c: Tensor): Tensor {
          return torch.tidy(() => a.mul(b).add(a));
        }
      }
      const m = new MultiInput();
      const seen: Seen[] = [];
      m.registerFullBackwardHook((_m, gi, go) => {
        seen.push({ gradInput: values(gi), gradOutput: values(go) });
        return [gi[0]!.mul(2), gi[1]!.neg(), gi[2]!];
      });
      const [a, b, c] = [f64(r.a, true), f64(r.b, true), f64(r.c, true)];
      torch.tidy(() =>
        m
          .call(a, b, c)
          .mul(f64([1, 2, 3]))
          .sum()
          .backward(),
      );
      expectSeen(seen, r.seen);
      [a, b, c].forEach((t, i) => expect(t.grad!.dataSync()).toEqual(r.grads[i]));
      torch.dispose([a, b, c]);
    });
  });

  it('several outputs: gradOutput is null for an output the loss does not use', async () => {
    await noLeak(() => {
      const r = ref.multi_output;
      class MultiOutput extends nn.Module<[Tensor], Tensor[]> {
        forward(a: Tensor): Tensor[] {
          return [a.mul(2), a.mul(3)];
        }
      }
      const m = new MultiOutput();
      const seen: Seen[] = [];
      m.registerFullBackwardHook((_m, gi, go) => void seen.push({ gradInput: values(gi), gradOutput: values(go) }));
      const a = f64(r.a, true);
      torch.tidy(() => {
        const [first] = m.call(a);
        first!.square().sum().backward();
      });
      expectSeen(seen, r.seen);
      expect(a.grad!.dataSync()).toEqual(r.aGrad);
      a.dispose();
    });
  });
});

describe('module backward hooks: pre-hooks, ownership, errors, passes that stop early', () => {
  class Split extends nn.Module<[Tensor], Tensor[]> {
    forward(a: Tensor): Tensor[] {
      return [a.mul(2), a.mul(3)];
    }
  }

  it('a pre-hook runs once per backward with every gradOutput; its replacement is what flows on and what the hooks see', async () => {
    await noLeak(() => {
      const m = new Split();
      const pre: (number[] | null)[][] = [];
      let seenByHook: (number[] | null)[] = [];
      m.registerFullBackwardPreHook((_m, go) => {
        pre.push(go.map((g) => g && g.dataSync()));
        return [null, go[1]!.mul(10)]; // drop the first output's gradient, scale the second's
      });
      m.registerFullBackwardHook((_m, _gi, go) => void (seenByHook = go.map((g) => g && g.dataSync())));
      const a = f64([1, -1], true);
      // L = sum(o1) + 2 sum(o2): dL/do1 = 1, dL/do2 = 2; after the pre-hook dL/da = 3 * 20 = 60
      torch.tidy(() => {
        const [o1, o2] = m.call(a);
        o1!.sum().add(o2!.sum().mul(2)).backward();
      });
      expect(pre).toEqual([
        [
          [1, 1],
          [2, 2],
        ],
      ]);
      expect(seenByHook).toEqual([null, [20, 20]]);
      expect(a.grad!.dataSync()).toEqual([60, 60]);
      a.dispose();
    });
  });

  it('a forward that returns a parameter: the parameter stays alive and gets its gradient', async () => {
    await noLeak(() => {
      class Table extends nn.Module<[Tensor], Tensor> {
        w = this.registerParameter('w', f64([1, 2]))!;
        forward(_x: Tensor): Tensor {
          return this.w;
        }
      }
      const m = new Table();
      let got: (number[] | null)[][] = [];
      m.registerFullBackwardHook(
        (_m, gi, go) => void (got = [gi.map((g) => g && g.dataSync()), go.map((g) => g && g.dataSync())]),
      );
      const x = f64([5, 5]);
      torch.tidy(() =>
        m
          .call(x)
          .mul(f64([3, 4]))
          .sum()
          .backward(),
      );
      expect(m.w.isDisposed).toBe(false);
      expect(m.w.grad!.dataSync()).toEqual([3, 4]);
      expect(got).toEqual([[null], [[3, 4]]]);
      m.dispose();
      x.dispose();
    });
  });

  it('a hook that throws stops backward with its own error; a pass that stops before the inputs frees what it held', async () => {
    await noLeak(() => {
      const lin = new nn.Linear(3, 2, { dtype: 'float64' });
      const net = new nn.Sequential(lin, new nn.Tanh());
      const x = f64([[1, 2, 3]], true);
      class Refused extends Error {}
      let fire = true,
        calls = 0;
      net.registerFullBackwardHook(() => {
        calls++;
        if (fire) throw new Refused('refused');
      });
      expect(() => torch.tidy(() => net.call(x).sum().backward())).toThrow(Refused);
      fire = false;
      // the gradient with respect to lin's output: net's output node ran and held gradOutput, its input node never runs
      let inner: Tensor | null = null;
      lin.registerForwardHook((_m, _i, out) => void (inner = out.alias()));
      torch.tidy(() => {
        const y = net.call(x).sum();
        torch.autograd.grad(y, [inner!]);
        inner!.dispose();
      });
      expect(calls).toBe(1);
      torch.tidy(() => net.call(x).sum().backward());
      expect(calls).toBe(2);
      inner!.dispose();
      net.dispose();
      x.dispose();
    });
  });

  it('refuses a wrong-shape gradInput, and any gradInput when no input requires grad (as PyTorch)', async () => {
    await noLeak(() => {
      const lin = new nn.Linear(3, 2, { dtype: 'float64' });
      const x = f64([[1, 2, 3]], true);
      const h = lin.registerFullBackwardHook((_m, [gi]) => [gi!.sum()]);
      expect(() => torch.tidy(() => lin.call(x).sum().backward())).toThrow(
        /hook has changed the size of value: expected \[1, 3\] but got \[\]/,
      );
      h.remove();
      const data = f64([[1, 2, 3]]);
      lin.registerFullBackwardHook(() => [torch.zeros([1, 3], { dtype: 'float64' })]);
      expect(() => torch.tidy(() => lin.call(data).sum().backward())).toThrow(
        new TypeError('Linear: no input of this call requires grad, so a backward hook must return nothing (or nulls)'),
      );
      lin.dispose();
      torch.dispose([x, data]);
    });
  });

  it('a forward that modifies a hooked input in place is a TorchError, as in PyTorch (the input is a custom-function view)', async () => {
    await noLeak(() => {
      class Doubler extends nn.Module<[Tensor], Tensor> {
        forward(x: Tensor): Tensor {
          return x.mul_(2).alias();
        }
      }
      const m = new Doubler();
      const x = f64([1, 2], true);
      m.registerFullBackwardHook(() => undefined);
      expect(() => torch.tidy(() => m.call(x.mul(1)))).toThrow(/is a view and is being modified inplace/);
      x.dispose();
    });
  });
});

describe('hooks in a worker thread', () => {
  it('the compiled library runs tensor and module hooks in a worker; a hook error is that worker’s, and nothing leaks', async () => {
    await withTempDir('tn-hooks-', async (work) => {
      transpileLib(work);
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        import(workerData.lib).then((t) => {
          const lin = new t.nn.Linear(2, 1, { bias: false, dtype: 'float64' });
          t.noGrad(() => t.tidy(() => lin.weight.copy_(t.tensor([[1, -1]], { dtype: 'float64' }))));
          let go = null;
          lin.registerFullBackwardHook((_m, _gi, [g]) => void (go = g.dataSync()));
          const x = t.tensor([[2, 3]], { dtype: 'float64', requiresGrad: true });
          // L = (x W^T)^2 / 2 = (2 - 3)^2 / 2: dL/dy = -1, dL/dx = -W
          t.tidy(() => lin.call(x).square().sum().div(2).backward());
          const gx = x.grad.dataSync();
          let error = null;
          t.tidy(() => {
            const y = x.mul(2);
            y.registerHook(() => { throw new RangeError('from the worker'); });
            try { y.sum().backward(); } catch (e) { error = [e instanceof RangeError, e.message]; }
          });
          lin.dispose(); x.dispose();
          parentPort.postMessage({ go, gx, error, live: t.memory().tensors });
        });`;
      const w = new Worker(code, {
        eval: true,
        workerData: { lib: pathToFileURL(join(work, 'lib', 'index.js')).href },
        env: { ...process.env, TENSORNORMAL_ADDON: addonPath },
      });
      const [reply] = (await once(w, 'message')) as [unknown];
      expect(reply).toEqual({ go: [-1], gx: [-1, 1], error: [true, 'from the worker'], live: 0 });
      await w.terminate();
    });
  });
});

describe('types', () => {
  it('hooks are typed with the module, the gradients and the handle', () => {
    const lin = new nn.Linear(2, 2);
    const h = lin.registerFullBackwardHook((m, gradInput, gradOutput) => {
      expectTypeOf(m).toEqualTypeOf<nn.Linear>();
      expectTypeOf(gradInput).toEqualTypeOf<(Tensor | null)[]>();
      expectTypeOf(gradOutput).toEqualTypeOf<(Tensor | null)[]>();
    });
    expectTypeOf(h).toEqualTypeOf<nn.RemovableHandle>();
    expectTypeOf(lin.registerFullBackwardPreHook).parameter(0).returns.toEqualTypeOf<(Tensor | null)[] | void>();
    expectTypeOf<torch.TensorHook>().toEqualTypeOf<(grad: Tensor) => Tensor | void | undefined | null>();
    expectTypeOf<Tensor['registerHook']>().returns.toEqualTypeOf<torch.TensorHookHandle>();
    h.remove();
    lin.dispose();
  });
});
