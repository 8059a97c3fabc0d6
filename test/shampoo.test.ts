// optim.Shampoo: roots against a plain-JS float64 Jacobi eigendecomposition on Wishart factors (a wrong exponent
// would pass on the identity, not here), eigh against Newton, five steps with a warm start against a float64 dense
// Kronecker re-derivation, robustness (NaN, failed roots), state dicts, and argument errors.
import { describe, it, expect, expectTypeOf } from 'vitest';
import * as torch from '../lib/index.js';
import { native } from '../lib/native.js';
import { Shampoo } from '../lib/optim/shampoo.js';
import { Tensor } from '../lib/tensor.js';
import { lcg, noLeak } from './support/helpers.js';
import { type Mat, kron, relErr } from './support/dense.js';
import { prod, contraction } from './support/tnt-reference.js';

/** Cyclic Jacobi eigenvalue algorithm: S = V diag(values) V^T for a symmetric S. */
function jacobiEigen(S: Mat): { values: number[]; vectors: Mat } {
  const n = S.length;
  const A = S.map((r) => [...r]);
  const V: Mat = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const scale = A.reduce((s, r) => s + r.reduce((t, v) => t + v * v, 0), 0);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += A[i]![j]! ** 2;
    if (off <= 1e-32 * scale) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        if (A[p]![q] === 0) continue;
        const theta = (A[q]![q]! - A[p]![p]!) / (2 * A[p]![q]!);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k]![p]!,
            akq = A[k]![q]!;
          A[k]![p] = c * akp - s * akq;
          A[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p]![k]!,
            aqk = A[q]![k]!;
          A[p]![k] = c * apk - s * aqk;
          A[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k]![p]!,
            vkq = V[k]![q]!;
          V[k]![p] = c * vkp - s * vkq;
          V[k]![q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: A.map((r, i) => r[i]!), vectors: V };
}

/** Q diag(f(l)) Q^T from the Jacobi decomposition. */
function spectralFn(S: Mat, f: (l: number) => number): Mat {
  const { values, vectors: V } = jacobiEigen(S);
  const n = S.length;
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => values.reduce((s, l, k) => s + V[i]![k]! * f(l) * V[j]![k]!, 0)),
  );
}
const rootOf = (H: Mat, eps: number, k: number): Mat => spectralFn(H, (l) => (Math.max(l, 0) + eps) ** (-1 / (2 * k)));

function matmul(a: Mat, b: Mat): Mat {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, v, k) => s + v * b[k]![j]!, 0)));
}
/** A Wishart-like SPD matrix B B^T / m with a spread spectrum (columns of B scaled from 0.05 to 2). */
function wishart(d: number, rnd: () => number): Mat {
  const m = d + 3;
  const B = Array.from({ length: d }, (_, i) => Array.from({ length: m }, () => rnd() * (0.05 + (2 * i) / d)));
  return B.map((ri) => B.map((rj) => ri.reduce((s, v, k) => s + v * rj[k]!, 0) / m));
}

describe('Shampoo roots against a float64 Jacobi eigendecomposition', () => {
  it('the Jacobi reference reconstructs its input', () => {
    const H = wishart(6, lcg(3));
    const { values, vectors: V } = jacobiEigen(H);
    const back = H.map((r, i) => r.map((_, j) => values.reduce((s, l, k) => s + V[i]![k]! * l * V[j]![k]!, 0)));
    expect(relErr(back.flat(), H.flat())).toBeLessThan(1e-13);
    // a non-trivial spectrum: the exponent matters
    expect(Math.max(...values) / Math.min(...values)).toBeGreaterThan(50);
  });

  for (const shape of [[5], [6, 4], [3, 4, 5]]) {
    const k = shape.length;
    it(`k = ${k} (shape ${shape.join('x')}): eigh and Newton give (H + eps I)^(-1/${2 * k}), in float64 and float32`, async () => {
      await noLeak(() => {
        const rnd = lcg(17 + k);
        const eps = 1e-3;
        const H = shape.map((d) => wishart(d, rnd));
        const want = H.map((h) => rootOf(h, eps, k));
        // and the reference really is a -1/(2k) power: R^(2k) (H + eps I) = I
        const Rpow = Array.from({ length: 2 * k - 1 }).reduce<Mat>((acc) => matmul(acc, want[0]!), want[0]!);
        const ident = matmul(
          Rpow,
          H[0]!.map((r, i) => r.map((v, j) => v + (i === j ? eps : 0))),
        );
        expect(relErr(ident.flat(), ident.map((r, i) => r.map((_, j) => (i === j ? 1 : 0))).flat())).toBeLessThan(
          1e-10,
        );
        for (const [dtype, tol] of [
          ['float64', 1e-10],
          ['float32', 1e-3],
        ] as const)
          for (const [method, code] of [
            ['eigh', 0],
            ['newton', 1],
          ] as const) {
            const factors = H.map((h) => torch.tensor(h, { dtype }));
            const roots = shape.map((d) => torch.zeros([d, d], { dtype }));
            const r = native.shampooRoots([shape], [factors.map((f) => f._h)], [roots.map((t) => t._h)], eps, code);
            expect(r, `${dtype} ${method}`).toMatchObject({ computed: k, failed: 0, skippedNonFinite: 0 });
            roots.forEach((t, i) =>
              expect(relErr(t.dataSync(), want[i]!.flat()), `${dtype} ${method} factor ${i}`).toBeLessThan(tol),
            );
            torch.dispose([factors, roots]);
          }
      });
    });
  }

  it('a diagonal factor takes the elementwise root, with negative entries clamped at 0', async () => {
    await noLeak(() => {
      const h = torch.tensor([4, 0.25, -0.5, 0], { dtype: 'float64' });
      const full = torch.tensor(wishart(3, lcg(5)), { dtype: 'float64' });
      const r0 = torch.zeros([4], { dtype: 'float64' });
      const r1 = torch.zeros([3, 3], { dtype: 'float64' });
      native.shampooRoots([[4, 3]], [[h._h, full._h]], [[r0._h, r1._h]], 0.01, 0);
      expect(r0.dataSync()).toEqual([4.01, 0.26, 0.01, 0.01].map((v) => expect.closeTo(v ** -0.25, 12)));
      torch.dispose([h, full, r0, r1]);
    });
  });

  it('skips non-finite factors, and keeps the last root when even float64 fails', async () => {
    await noLeak(() => {
      const nan = torch.tensor(
        [
          [NaN, 0],
          [0, 1],
        ],
        { dtype: 'float64' },
      );
      const root = torch.eye(2, { dtype: 'float64' });
      expect(native.shampooRoots([[2]], [[nan._h]], [[root._h]], 0.1, 0)).toMatchObject({
        computed: 0,
        skippedNonFinite: 1,
      });
      expect(root.dataSync()).toEqual([1, 0, 0, 1]);
      // H + eps I indefinite: Newton's iteration diverges in float32 and float64 alike; eigh clamps the -5 to 0.
      const indefinite = torch.tensor([
        [1, 0],
        [0, -5],
      ]);
      const r32 = torch.eye(2);
      expect(native.shampooRoots([[2]], [[indefinite._h]], [[r32._h]], 0.1, 1)).toMatchObject({
        computed: 0,
        failed: 1,
      });
      expect(r32.dataSync()).toEqual([1, 0, 0, 1]);
      expect(native.shampooRoots([[2]], [[indefinite._h]], [[r32._h]], 0.1, 0)).toMatchObject({
        computed: 1,
        failed: 0,
      });
      expect(r32.dataSync()).toEqual([1.1 ** -0.5, 0, 0, 0.1 ** -0.5].map((v) => expect.closeTo(v, 5)));
      torch.dispose([nan, root, indefinite, r32]);
    });
  });
});

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
const mse = (o: Tensor, y: Tensor): Tensor =>
  torch.tidy(() =>
    o
      .sub(y)
      .square()
      .sum()
      .mul(0.5 / o.shape[0]!),
  );

describe('optim.Shampoo', () => {
  for (const rootMethod of ['eigh', 'newton'] as const)
    it(`a warm start and five steps on a small MLP equal a float64 dense re-derivation (${rootMethod})`, async () => {
      await noLeak(async () => {
        const rx = lcg(5);
        const batch = (): [Tensor, Tensor] => [
          torch.tensor(
            Array.from({ length: 24 }, () => rx()),
            { shape: [8, 3], dtype: 'float64' },
          ),
          torch.tensor(
            Array.from({ length: 16 }, () => rx()),
            { shape: [8, 2], dtype: 'float64' },
          ),
        ];
        const warm = [batch(), batch()];
        const [x, target] = batch();
        const ps = mlp(1);
        const shapes = ps.map((p) => p.shape);
        let refPs = ps.map((p) => p.dataSync());
        const lr = 0.05,
          eps = 1e-3,
          mu = 0.9,
          wd = 0.01,
          T1 = 1,
          T2 = 2,
          decay = 0.9;
        const opt = new Shampoo(ps, {
          lr,
          epsilon: eps,
          momentum: mu,
          weightDecay: wd,
          statsEvery: T1,
          inverseEvery: T2,
          factorDtype: 'float64',
          rootMethod,
        });

        const gradsAt = (vals: number[][], xb: Tensor, yb: Tensor): number[][] => {
          const rps = vals.map((v, i) => torch.tensor(v, { shape: shapes[i]!, dtype: 'float64', requiresGrad: true }));
          const out = forward(rps, xb);
          const l = mse(out, yb);
          const gs = torch.grad(l, rps);
          const res = gs.map((g) => g!.dataSync());
          torch.dispose([rps, out, l, gs]);
          return res;
        };
        // reference warm start: the plain mean of the contractions over the batches
        const H: Mat[][] = shapes.map((s) =>
          s.map((d) => Array.from({ length: d }, () => new Array<number>(d).fill(0))),
        );
        for (const [xb, yb] of warm) {
          gradsAt(refPs, xb, yb).forEach((g, p) =>
            shapes[p]!.forEach((_, i) => {
              const c = contraction(g, shapes[p]!, i);
              H[p]![i] = H[p]![i]!.map((row, a) => row.map((v, b) => v + c[a]![b]! / warm.length));
            }),
          );
        }
        let R = shapes.map((s, p) => s.map((_, i) => rootOf(H[p]![i]!, eps, s.length)));
        const m = shapes.map((s) => new Array<number>(prod(s)).fill(0));

        expect(await opt.warmStart(warm, (xb) => forward(ps, xb), mse)).toBe(2);
        opt
          .curvatureState(ps[0]!)!
          .factors.forEach((f, i) => expect(relErr(f.dataSync(), H[0]![i]!.flat())).toBeLessThan(1e-12));

        for (let t = 0; t < 5; t++) {
          const g = gradsAt(refPs, x, target);
          if (t % T1 === 0)
            g.forEach((gv, p) =>
              shapes[p]!.forEach((_, i) => {
                const c = contraction(gv, shapes[p]!, i);
                H[p]![i] = H[p]![i]!.map((row, a) => row.map((v, b) => decay * v + (1 - decay) * c[a]![b]!));
              }),
            );
          if (t % T2 === 0 || (t < T2 && t % T1 === 0))
            R = shapes.map((s, p) => s.map((_, i) => rootOf(H[p]![i]!, eps, s.length)));
          refPs = refPs.map((v, p) => {
            m[p] = m[p]!.map((mv, j) => mu * mv + g[p]![j]!);
            let K: Mat = [[1]];
            for (const r of R[p]!) K = kron(K, r);
            const dir = K.map((row) => row.reduce((s, kv, j) => s + kv * m[p]![j]!, 0));
            return v.map((w, j) => w * (1 - lr * wd) - lr * dir[j]!);
          });

          torch.tidy(() => {
            mse(forward(ps, x), target).backward();
            opt.step();
            opt.zeroGrad();
          });
          ps.forEach((p, i) =>
            expect(relErr(p.dataSync(), refPs[i]!), `step ${t} parameter ${i}`).toBeLessThan(
              rootMethod === 'eigh' ? 1e-10 : 1e-7,
            ),
          );
        }
        expect(opt.stepCount).toBe(5);
        expect(opt.statsUpdates).toBe(5);
        expect(opt.lastRootReport).toMatchObject({ failed: 0, skippedNonFinite: 0 });
        opt.dispose();
        torch.dispose([warm, x, target, ps]);
      });
    });

  it('skips a step whose gradient is not finite, keeping parameters, momentum and statistics, or throws when asked', async () => {
    await noLeak(() => {
      const p = torch.tensor(
        [
          [1, 2],
          [3, 4],
        ],
        { requiresGrad: true },
      );
      const q = torch.tensor([1, -1], { requiresGrad: true });
      const opt = new Shampoo([p, q], { lr: 0.1 });
      const setGrads = (a: number[][], b: number[]): void => {
        const ga = torch.tensor(a),
          gb = torch.tensor(b);
        p.grad = ga;
        q.grad = gb;
        torch.dispose([ga, gb]);
      };
      setGrads(
        [
          [1, 0.5],
          [0.25, 1],
        ],
        [1, 2],
      );
      opt.step();
      const snap = (): number[][] =>
        [
          p,
          q,
          opt.state.get(p)!.momentum as Tensor,
          ...opt.curvatureState(p)!.factors,
          ...opt.curvatureState(q)!.factors,
        ].map((t) => t.dataSync());
      const before = snap();
      // q's gradient is finite, p's is not: nothing at all changes (q's statistics included)
      setGrads(
        [
          [NaN, 1],
          [1, 1],
        ],
        [3, 4],
      );
      opt.step();
      expect(snap()).toEqual(before);
      expect(opt.skippedSteps).toBe(1);
      expect(opt.stepCount).toBe(2);
      const strict = new Shampoo([p, q], { lr: 0.1, onNonFinite: 'throw' });
      expect(() => strict.step()).toThrow(expect.objectContaining({ name: 'TorchError', code: 'NON_FINITE' }));
      p.grad = null;
      q.grad = null;
      strict.dispose();
      opt.dispose();
      torch.dispose([p, q]);
    });
  });

  it('gathers statistics from .grad every statsEvery steps and shapes factors as TNT', async () => {
    await noLeak(() => {
      const w = torch.zeros([3, 10], { requiresGrad: true });
      const s = torch.zeros([1], { requiresGrad: true });
      const conv = torch.zeros([4, 2, 3, 3], { requiresGrad: true });
      const opt = new Shampoo([w, s, conv], { lr: 0.1, maxFactorDim: 8, statsEvery: 2, inverseEvery: 4 });
      for (const p of [w, s, conv]) {
        const g = torch.onesLike(p);
        p.grad = g;
        g.dispose();
      }
      for (let t = 0; t < 5; t++) opt.step();
      expect(opt.statsUpdates).toBe(3);
      expect(opt.curvatureState(w)!.factors.map((f) => f.shape)).toEqual([[3, 3], [10]]);
      expect(opt.curvatureState(s)!.shape).toEqual([]);
      expect(opt.curvatureState(conv)!.factors.map((f) => f.shape)).toEqual([[4, 4], [2, 2], [9]]);
      // ones (3 x 10): H_0 = 10 * ones(3, 3) and diag(H_1) = 3 after any number of updates (a fixed point)
      expect(opt.curvatureState(w)!.factors[1]!.dataSync()).toEqual(new Array(10).fill(expect.closeTo(3, 5)));
      for (const p of [w, s, conv]) p.grad = null;
      opt.dispose();
      torch.dispose([w, s, conv]);
    });
  });

  it('a resumed run continues identically from stateDict()', async () => {
    await noLeak(() => {
      const rx = lcg(3);
      const x = torch.tensor(
        Array.from({ length: 24 }, () => rx()),
        { shape: [8, 3], dtype: 'float64' },
      );
      const run = (ps: Tensor[], opt: Shampoo, steps: number): void => {
        for (let t = 0; t < steps; t++)
          torch.tidy(() => {
            forward(ps, x).square().sum().backward();
            opt.step();
            opt.zeroGrad();
          });
      };
      const a = mlp(2),
        b = mlp(2);
      const cfg = { lr: 0.05, statsEvery: 1, inverseEvery: 3, factorDtype: 'float64' as const };
      const optA = new Shampoo(a, cfg);
      run(a, optA, 4);
      a.forEach((p, i) => torch.noGrad(() => b[i]!.copy_(p)));
      const optB = new Shampoo(b, cfg);
      optB.loadStateDict(optA.stateDict());
      optA.loadStateDict(optA.stateDict()); // its own factors and momentum: copied before the old ones are freed
      expect(() => optA.loadStateDict({ ...optA.stateDict(), shampoo: { statsUpdates: 2.5 } })).toThrow(
        'Expected a non-negative integer for stateDict.shampoo.statsUpdates but received 2.5',
      );
      run(a, optA, 4);
      run(b, optB, 4);
      a.forEach((p, i) => expect(b[i]!.dataSync()).toEqual(p.dataSync()));
      expect(optB.stepCount).toBe(8);
      optA.dispose();
      optB.dispose();
      torch.dispose([a, b, x]);
    });
  });

  it('is exported as optim.Shampoo with typed options', () => {
    expectTypeOf(torch.optim.Shampoo).toEqualTypeOf<typeof Shampoo>();
    expectTypeOf<ConstructorParameters<typeof Shampoo>[1]['rootMethod']>().toEqualTypeOf<
      'eigh' | 'newton' | undefined
    >();
    expectTypeOf<ConstructorParameters<typeof Shampoo>[1]>().toHaveProperty('lr').toEqualTypeOf<number>();
  });

  it('rejects bad hyperparameters and arguments with clear errors', async () => {
    const p = torch.zeros([2, 2], { requiresGrad: true });
    expect(() => new Shampoo([p], { lr: -1 })).toThrow(
      new RangeError('Expected a non-negative number for lr but received -1 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, epsilon: 0 })).toThrow(
      new RangeError('Expected a positive number for epsilon but received 0 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, momentum: 1 })).toThrow(
      new RangeError('Expected a number in [0, 1) for momentum but received 1 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, statDecay: -0.1 })).toThrow(
      new RangeError('Expected a number in [0, 1) for statDecay but received -0.1 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, weightDecay: -1 })).toThrow(
      new RangeError('Expected a non-negative number for weightDecay but received -1 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, statsEvery: 3, inverseEvery: 10 })).toThrow(
      new RangeError('Expected inverseEvery (10) to be a multiple of statsEvery (3)'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, inverseEvery: 0 })).toThrow(
      new RangeError('Expected a positive integer for inverseEvery but received 0 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, rootMethod: 'svd' as 'eigh' })).toThrow(
      new RangeError("Expected one of 'eigh', 'newton' for rootMethod but received \"svd\" of type string"),
    );
    expect(() => new Shampoo([p], { lr: 0.1, maxFactorDim: 0 })).toThrow(
      new RangeError('Expected a positive integer for maxFactorDim but received 0 of type number'),
    );
    expect(() => new Shampoo([p], { lr: 0.1, damping: 0.1 } as never)).toThrow("Shampoo: unknown option 'damping'");
    const opt = new Shampoo([p], { lr: 0.1 });
    expect(() => opt.updateStatistics([])).toThrow(
      'updateStatistics: expected 1 gradients (one per parameter) but received 0',
    );
    await expect(opt.warmStart([], (x) => x, 42 as never)).rejects.toThrow(TypeError);
    await expect(opt.warmStart([], (x) => x, mse)).rejects.toThrow('warmStart: batches yielded no usable batch');
    opt.dispose();
    p.dispose();
  });
});
