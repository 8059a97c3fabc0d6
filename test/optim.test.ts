// optim.SGD / Adam / AdamW: ten-step float64 trajectories against PyTorch 1.13 (test/reference/optim_trajectories.py
// generated the JSON), the Optimizer base class (groups, zeroGrad, closures, state dicts), leaks, and argument errors.
import { describe, it, expect, expectTypeOf } from 'vitest';
import { readFileSync } from 'node:fs';
import * as torch from '../lib/index.js';
import { optim, Tensor } from '../lib/index.js';
import { native, type AdamStepState } from '../lib/native.js';
import { TorchError } from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

type Flat = Record<string, number[]>;
interface Case {
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  options: Record<string, unknown>;
  groups: [string[], Record<string, unknown>][] | null;
  negate: boolean;
  losses: number[];
  params: Flat[];
}
const ref = JSON.parse(readFileSync(new URL('./reference/optim_trajectories.json', import.meta.url), 'utf8')) as {
  steps: number;
  data: Record<string, number[] | number[][]>;
  cases: Record<string, Case>;
};
const NAMES = ['W1', 'b1', 'W2', 'b2', 'u'] as const;
type Name = (typeof NAMES)[number];

/** PyTorch's keyword names -> ours. */
function camel(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

interface Problem {
  X: Tensor;
  Y: Tensor;
  P: Record<Name, Tensor>;
  loss(negate: boolean): Tensor;
  dispose(): void;
}
function problem(): Problem {
  const f64 = (k: string, requiresGrad = false): Tensor =>
    torch.tensor(ref.data[k]!, { dtype: 'float64', requiresGrad });
  const X = f64('X'),
    Y = f64('Y');
  const P = Object.fromEntries(NAMES.map((n) => [n, f64(n, true)])) as Record<Name, Tensor>;
  return {
    X,
    Y,
    P,
    loss: (negate) =>
      torch.tidy(() => {
        const out = X.matmul(P.W1.t()).add(P.b1).tanh().matmul(P.W2.t()).add(P.b2);
        const l = out.sub(Y).square().mean();
        return negate ? l.neg() : l;
      }),
    dispose: () => torch.dispose([X, Y, Object.values(P)]),
  };
}

function build(c: Case, P: Record<Name, Tensor>): optim.Optimizer<optim.BaseOptions> {
  const Ctor = { SGD: optim.SGD, Adam: optim.Adam, AdamW: optim.AdamW }[c.optimizer] as unknown as new (
    params: unknown,
    options: Record<string, unknown>,
  ) => optim.Optimizer<optim.BaseOptions>;
  const params =
    c.groups === null
      ? NAMES.map((n) => P[n])
      : c.groups.map(([names, g]) => ({ params: names.map((n) => P[n as Name]), ...camel(g) }));
  return new Ctor(params, camel(c.options));
}

/** One training step as the reference: zeroGrad, loss, backward, step; returns the loss before the step. */
function trainStep(opt: optim.Optimizer<optim.BaseOptions>, pr: Problem, negate: boolean): number {
  opt.zeroGrad();
  return torch.tidy(() => {
    const l = pr.loss(negate);
    l.backward();
    opt.step();
    return l.item();
  });
}

function expectParams(P: Record<Name, Tensor>, want: Flat, what: string): void {
  for (const n of NAMES) {
    const got = P[n].dataSync() as number[];
    const exp = want[n]!;
    expect(got.length).toBe(exp.length);
    got.forEach((v, i) => {
      if (!(Math.abs(v - exp[i]!) <= 1e-10 + 1e-10 * Math.abs(exp[i]!)))
        expect.fail(`${what} ${n}[${i}]: got ${v}, PyTorch ${exp[i]}`);
    });
  }
}

describe('trajectories match PyTorch 1.13 (float64, ten steps, |error| <= 1e-10)', () => {
  for (const [name, c] of Object.entries(ref.cases)) {
    it(name, async () => {
      await noLeak(() => {
        const pr = problem();
        const opt = build(c, pr.P);
        for (let k = 0; k < ref.steps; k++) {
          const l = trainStep(opt, pr, c.negate);
          expect(Math.abs(l - c.losses[k]!), `loss before step ${k + 1}`).toBeLessThanOrEqual(1e-10);
          expectParams(pr.P, c.params[k]!, `after step ${k + 1}:`);
        }
        // u never enters the loss: no gradient, so no state (PyTorch creates none either)
        expect(opt.state.has(pr.P.u)).toBe(false);
        expect(pr.P.u.dataSync()).toEqual(ref.data.u);
        opt.zeroGrad();
        opt.dispose();
        pr.dispose();
      });
    });
  }
});

describe('Optimizer base', () => {
  it('state dicts: layout, resuming half-way reproduces the trajectory, and loading copies (its own state dict too)', async () => {
    for (const name of ['sgd_groups', 'adam_amsgrad', 'adamw_groups']) {
      const c = ref.cases[name]!;
      await noLeak(() => {
        const pr = problem();
        const opt = build(c, pr.P);
        for (let k = 0; k < 5; k++) trainStep(opt, pr, c.negate);
        const sd = opt.stateDict();
        // parameters become their positions over all groups, in order
        expect(sd.paramGroups.map((g) => g.params)).toEqual(
          c.groups === null
            ? [[0, 1, 2, 3, 4]]
            : [
                [0, 1],
                [2, 3, 4],
              ],
        );
        // u (index 4) has no gradient, so no state; sgd_groups' second group has no momentum, so no buffers
        expect(Object.keys(sd.state)).toEqual(name === 'sgd_groups' ? ['0', '1'] : ['0', '1', '2', '3']);
        if (c.optimizer === 'SGD') {
          expect(Object.keys(sd.state[0]!)).toEqual(['momentumBuffer']);
          expect(sd.paramGroups[1]).toMatchObject({
            lr: 0.05,
            momentum: 0,
            weightDecay: 0.1,
            nesterov: false,
            maximize: false,
            dampening: 0,
          });
        } else {
          expect(Object.keys(sd.state[0]!).sort()).toEqual(
            c.options.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq', 'step'] : ['expAvg', 'expAvgSq', 'step'],
          );
          expect(sd.state[2]!.step).toBe(5);
        }
        // a second problem at the same point (copies of the parameters) continues from the loaded state
        const pr2 = problem();
        for (const n of NAMES) torch.noGrad(() => pr2.P[n].copy_(pr.P[n]));
        const opt2 = build(c, pr2.P);
        opt2.loadStateDict(sd);
        opt.dispose(); // the loaded state is a copy: freeing the original does not touch it
        opt2.loadStateDict(opt2.stateDict()); // its own state: copied before the old one is freed, nothing changes
        for (let k = 5; k < ref.steps; k++) {
          const l = trainStep(opt2, pr2, c.negate);
          expect(Math.abs(l - c.losses[k]!)).toBeLessThanOrEqual(1e-10);
        }
        expectParams(pr2.P, c.params[ref.steps - 1]!, `${name} resumed:`);
        opt2.zeroGrad();
        opt2.dispose();
        opt.zeroGrad();
        pr.dispose();
        pr2.dispose();
      });
    }
  });

  it('loadStateDict validates everything before changing anything', async () => {
    await noLeak(() => {
      const pr = problem();
      const opt = new optim.Adam([{ params: [pr.P.W1, pr.P.b1] }, { params: [pr.P.W2, pr.P.b2], lr: 0.5 }]);
      trainStep(opt, pr, false);
      const sd = opt.stateDict();
      const other = new optim.Adam([pr.P.W1, pr.P.b1, pr.P.W2, pr.P.b2]);
      expect(() => other.loadStateDict(sd)).toThrow(
        'loaded state dict has 2 parameter groups, but the optimizer has 1',
      );
      const small = new optim.Adam([{ params: [pr.P.W1] }, { params: [pr.P.W2, pr.P.b2] }]);
      expect(() => small.loadStateDict(sd)).toThrow(
        "loaded state dict's parameter group 0 has 2 parameters, but the optimizer's group has 1",
      );
      // same sizes, other shapes: b1 [4] and W1 [4, 3] swapped
      const swapped = new optim.Adam([{ params: [pr.P.b1, pr.P.W1] }, { params: [pr.P.W2, pr.P.b2] }]);
      expect(() => swapped.loadStateDict(sd)).toThrow(
        'loaded state dict: state[0].expAvg has shape [4, 3] but parameter 0 has shape [4]',
      );
      expect(swapped.state.size).toBe(0);
      expect(swapped.paramGroups[1]!.lr).toBe(1e-3);
      expect(() =>
        swapped.loadStateDict({ state: {}, paramGroups: [{ params: [0, 1] }, { params: [2, 3], lr: -1 }] }),
      ).toThrow('Expected a non-negative number for stateDict.paramGroups[1].lr but received -1 of type number');
      expect(() => opt.loadStateDict(null as never)).toThrow(
        'Expected an optimizer state dict ({state, paramGroups}) for stateDict but received null of type null',
      );
      // a valid load replaces group options with the saved ones
      swapped.loadStateDict({ state: {}, paramGroups: [{ params: [0, 1] }, { params: [2, 3], lr: 0.25 }] });
      expect(swapped.paramGroups[1]!.lr).toBe(0.25);
      expect(swapped.paramGroups[1]!.params[0]).toBe(pr.P.W2);
      for (const o of [opt, other, small, swapped]) o.dispose();
      opt.zeroGrad();
      pr.dispose();
    });
  });

  it("refuses another optimizer's per-parameter state, unknown entries and corrupt counters, changing nothing", async () => {
    await noLeak(() => {
      const pr = problem();
      const params = [pr.P.W1, pr.P.b1];
      const sgd = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
      const adam = new optim.Adam(params);
      trainStep(sgd, pr, false);
      trainStep(adam, pr, false);
      const before = (adam.state.get(pr.P.W1)!.expAvg as Tensor).dataSync();
      expect(() => adam.loadStateDict(sgd.stateDict())).toThrow(
        "loaded state dict: state[0] lacks 'step', which every Adam state has",
      );
      expect(() => sgd.loadStateDict(adam.stateDict())).toThrow(
        "loaded state dict: state[0] has 'step', which SGD does not keep (it keeps momentumBuffer)",
      );
      const sd = adam.stateDict();
      const bad = (patch: Record<string, unknown>) =>
        ({ ...sd, state: { ...sd.state, 0: { ...sd.state[0]!, ...patch } } }) as never;
      expect(() => adam.loadStateDict(bad({ step: NaN }))).toThrow(
        'loaded state dict: state[0].step must be a non-negative integer but is NaN',
      );
      expect(() => adam.loadStateDict(bad({ step: -1 }))).toThrow(
        'state[0].step must be a non-negative integer but is -1',
      );
      expect(() => adam.loadStateDict(bad({ step: 1.5 }))).toThrow(
        'state[0].step must be a non-negative integer but is 1.5',
      );
      expect(() => adam.loadStateDict(bad({ expAvg: 3 }))).toThrow(
        'Expected a Tensor for stateDict.state[0].expAvg but received 3 of type number',
      );
      expect(() => adam.loadStateDict(bad({ momentumBuffer: sd.state[0]!.expAvg }))).toThrow(
        "state[0] has 'momentumBuffer', which Adam does not keep",
      );
      const ints = torch.zeros([4, 3], { dtype: 'int64' });
      expect(() => adam.loadStateDict(bad({ expAvg: ints }))).toThrow(
        'loaded state dict: state[0].expAvg has dtype int64; optimizer state is floating point',
      );
      ints.dispose();
      // nothing changed, and the optimizer still steps from its own state
      expect((adam.state.get(pr.P.W1)!.expAvg as Tensor).dataSync()).toEqual(before);
      expect(adam.state.get(pr.P.W1)!.step).toBe(1);
      // a state dict without per-parameter state (SGD without momentum) only brings its group options, as in PyTorch
      const plain = new optim.SGD(params, { lr: 0.3 });
      trainStep(plain, pr, false);
      adam.loadStateDict(plain.stateDict());
      expect(adam.state.size).toBe(0);
      expect(adam.paramGroups[0]!.lr).toBe(0.3);
      expect(adam.paramGroups[0]!.betas).toEqual([0.9, 0.999]);
      for (const o of [sgd, adam, plain]) o.dispose();
      sgd.zeroGrad();
      pr.dispose();
    });
  });

  it('step(closure) evaluates the loss with gradients enabled and returns it', async () => {
    await noLeak(() => {
      const pr = problem();
      const opt = new optim.SGD([pr.P.W1, pr.P.b1, pr.P.W2, pr.P.b2], { lr: 0.1 });
      let calls = 0;
      const closure = (): number => {
        calls++;
        opt.zeroGrad();
        return torch.tidy(() => {
          const l = pr.loss(false);
          l.backward();
          return l.item();
        });
      };
      const l0 = torch.noGrad(() => opt.step(closure));
      expect(calls).toBe(1);
      expect(Math.abs(l0! - ref.cases.sgd_plain!.losses[0]!)).toBeLessThanOrEqual(1e-12);
      expectParams(
        { ...pr.P, u: pr.P.u },
        { ...ref.cases.sgd_plain!.params[0]!, u: ref.data.u as number[] },
        'closure step:',
      );
      expect(opt.step()).toBeUndefined();
      opt.zeroGrad();
      opt.dispose();
      pr.dispose();
    });
  });

  it('zeroGrad sets gradients to null, or zeroes them in place with setToNone: false', async () => {
    await noLeak(() => {
      const w = torch.tensor([1, 2, 3], { requiresGrad: true });
      const opt = new optim.SGD([w], { lr: 0.1 });
      const back = (): void => torch.tidy(() => w.mul(w).sum().backward());
      back();
      expect(w.grad!.dataSync()).toEqual([2, 4, 6]);
      opt.zeroGrad({ setToNone: false });
      expect(w.grad!.dataSync()).toEqual([0, 0, 0]);
      back();
      expect(w.grad!.dataSync()).toEqual([2, 4, 6]);
      opt.zeroGrad();
      expect(w.grad).toBeNull();
      opt.zeroGrad(); // no gradient: nothing to do
      expect(() => opt.zeroGrad({ setToNone: 1 as never })).toThrow(
        'Expected a boolean for setToNone but received 1 of type number',
      );
      w.dispose();
    });
  });

  it('groups take the defaults for what they leave out; addParamGroup; float32 state follows the parameter', async () => {
    await noLeak(() => {
      const a = torch.ones([2, 2], { requiresGrad: true });
      const b = torch.ones([3], { requiresGrad: true });
      const c = torch.ones([1], { requiresGrad: true });
      const opt = new optim.Adam([{ params: [a] }, { params: b, lr: 0.5, betas: [0.5, 0.6] }], {
        lr: 0.01,
        weightDecay: 0.1,
      });
      expect(opt.defaults).toEqual({
        lr: 0.01,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 0.1,
        amsgrad: false,
        maximize: false,
      });
      expect(opt.paramGroups[0]).toMatchObject({ lr: 0.01, betas: [0.9, 0.999], weightDecay: 0.1 });
      expect(opt.paramGroups[1]).toMatchObject({ lr: 0.5, betas: [0.5, 0.6], weightDecay: 0.1, params: [b] });
      opt.addParamGroup({ params: [c], eps: 0.1 });
      expect(opt.paramGroups[2]).toMatchObject({ lr: 0.01, eps: 0.1 });
      expect(() => opt.addParamGroup({ params: [a] })).toThrow(
        'some parameters appear in more than one parameter group',
      );
      torch.tidy(() => a.sum().add(b.sum()).add(c.sum()).backward());
      opt.step();
      const s = opt.state.get(a)!;
      expect((s.expAvg as Tensor).dtype).toBe('float32');
      expect((s.expAvg as Tensor).shape).toEqual([2, 2]);
      // step 1 of Adam moves every coordinate by about lr (m / sqrt(v) = ±1); weight decay enters the gradient
      expect(a.dataSync().map((v) => +v.toFixed(5))).toEqual([0.99, 0.99, 0.99, 0.99]);
      expect(b.dataSync().map((v) => +v.toFixed(5))).toEqual([0.5, 0.5, 0.5]);
      opt.zeroGrad();
      opt.dispose();
      expect(opt.state.size).toBe(0);
      torch.dispose([a, b, c]);
    });
  });

  it('AdamW decays the weights without touching the moments', async () => {
    await noLeak(() => {
      const w = torch.tensor([2, -4], { dtype: 'float64', requiresGrad: true });
      const opt = new optim.AdamW([w], { lr: 0.1, weightDecay: 0.5 });
      torch.tidy(() =>
        w
          .mul(torch.tensor([1, 1], { dtype: 'float64' }))
          .sum()
          .backward(),
      ); // g = [1, 1]
      opt.step();
      // w (1 - lr wd) - lr m/(sqrt v + eps) with m/sqrt(v) = 1 after bias correction
      const want = [2 * 0.95 - 0.1 / (1 + 1e-8), -4 * 0.95 - 0.1 / (1 + 1e-8)];
      w.dataSync().forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-15));
      expect((opt.state.get(w)!.expAvg as Tensor).dataSync().map((v) => +v.toFixed(12))).toEqual([0.1, 0.1]);
      opt.zeroGrad();
      opt.dispose();
      w.dispose();
    });
  });

  it('SGD with momentum keeps one buffer per parameter, made on its first step', async () => {
    await noLeak(() => {
      const w = torch.tensor([1, 1], { dtype: 'float64', requiresGrad: true });
      const opt = new optim.SGD([w], { lr: 0.1, momentum: 0.9 });
      for (let k = 0; k < 3; k++) {
        torch.tidy(() => w.sum().backward()); // g = 1
        opt.step();
        opt.zeroGrad();
      }
      // buffers 1, 1.9, 2.71: w = 1 - 0.1 (1 + 1.9 + 2.71)
      w.dataSync().forEach((v) => expect(Math.abs(v - (1 - 0.561))).toBeLessThan(1e-14));
      const buf = opt.state.get(w)!.momentumBuffer as Tensor;
      expect(buf.dataSync().map((v) => +v.toFixed(12))).toEqual([2.71, 2.71]);
      expect(opt.state.size).toBe(1);
      opt.dispose();
      expect(buf.isDisposed).toBe(true);
      w.dispose();
    });
  });

  it("SGD makes each momentum buffer itself, lazily, as the first step's direction (not zeros), and the native step updates it in place", async () => {
    await noLeak(() => {
      // loss = |w|² / 2, so g = w. maximize and weight decay 0.1: d = -g + 0.1 w = -0.9 w
      const w = torch.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
      const opt = new optim.SGD([w], { lr: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.1, maximize: true });
      const step = (): void => {
        torch.tidy(() => w.pow(2).sum().div(2).backward());
        opt.step();
        opt.zeroGrad();
      };
      step();
      // b1 = d1 = [-0.9, -1.8] (PyTorch's clone of d_p; a zero buffer would give (1 - 0.5) d1); w = w - 0.1 b1
      const buf = opt.state.get(w)!.momentumBuffer as Tensor;
      expectClose(buf, [-0.9, -1.8], { atol: 1e-15, rtol: 0 });
      expectClose(w, [1.09, 2.18], { atol: 1e-15, rtol: 0 });
      step();
      // d2 = -0.9 [1.09, 2.18]; b2 = 0.9 b1 + 0.5 d2 = [-1.3005, -2.601], the same tensor updated in place
      expect(opt.state.get(w)!.momentumBuffer).toBe(buf);
      expectClose(buf, [-1.3005, -2.601], { atol: 1e-15, rtol: 0 });
      expectClose(w, [1.09 + 0.13005, 2.18 + 0.2601], { atol: 1e-15, rtol: 0 });
      opt.dispose();
      w.dispose();
    });
  });

  it('a failed SGD step keeps none of the buffers it made', async () => {
    await noLeak(() => {
      const a = torch.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
      const b = torch.tensor([3], { dtype: 'float64', requiresGrad: true });
      const opt = new optim.SGD([a, b], { lr: 0.1, momentum: 0.9 });
      torch.tidy(() => a.sum().add(b.sum()).backward());
      b.dispose();
      expect(() => opt.step()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
      expect(opt.state.size).toBe(0);
      expectClose(a, [1, 2], { atol: 0, rtol: 0 });
      a.grad = null;
      opt.dispose();
      a.dispose();
    });
  });

  it('has typed options and groups', () => {
    expectTypeOf<ConstructorParameters<typeof optim.Adam>[1]>().toEqualTypeOf<Partial<optim.AdamOptions> | undefined>();
    expectTypeOf<optim.SGD['paramGroups'][number]['momentum']>().toEqualTypeOf<number>();
    expectTypeOf<optim.Adam['paramGroups'][number]['betas']>().toEqualTypeOf<[number, number]>();
    expectTypeOf<optim.Optimizer['state']>().toEqualTypeOf<Map<Tensor, optim.ParamState>>();
  });
});

describe('invalid arguments', () => {
  const w = torch.zeros([2], { requiresGrad: true }).keep();
  const cases: [string, () => unknown, string][] = [
    [
      'SGD lr',
      () => new optim.SGD([w], { lr: -1 }),
      'Expected a non-negative number for lr but received -1 of type number',
    ],
    [
      'SGD lr missing',
      () => new optim.SGD([w], {} as never),
      'Expected a non-negative number for lr but received undefined of type undefined',
    ],
    [
      'SGD momentum',
      () => new optim.SGD([w], { lr: 0.1, momentum: -0.5 }),
      'Expected a non-negative number for momentum but received -0.5 of type number',
    ],
    [
      'SGD weightDecay',
      () => new optim.SGD([w], { lr: 0.1, weightDecay: -1 }),
      'Expected a non-negative number for weightDecay but received -1 of type number',
    ],
    [
      'SGD dampening',
      () => new optim.SGD([w], { lr: 0.1, dampening: NaN }),
      'Expected a finite number for dampening but received NaN of type number',
    ],
    [
      'SGD nesterov',
      () => new optim.SGD([w], { lr: 0.1, nesterov: true }),
      'Nesterov momentum requires a momentum and zero dampening (momentum is 0, dampening is 0)',
    ],
    [
      'SGD nesterov dampening',
      () => new optim.SGD([w], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
      'Nesterov momentum requires a momentum and zero dampening (momentum is 0.9, dampening is 0.1)',
    ],
    [
      'SGD maximize',
      () => new optim.SGD([w], { lr: 0.1, maximize: 'yes' as never }),
      'Expected a boolean for maximize but received "yes" of type string',
    ],
    [
      'SGD unknown',
      () => new optim.SGD([w], { lr: 0.1, weight_decay: 0.1 } as never),
      "SGD: unknown option 'weight_decay' (expected one of lr, momentum, dampening, weightDecay, nesterov, maximize)",
    ],
    [
      'group lr',
      () => new optim.SGD([{ params: [w], lr: -2 }], { lr: 0.1 }),
      'Expected a non-negative number for paramGroups[0].lr but received -2 of type number',
    ],
    [
      'Adam lr',
      () => new optim.Adam([w], { lr: -1 }),
      'Expected a non-negative number for lr but received -1 of type number',
    ],
    [
      'Adam eps',
      () => new optim.Adam([w], { eps: -1e-8 }),
      'Expected a non-negative number for eps but received -1e-8 of type number',
    ],
    [
      'Adam beta1',
      () => new optim.Adam([w], { betas: [1, 0.999] }),
      'Expected a number in [0, 1) for betas[0] but received 1 of type number',
    ],
    [
      'Adam beta2',
      () => new optim.Adam([w], { betas: [0.9, -0.1] }),
      'Expected a number in [0, 1) for betas[1] but received -0.1 of type number',
    ],
    [
      'Adam betas',
      () => new optim.Adam([w], { betas: [0.9] as never }),
      'Expected an array of two numbers for betas but received [0.9] of type array',
    ],
    [
      'Adam weightDecay',
      () => new optim.Adam([w], { weightDecay: -0.1 }),
      'Expected a non-negative number for weightDecay but received -0.1 of type number',
    ],
    [
      'AdamW amsgrad',
      () => new optim.AdamW([w], { amsgrad: 1 as never }),
      'Expected a boolean for amsgrad but received 1 of type number',
    ],
    [
      'AdamW unknown',
      () => new optim.AdamW([w], { momentum: 0.9 } as never),
      "AdamW: unknown option 'momentum' (expected one of lr, betas, eps, weightDecay, amsgrad, maximize)",
    ],
    ['empty', () => new optim.Adam([]), 'optimizer got an empty parameter list'],
    [
      'one tensor',
      () => new optim.Adam(w as never),
      'Expected an iterable of Tensors or of parameter groups ({params, ...options}) for params but received',
    ],
    [
      'not a tensor',
      () => new optim.Adam([{ params: [w, 3 as never] }]),
      'Expected a Tensor for paramGroups[0].params[1] but received 3 of type number',
    ],
    ['duplicate', () => new optim.Adam([w, w]), 'paramGroups[0] contains a parameter more than once'],
    [
      'non-leaf',
      () => torch.tidy(() => new optim.Adam([w.mul(2)])),
      "paramGroups[0].params[0]: can't optimize a non-leaf Tensor",
    ],
    [
      'closure',
      () => new optim.SGD([w], { lr: 0.1 }).step(5 as never),
      'Expected a function for closure but received 5 of type number',
    ],
  ];
  for (const [name, fn, message] of cases) it(name, () => expect(fn).toThrow(message));

  // The native steps read their state and options objects with checked getters: a missing or ill-typed field is a
  // TypeError naming it (a raw native call; the optimizers above validate first).
  describe('native step arguments', () => {
    const sgdOptions = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false };
    const adamOptions = {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      amsgrad: false,
      decoupled: false,
      maximize: false,
    };
    const adamState = (): AdamStepState => ({ expAvg: [w._h], expAvgSq: [w._h], maxExpAvgSq: null, steps: [1] });
    const typeErrors: [string, () => unknown, string][] = [
      [
        'sgdStep options field missing',
        () =>
          native.sgdStep([w._h], { momentumBuffer: [-1], initialize: [false] }, {
            ...sgdOptions,
            maximize: undefined,
          } as never),
        'sgdStep: Expected a boolean for options.maximize but received undefined of type undefined',
      ],
      [
        'sgdStep options field ill-typed',
        () =>
          native.sgdStep([w._h], { momentumBuffer: [-1], initialize: [false] }, { ...sgdOptions, lr: '0.1' } as never),
        'sgdStep: Expected a number for options.lr but received "0.1" of type string',
      ],
      [
        'sgdStep state',
        () => native.sgdStep([w._h], null as never, sgdOptions),
        'sgdStep: Expected an object for state but received null of type null',
      ],
      [
        'sgdStep state element',
        () => native.sgdStep([w._h], { momentumBuffer: [-1], initialize: [1] } as never, sgdOptions),
        'sgdStep: Expected a boolean for state.initialize[0] but received 1 of type number',
      ],
      [
        'sgdStep params',
        () => native.sgdStep(w._h as never, { momentumBuffer: [-1], initialize: [false] }, sgdOptions),
        'sgdStep: Expected an array of tensor handles for params',
      ],
      [
        'adamStep options',
        () => native.adamStep([w._h], adamState(), [] as never),
        'adamStep: Expected an object for options but received an array of type array',
      ],
      [
        'adamStep options field missing',
        () => native.adamStep([w._h], adamState(), { ...adamOptions, decoupled: undefined } as never),
        'adamStep: Expected a boolean for options.decoupled but received undefined of type undefined',
      ],
      [
        'adamStep steps element',
        () => native.adamStep([w._h], { ...adamState(), steps: ['1'] } as never, adamOptions),
        'adamStep: Expected a number for state.steps[0] but received "1" of type string',
      ],
      [
        'adamStep amsgrad without maxExpAvgSq',
        () => native.adamStep([w._h], adamState(), { ...adamOptions, amsgrad: true }),
        'adamStep: Expected an array of numbers for state.maxExpAvgSq but received null of type null',
      ],
    ];
    for (const [name, fn, message] of typeErrors)
      it(name, () => {
        expect(fn).toThrow(TypeError);
        expect(fn).toThrow(message);
      });
    it('state that does not fit the parameters is a TorchError', () => {
      expect(() => native.adamStep([w._h], { ...adamState(), steps: [] }, adamOptions)).toThrow(
        'adamStep: state lists do not match the parameter list',
      );
      expect(() => native.sgdStep([w._h], { momentumBuffer: [], initialize: [] }, sgdOptions)).toThrow(
        'sgdStep: state lists do not match the parameter list',
      );
      torch.tidy(() => w.sum().backward());
      // with momentum, the optimizer must hand over a buffer: the native step makes none
      const e = (() => {
        try {
          native.sgdStep([w._h], { momentumBuffer: [-1], initialize: [false] }, { ...sgdOptions, momentum: 0.9 });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(TorchError);
      expect((e as Error).message).toBe('sgdStep: parameter 0 has no momentum buffer');
      w.grad = null;
    });
  });
  it('raises TypeError for wrong types and RangeError for values out of range', () => {
    expect(() => new optim.SGD([w], { lr: 'a' as never })).toThrow(TypeError);
    expect(() => new optim.SGD([w], { lr: -1 })).toThrow(RangeError);
    expect(() => new optim.Adam([])).toThrow(RangeError);
  });
});
