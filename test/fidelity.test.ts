// Fidelity to the authors' code (renyiryry/tnt_neurips_2021): TNT, Shampoo and KFAC with `statistics: 'authors'`,
// `earlyRefresh: false` and KFAC's `convScaling: 'authors'` against test/reference/authors_port.json, written in
// float64 by test/reference/authors_port.py (a port of the authors' update rules, and beside it of the default
// ones). Every parameter after every step and every factor must agree within a relative error of 1e-10, and each
// authors' case must differ from its default counterpart by far more, so that a mode that ignored its option fails.
import { readFileSync } from 'node:fs';
import { describe, it, expect, expectTypeOf } from 'vitest';
import * as torch from '../lib/index.js';
import { TNT, type TNTConfig } from '../lib/optim/tnt.js';
import { Shampoo, type ShampooConfig } from '../lib/optim/shampoo.js';
import { KFAC, type KFACConfig } from '../lib/optim/kfac.js';
import { Tensor } from '../lib/tensor.js';
import { native } from '../lib/native.js';
import { noLeak } from './support/helpers.js';
import { relErr } from './support/dense.js';

interface CaseOptions {
  method?: 'tnt' | 'shampoo';
  rule: 'authors' | 'convex';
  warm: boolean;
  T1: number;
  T2: number;
  early?: boolean;
  steps: number;
  lr: number;
  eps?: number;
  damping?: number;
  wd: number;
  scaling?: 'authors' | 'kfc';
}
interface Step {
  params: Record<string, number[]>;
  factors: Record<string, number[] | number[][]>;
}
type Data = Record<string, number[][]>;
const ref = JSON.parse(readFileSync(new URL('./reference/authors_port.json', import.meta.url), 'utf8')) as {
  data: { mlp_tnt: Data; mlp_shampoo: Data; conv_kfac: Data };
  init: { mlp: Record<string, number[]>; conv: Record<string, number[]> };
  cases: Record<string, { options: CaseOptions; steps: Step[] }>;
};

const TOL = 1e-10;
const f64 = { dtype: 'float64' as const };
const loss = (o: Tensor, y: Tensor): Tensor =>
  torch.tidy(() =>
    o
      .sub(y)
      .square()
      .sum()
      .mul(0.5 / o.shape[0]!),
  );

/** The Gaussian likelihood whose "sample" at the k-th draw is output + noises[k] (the fixture's noise). */
function fixedSampler(): { loss: typeof loss; sample(o: Tensor): Tensor; noise: number[][]; draws: number } {
  const s = {
    loss,
    noise: [] as number[][],
    draws: 0,
    sample(o: Tensor): Tensor {
      const v = s.noise[s.draws++]!;
      return torch.tidy(() => o.detach().add(torch.tensor(v, { shape: o.shape, ...f64 })));
    },
  };
  return s;
}

function setParams(params: Tensor[], values: number[][]): void {
  torch.tidy(() =>
    torch.noGrad(() => params.forEach((p, i) => p.copy_(torch.tensor(values[i]!, { shape: p.shape, ...f64 })))),
  );
}

function expectMatches(got: Step[], want: Step[], name: string): void {
  expect(got.length).toBe(want.length);
  got.forEach((s, t) => {
    for (const [k, v] of Object.entries(want[t]!.params))
      expect(relErr(s.params[k]!, v), `${name} step ${t} ${k}`).toBeLessThan(TOL);
    for (const [k, v] of Object.entries(want[t]!.factors))
      expect(relErr(s.factors[k]!.flat(), v.flat()), `${name} step ${t} factor ${k}`).toBeLessThan(TOL);
  });
}

/** Our TNT or Shampoo on the fixture's MLP, options translated from the port's. */
async function runMlp(o: CaseOptions): Promise<Step[]> {
  const data = o.method === 'tnt' ? ref.data.mlp_tnt : ref.data.mlp_shampoo;
  const l1 = new torch.nn.Linear(5, 4, f64),
    l2 = new torch.nn.Linear(4, 3, f64);
  const model = new torch.nn.Sequential(l1, new torch.nn.Tanh(), l2);
  const names = ['W1', 'b1', 'W2', 'b2'];
  const params = [l1.weight, l1.bias!, l2.weight, l2.bias!];
  setParams(
    params,
    names.map((k) => ref.init.mlp[k]!),
  );
  const common = {
    lr: o.lr,
    momentum: 0.9,
    weightDecay: o.wd,
    statDecay: 0.9,
    statsEvery: o.T1,
    inverseEvery: o.T2,
    earlyRefresh: o.early,
    statistics: o.rule,
  };
  const opt =
    o.method === 'tnt'
      ? new TNT(model.parameters(), { ...common, damping: o.eps, inverseMethod: 'lu' })
      : new Shampoo(model.parameters(), { ...common, epsilon: o.eps, factorDtype: 'float64', rootMethod: 'eigh' });
  const tensors = (xs: number[][], shape: number[]): Tensor[] => xs.map((v) => torch.tensor(v, { shape, ...f64 }));
  const X = tensors(data.X!, [6, 5]),
    Y = tensors(data.Y!, [6, 3]),
    WX = tensors(data.warmX!, [6, 5]),
    WY = tensors(data.warmY!, [6, 3]);
  const lik = fixedSampler();
  if (o.warm) {
    lik.noise = data.warmNoise!;
    const n =
      opt instanceof TNT
        ? await opt.warmStart(
            WX.map((x) => [x] as [Tensor]),
            (x) => model.call(x),
            lik,
          )
        : await opt.warmStart(
            WX.map((x, j) => [x, WY[j]!] as [Tensor, Tensor]),
            (x) => model.call(x),
            loss,
          );
    expect(n).toBe(WX.length);
  }
  const steps: Step[] = [];
  for (let i = 0; i < o.steps; i++) {
    torch.tidy(() => {
      const out = model.call(X[i]!);
      if (opt instanceof TNT) {
        lik.noise = [data.noise![i]!];
        lik.draws = 0;
        opt.sampledBackward(out, lik);
      }
      loss(out, Y[i]!).backward();
      opt.step();
      opt.zeroGrad();
    });
    const factors: Record<string, number[][]> = {};
    torch.tidy(() =>
      params.forEach(
        (p, k) => (factors[names[k]!] = opt.curvatureState(p)!.factors.map((f) => f.dataSync() as number[])),
      ),
    );
    steps.push({ params: Object.fromEntries(params.map((p, k) => [names[k]!, p.dataSync() as number[]])), factors });
  }
  opt.dispose();
  model.dispose();
  torch.dispose([...X, ...Y, ...WX, ...WY]);
  return steps;
}

/** Our KFAC on the fixture's conv net. */
async function runConv(o: CaseOptions): Promise<{ steps: Step[]; opt: { statsUpdates: number } }> {
  const data = ref.data.conv_kfac;
  const conv = new torch.nn.Conv2d(2, 3, 3, { padding: 1, ...f64 }),
    lin = new torch.nn.Linear(27, 2, f64);
  const model = new torch.nn.Sequential(conv, new torch.nn.Tanh(), new torch.nn.Flatten(), lin);
  const names = ['W1', 'b1', 'W2', 'b2'];
  const params = [conv.weight, conv.bias!, lin.weight, lin.bias!];
  setParams(
    params,
    names.map((k) => ref.init.conv[k]!),
  );
  const opt = new KFAC(model, {
    lr: o.lr,
    damping: o.damping,
    momentum: 0.9,
    weightDecay: o.wd,
    statDecay: 0.9,
    statsEvery: o.T1,
    inverseEvery: o.T2,
    statistics: o.rule,
    convScaling: o.scaling,
    factorDtype: 'float64',
  });
  const tensors = (xs: number[][], shape: number[]): Tensor[] => xs.map((v) => torch.tensor(v, { shape, ...f64 }));
  const X = tensors(data.X!, [3, 2, 3, 3]),
    Y = tensors(data.Y!, [3, 2]),
    WX = tensors(data.warmX!, [3, 2, 3, 3]);
  const lik = fixedSampler();
  if (o.warm) {
    lik.noise = data.warmNoise!;
    expect(
      await opt.warmStart(
        WX.map((x) => [x] as [Tensor]),
        (x) => model.call(x),
        lik,
      ),
    ).toBe(WX.length);
  }
  const steps: Step[] = [];
  for (let i = 0; i < o.steps; i++) {
    torch.tidy(() => {
      const out = model.call(X[i]!);
      lik.noise = [data.noise![i]!];
      lik.draws = 0;
      expect(opt.sampledBackward(out, lik)).toBe(i % o.T1 === 0);
      loss(out, Y[i]!).backward();
      opt.step();
      opt.zeroGrad();
    });
    const c1 = opt.curvatureState(conv),
      c2 = opt.curvatureState(lin);
    const factors: Record<string, number[]> = { A1: c1.A.dataSync() as number[], G1: c1.G.dataSync() as number[] };
    if (i === o.steps - 1) Object.assign(factors, { A2: c2.A.dataSync() as number[], G2: c2.G.dataSync() as number[] });
    steps.push({ params: Object.fromEntries(params.map((p, k) => [names[k]!, p.dataSync() as number[]])), factors });
  }
  const statsUpdates = opt.statsUpdates;
  opt.dispose();
  model.dispose();
  torch.dispose([...X, ...Y, ...WX]);
  return { steps, opt: { statsUpdates } };
}

/** The largest relative difference between two cases' last-step parameters. */
function spread(a: string, b: string): number {
  const pa = ref.cases[a]!.steps.at(-1)!.params,
    pb = ref.cases[b]!.steps.at(-1)!.params;
  return Math.max(...Object.keys(pa).map((k) => relErr(pa[k]!, pb[k]!)));
}

describe("fidelity to the authors' code (test/reference/authors_port.py)", () => {
  // Each authors' case and the default case it must differ from.
  const pairs: [string, string][] = [
    ['tnt_nowarm_authors', 'tnt_nowarm_convex'],
    ['tnt_warm_authors', 'tnt_warm_convex'],
    ['shampoo_warm_authors_lessinverse', 'shampoo_warm_authors'],
    ['shampoo_warm_authors', 'shampoo_warm_convex'],
    ['shampoo_nowarm_authors_lessinverse', 'shampoo_nowarm_convex'],
    ['kfac_warm_authors', 'kfac_warm_kfc'],
    ['kfac_nowarm_authors', 'kfac_nowarm_convex'],
  ];
  it("the fixture's authors' and default trajectories differ (each option changes the result)", () => {
    for (const [a, b] of pairs) expect(spread(a, b), `${a} vs ${b}`).toBeGreaterThan(1e-3);
  });

  for (const name of Object.keys(ref.cases).filter((n) => !n.startsWith('kfac')))
    it(`${name}: parameters and factors after every step equal the port's`, async () => {
      await noLeak(async () => expectMatches(await runMlp(ref.cases[name]!.options), ref.cases[name]!.steps, name));
    });

  for (const name of Object.keys(ref.cases).filter((n) => n.startsWith('kfac')))
    it(`${name}: parameters and factors after every step equal the port's`, async () => {
      await noLeak(async () =>
        expectMatches((await runConv(ref.cases[name]!.options)).steps, ref.cases[name]!.steps, name),
      );
    });

  it("the default options do not reproduce the authors' trajectories (the comparison can fail)", async () => {
    await noLeak(async () => {
      const tnt = await runMlp({ ...ref.cases.tnt_warm_authors!.options, rule: 'convex' });
      expect(relErr(tnt.at(-1)!.params.W1!, ref.cases.tnt_warm_authors!.steps.at(-1)!.params.W1!)).toBeGreaterThan(
        1e-3,
      );
      const sh = await runMlp({ ...ref.cases.shampoo_warm_authors_lessinverse!.options, early: true });
      expect(
        relErr(sh.at(-1)!.params.b2!, ref.cases.shampoo_warm_authors_lessinverse!.steps.at(-1)!.params.b2!),
      ).toBeGreaterThan(1e-3);
      const kf = await runConv({ ...ref.cases.kfac_warm_authors!.options, scaling: 'kfc' });
      // KFC's A is the authors' divided by L = 9 locations: a relative difference of 8/9
      expect(
        relErr(
          kf.steps.at(-1)!.factors.A1 as number[],
          ref.cases.kfac_warm_authors!.steps.at(-1)!.factors.A1 as number[],
        ),
      ).toBeGreaterThan(0.5);
    });
  });
});

describe("the authors' rules, step by step", () => {
  const model = (): torch.nn.Sequential => new torch.nn.Sequential(new torch.nn.Linear(2, 2, f64));

  it('without a warm start the weight is max(1/(i+1), 1 - statDecay) with i the step, added to statDecay H', () => {
    const m = model();
    const opt = new TNT(m.parameters(), { lr: 0.1, statsEvery: 2, inverseEvery: 4, statistics: 'authors' });
    const conv = new TNT(m.parameters(), { lr: 0.1, statsEvery: 2, inverseEvery: 4 });
    const seen: [number, number, number][] = [];
    for (const o of [opt, conv]) {
      for (let i = 0; i < 8; i++) {
        if (o.statisticsDue()) {
          const { keep, weight } = o.statisticsCoefficients();
          if (o === opt) seen.push([i, keep, weight]);
          else expect(keep + weight).toBeCloseTo(1, 15);
          o.updateStatistics(o.params.map(() => null));
        }
        o.stepCount++;
      }
    }
    expect(seen).toEqual([
      [0, 0.9, 1],
      [2, 0.9, 1 / 3],
      [4, 0.9, 0.2],
      [6, 0.9, Math.max(1 / 7, 1 - 0.9)],
    ]);
    expect(conv.statisticsWeight()).toBe(1 / 5); // the convex rule counts updates: the 5th
    opt.dispose();
    conv.dispose();
    m.dispose();
  });

  it('after a warm start TNT and Shampoo gather nothing at step 0 (KFAC does), then keep statDecay and add 1 - statDecay', async () => {
    await noLeak(async () => {
      const m = model();
      const x = torch.ones([3, 2], f64);
      const lik = fixedSampler();
      lik.noise = [[0.1, -0.2, 0.3, 0.4, -0.5, 0.6]];
      const tnt = new TNT(m.parameters(), { lr: 0.1, statistics: 'authors' });
      await tnt.warmStart([[x]], (v) => m.call(v), lik);
      expect(tnt.statisticsDue()).toBe(false);
      torch.tidy(() => expect(tnt.sampledBackward(m.call(x), lik)).toBe(false));
      tnt.stepCount = 1;
      expect(tnt.statisticsDue()).toBe(true);
      expect(tnt.statisticsCoefficients()).toEqual({ keep: 0.9, weight: 1 - 0.9 });
      const sh = new Shampoo(m.parameters(), { lr: 0.1, statistics: 'authors' });
      await sh.warmStart([[x, x]], (v) => m.call(v), loss);
      expect(sh.statisticsDue()).toBe(false);
      const kf = new KFAC(m, { lr: 0.1, statistics: 'authors' });
      lik.draws = 0;
      await kf.warmStart([[x]], (v) => m.call(v), lik);
      expect(kf.statisticsDue()).toBe(true);
      for (const o of [tnt, sh, kf]) o.dispose();
      m.dispose();
      x.dispose();
    });
  });

  it('earlyRefresh: false refreshes only every inverseEvery steps from step 0', () => {
    const m = model();
    const due = (early: boolean): number[] => {
      const o = new Shampoo(m.parameters(), { lr: 0.1, statsEvery: 2, inverseEvery: 6, earlyRefresh: early });
      const out: number[] = [];
      for (let i = 0; i < 14; i++, o.stepCount++) if (o.inversesDue()) out.push(i);
      o.dispose();
      return out;
    };
    expect(due(false)).toEqual([0, 6, 12]);
    expect(due(true)).toEqual([0, 2, 4, 6, 12]);
    m.dispose();
  });

  it('the native statistics apply H <- keep H + weight S on every path (BLAS, libtorch ops, diagonal factors)', async () => {
    await noLeak(() => {
      const g = [0.3, -1.2, 0.7, 0.1, 0.9, -0.4, 1.5, -0.8, 0.2, 0.6, -0.1, 1.1]; // a (3, 4) gradient
      const S0 = [0, 1, 2].map((i) =>
        [0, 1, 2].map((j) => [0, 1, 2, 3].reduce((s, k) => s + g[i * 4 + k]! * g[j * 4 + k]!, 0)),
      );
      const S1diag = [0, 1, 2, 3].map((k) => [0, 1, 2].reduce((s, i) => s + g[i * 4 + k]! ** 2, 0));
      const H0 = [
          [2, 0.5, -0.3],
          [0.5, 1.5, 0.2],
          [-0.3, 0.2, 3],
        ],
        h1 = [0.4, 0.8, 1.2, 1.6];
      const want0 = H0.flatMap((r, i) => r.map((v, j) => 0.9 * v + 0.5 * S0[i]![j]!));
      const want1 = h1.map((v, k) => 0.9 * v + 0.5 * S1diag[k]!);
      const gt = torch.tensor(g, { shape: [3, 4], ...f64 });
      for (const blas of native.tntBlasAvailable() ? [true, false] : [false]) {
        const P = torch.zeros([3, 3], f64),
          hd = torch.zeros([3], f64),
          d1 = torch.tensor(h1, f64),
          a1 = torch.ones([4], f64);
        torch.tidy(() => native.tntPack(torch.tensor(H0, f64)._h, torch.eye(3, f64)._h, P._h, hd._h));
        native.tntStatistics([gt._h], [[3, 4]], [[P._h, d1._h]], [[hd._h, a1._h]], 0.5, blas, 0.9);
        const [H, A] = torch.tidy(() => native.tntUnpack(P._h, hd._h).map((x) => new Tensor(x).dataSync() as number[]));
        expect(relErr(H!, want0), `blas ${blas}`).toBeLessThan(1e-15);
        expect(A).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
        expect(relErr(d1.dataSync(), want1)).toBeLessThan(1e-15);
        torch.dispose([P, hd, d1, a1]);
      }
      const F0 = torch.tensor(H0, f64),
        F1 = torch.tensor(h1, f64);
      native.shampooStatistics([gt._h], [[3, 4]], [[F0._h, F1._h]], 0.5, 0.9);
      expect(relErr(F0.dataSync(), want0)).toBeLessThan(1e-15);
      expect(relErr(F1.dataSync(), want1)).toBeLessThan(1e-15);
      torch.dispose([gt, F0, F1]);
    });
  });

  it('rejects bad values of the new options', () => {
    const m = model();
    expect(() => new TNT(m.parameters(), { lr: 0.1, statistics: 'paper' as never })).toThrow(
      new RangeError(`Expected one of 'convex', 'authors' for statistics but received "paper" of type string`),
    );
    expect(() => new KFAC(m, { lr: 0.1, statistics: null as never })).toThrow(
      new TypeError(`Expected one of 'convex', 'authors' for statistics but received null of type null`),
    );
    expect(() => new Shampoo(m.parameters(), { lr: 0.1, earlyRefresh: 1 as never })).toThrow(
      new TypeError('Expected a boolean for earlyRefresh but received 1 of type number'),
    );
    expect(() => new KFAC(m, { lr: 0.1, convScaling: 'sum' as never })).toThrow(
      new RangeError(`Expected one of 'kfc', 'authors' for convScaling but received "sum" of type string`),
    );
    expectTypeOf<TNTConfig['statistics']>().toEqualTypeOf<'convex' | 'authors' | undefined>();
    expectTypeOf<ShampooConfig['earlyRefresh']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<KFACConfig['convScaling']>().toEqualTypeOf<'kfc' | 'authors' | undefined>();
    m.dispose();
  });
});
