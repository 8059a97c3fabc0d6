// The float64 TNT reference that test/tnt-math.test.ts (the native kernels) and test/tnt.test.ts (optim.TNT end to
// end) compare against: the paper's quantities from their definitions, in plain JavaScript on dense matrices (no
// libtorch). test/shampoo.test.ts shares the Kronecker-factored statistic G^(i) (`contraction`).
import { type Mat, kron, solve } from './dense.js';

export const prod = (a: number[]): number => a.reduce((x, y) => x * y, 1);

/** The d x d identity. */
export const eye = (d: number): Mat =>
  Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));

/** G^(i) of a row-major tensor g of `shape`, by matricising explicitly: G_(i) G_(i)^T. */
export function contraction(g: ArrayLike<number>, shape: number[], mode: number): Mat {
  const d = shape[mode]!;
  const inner = prod(shape.slice(mode + 1));
  const outer = prod(shape.slice(0, mode));
  const rows: number[][] = Array.from({ length: d }, () => []);
  for (let o = 0; o < outer; o++)
    for (let a = 0; a < d; a++) for (let i = 0; i < inner; i++) rows[a]!.push(g[(o * d + a) * inner + i]!);
  return rows.map((ra) => rows.map((rb) => ra.reduce((s, v, k) => s + v * rb[k]!, 0)));
}

function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
function multiIndex(flat: number, shape: number[]): number[] {
  const idx: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    idx.unshift(flat % shape[i]!);
    flat = Math.floor(flat / shape[i]!);
  }
  return idx;
}

/**
 * G^(i)[a][b] = sum over all indices with index_i = a (resp. b) and equal other indices: the same quantity as
 * `contraction` by explicit index loops, never matricising (the kernels' own route is a matricisation).
 */
export function contractionByIndex(g: ArrayLike<number>, shape: number[], mode: number): number[][] {
  const d = shape[mode]!;
  const out = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const st = strides(shape);
  for (let f = 0; f < g.length; f++) {
    const idx = multiIndex(f, shape);
    const a = idx[mode]!;
    for (let b = 0; b < d; b++) out[a]![b]! += g[f]! * g[f + (b - a) * st[mode]!]!;
  }
  return out;
}

/** The statistics' moving average, (1 - w) H + w C (the authors' weight w = max(1 / (t + 1), 1 - decay)). */
export function movingAverage(H: Mat, C: Mat, w: number): Mat {
  return H.map((row, a) => row.map((v, b) => (1 - w) * v + w * C[a]![b]!));
}

/**
 * Eq. (5): the normalised factors U_i = H_i / (c0^(k-1) n / d_i) with c0 = (tr H_1 / n)^(1/k), for a parameter of
 * `shape` (k = its rank, n = its size), so that tr U_i = c0 d_i.
 */
export function normalizedFactors(H: Mat[], shape: number[]): Mat[] {
  const k = shape.length,
    n = prod(shape);
  const tr = H[0]!.reduce((s, row, a) => s + row[a]!, 0);
  const c0 = (tr / n) ** (1 / k);
  return H.map((Hi, i) => Hi.map((row) => row.map((v) => v / (c0 ** (k - 1) * (n / shape[i]!)))));
}

/** M + eps I. */
export const damped = (M: Mat, eps: number): Mat => M.map((row, a) => row.map((v, b) => v + (a === b ? eps : 0)));

/** The direction (F_1 (x) ... (x) F_k)^-1 vec(v), by a dense solve with the Kronecker product (Proposition 1). */
export function kronSolve(factors: Mat[], v: number[]): number[] {
  let K: Mat = [[1]];
  for (const f of factors) K = kron(K, f);
  return solve(K, v);
}
