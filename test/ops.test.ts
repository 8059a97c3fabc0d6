import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { expectClose, scoped, expectTorchError } from './support/helpers.js';
import {
  T,
  expectNd,
  rnd,
  nd,
  map1,
  map2,
  reduce,
  matmul,
  permute,
  sub,
  sumOf,
  meanOf,
  varOf,
  erf,
  type Nd,
} from './support/reference.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const TIGHT = { atol: 1e-12, rtol: 1e-12 };

describe('element-wise arithmetic with broadcasting', () => {
  const A = rnd([3, 1, 4], 1);
  const B = rnd([2, 4], 2, 0.5, 2);
  const cases: [string, (a: torch.Tensor, b: torch.Tensor) => torch.Tensor, (x: number, y: number) => number][] = [
    ['add', (a, b) => a.add(b), (x, y) => x + y],
    ['add alpha', (a, b) => a.add(b, 2.5), (x, y) => x + 2.5 * y],
    ['sub', (a, b) => a.sub(b), (x, y) => x - y],
    ['sub alpha', (a, b) => a.sub(b, -3), (x, y) => x + 3 * y],
    ['rsub', (a, b) => a.rsub(b), (x, y) => y - x],
    ['mul', (a, b) => a.mul(b), (x, y) => x * y],
    ['div', (a, b) => a.div(b), (x, y) => x / y],
    ['pow', (a, b) => b.pow(a), (x, y) => y ** x],
    ['maximum', (a, b) => a.maximum(b), Math.max],
    ['minimum', (a, b) => a.minimum(b), Math.min],
    ['atan2', (a, b) => a.atan2(b), Math.atan2],
    // Python's % takes the divisor's sign; fmod the dividend's (as C and JS %)
    ['remainder', (a, b) => a.remainder(b), (x, y) => x - y * Math.floor(x / y)],
    ['fmod', (a, b) => a.fmod(b), (x, y) => x % y],
    ['floorDivide', (a, b) => a.floorDivide(b), (x, y) => Math.floor(x / y)],
    ['torch.add', (a, b) => torch.add(a, b), (x, y) => x + y],
    ['torch.mul', (a, b) => torch.mul(a, b), (x, y) => x * y],
  ];
  for (const [name, op, ref] of cases)
    it(`${name}: (3,1,4) with (2,4) -> (3,2,4)`, () =>
      scoped(() => {
        const out = op(T(A), T(B));
        expect(out.shape).toEqual([3, 2, 4]);
        expectNd(out, map2(A, B, ref), { atol: 1e-12, rtol: 1e-12 });
      }));

  it('scalars on the right broadcast as 0-d', () =>
    scoped(() => {
      const a = T(A);
      expectNd(
        a.add(2.5),
        map1(A, (x) => x + 2.5),
      );
      expectNd(
        a.sub(1, 3),
        map1(A, (x) => x - 3),
      );
      expectNd(
        a.mul(-3),
        map1(A, (x) => -3 * x),
      );
      expectNd(
        a.div(4),
        map1(A, (x) => x / 4),
      );
      expectNd(
        a.pow(2),
        map1(A, (x) => x * x),
      );
      expectNd(
        a.rsub(1),
        map1(A, (x) => 1 - x),
      );
      expectNd(
        a.remainder(0.3),
        map1(A, (x) => x - 0.3 * Math.floor(x / 0.3)),
      );
      expectNd(
        torch.pow(2, a),
        map1(A, (x) => 2 ** x),
      );
    }));

  it('int tensor with an int scalar stays integral (as PyTorch); a float scalar promotes to float32', () =>
    scoped(() => {
      const i = torch.tensor([1, -3, 5], { dtype: 'int64' });
      const cases: [torch.Tensor, torch.DType, number[]][] = [
        [i.add(2), 'int64', [3, -1, 7]],
        [i.mul(3), 'int64', [3, -9, 15]],
        [i.sub(1), 'int64', [0, -4, 4]],
        [i.pow(2), 'int64', [1, 9, 25]],
        [i.floorDivide(2), 'int64', [0, -2, 2]],
        [i.remainder(2), 'int64', [1, 1, 1]],
        [i.add(i), 'int64', [2, -6, 10]],
        [torch.tensor([1, 2], { dtype: 'int32' }).add(2), 'int32', [3, 4]],
        // true division always gives a float, float scalars give the default float32
        [i.div(2), 'float32', [0.5, -1.5, 2.5]],
        [i.add(0.5), 'float32', [1.5, -2.5, 5.5]],
        [i.mul(torch.tensor([2], { dtype: 'float64' })), 'float64', [2, -6, 10]],
        [torch.tensor([true, false]).add(1), 'int64', [2, 1]],
      ];
      for (const [t, dtype, values] of cases) {
        expect(t.dtype).toBe(dtype);
        expect(t.dataSync()).toEqual(values);
      }
    }));
});

describe('floorDivide by a fractional number', () => {
  it('promotes an int tensor to float32 as a Python number would', () =>
    scoped(() => {
      // PyTorch: torch.tensor([1, 2, 3, -3]) // 2.5 -> tensor([ 0.,  0.,  1., -2.])
      const q = torch.tensor([1, 2, 3, -3], { dtype: 'int64' }).floorDivide(2.5);
      expect([q.dtype, q.dataSync()]).toEqual(['float32', [0, 0, 1, -2]]);
    }));
});

describe('comparisons and where', () => {
  it('compare with broadcasting and scalars, giving bool', () =>
    scoped(() => {
      const a = torch.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const b = torch.tensor([3, 2, 7]);
      const cmp: [torch.Tensor, boolean[]][] = [
        [a.eq(b), [false, true, false, false, false, false]],
        [a.ne(b), [true, false, true, true, true, true]],
        [a.lt(b), [true, false, true, false, false, true]],
        [a.le(b), [true, true, true, false, false, true]],
        [a.gt(b), [false, false, false, true, true, false]],
        [a.ge(b), [false, true, false, true, true, false]],
        [a.gt(3), [false, false, false, true, true, true]],
        [a.eq(5), [false, false, false, false, true, false]],
      ];
      for (const [t, want] of cmp) {
        expect(t.dtype).toBe('bool');
        expect(t.shape).toEqual([2, 3]);
        expect(t.dataSync()).toEqual(want);
      }
      const p = torch.tensor([true, true, false, false]);
      const q = torch.tensor([true, false, true, false]);
      expect(p.logicalAnd(q).dataSync()).toEqual([true, false, false, false]);
      expect(p.logicalOr(q).dataSync()).toEqual([true, true, true, false]);
      expect(p.logicalXor(q).dataSync()).toEqual([false, true, true, false]);
      expect(p.logicalNot().dataSync()).toEqual([false, false, true, true]);
    }));
  it('where broadcasts condition and operands; numbers take the other operand dtype', () =>
    scoped(() => {
      const cond = torch.tensor([true, false, true]);
      const a = torch.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const b = torch.tensor([[-1], [-2]]);
      const w = torch.where(cond, a, b);
      expect(w.shape).toEqual([2, 3]);
      expect(w.toArray()).toEqual([
        [1, -1, 3],
        [4, -2, 6],
      ]);
      const i = torch.tensor([1, 2, 3], { dtype: 'int64' });
      const wi = torch.where(i.gt(1), i, 0);
      expect([wi.dtype, wi.dataSync()]).toEqual(['int64', [0, 2, 3]]);
      const wf = torch.where(cond, 1.5, -1);
      expect([wf.dtype, wf.dataSync()]).toEqual(['float32', [1.5, -1, 1.5]]);
    }));
  it('allclose uses |a - b| <= atol + rtol * |b|', () =>
    scoped(() => {
      const a = torch.tensor([1, 100], { dtype: 'float64' });
      expect(a.allclose(torch.tensor([1 + 1e-9, 100 + 5e-4], { dtype: 'float64' }))).toBe(true);
      expect(a.allclose(torch.tensor([1, 100.002], { dtype: 'float64' }))).toBe(false);
      expect(a.allclose(torch.tensor([1.1, 100], { dtype: 'float64' }), { atol: 0.2 })).toBe(true);
    }));
});

describe('unary math and activations (float64 against Math.*)', () => {
  const X = rnd([4, 5], 3, -2, 2);
  const P = rnd([4, 5], 4, 0.1, 3);
  const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
  const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const cases: [string, Nd, (t: torch.Tensor) => torch.Tensor, (x: number) => number][] = [
    ['neg', X, (t) => t.neg(), (x) => -x],
    ['abs', X, (t) => t.abs(), Math.abs],
    ['exp', X, (t) => t.exp(), Math.exp],
    ['log', P, (t) => t.log(), Math.log],
    ['log2', P, (t) => t.log2(), Math.log2],
    ['log10', P, (t) => t.log10(), Math.log10],
    ['log1p', P, (t) => t.log1p(), Math.log1p],
    ['expm1', X, (t) => t.expm1(), Math.expm1],
    ['sqrt', P, (t) => t.sqrt(), Math.sqrt],
    ['rsqrt', P, (t) => t.rsqrt(), (x) => 1 / Math.sqrt(x)],
    ['sign', X, (t) => t.sign(), Math.sign],
    ['square', X, (t) => t.square(), (x) => x * x],
    ['reciprocal', P, (t) => t.reciprocal(), (x) => 1 / x],
    ['floor', X, (t) => t.floor(), Math.floor],
    ['ceil', X, (t) => t.ceil(), Math.ceil],
    ['trunc', X, (t) => t.trunc(), Math.trunc],
    ['frac', X, (t) => t.frac(), (x) => x - Math.trunc(x)],
    ['sin', X, (t) => t.sin(), Math.sin],
    ['cos', X, (t) => t.cos(), Math.cos],
    ['tan', X, (t) => t.tan(), Math.tan],
    ['erf', X, (t) => t.erf(), erf],
    ['relu', X, (t) => t.relu(), (x) => Math.max(0, x)],
    ['sigmoid', X, (t) => t.sigmoid(), sigmoid],
    ['tanh', X, (t) => t.tanh(), Math.tanh],
    ['silu', X, (t) => t.silu(), (x) => x * sigmoid(x)],
    ['softplus', X, (t) => t.softplus(), (x) => Math.log1p(Math.exp(x))],
    ['logSigmoid', X, (t) => t.logSigmoid(), (x) => -Math.log1p(Math.exp(-x))],
    ['gelu', X, (t) => t.gelu(), gelu],
    ['gelu tanh', X, (t) => t.gelu({ approximate: 'tanh' }), geluTanh],
    ['leakyRelu', X, (t) => t.leakyRelu(0.2), (x) => (x > 0 ? x : 0.2 * x)],
    ['elu', X, (t) => torch.nn.functional.elu(t, 1.5), (x) => (x > 0 ? x : 1.5 * Math.expm1(x))],
    ['clamp', X, (t) => t.clamp(-0.5, 0.75), (x) => Math.min(0.75, Math.max(-0.5, x))],
    ['clampMin', X, (t) => t.clampMin(0.1), (x) => Math.max(0.1, x)],
    ['clampMax', X, (t) => t.clampMax(0.1), (x) => Math.min(0.1, x)],
  ];
  for (const [name, input, op, ref] of cases)
    it(name, () =>
      scoped(() => {
        const out = op(T(input));
        expect(out.dtype).toBe('float64');
        expectNd(out, map1(input, ref), { atol: 1e-13, rtol: 1e-12 });
      }),
    );

  it('round is half to even (as PyTorch), and nan/inf predicates', () =>
    scoped(() => {
      expect(torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.6]).round().dataSync()).toEqual([0, 2, 2, -0, -2, 3]);
      const s = torch.tensor([NaN, Infinity, -Infinity, 1]);
      expect(s.isnan().dataSync()).toEqual([true, false, false, false]);
      expect(s.isinf().dataSync()).toEqual([false, true, true, false]);
      expect(s.isfinite().dataSync()).toEqual([false, false, false, true]);
    }));
  it('softmax and logSoftmax along a dim', () =>
    scoped(() => {
      const x = T(X);
      const lse = reduce(X, [1], true, (v) => Math.log(sumOf(v.map(Math.exp))));
      const logsm = map2(X, lse, (a, b) => a - b);
      expectNd(x.logSoftmax(1), logsm, { atol: 1e-13, rtol: 1e-12 });
      expectNd(x.softmax(-1), map1(logsm, Math.exp), { atol: 1e-13, rtol: 1e-12 });
      const lse0 = reduce(X, [0], true, (v) => Math.log(sumOf(v.map(Math.exp))));
      expectNd(
        torch.nn.functional.softmax(x, 0),
        map2(X, lse0, (a, b) => Math.exp(a - b)),
        { atol: 1e-13, rtol: 1e-12 },
      );
    }));
});

describe('reductions with dim and keepdim', () => {
  const X = rnd([3, 4, 5], 5, -2, 2);
  const x = (): torch.Tensor => T(X);
  it('sum and mean', () =>
    scoped(() => {
      expectNd(x().sum(), reduce(X, null, false, sumOf));
      expectNd(x().sum(1), reduce(X, [1], false, sumOf));
      expectNd(x().sum([0, 2], true), reduce(X, [0, 2], true, sumOf));
      expectNd(x().sum(null, true), reduce(X, null, true, sumOf));
      expectNd(x().mean(), reduce(X, null, false, meanOf));
      expectNd(x().mean(-1, true), reduce(X, [2], true, meanOf));
      expectNd(torch.sum(x(), [1, 2]), reduce(X, [1, 2], false, sumOf));
      expectNd(torch.mean(x(), 0), reduce(X, [0], false, meanOf));
    }));
  it('max/min with indices, argmax/argmin, amax/amin', () =>
    scoped(() => {
      const argOf =
        (pick: (v: number[]) => number) =>
        (v: number[]): number =>
          v.indexOf(pick(v));
      const mx = (v: number[]): number => Math.max(...v);
      const mn = (v: number[]): number => Math.min(...v);
      const [values, indices] = x().max(1);
      expectNd(values, reduce(X, [1], false, mx));
      expect(indices.dtype).toBe('int64');
      expectNd(indices, reduce(X, [1], false, argOf(mx)));
      const [vk, ik] = x().min(2, true);
      expectNd(vk, reduce(X, [2], true, mn));
      expectNd(ik, reduce(X, [2], true, argOf(mn)));
      expectNd(x().max(), reduce(X, null, false, mx));
      expectNd(x().min(), reduce(X, null, false, mn));
      expectNd(x().argmax(), reduce(X, null, false, argOf(mx)));
      expectNd(x().argmin(0), reduce(X, [0], false, argOf(mn)));
      expectNd(x().argmax(-1, true), reduce(X, [2], true, argOf(mx)));
      expectNd(x().amax([0, 1]), reduce(X, [0, 1], false, mx));
      expectNd(x().amin(2, true), reduce(X, [2], true, mn));
    }));
  it('var and std: Bessel-corrected by default, correction 0 on request', () =>
    scoped(() => {
      expectNd(
        x().var(),
        reduce(X, null, false, (v) => varOf(v)),
      );
      expectNd(
        x().var(1),
        reduce(X, [1], false, (v) => varOf(v)),
      );
      expectNd(
        x().var([0, 2], { keepdim: true }),
        reduce(X, [0, 2], true, (v) => varOf(v)),
      );
      expectNd(
        x().var(2, { correction: 0 }),
        reduce(X, [2], false, (v) => varOf(v, 0)),
      );
      expectNd(
        x().std(),
        reduce(X, null, false, (v) => Math.sqrt(varOf(v))),
      );
      expectNd(
        x().std(0, { correction: 0, keepdim: true }),
        reduce(X, [0], true, (v) => Math.sqrt(varOf(v, 0))),
      );
      // any non-negative integer correction (N - 2 in the denominator), and keepdim over all dims
      expectNd(
        x().var(1, { correction: 2 }),
        reduce(X, [1], false, (v) => varOf(v, 2)),
      );
      expectNd(
        x().std(null, { correction: 3 }),
        reduce(X, null, false, (v) => Math.sqrt(varOf(v, 3))),
      );
      expectNd(
        x().var(null, { keepdim: true }),
        reduce(X, null, true, (v) => varOf(v)),
      );
      expect(() => x().var(0, { correction: -1 })).toThrow(
        new RangeError('Expected a non-negative integer for correction but received -1 of type number'),
      );
    }));
  it('norm: p = 2, 1, 3 and Infinity, over all or some dims', () =>
    scoped(() => {
      const pn =
        (p: number) =>
        (v: number[]): number =>
          p === Infinity ? Math.max(...v.map(Math.abs)) : sumOf(v.map((a) => Math.abs(a) ** p)) ** (1 / p);
      expectNd(x().norm(), reduce(X, null, false, pn(2)));
      expectNd(x().norm(1, 1), reduce(X, [1], false, pn(1)));
      expectNd(x().norm(3, [0, 2], true), reduce(X, [0, 2], true, pn(3)));
      expectNd(x().norm(Infinity), reduce(X, null, false, pn(Infinity)));
      expectNd(x().norm(2, -1), reduce(X, [2], false, pn(2)));
    }));
  it('prod, logsumexp, cumsum, all, any', () =>
    scoped(() => {
      expectNd(
        x().prod(1),
        reduce(X, [1], false, (v) => v.reduce((a, b) => a * b, 1)),
      );
      expectNd(
        x().logsumexp(2),
        reduce(X, [2], false, (v) => Math.log(sumOf(v.map(Math.exp)))),
        { atol: 1e-13, rtol: 1e-12 },
      );
      const c = x().cumsum(1);
      expectNd(
        c,
        nd(X.shape, (_, [i, j, k]) => {
          let s = 0;
          for (let q = 0; q <= j!; q++) s += X.data[(i! * 4 + q) * 5 + k!]!;
          return s;
        }),
      );
      const b = torch.tensor([
        [true, false],
        [true, true],
      ]);
      expect(b.all().item()).toBe(false);
      expect(b.all(1).dataSync()).toEqual([false, true]);
      expect(b.any(0).dataSync()).toEqual([true, true]);
    }));
});

describe('matrix products', () => {
  it('mm, matmul (batched, broadcast, matrix-vector, vector-vector), mv, dot', () =>
    scoped(() => {
      const A = rnd([3, 4], 11),
        B = rnd([4, 5], 12);
      expectNd(T(A).mm(T(B)), matmul(A, B));
      expectNd(torch.mm(T(A), T(B)), matmul(A, B));
      expectNd(T(A).matmul(T(B)), matmul(A, B));
      // (2,1,3,4) @ (5,4,2) -> (2,5,3,2): batch dims broadcast
      const L = rnd([2, 1, 3, 4], 13),
        R = rnd([5, 4, 2], 14);
      const out = torch.matmul(T(L), T(R));
      expect(out.shape).toEqual([2, 5, 3, 2]);
      const want = nd([2, 5, 3, 2], (_, [b0, b1, i, j]) => {
        let s = 0;
        for (let p = 0; p < 4; p++) s += L.data[(b0! * 3 + i!) * 4 + p]! * R.data[(b1! * 4 + p) * 2 + j!]!;
        return s;
      });
      expectNd(out, want);
      const v = rnd([4], 15);
      const mv = matmul(A, { shape: [4, 1], data: v.data });
      expectNd(T(A).matmul(T(v)), { shape: [3], data: mv.data });
      expectNd(T(A).mv(T(v)), { shape: [3], data: mv.data });
      const dot = sumOf(v.data.map((a) => a * a));
      expectNd(T(v).matmul(T(v)), { shape: [], data: [dot] });
      expectNd(torch.dot(T(v), T(v)), { shape: [], data: [dot] });
    }));
  it('bmm, outer', () =>
    scoped(() => {
      const A = rnd([2, 3, 4], 16),
        B = rnd([2, 4, 5], 17);
      const want = nd([2, 3, 5], () => 0);
      for (let b = 0; b < 2; b++) {
        const m = matmul(sub(A, b), sub(B, b));
        for (let k = 0; k < 15; k++) want.data[b * 15 + k] = m.data[k]!;
      }
      expectNd(T(A).bmm(T(B)), want);
      expectNd(torch.bmm(T(A), T(B)), want);
      const u = rnd([3], 18),
        w = rnd([4], 19);
      expectNd(
        torch.outer(T(u), T(w)),
        nd([3, 4], (_, [i, j]) => u.data[i!]! * w.data[j!]!),
      );
      expectNd(
        T(u).outer(T(w)),
        nd([3, 4], (_, [i, j]) => u.data[i!]! * w.data[j!]!),
      );
    }));
  it('tensordot with a count or explicit dims, einsum', () =>
    scoped(() => {
      const A = rnd([2, 3, 4], 20),
        B = rnd([3, 4, 5], 21);
      // contract the last two dims of A with the first two of B
      const want = nd([2, 5], (_, [i, l]) => {
        let s = 0;
        for (let j = 0; j < 3; j++)
          for (let k = 0; k < 4; k++) s += A.data[(i! * 3 + j) * 4 + k]! * B.data[(j * 4 + k) * 5 + l!]!;
        return s;
      });
      expectNd(torch.tensordot(T(A), T(B), 2), want);
      expectNd(
        torch.tensordot(T(A), T(B), [
          [1, 2],
          [0, 1],
        ]),
        want,
      );
      const C = rnd([4, 3], 22);
      // A's dim 1 (3) with C's dim 1 (3): out (2, 4, 4)
      expectNd(
        torch.tensordot(T(A), T(C), [[1], [1]]),
        nd([2, 4, 4], (_, [i, k, m]) => {
          let s = 0;
          for (let j = 0; j < 3; j++) s += A.data[(i! * 3 + j) * 4 + k!]! * C.data[m! * 3 + j]!;
          return s;
        }),
      );
      const P = rnd([2, 3, 4], 23),
        Q = rnd([2, 4, 5], 24);
      expectNd(
        torch.einsum('bij,bjk->bik', T(P), T(Q)),
        (() => {
          const out = nd([2, 3, 5], () => 0);
          for (let b = 0; b < 2; b++) {
            const m = matmul(sub(P, b), sub(Q, b));
            for (let k = 0; k < 15; k++) out.data[b * 15 + k] = m.data[k]!;
          }
          return out;
        })(),
      );
      const S = rnd([4, 4], 25);
      expectNd(
        torch.einsum('ii->i', T(S)),
        nd([4], (_, [i]) => S.data[i! * 5]!),
      );
      expectNd(torch.einsum('ij->ji', T(S)), permute(S, [1, 0]));
      const v = rnd([4], 26);
      expectNd(torch.einsum('i,i->', T(v), T(v)), { shape: [], data: [sumOf(v.data.map((a) => a * a))] });
    }));
});

describe('shape ops', () => {
  const X = nd([2, 3, 4], (k) => k);
  it('reshape and view (which shares storage)', () =>
    scoped(() => {
      const x = T(X);
      expect(x.reshape(4, -1).shape).toEqual([4, 6]);
      expect(x.reshape([-1]).dataSync()).toEqual(X.data);
      const v = x.view(6, 4);
      expect(v.shape).toEqual([6, 4]);
      v.index(0, 0).fill_(100);
      expect(x.index(0, 0, 0).item()).toBe(100);
      expect(x.viewAs(torch.zeros(24)).shape).toEqual([24]);
      expect(torch.reshape(x, [3, 8]).shape).toEqual([3, 8]);
    }));
  it('transpose, permute, t(), mT', () =>
    scoped(() => {
      const x = T(X);
      const tr = x.transpose(0, 2);
      expect(tr.isContiguous()).toBe(false);
      expectNd(tr, permute(X, [2, 1, 0]));
      expectNd(x.permute(1, 2, 0), permute(X, [1, 2, 0]));
      expectNd(x.permute([2, 0, 1]), permute(X, [2, 0, 1]));
      expectNd(torch.transpose(x, -1, -2), permute(X, [0, 2, 1]));
      expectNd(x.mT, permute(X, [0, 2, 1]));
      const m = T(nd([2, 3], (k) => k));
      expect(m.t().toArray()).toEqual([
        [0, 3],
        [1, 4],
        [2, 5],
      ]);
    }));
  it('squeeze, unsqueeze, flatten, expand', () =>
    scoped(() => {
      const z = torch.zeros(1, 3, 1, 2);
      expect(z.squeeze().shape).toEqual([3, 2]);
      expect(z.squeeze(2).shape).toEqual([1, 3, 2]);
      expect(z.squeeze(1).shape).toEqual([1, 3, 1, 2]);
      expect(z.unsqueeze(0).shape).toEqual([1, 1, 3, 1, 2]);
      expect(z.unsqueeze(-1).shape).toEqual([1, 3, 1, 2, 1]);
      const x = T(X);
      expect(x.flatten().shape).toEqual([24]);
      expect(x.flatten(1).shape).toEqual([2, 12]);
      expect(torch.flatten(x, 0, 1).shape).toEqual([6, 4]);
      const e = torch.tensor([[1], [2]]).expand(2, 3);
      expect(e.toArray()).toEqual([
        [1, 1, 1],
        [2, 2, 2],
      ]);
      expect(e.stride()).toEqual([1, 0]);
      expect(torch.tensor([1, 2, 3]).expand(2, -1).toArray()).toEqual([
        [1, 2, 3],
        [1, 2, 3],
      ]);
      expect(torch.tensor([5]).expandAs(torch.zeros(2, 2)).toArray()).toEqual([
        [5, 5],
        [5, 5],
      ]);
    }));
  it('cat and stack', () =>
    scoped(() => {
      const a = torch.tensor([
        [1, 2],
        [3, 4],
      ]);
      const b = torch.tensor([[5, 6]]);
      expect(torch.cat([a, b]).toArray()).toEqual([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      expect(torch.cat([a, a], 1).toArray()).toEqual([
        [1, 2, 1, 2],
        [3, 4, 3, 4],
      ]);
      expect(torch.cat([a, a], -1).shape).toEqual([2, 4]);
      const s = torch.stack([a, a.neg()]);
      expect(s.shape).toEqual([2, 2, 2]);
      expect(s.toArray()).toEqual([
        [
          [1, 2],
          [3, 4],
        ],
        [
          [-1, -2],
          [-3, -4],
        ],
      ]);
      expect(torch.stack([a, a.neg()], 2).toArray()).toEqual([
        [
          [1, -1],
          [2, -2],
        ],
        [
          [3, -3],
          [4, -4],
        ],
      ]);
    }));
  it('split, chunk, unbind, narrow', () =>
    scoped(() => {
      const r = torch.arange(10);
      expect(r.split(4).map((t) => t.toArray())).toEqual([
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
      ]);
      expect(r.split([2, 5, 3]).map((t) => t.toArray())).toEqual([
        [0, 1],
        [2, 3, 4, 5, 6],
        [7, 8, 9],
      ]);
      // chunk: ceil(10 / 4) = 3 per chunk, so 4 chunks of 3, 3, 3, 1
      expect(r.chunk(4).map((t) => t.numel())).toEqual([3, 3, 3, 1]);
      const m = T(nd([2, 5], (k) => k));
      expect(m.split(2, 1).map((t) => t.shape)).toEqual([
        [2, 2],
        [2, 2],
        [2, 1],
      ]);
      expect(m.chunk(2, 1).map((t) => t.toArray())).toEqual([
        [
          [0, 1, 2],
          [5, 6, 7],
        ],
        [
          [3, 4],
          [8, 9],
        ],
      ]);
      expect(m.unbind(1).map((t) => t.toArray())).toEqual([
        [0, 5],
        [1, 6],
        [2, 7],
        [3, 8],
        [4, 9],
      ]);
      expect(m.narrow(1, 1, 3).toArray()).toEqual([
        [1, 2, 3],
        [6, 7, 8],
      ]);
      expect(m.narrow(0, -1, 1).toArray()).toEqual([[5, 6, 7, 8, 9]]);
    }));
  it('indexSelect, gather, select, slice, flip, repeat', () =>
    scoped(() => {
      const m = T(nd([3, 4], (k) => k));
      const idx = torch.tensor([2, 0, 2], { dtype: 'int64' });
      expect(m.indexSelect(0, idx).toArray()).toEqual([
        [8, 9, 10, 11],
        [0, 1, 2, 3],
        [8, 9, 10, 11],
      ]);
      expect(m.indexSelect(1, idx).toArray()).toEqual([
        [2, 0, 2],
        [6, 4, 6],
        [10, 8, 10],
      ]);
      const g = torch.tensor(
        [
          [3, 0],
          [1, 1],
          [0, 2],
        ],
        { dtype: 'int64' },
      );
      // out[i][j] = m[i][g[i][j]]
      expect(m.gather(1, g).toArray()).toEqual([
        [3, 0],
        [5, 5],
        [8, 10],
      ]);
      // out[i][j] = m[g[i][j]][j]
      const g0 = torch.tensor([[2, 1, 0, 0]], { dtype: 'int64' });
      expect(m.gather(0, g0).toArray()).toEqual([[8, 5, 2, 3]]);
      expect(m.select(1, -1).toArray()).toEqual([3, 7, 11]);
      expect(m.slice(1, 1, null, 2).toArray()).toEqual([
        [1, 3],
        [5, 7],
        [9, 11],
      ]);
      expect(m.slice(0, -2).toArray()).toEqual([
        [4, 5, 6, 7],
        [8, 9, 10, 11],
      ]);
      expect(m.flip(0).index(0).toArray()).toEqual([8, 9, 10, 11]);
      expect(torch.tensor([1, 2]).repeat(2, 2).toArray()).toEqual([
        [1, 2, 1, 2],
        [1, 2, 1, 2],
      ]);
    }));
  it("index(): numbers, null, [start, end, step], '...', index tensors and masks", () =>
    scoped(() => {
      const x = T(X); // x[i][j][k] = 12 i + 4 j + k
      expect(x.index(1).shape).toEqual([3, 4]);
      expect(x.index(1, 2, 3).item()).toBe(23);
      expect(x.index(-1, -1, -1).item()).toBe(23);
      expect(x.index(null, 1).toArray()).toEqual([
        [4, 5, 6, 7],
        [16, 17, 18, 19],
      ]);
      expect(x.index(0, [1, 3]).toArray()).toEqual([
        [4, 5, 6, 7],
        [8, 9, 10, 11],
      ]);
      expect(x.index(0, 0, [null, null, 2]).toArray()).toEqual([0, 2]);
      expect(x.index(0, [-2, null], [1, null, 2]).toArray()).toEqual([
        [5, 7],
        [9, 11],
      ]);
      expect(x.index('...', 0).toArray()).toEqual([
        [0, 4, 8],
        [12, 16, 20],
      ]);
      expect(x.index(1, '...', 3).toArray()).toEqual([15, 19, 23]);
      expect(x.index('...', [1, 3]).shape).toEqual([2, 3, 2]);
      const ix = torch.tensor([1, 0, 1], { dtype: 'int64' });
      expect(x.index(ix).shape).toEqual([3, 3, 4]);
      expect(x.index(ix, 0, 0).toArray()).toEqual([12, 0, 12]);
    }));
  it('index() with a tensor after leading dims and with a bool mask', () =>
    scoped(() => {
      const x = T(X);
      const ix = torch.tensor([3, 0], { dtype: 'int64' });
      // x[:, :, [3, 0]]
      expectNd(
        x.index(null, null, ix),
        nd([2, 3, 2], (_, [i, j, k]) => 12 * i! + 4 * j! + (k === 0 ? 3 : 0)),
      );
      // x[0, ..., [3, 0]]
      expectNd(
        x.index(0, '...', ix),
        nd([3, 2], (_, [j, k]) => 4 * j! + (k === 0 ? 3 : 0)),
      );
      const mask = torch.tensor([true, false, true]);
      expectNd(
        x.index(1, mask),
        nd([2, 4], (_, [r, k]) => 12 + 4 * (r === 0 ? 0 : 2) + k!),
      );
      const m2 = x.index(0).gt(9);
      expect(x.index(0).index(m2).toArray()).toEqual([10, 11]);
      expect(x.index(torch.tensor([1], { dtype: 'int64' }), 2, 1).toArray()).toEqual([21]);
    }));
  it("index() places and pairs advanced indices as PyTorch does (shapes and values from PyTorch 1.13's x[...])", () =>
    scoped(() => {
      const x = torch.arange(60).reshape(3, 4, 5); // x[i][j][k] = 20 i + 5 j + k
      const i64 = (v: number[] | number[][]): torch.Tensor => torch.tensor(v, { dtype: 'int64' });
      // x[:, [[0, 1], [2, 3]]] -> [3, 2, 2, 5]
      expectNd(
        x.index(
          null,
          i64([
            [0, 1],
            [2, 3],
          ]),
        ),
        nd([3, 2, 2, 5], (_, [i, a, b, k]) => 20 * i! + 5 * (2 * a! + b!) + k!),
      );
      // x[:, 2-d mask] -> [3, 20]: the mask takes two dimensions
      expect(x.index(null, torch.ones([4, 5], { dtype: 'bool' })).shape).toEqual([3, 20]);
      // x[[0, 1], [2, 3]] pairs the indices: rows x[0, 2] and x[1, 3]
      expect(x.index(i64([0, 1]), i64([2, 3])).toArray()).toEqual([
        [10, 11, 12, 13, 14],
        [35, 36, 37, 38, 39],
      ]);
      expect(x.index('...', i64([1, 2])).shape).toEqual([3, 4, 2]);
      // indices separated by a slice: the indexed dimension goes first -> [2, 4]
      expectNd(
        x.index(i64([0, 2]), null, i64([1, 4])),
        nd([2, 4], (_, [r, j]) => 20 * [0, 2][r!]! + 5 * j! + [1, 4][r!]!),
      );
      expect(x.index(1, null, i64([0, 4])).shape).toEqual([4, 2]);
      expect(x.index(torch.tensor([true, false, true]), '...', 2).shape).toEqual([2, 4]);
      expectNd(
        x.index(null, null, torch.tensor([true, false, true, false, true])),
        nd([3, 4, 3], (_, [i, j, c]) => 20 * i! + 5 * j! + 2 * c!),
      );
    }));
});

describe('integer division at the edge of the type', () => {
  it("the smallest value divided by -1 is an error, not a crash (libtorch's CPU kernel traps on it)", () =>
    scoped(() => {
      const lo = torch.tensor([-(2n ** 63n), 7n], { dtype: 'int64' });
      for (const op of ['floorDivide', 'remainder', 'fmod'] as const) {
        expect(() => lo[op](-1), `${op} by a number`).toThrow(
          `${op}: integer overflow: the smallest Long value (-9223372036854775808) divided by -1 does not fit in Long`,
        );
        expect(() => lo[op](torch.tensor([-1, -1], { dtype: 'int64' })), `${op} by a tensor`).toThrow(
          'integer overflow',
        );
      }
      const lo32 = torch.tensor([-(2 ** 31), 5], { dtype: 'int32' });
      expect(() => lo32.floorDivide(-1)).toThrow('the smallest Int value (-2147483648) divided by -1');
      // everything else divides as before: 7 // -1 = -7, -2^31 // 2
      expect(torch.tensor([7n], { dtype: 'int64' }).floorDivide(-1).toArray()).toEqual([-7]);
      expect(lo32.floorDivide(2).toArray()).toEqual([-(2 ** 30), 2]);
      // and integer division by zero is libtorch's ZeroDivisionError, as in PyTorch
      expect(() => torch.tensor([1], { dtype: 'int64' }).floorDivide(0)).toThrow('ZeroDivisionError');
    }));
});

describe('in-place ops return this', () => {
  it('add_, sub_, mul_, div_ with tensors (broadcast), scalars and alpha', () =>
    scoped(() => {
      const A = rnd([2, 3], 30),
        B = rnd([3], 31, 0.5, 1.5);
      const a = T(A);
      expect(a.add_(T(B))).toBe(a);
      let want = map2(A, B, (x, y) => x + y);
      expectNd(a, want);
      expect(a.add_(T(B), -2)).toBe(a);
      want = map2(want, B, (x, y) => x - 2 * y);
      expectNd(a, want);
      expect(a.sub_(0.5)).toBe(a);
      want = map1(want, (x) => x - 0.5);
      expectNd(a, want);
      expect(a.mul_(T(B))).toBe(a);
      want = map2(want, B, (x, y) => x * y);
      expectNd(a, want);
      expect(a.div_(4)).toBe(a);
      want = map1(want, (x) => x / 4);
      expectNd(a, want);
    }));
  it('addcmul_, addcdiv_, lerp_ (scalar and tensor weight)', () =>
    scoped(() => {
      const A = rnd([4], 32),
        P = rnd([4], 33),
        Q = rnd([4], 34, 0.5, 2),
        W = rnd([4], 35, 0, 1);
      const a = T(A);
      expect(a.addcmul_(T(P), T(Q), 0.5)).toBe(a);
      let want = A.data.map((x, k) => x + 0.5 * P.data[k]! * Q.data[k]!);
      expectClose(a, Float64Array.from(want), TIGHT);
      expect(a.addcdiv_(T(P), T(Q), -2)).toBe(a);
      want = want.map((x, k) => x - (2 * P.data[k]!) / Q.data[k]!);
      expectClose(a, Float64Array.from(want), TIGHT);
      expect(a.addcmul_(T(P), T(Q))).toBe(a);
      want = want.map((x, k) => x + P.data[k]! * Q.data[k]!);
      expectClose(a, Float64Array.from(want), TIGHT);
      expect(a.lerp_(T(P), 0.25)).toBe(a);
      want = want.map((x, k) => x + 0.25 * (P.data[k]! - x));
      expectClose(a, Float64Array.from(want), TIGHT);
      expect(a.lerp_(T(Q), T(W))).toBe(a);
      want = want.map((x, k) => x + W.data[k]! * (Q.data[k]! - x));
      expectClose(a, Float64Array.from(want), TIGHT);
    }));
  it('copy_ (broadcast and dtype cast), zero_, fill_, clamp_', () =>
    scoped(() => {
      const a = torch.zeros([2, 3], { dtype: 'float64' });
      expect(a.copy_(torch.tensor([1, 2, 3], { dtype: 'int32' }))).toBe(a);
      expect(a.toArray()).toEqual([
        [1, 2, 3],
        [1, 2, 3],
      ]);
      expect(a.dtype).toBe('float64');
      expect(a.fill_(2.5)).toBe(a);
      expect(a.dataSync()).toEqual([2.5, 2.5, 2.5, 2.5, 2.5, 2.5]);
      expect(a.zero_()).toBe(a);
      expect(a.dataSync()).toEqual([0, 0, 0, 0, 0, 0]);
      const c = torch.tensor([-2, -0.5, 0.5, 2]);
      expect(c.clamp_(-1, 1)).toBe(c);
      expect(c.dataSync()).toEqual([-1, -0.5, 0.5, 1]);
      expect(c.clamp_(0)).toBe(c);
      expect(c.dataSync()).toEqual([0, 0, 0.5, 1]);
      expect(c.clamp_(null, 0.25)).toBe(c);
      expect(c.dataSync()).toEqual([0, 0, 0.25, 0.25]);
      const b = torch.zeros(2, { dtype: 'bool' });
      expect(b.fill_(true).dataSync()).toEqual([true, true]);
    }));
  it('an in-place op on a view writes through to the base', () =>
    scoped(() => {
      const base = torch.zeros(3, 4);
      base.index(null, 1).add_(5);
      base.narrow(0, 2, 1).fill_(-1);
      expect(base.toArray()).toEqual([
        [0, 5, 0, 0],
        [0, 5, 0, 0],
        [-1, -1, -1, -1],
      ]);
    }));
});

describe('invalid arguments', () => {
  it('non-tensor operands -> TypeError naming the argument', () =>
    scoped(() => {
      const a = torch.zeros(2, 3);
      expect(() => a.add('x' as never)).toThrow(
        new TypeError('Expected a Tensor or a number for other but received "x" of type string'),
      );
      expect(() => a.copy_([1] as never)).toThrow(
        new TypeError('Expected a Tensor for src but received [1] of type array'),
      );
      expect(() => a.fill_('a' as never)).toThrow(
        new TypeError('Expected a Tensor or a number for value but received "a" of type string'),
      );
      expect(() => a.addcmul_(1 as never, a)).toThrow(
        new TypeError('Expected a Tensor for tensor1 but received 1 of type number'),
      );
      expect(() => a.addcdiv_(a, null as never)).toThrow(
        new TypeError('Expected a Tensor for tensor2 but received null of type null'),
      );
      expect(() => a.lerp_({} as never, 0.5)).toThrow(
        new TypeError('Expected a Tensor for end but received [object Object] of type object'),
      );
      expect(() => a.lerp_(a, 'a' as never)).toThrow(
        new TypeError('Expected a number for weight but received "a" of type string'),
      );
      expect(() => torch.where(1 as never, a, a)).toThrow(
        new TypeError('Expected a bool Tensor for condition but received 1 of type number'),
      );
      expect(() => torch.cat([])).toThrow(
        new TypeError('Expected a non-empty array of Tensors for tensors but received [] of type array'),
      );
      expect(() => torch.stack([a, 1 as never])).toThrow(TypeError);
      expect(() => torch.tensordot(a, a, 'x' as never)).toThrow(
        new TypeError('Expected a number or [dimsA, dimsB] for dims but received "x" of type string'),
      );
      expect(() => a.clamp()).toThrow(new TypeError('clamp needs at least one of min and max'));
      expect(() => a.norm('fro' as never)).toThrow(
        new TypeError('Expected a number for p but received "fro" of type string'),
      );
      const ix = torch.tensor([0], { dtype: 'int64' });
      expect(() => a.indexSelect(0, [0] as never)).toThrow(
        new TypeError('Expected a Tensor for index but received [0] of type array'),
      );
      expect(() => a.gather(1, 5 as never)).toThrow(
        new TypeError('Expected a Tensor for index but received 5 of type number'),
      );
      expect(() => a.scatter(0, ix, 1 as never)).toThrow(
        new TypeError('Expected a Tensor for src but received 1 of type number'),
      );
      expect(() => a.maskedFill(true as never, 1)).toThrow(
        new TypeError('Expected a Tensor for mask but received true of type boolean'),
      );
      expect(() => a.maskedSelect(null as never)).toThrow(TypeError);
      expect(() => a.clamp_('a' as never)).toThrow(
        new TypeError('Expected a number for min but received "a" of type string'),
      );
      expect(() => a.uniform_('a' as never)).toThrow(TypeError);
      expect(() => a.matmul(2 as never)).toThrow(
        new TypeError('Expected a Tensor for other but received 2 of type number'),
      );
      expect(() => a.mv([1] as never)).toThrow(
        new TypeError('Expected a Tensor for vec but received [1] of type array'),
      );
      expect(() => a.add(a, '2' as never)).toThrow(
        new TypeError('Expected a number for alpha but received "2" of type string'),
      );
      expect(() => torch.add(1 as never, a)).toThrow(
        new TypeError('Expected a Tensor for input but received 1 of type number'),
      );
      expect(() => a.sum(0, 'yes' as never)).toThrow(
        new TypeError('Expected a boolean for keepdim but received "yes" of type string'),
      );
      expect(() => torch.zeros(2, 3, 4).t()).toThrow(
        new RangeError('t() expects a tensor with <= 2 dimensions, but self is 3D (use transpose(dim0, dim1) or mT)'),
      );
      // values that do not fit the integer dtype, as PyTorch: an error, not a wrapped value
      expect(() => torch.tensor([1e10], { dtype: 'int32' })).toThrow(
        new RangeError('tensor(): value 10000000000 cannot be converted to type int32 without overflow'),
      );
      expect(() => torch.tensor([300], { dtype: 'uint8' })).toThrow(
        'cannot be converted to type uint8 without overflow',
      );
      expect(() => torch.tensor([2n ** 63n], { dtype: 'int64' })).toThrow(
        'cannot be converted to type int64 without overflow',
      );
      expect(() => torch.tensor([NaN], { dtype: 'int64' })).toThrow('value NaN cannot be converted to type int64');
      expect(torch.tensor([1.7, -1.7, -1], { dtype: 'int32' }).toArray()).toEqual([1, -1, -1]);
      expect(torch.tensor([-1], { dtype: 'uint8' }).toArray()).toEqual([255]);
    }));
  it('bad dims and sizes -> RangeError / TypeError naming the argument', () =>
    scoped(() => {
      const a = torch.zeros(2, 3);
      expect(() => a.transpose(0.5, 1)).toThrow(
        new RangeError('Expected an integer for dim0 but received 0.5 of type number'),
      );
      expect(() => a.sum(0.5)).toThrow(new RangeError('Expected an integer for dim but received 0.5 of type number'));
      expect(() => a.max(0.5)).toThrow(new RangeError('Expected an integer for dim but received 0.5 of type number'));
      expect(() => a.flatten(0.5)).toThrow(
        new RangeError('Expected an integer for startDim but received 0.5 of type number'),
      );
      expect(() => a.split(0)).toThrow(
        new RangeError('Expected a positive integer for splitSize but received 0 of type number'),
      );
      expect(() => a.chunk(0)).toThrow(
        new RangeError('Expected a positive integer for chunks but received 0 of type number'),
      );
      expect(() => a.narrow(1, 0, -1)).toThrow(
        new RangeError('Expected a non-negative integer for length but received -1 of type number'),
      );
      expect(() => a.reshape(1.5)).toThrow(
        new TypeError(
          'Expected a shape (integers, -1 for one inferred size) for shape but received [1.5] of type array',
        ),
      );
      expect(() => a.slice(0, 0, 2, -1)).toThrow(
        new RangeError('Expected a positive integer for step but received -1 of type number'),
      );
      expect(() => a.index('...', '...')).toThrow(new RangeError('index() takes at most one "..."'));
      expect(() => a.index({} as never)).toThrow(
        new TypeError(
          'Expected a number, null, [start, end, step], a Tensor or "..." for specs[0] but received [object Object] of type object',
        ),
      );
    }));
  it('libtorch errors keep their message and get a code', () =>
    scoped(() => {
      const a = torch.zeros(2, 3);
      expectTorchError(
        () => a.add(torch.zeros(2, 2)),
        'SHAPE_MISMATCH',
        'The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1',
      );
      expectTorchError(
        () => a.matmul(torch.zeros(2, 2)),
        'SHAPE_MISMATCH',
        'mat1 and mat2 shapes cannot be multiplied (2x3 and 2x2)',
      );
      expectTorchError(() => a.reshape(4), 'SHAPE_MISMATCH', "shape '[4]' is invalid for input of size 6");
      expectTorchError(
        () => a.t().view(-1),
        'SHAPE_MISMATCH',
        /^view size is not compatible with input tensor's size and stride/,
      );
      expectTorchError(() => a.view(-1, -1), 'SHAPE_MISMATCH', 'only one dimension can be inferred');
      expectTorchError(
        () => torch.cat([a, torch.zeros(2, 2)]),
        'SHAPE_MISMATCH',
        'Sizes of tensors must match except in dimension 0. Expected size 3 but got size 2 for tensor number 1 in the list.',
      );
      expectTorchError(
        () => torch.stack([a, torch.zeros(2, 2)]),
        'SHAPE_MISMATCH',
        'stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [2, 2] at entry 1',
      );
      expectTorchError(
        () => a.expand(3, 3),
        'SHAPE_MISMATCH',
        /^The expanded size of the tensor \(3\) must match the existing size \(2\) at non-singleton dimension 0/,
      );
      expectTorchError(() => a.narrow(1, 2, 2), 'SHAPE_MISMATCH', 'start (2) + length (2) exceeds dimension size (3).');
      expectTorchError(
        () => torch.zeros(3).add_(torch.zeros(2, 3)),
        'SHAPE_MISMATCH',
        "output with shape [3] doesn't match the broadcast shape [2, 3]",
      );
      expectTorchError(
        () => a.select(0, 10),
        'INDEX_OUT_OF_RANGE',
        'select(): index 10 out of range for tensor of size [2, 3] at dimension 0',
      );
      expectTorchError(
        () => a.index(null, null, 0),
        'INDEX_OUT_OF_RANGE',
        'Dimension out of range (expected to be in range of [-2, 1], but got 2)',
      );
      expectTorchError(
        () => a.sum(5),
        'INDEX_OUT_OF_RANGE',
        'Dimension out of range (expected to be in range of [-2, 1], but got 5)',
      );
      expectTorchError(
        () => a.gather(1, torch.tensor([[5]], { dtype: 'int64' })),
        'INDEX_OUT_OF_RANGE',
        'index 5 is out of bounds for dimension 1 with size 3',
      );
      expectTorchError(
        () => a.gather(1, torch.tensor([[0]])),
        'DTYPE_MISMATCH',
        'gather(): Expected dtype int64 for index',
      );
      expectTorchError(
        () => torch.zeros(3, { dtype: 'int64' }).add_(1.5),
        'DTYPE_MISMATCH',
        "result type Float can't be cast to the desired output type Long",
      );
      expectTorchError(
        () => torch.einsum('ij,jk', a),
        'TORCH_ERROR',
        'einsum(): fewer operands were provided than specified in the equation',
      );
      expectTorchError(() => a.clamp_(), 'TORCH_ERROR', "torch.clamp: At least one of 'min' or 'max' must not be None");
    }));
});
