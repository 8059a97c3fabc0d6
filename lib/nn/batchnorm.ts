/** nn.BatchNorm1d and nn.BatchNorm2d (torch/nn/modules/batchnorm.py). */
import { Tensor } from '../tensor.js';
import { empty, ones, zeros, scalarTensor } from '../creation.js';
import { noGrad } from '../autograd.js';
import { is } from '../errors.js';
import { Module, type Parameter } from './module.js';
import * as F from './functional.js';
import * as init from './init.js';
import { pyFloat, pyRepr } from './repr.js';
import type { FactoryOptions } from './linear.js';

/** Options of nn.BatchNorm1d / 2d: eps, momentum, affine, trackRunningStats, dtype, device. */
export interface BatchNormOptions extends FactoryOptions {
  /** Added to the variance for stability. Default 1e-5. */
  eps?: number;
  /** Weight of the new batch in the running averages; null for a cumulative average. Default 0.1. */
  momentum?: number | null;
  /** Learn a per-channel scale (weight, ones) and shift (bias, zeros). Default true. */
  affine?: boolean;
  /** Keep running mean/variance for evaluation mode. Default true. */
  trackRunningStats?: boolean;
}

/**
 * y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, per channel (dim 1).
 *
 * Training mode normalises with the batch statistics (biased variance) and updates the running averages:
 * running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance for runningVar, and counts
 * batches in numBatchesTracked (momentum null: the average over all batches so far). Evaluation mode normalises with
 * the running statistics. Without running statistics (trackRunningStats false) batch statistics are used in both modes.
 * Buffers: runningMean (zeros), runningVar (ones), numBatchesTracked (int64 0); parameters: weight (ones), bias (zeros).
 */
export abstract class BatchNormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  declare weight: Parameter | null;
  declare bias: Parameter | null;
  declare runningMean: Tensor | null;
  declare runningVar: Tensor | null;
  declare numBatchesTracked: Tensor | null;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true, dtype, device } = is.options(options);
    super();
    this.numFeatures = is.positiveInteger(numFeatures, 'numFeatures');
    this.eps = is.positive(eps, 'eps');
    this.momentum = momentum === null ? null : is.inRange(momentum, 'momentum', 0, 1);
    this.affine = is.boolean(affine, 'affine');
    this.trackRunningStats = is.boolean(trackRunningStats, 'trackRunningStats');
    const f = { dtype, device };
    this.registerParameter('weight', affine ? empty([numFeatures], f) : null);
    this.registerParameter('bias', affine ? empty([numFeatures], f) : null);
    if (trackRunningStats) {
      this.registerBuffer('runningMean', zeros([numFeatures], f));
      this.registerBuffer('runningVar', ones([numFeatures], f));
      this.registerBuffer('numBatchesTracked', scalarTensor(0, { dtype: 'int64', device }));
    } else {
      this.registerBuffer('runningMean', null);
      this.registerBuffer('runningVar', null);
      this.registerBuffer('numBatchesTracked', null);
    }
    this.resetParameters();
  }

  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    noGrad(() => {
      this.runningMean!.zero_();
      this.runningVar!.fill_(1);
      this.numBatchesTracked!.zero_();
    });
  }

  resetParameters(): void {
    this.resetRunningStats();
    if (this.affine) {
      init.ones_(this.weight!);
      init.zeros_(this.bias!);
    }
  }

  /** @internal throws for an input of the wrong rank */
  protected abstract checkInputDim(input: Tensor): void;

  forward(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) throw new TypeError(`Expected a Tensor for input but received ${typeof input}`);
    this.checkInputDim(input);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.numBatchesTracked !== null) {
      noGrad(() => this.numBatchesTracked!.add_(1));
      if (this.momentum === null) factor = 1 / this.numBatchesTracked.item();
    }
    const useBatchStats = this.training || (this.runningMean === null && this.runningVar === null);
    if (useBatchStats) {
      const s = input.shape;
      const perChannel = s[0]! * s.slice(2).reduce((a, b) => a * b, 1);
      if (perChannel === 1)
        throw new RangeError(`Expected more than 1 value per channel when training, got input size [${s.join(', ')}]`);
    }
    // Running statistics are read in evaluation mode and updated in training mode only when tracked.
    const track = !this.training || this.trackRunningStats;
    return F.batchNorm(input, track ? this.runningMean : null, track ? this.runningVar : null, {
      weight: this.weight,
      bias: this.bias,
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }

  extraRepr(): string {
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${this.momentum === null ? 'None' : pyFloat(this.momentum)}, affine=${pyRepr(this.affine)}, track_running_stats=${pyRepr(this.trackRunningStats)}`;
  }
}

/** Batch normalisation of (N, C) or (N, C, L) inputs over N (and L). See BatchNormBase for the maths and options. */
export class BatchNorm1d extends BatchNormBase {
  protected checkInputDim(input: Tensor): void {
    const d = input.ndim;
    if (d !== 2 && d !== 3) throw new RangeError(`expected 2D or 3D input (got ${d}D input)`);
  }
}

/** Batch normalisation of (N, C, H, W) inputs over N, H and W. See BatchNormBase for the maths and options. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInputDim(input: Tensor): void {
    const d = input.ndim;
    if (d !== 4) throw new RangeError(`expected 4D input (got ${d}D input)`);
  }
}
