/** nn.LayerNorm (torch/nn/modules/normalization.py). */
import { Tensor } from '../tensor.js';
import { ones, zeros } from '../creation.js';
import { is } from '../errors.js';
import { noGrad } from '../autograd.js';
import { Module, type Parameter } from './module.js';
import type { FactoryOptions } from './linear.js';
import * as F from './functional.js';
import { pyFloat, pyRepr } from './repr.js';

/** Options of nn.LayerNorm (see its members), and the dtype and device of its parameters. */
export interface LayerNormOptions extends FactoryOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a per-element scale (weight, ones) and shift (bias, zeros). Default true. */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, learn the shift too (default true; PyTorch 2.1's `bias`). */
  bias?: boolean;
}

/**
 * y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the last `normalizedShape.length` dimensions (biased
 * variance), as torch.nn.LayerNorm; libtorch's layer_norm kernel. weight and bias have shape `normalizedShape`.
 *
 *   const ln = new nn.LayerNorm(128);     // over the last dimension of (B, T, 128)
 */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  declare weight: Parameter | null;
  declare bias: Parameter | null;

  constructor(normalizedShape: number | number[], options: LayerNormOptions = {}) {
    const { eps = 1e-5, elementwiseAffine = true, bias = true, dtype, device } = is.options(options);
    super();
    this.normalizedShape = is.shape(
      typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape,
      'normalizedShape',
    );
    this.eps = is.positive(eps, 'eps');
    this.elementwiseAffine = is.boolean(elementwiseAffine, 'elementwiseAffine');
    is.boolean(bias, 'bias');
    const f = { dtype, device };
    this.registerParameter('weight', elementwiseAffine ? ones(this.normalizedShape, f) : null);
    this.registerParameter('bias', elementwiseAffine && bias ? zeros(this.normalizedShape, f) : null);
  }

  resetParameters(): void {
    noGrad(() => {
      this.weight?.fill_(1);
      this.bias?.zero_();
    });
  }

  forward(input: Tensor): Tensor {
    return F.layerNorm(input, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  extraRepr(): string {
    return `${pyRepr(this.normalizedShape)}, eps=${pyFloat(this.eps)}, elementwise_affine=${pyRepr(this.elementwiseAffine)}`;
  }
}
