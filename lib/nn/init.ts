/**
 * torch.nn.init: in-place initialisers with PyTorch's gain and fan rules. Each fills the tensor without recording
 * gradients (so parameters can be initialised) and returns it.
 *
 *   nn.init.kaimingNormal_(conv.weight, { mode: 'fan_out', nonlinearity: 'relu' });
 *   nn.init.zeros_(conv.bias!);
 */
import { Tensor } from '../tensor.js';
import { noGrad } from '../autograd.js';
import { is, typeError, rangeError } from '../errors.js';

/** The nonlinearity a gain is computed for (`nn.init.calculate_gain`'s names). */
export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'conv_transpose1d'
  | 'conv_transpose2d'
  | 'conv_transpose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'selu';
/** Whether Kaiming initialisation preserves the variance of the forward pass ('fan_in') or of the backward pass ('fan_out'). */
export type FanMode = 'fan_in' | 'fan_out';

const LINEAR_FNS = ['linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d', 'conv_transpose3d'];

/**
 * The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear/conv/sigmoid, 5/3 for tanh,
 * sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope `param`, default 0.01), 3/4 for selu.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  if (LINEAR_FNS.includes(nonlinearity) || nonlinearity === 'sigmoid') return 1;
  if (nonlinearity === 'tanh') return 5 / 3;
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leaky_relu') {
    const slope = param === undefined ? 0.01 : is.finite(param, 'param');
    return Math.sqrt(2 / (1 + slope * slope));
  }
  if (nonlinearity === 'selu') return 3 / 4; // torch's value, chosen for self-normalising networks
  throw rangeError(
    `one of ${[...LINEAR_FNS, 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu'].map((s) => `'${s}'`).join(', ')}`,
    'nonlinearity',
    nonlinearity,
  );
}

function T(t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw typeError('a Tensor', 'tensor', t);
  return t;
}

/** [fanIn, fanOut] = [size(1), size(0)] times the receptive field (the product of the remaining sizes). */
export function calculateFanInAndFanOut(tensor: Tensor): [number, number] {
  const s = T(tensor).shape;
  if (s.length < 2)
    throw new RangeError('Fan in and fan out can not be computed for tensor with fewer than 2 dimensions');
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1]! * receptive, s[0]! * receptive];
}

function fan(tensor: Tensor, mode: FanMode): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  return is.oneOf(mode, 'mode', ['fan_in', 'fan_out'] as const) === 'fan_in' ? fanIn : fanOut;
}

const isEmpty = (t: Tensor): boolean => t.numel() === 0;

/** Fills with U(a, b). */
export function uniform_(tensor: Tensor, a = 0, b = 1): Tensor {
  is.finite(a, 'a');
  is.finite(b, 'b');
  return noGrad(() => T(tensor).uniform_(a, b));
}
/** Fills with N(mean, std^2). */
export function normal_(tensor: Tensor, mean = 0, std = 1): Tensor {
  is.finite(mean, 'mean');
  is.nonNegative(std, 'std');
  return noGrad(() => T(tensor).normal_(mean, std));
}
/** Fills `tensor` with `val` in place (no autograd); returns it. */
export function constant_(tensor: Tensor, val: number): Tensor {
  is.number(val, 'val');
  return noGrad(() => T(tensor).fill_(val));
}
/** Fills `tensor` with ones in place; returns it. */
export const ones_ = (tensor: Tensor): Tensor => constant_(tensor, 1);
/** Fills `tensor` with zeros in place; returns it. */
export const zeros_ = (tensor: Tensor): Tensor => noGrad(() => T(tensor).zero_());

/** Options of kaimingUniform_ / kaimingNormal_: `a` (the negative slope of a leaky ReLU), mode and nonlinearity. */
export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only); 0 by default. */
  a?: number;
  /** 'fan_in' (default) keeps the forward variance, 'fan_out' the backward one. */
  mode?: FanMode;
  /** Default 'leaky_relu' (with a = 0 that is relu's gain, sqrt(2)). */
  nonlinearity?: Nonlinearity;
}

/** He initialisation: U(-bound, bound) with bound = gain * sqrt(3 / fan) (torch.nn.init.kaiming_uniform_). */
export function kaimingUniform_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = is.options(options);
  if (isEmpty(T(tensor))) return tensor;
  const std = calculateGain(nonlinearity, a) / Math.sqrt(fan(tensor, mode));
  const bound = Math.sqrt(3) * std; // U(-b, b) has standard deviation b / sqrt(3)
  return noGrad(() => tensor.uniform_(-bound, bound));
}
/** He initialisation: N(0, std^2) with std = gain / sqrt(fan) (torch.nn.init.kaiming_normal_). */
export function kaimingNormal_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = is.options(options);
  if (isEmpty(T(tensor))) return tensor;
  const std = calculateGain(nonlinearity, a) / Math.sqrt(fan(tensor, mode));
  return noGrad(() => tensor.normal_(0, std));
}
/** Glorot initialisation: U(-a, a) with a = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(tensor: Tensor, gain = 1): Tensor {
  is.nonNegative(gain, 'gain');
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return noGrad(() => tensor.uniform_(-a, a));
}
/** Glorot initialisation: N(0, std^2) with std = gain * sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal_(tensor: Tensor, gain = 1): Tensor {
  is.nonNegative(gain, 'gain');
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  const std = gain * Math.sqrt(2 / (fanIn + fanOut));
  return noGrad(() => tensor.normal_(0, std));
}
