/**
 * nn.parallel.DistributedDataParallel: data-parallel training over the default process group (lib/distributed).
 */
import { Tensor } from '../tensor.js';
import { Module, type AnyModule, type Parameter } from './module.js';
import { is, typeError, TorchError } from '../errors.js';
import { zeros } from '../creation.js';
import { tidy } from '../scope.js';
import * as dist from '../distributed/index.js';
import { gradientSyncSuppressed } from '../distributed/state.js';
import type { DType } from '../dtype.js';

export interface DistributedDataParallelOptions {
  /** Gradient bucket size in MiB (default 25, as PyTorch): a bucket is all-reduced as soon as its gradients are ready. */
  bucketCapMB?: number;
  /** Broadcast the module's buffers (e.g. BatchNorm running statistics) from rank 0 at every synchronize() (default true). */
  broadcastBuffers?: boolean;
}

interface Bucket {
  params: Parameter[];
  offsets: number[];
  flat: Tensor;
  ready: number;
  launched: Promise<void> | null;
}

/**
 * Wraps `module` for data-parallel training (torch.nn.parallel.DistributedDataParallel): every rank holds a replica,
 * runs forward/backward on its own shard of the batch, and the gradients are averaged over the ranks, so that all
 * replicas take the same optimizer step.
 *
 * - At construction the parameters and buffers of rank 0 are broadcast to every rank (`await ddp.ready`, or build
 *   it with `await DistributedDataParallel.create(module)`; forward() throws until then).
 * - Gradients are averaged in buckets of `bucketCapMB` MiB, filled in reverse parameter order (the order backward
 *   produces them). A gradient hook on each parameter copies its gradient into its bucket; a full bucket starts its
 *   asynchronous all-reduce while backward goes on computing the earlier layers' gradients (overlap).
 *   Buckets start in index order on every rank, so all ranks issue the same collectives in the same order.
 * - `await ddp.synchronize()` after backward (before `optimizer.step()`) waits for the buckets, starts any not
 *   started (parameters that got no gradient contribute zeros), and writes the averages into `.grad`.
 * - `ddp.noSync(fn)` runs fn (forward + backward of a micro-batch) without communication: gradients accumulate
 *   locally, and the next backward outside noSync reduces the accumulated sums (PyTorch's `no_sync()`).
 *
 *   await dist.initProcessGroup();
 *   const ddp = await nn.parallel.DistributedDataParallel.create(model);
 *   const opt = new optim.SGD(ddp.parameters(), { lr: 0.1 });
 *   for (const [x, y] of loader) {             // loader with a data.DistributedSampler
 *     opt.zeroGrad();
 *     tidy(() => loss(ddp.call(x), y).backward());
 *     await ddp.synchronize();
 *     opt.step();
 *   }
 *
 * The averaged gradient equals the gradient of the mean loss over the global batch when every rank has the same
 * number of examples (the loss is a mean over the local batch). stateDict() keys carry the `module.` prefix, as
 * PyTorch's; save `ddp.module.stateDict()` for keys without it.
 */
export class DistributedDataParallel<I extends unknown[] = [Tensor], O = Tensor> extends Module<I, O> {
  declare readonly module: Module<I, O>;
  readonly bucketCapMB: number;
  readonly broadcastBuffers: boolean;
  /** Resolves when rank 0's parameters and buffers have reached this rank. */
  readonly ready: Promise<void>;
  private _isReady = false;
  private readonly _buckets: Bucket[] = [];
  private readonly _where = new Map<Parameter, [number, number]>(); // bucket, index in it
  private readonly _seen = new Set<Parameter>();
  private readonly _hooks: { remove(): void }[] = [];
  private _noSync = 0;
  private _next = 0; // the next bucket to launch

  constructor(module: Module<I, O>, options: DistributedDataParallelOptions = {}) {
    super();
    if (!(module instanceof Module)) throw typeError('a Module', 'module', module);
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    const { bucketCapMB = 25, broadcastBuffers = true } = options;
    this.bucketCapMB = is.positive(bucketCapMB, 'bucketCapMB');
    this.broadcastBuffers = is.boolean(broadcastBuffers, 'broadcastBuffers');
    if (!dist.isInitialized()) throw new TorchError('DistributedDataParallel needs the default process group: call distributed.initProcessGroup() first', 'DISTRIBUTED');
    this.registerModule('module', module as AnyModule);
    this._makeBuckets();
    this.ready = this._broadcastState().then(() => {
      this._isReady = true;
    });
    // An unhandled rejection would kill the process before the caller awaits ready; the caller still sees it there.
    this.ready.catch(() => undefined);
  }

  /** Builds the wrapper and waits for rank 0's parameters to arrive. */
  static async create<I extends unknown[], O>(module: Module<I, O>, options: DistributedDataParallelOptions = {}): Promise<DistributedDataParallel<I, O>> {
    const ddp = new DistributedDataParallel(module, options);
    await ddp.ready;
    return ddp;
  }

  private _makeBuckets(): void {
    const cap = this.bucketCapMB * 1024 * 1024;
    const params = this.module.parameters().filter((p) => p.requiresGrad).reverse();
    // One bucket holds one dtype and one device (a flat buffer); within that, reverse registration order.
    let cur: { key: string; params: Parameter[]; bytes: number } | null = null;
    const groups: { key: string; params: Parameter[] }[] = [];
    for (const p of params) {
      const key = `${p.dtype}@${p.device}`;
      const bytes = p.numel() * bytesOf(p.dtype);
      if (cur === null || cur.key !== key || (cur.bytes > 0 && cur.bytes + bytes > cap)) {
        cur = { key, params: [], bytes: 0 };
        groups.push(cur);
      }
      cur.params.push(p);
      cur.bytes += bytes;
    }
    for (const g of groups) {
      const offsets: number[] = [];
      let n = 0;
      for (const p of g.params) {
        offsets.push(n);
        n += p.numel();
      }
      const p0 = g.params[0]!;
      const flat = zeros([n], { dtype: p0.dtype, device: p0.device });
      flat._kept = true;
      const b: Bucket = { params: g.params, offsets, flat, ready: 0, launched: null };
      g.params.forEach((p, i) => this._where.set(p, [this._buckets.length, i]));
      this._buckets.push(b);
    }
    for (const p of params) {
      this._hooks.push(p.registerHook((g) => this._onGrad(p, g)));
    }
  }

  private async _broadcastState(): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const p of this.module.parameters()) pending.push(dist.broadcast(p, 0));
    for (const b of this.module.buffers()) pending.push(dist.broadcast(b, 0));
    await Promise.all(pending);
  }

  /** Gradient hook: copies the gradient the parameter will hold after accumulation into its bucket slot. */
  private _onGrad(p: Parameter, g: Tensor): void {
    if (this._noSync > 0 || gradientSyncSuppressed()) return;
    const where = this._where.get(p);
    if (where === undefined) return;
    const b = this._buckets[where[0]]!;
    if (b.launched !== null)
      throw new Error('DistributedDataParallel: a gradient arrived for a bucket already being reduced: call `await ddp.synchronize()` after each backward (or run the extra backward inside ddp.noSync())');
    const i = where[1];
    const old = p.grad; // the engine adds g to it after this hook
    tidy(() => {
      const slot = b.flat.narrow(0, b.offsets[i]!, p.numel());
      const total = old === null ? g.reshape([-1]) : old.reshape([-1]).add(g.reshape([-1]));
      slot.copy_(total);
    });
    if (!this._seen.has(p)) {
      this._seen.add(p);
      b.ready++;
    }
    this._launchReady();
  }

  private _launchReady(): void {
    while (this._next < this._buckets.length) {
      const b = this._buckets[this._next]!;
      if (b.ready < b.params.length) return;
      b.launched = dist.allReduce(b.flat, 'avg');
      b.launched.catch(() => undefined); // awaited in synchronize()
      this._next++;
    }
  }

  /**
   * Waits for the gradient averages and writes them into the parameters' `.grad`. Call it once after each
   * backward that is not inside noSync(), on every rank, before the optimizer step.
   */
  async synchronize(): Promise<void> {
    if (!this._isReady) await this.ready;
    // Parameters that got no gradient this time contribute their current .grad (or zeros), as PyTorch's
    // find_unused_parameters: every rank must reduce every bucket.
    for (const b of this._buckets) {
      if (b.launched !== null) continue;
      b.params.forEach((p, i) => {
        if (this._seen.has(p)) return;
        tidy(() => {
          const slot = b.flat.narrow(0, b.offsets[i]!, p.numel());
          const g = p.grad;
          if (g === null) slot.zero_();
          else slot.copy_(g.reshape([-1]));
        });
        this._seen.add(p);
        b.ready++;
      });
    }
    this._launchReady();
    const errors: unknown[] = [];
    for (const b of this._buckets) {
      try {
        await b.launched;
      } catch (e) {
        errors.push(e);
      }
    }
    try {
      if (errors.length > 0) throw errors[0];
      for (const b of this._buckets) {
        b.params.forEach((p, i) => {
          tidy(() => {
            const slot = b.flat.narrow(0, b.offsets[i]!, p.numel()).view(p.shape);
            const g = p.grad;
            if (g === null) p.grad = slot.clone();
            else g.copy_(slot);
          });
        });
      }
      if (this.broadcastBuffers) await Promise.all(this.module.buffers().map((t) => dist.broadcast(t, 0)));
    } finally {
      for (const b of this._buckets) {
        b.launched = null;
        b.ready = 0;
      }
      this._seen.clear();
      this._next = 0;
    }
  }

  /**
   * Runs fn without gradient communication (PyTorch's `with ddp.no_sync():`): backward passes inside accumulate
   * into `.grad` locally; the first backward after it reduces the accumulated gradients. fn may be async.
   */
  noSync<T>(fn: () => T): T {
    is.function(fn, 'fn');
    this._noSync++;
    let r: T;
    try {
      r = fn();
    } catch (e) {
      this._noSync--;
      throw e;
    }
    if (r instanceof Promise) return r.finally(() => this._noSync--) as T;
    this._noSync--;
    return r;
  }

  forward(...inputs: I): O {
    if (!this._isReady)
      throw new Error('DistributedDataParallel: rank 0\'s parameters have not arrived yet: `await ddp.ready` (or build it with `await DistributedDataParallel.create(module)`) before the first forward');
    return this.module.call(...inputs);
  }

  /** Removes the gradient hooks and frees the buckets (not the wrapped module: dispose it yourself or via dispose()). */
  detachHooks(): void {
    for (const h of this._hooks) h.remove();
    this._hooks.length = 0;
    for (const b of this._buckets) b.flat.dispose();
    this._buckets.length = 0;
    this._where.clear();
  }

  dispose(): void {
    this.detachHooks();
    super.dispose();
  }

  extraRepr(): string {
    return `bucketCapMB=${this.bucketCapMB}, buckets=${this._buckets.length}`;
  }
}

function bytesOf(d: DType): number {
  return d === 'float64' || d === 'int64' ? 8 : d === 'float16' || d === 'bfloat16' || d === 'int16' ? 2 : d === 'bool' || d === 'uint8' || d === 'int8' ? 1 : 4;
}

