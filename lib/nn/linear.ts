/** nn.Linear and nn.Identity (torch/nn/modules/linear.py). */
import { Tensor, type Device } from '../tensor.js';
import { empty } from '../creation.js';
import { is } from '../errors.js';
import type { DType } from '../dtype.js';
import { Module, type Parameter } from './module.js';
import * as F from './functional.js';
import * as init from './init.js';
import { pyRepr } from './repr.js';

/** dtype and device of the parameters a layer creates (float32 on the CPU by default). */
export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

export interface LinearOptions extends FactoryOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * y = x W^T + b.
 *
 * Shapes: input (*, inFeatures), output (*, outFeatures); weight (outFeatures, inFeatures), bias (outFeatures).
 * Initialisation (PyTorch's default): weight ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(inFeatures),
 * 1/sqrt(inFeatures)); bias ~ U(-1/sqrt(inFeatures), 1/sqrt(inFeatures)).
 *
 *   const fc = new nn.Linear(784, 10);
 *   const y = fc.call(x); // x (N, 784) -> y (N, 10)
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  declare weight: Parameter;
  declare bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    const { bias = true, dtype, device } = is.options(options);
    super();
    this.inFeatures = is.nonNegativeInteger(inFeatures, 'inFeatures');
    this.outFeatures = is.nonNegativeInteger(outFeatures, 'outFeatures');
    is.boolean(bias, 'bias');
    this.registerParameter('weight', empty([outFeatures, inFeatures], { dtype, device }));
    this.registerParameter('bias', bias ? empty([outFeatures], { dtype, device }) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    // a = sqrt(5) gives gain sqrt(1/3), so the bound is 1/sqrt(fanIn) (torch/nn/modules/linear.py).
    init.kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias !== null) {
      const fanIn = this.inFeatures;
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      init.uniform_(this.bias, -bound, bound);
    }
  }

  forward(input: Tensor): Tensor {
    return F.linear(input, this.weight, this.bias);
  }

  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${pyRepr(this.bias !== null)}`;
  }
}

/** Returns its input (as a new handle to the same tensor, so the caller owns what it gets). */
export class Identity extends Module {
  forward(input: Tensor): Tensor {
    return input.alias();
  }
}
