import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { scoped, expectTorchError } from './support/helpers.js';
import { T, expectNd, rnd, nd, matmul, permute, type Nd } from './support/reference.js';

const L = torch.linalg;

/** A random orthogonal matrix: modified Gram-Schmidt, run twice for float64 orthogonality, on LCG columns. */
function orthogonal(n: number, seed: number): Nd {
  const a = rnd([n, n], seed);
  const cols = Array.from({ length: n }, (_, j) => Array.from({ length: n }, (_, i) => a.data[i * n + j]!));
  for (let pass = 0; pass < 2; pass++)
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < j; k++) {
        const d = cols[j]!.reduce((s, v, i) => s + v * cols[k]![i]!, 0);
        cols[j] = cols[j]!.map((v, i) => v - d * cols[k]![i]!);
      }
      const norm = Math.hypot(...cols[j]!);
      cols[j] = cols[j]!.map((v) => v / norm);
    }
  return nd([n, n], (_, [i, j]) => cols[j!]![i!]!);
}

/** Q diag(f(lambda)) Q^T in float64. */
function spectral(q: Nd, lambda: number[], f: (l: number) => number = (l) => l): Nd {
  const n = lambda.length;
  return nd([n, n], (_, [i, j]) => lambda.reduce((s, l, k) => s + q.data[i! * n + k]! * f(l) * q.data[j! * n + k]!, 0));
}

/** Textbook Cholesky-Banachiewicz in float64. */
function choleskyRef(a: Nd): Nd {
  const n = a.shape[0]!;
  const l = new Array<number>(n * n).fill(0);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a.data[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(s) : s / l[j * n + j]!;
    }
  return { shape: [n, n], data: l };
}

/** Gaussian elimination with partial pivoting: X with A X = B. */
function solveRef(a: Nd, b: Nd): Nd {
  const n = a.shape[0]!,
    m = b.shape[1]!;
  const A = Array.from({ length: n }, (_, i) => a.data.slice(i * n, (i + 1) * n));
  const B = Array.from({ length: n }, (_, i) => b.data.slice(i * m, (i + 1) * m));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[p]![c]!)) p = r;
    [A[c], A[p]] = [A[p]!, A[c]!];
    [B[c], B[p]] = [B[p]!, B[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = A[r]![c]! / A[c]![c]!;
      for (let k = c; k < n; k++) A[r]![k]! -= f * A[c]![k]!;
      for (let k = 0; k < m; k++) B[r]![k]! -= f * B[c]![k]!;
    }
  }
  const X = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  for (let r = n - 1; r >= 0; r--)
    for (let k = 0; k < m; k++) {
      let s = B[r]![k]!;
      for (let c = r + 1; c < n; c++) s -= A[r]![c]! * X[c]![k]!;
      X[r]![k] = s / A[r]![r]!;
    }
  return { shape: [n, m], data: X.flat() };
}

const maxAbs = (a: Nd): number => Math.max(...a.data.map(Math.abs));

// A spectrum spanning 4.6 decades (condition number 4e4): a wrong exponent or a transposed factor cannot pass.
const LAMBDA = [1e-2, 0.3, 2, 15, 400];
const Q = orthogonal(5, 7);
const A = spectral(Q, LAMBDA);
const AINV = spectral(Q, LAMBDA, (l) => 1 / l);

describe('the reference matrices', () => {
  it('Q is orthogonal and A is symmetric', () => {
    const qtq = matmul(permute(Q, [1, 0]), Q);
    qtq.data.forEach((v, k) => expect(Math.abs(v - (k % 6 === 0 ? 1 : 0))).toBeLessThan(1e-14));
    expect(
      maxAbs({ shape: A.shape, data: A.data.map((v, k) => v - A.data[(k % 5) * 5 + Math.floor(k / 5)]!) }),
    ).toBeLessThan(1e-12);
  });
});

describe('cholesky and choleskyInverse', () => {
  it('L is lower triangular, matches a float64 Cholesky and reconstructs A', () =>
    scoped(() => {
      const l = L.cholesky(T(A));
      expect(l.shape).toEqual([5, 5]);
      const ld = l.dataSync();
      for (let i = 0; i < 5; i++) for (let j = i + 1; j < 5; j++) expect(ld[i * 5 + j]).toBe(0);
      for (let i = 0; i < 5; i++) expect(ld[i * 6]).toBeGreaterThan(0);
      expectNd(l, choleskyRef(A), { atol: 1e-12 * Math.sqrt(maxAbs(A)), rtol: 1e-10 });
      expectNd(l.matmul(l.mT), A, { atol: 1e-12 * maxAbs(A), rtol: 0 });
    }));
  it('upper: U = L^T and U^T U = A', () =>
    scoped(() => {
      const u = L.cholesky(T(A), { upper: true });
      expectNd(u, permute(choleskyRef(A), [1, 0]), { atol: 1e-12 * Math.sqrt(maxAbs(A)), rtol: 1e-10 });
      expectNd(u.mT.matmul(u), A, { atol: 1e-12 * maxAbs(A), rtol: 0 });
    }));
  it('choleskyInverse(L) is Q diag(1/lambda) Q^T', () =>
    scoped(() => {
      // forward error of an inverse ~ cond(A) * eps * |A^-1| = 4e4 * 1.1e-16 * 100
      const tol = { atol: 1e-9, rtol: 0 };
      expectNd(L.choleskyInverse(L.cholesky(T(A))), AINV, tol);
      expectNd(L.choleskyInverse(L.cholesky(T(A), { upper: true }), { upper: true }), AINV, tol);
      const b = rnd([5, 2], 8);
      expectNd(L.choleskySolve(T(b), L.cholesky(T(A))), matmul(AINV, b), tol);
    }));
  it('works on batches and in float32', () =>
    scoped(() => {
      const A2 = spectral(orthogonal(5, 9), [0.5, 1, 3, 7, 20]);
      const batch = torch.stack([T(A), T(A2)]);
      const l = L.cholesky(batch);
      expect(l.shape).toEqual([2, 5, 5]);
      expectNd(l.index(0), choleskyRef(A), { atol: 1e-12 * Math.sqrt(maxAbs(A)), rtol: 1e-10 });
      expectNd(l.index(1), choleskyRef(A2), { atol: 1e-13 * Math.sqrt(maxAbs(A2)), rtol: 1e-10 });
      // float32: cond(A2) = 40, so the factor is good to ~40 * 6e-8 relative
      const l32 = L.cholesky(T(A2, { dtype: 'float32' }));
      expect(l32.dtype).toBe('float32');
      expectNd(l32, choleskyRef(A2), { atol: 1e-5 * Math.sqrt(maxAbs(A2)), rtol: 1e-5 });
    }));
});

describe('inv, solve, eigh, det', () => {
  it('inv(A) is Q diag(1/lambda) Q^T and A inv(A) = I', () =>
    scoped(() => {
      const ai = L.inv(T(A));
      expectNd(ai, AINV, { atol: 1e-9, rtol: 0 });
      expectNd(
        T(A).matmul(ai),
        nd([5, 5], (_, [i, j]) => (i === j ? 1 : 0)),
        { atol: 1e-11, rtol: 0 },
      );
    }));
  it('solve on the SPD matrix and on a general non-symmetric matrix', () =>
    scoped(() => {
      const b = rnd([5, 3], 10);
      expectNd(L.solve(T(A), T(b)), matmul(AINV, b), { atol: 1e-9, rtol: 0 });
      const R = rnd([4, 4], 11);
      const G = nd([4, 4], (k, [i, j]) => R.data[k]! + (i === j ? 3 : 0) + (j === 3 ? 1 : 0));
      const bg = rnd([4, 2], 12);
      const x = L.solve(T(G), T(bg));
      expectNd(x, solveRef(G, bg), { atol: 1e-13, rtol: 1e-12 });
      expectNd(T(G).matmul(x), bg, { atol: 1e-13, rtol: 1e-12 });
    }));
  it('eigh: eigenvalues ascending, eigenvectors orthonormal, A V = V diag(w)', () =>
    scoped(() => {
      const { eigenvalues, eigenvectors } = L.eigh(T(A));
      expectNd(eigenvalues, { shape: [5], data: LAMBDA }, { atol: 1e-11, rtol: 1e-12 });
      const v = eigenvectors;
      expectNd(
        v.mT.matmul(v),
        nd([5, 5], (_, [i, j]) => (i === j ? 1 : 0)),
        { atol: 1e-13, rtol: 0 },
      );
      expectNd(T(A).matmul(v), mulCols(v.dataSync(), LAMBDA), { atol: 1e-11, rtol: 0 });
      // each eigenvector is +-the column of Q with the same eigenvalue (the eigenvalues are well separated)
      const vd = v.dataSync();
      for (let k = 0; k < 5; k++) {
        const dot = [0, 1, 2, 3, 4].reduce((s, i) => s + vd[i * 5 + k]! * Q.data[i * 5 + k]!, 0);
        expect(Math.abs(Math.abs(dot) - 1)).toBeLessThan(1e-12);
      }
      // the upper triangle gives the same answer for a symmetric matrix
      expectNd(L.eigh(T(A), { uplo: 'U' }).eigenvalues, { shape: [5], data: LAMBDA }, { atol: 1e-11, rtol: 1e-12 });
      expectNd(L.eigvalsh(T(A)), { shape: [5], data: LAMBDA }, { atol: 1e-11, rtol: 1e-12 });
    }));
  it('det is the product of the eigenvalues, slogdet its sign and log', () =>
    scoped(() => {
      const prod = LAMBDA.reduce((a, b) => a * b, 1);
      expectNd(L.det(T(A)), { shape: [], data: [prod] }, { atol: 0, rtol: 1e-10 });
      const { sign, logabsdet } = L.slogdet(T(A));
      expect(sign.item()).toBe(1);
      expectNd(
        logabsdet,
        { shape: [], data: [LAMBDA.reduce((s, l) => s + Math.log(l), 0)] },
        { atol: 1e-12, rtol: 1e-12 },
      );
    }));
});

/** V diag(w): column k of V scaled by w[k]. */
function mulCols(v: number[], w: number[]): Nd {
  const n = w.length;
  return nd([n, n], (k, [, j]) => v[k]! * w[j!]!);
}

describe('invalid arguments', () => {
  it('an indefinite matrix -> TorchError NOT_POSITIVE_DEFINITE; choleskyEx reports it in info', () =>
    scoped(() => {
      const indefinite = spectral(orthogonal(4, 13), [3, -0.5, 2, 1]);
      expectTorchError(
        () => L.cholesky(T(indefinite)),
        'NOT_POSITIVE_DEFINITE',
        /^linalg\.cholesky: The factorization could not be completed because the input is not positive-definite \(the leading minor of order [1-4] is not positive-definite\)\.$/,
      );
      const diag = torch.tensor(
        [
          [2, 0, 0],
          [0, -1, 0],
          [0, 0, 3],
        ],
        { dtype: 'float64' },
      );
      expectTorchError(
        () => L.cholesky(diag),
        'NOT_POSITIVE_DEFINITE',
        'linalg.cholesky: The factorization could not be completed because the input is not positive-definite (the leading minor of order 2 is not positive-definite).',
      );
      expect(L.choleskyEx(diag).info.item()).toBe(2);
      expect(L.choleskyEx(T(A)).info.item()).toBe(0);
      const batch = torch.stack([torch.eye(3, { dtype: 'float64' }), diag]);
      expectTorchError(
        () => L.cholesky(batch),
        'NOT_POSITIVE_DEFINITE',
        'linalg.cholesky: (Batch element 1): The factorization could not be completed because the input is not positive-definite (the leading minor of order 2 is not positive-definite).',
      );
    }));
  it('a singular matrix -> TorchError SINGULAR', () =>
    scoped(() => {
      const s = torch.tensor(
        [
          [1, 2],
          [2, 4],
        ],
        { dtype: 'float64' },
      );
      expectTorchError(
        () => L.inv(s),
        'SINGULAR',
        'linalg.inv: The diagonal element 2 is zero, the inversion could not be completed because the input matrix is singular.',
      );
      expectTorchError(
        () => L.solve(s, torch.ones([2, 1], { dtype: 'float64' })),
        'SINGULAR',
        'torch.linalg.solve: The solver failed because the input matrix is singular.',
      );
    }));
  it('shape and dtype errors keep libtorch messages', () =>
    scoped(() => {
      expectTorchError(
        () => L.cholesky(torch.zeros(2, 3)),
        null,
        'linalg.cholesky: A must be batches of square matrices, but they are 2 by 3 matrices',
      );
      expectTorchError(
        () => L.inv(torch.zeros(2, 3)),
        null,
        'linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices',
      );
      expectTorchError(
        () => L.eigh(torch.zeros(2, 3)),
        null,
        'linalg.eigh: A must be batches of square matrices, but they are 2 by 3 matrices',
      );
      expectTorchError(
        () => L.solve(torch.eye(2), torch.ones(3)),
        'SHAPE_MISMATCH',
        'linalg.solve: Incompatible shapes of A and B for the equation AX = B (2x2 and 3x1)',
      );
      expectTorchError(
        () => L.solve(torch.eye(2), torch.ones([2], { dtype: 'float64' })),
        'DTYPE_MISMATCH',
        'linalg.solve: Expected A and B to have the same dtype, but found A of type Float and B of type Double instead',
      );
      expectTorchError(
        () => L.cholesky(torch.eye(2, { dtype: 'int64' })),
        null,
        'linalg.cholesky: Expected a floating point or complex tensor as input. Got Long',
      );
    }));
  it('non-tensor arguments -> TypeError naming the argument', () =>
    scoped(() => {
      expect(() => L.cholesky('x' as never)).toThrow(
        new TypeError('Expected a Tensor for A but received "x" of type string'),
      );
      expect(() => L.inv(null as never)).toThrow(
        new TypeError('Expected a Tensor for A but received null of type null'),
      );
      expect(() => L.solve(torch.eye(2), 'b' as never)).toThrow(
        new TypeError('Expected a Tensor for B but received "b" of type string'),
      );
      expect(() => L.choleskyInverse(5 as never)).toThrow(
        new TypeError('Expected a Tensor for L but received 5 of type number'),
      );
      expect(() => L.eigh([[1]] as never)).toThrow(
        new TypeError('Expected a Tensor for A but received [[1]] of type array'),
      );
    }));
});
