/**
 * nn.parallel.DistributedDataParallel: data-parallel training over the default process group (lib/distributed).
 */
import { Tensor } from '../tensor.js';
import { Module, type AnyModule, type Parameter } from './module.js';
import { is, typeError, TorchError } from '../errors.js';
import { zeros, tensor } from '../creation.js';
import { tidy } from '../scope.js';
import { cat } from '../ops.js';
import { noGrad } from '../autograd.js';
import * as dist from '../distributed/index.js';
import { gradientSyncSuppressed } from '../distributed/state.js';
import type { DType } from '../dtype.js';

/** Options of nn.parallel.DistributedDataParallel: the gradient bucket size and whether buffers are broadcast from rank 0. */
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
 * - Gradients are averaged in buckets, as PyTorch's reducer: one bucket per dtype in the first backward, then
 *   buckets rebuilt in the order the gradients became ready (the first 1 MiB, the others `bucketCapMB` MiB). A
 *   gradient hook on each parameter copies its gradient / W into its bucket; a full bucket starts its asynchronous
 *   all-reduce while backward goes on computing the earlier layers' gradients (overlap). Buckets start in index
 *   order on every rank, so all ranks issue the same collectives in the same order. The collectives are PyTorch
 *   DDP's, one for one, so Node and Python ranks can train one model together.
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
  private readonly _index = new Map<Parameter, number>();
  private _readyOrder: number[] = [];
  private _rebuilt = false;
  private _next = 0; // the next bucket to launch

  constructor(module: Module<I, O>, options: DistributedDataParallelOptions = {}) {
    super();
    if (!(module instanceof Module)) throw typeError('a Module', 'module', module);
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    const { bucketCapMB = 25, broadcastBuffers = true } = options;
    this.bucketCapMB = is.positive(bucketCapMB, 'bucketCapMB');
    this.broadcastBuffers = is.boolean(broadcastBuffers, 'broadcastBuffers');
    if (!dist.isInitialized())
      throw new TorchError(
        'DistributedDataParallel needs the default process group: call distributed.initProcessGroup() first',
        'DISTRIBUTED',
      );
    this.registerModule('module', module as AnyModule);
    this._makeBuckets();
    this.ready = this._broadcastState().then(() => {
      this._isReady = true;
    });
    // An unhandled rejection would kill the process before the caller awaits ready; the caller still sees it there.
    this.ready.catch(() => undefined);
  }

  /** Builds the wrapper and waits for rank 0's parameters to arrive. */
  static async create<I extends unknown[], O>(
    module: Module<I, O>,
    options: DistributedDataParallelOptions = {},
  ): Promise<DistributedDataParallel<I, O>> {
    const ddp = new DistributedDataParallel(module, options);
    await ddp.ready;
    return ddp;
  }

  /** The parameters DDP reduces (PyTorch's _build_params_for_reducer): those requiring grad, in module order. */
  private _params(): Parameter[] {
    return this.module.parameters().filter((p) => p.requiresGrad);
  }

  /**
   * PyTorch's compute_bucket_assignment_by_size (torch/csrc/distributed/c10d/reducer.cpp): walks the parameters in
   * `order`, one accumulating bucket per dtype and device, closing a bucket once it reaches the current size limit
   * (the limits advance per dtype: first bucket, then the rest). Without an explicit order the buckets are sorted by
   * their smallest parameter index.
   */
  private static _assign(params: Parameter[], order: number[], limits: number[], sortByIndex: boolean): number[][] {
    const open = new Map<string, { idx: number[]; size: number; limit: number }>();
    const out: number[][] = [];
    for (const i of order) {
      const p = params[i]!;
      const key = `${p.dtype}@${p.device}`;
      let b = open.get(key);
      if (b === undefined) {
        b = { idx: [], size: 0, limit: 0 };
        open.set(key, b);
      }
      b.idx.push(i);
      b.size += p.numel() * bytesOf(p.dtype);
      if (b.size >= limits[Math.min(b.limit, limits.length - 1)]!) {
        out.push(b.idx);
        open.set(key, { idx: [], size: 0, limit: b.limit + 1 });
      }
    }
    for (const b of open.values()) if (b.idx.length > 0) out.push(b.idx);
    if (sortByIndex) out.sort((x, y) => Math.min(...x) - Math.min(...y));
    return out;
  }

  /** Replaces the buckets by `assignment` (lists of parameter indices, in launch order). */
  private _setBuckets(assignment: number[][]): void {
    for (const b of this._buckets) b.flat.dispose();
    this._buckets.length = 0;
    this._where.clear();
    const params = this._params();
    for (const idx of assignment) {
      const ps = idx.map((i) => params[i]!);
      const offsets: number[] = [];
      let n = 0;
      for (const p of ps) {
        offsets.push(n);
        n += p.numel();
      }
      const flat = zeros([n], { dtype: ps[0]!.dtype, device: ps[0]!.device });
      flat._kept = true;
      ps.forEach((p, i) => this._where.set(p, [this._buckets.length, i]));
      this._buckets.push({ params: ps, offsets, flat, ready: 0, launched: null });
    }
  }

  private _makeBuckets(): void {
    // As PyTorch's DDP (find_unused_parameters=False): the first iteration reduces one bucket per dtype, parameters
    // in index order; after it the buckets are rebuilt in the order the gradients became ready (_rebuild).
    const params = this._params();
    this._setBuckets(
      DistributedDataParallel._assign(
        params,
        params.map((_, i) => i),
        [Number.MAX_SAFE_INTEGER],
        true,
      ).reverse(),
    );
    params.forEach((p, i) => {
      this._hooks.push(p.registerHook((g) => this._onGrad(p, g)));
      this._index.set(p, i);
    });
  }

  /**
   * What PyTorch's DDP constructor communicates, in its order, so that Node and Python ranks can share a group:
   * verify_params_across_processes (an all-gather of the parameter count, a broadcast of every parameter's sizes
   * and strides from rank 0) and _sync_module_states (rank 0's parameters and buffers, flattened per dtype:
   * broadcast_coalesced).
   */
  private async _broadcastState(): Promise<void> {
    const params = this._params();
    const W = dist.getWorldSize();
    const count = tensor([params.length], { dtype: 'int64' });
    const counts = Array.from({ length: W }, () => zeros([1], { dtype: 'int64' }));
    try {
      await dist.allGather(counts, count);
      const got = counts.map((c) => c.item());
      if (got.some((c) => c !== params.length))
        throw new TorchError(
          `DistributedDataParallel: the ranks have different numbers of parameters requiring grad (${got.join(', ')})`,
          'DISTRIBUTED',
        );
    } finally {
      for (const t of [count, ...counts]) t.dispose();
    }
    const meta = params.flatMap((p) => [...p.shape, ...p.stride()]);
    if (meta.length > 0) {
      const m = tensor(meta, { dtype: 'int64' });
      try {
        await dist.broadcast(m, 0);
        const theirs = m.toArray() as number[];
        if (theirs.some((v, i) => v !== meta[i]))
          throw new TorchError(
            "DistributedDataParallel: this rank's parameter shapes (or strides) differ from rank 0's",
            'DISTRIBUTED',
          );
      } finally {
        m.dispose();
      }
    }
    await broadcastCoalesced([...this.module.parameters(), ...this.module.buffers()], 250 * 1024 * 1024);
  }

  /** Gradient hook: copies the gradient the parameter will hold after accumulation into its bucket slot. */
  private _onGrad(p: Parameter, g: Tensor): void {
    if (this._noSync > 0 || gradientSyncSuppressed()) return;
    const where = this._where.get(p);
    if (where === undefined) return;
    const b = this._buckets[where[0]]!;
    if (b.launched !== null)
      throw new Error(
        'DistributedDataParallel: a gradient arrived for a bucket already being reduced: call `await ddp.synchronize()` after each backward (or run the extra backward inside ddp.noSync())',
      );
    const i = where[1];
    const old = p.grad; // the engine adds g to it after this hook
    const scale = 1 / dist.getWorldSize();
    tidy(() => {
      const slot = b.flat.narrow(0, b.offsets[i]!, p.numel());
      const total = old === null ? g.reshape([-1]) : old.reshape([-1]).add(g.reshape([-1]));
      // PyTorch's reducer multiplies by 1 / world size while copying into the bucket, then all-reduces the sum
      slot.copy_(total.mul(scale));
    });
    if (!this._seen.has(p)) {
      this._seen.add(p);
      b.ready++;
      if (!this._rebuilt) this._readyOrder.push(this._index.get(p)!);
    }
    this._launchReady();
  }

  private _launchReady(): void {
    while (this._next < this._buckets.length) {
      const b = this._buckets[this._next]!;
      if (b.ready < b.params.length) return;
      b.launched = dist.allReduce(b.flat, 'sum');
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
          else slot.copy_(g.reshape([-1]).mul(1 / dist.getWorldSize()));
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
      if (!this._rebuilt && this._readyOrder.length > 0) await this._rebuild();
      if (this.broadcastBuffers && this.module.buffers().length > 0)
        await broadcastCoalesced(this.module.buffers(), 250 * 1024 * 1024);
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
   * PyTorch's Reducer::rebuild_buckets after the first iteration: buckets of bucketCapMB (the first 1 MiB) in the
   * order the gradients became ready, and rank 0's assignment adopted by all (sync_bucket_indices: a broadcast of
   * the indices and the bucket count, int32, then of the bucket sizes).
   */
  private async _rebuild(): Promise<void> {
    this._rebuilt = true;
    const params = this._params();
    const order = [...this._readyOrder, ...params.map((_, i) => i).filter((i) => !this._readyOrder.includes(i))];
    const mine = DistributedDataParallel._assign(params, order, [1024 * 1024, this.bucketCapMB * 1024 * 1024], false);
    const flat = [...mine.flat(), mine.length];
    const indices = tensor(flat, { dtype: 'int32' });
    let assignment: number[][];
    try {
      await dist.broadcast(indices, 0);
      const got = indices.toArray() as number[];
      const n = got[got.length - 1]!;
      const sizes = tensor(
        mine
          .map((b) => b.length)
          .concat(new Array(Math.max(0, n - mine.length)).fill(0))
          .slice(0, n),
        { dtype: 'int32' },
      );
      try {
        await dist.broadcast(sizes, 0);
        const ls = sizes.toArray() as number[];
        assignment = [];
        let k = 0;
        for (const l of ls) {
          assignment.push(got.slice(k, k + l));
          k += l;
        }
      } finally {
        sizes.dispose();
      }
    } finally {
      indices.dispose();
    }
    this._setBuckets(assignment);
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
      throw new Error(
        "DistributedDataParallel: rank 0's parameters have not arrived yet: `await ddp.ready` (or build it with `await DistributedDataParallel.create(module)`) before the first forward",
      );
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

// c10::ScalarType's numbering: broadcast_coalesced groups tensors by it (torch/csrc/utils/tensor_flatten.cpp).
const SCALAR_TYPE: Record<string, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};

/**
 * PyTorch's broadcast_coalesced from rank 0: tensors grouped by dtype (a group is sent once it reaches `limit`
 * bytes; the rest in dtype order), each group flattened into one broadcast, then copied back.
 */
async function broadcastCoalesced(tensors: Tensor[], limit: number): Promise<void> {
  const groups: Tensor[][] = [];
  const open = new Map<string, { ts: Tensor[]; size: number }>();
  for (const t of tensors) {
    const key = `${t.device}:${String(SCALAR_TYPE[t.dtype] ?? 99).padStart(3, '0')}`;
    const g = open.get(key) ?? { ts: [], size: 0 };
    open.set(key, g);
    g.ts.push(t);
    g.size += t.numel() * bytesOf(t.dtype);
    if (g.size >= limit) {
      groups.push(g.ts);
      open.set(key, { ts: [], size: 0 });
    }
  }
  for (const key of [...open.keys()].sort()) if (open.get(key)!.ts.length > 0) groups.push(open.get(key)!.ts);
  for (const g of groups) {
    const flat = tidy(() => cat(g.map((t) => t.detach().reshape([-1]))));
    try {
      await dist.broadcast(flat, 0);
      let off = 0;
      noGrad(() =>
        tidy(() => {
          for (const t of g) {
            const n = t.numel();
            t.copy_(flat.narrow(0, off, n).view(t.shape));
            off += n;
          }
        }),
      );
    } finally {
      flat.dispose();
    }
  }
}

function bytesOf(d: DType): number {
  return d === 'float64' || d === 'int64'
    ? 8
    : d === 'float16' || d === 'bfloat16' || d === 'int16'
      ? 2
      : d === 'bool' || d === 'uint8' || d === 'int8'
        ? 1
        : 4;
}
