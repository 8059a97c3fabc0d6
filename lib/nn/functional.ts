/** torch.nn.functional: layers and losses as functions of tensors. */
import { native } from '../native.js';
import { INTERPOLATE, LOSS_REDUCTION, type LossReduction, type LossReductionCode } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { is, typeError, TorchError } from '../errors.js';

/** How a loss reduces over the batch: 'mean', 'sum' or 'none'. */
export type Reduction = LossReduction;
function red(r: unknown): LossReductionCode {
  return LOSS_REDUCTION[is.oneOf(r, 'reduction', ['none', 'mean', 'sum'] as const)];
}
function T(x: unknown, name: string): Tensor {
  if (!(x instanceof Tensor)) throw typeError('a Tensor', name, x);
  return x;
}
function optT(x: unknown, name: string): number | null {
  if (x === undefined || x === null) return null;
  return T(x, name)._h;
}
/** An int or a pair, as PyTorch's _pair. */
export function pair(v: number | number[], name: string, min = 0): number[] {
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || arr.some((x) => typeof x !== 'number' || !Number.isInteger(x)))
    throw typeError(`an integer >= ${min} or a pair of them`, name, v);
  // the right type but out of range (a stride of 0, a negative padding): RangeError, as everywhere else
  if (arr.some((x) => x < min))
    throw new RangeError(`Expected ${name} to be >= ${min} but received ${JSON.stringify(v)}`);
  return arr;
}

/** max(x, 0), element-wise. */
export const relu = (x: Tensor): Tensor => T(x, 'input').relu();
/** 1 / (1 + exp(-x)), element-wise. */
export const sigmoid = (x: Tensor): Tensor => T(x, 'input').sigmoid();
/** tanh(x), element-wise. */
export const tanh = (x: Tensor): Tensor => T(x, 'input').tanh();
/** Gaussian error linear unit; `approximate: 'tanh'` for the tanh approximation. */
export const gelu = (x: Tensor, opts?: { approximate?: 'none' | 'tanh' }): Tensor => T(x, 'input').gelu(opts);
/** x * sigmoid(x) (SiLU, swish). */
export const silu = (x: Tensor): Tensor => T(x, 'input').silu();
/** x for x > 0, negativeSlope * x otherwise. */
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => T(x, 'input').leakyRelu(negativeSlope);
/** x for x > 0, alpha * (exp(x) - 1) otherwise. */
export const elu = (x: Tensor, alpha = 1): Tensor => wrap(native.elu(T(x, 'input')._h, is.finite(alpha, 'alpha')));
/** log(1 + exp(x)), element-wise. */
export const softplus = (x: Tensor): Tensor => T(x, 'input').softplus();
/** Softmax along `dim`. */
export const softmax = (x: Tensor, dim: number): Tensor => T(x, 'input').softmax(dim);
/** log(softmax(x)) along `dim`, computed stably. */
export const logSoftmax = (x: Tensor, dim: number): Tensor => T(x, 'input').logSoftmax(dim);

/** y = x W^T + b; x (*, in), weight (out, in), bias (out). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(native.linear(T(x, 'input')._h, T(weight, 'weight')._h, optT(bias, 'bias')));
}

/** Options of `conv2d`: stride, padding (numbers or 'same' / 'valid'), dilation, groups. */
export interface Conv2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}
/** 2-d convolution: x (N, C, H, W), weight (out, C/groups, kh, kw). */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  o = is.options(o);
  return wrap(
    native.conv2d(
      T(x, 'input')._h,
      T(weight, 'weight')._h,
      optT(bias, 'bias'),
      pair(o.stride ?? 1, 'stride', 1),
      pair(o.padding ?? 0, 'padding'),
      pair(o.dilation ?? 1, 'dilation', 1),
      is.positiveInteger(o.groups ?? 1, 'groups'),
    ),
  );
}

/** Options of the pooling functions: stride (default: the kernel size), padding, dilation and ceilMode (max pooling), ceilMode and countIncludePad (average pooling). */
export interface PoolOptions {
  stride?: number | number[] | null;
  padding?: number | number[];
  dilation?: number | number[];
  ceilMode?: boolean;
  countIncludePad?: boolean;
}
/** 2-D max pooling over [N, C, H, W] (`F.max_pool2d`). */
export function maxPool2d(x: Tensor, kernelSize: number | number[], o: PoolOptions = {}): Tensor {
  o = is.options(o);
  const k = pair(kernelSize, 'kernelSize', 1);
  return wrap(
    native.maxPool2d(
      T(x, 'input')._h,
      k,
      o.stride == null ? k : pair(o.stride, 'stride', 1),
      pair(o.padding ?? 0, 'padding'),
      pair(o.dilation ?? 1, 'dilation', 1),
      o.ceilMode === true,
    ),
  );
}
/** 2-D average pooling over [N, C, H, W] (`F.avg_pool2d`). */
export function avgPool2d(x: Tensor, kernelSize: number | number[], o: PoolOptions = {}): Tensor {
  o = is.options(o);
  const k = pair(kernelSize, 'kernelSize', 1);
  return wrap(
    native.avgPool2d(
      T(x, 'input')._h,
      k,
      o.stride == null ? k : pair(o.stride, 'stride', 1),
      pair(o.padding ?? 0, 'padding'),
      o.ceilMode === true,
      o.countIncludePad !== false,
    ),
  );
}
/** Average pooling to a fixed output size (`F.adaptive_avg_pool2d`). */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  return wrap(native.adaptiveAvgPool2d(T(x, 'input')._h, pair(outputSize, 'outputSize', 1)));
}

/** Options of `batchNorm`: weight, bias, training, momentum, eps. */
export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch normalisation over dim 1; running statistics (when given) are updated in place while training. */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: BatchNormOptions = {},
): Tensor {
  o = is.options(o);
  return wrap(
    native.batchNorm(
      T(x, 'input')._h,
      optT(runningMean, 'runningMean'),
      optT(runningVar, 'runningVar'),
      optT(o.weight, 'weight'),
      optT(o.bias, 'bias'),
      o.training === true,
      is.inRange(o.momentum ?? 0.1, 'momentum', 0, 1),
      is.positive(o.eps ?? 1e-5, 'eps'),
    ),
  );
}
/** Layer normalisation over the last dimensions (`F.layer_norm`). */
export function layerNorm(
  x: Tensor,
  normalizedShape: number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  return wrap(
    native.layerNorm(
      T(x, 'input')._h,
      is.shape(normalizedShape, 'normalizedShape'),
      optT(weight, 'weight'),
      optT(bias, 'bias'),
      is.positive(eps, 'eps'),
    ),
  );
}
/** Zeroes elements with probability p while training and scales the rest by 1/(1-p). */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  return wrap(native.dropout(T(x, 'input')._h, is.inRange(p, 'p', 0, 1), training === true));
}
/**
 * Rows of `weight` (numEmbeddings, embeddingDim) picked by the integer `input` (any shape): output (*, embeddingDim).
 * The row `paddingIdx` (when given; negative counts from the end) gets no gradient, as torch.nn.functional.embedding.
 */
export function embedding(input: Tensor, weight: Tensor, options: { paddingIdx?: number | null } = {}): Tensor {
  const { paddingIdx = null } = is.options(options);
  const w = T(weight, 'weight');
  let pad: number | null = null;
  if (paddingIdx !== null) {
    const n = w.shape[0] ?? 0;
    is.integer(paddingIdx, 'paddingIdx');
    if (paddingIdx >= n || paddingIdx < -n)
      throw new RangeError(`paddingIdx must be within the ${n} embeddings ([-${n}, ${n})), got ${paddingIdx}`);
    pad = paddingIdx < 0 ? paddingIdx + n : paddingIdx;
  }
  return wrap(native.embedding(w._h, T(input, 'input')._h, pad));
}

/** Options of `scaledDotProductAttention` (`F.scaled_dot_product_attention`): attnMask, dropoutP, isCausal, scale. */
export interface ScaledDotProductAttentionOptions {
  /** Boolean: which entries take part (true); floating point: added to the scores. Broadcasts to (*, L, S). */
  attnMask?: Tensor | null;
  /** Dropout on the attention weights (applied only when `training`, default true as PyTorch's functional). */
  dropoutP?: number;
  /** Masks every key after the query's position (top-left aligned lower triangle). */
  isCausal?: boolean;
  /** Multiplies q k^T; default 1 / sqrt(E). */
  scale?: number | null;
  /** Whether dropout applies (default true, as torch.nn.functional's). */
  training?: boolean;
}
/**
 * softmax(q k^T * scale + mask) v for query (*, L, E), key (*, S, E), value (*, S, Ev): output (*, L, Ev), as
 * torch.nn.functional.scaled_dot_product_attention (PyTorch 2.x) computes it on its math path. One native call.
 * A row whose every entry is masked is NaN, as PyTorch's.
 */
export function scaledDotProductAttention(
  query: Tensor,
  key: Tensor,
  value: Tensor,
  options: ScaledDotProductAttentionOptions = {},
): Tensor {
  const [out] = attention(query, key, value, options, false);
  return out!;
}
/** @internal scaledDotProductAttention with the attention weights when `needWeights` (MultiheadAttention's). */
export function attention(
  query: Tensor,
  key: Tensor,
  value: Tensor,
  options: ScaledDotProductAttentionOptions,
  needWeights: boolean,
): Tensor[] {
  const { attnMask = null, dropoutP = 0, isCausal = false, scale = null, training = true } = is.options(options);
  const scl = scale === null ? NaN : is.positive(scale, 'scale');
  return native
    .sdpa(
      T(query, 'query')._h,
      T(key, 'key')._h,
      T(value, 'value')._h,
      optT(attnMask, 'attnMask'),
      is.inRange(dropoutP, 'dropoutP', 0, 1),
      is.boolean(training, 'training'),
      is.boolean(isCausal, 'isCausal'),
      scl,
      needWeights,
    )
    .map((h) => wrap(h));
}
/** Sliding local blocks (im2col): x (N, C, H, W) -> (N, C*kh*kw, L). */
export function unfold(
  x: Tensor,
  kernelSize: number | number[],
  o: { dilation?: number | number[]; padding?: number | number[]; stride?: number | number[] } = {},
): Tensor {
  o = is.options(o);
  return wrap(
    native.unfold(
      T(x, 'input')._h,
      pair(kernelSize, 'kernelSize', 1),
      pair(o.dilation ?? 1, 'dilation', 1),
      pair(o.padding ?? 0, 'padding'),
      pair(o.stride ?? 1, 'stride', 1),
    ),
  );
}
/** Resizes (N, C, H, W) images to `size`; 'bilinear' with antialias matches torchvision's Resize. */
export function interpolate(
  x: Tensor,
  size: number | number[],
  options: { mode?: 'nearest' | 'bilinear'; alignCorners?: boolean; antialias?: boolean } = {},
): Tensor {
  const { mode = 'bilinear', alignCorners = false, antialias = false } = is.options(options);
  is.oneOf(mode, 'mode', ['nearest', 'bilinear'] as const);
  return wrap(
    native.interpolate(
      T(x, 'input')._h,
      pair(size, 'size', 1),
      INTERPOLATE[mode === 'nearest' ? 'nearest' : antialias ? 'bilinearAntialias' : 'bilinear'],
      alignCorners,
    ),
  );
}
/** Constant padding; `pad` lists (left, right) pairs from the last dimension backwards, as torch.nn.functional.pad. */
export function pad(x: Tensor, padding: number[], value = 0): Tensor {
  if (!Array.isArray(padding) || padding.length % 2 !== 0)
    throw typeError('an even-length array of integers', 'pad', padding);
  return wrap(native.pad(T(x, 'input')._h, is.intArray(padding, 'pad'), is.finite(value, 'value')));
}

// ---------------------------------------------------------------- losses
/** Options of the binary cross-entropy losses: `reduction` and a per-element `weight`. */
export interface LossOptions {
  reduction?: Reduction;
  weight?: Tensor | null;
}
/** Cross-entropy on logits (N, C) with class indices (N) (or probabilities (N, C)). */
/**
 * libtorch's error for class-index targets that are not int64, with what to do: labels made from JS numbers are
 * float32 unless asked otherwise (a float target of the input's shape is fine: it holds class probabilities).
 */
function withTargetHint<R>(fn: string, target: Tensor, call: () => R): R {
  try {
    return call();
  } catch (err) {
    const dtype = target.isDisposed ? 'int64' : target.dtype;
    if (!(err instanceof TorchError) || err.code !== 'DTYPE_MISMATCH' || dtype === 'int64') throw err;
    const probabilities =
      fn === 'crossEntropy'
        ? '; a floating-point target of the same shape as the input holds class probabilities instead'
        : '';
    throw new TorchError(
      `${err.message}. ${fn}: target holds class indices and must be int64, but it is ${dtype}: create it with ` +
        `{ dtype: 'int64' } (torch.tensor(labels, { dtype: 'int64' })) or convert it with target.long()${probabilities}`,
      'DTYPE_MISMATCH',
    );
  }
}
/**
 * Cross-entropy of logits `input` (N, C) or (N, C, d1, ...) against class indices (int64, (N) or (N, d1, ...)) or
 * class probabilities (floating point, the input's shape), as torch.nn.functional.cross_entropy.
 */
export function crossEntropy(
  input: Tensor,
  target: Tensor,
  o: LossOptions & { ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  o = is.options(o);
  const x = T(input, 'input'),
    t = T(target, 'target'),
    w = optT(o.weight, 'weight'),
    r = red(o.reduction ?? 'mean');
  const ignore = is.integer(o.ignoreIndex ?? -100, 'ignoreIndex'),
    smoothing = is.inRange(o.labelSmoothing ?? 0, 'labelSmoothing', 0, 1);
  return withTargetHint('crossEntropy', t, () => wrap(native.crossEntropy(x._h, t._h, w, r, ignore, smoothing)));
}
/** Negative log-likelihood of log-probabilities `input` (N, C) against class indices (int64). */
export function nllLoss(input: Tensor, target: Tensor, o: LossOptions & { ignoreIndex?: number } = {}): Tensor {
  o = is.options(o);
  const x = T(input, 'input'),
    t = T(target, 'target'),
    w = optT(o.weight, 'weight'),
    r = red(o.reduction ?? 'mean');
  const ignore = is.integer(o.ignoreIndex ?? -100, 'ignoreIndex');
  return withTargetHint('nllLoss', t, () => wrap(native.nllLoss(x._h, t._h, w, r, ignore)));
}
/** Binary cross-entropy on logits (`F.binary_cross_entropy_with_logits`), with `posWeight` and `weight`. */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  o: LossOptions & { posWeight?: Tensor | null } = {},
): Tensor {
  o = is.options(o);
  return wrap(
    native.bceWithLogits(
      T(input, 'input')._h,
      T(target, 'target')._h,
      optT(o.weight, 'weight'),
      optT(o.posWeight, 'posWeight'),
      red(o.reduction ?? 'mean'),
    ),
  );
}
/** Binary cross-entropy on probabilities (`F.binary_cross_entropy`). */
export function binaryCrossEntropy(input: Tensor, target: Tensor, o: LossOptions = {}): Tensor {
  o = is.options(o);
  return wrap(
    native.bce(T(input, 'input')._h, T(target, 'target')._h, optT(o.weight, 'weight'), red(o.reduction ?? 'mean')),
  );
}
/** Mean squared error (`F.mse_loss`). */
export function mseLoss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  o = is.options(o);
  return wrap(native.mseLoss(T(input, 'input')._h, T(target, 'target')._h, red(o.reduction ?? 'mean')));
}
/** Mean absolute error (`F.l1_loss`). */
export function l1Loss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  o = is.options(o);
  return wrap(native.l1Loss(T(input, 'input')._h, T(target, 'target')._h, red(o.reduction ?? 'mean')));
}
/** Huber-like smooth L1 loss with threshold `beta` (`F.smooth_l1_loss`). */
export function smoothL1Loss(input: Tensor, target: Tensor, o: { reduction?: Reduction; beta?: number } = {}): Tensor {
  o = is.options(o);
  return wrap(
    native.smoothL1Loss(
      T(input, 'input')._h,
      T(target, 'target')._h,
      red(o.reduction ?? 'mean'),
      is.nonNegative(o.beta ?? 1, 'beta'),
    ),
  );
}
