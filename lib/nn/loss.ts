/**
 * Loss functions as modules (torch/nn/modules/loss.py): `new nn.CrossEntropyLoss()` then `criterion.call(output,
 * target)`, for scripts ported from PyTorch. Each forward delegates to the functional op of nn.functional; a class
 * weight (and BCEWithLogitsLoss's posWeight) is a buffer of the module, as in PyTorch: it moves with `to()`, is
 * freed by `dispose()`, and appears in stateDict(). Reprs are PyTorch's (`CrossEntropyLoss()`).
 *
 * reduction: 'mean' (default) averages over the elements (over the weights of the targets for weighted
 * CrossEntropyLoss / NLLLoss), 'sum' adds them, 'none' returns one loss per element (per sample for the class losses).
 */
import { Tensor } from '../tensor.js';
import { is, typeError } from '../errors.js';
import { Module } from './module.js';
import * as F from './functional.js';

export type Reduction = 'none' | 'mean' | 'sum';

function checkReduction(r: unknown): Reduction {
  return is.oneOf(r, 'reduction', ['none', 'mean', 'sum'] as const);
}

function optTensor(v: unknown, name: string): Tensor | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Tensor)) throw typeError('a Tensor', name, v);
  return v;
}

/** The common part: `reduction`, and forward(input, target). */
abstract class Loss extends Module<[Tensor, Tensor], Tensor> {
  readonly reduction: Reduction;
  constructor(reduction: unknown) {
    super();
    this.reduction = checkReduction(reduction ?? 'mean');
  }
}

/** A loss with an optional per-class (or per-element) `weight` buffer. */
abstract class WeightedLoss extends Loss {
  declare weight: Tensor | null;
  constructor(weight: unknown, reduction: unknown) {
    super(reduction);
    this.registerBuffer('weight', optTensor(weight, 'weight'));
  }
}

/** Mean absolute error |input - target|. Shapes: input and target the same (broadcastable) shape. */
export class L1Loss extends Loss {
  constructor({ reduction = 'mean' }: { reduction?: Reduction } = {}) {
    super(reduction);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.l1Loss(input, target, { reduction: this.reduction });
  }
}

/** Mean squared error (input - target)^2. */
export class MSELoss extends Loss {
  constructor({ reduction = 'mean' }: { reduction?: Reduction } = {}) {
    super(reduction);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.mseLoss(input, target, { reduction: this.reduction });
  }
}

/** 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere, for d = input - target (beta >= 0, default 1; 0 gives L1). */
export class SmoothL1Loss extends Loss {
  readonly beta: number;
  constructor({ reduction = 'mean', beta = 1 }: { reduction?: Reduction; beta?: number } = {}) {
    super(reduction);
    this.beta = is.nonNegative(beta, 'beta');
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.smoothL1Loss(input, target, { reduction: this.reduction, beta: this.beta });
  }
}

/**
 * Cross-entropy of logits: -w[y] log softmax(input)[y]. Shapes: input (N, C) or (C), or (N, C, d1, ...); target
 * class indices (N) (int64) or class probabilities of input's shape. Options: `weight` (C) per-class weights,
 * `ignoreIndex` (default -100) a target class that contributes nothing, `labelSmoothing` in [0, 1] (default 0).
 *
 *   const criterion = new nn.CrossEntropyLoss({ labelSmoothing: 0.1 });
 *   const loss = criterion.call(model.call(x), y);
 */
export class CrossEntropyLoss extends WeightedLoss {
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;
  constructor({
    weight = null,
    ignoreIndex = -100,
    reduction = 'mean',
    labelSmoothing = 0,
  }: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {}) {
    super(weight, reduction);
    this.ignoreIndex = is.integer(ignoreIndex, 'ignoreIndex');
    this.labelSmoothing = is.inRange(labelSmoothing, 'labelSmoothing', 0, 1);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, {
      weight: this.weight,
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }
}

/** Negative log-likelihood of log-probabilities: -w[y] input[y]. Shapes and options as CrossEntropyLoss (no smoothing). */
export class NLLLoss extends WeightedLoss {
  readonly ignoreIndex: number;
  constructor({
    weight = null,
    ignoreIndex = -100,
    reduction = 'mean',
  }: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}) {
    super(weight, reduction);
    this.ignoreIndex = is.integer(ignoreIndex, 'ignoreIndex');
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

/** Binary cross-entropy of probabilities in [0, 1]: -w (t log p + (1 - t) log(1 - p)), logs clamped at -100. */
export class BCELoss extends WeightedLoss {
  constructor({ weight = null, reduction = 'mean' }: { weight?: Tensor | null; reduction?: Reduction } = {}) {
    super(weight, reduction);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropy(input, target, { weight: this.weight, reduction: this.reduction });
  }
}

/**
 * Binary cross-entropy of logits, computed stably: -w (posWeight t log s(x) + (1 - t) log(1 - s(x))). `posWeight`
 * (broadcast over the last dimension, one per class) weighs the positive targets.
 */
export class BCEWithLogitsLoss extends WeightedLoss {
  declare posWeight: Tensor | null;
  constructor({
    weight = null,
    reduction = 'mean',
    posWeight = null,
  }: { weight?: Tensor | null; reduction?: Reduction; posWeight?: Tensor | null } = {}) {
    super(weight, reduction);
    this.registerBuffer('posWeight', optTensor(posWeight, 'posWeight'));
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropyWithLogits(input, target, {
      weight: this.weight,
      posWeight: this.posWeight,
      reduction: this.reduction,
    });
  }
}
