/**
 * Likelihoods: the loss a model is trained with and the predictive distribution its outputs define. `loss` is the
 * negative log-likelihood of targets (up to a constant); `sample` draws targets from the model's own predictive
 * distribution, which is what the sampled (true-Fisher) backward pass of TNT and KFAC needs.
 *
 * Every loss is a per-example value l_n reduced over the batch (dim 0): 'mean' (the default, as the paper) averages,
 * 'sum' adds, 'none' returns the (N) vector.
 *  - Categorical: l_n = -log softmax(z_n)[y_n]                       (cross-entropy on logits; y class indices)
 *  - Bernoulli:   l_n = sum_j BCEWithLogits(z_nj, y_nj)              (summed over every feature; y in [0, 1])
 *  - Gaussian:    l_n = 0.5 * sum_j (z_nj - y_nj)^2                  (unit variance; the 0.5 log 2 pi are dropped)
 *  - SequenceCategorical: a Categorical at every position of (B, T, V) logits, one token sampled per position;
 *    'mean' averages over the B * T positions (the language-model loss PyTorch users write as
 *    F.cross_entropy(logits.view(-1, V), y.view(-1))), 'sum' adds, 'none' gives (B, T)
 *
 *   const lik = new Bernoulli();
 *   const logits = model.call(x);
 *   const sampledLoss = lik.loss(logits, lik.sample(logits)); // for the Fisher statistics
 *   const loss = lik.loss(logits, x);                          // for the gradient
 */
import { Tensor } from './tensor.js';
import { noGrad } from './autograd.js';
import { bernoulli, multinomial, normal } from './ops.js';
import { is, typeError } from './errors.js';
import * as F from './nn/functional.js';

/** How a likelihood's loss reduces: 'mean' over the batch, 'sum', or 'none'. */
export type LikelihoodReduction = 'mean' | 'sum' | 'none';

/** A likelihood p(y | output): its negative log as a loss. */
export interface Likelihood {
  readonly name: 'categorical' | 'bernoulli' | 'gaussian' | 'sequenceCategorical';
  /** Negative log-likelihood of `target` given the model output, reduced over the batch. */
  loss(output: Tensor, target: Tensor, options?: { reduction?: LikelihoodReduction }): Tensor;
  /** Targets drawn from the predictive distribution of `output` (no gradient). */
  sample(output: Tensor): Tensor;
}

/**
 * What the second-order optimizers and fit() need of a likelihood: its loss, and samples from its predictive
 * distribution (every Likelihood here has both).
 */
export interface SampleableLikelihood {
  loss(output: Tensor, target: Tensor): Tensor;
  sample(output: Tensor): Tensor;
}

/** Whether `x` has the loss() and sample() methods of a likelihood. */
export function isSampleableLikelihood(x: unknown): x is SampleableLikelihood {
  return (
    x !== null &&
    typeof x === 'object' &&
    typeof (x as SampleableLikelihood).sample === 'function' &&
    typeof (x as SampleableLikelihood).loss === 'function'
  );
}

function T(x: unknown, name: string): Tensor {
  if (!(x instanceof Tensor)) throw typeError('a Tensor', name, x);
  return x;
}
function reductionOf(o: { reduction?: LikelihoodReduction } | undefined): LikelihoodReduction {
  return is.oneOf(is.options(o).reduction ?? 'mean', 'reduction', ['mean', 'sum', 'none'] as const);
}
function batched(x: Tensor, name: string): number {
  if (x.ndim < 1)
    throw new RangeError(`Expected ${name} with a batch dimension (at least 1-d) but received a 0-d tensor`);
  return x.shape[0]!;
}
function sameShape(output: Tensor, target: Tensor): void {
  const a = output.shape,
    b = target.shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i]))
    throw new RangeError(
      `Expected target of the output's shape [${a.join(', ')}] but received shape [${b.join(', ')}]`,
    );
}
/** Sums a per-element loss over everything but dim 0, then reduces over the batch. */
function perExample(
  elementwise: () => Tensor,
  sumAll: () => Tensor,
  n: number,
  reduction: LikelihoodReduction,
): Tensor {
  if (reduction === 'none') {
    const e = elementwise();
    try {
      if (e.ndim === 1) return e.alias();
      const flat = e.flatten(1);
      try {
        return flat.sum(1);
      } finally {
        flat.dispose();
      }
    } finally {
      e.dispose();
    }
  }
  const s = sumAll();
  if (reduction === 'sum' || n === 1) return s;
  try {
    return s.div(n);
  } finally {
    s.dispose();
  }
}

/** Class probabilities softmax(z) over dim 1 of (N, C) logits; targets are int64 class indices (N). */
export class Categorical implements Likelihood {
  readonly name = 'categorical' as const;
  loss(output: Tensor, target: Tensor, options?: { reduction?: LikelihoodReduction }): Tensor {
    T(output, 'output');
    T(target, 'target');
    if (output.ndim !== 2)
      throw new RangeError(`Expected output of shape (N, C) but received shape [${output.shape.join(', ')}]`);
    return F.crossEntropy(output, target, { reduction: reductionOf(options) });
  }
  /** One class index per row, drawn with probabilities softmax(z): int64 (N). */
  sample(output: Tensor): Tensor {
    T(output, 'output');
    if (output.ndim !== 2)
      throw new RangeError(`Expected output of shape (N, C) but received shape [${output.shape.join(', ')}]`);
    return noGrad(() => {
      const p = output.softmax(1);
      const idx = multinomial(p, 1, true);
      const y = idx.squeeze(1);
      p.dispose();
      idx.dispose();
      return y;
    });
  }
}

/** Independent Bernoulli(sigmoid(z)) per element; targets in [0, 1] of the output's shape and dtype. */
export class Bernoulli implements Likelihood {
  readonly name = 'bernoulli' as const;
  loss(output: Tensor, target: Tensor, options?: { reduction?: LikelihoodReduction }): Tensor {
    T(output, 'output');
    T(target, 'target');
    const n = batched(output, 'output');
    sameShape(output, target);
    return perExample(
      () => F.binaryCrossEntropyWithLogits(output, target, { reduction: 'none' }),
      () => F.binaryCrossEntropyWithLogits(output, target, { reduction: 'sum' }),
      n,
      reductionOf(options),
    );
  }
  /** 0/1 draws with probabilities sigmoid(z), in the output's dtype. */
  sample(output: Tensor): Tensor {
    T(output, 'output');
    return noGrad(() => {
      const p = output.sigmoid();
      try {
        return bernoulli(p);
      } finally {
        p.dispose();
      }
    });
  }
}

/** Independent N(z, 1) per element; targets of the output's shape. */
export class Gaussian implements Likelihood {
  readonly name = 'gaussian' as const;
  loss(output: Tensor, target: Tensor, options?: { reduction?: LikelihoodReduction }): Tensor {
    T(output, 'output');
    T(target, 'target');
    const n = batched(output, 'output');
    sameShape(output, target);
    const half = (t: Tensor): Tensor => {
      try {
        return t.mul(0.5);
      } finally {
        t.dispose();
      }
    };
    return perExample(
      () => half(F.mseLoss(output, target, { reduction: 'none' })),
      () => half(F.mseLoss(output, target, { reduction: 'sum' })),
      n,
      reductionOf(options),
    );
  }
  /** z + N(0, 1) noise. */
  sample(output: Tensor): Tensor {
    T(output, 'output');
    return noGrad(() => {
      const mean = output.detach();
      try {
        return normal(mean, 1);
      } finally {
        mean.dispose();
      }
    });
  }
}

/**
 * A categorical distribution at every position of a sequence: logits (B, T, V) (or (N, V)), targets int64 class
 * indices (B, T) (or (N)), the positions independent given the logits (a language model's next-token
 * distributions). The loss is the token-level cross-entropy: 'mean' (the default) averages over all B * T
 * positions, as `F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))`; 'sum' adds; 'none' returns (B, T).
 * `sample` draws one token per position from softmax(logits), so TNT's and KFAC's sampled backward pass (the
 * true Fisher's statistics) works on language models.
 *
 *   const lik = new SequenceCategorical();
 *   const logits = lm.call(x);                 // (B, T, V)
 *   opt.sampledBackward(logits, lik);          // y ~ p(. | x) at every position
 *   lik.loss(logits, y).backward();            // mean cross-entropy per token (nats; / ln 2 for bits)
 */
export class SequenceCategorical implements Likelihood {
  readonly name = 'sequenceCategorical' as const;
  loss(output: Tensor, target: Tensor, options?: { reduction?: LikelihoodReduction }): Tensor {
    T(output, 'output');
    T(target, 'target');
    const reduction = reductionOf(options);
    if (output.ndim < 2)
      throw new RangeError(`Expected output of shape (B, T, V) but received shape [${output.shape.join(', ')}]`);
    const lead = output.shape.slice(0, -1);
    const V = output.shape[output.ndim - 1]!;
    if (target.ndim !== lead.length || target.shape.some((d, i) => d !== lead[i]))
      throw new RangeError(
        `Expected target of shape [${lead.join(', ')}] (the output's without its last dimension) but received shape [${target.shape.join(', ')}]`,
      );
    const flatOut = output.reshape([-1, V]);
    const flatTarget = target.reshape([-1]);
    try {
      const l = F.crossEntropy(flatOut, flatTarget, { reduction });
      if (reduction !== 'none') return l;
      try {
        return l.reshape(lead);
      } finally {
        l.dispose();
      }
    } finally {
      flatOut.dispose();
      flatTarget.dispose();
    }
  }
  /** One token per position, drawn with probabilities softmax(logits) over the last dimension: int64 (B, T). */
  sample(output: Tensor): Tensor {
    T(output, 'output');
    if (output.ndim < 2)
      throw new RangeError(`Expected output of shape (B, T, V) but received shape [${output.shape.join(', ')}]`);
    const lead = output.shape.slice(0, -1);
    const V = output.shape[output.ndim - 1]!;
    return noGrad(() => {
      const flat = output.reshape([-1, V]);
      const p = flat.softmax(1);
      const idx = multinomial(p, 1, true);
      const y = idx.reshape(lead);
      flat.dispose();
      p.dispose();
      idx.dispose();
      return y;
    });
  }
}
