// optim.KFAC: a Linear layer's factors and three steps against a plain-JS float64 computation (A, G, the real
// gradient and the dense Kronecker solve with the split damping), conv factors against an explicit unfold in plain JS
// (strides, 'same' padding, dilation), BatchNorm's momentum direction, robustness, state dicts and argument errors.
import { describe, it, expect, expectTypeOf } from 'vitest';
import * as torch from '../lib/index.js';
import { KFAC } from '../lib/optim/kfac.js';
import { Tensor } from '../lib/tensor.js';
import { native } from '../lib/native.js';
import { lcg, noLeak } from './support/helpers.js';
import { type Mat, kron, solve, relErr } from './support/dense.js';

const eyeM = (d: number, s = 1): Mat =>
  Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? s : 0)));
const addM = (a: Mat, b: Mat): Mat => a.map((r, i) => r.map((v, j) => v + b[i]![j]!));
const scaleM = (a: Mat, s: number): Mat => a.map((r) => r.map((v) => v * s));
/** (1/scale) sum over rows r of r r^T. */
function gram(rows: number[][], scale: number): Mat {
  const d = rows[0]!.length;
  const out = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  for (const r of rows) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i]![j]! += (r[i]! * r[j]!) / scale;
  return out;
}
const rowsOf = (v: number[], n: number, d: number): number[][] =>
  Array.from({ length: n }, (_, i) => v.slice(i * d, (i + 1) * d));

/** Gaussian likelihood, batch-mean 0.5 ||o - y||^2, whose "samples" are o + fixed noise: dL/do = -noise / N. */
function fixedGaussian(noise: () => number): {
  loss(o: Tensor, y: Tensor): Tensor;
  sample(o: Tensor): Tensor;
  drawn: number[][];
} {
  const drawn: number[][] = [];
  return {
    drawn,
    loss: (o, y) =>
      torch.tidy(() =>
        o
          .sub(y)
          .square()
          .sum()
          .mul(0.5 / o.shape[0]!),
      ),
    sample: (o) => {
      const v = Array.from({ length: o.numel() }, noise);
      drawn.push(v);
      return torch.tidy(() => o.detach().add(torch.tensor(v, { shape: o.shape, dtype: o.dtype })));
    },
  };
}
const mse = (o: Tensor, y: Tensor): Tensor =>
  torch.tidy(() =>
    o
      .sub(y)
      .square()
      .sum()
      .mul(0.5 / o.shape[0]!),
  );

/** Explicit im2col: rows (n, oh, ow) of patches ordered (c, i, j), zero outside; pad = [top, bottom, left, right]. */
function unfoldJS(x: number[], shape: number[], k: number[], s: number[], p: number[], d: number[]): number[][] {
  const [N = 0, C = 0, H = 0, W = 0] = shape,
    [kh = 0, kw = 0] = k,
    [sh = 1, sw = 1] = s,
    [pt = 0, pb = 0, pl = 0, pr = 0] = p,
    [dh = 1, dw = 1] = d;
  const oh = Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const rows: number[][] = [];
  for (let n = 0; n < N; n++)
    for (let a = 0; a < oh; a++)
      for (let b = 0; b < ow; b++) {
        const r: number[] = [];
        for (let c = 0; c < C; c++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const y = a * sh - pt + i * dh,
                z = b * sw - pl + j * dw;
              r.push(y >= 0 && y < H && z >= 0 && z < W ? x[((n * C + c) * H + y) * W + z]! : 0);
            }
        rows.push(r);
      }
  return rows;
}

describe('optim.KFAC', () => {
  it('on a Linear layer with bias, A, G and three steps equal a float64 computation with the split damping', async () => {
    await noLeak(() => {
      const N = 6,
        din = 3,
        dout = 4;
      const rx = lcg(7);
      const xv = Array.from({ length: N * din }, () => rx());
      const tv = Array.from({ length: N * dout }, () => rx());
      const x = torch.tensor(xv, { shape: [N, din], dtype: 'float64' });
      const target = torch.tensor(tv, { shape: [N, dout], dtype: 'float64' });
      const layer = new torch.nn.Linear(din, dout, { dtype: 'float64' });
      let W = rowsOf(layer.weight.dataSync(), dout, din);
      let b = layer.bias!.dataSync();
      const lr = 0.5,
        lambda = 0.05,
        mu = 0.9,
        wd = 0.01,
        T2 = 2,
        sq = Math.sqrt(lambda);
      const opt = new KFAC(layer, {
        lr,
        damping: lambda,
        momentum: mu,
        weightDecay: wd,
        inverseEvery: T2,
        factorDtype: 'float64',
      });
      expect(opt.layers.map((l) => l.module)).toEqual([layer]);
      const lik = fixedGaussian(lcg(11));

      const xs = rowsOf(xv, N, din).map((r) => [...r, 1]);
      const A = gram(xs, N); // fixed input: the moving average of A is A itself
      let G: Mat = eyeM(dout, 0);
      let invs: [Mat, Mat] = [eyeM(dout, 1 / sq), eyeM(din + 1, 1 / sq)]; // (G + sq I), (A + sq I) before inversion
      let m: number[] = new Array<number>(dout * (din + 1)).fill(0);
      for (let t = 0; t < 3; t++) {
        torch.tidy(() => {
          const out = layer.call(x);
          expect(opt.sampledBackward(out, lik)).toBe(true);
          mse(out, target).backward();
          opt.step();
          opt.zeroGrad();
        });
        // reference: dL/ds of the sampled loss is -noise / N, so G = N sum g g^T = (1/N) sum noise noise^T
        const w = Math.max(1 / (t + 1), 0.1);
        G = addM(scaleM(G, 1 - w), scaleM(gram(rowsOf(lik.drawn[t]!, N, dout), N), w));
        expect(relErr(opt.curvatureState(layer).A.dataSync(), A.flat())).toBeLessThan(1e-13);
        expect(relErr(opt.curvatureState(layer).G.dataSync(), G.flat())).toBeLessThan(1e-13);
        if (t % T2 === 0 || t < T2) invs = [addM(G, eyeM(dout, sq)), addM(A, eyeM(din + 1, sq))];
        // real gradient of the batch-mean squared error, in [W | b] layout
        const grad = new Array<number>(dout * (din + 1)).fill(0);
        for (let n = 0; n < N; n++)
          for (let o = 0; o < dout; o++) {
            const r = (xs[n]!.slice(0, din).reduce((s, v, i) => s + v * W[o]![i]!, 0) + b[o]! - tv[n * dout + o]!) / N;
            for (let i = 0; i <= din; i++) grad[o * (din + 1) + i]! += r * xs[n]![i]!;
          }
        m = m.map((v, i) => mu * v + grad[i]!);
        // ((G + sq I) (x) (A + sq I)) vec(D) = vec(M), i.e. D = (G + sq I)^-1 M (A + sq I)^-1
        const dir = solve(kron(invs[0], invs[1]), m);
        W = W.map((row, o) => row.map((v, i) => v * (1 - lr * wd) - lr * dir[o * (din + 1) + i]!));
        b = b.map((v, o) => v * (1 - lr * wd) - lr * dir[o * (din + 1) + din]!);
        expect(relErr(layer.weight.dataSync(), W.flat()), `step ${t} weight`).toBeLessThan(1e-12);
        expect(relErr(layer.bias!.dataSync(), b), `step ${t} bias`).toBeLessThan(1e-12);
      }
      expect(opt.statsUpdates).toBe(3);
      expect(opt.lastInverseReport).toMatchObject({ inverted: 2, failed: 0 });
      opt.dispose();
      layer.dispose();
      torch.dispose([x, target]);
    });
  });

  const convCases = [
    {
      name: 'kernel 3, stride 2, padding 1, with bias',
      k: [3, 3],
      o: { stride: 2, padding: 1 },
      pad: [1, 1, 1, 1],
      stride: [2, 2],
      dil: [1, 1],
      bias: true,
    },
    {
      name: "kernel 2x3, padding 'same' (odd total on one side)",
      k: [2, 3],
      o: { padding: 'same' as const },
      pad: [0, 1, 1, 1],
      stride: [1, 1],
      dil: [1, 1],
      bias: true,
    },
    {
      name: 'kernel 3, dilation 2, padding 2, no bias',
      k: [3, 3],
      o: { dilation: 2, padding: 2, bias: false },
      pad: [2, 2, 2, 2],
      stride: [1, 1],
      dil: [2, 2],
      bias: false,
    },
  ];
  for (const c of convCases)
    it(`conv factors come from an explicit unfold: ${c.name}`, async () => {
      await noLeak(() => {
        const shape = [2, 2, 5, 6];
        const rx = lcg(3);
        const xv = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rx());
        const x = torch.tensor(xv, { shape, dtype: 'float64' });
        const conv = new torch.nn.Conv2d(2, 3, c.k, { ...c.o, dtype: 'float64' });
        const opt = new KFAC(conv, { lr: 1, damping: 0.1, momentum: 0, factorDtype: 'float64' });
        const lik = fixedGaussian(lcg(5));
        let gW: number[] = [],
          gb: number[] = [];
        torch.tidy(() => {
          const out = conv.call(x);
          opt.sampledBackward(out, lik);
          out.square().sum().backward();
          gW = conv.weight.grad!.dataSync();
          gb = conv.bias?.grad?.dataSync() ?? [];
        });
        const N = shape[0]!;
        const patches = unfoldJS(xv, shape, c.k, c.stride, c.pad, c.dil);
        const L = patches.length / N;
        const A = gram(c.bias ? patches.map((r) => [...r, 1]) : patches, N * L);
        // G sums over locations and averages over examples: N sum g g^T with g = -noise / N, rows (n, l)
        const noise = lik.drawn[0]!;
        const gRows: number[][] = [];
        for (let n = 0; n < N; n++)
          for (let l = 0; l < L; l++) gRows.push([0, 1, 2].map((o) => noise[(n * 3 + o) * L + l]!));
        const G = gram(gRows, N);
        const st = opt.curvatureState(conv);
        expect(st.A.shape).toEqual([A.length, A.length]);
        expect(relErr(st.A.dataSync(), A.flat())).toBeLessThan(1e-13);
        expect(relErr(st.G.dataSync(), G.flat())).toBeLessThan(1e-13);
        // the step: W <- W - (G + sqrt(l) I)^-1 [gW | gb] (A + sqrt(l) I)^-1, W flattened to (out, in kh kw)
        const cols = gW.length / 3;
        const M: number[] = [];
        for (let o = 0; o < 3; o++) M.push(...gW.slice(o * cols, (o + 1) * cols), ...(c.bias ? [gb[o]!] : []));
        const sq = Math.sqrt(0.1);
        const dir = solve(kron(addM(G, eyeM(3, sq)), addM(A, eyeM(A.length, sq))), M);
        const w0 = conv.weight.dataSync();
        const b0 = conv.bias?.dataSync() ?? [];
        opt.step();
        const d = A.length;
        expect(
          relErr(
            conv.weight.dataSync(),
            w0.map((v, i) => v - dir[Math.floor(i / cols) * d + (i % cols)]!),
          ),
        ).toBeLessThan(1e-12);
        if (c.bias)
          expect(
            relErr(
              conv.bias!.dataSync(),
              b0.map((v, o) => v - dir[o * d + cols]!),
            ),
          ).toBeLessThan(1e-12);
        opt.zeroGrad();
        opt.dispose();
        conv.dispose();
        x.dispose();
      });
    });

  it('gives BatchNorm (and every non-layer parameter) the plain momentum direction', async () => {
    await noLeak(() => {
      const rx = lcg(9);
      const x = torch.tensor(
        Array.from({ length: 24 }, () => rx()),
        { shape: [8, 3], dtype: 'float64' },
      );
      const model = new torch.nn.Sequential(
        new torch.nn.Linear(3, 4, { dtype: 'float64' }),
        new torch.nn.BatchNorm1d(4, { dtype: 'float64' }),
        new torch.nn.Linear(4, 2, { dtype: 'float64' }),
      );
      const lr = 0.1,
        mu = 0.9,
        wd = 0.01;
      const opt = new KFAC(model, { lr, momentum: mu, weightDecay: wd, factorDtype: 'float64' });
      expect(opt.layers.map((l) => l.name)).toEqual(['0', '2']);
      const bn = model.modules()[2] as torch.nn.BatchNorm1d;
      const lik = fixedGaussian(lcg(4));
      let mW = [0, 0, 0, 0],
        mB = [0, 0, 0, 0];
      for (let t = 0; t < 2; t++) {
        const w0 = bn.weight!.dataSync(),
          b0 = bn.bias!.dataSync();
        torch.tidy(() => {
          const out = model.call(x);
          opt.sampledBackward(out, lik);
          out.square().sum().backward();
          const gw = bn.weight!.grad!.dataSync(),
            gb = bn.bias!.grad!.dataSync();
          mW = mW.map((v, i) => mu * v + gw[i]!);
          mB = mB.map((v, i) => mu * v + gb[i]!);
          opt.step();
          opt.zeroGrad();
        });
        expect(
          relErr(
            bn.weight!.dataSync(),
            w0.map((v, i) => v * (1 - lr * wd) - lr * mW[i]!),
          ),
        ).toBeLessThan(1e-14);
        expect(
          relErr(
            bn.bias!.dataSync(),
            b0.map((v, i) => v * (1 - lr * wd) - lr * mB[i]!),
          ),
        ).toBeLessThan(1e-14);
      }
      opt.dispose();
      model.dispose();
      x.dispose();
    });
  });

  it('skips a step whose gradient is not finite, keeps statistics finite, or throws when asked', async () => {
    await noLeak(() => {
      const layer = new torch.nn.Linear(2, 2);
      const opt = new KFAC(layer, { lr: 0.1 });
      const x = torch.tensor([
        [1, 2],
        [3, 4],
      ]);
      const lik = new torch.Gaussian();
      torch.tidy(() => {
        const out = layer.call(x);
        opt.sampledBackward(out, lik); // a step needs statistics (NO_STATISTICS otherwise)
        out.sum().backward();
        opt.step();
      });
      const snap = (): number[][] =>
        [layer.weight, layer.bias!, opt.state.get(layer.weight)!.momentum as Tensor].map((t) => t.dataSync());
      const before = snap();
      const bad = torch.tensor([
        [NaN, 0],
        [0, 0],
      ]);
      layer.weight.grad = bad;
      opt.step();
      expect(snap()).toEqual(before);
      expect(opt.skippedSteps).toBe(1);
      const strict = new KFAC(layer, { lr: 0.1, onNonFinite: 'throw' });
      torch.tidy(() => strict.sampledBackward(layer.call(x), lik));
      expect(() => strict.step()).toThrow(expect.objectContaining({ name: 'TorchError', code: 'NON_FINITE' }));
      // a non-finite input never reaches the statistics
      const A0 = opt.curvatureState(layer).A.dataSync();
      const g = torch.ones([2, 2]);
      opt.updateStatistics([{ module: layer, input: bad, outputGrad: g }]);
      expect(opt.skippedStatistics).toBe(1);
      expect(opt.curvatureState(layer).A.dataSync()).toEqual(A0);
      opt.zeroGrad();
      torch.dispose([bad, g, x]);
      strict.dispose();
      opt.dispose();
      layer.dispose();
    });
  });

  it('splits the damping by pi when asked', async () => {
    await noLeak(() => {
      const layer = new torch.nn.Linear(2, 3, { bias: false, dtype: 'float64' });
      const opt = new KFAC(layer, { lr: 0.1, damping: 0.04, factorDtype: 'float64', piCorrection: true });
      const a = torch.tensor(
        [
          [1, 2],
          [3, -1],
        ],
        { dtype: 'float64' },
      );
      const g = torch.tensor(
        [
          [0.5, 0, 1],
          [0, 0.25, 0],
        ],
        { dtype: 'float64' },
      );
      opt.updateStatistics([{ module: layer, input: a, outputGrad: g }]);
      opt.updateInverses();
      // A = (1/2) a^T a = [[5, -0.5], [-0.5, 2.5]] (no bias), G = 2 g^T g; pi^2 = (tr A / 2) / (tr G / 3)
      const A = [
        [5, -0.5],
        [-0.5, 2.5],
      ];
      const G = gram(
        [
          [0.5, 0, 1],
          [0, 0.25, 0],
        ],
        0.5,
      );
      const pi = Math.sqrt(7.5 / 2 / ((G[0]![0]! + G[1]![1]! + G[2]![2]!) / 3));
      const st = opt.curvatureState(layer);
      const check = (inv: Tensor, F: Mat, d: number): void => {
        const K = addM(F, eyeM(F.length, d));
        const prodM = K.map((row) =>
          F.map((_, j) => row.reduce((s, v, k) => s + v * inv.dataSync()[k * F.length + j]!, 0)),
        );
        expect(relErr(prodM.flat(), eyeM(F.length).flat())).toBeLessThan(1e-12);
      };
      check(st.invA, A, 0.2 * pi);
      check(st.invG, G, 0.2 / pi);
      torch.dispose([a, g]);
      opt.dispose();
      layer.dispose();
    });
  });

  it('a warm start averages the sampled statistics, and a resumed run continues identically from stateDict()', async () => {
    await noLeak(async () => {
      const rx = lcg(13);
      const xs = [0, 1, 2].map(() =>
        torch.tensor(
          Array.from({ length: 12 }, () => rx()),
          { shape: [4, 3], dtype: 'float64' },
        ),
      );
      const make = (): torch.nn.Sequential => {
        const m = new torch.nn.Sequential(
          new torch.nn.Linear(3, 3, { dtype: 'float64' }),
          new torch.nn.Tanh(),
          new torch.nn.Linear(3, 2, { dtype: 'float64' }),
        );
        const r = lcg(2);
        torch.tidy(() =>
          torch.noGrad(() =>
            m.parameters().forEach((p) =>
              p.copy_(
                torch.tensor(
                  Array.from({ length: p.numel() }, () => r()),
                  { shape: p.shape, dtype: 'float64' },
                ),
              ),
            ),
          ),
        );
        return m;
      };
      const a = make(),
        b = make();
      const cfg = { lr: 0.05, inverseEvery: 2, factorDtype: 'float64' as const };
      const optA = new KFAC(a, cfg);
      const warmLik = fixedGaussian(lcg(1));
      expect(await optA.warmStart(xs.slice(0, 2), (x) => a.call(x), warmLik)).toBe(2);
      expect(optA.warmStarted).toBe(true);
      expect(optA.statisticsWeight()).toBeCloseTo(0.1, 15);
      // the last layer's G is the mean over the two batches of (1/N) sum noise noise^T
      const Gs = warmLik.drawn.map((v) => gram(rowsOf(v, 4, 2), 4));
      expect(
        relErr(
          optA.curvatureState('2').G.dataSync(),
          addM(Gs[0]!, Gs[1]!)
            .flat()
            .map((v) => v / 2),
        ),
      ).toBeLessThan(1e-13);
      const run = (m: torch.nn.Sequential, opt: KFAC, lik: ReturnType<typeof fixedGaussian>, steps: number): void => {
        for (let t = 0; t < steps; t++)
          torch.tidy(() => {
            const out = m.call(xs[2]!);
            opt.sampledBackward(out, lik);
            out.square().sum().backward();
            opt.step();
            opt.zeroGrad();
          });
      };
      const noiseA = lcg(8),
        noiseB = lcg(8);
      run(a, optA, fixedGaussian(noiseA), 3);
      a.parameters().forEach((p, i) => torch.noGrad(() => b.parameters()[i]!.copy_(p)));
      for (let i = 0; i < 3 * 8; i++) noiseB();
      const optB = new KFAC(b, cfg);
      optB.loadStateDict(optA.stateDict());
      optA.loadStateDict(optA.stateDict()); // its own factors and momentum: changes nothing
      expect(() => optA.loadStateDict({ ...optA.stateDict(), kfac: { skippedSteps: NaN } })).toThrow(
        'Expected a non-negative integer for stateDict.kfac.skippedSteps but received NaN',
      );
      run(a, optA, fixedGaussian(noiseA), 3);
      run(b, optB, fixedGaussian(noiseB), 3);
      a.parameters().forEach((p, i) => expect(b.parameters()[i]!.dataSync()).toEqual(p.dataSync()));
      expect(optB.stepCount).toBe(6);
      optA.dispose();
      optB.dispose();
      a.dispose();
      b.dispose();
      torch.dispose(xs);
    });
  });

  it('kfacInverses retries a failed factor in float64, then with 10x..1000x damping, else keeps the last inverse', async () => {
    await noLeak(() => {
      const f32 = (m: number[][]): Tensor => torch.tensor(m, { dtype: 'float32' });
      // damping 1e-6: each factor gets sqrt(1e-6) = 1e-3 on its diagonal (no pi correction).
      // A = diag(1, -0.005): 1e-3 (float32, then float64) leaves it indefinite, 10x (1e-2) gives diag(1.01, 0.005).
      const A = f32([
        [1, 0],
        [0, -0.005],
      ]);
      const G = f32([
        [2, 0],
        [0, 2],
      ]);
      const invA = f32([
        [7, 0],
        [0, 7],
      ]);
      const invG = f32([
        [7, 0],
        [0, 7],
      ]);
      // B = diag(1, -5): indefinite even with 1000x damping (1): its last inverse stays.
      const B = f32([
        [1, 0],
        [0, -5],
      ]);
      const invB = f32([
        [3, 0],
        [0, 3],
      ]);
      const invG2 = f32([
        [3, 0],
        [0, 3],
      ]);
      const rep = native.kfacInverses(
        [
          { A: A._h, G: G._h, invA: invA._h, invG: invG._h, damping: 1e-6 },
          { A: B._h, G: G._h, invA: invB._h, invG: invG2._h, damping: 1e-6 },
        ],
        false,
      );
      expect(rep).toEqual({ inverted: 3, retriedFloat64: 0, retriedDamping: 1, failed: 1, skippedNonFinite: 0 });
      // within 1e-5 relative (float32 results of a float64 factorisation)
      const close = (t: Tensor, want: number[]): void =>
        (t.toArray() as number[][])
          .flat()
          .forEach((v, i) =>
            expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[i]!))),
          );
      close(invA, [1 / 1.01, 0, 0, 200]);
      close(invG, [1 / 2.001, 0, 0, 1 / 2.001]);
      close(invG2, [1 / 2.001, 0, 0, 1 / 2.001]);
      expect(invB.toArray()).toEqual([
        [3, 0],
        [0, 3],
      ]);
      for (const t of [A, G, invA, invG, B, invB, invG2]) t.dispose();
    });
  });

  it('is exported as optim.KFAC, built over a Module', () => {
    expectTypeOf(torch.optim.KFAC).toEqualTypeOf<typeof KFAC>();
    expectTypeOf<ConstructorParameters<typeof KFAC>[0]>().toEqualTypeOf<torch.nn.AnyModule>();
    expectTypeOf<ConstructorParameters<typeof KFAC>[1]>().toHaveProperty('lr').toEqualTypeOf<number>();
  });

  it('rejects bad hyperparameters and arguments with clear errors', () => {
    const layer = new torch.nn.Linear(2, 2);
    expect(() => new KFAC(layer, { lr: -1 })).toThrow(
      new RangeError('Expected a non-negative number for lr but received -1 of type number'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, damping: 0 })).toThrow(
      new RangeError('Expected a positive number for damping but received 0 of type number'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, momentum: -0.5 })).toThrow(
      new RangeError('Expected a number in [0, 1) for momentum but received -0.5 of type number'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, statDecay: 1 })).toThrow(
      new RangeError('Expected a number in [0, 1) for statDecay but received 1 of type number'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, statsEvery: 3, inverseEvery: 10 })).toThrow(
      new RangeError('Expected inverseEvery (10) to be a multiple of statsEvery (3)'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, statsEvery: 1.5 })).toThrow(
      new RangeError('Expected a positive integer for statsEvery but received 1.5 of type number'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, piCorrection: 'yes' as never })).toThrow(
      new TypeError('Expected a boolean for piCorrection but received "yes" of type string'),
    );
    expect(() => new KFAC(layer, { lr: 0.1, epsilon: 0.1 } as never)).toThrow("KFAC: unknown option 'epsilon'");
    expect(() => new KFAC(layer.parameters() as never, { lr: 0.1 })).toThrow(TypeError);
    const grouped = new torch.nn.Conv2d(4, 4, 3, { groups: 2 });
    expect(() => new KFAC(grouped, { lr: 0.1 })).toThrow(
      new RangeError("KFAC: layer '' is a grouped convolution (groups=2), which KFAC does not support"),
    );
    const opt = new KFAC(layer, { lr: 0.1 });
    const out = torch.zeros([1, 2]);
    const lik = fixedGaussian(lcg(1));
    // no forward pass through .call(): nothing was recorded
    expect(() => opt.sampledBackward(out, lik)).toThrow(/no layer was recorded in the forward pass/);
    expect(() => opt.sampledBackward(out, {} as never)).toThrow(TypeError);
    const other = new torch.nn.Linear(2, 2);
    expect(() => opt.updateStatistics([{ module: other, input: out, outputGrad: out }])).toThrow(
      "updateStatistics: records[0].module is not a Linear or Conv2d layer of this optimizer's model",
    );
    expect(() => opt.curvatureState('nope')).toThrow(RangeError);
    torch.dispose([out]);
    opt.dispose();
    grouped.dispose();
    other.dispose();
    layer.dispose();
  });
});
