/**
 * data.DistributedSampler: each rank's share of a dataset for data-parallel training
 * (torch.utils.data.distributed.DistributedSampler).
 */
import { is, typeError, rangeError } from '../errors.js';
import { permutation } from './loader.js';
import * as dist from '../distributed/index.js';

/** Options of data.DistributedSampler: numReplicas, rank, shuffle, seed, dropLast. */
export interface DistributedSamplerOptions {
  /** Number of ranks sharing the dataset (default: the default process group's world size). */
  numReplicas?: number;
  /** This rank (default: the default process group's rank). */
  rank?: number;
  /** A new random order every epoch, the same on every rank (default true); call setEpoch(e) before each epoch. */
  shuffle?: boolean;
  /** Seed of the shuffle, identical on every rank (default 0). */
  seed?: number;
  /**
   * Drop the tail that does not divide evenly (default false: pad with samples from the start, as PyTorch, so every
   * rank gets ceil(N / numReplicas) samples).
   */
  dropLast?: boolean;
}

/**
 * Splits a dataset of `length` samples into `numReplicas` disjoint shards of equal size: rank r gets positions
 * r, r + W, r + 2W, ... of the epoch's order (PyTorch's interleaving). With `shuffle`, the order is a permutation
 * seeded by (seed, epoch) and is the same on every rank, so the shards of one epoch are disjoint and cover the
 * dataset (up to the padding). Pass it to a DataLoader as `sampler`; call `setEpoch(epoch)` at the start of every
 * epoch, or every epoch repeats the first one's order (as in PyTorch).
 *
 *   const sampler = new data.DistributedSampler(train.length, { seed: 0 });
 *   const loader = new data.DataLoader(train, { batchSize: 64, sampler });
 *   for (let epoch = 0; epoch < 10; epoch++) { sampler.setEpoch(epoch); for (const [x, y] of loader) ... }
 */
export class DistributedSampler {
  readonly datasetLength: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Samples per rank and epoch. */
  readonly numSamples: number;
  private _epoch = 0;

  constructor(dataset: number | { length: number }, options: DistributedSamplerOptions = {}) {
    const n =
      typeof dataset === 'number'
        ? dataset
        : dataset !== null && typeof dataset === 'object'
          ? dataset.length
          : undefined;
    if (typeof n !== 'number') throw typeError('a dataset or its length', 'dataset', dataset);
    this.datasetLength = is.nonNegativeInteger(n, 'dataset length');
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    const { shuffle = true, seed = 0, dropLast = false } = options;
    this.numReplicas = is.positiveInteger(options.numReplicas ?? dist.getWorldSize(), 'numReplicas');
    this.rank = is.nonNegativeInteger(options.rank ?? dist.getRank(), 'rank');
    if (this.rank >= this.numReplicas) throw rangeError(`a rank in [0, ${this.numReplicas - 1}]`, 'rank', this.rank);
    this.shuffle = is.boolean(shuffle, 'shuffle');
    this.seed = is.nonNegativeInteger(seed, 'seed');
    this.dropLast = is.boolean(dropLast, 'dropLast');
    this.numSamples = this.dropLast
      ? Math.floor(this.datasetLength / this.numReplicas)
      : Math.ceil(this.datasetLength / this.numReplicas);
  }

  get length(): number {
    return this.numSamples;
  }
  get epoch(): number {
    return this._epoch;
  }
  /** Sets the epoch the shuffle order comes from (call it on every rank with the same value). */
  setEpoch(epoch: number): void {
    this._epoch = is.nonNegativeInteger(epoch, 'epoch');
  }

  /** The sampler's state for a checkpoint: its epoch (the order is a function of seed, epoch and rank). */
  stateDict(): { epoch: number } {
    return { epoch: this._epoch };
  }
  loadStateDict(state: { epoch: number }): void {
    if (state === null || typeof state !== 'object') throw typeError('a sampler state {epoch}', 'state', state);
    this.setEpoch(state.epoch);
  }

  /** This rank's sample indices for the current epoch. */
  indices(): Int32Array {
    const n = this.datasetLength;
    const order = this.shuffle ? permutation(n, this.seed, this._epoch) : Int32Array.from({ length: n }, (_, i) => i);
    const out = new Int32Array(this.numSamples);
    for (let k = 0; k < this.numSamples; k++) {
      const pos = this.rank + k * this.numReplicas;
      // pos < total; past n (padding) it wraps around to the start of the order
      out[k] = order[pos < n ? pos : n === 0 ? 0 : (pos - n) % n]!;
    }
    return out;
  }

  *[Symbol.iterator](): Generator<number> {
    yield* this.indices();
  }
}
