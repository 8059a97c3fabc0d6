/**
 * Float64 reference implementations in plain JavaScript, independent of libtorch: a tiny n-d array (row-major
 * `data` + `shape`) with NumPy broadcasting, reductions and matrix products. Tests compute expected values with
 * these and compare them to the tensor ops.
 */
import { expect } from 'vitest';
import * as torch from '../../lib/index.js';
import { expectClose, lcg } from './helpers.js';

export interface Nd {
  shape: number[];
  data: number[];
}

export const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

/** The multi-index of flat position `k`. */
export function unravel(k: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = k % shape[d]!;
    k = Math.floor(k / shape[d]!);
  }
  return idx;
}

export function ravel(idx: number[], shape: number[]): number {
  let k = 0;
  for (let d = 0; d < shape.length; d++) k = k * shape[d]! + idx[d]!;
  return k;
}

export function nd(shape: number[], f: (k: number, idx: number[]) => number): Nd {
  const n = size(shape);
  const data = new Array<number>(n);
  for (let k = 0; k < n; k++) data[k] = f(k, unravel(k, shape));
  return { shape: [...shape], data };
}

/** Deterministic values in [lo, hi) from the helpers' LCG (not libtorch's generator). */
export function rnd(shape: number[], seed: number, lo = -1, hi = 1): Nd {
  const r = lcg(seed);
  return nd(shape, () => lo + (r() + 0.5) * (hi - lo));
}

/** A tensor holding exactly the reference data (float64 unless `dtype` says otherwise). */
export function T(a: Nd, opts: { dtype?: torch.DType; requiresGrad?: boolean } = {}): torch.Tensor {
  return torch.tensor(Float64Array.from(a.data), {
    shape: a.shape,
    dtype: opts.dtype ?? 'float64',
    requiresGrad: opts.requiresGrad,
  });
}

/** Asserts the tensor has the reference's shape and values. */
export function expectNd(
  t: torch.Tensor,
  want: Nd,
  tol: { atol?: number; rtol?: number } = { atol: 1e-12, rtol: 1e-12 },
): void {
  expect(t.shape).toEqual(want.shape);
  expectClose(t, Float64Array.from(want.data), tol);
}

export function broadcastShape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes ${a} and ${b} do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Reads `a` at an index of a broadcast shape. */
export function atBroadcast(a: Nd, idx: number[]): number {
  const off = idx.length - a.shape.length;
  let k = 0;
  for (let d = 0; d < a.shape.length; d++) k = k * a.shape[d]! + (a.shape[d] === 1 ? 0 : idx[off + d]!);
  return a.data[k]!;
}

export function map1(a: Nd, f: (x: number) => number): Nd {
  return { shape: [...a.shape], data: a.data.map(f) };
}

export function map2(a: Nd, b: Nd, f: (x: number, y: number) => number): Nd {
  const shape = broadcastShape(a.shape, b.shape);
  return nd(shape, (_, idx) => f(atBroadcast(a, idx), atBroadcast(b, idx)));
}

/** Reduces over `dims` (all when null) with `f` applied to the values of each output position. */
export function reduce(a: Nd, dims: number[] | null, keepdim: boolean, f: (vals: number[]) => number): Nd {
  const nd0 = a.shape.length;
  const ds = (dims ?? a.shape.map((_, i) => i)).map((d) => (d < 0 ? d + nd0 : d));
  const keptShape = a.shape.map((s, d) => (ds.includes(d) ? 1 : s));
  const groups = new Map<number, number[]>();
  for (let k = 0; k < a.data.length; k++) {
    const idx = unravel(k, a.shape).map((i, d) => (ds.includes(d) ? 0 : i));
    const key = ravel(idx, keptShape);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(a.data[k]!);
  }
  const data = Array.from({ length: size(keptShape) }, (_, k) => f(groups.get(k) ?? []));
  const shape = keepdim ? keptShape : a.shape.filter((_, d) => !ds.includes(d));
  return { shape, data };
}

export const sumOf = (v: number[]): number => v.reduce((s, x) => s + x, 0);
export const meanOf = (v: number[]): number => sumOf(v) / v.length;
export function varOf(v: number[], correction = 1): number {
  const m = meanOf(v);
  return sumOf(v.map((x) => (x - m) ** 2)) / (v.length - correction);
}

/** (n, k) x (k, m) */
export function matmul(a: Nd, b: Nd): Nd {
  const [n, k] = a.shape as [number, number];
  const m = b.shape[1]!;
  if (b.shape[0] !== k) throw new Error('inner sizes differ');
  return nd([n, m], (_, [i, j]) => {
    let s = 0;
    for (let p = 0; p < k; p++) s += a.data[i! * k + p]! * b.data[p * m + j!]!;
    return s;
  });
}

/** Permutes the dimensions of `a`: out[i_0..] = a[i at perm]. */
export function permute(a: Nd, perm: number[]): Nd {
  const shape = perm.map((p) => a.shape[p]!);
  return nd(shape, (_, idx) => {
    const src = new Array<number>(a.shape.length);
    perm.forEach((p, d) => (src[p] = idx[d]!));
    return a.data[ravel(src, a.shape)]!;
  });
}

/** The sub-array at leading index `i` (a[i]). */
export function sub(a: Nd, i: number): Nd {
  const inner = size(a.shape.slice(1));
  return { shape: a.shape.slice(1), data: a.data.slice(i * inner, (i + 1) * inner) };
}

/**
 * erf by its Taylor series. The alternating terms peak near e^(x^2), so cancellation costs about e^(x^2) ulps:
 * below 1e-13 for |x| <= 2.5, which is all the tests use (larger |x| is refused rather than silently inaccurate).
 */
export function erf(x: number): number {
  if (Math.abs(x) > 2.5) throw new Error(`reference erf is only accurate for |x| <= 2.5 (got ${x})`);
  let term = x,
    sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
