/**
 * Layer forwards against float64 re-derivations in plain JS (naive loops over the definitions), hand-computed
 * values, and default-initialisation statistics with tolerances derived from the sampling distributions.
 */
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor } from '../lib/index.js';
import { expectClose, noLeak, lcg } from './support/helpers.js';

const { nn } = torch;
const init = nn.init;

/** Deterministic values in [-0.5, 0.5) (times `scale`), as a flat array. */
function vals(n: number, seed: number, scale = 1): number[] {
  const r = lcg(seed);
  return Array.from({ length: n }, () => r() * scale);
}
function setValues(t: Tensor, v: number[]): void {
  const src = torch.tensor(v, { shape: t.shape, dtype: t.dtype });
  torch.noGrad(() => t.copy_(src));
  src.dispose();
}
const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);
/** Row-major index. */
function at(shape: number[], ...idx: number[]): number {
  let k = 0;
  for (let i = 0; i < shape.length; i++) k = k * shape[i]! + idx[i]!;
  return k;
}
function meanStd(a: number[]): [number, number] {
  const m = a.reduce((s, v) => s + v, 0) / a.length;
  const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / a.length;
  return [m, Math.sqrt(v)];
}

/** Reference conv2d with explicit left/right paddings per spatial dim. */
function conv2dRef(
  x: number[],
  xs: number[],
  w: number[],
  ws: number[],
  b: number[] | null,
  o: { stride: number[]; padL: number[]; padR: number[]; dilation: number[]; groups: number },
): { y: number[]; shape: number[] } {
  const [N, C, H, W] = xs as [number, number, number, number];
  const [O, Cg, KH, KW] = ws as [number, number, number, number];
  const Ho = Math.floor((H + o.padL[0]! + o.padR[0]! - o.dilation[0]! * (KH - 1) - 1) / o.stride[0]!) + 1;
  const Wo = Math.floor((W + o.padL[1]! + o.padR[1]! - o.dilation[1]! * (KW - 1) - 1) / o.stride[1]!) + 1;
  const Og = O / o.groups;
  const y: number[] = [];
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++)
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          let s = b ? b[oc]! : 0;
          const g = Math.floor(oc / Og);
          for (let c = 0; c < Cg; c++)
            for (let p = 0; p < KH; p++)
              for (let q = 0; q < KW; q++) {
                const h = i * o.stride[0]! - o.padL[0]! + p * o.dilation[0]!;
                const v = j * o.stride[1]! - o.padL[1]! + q * o.dilation[1]!;
                if (h < 0 || h >= H || v < 0 || v >= W) continue;
                s += x[at(xs, n, g * Cg + c, h, v)]! * w[at(ws, oc, c, p, q)]!;
              }
          y.push(s);
        }
  expect(C).toBe(Cg * o.groups);
  return { y, shape: [N, O, Ho, Wo] };
}

describe('Linear', () => {
  it('computes x W^T + b', async () => {
    await noLeak(() => {
      const lin = new nn.Linear(4, 5);
      const w = vals(20, 1),
        b = vals(5, 2),
        x = vals(12, 3, 4);
      setValues(lin.weight, w);
      setValues(lin.bias!, b);
      const xt = torch.tensor(x, { shape: [3, 4] });
      const y = lin.call(xt);
      const want: number[] = [];
      for (let n = 0; n < 3; n++)
        for (let o = 0; o < 5; o++)
          want.push(b[o]! + [0, 1, 2, 3].reduce((s, i) => s + x[n * 4 + i]! * w[o * 4 + i]!, 0));
      expect(y.shape).toEqual([3, 5]);
      expectClose(y, Float64Array.from(want), { atol: 1e-6 });
      const noBias = new nn.Linear(4, 5, { bias: false });
      expect(noBias.bias).toBeNull();
      expect(noBias.parameters().length).toBe(1);
      torch.dispose([xt, y]);
      lin.dispose();
      noBias.dispose();
    });
  });

  it('initialises weight and bias uniformly within 1/sqrt(inFeatures)', async () => {
    await noLeak(() => {
      torch.manualSeed(0);
      const lin = new nn.Linear(400, 300);
      const bound = 1 / Math.sqrt(400); // kaiming_uniform(a = sqrt(5)) bound: sqrt(6 / ((1 + 5) * fanIn))
      const w = lin.weight.dataSync();
      expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(bound * 0.999); // 120000 draws reach the edge
      const [m, s] = meanStd(w);
      // U(-b, b): sd b/sqrt(3); the sample sd's relative sd is sqrt(4/45/n) * 3 / 2 ~ 1.3e-3 here, allow 5 of them
      expect(Math.abs(m)).toBeLessThan((5 * (bound / Math.sqrt(3))) / Math.sqrt(w.length));
      expect(Math.abs(s / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.0065);
      const b = lin.bias!.dataSync();
      expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(lin.weight.requiresGrad && lin.weight.isLeaf).toBe(true);
      lin.dispose();
    });
  });
});

describe('Conv2d', () => {
  it('matches a direct float64 convolution with stride, padding, dilation, groups and bias', async () => {
    await noLeak(() => {
      const conv = new nn.Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 });
      expect(conv.weight.shape).toEqual([6, 2, 3, 2]);
      const w = vals(72, 4),
        b = vals(6, 5),
        x = vals(2 * 4 * 7 * 6, 6, 2);
      setValues(conv.weight, w);
      setValues(conv.bias!, b);
      const xt = torch.tensor(x, { shape: [2, 4, 7, 6] });
      const y = conv.call(xt);
      const ref = conv2dRef(x, [2, 4, 7, 6], w, [6, 2, 3, 2], b, {
        stride: [2, 1],
        padL: [1, 0],
        padR: [1, 0],
        dilation: [1, 2],
        groups: 2,
      });
      expect(y.shape).toEqual(ref.shape);
      expectClose(y, Float64Array.from(ref.y), { atol: 1e-5 });
      torch.dispose([xt, y]);
      conv.dispose();
    });
  });

  it("pads 'same' asymmetrically for an even kernel (the extra row and column at the end) and differentiates through it", async () => {
    await noLeak(() => {
      const conv = new nn.Conv2d(2, 3, 4, { padding: 'same', bias: false, dtype: 'float64' });
      const w = vals(3 * 2 * 16, 7),
        x = vals(2 * 5 * 5, 8, 2);
      setValues(conv.weight, w);
      const xt = torch.tensor(x, { shape: [1, 2, 5, 5], dtype: 'float64', requiresGrad: true });
      const y = conv.call(xt);
      // total padding 3 per dim: 1 before, 2 after
      const ref = conv2dRef(x, [1, 2, 5, 5], w, [3, 2, 4, 4], null, {
        stride: [1, 1],
        padL: [1, 1],
        padR: [2, 2],
        dilation: [1, 1],
        groups: 1,
      });
      expect(y.shape).toEqual([1, 3, 5, 5]);
      expectClose(y, Float64Array.from(ref.y), { atol: 1e-12 });
      expect(torch.autograd.gradcheck((inp) => conv.call(inp), [xt])).toBeLessThan(1e-6);
      const valid = new nn.Conv2d(2, 3, 3, { padding: 'valid' });
      expect(String(valid)).toBe('Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=valid)');
      torch.dispose([xt, y]);
      conv.dispose();
      valid.dispose();
    });
  });

  it('initialises within 1/sqrt(fanIn) with fanIn = inChannels / groups * kh * kw', async () => {
    await noLeak(() => {
      const conv = new nn.Conv2d(16, 32, 3, { groups: 2 });
      const bound = 1 / Math.sqrt(8 * 9);
      const w = conv.weight.dataSync();
      expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(bound * 0.99);
      expect(Math.max(...conv.bias!.dataSync().map(Math.abs))).toBeLessThanOrEqual(bound);
      conv.dispose();
    });
  });

  it('rejects bad arguments', () => {
    expect(() => new nn.Conv2d(3, 4, 3, { groups: 2 })).toThrow(
      new RangeError('in_channels must be divisible by groups'),
    );
    expect(() => new nn.Conv2d(4, 3, 3, { groups: 2 })).toThrow(
      new RangeError('out_channels must be divisible by groups'),
    );
    expect(() => new nn.Conv2d(4, 4, 3, { padding: 'same', stride: 2 })).toThrow(
      new RangeError("padding='same' is not supported for strided convolutions"),
    );
    expect(() => new nn.Conv2d(4, 4, 0)).toThrow(new RangeError('Expected kernelSize to be >= 1 but received 0'));
    expect(() => new nn.Conv2d(0, 4, 3)).toThrow(
      new RangeError('Expected a positive integer for inChannels but received 0 of type number'),
    );
    expect(() => new nn.Conv2d(4, 4, 3, { padding: 'full' as never })).toThrow(TypeError);
  });
});

/** Per-channel batch statistics over every dim but 1: [mean, biased var, unbiased var]. */
function channelStats(x: number[], shape: number[]): [number[], number[], number[]] {
  const C = shape[1]!;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const groups: number[][] = Array.from({ length: C }, () => []);
  for (let k = 0; k < x.length; k++) groups[Math.floor(k / inner) % C]!.push(x[k]!);
  const mean = groups.map((g) => g.reduce((s, v) => s + v, 0) / g.length);
  const ss = groups.map((g, c) => g.reduce((s, v) => s + (v - mean[c]!) ** 2, 0));
  return [mean, ss.map((s, c) => s / groups[c]!.length), ss.map((s, c) => s / (groups[c]!.length - 1))];
}
function normRef(
  x: number[],
  shape: number[],
  mean: number[],
  variance: number[],
  w: number[],
  b: number[],
  eps: number,
): Float64Array {
  const C = shape[1]!;
  const inner = shape.slice(2).reduce((a, b2) => a * b2, 1);
  return Float64Array.from(x, (v, k) => {
    const c = Math.floor(k / inner) % C;
    return ((v - mean[c]!) / Math.sqrt(variance[c]! + eps)) * w[c]! + b[c]!;
  });
}

describe('BatchNorm', () => {
  it('BatchNorm1d: batch statistics and running averages in training, running statistics in evaluation', async () => {
    await noLeak(() => {
      const bn = new nn.BatchNorm1d(3, { momentum: 0.2, eps: 1e-3 });
      expect(bn.runningMean!.dataSync()).toEqual([0, 0, 0]);
      expect(bn.runningVar!.dataSync()).toEqual([1, 1, 1]);
      expect(bn.weight!.dataSync()).toEqual([1, 1, 1]);
      expect(bn.bias!.dataSync()).toEqual([0, 0, 0]);
      const w = [1.5, -0.5, 2],
        b = [0.1, 0.2, -0.3];
      setValues(bn.weight!, w);
      setValues(bn.bias!, b);
      const x1 = vals(18, 9, 4),
        x2 = vals(18, 10, 3).map((v) => v + 1);
      const [m1, v1, u1] = channelStats(x1, [6, 3]);
      const [m2, , u2] = channelStats(x2, [6, 3]);
      const t1 = torch.tensor(x1, { shape: [6, 3] });
      const y1 = bn.call(t1);
      expectClose(y1, normRef(x1, [6, 3], m1, v1, w, b, 1e-3), { atol: 1e-5 });
      const rm1 = m1.map((m) => 0.8 * 0 + 0.2 * m),
        rv1 = u1.map((u) => 0.8 * 1 + 0.2 * u);
      expectClose(bn.runningMean!, Float64Array.from(rm1), { atol: 1e-6 });
      expectClose(bn.runningVar!, Float64Array.from(rv1), { atol: 1e-6 });
      expect(bn.numBatchesTracked!.item()).toBe(1);
      const t2 = torch.tensor(x2, { shape: [6, 3] });
      torch.tidy(() => void bn.call(t2));
      const rm2 = rm1.map((r, c) => 0.8 * r + 0.2 * m2[c]!),
        rv2 = rv1.map((r, c) => 0.8 * r + 0.2 * u2[c]!);
      expect(bn.numBatchesTracked!.item()).toBe(2);
      bn.eval();
      const y3 = bn.call(t1);
      expectClose(y3, normRef(x1, [6, 3], rm2, rv2, w, b, 1e-3), { atol: 1e-5 });
      expect(bn.numBatchesTracked!.item()).toBe(2); // evaluation leaves the statistics alone
      torch.dispose([t1, t2, y1, y3]);
      bn.dispose();
    });
  });

  it('momentum null keeps a cumulative average; trackRunningStats false always uses batch statistics; affine false has no parameters', async () => {
    await noLeak(() => {
      const x1 = vals(12, 11, 2),
        x2 = vals(12, 12, 2).map((v) => v - 0.5);
      const [m1, v1, u1] = channelStats(x1, [4, 3]);
      const [m2, , u2] = channelStats(x2, [4, 3]);
      const t1 = torch.tensor(x1, { shape: [4, 3] }),
        t2 = torch.tensor(x2, { shape: [4, 3] });
      const cum = new nn.BatchNorm1d(3, { momentum: null });
      torch.tidy(() => {
        cum.call(t1);
        cum.call(t2);
      });
      expectClose(
        cum.runningMean!,
        Float64Array.from(m1, (m, c) => (m + m2[c]!) / 2),
        { atol: 1e-6 },
      );
      expectClose(
        cum.runningVar!,
        Float64Array.from(u1, (u, c) => (u + u2[c]!) / 2),
        { atol: 1e-6 },
      );
      const free = new nn.BatchNorm1d(3, { trackRunningStats: false, affine: false });
      expect(free.parameters().length).toBe(0);
      expect(free.buffers().length).toBe(0);
      expect([free.runningMean, free.runningVar, free.numBatchesTracked, free.weight]).toEqual([
        null,
        null,
        null,
        null,
      ]);
      free.eval();
      const y = free.call(t1);
      expectClose(y, normRef(x1, [4, 3], m1, v1, [1, 1, 1], [0, 0, 0], 1e-5), { atol: 1e-5 });
      torch.dispose([t1, t2, y]);
      cum.dispose();
      free.dispose();
    });
  });

  it('BatchNorm1d on (N, C, L) and BatchNorm2d on (N, C, H, W) normalise over every dim but C', async () => {
    await noLeak(() => {
      for (const [Cls, shape] of [
        [nn.BatchNorm1d, [2, 3, 4]],
        [nn.BatchNorm2d, [2, 3, 2, 3]],
      ] as const) {
        const bn = new Cls(3);
        const x = vals(prod([...shape]), 13, 3);
        const [m, v, u] = channelStats(x, [...shape]);
        const t = torch.tensor(x, { shape: [...shape] });
        const y = bn.call(t);
        expectClose(y, normRef(x, [...shape], m, v, [1, 1, 1], [0, 0, 0], 1e-5), { atol: 1e-5 });
        expectClose(
          bn.runningVar!,
          Float64Array.from(u, (s) => 0.9 + 0.1 * s),
          { atol: 1e-6 },
        );
        torch.dispose([t, y]);
        bn.dispose();
      }
    });
  });

  it('differentiates in training mode (float64 gradcheck)', async () => {
    await noLeak(() => {
      const bn = new nn.BatchNorm2d(2, { dtype: 'float64' });
      setValues(bn.weight!, [1.3, -0.7]);
      const x = torch.tensor(vals(2 * 2 * 2 * 2, 14, 3), { shape: [2, 2, 2, 2], dtype: 'float64', requiresGrad: true });
      expect(torch.autograd.gradcheck((inp) => bn.call(inp), [x])).toBeLessThan(1e-6);
      x.dispose();
      bn.dispose();
    });
  });

  it('rejects inputs of the wrong rank and single values per channel', () => {
    const bn2 = new nn.BatchNorm2d(3),
      bn1 = new nn.BatchNorm1d(3);
    const flat = torch.zeros([1, 3]),
      img = torch.zeros([2, 3, 1, 1]);
    expect(() => bn2.call(flat)).toThrow(new RangeError('expected 4D input (got 2D input)'));
    expect(() => bn1.call(img)).toThrow(new RangeError('expected 2D or 3D input (got 4D input)'));
    expect(() => bn1.call(flat)).toThrow(
      new RangeError('Expected more than 1 value per channel when training, got input size [1, 3]'),
    );
    bn1.eval();
    torch.dispose(bn1.call(flat)); // fine with running statistics
    expect(() => new nn.BatchNorm2d(3, { momentum: 2 })).toThrow(
      new RangeError('Expected a number in [0, 1] for momentum but received 2 of type number'),
    );
    expect(() => new nn.BatchNorm2d(3, { eps: 0 })).toThrow(
      new RangeError('Expected a positive number for eps but received 0 of type number'),
    );
    torch.dispose([flat, img]);
    bn1.dispose();
    bn2.dispose();
  });
});

describe('activations, dropout, flatten, identity', () => {
  it('ReLU, Sigmoid, Tanh, GELU', async () => {
    await noLeak(() => {
      const xs = [-2, -1, -0.5, 0, 0.5, 1, 2];
      const x = torch.tensor(xs, { dtype: 'float64' });
      const check = (m: torch.nn.AnyModule, f: (v: number) => number): void => {
        const y = m.call(x) as Tensor;
        expectClose(y, Float64Array.from(xs, f), { atol: 1e-12, rtol: 1e-12 });
        y.dispose();
      };
      check(new nn.ReLU(), (v) => Math.max(0, v));
      check(new nn.Sigmoid(), (v) => 1 / (1 + Math.exp(-v)));
      check(new nn.Tanh(), Math.tanh);
      // x * Phi(x) with Phi from normal tables: Phi(0.5) = 0.6914624612740131, Phi(1) = 0.8413447460685429, Phi(2) = 0.9772498680518208
      const phi: Record<number, number> = {
        0: 0.5,
        0.5: 0.6914624612740131,
        1: 0.8413447460685429,
        2: 0.9772498680518208,
      };
      const Phi = (v: number): number => (v >= 0 ? phi[v]! : 1 - phi[-v]!);
      check(new nn.GELU(), (v) => v * Phi(v));
      check(
        new nn.GELU({ approximate: 'tanh' }),
        (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      );
      x.dispose();
    });
  });

  it('Dropout zeroes a fraction p and rescales the rest while training, and passes values in evaluation', async () => {
    await noLeak(() => {
      torch.manualSeed(3);
      const n = 20000,
        p = 0.3;
      const x = torch.ones([n]);
      const d = new nn.Dropout(p);
      const y = d.call(x);
      const v = y.dataSync();
      const zeros = v.filter((e) => e === 0).length;
      expect(v.every((e) => e === 0 || Math.abs(e - 1 / (1 - p)) < 1e-6)).toBe(true);
      // binomial fraction: sd sqrt(p (1 - p) / n) = 0.0032; allow 5 sd
      expect(Math.abs(zeros / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      d.eval();
      const z = d.call(x);
      expect(z.dataSync().every((e) => e === 1)).toBe(true);
      expect(() => new nn.Dropout(1.5)).toThrow(
        new RangeError('Expected a number in [0, 1] for p but received 1.5 of type number'),
      );
      torch.dispose([x, y, z]);
    });
  });

  it('Flatten and Identity', async () => {
    await noLeak(() => {
      const x = torch.randn([2, 3, 4, 5]);
      const a = new nn.Flatten().call(x),
        b = new nn.Flatten(0, 1).call(x),
        c = new nn.Identity().call(x);
      expect([a.shape, b.shape, c.shape]).toEqual([
        [2, 60],
        [6, 4, 5],
        [2, 3, 4, 5],
      ]);
      expect(c).not.toBe(x);
      expect(c.dataSync()).toEqual(x.dataSync());
      torch.dispose([x, a, b, c]);
    });
  });
});

describe('pooling', () => {
  const shape = [1, 2, 5, 5];
  const x = vals(50, 15, 10);
  /** Windows of a 5x5 channel with the given kernel, stride and padding; out-of-range positions are null. */
  function windows(k: number, s: number, p: number, outSize: number): (number | null)[][][] {
    const res: (number | null)[][][] = [];
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < outSize; i++)
        for (let j = 0; j < outSize; j++) {
          const win: (number | null)[] = [];
          for (let a = 0; a < k; a++)
            for (let b2 = 0; b2 < k; b2++) {
              const h = i * s - p + a,
                w = j * s - p + b2;
              win.push(h < 0 || h >= 5 || w < 0 || w >= 5 ? null : x[at(shape, 0, c, h, w)]!);
            }
          res.push([win]);
        }
    return res;
  }

  it('MaxPool2d with padding and ceil mode', async () => {
    await noLeak(() => {
      const t = torch.tensor(x, { shape });
      const y = new nn.MaxPool2d(3, { stride: 2, padding: 1 }).call(t);
      expect(y.shape).toEqual([1, 2, 3, 3]);
      expectClose(
        y,
        Float64Array.from(windows(3, 2, 1, 3), ([w]) => Math.max(...(w!.filter((v) => v !== null) as number[]))),
      );
      const floor = new nn.MaxPool2d(2).call(t),
        ceil = new nn.MaxPool2d(2, { ceilMode: true }).call(t);
      expect([floor.shape, ceil.shape]).toEqual([
        [1, 2, 2, 2],
        [1, 2, 3, 3],
      ]);
      // ceil mode's last window holds the clipped 5th row/column only
      const corner = ceil.index(0, 0, 2, 2);
      expectClose(corner, [x[at(shape, 0, 0, 4, 4)]!]);
      torch.dispose([t, y, floor, ceil, corner]);
    });
  });

  it('AvgPool2d with and without counting the padding', async () => {
    await noLeak(() => {
      const t = torch.tensor(x, { shape });
      const inc = new nn.AvgPool2d(3, { stride: 2, padding: 1 }).call(t);
      const exc = new nn.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }).call(t);
      const wins = windows(3, 2, 1, 3).map(([w]) => w!);
      const sum = (w: (number | null)[]): number => w.reduce<number>((s, v) => s + (v ?? 0), 0);
      expectClose(
        inc,
        Float64Array.from(wins, (w) => sum(w) / 9),
      );
      expectClose(
        exc,
        Float64Array.from(wins, (w) => sum(w) / w.filter((v) => v !== null).length),
      );
      torch.dispose([t, inc, exc]);
    });
  });

  it('AdaptiveAvgPool2d averages bins [floor(i * in / out), ceil((i + 1) * in / out))', async () => {
    await noLeak(() => {
      const H = 5,
        W = 7,
        oh = 3,
        ow = 4;
      const xv = vals(H * W, 16, 5);
      const t = torch.tensor(xv, { shape: [1, 1, H, W] });
      const y = new nn.AdaptiveAvgPool2d([oh, ow]).call(t);
      const want: number[] = [];
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          const h0 = Math.floor((i * H) / oh),
            h1 = Math.ceil(((i + 1) * H) / oh);
          const w0 = Math.floor((j * W) / ow),
            w1 = Math.ceil(((j + 1) * W) / ow);
          let s = 0;
          for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += xv[h * W + w]!;
          want.push(s / ((h1 - h0) * (w1 - w0)));
        }
      expectClose(y, Float64Array.from(want));
      const g = new nn.AdaptiveAvgPool2d(1).call(t);
      expectClose(g, [xv.reduce((s, v) => s + v, 0) / xv.length]);
      torch.dispose([t, y, g]);
    });
  });
});

describe('nn.init', () => {
  it('calculateGain and fans follow PyTorch', () => {
    expect(['linear', 'conv2d', 'sigmoid'].map((n) => init.calculateGain(n as torch.nn.init.Nonlinearity))).toEqual([
      1, 1, 1,
    ]);
    expect(init.calculateGain('tanh')).toBe(5 / 3);
    expect(init.calculateGain('relu')).toBe(Math.SQRT2);
    expect(init.calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / 1.0001), 15);
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 15);
    expect(init.calculateGain('selu')).toBe(0.75);
    expect(() => init.calculateGain('swish' as never)).toThrow(RangeError);
    const t = torch.empty([6, 4, 3, 2]);
    expect(init.calculateFanInAndFanOut(t)).toEqual([24, 36]);
    const v = torch.empty([5]);
    expect(() => init.calculateFanInAndFanOut(v)).toThrow(
      new RangeError('Fan in and fan out can not be computed for tensor with fewer than 2 dimensions'),
    );
    expect(() => init.kaimingNormal_(t, { mode: 'fan_avg' as never })).toThrow(
      new RangeError("Expected one of 'fan_in', 'fan_out' for mode but received \"fan_avg\" of type string"),
    );
    torch.dispose([t, v]);
  });

  it('kaiming and xavier initialisers have the stated spread', async () => {
    await noLeak(() => {
      torch.manualSeed(5);
      const p = new nn.Parameter(torch.empty([256, 128]));
      const n = 256 * 128;
      // normal: the sample sd's relative sd is 1/sqrt(2n) = 0.0039; allow 5 of them
      const sdOf = (): number => meanStd(p.dataSync())[1];
      init.kaimingNormal_(p);
      expect(Math.abs(sdOf() / Math.sqrt(2 / 128) - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
      init.kaimingNormal_(p, { mode: 'fan_out', nonlinearity: 'relu' });
      expect(Math.abs(sdOf() / Math.sqrt(2 / 256) - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
      init.xavierNormal_(p);
      expect(Math.abs(sdOf() / Math.sqrt(2 / 384) - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
      const maxAbs = (): number => Math.max(...p.dataSync().map(Math.abs));
      init.kaimingUniform_(p, { nonlinearity: 'tanh' });
      expect(maxAbs()).toBeLessThanOrEqual((((5 / 3) * Math.sqrt(3)) / Math.sqrt(128)) * (1 + 1e-6));
      expect(maxAbs()).toBeGreaterThan((((5 / 3) * Math.sqrt(3)) / Math.sqrt(128)) * 0.999);
      init.xavierUniform_(p, 2);
      expect(maxAbs()).toBeLessThanOrEqual(2 * Math.sqrt(6 / 384) * (1 + 1e-6));
      expect(maxAbs()).toBeGreaterThan(2 * Math.sqrt(6 / 384) * 0.999);
      init.uniform_(p, 2, 3);
      expect(p.dataSync().every((v) => v >= 2 && v <= 3)).toBe(true);
      init.normal_(p, 4, 0.5);
      const [m, s] = meanStd(p.dataSync());
      expect(Math.abs(m - 4)).toBeLessThan((5 * 0.5) / Math.sqrt(n));
      expect(Math.abs(s / 0.5 - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
      init.constant_(p, 0.25);
      expect(new Set(p.dataSync())).toEqual(new Set([0.25]));
      init.ones_(p);
      expect(new Set(p.dataSync())).toEqual(new Set([1]));
      init.zeros_(p);
      expect(new Set(p.dataSync())).toEqual(new Set([0]));
      expect(p.requiresGrad && p.isLeaf).toBe(true); // initialisation is not recorded
      p.dispose();
    });
  });
});
