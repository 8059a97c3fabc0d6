/** torch.linalg (CPU LAPACK, cuSOLVER on CUDA). Inputs may be batched (..., n, n). */
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import { is, typeError } from './errors.js';

function T(x: unknown, name = 'A'): Tensor {
  if (!(x instanceof Tensor)) throw typeError('a Tensor', name, x);
  return x;
}
/** The `upper` option (false by default), from an options object that may be absent but not null. */
function upperOf(options: { upper?: boolean } | undefined): boolean {
  return is.boolean(is.options(options).upper ?? false, 'upper');
}
const uploOf = (options: { uplo?: 'L' | 'U' } | undefined): boolean =>
  is.oneOf(is.options(options).uplo ?? 'L', 'uplo', ['L', 'U'] as const) === 'U';

/** Lower (or upper) Cholesky factor of an SPD matrix; throws TorchError NOT_POSITIVE_DEFINITE otherwise. */
export const cholesky = (A: Tensor, options?: { upper?: boolean }): Tensor =>
  wrap(native.cholesky(T(A)._h, upperOf(options)));
/** Cholesky without throwing: `info` is 0 on success, else the order of the leading minor that is not positive definite. */
export function choleskyEx(A: Tensor, options?: { upper?: boolean }): { L: Tensor; info: Tensor } {
  const [l, i] = native.choleskyEx(T(A)._h, upperOf(options));
  return { L: wrap(l), info: wrap(i) };
}
/** Inverse of A from its Cholesky factor L (torch.cholesky_inverse). */
export const choleskyInverse = (L: Tensor, options?: { upper?: boolean }): Tensor =>
  wrap(native.choleskyInverse(T(L, 'L')._h, upperOf(options)));
/** Solves A X = B from A's Cholesky factor L. */
export const choleskySolve = (B: Tensor, L: Tensor, options?: { upper?: boolean }): Tensor =>
  wrap(native.choleskySolve(T(B, 'B')._h, T(L, 'L')._h, upperOf(options)));
/** The inverse of a square matrix (or a batch of them): `torch.linalg.inv`. */
export const inv = (A: Tensor): Tensor => wrap(native.inv(T(A)._h));
/** X with A X = B (`torch.linalg.solve`). */
export const solve = (A: Tensor, B: Tensor): Tensor => wrap(native.solve(T(A)._h, T(B, 'B')._h));
/** Eigenvalues (ascending) and eigenvectors of a symmetric matrix. */
export function eigh(A: Tensor, options?: { uplo?: 'L' | 'U' }): { eigenvalues: Tensor; eigenvectors: Tensor } {
  const [v, q] = native.eigh(T(A)._h, uploOf(options));
  return { eigenvalues: wrap(v), eigenvectors: wrap(q) };
}
/** Eigenvalues of a symmetric (Hermitian) matrix, ascending (`torch.linalg.eigvalsh`). */
export const eigvalsh = (A: Tensor, options?: { uplo?: 'L' | 'U' }): Tensor =>
  wrap(native.eigvalsh(T(A)._h, uploOf(options)));
/** Singular value decomposition A = U diag(S) Vh (`torch.linalg.svd`); `fullMatrices` as PyTorch's `full_matrices`. */
export function svd(A: Tensor, options?: { fullMatrices?: boolean }): { U: Tensor; S: Tensor; Vh: Tensor } {
  const fullMatrices = is.boolean(is.options(options).fullMatrices ?? true, 'fullMatrices');
  const [u, s, vh] = native.svd(T(A)._h, fullMatrices);
  return { U: wrap(u), S: wrap(s), Vh: wrap(vh) };
}
/** QR decomposition A = Q R (`torch.linalg.qr`), mode 'reduced' (default) or 'complete'. */
export function qr(A: Tensor, options: { mode?: 'reduced' | 'complete' } = {}): { Q: Tensor; R: Tensor } {
  const mode = is.oneOf(is.options(options).mode ?? 'reduced', 'mode', ['reduced', 'complete'] as const);
  const [q, r] = native.qr(T(A)._h, mode === 'complete');
  return { Q: wrap(q), R: wrap(r) };
}
/** The determinant (`torch.linalg.det`). */
export const det = (A: Tensor): Tensor => wrap(native.det(T(A)._h));
/** Sign and log of the absolute value of the determinant (`torch.linalg.slogdet`). */
export function slogdet(A: Tensor): { sign: Tensor; logabsdet: Tensor } {
  const [s, l] = native.slogdet(T(A)._h);
  return { sign: wrap(s), logabsdet: wrap(l) };
}
/** A matrix norm: 'fro' (Frobenius, default) or 'nuc' (nuclear): `torch.linalg.matrix_norm`. */
export const matrixNorm = (A: Tensor, ord: 'fro' | 'nuc' = 'fro'): Tensor =>
  wrap(native.matrixNorm(T(A)._h, is.oneOf(ord, 'ord', ['fro', 'nuc'] as const)));
