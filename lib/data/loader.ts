/**
 * DataLoader: batches of a TensorDataset, as torch.utils.data.DataLoader with the default collate. A batch is made
 * by one indexSelect per dataset tensor with a slice of the epoch's index permutation, never sample by sample.
 */
import { native } from '../native.js';
import { FACTORY } from '../opcodes.js';
import { Tensor, wrap } from '../tensor.js';
import { is, typeError, FREED } from '../errors.js';
import { dtypeCode } from '../dtype.js';
import { tidy } from '../scope.js';
import { TensorDataset } from './dataset.js';

/** Options of data.DataLoader: batchSize, shuffle, seed, dropLast, transform, sampler. */
export interface DataLoaderOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Visit the samples in a new random order every epoch (default false). */
  shuffle?: boolean;
  /**
   * Seed of the shuffle order. With a seed, epoch e's order depends only on (seed, e): runs are reproducible and
   * independent of libtorch's RNG. Without one, each epoch draws its seed from libtorch's generator (as PyTorch's
   * RandomSampler), so `manualSeed()` makes it reproducible.
   */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Applied to the inputs (the dataset's first tensor) of each batch, [B, ...] -> [B, ...]. See data.transforms. */
  transform?: (inputs: Tensor) => Tensor;
  /**
   * Where the sample indices come from instead of shuffle/seed, e.g. a data.DistributedSampler (each rank its
   * shard). Its `indices()` is read at the start of every epoch.
   */
  sampler?: Sampler;
}

/** A source of sample indices for a DataLoader: `indices()` gives one epoch's order. */
export interface Sampler {
  readonly length: number;
  indices(): Int32Array;
}

/**
 * Iterates over a dataset in batches: `for (const [x, y] of loader)` gives inputs [B, ...] and targets [B].
 *
 * Ownership: the loader owns the batches it yields. It disposes a batch's tensors when the loop advances to the
 * next batch, when the loop ends, and on `break`/`return`/throw out of the loop. To keep a batch tensor beyond its
 * iteration call `keep()` on it (or `clone()` it); it is then yours to dispose.
 *
 * Each `for ... of` is one epoch: the epoch counter (`epoch`) goes up by one every time iteration starts, so with
 * `shuffle` every epoch has its own order. `setEpoch(e)` restarts the count (e.g. when resuming from a checkpoint).
 *
 *   const loader = new data.DataLoader(train, { batchSize: 128, shuffle: true, seed: 0, transform: data.transforms.normalize([0.286], [0.353]) });
 *   for (let epoch = 0; epoch < 10; epoch++)
 *     for (const [x, y] of loader) tidy(() => step(x, y));
 */
export class DataLoader<T extends Tensor[] = [Tensor, Tensor]> implements Iterable<T> {
  readonly dataset: TensorDataset<T>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number | undefined;
  readonly dropLast: boolean;
  readonly transform: ((inputs: Tensor) => Tensor) | undefined;
  readonly sampler: Sampler | undefined;
  private _epoch = 0;
  /** Where the running epoch is: batches handed out so far, and the shuffle seed it drew (unseeded shuffle). */
  private _pos: { epoch: number; batch: number; batches: number; seed?: number } | null = null;
  /** A restored position: the next epoch starts at this batch, with this drawn seed. */
  private _resume: { batch: number; seed?: number } | null = null;

  constructor(dataset: TensorDataset<T>, options: DataLoaderOptions = {}) {
    if (!(dataset instanceof TensorDataset))
      throw typeError('a TensorDataset (or a dataset from data.fashionMnist, data.cifar10, ...)', 'dataset', dataset);
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    const { batchSize = 1, shuffle = false, seed, dropLast = false, transform, sampler } = options;
    if (
      sampler !== undefined &&
      (sampler === null || typeof sampler !== 'object' || typeof sampler.indices !== 'function')
    )
      throw typeError('a sampler (an object with indices())', 'sampler', sampler);
    if (sampler !== undefined && shuffle)
      throw new TypeError('DataLoader: sampler and shuffle are mutually exclusive (the sampler decides the order)');
    this.sampler = sampler;
    this.dataset = dataset;
    this.batchSize = is.positiveInteger(batchSize, 'batchSize');
    this.shuffle = is.boolean(shuffle, 'shuffle');
    if (seed !== undefined) {
      is.nonNegativeInteger(seed, 'seed');
      if (!Number.isSafeInteger(seed)) throw new RangeError(`Expected a safe integer for seed but received ${seed}`);
    }
    this.seed = seed;
    this.dropLast = is.boolean(dropLast, 'dropLast');
    if (transform !== undefined) is.function(transform, 'transform');
    this.transform = transform;
  }

  /** Number of batches in an epoch. */
  get length(): number {
    const n = this.sampler !== undefined ? this.sampler.length : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the next iteration will run (0 before the first). */
  get epoch(): number {
    return this._epoch;
  }
  setEpoch(epoch: number): void {
    this._epoch = is.nonNegativeInteger(epoch, 'epoch');
  }

  /**
   * The loader's position, for a checkpoint (torchdata's StatefulDataLoader state_dict): the epoch the next batch
   * comes from, how many of its batches were handed out, and the shuffle seed that epoch drew from libtorch's
   * generator (an unseeded shuffle; absent otherwise). Taken after a batch was used, it resumes after that batch.
   */
  stateDict(): { epoch: number; batch: number; seed?: number } {
    const p = this._pos;
    if (p === null || p.batch >= p.batches) return { epoch: this._epoch, batch: 0 };
    return p.seed === undefined ? { epoch: p.epoch, batch: p.batch } : { epoch: p.epoch, batch: p.batch, seed: p.seed };
  }

  /**
   * Puts the loader back at a stateDict()'s position: the next iteration is that epoch, from that batch on (the
   * same order: a seeded or sampler order is recomputed, an unseeded shuffle reuses the saved seed).
   */
  loadStateDict(state: { epoch: number; batch: number; seed?: number }): void {
    if (state === null || typeof state !== 'object')
      throw typeError('a DataLoader state {epoch, batch}', 'state', state);
    const epoch = is.nonNegativeInteger(state.epoch, 'state.epoch');
    const batch = is.nonNegativeInteger(state.batch, 'state.batch');
    if (batch > this.length)
      throw new RangeError(`state.batch ${batch} is past the ${this.length} batches of an epoch`);
    if (state.seed !== undefined) is.nonNegativeInteger(state.seed, 'state.seed');
    this._epoch = epoch;
    this._pos = null;
    this._resume = { batch, seed: state.seed };
  }

  /** The sample order of an epoch, as an int64 tensor [N] the caller disposes. */
  private order(epoch: number, drawn: { seed?: number }): Tensor {
    if (this.sampler !== undefined) {
      const idx = this.sampler.indices();
      if (!(idx instanceof Int32Array))
        throw typeError('an Int32Array from sampler.indices()', 'sampler.indices()', idx);
      const n = this.dataset.length;
      for (const i of idx)
        if (i < 0 || i >= n) throw new RangeError(`sampler index ${i} is out of range for a dataset of ${n} samples`);
      return wrap(native.fromBuffer(idx, [idx.length], dtypeCode('int32')));
    }
    const n = this.dataset.length;
    if (!this.shuffle) return wrap(native.arange(0, n, 1, dtypeCode('int64'), null));
    let seed = this.seed;
    if (seed === undefined) {
      // a fresh seed per epoch from libtorch's generator, so the epoch number is not needed to vary the order
      if (drawn.seed === undefined) {
        const s = wrap(native.factory(FACTORY.randint, [], dtypeCode('int64'), null, 0, 2 ** 31));
        drawn.seed = s.item();
        s.dispose();
      }
      seed = drawn.seed!;
      epoch = 0;
    }
    return wrap(native.fromBuffer(permutation(n, seed, epoch), [n], dtypeCode('int32')));
  }

  *[Symbol.iterator](): Generator<T, void, undefined> {
    const epoch = this._epoch++;
    const resume = this._resume;
    this._resume = null;
    const drawn: { seed?: number } = { seed: resume?.seed };
    const order = this.order(epoch, drawn);
    const n = order.shape[0]!;
    const batches = this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    const first = Math.min(resume?.batch ?? 0, batches);
    const pos = (this._pos = { epoch, batch: first, batches, seed: drawn.seed });
    let current: Tensor[] = [];
    try {
      for (let b = first; b < batches; b++) {
        release(current);
        current = [];
        const start = b * this.batchSize;
        const index = order.narrow(0, start, Math.min(this.batchSize, n - start));
        try {
          for (const t of this.dataset.tensors) {
            if (t.device === index.device) current.push(t.indexSelect(0, index));
            else {
              const moved = index.to(t.device);
              try {
                current.push(t.indexSelect(0, moved));
              } finally {
                moved.dispose();
              }
            }
          }
        } finally {
          index.dispose();
        }
        if (this.transform !== undefined) {
          const raw = current[0]!;
          const fn = this.transform;
          const out = tidy(() => fn(raw));
          if (!(out instanceof Tensor)) throw typeError('a Tensor from transform', 'transform result', out);
          if (out !== raw) {
            raw.dispose();
            current[0] = out;
          }
        }
        pos.batch = b + 1; // handed out: a checkpoint taken while the caller uses it resumes after it
        yield current.slice() as T;
      }
    } finally {
      release(current);
      order.dispose();
    }
  }
}

/** Disposes the batch tensors the caller did not keep(). */
function release(batch: Tensor[]): void {
  for (const t of batch) if (!t._kept) t._free(FREED.dataLoader);
}

/**
 * A uniformly random permutation of 0..n-1 (Fisher-Yates) driven by sfc32 (Chris Doty-Humphrey's Small Fast
 * Counting generator, PractRand-clean), seeded from the 53-bit seed and the epoch: the order a seeded DataLoader
 * (and a DistributedSampler) visits the samples of epoch `epoch` in. It is computed in JavaScript, independent of
 * libtorch's generator, so it is the same on every machine and rank; e.g. a reproducible random subset:
 *
 *   const idx = data.permutation(train.length, 12345, 0).subarray(0, 1000);
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  is.nonNegativeInteger(n, 'n');
  is.nonNegativeInteger(seed, 'seed');
  if (!Number.isSafeInteger(seed)) throw new RangeError(`Expected a safe integer for seed but received ${seed}`);
  is.nonNegativeInteger(epoch, 'epoch');
  let a = seed >>> 0,
    b = Math.floor(seed / 2 ** 32) >>> 0,
    c = epoch >>> 0,
    d = 1;
  const next = (): number => {
    let t = (a + b) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    d = (d + 1) >>> 0;
    t = (t + d) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  // sfc32's recommended warm-up: its first outputs are still correlated with the seed
  for (let i = 0; i < 15; i++) next();
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    // 53 random bits, so the modulo bias is below 2^-30 for any n a typed array can hold
    const u = (next() * 2 ** 21 + (next() >>> 11)) / 2 ** 53;
    const j = Math.floor(u * (i + 1));
    const tmp = p[i]!;
    p[i] = p[j]!;
    p[j] = tmp;
  }
  return p;
}
