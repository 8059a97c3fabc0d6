// Dense float64 linear algebra in plain JavaScript: the independent references the optimizer tests compare the
// native kernels against (no libtorch involved).

export type Mat = number[][];

/** a (x) b, the Kronecker product. */
export function kron(a: Mat, b: Mat): Mat {
  const n = a.length,
    m = b.length;
  const out = Array.from({ length: n * m }, () => new Array<number>(n * m).fill(0));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      for (let k = 0; k < m; k++) for (let l = 0; l < m; l++) out[i * m + k]![j * m + l] = a[i]![j]! * b[k]![l]!;
  return out;
}

/** A x = b by Gaussian elimination with partial pivoting. */
export function solve(A: Mat, b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= M[r]![k]! * x[k]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

/** ||a - b|| / ||b||. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}
