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

/** Options of nn.Linear: `bias`, and the dtype and device of its parameters. */
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

  /** @internal what a shape error in forward means for this layer (Module.call adds it to the error) */
  _inputHint(input: unknown): string | null {
    if (!(input instanceof Tensor) || input.isDisposed) return null;
    const s = input.shape;
    const last = s.length > 0 ? s[s.length - 1] : undefined;
    if (last === this.inFeatures) return null;
    let h = `Linear expects inputs of shape [*, ${this.inFeatures}] (in_features = ${this.inFeatures}), but the input's last dimension is ${last ?? 'missing (a scalar)'}`;
    if (s.length >= 3) {
      const flat = s.slice(1).reduce((a, b) => a * b, 1);
      h +=
        `. Image-shaped input ([N, C, H, W] or [N, H, W]): flatten it first, with new nn.Flatten() before this layer ` +
        `or x.flatten(1), which gives [${s[0]}, ${flat}]${flat === this.inFeatures ? ' (it fits)' : ''}`;
    } else if (s.length === 2) h += ` (the layer before it, or the data, gives ${last} features)`;
    return h;
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
