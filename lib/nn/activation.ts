/** Element-wise activations as modules (torch/nn/modules/activation.py). Each has no parameters. */
import { Tensor } from '../tensor.js';
import { is } from '../errors.js';
import { Module } from './module.js';
import * as F from './functional.js';
import { pyRepr } from './repr.js';

/** max(0, x). */
export class ReLU extends Module {
  forward(input: Tensor): Tensor {
    return F.relu(input);
  }
}

/** 1 / (1 + exp(-x)). */
export class Sigmoid extends Module {
  forward(input: Tensor): Tensor {
    return F.sigmoid(input);
  }
}

/** tanh(x). */
export class Tanh extends Module {
  forward(input: Tensor): Tensor {
    return F.tanh(input);
  }
}

/** x * Phi(x) with Phi the standard normal CDF ('none', default), or its tanh approximation ('tanh'). */
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(options: { approximate?: 'none' | 'tanh' } = {}) {
    const { approximate = 'none' } = is.options(options);
    super();
    this.approximate = is.oneOf(approximate, 'approximate', ['none', 'tanh'] as const);
  }
  forward(input: Tensor): Tensor {
    return F.gelu(input, { approximate: this.approximate });
  }
  extraRepr(): string {
    return `approximate=${pyRepr(this.approximate)}`;
  }
}
