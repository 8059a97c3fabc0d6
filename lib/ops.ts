/** Free-function forms of tensor ops (torch.add, torch.cat, ...), sampling, and process-wide settings. */
import { native } from './native.js';
import { BINARY } from './opcodes.js';
import { Tensor, wrap, type Device, type Scalar } from './tensor.js';
import { is, typeError } from './errors.js';
import { scalarTensor } from './creation.js';
import { isFloating, type DType } from './dtype.js';

/** The first argument of a free-function op (PyTorch's `input`), which must be a Tensor. */
function input(a: unknown): Tensor {
  if (!(a instanceof Tensor)) throw typeError('a Tensor', 'input', a);
  return a;
}
function tensors(list: unknown, name: string): Tensor[] {
  if (!Array.isArray(list) || list.length === 0 || list.some((t) => !(t instanceof Tensor)))
    throw typeError('a non-empty array of Tensors', name, list);
  return list as Tensor[];
}
/** A number as a 0-d tensor of the dtype PyTorch's promotion gives it next to `like` (or next to `other`, a number). */
function asTensor(x: Tensor | Scalar, like: Tensor | null, other: Tensor | Scalar, device: Device): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x !== 'number' && typeof x !== 'boolean') throw typeError('a Tensor or a number', 'value', x);
  let dtype: DType;
  if (like === null) {
    // two numbers: bool if both are booleans, float32 if either is fractional, else int64
    const both = [x, other];
    dtype = both.every((v) => typeof v === 'boolean')
      ? 'bool'
      : both.some((v) => typeof v === 'number' && !Number.isInteger(v))
        ? 'float32'
        : 'int64';
  } else
    dtype = typeof x === 'boolean' ? 'bool' : !Number.isInteger(x) && !isFloating(like.dtype) ? 'float32' : like.dtype;
  return scalarTensor(x, { dtype, device });
}

/** a + alpha * b. */
export const add = (a: Tensor, b: Tensor | Scalar, alpha?: number): Tensor => input(a).add(b, alpha);
/** a - alpha * b. */
export const sub = (a: Tensor, b: Tensor | Scalar, alpha?: number): Tensor => input(a).sub(b, alpha);
/** a * b, element-wise with broadcasting. */
export const mul = (a: Tensor, b: Tensor | Scalar): Tensor => input(a).mul(b);
/** a / b, element-wise with broadcasting (true division). */
export const div = (a: Tensor, b: Tensor | Scalar): Tensor => input(a).div(b);
/** a ** b, element-wise (either may be a number). */
export const pow = (a: Tensor | number, b: Tensor | Scalar): Tensor => {
  if (a instanceof Tensor) return a.pow(b);
  if (!(b instanceof Tensor)) throw typeError('a Tensor', 'exponent', b);
  return wrap(native.binaryScalar(BINARY.rpow, b._h, a));
};
/** Matrix product with broadcasting (`torch.matmul`). */
export const matmul = (a: Tensor, b: Tensor): Tensor => input(a).matmul(b);
/** Product of two matrices (`torch.mm`). */
export const mm = (a: Tensor, b: Tensor): Tensor => input(a).mm(b);
/** Batched matrix product of [B, n, m] and [B, m, p] (`torch.bmm`). */
export const bmm = (a: Tensor, b: Tensor): Tensor => input(a).bmm(b);
/** Outer product of two vectors. */
export const outer = (a: Tensor, b: Tensor): Tensor => input(a).outer(b);
/** Dot product of two vectors. */
export const dot = (a: Tensor, b: Tensor): Tensor => input(a).dot(b);
/** exp(a), element-wise. */
export const exp = (a: Tensor): Tensor => input(a).exp();
/** Natural logarithm, element-wise. */
export const log = (a: Tensor): Tensor => input(a).log();
/** Square root, element-wise. */
export const sqrt = (a: Tensor): Tensor => input(a).sqrt();
/** Absolute value, element-wise. */
export const abs = (a: Tensor): Tensor => input(a).abs();
/** -a. */
export const neg = (a: Tensor): Tensor => input(a).neg();
/** The sign of each element (-1, 0 or 1). */
export const sign = (a: Tensor): Tensor => input(a).sign();
/** Each element limited to [min, max] (either bound may be left out). */
export const clamp = (a: Tensor, min?: number | null, max?: number | null): Tensor => input(a).clamp(min, max);
/** The larger of a and b, element-wise. */
export const maximum = (a: Tensor, b: Tensor): Tensor => input(a).maximum(b);
/** The smaller of a and b, element-wise. */
export const minimum = (a: Tensor, b: Tensor): Tensor => input(a).minimum(b);
/** The sum of all elements, or along `dim`. */
export const sum = (a: Tensor, dim?: number | number[] | null, keepdim = false): Tensor => input(a).sum(dim, keepdim);
/** The mean of all elements, or along `dim`. */
export const mean = (a: Tensor, dim?: number | number[] | null, keepdim = false): Tensor => input(a).mean(dim, keepdim);
/** The same elements in another shape (-1: inferred). */
export const reshape = (a: Tensor, shape: number[]): Tensor => input(a).reshape(shape);
/** Swaps two dimensions. */
export const transpose = (a: Tensor, d0: number, d1: number): Tensor => input(a).transpose(d0, d1);
/** Flattens dimensions start..end into one. */
export const flatten = (a: Tensor, start = 0, end = -1): Tensor => input(a).flatten(start, end);
/** Whether |a - b| <= atol + rtol * |b| everywhere (`torch.allclose`). */
export const allclose = (a: Tensor, b: Tensor, opts?: { rtol?: number; atol?: number; equalNan?: boolean }): boolean =>
  input(a).allclose(b, opts);

/** Elementwise choice: cond ? a : b (numbers become 0-d tensors of the other operand's dtype). */
export function where(cond: Tensor, a: Tensor | Scalar, b: Tensor | Scalar): Tensor {
  if (!(cond instanceof Tensor)) throw typeError('a bool Tensor', 'condition', cond);
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const ta = asTensor(a, like, b, cond.device),
    tb = asTensor(b, like, a, cond.device);
  try {
    return wrap(native.where(cond._h, ta._h, tb._h));
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}

/** Joins tensors along an existing dimension (`torch.cat`). */
export function cat(list: Tensor[], dim = 0): Tensor {
  return wrap(
    native.cat(
      tensors(list, 'tensors').map((t) => t._h),
      is.integer(dim, 'dim'),
    ),
  );
}
/** Joins tensors of one shape along a new dimension (`torch.stack`). */
export function stack(list: Tensor[], dim = 0): Tensor {
  return wrap(
    native.stack(
      tensors(list, 'tensors').map((t) => t._h),
      is.integer(dim, 'dim'),
    ),
  );
}
/** Contraction over `dims` (a number n: the last n of a with the first n of b; or [dimsA, dimsB]). */
export function tensordot(a: Tensor, b: Tensor, dims: number | [number[], number[]] = 2): Tensor {
  if (!(a instanceof Tensor)) throw typeError('a Tensor', 'a', a);
  if (!(b instanceof Tensor)) throw typeError('a Tensor', 'b', b);
  let da: number[], db: number[];
  if (typeof dims === 'number') {
    is.nonNegativeInteger(dims, 'dims');
    const na = a.ndim;
    if (dims > na || dims > b.ndim)
      throw new RangeError(
        `tensordot expects dims (${dims}) <= the number of dimensions of a (${na}) and of b (${b.ndim})`,
      );
    da = Array.from({ length: dims }, (_, i) => na - dims + i);
    db = Array.from({ length: dims }, (_, i) => i);
  } else if (Array.isArray(dims) && dims.length === 2) {
    da = is.intArray(dims[0], 'dims[0]');
    db = is.intArray(dims[1], 'dims[1]');
  } else throw typeError('a number or [dimsA, dimsB]', 'dims', dims);
  return wrap(native.tensordot(a._h, b._h, da, db));
}
/** Einstein summation (`torch.einsum('ij,jk->ik', a, b)`). */
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return wrap(
    native.einsum(
      is.string(equation, 'equation'),
      tensors(operands, 'operands').map((t) => t._h),
    ),
  );
}

// ---------------------------------------------------------------- sampling
/** Draws 0/1 with probability `p` (a tensor of probabilities), or with a fixed probability `prob` in the shape of p. */
export function bernoulli(p: Tensor, prob?: number): Tensor {
  if (!(p instanceof Tensor)) throw typeError('a Tensor', 'input', p);
  if (prob !== undefined) is.inRange(prob, 'p', 0, 1);
  return wrap(native.bernoulli(p._h, prob));
}
/** Draws `numSamples` category indices per row of non-negative weights. */
export function multinomial(probs: Tensor, numSamples: number, replacement = false): Tensor {
  if (!(probs instanceof Tensor)) throw typeError('a Tensor', 'input', probs);
  return wrap(
    native.multinomial(probs._h, is.positiveInteger(numSamples, 'numSamples'), is.boolean(replacement, 'replacement')),
  );
}
/** Normal samples with elementwise mean and std (either may be a number). */
export function normal(mean: Tensor | number, std: Tensor | number): Tensor {
  const mt = mean instanceof Tensor,
    st = std instanceof Tensor;
  if (!mt && !st)
    throw new TypeError('normal(): at least one of mean and std must be a Tensor (use randn for a shape)');
  if (!mt) is.finite(mean, 'mean');
  if (!st) is.nonNegative(std, 'std');
  return wrap(
    native.normal(mt, st, mt ? (mean as Tensor)._h : (mean as number), st ? (std as Tensor)._h : (std as number)),
  );
}

// ---------------------------------------------------------------- settings
/** Seeds libtorch's CPU (and CUDA) generators: runs become reproducible. */
export function manualSeed(seed: number): void {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0)
    throw typeError('a non-negative integer', 'seed', seed);
  // PyTorch takes a uint64 seed and raises "Overflow when unpacking long" above it
  if (seed >= 2 ** 64)
    throw new RangeError(`manualSeed: seed ${seed} does not fit in 64 bits (PyTorch: Overflow when unpacking long)`);
  native.manualSeed(seed);
}
/** Intra-op threads used by libtorch (process-wide). The default is every core. */
export function setNumThreads(n: number): void {
  native.setNumThreads(is.positiveInteger(n, 'n'));
}
/** libtorch's intra-op threads (`torch.get_num_threads`). */
export function getNumThreads(): number {
  return native.getNumThreads();
}
/**
 * libtorch version the addon was built against, and its parallel configuration; where libtorch's matrix products
 * run on OpenBLAS (Debian), its configuration (`blas`), the kernel set it chose (`blasCore`) and the threads of its
 * pool (`blasThreads`: OPENBLAS_NUM_THREADS as it was when the library loaded, else one per core;
 * `setNumThreads` does not change it).
 */
export function versions(): {
  torch: string;
  parallel: string;
  blas?: string;
  blasCore?: string;
  blasThreads?: number;
} {
  return native.versions();
}
/**
 * Runs the BLAS/LAPACK self-check now (small sgemm, dgemm, ssyrk, dsyrk, ssymm, dsymm, spotrf, dpotrf against plain
 * loops in double) and returns each kernel's relative error: ~1e-7 in float32 and ~1e-16 in float64 when the kernels
 * compute right. The library runs it once at load when it chose OPENBLAS_CORETYPE itself, and warns on a failure.
 */
export function blasSelfCheck(): Record<string, number> {
  return native.blasSelfCheck(false)!;
}

/** CUDA: `isAvailable()` and `deviceCount()`, as `torch.cuda`. */
export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
};
