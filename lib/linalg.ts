/** torch.linalg (CPU LAPACK, cuSOLVER on CUDA). Inputs may be batched (..., n, n). */
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import { typeError } from './errors.js';

function T(x: unknown, name = 'A'): Tensor {
  if (!(x instanceof Tensor)) throw typeError('a Tensor', name, x);
  return x;
}

/** Lower (or upper) Cholesky factor of an SPD matrix; throws TorchError NOT_POSITIVE_DEFINITE otherwise. */
export const cholesky = (A: Tensor, { upper = false } = {}): Tensor => wrap(native.cholesky(T(A)._h, upper));
/** Cholesky without throwing: `info` is 0 on success, else the order of the leading minor that is not positive definite. */
export function choleskyEx(A: Tensor, { upper = false } = {}): { L: Tensor; info: Tensor } {
  const [l, i] = native.choleskyEx(T(A)._h, upper);
  return { L: wrap(l), info: wrap(i) };
}
/** Inverse of A from its Cholesky factor L (torch.cholesky_inverse). */
export const choleskyInverse = (L: Tensor, { upper = false } = {}): Tensor => wrap(native.choleskyInverse(T(L, 'L')._h, upper));
/** Solves A X = B from A's Cholesky factor L. */
export const choleskySolve = (B: Tensor, L: Tensor, { upper = false } = {}): Tensor => wrap(native.choleskySolve(T(B, 'B')._h, T(L, 'L')._h, upper));
export const inv = (A: Tensor): Tensor => wrap(native.inv(T(A)._h));
export const solve = (A: Tensor, B: Tensor): Tensor => wrap(native.solve(T(A)._h, T(B, 'B')._h));
/** Eigenvalues (ascending) and eigenvectors of a symmetric matrix. */
export function eigh(A: Tensor, { uplo = 'L' }: { uplo?: 'L' | 'U' } = {}): { eigenvalues: Tensor; eigenvectors: Tensor } {
  const [v, q] = native.eigh(T(A)._h, uplo === 'U');
  return { eigenvalues: wrap(v), eigenvectors: wrap(q) };
}
export const eigvalsh = (A: Tensor, { uplo = 'L' }: { uplo?: 'L' | 'U' } = {}): Tensor => wrap(native.eigvalsh(T(A)._h, uplo === 'U'));
export function svd(A: Tensor, { fullMatrices = true } = {}): { U: Tensor; S: Tensor; Vh: Tensor } {
  const [u, s, vh] = native.svd(T(A)._h, fullMatrices);
  return { U: wrap(u), S: wrap(s), Vh: wrap(vh) };
}
export function qr(A: Tensor, { mode = 'reduced' }: { mode?: 'reduced' | 'complete' } = {}): { Q: Tensor; R: Tensor } {
  const [q, r] = native.qr(T(A)._h, mode === 'complete');
  return { Q: wrap(q), R: wrap(r) };
}
export const det = (A: Tensor): Tensor => wrap(native.det(T(A)._h));
export function slogdet(A: Tensor): { sign: Tensor; logabsdet: Tensor } {
  const [s, l] = native.slogdet(T(A)._h);
  return { sign: wrap(s), logabsdet: wrap(l) };
}
export const matrixNorm = (A: Tensor, ord: 'fro' | 'nuc' = 'fro'): Tensor => wrap(native.matrixNorm(T(A)._h, ord));
