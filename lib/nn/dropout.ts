/** nn.Dropout (torch/nn/modules/dropout.py). */
import { Tensor } from '../tensor.js';
import { is } from '../errors.js';
import { Module } from './module.js';
import * as F from './functional.js';
import { pyFloat } from './repr.js';

/**
 * In training mode zeroes each element with probability p and scales the others by 1 / (1 - p), so the expectation
 * is unchanged; in evaluation mode returns the input's values. p defaults to 0.5.
 */
export class Dropout extends Module {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    this.p = is.inRange(p, 'p', 0, 1);
  }
  forward(input: Tensor): Tensor {
    return F.dropout(input, this.p, this.training);
  }
  extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}
