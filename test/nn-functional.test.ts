import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { expectClose, libtorchSays, scoped, expectTorchError } from './support/helpers.js';
import { T, expectNd, rnd, nd, matmul, reduce, sumOf, meanOf, varOf, type Nd } from './support/reference.js';

const F = torch.nn.functional;

const at4 = (a: Nd, i: number, j: number, k: number, l: number): number =>
  a.data[((i * a.shape[1]! + j) * a.shape[2]! + k) * a.shape[3]! + l]!;
type P2 = [number, number];

/** Direct float64 2-d convolution (cross-correlation, as PyTorch) with stride, zero padding, dilation and groups. */
function conv2dRef(x: Nd, w: Nd, bias: number[] | null, s: P2, p: P2, d: P2, groups: number): Nd {
  const [N, , H, W] = x.shape as [number, number, number, number];
  const [O, Cg, KH, KW] = w.shape as [number, number, number, number];
  const OH = Math.floor((H + 2 * p[0] - d[0] * (KH - 1) - 1) / s[0]) + 1;
  const OW = Math.floor((W + 2 * p[1] - d[1] * (KW - 1) - 1) / s[1]) + 1;
  const perGroup = O / groups;
  return nd([N, O, OH, OW], (_, [n, o, i, j]) => {
    const g = Math.floor(o! / perGroup);
    let acc = bias ? bias[o!]! : 0;
    for (let c = 0; c < Cg; c++)
      for (let kh = 0; kh < KH; kh++)
        for (let kw = 0; kw < KW; kw++) {
          const hi = i! * s[0] - p[0] + kh * d[0];
          const wi = j! * s[1] - p[1] + kw * d[1];
          if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
          acc += at4(x, n!, g * Cg + c, hi, wi) * at4(w, o!, c, kh, kw);
        }
    return acc;
  });
}

/** Output length of a pooling window sweep (PyTorch's pooling_output_shape, ceil mode included). */
function poolOut(len: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = len + 2 * p - d * (k - 1) - 1;
  let out = Math.floor((ceil ? span + s - 1 : span) / s) + 1;
  // in ceil mode the last window must start inside the input or the left padding
  if (ceil && (out - 1) * s >= len + p) out--;
  return out;
}

function maxPoolRef(x: Nd, k: P2, s: P2, p: P2, d: P2, ceil: boolean): Nd {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const OH = poolOut(H, k[0], s[0], p[0], d[0], ceil),
    OW = poolOut(W, k[1], s[1], p[1], d[1], ceil);
  return nd([N, C, OH, OW], (_, [n, c, i, j]) => {
    let m = -Infinity;
    for (let a = 0; a < k[0]; a++)
      for (let b = 0; b < k[1]; b++) {
        const hi = i! * s[0] - p[0] + a * d[0],
          wi = j! * s[1] - p[1] + b * d[1];
        if (hi >= 0 && hi < H && wi >= 0 && wi < W) m = Math.max(m, at4(x, n!, c!, hi, wi));
      }
    return m;
  });
}

/** avg_pool2d as aten/src/ATen/native/cpu/AvgPoolKernel.cpp: the divisor counts padding (clipped at H + pad) or not. */
function avgPoolRef(x: Nd, k: P2, s: P2, p: P2, ceil: boolean, countIncludePad: boolean): Nd {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const OH = poolOut(H, k[0], s[0], p[0], 1, ceil),
    OW = poolOut(W, k[1], s[1], p[1], 1, ceil);
  return nd([N, C, OH, OW], (_, [n, c, i, j]) => {
    let h0 = i! * s[0] - p[0],
      w0 = j! * s[1] - p[1];
    let h1 = Math.min(h0 + k[0], H + p[0]),
      w1 = Math.min(w0 + k[1], W + p[1]);
    const poolSize = (h1 - h0) * (w1 - w0);
    h0 = Math.max(h0, 0);
    w0 = Math.max(w0, 0);
    h1 = Math.min(h1, H);
    w1 = Math.min(w1, W);
    let acc = 0;
    for (let a = h0; a < h1; a++) for (let b = w0; b < w1; b++) acc += at4(x, n!, c!, a, b);
    return acc / (countIncludePad ? poolSize : (h1 - h0) * (w1 - w0));
  });
}

function adaptiveAvgRef(x: Nd, oh: number, ow: number): Nd {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  return nd([N, C, oh, ow], (_, [n, c, i, j]) => {
    const h0 = Math.floor((i! * H) / oh),
      h1 = Math.ceil(((i! + 1) * H) / oh);
    const w0 = Math.floor((j! * W) / ow),
      w1 = Math.ceil(((j! + 1) * W) / ow);
    let acc = 0;
    for (let a = h0; a < h1; a++) for (let b = w0; b < w1; b++) acc += at4(x, n!, c!, a, b);
    return acc / ((h1 - h0) * (w1 - w0));
  });
}

describe('linear', () => {
  it('y = x W^T + b over leading batch dims, with and without bias', () =>
    scoped(() => {
      const X = rnd([2, 3, 4], 1),
        Wt = rnd([5, 4], 2),
        B = rnd([5], 3);
      const flatX: Nd = { shape: [6, 4], data: X.data };
      const WT = nd([4, 5], (_, [i, j]) => Wt.data[j! * 4 + i!]!);
      const noBias = matmul(flatX, WT);
      expectNd(F.linear(T(X), T(Wt)), { shape: [2, 3, 5], data: noBias.data });
      expectNd(F.linear(T(X), T(Wt), T(B)), { shape: [2, 3, 5], data: noBias.data.map((v, k) => v + B.data[k % 5]!) });
      // float32 path agrees within float32 rounding
      expectClose(
        F.linear(T(X, { dtype: 'float32' }), T(Wt, { dtype: 'float32' }), T(B, { dtype: 'float32' })),
        Float64Array.from(noBias.data.map((v, k) => v + B.data[k % 5]!)),
        { atol: 1e-5, rtol: 1e-5 },
      );
    }));
});

describe('conv2d against a direct float64 convolution', () => {
  const cases: { name: string; x: number[]; w: number[]; bias: boolean; s: P2; p: P2; d: P2; g: number }[] = [
    {
      name: 'stride 1, no padding, bias',
      x: [2, 3, 6, 5],
      w: [4, 3, 3, 3],
      bias: true,
      s: [1, 1],
      p: [0, 0],
      d: [1, 1],
      g: 1,
    },
    {
      name: 'stride 2, padding 1',
      x: [1, 2, 7, 7],
      w: [3, 2, 3, 3],
      bias: false,
      s: [2, 2],
      p: [1, 1],
      d: [1, 1],
      g: 1,
    },
    {
      name: 'non-square stride, padding, kernel',
      x: [2, 2, 6, 8],
      w: [3, 2, 2, 3],
      bias: true,
      s: [2, 1],
      p: [1, 0],
      d: [1, 1],
      g: 1,
    },
    { name: 'dilation 2', x: [1, 3, 9, 9], w: [2, 3, 3, 3], bias: true, s: [1, 1], p: [2, 2], d: [2, 2], g: 1 },
    {
      name: 'groups 2 with dilation (1, 2)',
      x: [2, 4, 7, 8],
      w: [6, 2, 3, 2],
      bias: true,
      s: [1, 2],
      p: [1, 1],
      d: [1, 2],
      g: 2,
    },
    {
      name: 'depthwise (groups = channels)',
      x: [1, 3, 5, 5],
      w: [3, 1, 3, 3],
      bias: false,
      s: [1, 1],
      p: [1, 1],
      d: [1, 1],
      g: 3,
    },
  ];
  for (const [k, c] of cases.entries())
    it(c.name, () =>
      scoped(() => {
        const X = rnd(c.x, 10 + k),
          Wt = rnd(c.w, 20 + k),
          B = rnd([c.w[0]!], 30 + k);
        const want = conv2dRef(X, Wt, c.bias ? B.data : null, c.s, c.p, c.d, c.g);
        const got = F.conv2d(T(X), T(Wt), c.bias ? T(B) : null, {
          stride: c.s,
          padding: c.p,
          dilation: c.d,
          groups: c.g,
        });
        expectNd(got, want, { atol: 1e-12, rtol: 1e-12 });
      }),
    );
  it('takes ints for square options, and float32 agrees within rounding', () =>
    scoped(() => {
      const X = rnd([1, 2, 6, 6], 40),
        Wt = rnd([2, 2, 3, 3], 41);
      const want = conv2dRef(X, Wt, null, [2, 2], [1, 1], [1, 1], 1);
      expectNd(F.conv2d(T(X), T(Wt), null, { stride: 2, padding: 1 }), want);
      const got = F.conv2d(T(X, { dtype: 'float32' }), T(Wt, { dtype: 'float32' }), null, { stride: 2, padding: 1 });
      expect(got.dtype).toBe('float32');
      expectClose(got, Float64Array.from(want.data), { atol: 1e-5, rtol: 1e-5 });
    }));
});

describe('pooling', () => {
  const X = rnd([2, 3, 7, 6], 50);
  it('maxPool2d: stride defaults to the kernel; padding, dilation, ceil mode', () =>
    scoped(() => {
      expectNd(F.maxPool2d(T(X), 2), maxPoolRef(X, [2, 2], [2, 2], [0, 0], [1, 1], false));
      expectNd(F.maxPool2d(T(X), 3, { stride: 2, padding: 1 }), maxPoolRef(X, [3, 3], [2, 2], [1, 1], [1, 1], false));
      expectNd(
        F.maxPool2d(T(X), [2, 3], { stride: [1, 2], dilation: [2, 1] }),
        maxPoolRef(X, [2, 3], [1, 2], [0, 0], [2, 1], false),
      );
      const ceil = F.maxPool2d(T(X), 2, { ceilMode: true });
      expect(ceil.shape).toEqual([2, 3, 4, 3]);
      expectNd(ceil, maxPoolRef(X, [2, 2], [2, 2], [0, 0], [1, 1], true));
    }));
  it('avgPool2d: count_include_pad both ways, ceil mode', () =>
    scoped(() => {
      expectNd(F.avgPool2d(T(X), 2), avgPoolRef(X, [2, 2], [2, 2], [0, 0], false, true));
      expectNd(F.avgPool2d(T(X), 3, { stride: 2, padding: 1 }), avgPoolRef(X, [3, 3], [2, 2], [1, 1], false, true));
      expectNd(
        F.avgPool2d(T(X), 3, { stride: 2, padding: 1, countIncludePad: false }),
        avgPoolRef(X, [3, 3], [2, 2], [1, 1], false, false),
      );
      expectNd(
        F.avgPool2d(T(X), [3, 2], { stride: [2, 2], ceilMode: true }),
        avgPoolRef(X, [3, 2], [2, 2], [0, 0], true, true),
      );
    }));
  it('adaptiveAvgPool2d: windows floor(i H / out) .. ceil((i + 1) H / out)', () =>
    scoped(() => {
      expectNd(F.adaptiveAvgPool2d(T(X), [3, 4]), adaptiveAvgRef(X, 3, 4));
      expectNd(F.adaptiveAvgPool2d(T(X), 1), adaptiveAvgRef(X, 1, 1));
      expectNd(F.adaptiveAvgPool2d(T(X), [7, 6]), X);
    }));
});

describe('batchNorm', () => {
  const N = 4,
    C = 3;
  const X = rnd([N, C, 2, 3], 60, -2, 3);
  const RM = [0.5, -1, 2],
    RV = [1.5, 0.25, 4],
    Wt = [1.5, -0.5, 2],
    B = [0.1, 0.2, -0.3];
  const channel = (c: number): number[] => X.data.filter((_, k) => Math.floor(k / 6) % C === c);
  it('training: normalises with the biased batch variance and updates running stats with the unbiased one', () =>
    scoped(() => {
      const rm = torch.tensor(RM, { dtype: 'float64' }),
        rv = torch.tensor(RV, { dtype: 'float64' });
      const momentum = 0.2,
        eps = 1e-3;
      const y = F.batchNorm(T(X), rm, rv, {
        weight: torch.tensor(Wt, { dtype: 'float64' }),
        bias: torch.tensor(B, { dtype: 'float64' }),
        training: true,
        momentum,
        eps,
      });
      const mean = [0, 1, 2].map((c) => meanOf(channel(c)));
      const biased = [0, 1, 2].map((c) => varOf(channel(c), 0));
      const unbiased = [0, 1, 2].map((c) => varOf(channel(c), 1));
      expectNd(
        y,
        nd(X.shape, (k, [, c]) => ((X.data[k]! - mean[c!]!) / Math.sqrt(biased[c!]! + eps)) * Wt[c!]! + B[c!]!),
      );
      expectClose(rm, Float64Array.from(RM.map((r, c) => (1 - momentum) * r + momentum * mean[c]!)), {
        atol: 1e-12,
        rtol: 1e-12,
      });
      expectClose(rv, Float64Array.from(RV.map((r, c) => (1 - momentum) * r + momentum * unbiased[c]!)), {
        atol: 1e-12,
        rtol: 1e-12,
      });
    }));
  it('evaluation: uses the running statistics and leaves them alone', () =>
    scoped(() => {
      const rm = torch.tensor(RM, { dtype: 'float64' }),
        rv = torch.tensor(RV, { dtype: 'float64' });
      const y = F.batchNorm(T(X), rm, rv, {
        weight: torch.tensor(Wt, { dtype: 'float64' }),
        bias: torch.tensor(B, { dtype: 'float64' }),
      });
      expectNd(
        y,
        nd(X.shape, (k, [, c]) => ((X.data[k]! - RM[c!]!) / Math.sqrt(RV[c!]! + 1e-5)) * Wt[c!]! + B[c!]!),
      );
      expect(rm.dataSync()).toEqual(RM);
      expect(rv.dataSync()).toEqual(RV);
    }));
  it('training without running stats or affine parameters, on (N, C) input', () =>
    scoped(() => {
      const X2 = rnd([6, 3], 61);
      const y = F.batchNorm(T(X2), null, null, { training: true });
      const mean = reduce(X2, [0], false, meanOf).data,
        v = reduce(X2, [0], false, (a) => varOf(a, 0)).data;
      expectNd(
        y,
        nd([6, 3], (k, [, c]) => (X2.data[k]! - mean[c!]!) / Math.sqrt(v[c!]! + 1e-5)),
      );
    }));
});

describe('dropout', () => {
  it('zeroes with probability p and scales the rest by 1 / (1 - p)', () =>
    scoped(() => {
      torch.manualSeed(5);
      const n = 20000,
        p = 0.3;
      const y = F.dropout(torch.ones([n]), p).dataSync();
      const kept = y.filter((v) => v !== 0);
      // every survivor is exactly the float32 of 1 / 0.7
      expect(new Set(kept)).toEqual(new Set([Math.fround(1 / (1 - p))]));
      // kept fraction ~ Binomial(n, 0.7) / n: sd sqrt(p (1 - p) / n) = 0.0032; allow 5 sd
      expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }));
  it('p = 0 and evaluation mode are the identity; p = 1 zeroes everything', () =>
    scoped(() => {
      const X = rnd([3, 4], 70);
      const x = T(X);
      expectNd(F.dropout(x, 0), X);
      expectNd(F.dropout(x, 0.5, false), X);
      // x * 0 keeps the sign of negative inputs (-0), as in PyTorch
      expect(F.dropout(x, 1).dataSync().map(Math.abs)).toEqual(new Array(12).fill(0));
      expect(F.dropout(x).shape).toEqual([3, 4]);
    }));
});

describe('losses against float64 formulas', () => {
  const N = 5,
    C = 4;
  const X = rnd([N, C], 80, -2, 2);
  const Y = [3, 0, 1, 3, 2];
  const CW = [0.5, 2, 1, 1.5];
  const logp = (i: number): number[] => {
    const row = X.data.slice(i * C, (i + 1) * C);
    const lse = Math.log(sumOf(row.map(Math.exp)));
    return row.map((v) => v - lse);
  };
  const target = (): torch.Tensor => torch.tensor(Y, { dtype: 'int64' });
  const reduced = (l: number[], r: 'none' | 'mean' | 'sum', denom = l.length): Nd =>
    r === 'none' ? { shape: [l.length], data: l } : { shape: [], data: [r === 'sum' ? sumOf(l) : sumOf(l) / denom] };
  for (const r of ['none', 'mean', 'sum'] as const) {
    it(`crossEntropy and nllLoss, reduction ${r}`, () =>
      scoped(() => {
        const l = Y.map((y, i) => -logp(i)[y]!);
        expectNd(F.crossEntropy(T(X), target(), { reduction: r }), reduced(l, r));
        expectNd(F.nllLoss(T(X).logSoftmax(1), target(), { reduction: r }), reduced(l, r));
        // class weights: the mean divides by the sum of the weights of the targets
        const lw = Y.map((y, i) => CW[y]! * -logp(i)[y]!);
        const wsum = sumOf(Y.map((y) => CW[y]!));
        const weight = torch.tensor(CW, { dtype: 'float64' });
        expectNd(F.crossEntropy(T(X), target(), { reduction: r, weight }), reduced(lw, r, wsum));
        expectNd(F.nllLoss(T(X).logSoftmax(1), target(), { reduction: r, weight }), reduced(lw, r, wsum));
      }));
    it(`binaryCrossEntropyWithLogits (with weight and posWeight), reduction ${r}`, () =>
      scoped(() => {
        const Z = rnd([3, 4], 81, -3, 3),
          Tg = rnd([3, 4], 82, 0, 1),
          Wt = rnd([4], 83, 0.5, 2),
          PW = rnd([4], 84, 0.5, 3);
        const logSig = (x: number): number => -Math.log1p(Math.exp(-x));
        const plain = Z.data.map((z, k) => -(Tg.data[k]! * logSig(z) + (1 - Tg.data[k]!) * logSig(-z)));
        const full = Z.data.map(
          (z, k) => -Wt.data[k % 4]! * (PW.data[k % 4]! * Tg.data[k]! * logSig(z) + (1 - Tg.data[k]!) * logSig(-z)),
        );
        const shape = (v: Nd): Nd => (r === 'none' ? { shape: [3, 4], data: v.data } : v);
        expectNd(F.binaryCrossEntropyWithLogits(T(Z), T(Tg), { reduction: r }), shape(reduced(plain, r)));
        expectNd(
          F.binaryCrossEntropyWithLogits(T(Z), T(Tg), { reduction: r, weight: T(Wt), posWeight: T(PW) }),
          shape(reduced(full, r)),
        );
      }));
    it(`mseLoss, l1Loss, smoothL1Loss, reduction ${r}`, () =>
      scoped(() => {
        const A = rnd([2, 3, 2], 85, -2, 2),
          B = rnd([2, 3, 2], 86, -2, 2);
        const shape = (v: Nd): Nd => (r === 'none' ? { shape: [2, 3, 2], data: v.data } : v);
        const diff = A.data.map((a, k) => a - B.data[k]!);
        expectNd(
          F.mseLoss(T(A), T(B), { reduction: r }),
          shape(
            reduced(
              diff.map((d) => d * d),
              r,
            ),
          ),
        );
        expectNd(F.l1Loss(T(A), T(B), { reduction: r }), shape(reduced(diff.map(Math.abs), r)));
        const beta = 0.7;
        const huber = diff.map((d) => (Math.abs(d) < beta ? (0.5 * d * d) / beta : Math.abs(d) - 0.5 * beta));
        expectNd(F.smoothL1Loss(T(A), T(B), { reduction: r, beta }), shape(reduced(huber, r)));
      }));
  }
  it('crossEntropy: ignoreIndex drops targets from the mean; label smoothing mixes in the uniform distribution', () =>
    scoped(() => {
      const Yi = [3, -100, 1, 3, -100];
      const kept = Yi.map((y, i) => [y, i] as const).filter(([y]) => y !== -100);
      const mean = sumOf(kept.map(([y, i]) => -logp(i)[y]!)) / kept.length;
      expectNd(F.crossEntropy(T(X), torch.tensor(Yi, { dtype: 'int64' })), { shape: [], data: [mean] });
      const eps = 0.2;
      const smooth = Y.map((y, i) => (1 - eps) * -logp(i)[y]! + (eps / C) * sumOf(logp(i).map((v) => -v)));
      expectNd(F.crossEntropy(T(X), target(), { labelSmoothing: eps, reduction: 'none' }), {
        shape: [N],
        data: smooth,
      });
      // class-probability targets: -sum_c p_c log softmax(x)_c
      const Pr = rnd([N, C], 87, 0, 1);
      const rows = Array.from({ length: N }, (_, i) => {
        const pr = Pr.data.slice(i * C, (i + 1) * C);
        const s = sumOf(pr);
        return pr.map((v) => v / s);
      });
      const probs = torch.tensor(rows, { dtype: 'float64' });
      const soft = rows.map((pr, i) => -sumOf(pr.map((v, c) => v * logp(i)[c]!)));
      expectNd(F.crossEntropy(T(X), probs, { reduction: 'sum' }), { shape: [], data: [sumOf(soft)] });
    }));
});

describe('sampling (statistical checks, tolerances 5 standard errors)', () => {
  it('bernoulli with a probability tensor and with a fixed probability', () =>
    scoped(() => {
      torch.manualSeed(11);
      const n = 20000,
        ps = [0.1, 0.5, 0.9];
      const probs = torch.tensor(ps, { dtype: 'float64' }).expand(n, 3).contiguous();
      const s = torch.bernoulli(probs);
      expect([s.dtype, s.shape]).toEqual(['float64', [n, 3]]);
      expect(new Set(s.dataSync())).toEqual(new Set([0, 1]));
      const freq = s.mean(0).dataSync();
      ps.forEach((p, c) => expect(Math.abs(freq[c]! - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n)));
      const f = torch.bernoulli(torch.zeros([n]), 0.25).dataSync();
      expect(Math.abs(meanOf(f) - 0.25)).toBeLessThan(5 * Math.sqrt((0.25 * 0.75) / n));
      expect(torch.bernoulli(torch.tensor([0, 1, 0, 1])).dataSync()).toEqual([0, 1, 0, 1]);
    }));
  it('multinomial with replacement follows the normalised weights; without replacement never repeats', () =>
    scoped(() => {
      torch.manualSeed(12);
      const n = 20000,
        w = [1, 2, 0, 3, 4];
      const draws = torch.multinomial(torch.tensor(w, { dtype: 'float64' }), n, true);
      expect([draws.dtype, draws.shape]).toEqual(['int64', [n]]);
      const counts = new Array(5).fill(0);
      for (const v of draws.dataSync()) counts[v]++;
      expect(counts[2]).toBe(0);
      const total = sumOf(w);
      w.forEach((wi, c) => {
        const p = wi / total;
        expect(Math.abs(counts[c] / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n) + 1e-12);
      });
      const rows = torch.multinomial(torch.rand(200, 6).add(0.01), 6);
      expect(rows.shape).toEqual([200, 6]);
      const data = rows.toArray() as number[][];
      for (const row of data) expect([...row].sort()).toEqual([0, 1, 2, 3, 4, 5]);
      // without replacement a zero-weight category comes only after every positive one
      const two = torch.multinomial(torch.tensor([0, 1, 1]).expand(100, 3).contiguous(), 2).dataSync();
      expect(two.includes(0)).toBe(false);
    }));
  it('normal with tensor and number means and standard deviations', () =>
    scoped(() => {
      torch.manualSeed(13);
      const n = 20000,
        mu = [-2, 0, 3],
        sd = [0.5, 1, 2];
      const M = torch.tensor(mu, { dtype: 'float64' }).expand(n, 3).contiguous();
      const S = torch.tensor(sd, { dtype: 'float64' }).expand(n, 3).contiguous();
      const check = (t: torch.Tensor, means: number[], sds: number[]): void => {
        expect(t.shape).toEqual([n, 3]);
        const m = t.mean(0).dataSync(),
          s = t.std(0).dataSync();
        for (let c = 0; c < 3; c++) {
          // se of the mean sd / sqrt(n); of the sample sd about sd / sqrt(2 (n - 1))
          expect(Math.abs(m[c]! - means[c]!)).toBeLessThan((5 * sds[c]!) / Math.sqrt(n));
          expect(Math.abs(s[c]! - sds[c]!)).toBeLessThan((5 * sds[c]!) / Math.sqrt(2 * (n - 1)));
        }
      };
      check(torch.normal(M, S), mu, sd);
      check(torch.normal(M, 1.5), mu, [1.5, 1.5, 1.5]);
      check(torch.normal(4, S), [4, 4, 4], sd);
    }));
});

describe('invalid arguments', () => {
  const x = (): torch.Tensor => torch.zeros(2, 3, 5, 5);
  const w = (): torch.Tensor => torch.zeros(4, 3, 3, 3);
  it('non-tensor inputs -> TypeError naming the argument', () =>
    scoped(() => {
      expect(() => F.linear(x(), 'w' as never)).toThrow(
        new TypeError('Expected a Tensor for weight but received "w" of type string'),
      );
      expect(() => F.linear(null as never, w())).toThrow(
        new TypeError('Expected a Tensor for input but received null of type null'),
      );
      expect(() => F.conv2d(x(), w(), 3 as never)).toThrow(
        new TypeError('Expected a Tensor for bias but received 3 of type number'),
      );
      expect(() => F.crossEntropy(x(), [1] as never)).toThrow(
        new TypeError('Expected a Tensor for target but received [1] of type array'),
      );
      expect(() => torch.bernoulli(0.5 as never)).toThrow(
        new TypeError('Expected a Tensor for input but received 0.5 of type number'),
      );
      expect(() => torch.multinomial([1] as never, 1)).toThrow(
        new TypeError('Expected a Tensor for input but received [1] of type array'),
      );
      expect(() => torch.normal(1, 1)).toThrow(
        new TypeError('normal(): at least one of mean and std must be a Tensor (use randn for a shape)'),
      );
    }));
  it('bad window and layer options', () =>
    scoped(() => {
      expect(() => F.conv2d(x(), w(), null, { stride: 0 })).toThrow(
        new RangeError('Expected stride to be >= 1 but received 0'),
      );
      expect(() => F.conv2d(x(), w(), null, { padding: -1 })).toThrow(
        new RangeError('Expected padding to be >= 0 but received -1'),
      );
      expect(() => F.conv2d(x(), w(), null, { dilation: [1, 1, 1] })).toThrow(
        new TypeError('Expected an integer >= 1 or a pair of them for dilation but received [1,1,1] of type array'),
      );
      expect(() => F.conv2d(x(), w(), null, { groups: 0 })).toThrow(
        new RangeError('Expected a positive integer for groups but received 0 of type number'),
      );
      expect(() => F.maxPool2d(x(), 0)).toThrow(new RangeError('Expected kernelSize to be >= 1 but received 0'));
      expect(() => F.avgPool2d(x(), [2, 2, 2])).toThrow(
        new TypeError('Expected an integer >= 1 or a pair of them for kernelSize but received [2,2,2] of type array'),
      );
      expect(() => F.adaptiveAvgPool2d(x(), 0)).toThrow(
        new RangeError('Expected outputSize to be >= 1 but received 0'),
      );
      expect(() => F.dropout(x(), 1.5)).toThrow(
        new RangeError('Expected a number in [0, 1] for p but received 1.5 of type number'),
      );
      expect(() => F.batchNorm(x(), null, null, { momentum: 2 })).toThrow(
        new RangeError('Expected a number in [0, 1] for momentum but received 2 of type number'),
      );
      expect(() => F.batchNorm(x(), null, null, { eps: 0 })).toThrow(
        new RangeError('Expected a positive number for eps but received 0 of type number'),
      );
    }));
  it('bad loss options and sampling parameters', () =>
    scoped(() => {
      const logits = torch.zeros(2, 3),
        y = torch.tensor([0, 1], { dtype: 'int64' });
      expect(() => F.crossEntropy(logits, y, { reduction: 'avg' as never })).toThrow(
        new RangeError("Expected one of 'none', 'mean', 'sum' for reduction but received \"avg\" of type string"),
      );
      expect(() => F.mseLoss(logits, logits, { reduction: 1 as never })).toThrow(
        new TypeError("Expected one of 'none', 'mean', 'sum' for reduction but received 1 of type number"),
      );
      expect(() => F.nllLoss(logits, y, { ignoreIndex: 0.5 })).toThrow(
        new RangeError('Expected an integer for ignoreIndex but received 0.5 of type number'),
      );
      expect(() => F.crossEntropy(logits, y, { labelSmoothing: 2 })).toThrow(
        new RangeError('Expected a number in [0, 1] for labelSmoothing but received 2 of type number'),
      );
      expect(() => F.smoothL1Loss(logits, logits, { beta: -1 })).toThrow(
        new RangeError('Expected a non-negative number for beta but received -1 of type number'),
      );
      expect(() => torch.multinomial(torch.ones(2), 0)).toThrow(
        new RangeError('Expected a positive integer for numSamples but received 0 of type number'),
      );
      expect(() => torch.bernoulli(torch.ones(2), 2)).toThrow(
        new RangeError('Expected a number in [0, 1] for p but received 2 of type number'),
      );
      expect(() => torch.normal(torch.zeros(2), -1)).toThrow(
        new RangeError('Expected a non-negative number for std but received -1 of type number'),
      );
    }));
  it('libtorch errors keep their message and get a code', () =>
    scoped(() => {
      expectTorchError(
        () => F.conv2d(x(), w(), null, { groups: 2 }),
        'SHAPE_MISMATCH',
        'Given groups=2, weight of size [4, 3, 3, 3], expected input[2, 3, 5, 5] to have 6 channels, but got 3 channels instead',
      );
      expectTorchError(
        () => F.conv2d(torch.zeros(3, 5), w()),
        'SHAPE_MISMATCH',
        'Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [3, 5]',
      );
      expectTorchError(
        () => F.conv2d(x(), torch.zeros(4, 3, 9, 9)),
        'SHAPE_MISMATCH',
        "Calculated padded input size per channel: (5 x 5). Kernel size: (9 x 9). Kernel size can't be greater than actual input size",
      );
      expectTorchError(
        () => F.linear(torch.zeros(2, 3), torch.zeros(4, 5)),
        'SHAPE_MISMATCH',
        'mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)',
      );
      expectTorchError(
        () => F.maxPool2d(x(), 3, { padding: 2 }),
        'SHAPE_MISMATCH',
        libtorchSays(
          'pad should be at most half of kernel size, but got pad=2 and kernel_size=3',
          'pad should be at most half of effective kernel size, but got pad=2, kernel_size=3 and dilation=1',
        ),
      );
      expectTorchError(
        () => F.crossEntropy(torch.zeros(2, 3), torch.tensor([0, 5], { dtype: 'int64' })),
        'INDEX_OUT_OF_RANGE',
        'Target 5 is out of bounds.',
      );
      // libtorch's message, then the fix (test/messages.test.ts covers nllLoss and the other dtypes)
      expectTorchError(
        () => F.crossEntropy(torch.zeros(2, 3), torch.tensor([0, 1])),
        'DTYPE_MISMATCH',
        "expected scalar type Long but found Float. crossEntropy: target holds class indices and must be int64, but it is float32: create it with { dtype: 'int64' } (torch.tensor(labels, { dtype: 'int64' })) or convert it with target.long(); a floating-point target of the same shape as the input holds class probabilities instead",
      );
      expectTorchError(
        () => F.mseLoss(torch.zeros(2, 3), torch.zeros(3, 2)),
        'SHAPE_MISMATCH',
        'The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1',
      );
      expectTorchError(
        () => torch.multinomial(torch.tensor([0.5, 0.5]), 3),
        'SHAPE_MISMATCH',
        'cannot sample n_sample > prob_dist.size(-1) samples without replacement',
      );
      expectTorchError(
        () => torch.multinomial(torch.tensor([-0.5, 0.5]), 1),
        'TORCH_ERROR',
        'probability tensor contains either `inf`, `nan` or element < 0',
      );
    }));
});
