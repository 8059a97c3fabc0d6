/** nn.Flatten (torch/nn/modules/flatten.py). */
import { Tensor } from '../tensor.js';
import { is } from '../errors.js';
import { Module } from './module.js';

/** Flattens dims startDim..endDim into one: (N, C, H, W) -> (N, C*H*W) with the defaults (1, -1). */
export class Flatten extends Module {
  readonly startDim: number;
  readonly endDim: number;
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = is.integer(startDim, 'startDim');
    this.endDim = is.integer(endDim, 'endDim');
  }
  forward(input: Tensor): Tensor {
    return input.flatten(this.startDim, this.endDim);
  }
  extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
