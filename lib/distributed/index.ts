/**
 * torch.distributed on libtorch's c10d: a default process group (Gloo on CPU; NCCL in CUDA builds that have it) and
 * its collectives, subgroups (newGroup) on it, checkpoints of a job (saveCheckpoint) and the launcher. One default
 * group per process (per Node environment), PyTorch-shaped:
 *
 *   import { distributed as dist } from 'tensornormal';
 *   await dist.initProcessGroup({ backend: 'gloo' });   // env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
 *   const t = torch.tensor([dist.getRank() + 1]);
 *   await dist.allReduce(t, 'sum');                     // in place, on every rank
 *   await dist.destroyProcessGroup();
 *
 * Collectives return promises: the network work runs on Gloo's threads and the promise settles on the JS thread,
 * so the event loop keeps running meanwhile. Until the promise settles the tensors belong to the collective: do
 * not write (or read, for outputs) them. Every rank must call the same collectives in the same order.
 *
 * A failure (a peer that died, a timeout) rejects the promise with a TorchError whose code is 'DISTRIBUTED'; a
 * peer killed mid-collective is noticed when its sockets close (at once), a silent one after `timeout`.
 */
import { createConnection } from 'node:net';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { TorchError, is, typeError, rangeError } from '../errors.js';
import { cat } from '../ops.js';
import { keep, tidy } from '../scope.js';

/** A process-group backend: 'gloo' (CPU) or 'nccl' (CUDA). */
export type Backend = 'gloo' | 'nccl';
/** A reduction of `allReduce` and its relatives. */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';
/** Every ReduceOp. */
export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min', 'product'];

/** Options of `distributed.initProcessGroup()`: backend, the rendezvous (`initMethod`), rank, world size, timeout. */
export interface InitProcessGroupOptions {
  /** 'gloo' (CPU tensors; the default) or 'nccl' (CUDA tensors, in CUDA builds with NCCL). */
  backend?: Backend;
  /**
   * How the ranks meet (default 'env://'): 'env://' reads MASTER_ADDR and MASTER_PORT (rank 0 hosts a TCPStore
   * there); 'tcp://host:port' names it; 'file:///path' uses a file on a file system every rank sees.
   */
  initMethod?: string;
  /** This process's rank (default: the RANK environment variable). */
  rank?: number;
  /** Number of processes (default: the WORLD_SIZE environment variable). */
  worldSize?: number;
  /** Milliseconds a rendezvous or a collective may wait for the others (default 30 minutes, as PyTorch). */
  timeout?: number;
}

const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(
      `Expected a non-negative integer in the environment variable ${name} but received ${JSON.stringify(v)}`,
    );
  return n;
}

/** Whether this build of tensornormal has c10d with Gloo. */
export function isAvailable(): boolean {
  return native.distAvailable();
}
/** Whether this build has c10d's NCCL process group (a CUDA libtorch with NCCL). */
export function isNcclAvailable(): boolean {
  return native.distAvailable() && native.distNcclAvailable();
}
/** Whether the default process group is initialized. */
export function isInitialized(): boolean {
  return native.distAvailable() && native.distInfo() !== null;
}

function info(): NonNullable<ReturnType<typeof native.distInfo>> {
  const i = native.distAvailable() ? native.distInfo() : null;
  if (i === null)
    throw new TorchError(
      'the default process group is not initialized: call distributed.initProcessGroup() first',
      'DISTRIBUTED',
    );
  return i;
}
const MAKE_GROUP = Symbol('ProcessGroup');

/**
 * A subgroup of the default group (torch.distributed.new_group): made by `newGroup(ranks)` on every rank, held by
 * its members (a non-member gets null). Pass it as the `group` argument of a collective; ranks given to a
 * collective (broadcast's src, reduce's dst) stay global ranks, as in PyTorch.
 */
export class ProcessGroup {
  /** @internal */
  _id: number | null;
  /** The global ranks of the members, in group-rank order. */
  readonly ranks: readonly number[];
  /** This process's rank in the group. */
  readonly rank: number;
  /** Milliseconds its collectives may wait. */
  readonly timeout: number;
  /** @internal (newGroup makes them) */
  constructor(token: symbol, id: number, ranks: number[], rank: number, timeout: number) {
    if (token !== MAKE_GROUP) throw new TypeError('ProcessGroup: groups are made by distributed.newGroup(ranks)');
    this._id = id;
    this.ranks = Object.freeze([...ranks]);
    this.rank = rank;
    this.timeout = timeout;
  }
  /** Number of members. */
  get size(): number {
    return this.ranks.length;
  }
  /** The group rank of global rank `globalRank` (get_group_rank); a RangeError for a non-member. */
  groupRank(globalRank: number): number {
    const i = this.ranks.indexOf(globalRank);
    if (i < 0)
      throw new RangeError(`rank ${globalRank} is not a member of this group (ranks ${this.ranks.join(', ')})`);
    return i;
  }
}

function groupArg(group: unknown): ProcessGroup | undefined {
  if (group === undefined || group === null) return undefined;
  if (!(group instanceof ProcessGroup)) throw typeError('a ProcessGroup (from newGroup) or undefined', 'group', group);
  if (group._id === null)
    throw new TorchError('this process group was destroyed: it cannot be used any more', 'DISTRIBUTED');
  return group;
}

/** This process's rank in the default group (or in `group`). */
export function getRank(group?: ProcessGroup): number {
  const g = groupArg(group);
  return g ? (info(), g.rank) : info().rank;
}
/** Number of processes in the default group (or in `group`). */
export function getWorldSize(group?: ProcessGroup): number {
  const g = groupArg(group);
  return g ? (info(), g.size) : info().worldSize;
}
/** The default group's backend. */
export function getBackend(): Backend {
  return info().backend as Backend;
}
/** LOCAL_RANK as the launcher (or torchrun) sets it: the rank among the processes of this machine (0 without it). */
export function getLocalRank(): number {
  return envInt('LOCAL_RANK') ?? 0;
}
/**
 * Payload bytes this rank has handed to collectives since initProcessGroup (an all-reduce of n bytes counts n, an
 * all-gather n per peer). A ring all-reduce puts 2 (W - 1) / W times that on each rank's link.
 */
export function bytesCommunicated(): number {
  return info().bytes + native.distGroupBytes();
}

/**
 * Makes a subgroup of the given global ranks (torch.distributed.new_group): every rank of the default group must
 * call it, in the same order with the same ranks (the members meet on the default store under the next group name,
 * as PyTorch numbers them). Resolves to the group on its members and to null elsewhere. `timeout` (ms) is its
 * collectives' limit (default: the default group's). Default `ranks`: every rank.
 */
export async function newGroup(ranks?: number[], options: { timeout?: number } = {}): Promise<ProcessGroup | null> {
  const { worldSize, timeout: dflt } = info();
  const rs = ranks ?? Array.from({ length: worldSize }, (_, r) => r);
  if (!Array.isArray(rs)) throw typeError('an array of ranks', 'ranks', ranks);
  if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
  const timeout = options.timeout ?? dflt;
  is.positiveInteger(timeout, 'timeout');
  if (rs.length === 0) throw new RangeError('newGroup: ranks is empty');
  rs.forEach((r, i) => {
    is.nonNegativeInteger(r, `ranks[${i}]`);
    if (r >= worldSize) throw rangeError(`a rank below the world size (${worldSize})`, `ranks[${i}]`, r);
  });
  if (new Set(rs).size !== rs.length) throw new RangeError(`newGroup: ranks has duplicates: [${rs.join(', ')}]`);
  const sorted = [...rs].sort((a, b) => a - b);
  const r = await native.distNewGroup({ ranks: sorted, timeout });
  return r === null ? null : new ProcessGroup(MAKE_GROUP, r.id, sorted, r.rank, timeout);
}

/**
 * Joins the default process group (torch.distributed.init_process_group). Resolves once every rank has joined;
 * rejects with a TorchError('DISTRIBUTED') when they do not within `timeout`, whatever answers on the master's port
 * (something other than the rank-0 store: its sockets are shut down at the timeout). The rendezvous is the one PyTorch
 * uses, so Python ranks (torch.distributed with the Gloo backend, libtorch 1.13) can be members of the same group.
 */
export async function initProcessGroup(options: InitProcessGroupOptions = {}): Promise<void> {
  if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
  const { backend = 'gloo', initMethod = 'env://', timeout = DEFAULT_TIMEOUT_MS } = options;
  is.oneOf(backend, 'backend', ['gloo', 'nccl'] as const);
  is.string(initMethod, 'initMethod');
  is.positiveInteger(timeout, 'timeout');
  if (!native.distAvailable())
    throw new TorchError(
      'distributed is not available: tensornormal was built without c10d/Gloo headers (install libgloo-dev and rebuild)',
      'DISTRIBUTED',
    );
  if (backend === 'nccl' && !native.distNcclAvailable())
    throw new TorchError(
      "backend 'nccl' is not available: this build has no NCCL (it needs a CUDA libtorch with NCCL); use backend 'gloo'",
      'DISTRIBUTED',
    );
  const rank = options.rank ?? envInt('RANK');
  const worldSize = options.worldSize ?? envInt('WORLD_SIZE');
  if (worldSize === undefined)
    throw new TypeError('initProcessGroup: worldSize is not set (pass worldSize or set WORLD_SIZE)');
  if (rank === undefined) throw new TypeError('initProcessGroup: rank is not set (pass rank or set RANK)');
  is.positiveInteger(worldSize, 'worldSize');
  // c10d counts ranks in a C++ int: a world size of 2^31 reached Gloo negative
  if (worldSize > 2 ** 31 - 1)
    throw rangeError('a world size of at most 2147483647 (2^31 - 1)', 'worldSize', worldSize);
  is.nonNegativeInteger(rank, 'rank');
  if (rank >= worldSize) throw rangeError(`a rank below worldSize (${worldSize})`, 'rank', rank);
  let store: 'tcp' | 'file';
  let host: string | undefined;
  let port: number | undefined;
  let path: string | undefined;
  if (initMethod === 'env://') {
    host = process.env.MASTER_ADDR;
    const p = process.env.MASTER_PORT;
    if (host === undefined || host === '')
      throw new TypeError("initProcessGroup: initMethod 'env://' needs MASTER_ADDR in the environment");
    if (p === undefined || p === '')
      throw new TypeError("initProcessGroup: initMethod 'env://' needs MASTER_PORT in the environment");
    port = Number(p);
    store = 'tcp';
  } else if (initMethod.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(initMethod);
    if (m === null) throw rangeError("'tcp://host:port'", 'initMethod', initMethod);
    host = m[1]!.replace(/^\[|\]$/g, '');
    port = Number(m[2]);
    store = 'tcp';
  } else if (initMethod.startsWith('file://')) {
    path = initMethod.slice('file://'.length);
    if (path === '') throw rangeError("'file:///path/to/file'", 'initMethod', initMethod);
    store = 'file';
  } else {
    throw rangeError("'env://', 'tcp://host:port' or 'file:///path'", 'initMethod', initMethod);
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
    throw rangeError('a port in 1..65535', 'MASTER_PORT', port);
  if (store === 'tcp' && rank !== 0) await probeStore(host!, port!, Math.min(250, timeout / 4));
  await native.distInit({ backend, store, host, port, path, rank, worldSize, timeout });
}

/**
 * A c10d store never speaks first. libtorch 1.13's store client parses whatever arrives on its connections, in a
 * thread of its own: bytes from a server that speaks first (another service on the master's port) made it allocate
 * what they spelt and abort the process (std::bad_alloc, terminate). So before joining, a rank other than 0 connects
 * once and listens for `wait` ms: anything received is a DISTRIBUTED error naming the address. (A refused
 * connection is left to c10d, which retries until the timeout: rank 0 may not be up yet.)
 */
async function probeStore(host: string, port: number, wait: number): Promise<void> {
  const spoke = await new Promise<number>((resolve) => {
    const s = createConnection({ host, port });
    let got = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    s.on('connect', () => {
      timer = setTimeout(done, wait);
    });
    s.on('data', (b: Buffer) => {
      got += b.length;
      done();
    });
    s.on('error', done);
    s.on('close', done);
  });
  if (spoke > 0)
    throw new TorchError(
      `initProcessGroup failed: something other than a c10d store answers on ${host}:${port} (it sent ${spoke} bytes before any request)`,
      'DISTRIBUTED',
    );
}

/** Leaves the default group (torch.distributed.destroy_process_group); its threads are joined off the JS thread. */
export async function destroyProcessGroup(group?: ProcessGroup): Promise<void> {
  const g = groupArg(group);
  info();
  if (g) {
    const id = g._id!;
    g._id = null;
    await native.distDestroyGroup(id);
    return;
  }
  await native.distDestroy();
}

/** The native group id of `group` and the world size and rank it reduces over. */
function where(group: unknown): { id: number | undefined; size: number; rank: number; toLocal(r: number): number } {
  const g = groupArg(group);
  const i = info();
  if (!g) {
    return {
      id: undefined,
      size: i.worldSize,
      rank: i.rank,
      toLocal: (r) => {
        if (r >= i.worldSize) throw rangeError(`a rank below the world size (${i.worldSize})`, 'rank', r);
        return r;
      },
    };
  }
  return { id: g._id!, size: g.size, rank: g.rank, toLocal: (r) => g.groupRank(r) };
}

function tensorArg(t: unknown, name: string): Tensor {
  if (!(t instanceof Tensor)) throw typeError('a Tensor', name, t);
  if (t.isDisposed) throw new TorchError(`${name} was disposed: it cannot be used any more`, 'DISPOSED');
  if (!t.isContiguous()) throw new TypeError(`${name} must be contiguous (call .contiguous() first)`);
  return t;
}

// Gloo reduces float32/64, float16, int8, uint8, int32 and int64; the others travel as a wider dtype (exact:
// int16 and bool fit in int32, bfloat16 in float32) and are converted back.
const WIDER: Partial<Record<string, 'int32' | 'float32'>> = { bool: 'int32', int16: 'int32', bfloat16: 'float32' };

/** Runs `fn` on `t` itself, or on a wider copy that is written back into `t` afterwards. */
async function viaWider(t: Tensor, fn: (x: Tensor) => Promise<void>): Promise<void> {
  const w = WIDER[t.dtype];
  if (w === undefined || t.isCuda) return fn(t);
  const x = t.to(w);
  try {
    await fn(x);
    const back = x.to(t.dtype);
    t.copy_(back);
    back.dispose();
  } finally {
    x.dispose();
  }
}

function opArg(op: unknown, t: Tensor): ReduceOp {
  const o = is.oneOf(op, 'op', REDUCE_OPS);
  if (
    o === 'avg' &&
    !(t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16')
  )
    throw new TypeError(`allReduce: op 'avg' needs a floating-point tensor, but it is ${t.dtype}`);
  return o;
}

/**
 * Reduces `tensor` over all ranks, in place on every rank (torch.distributed.all_reduce). `op`: 'sum' (default),
 * 'avg' (the sum divided by the world size, as PyTorch's ReduceOp.AVG), 'max', 'min', 'product'.
 */
export async function allReduce(tensor: Tensor, op: ReduceOp = 'sum', group?: ProcessGroup): Promise<void> {
  const t = tensorArg(tensor, 'tensor');
  const o = opArg(op, t);
  const { id } = where(group);
  await viaWider(t, (x) => native.distAllReduce(x._h, o, id));
}

/**
 * Reduces `tensor` over the ranks into `tensor` on global rank `dst` (torch.distributed.reduce); on the other ranks
 * `tensor` is left as scratch (do not rely on its contents).
 */
export async function reduce(tensor: Tensor, dst: number, op: ReduceOp = 'sum', group?: ProcessGroup): Promise<void> {
  const t = tensorArg(tensor, 'tensor');
  is.nonNegativeInteger(dst, 'dst');
  const o = opArg(op, t);
  const w = where(group);
  const d = w.toLocal(dst);
  await viaWider(t, (x) => native.distReduce(x._h, d, o, w.id));
}

/** Copies rank `src`'s `tensor` into `tensor` on every other rank (torch.distributed.broadcast). */
export async function broadcast(tensor: Tensor, src: number, group?: ProcessGroup): Promise<void> {
  const t = tensorArg(tensor, 'tensor');
  is.nonNegativeInteger(src, 'src');
  const { worldSize } = info();
  if (src >= worldSize) throw rangeError(`a rank below the world size (${worldSize})`, 'src', src);
  const w = where(group);
  const s = w.toLocal(src);
  await viaWider(t, (x) => native.distBroadcast(x._h, s, w.id));
}

/**
 * Gathers every rank's `tensor` into `tensorList` (one tensor per rank, each of `tensor`'s shape and dtype), on
 * every rank (torch.distributed.all_gather).
 */
export async function allGather(tensorList: Tensor[], tensor: Tensor, group?: ProcessGroup): Promise<void> {
  if (!Array.isArray(tensorList)) throw typeError('an array of Tensors', 'tensorList', tensorList);
  const t = tensorArg(tensor, 'tensor');
  const { size: worldSize, id } = where(group);
  if (tensorList.length !== worldSize)
    throw new RangeError(
      `allGather: tensorList has ${tensorList.length} tensors; it needs one per rank (${worldSize})`,
    );
  const outs = tensorList.map((o, i) => {
    const x = tensorArg(o, `tensorList[${i}]`);
    if (x.dtype !== t.dtype || x.shape.join() !== t.shape.join())
      throw new TypeError(
        `allGather: tensorList[${i}] is ${x.dtype} [${x.shape}] but tensor is ${t.dtype} [${t.shape}]`,
      );
    return x;
  });
  if (WIDER[t.dtype] !== undefined && !t.isCuda) {
    const w = WIDER[t.dtype]!;
    const x = t.to(w);
    const wide = outs.map((o) => o.to(w));
    try {
      await native.distAllGather(
        wide.map((o) => o._h),
        x._h,
        id,
      );
      wide.forEach((o, i) => {
        const back = o.to(t.dtype);
        outs[i]!.copy_(back);
        back.dispose();
      });
    } finally {
      x.dispose();
      for (const o of wide) o.dispose();
    }
    return;
  }
  await native.distAllGather(
    outs.map((o) => o._h),
    t._h,
    id,
  );
}

/** Runs `fn` on (out, input) themselves, or on wider copies, `out`'s written back afterwards (Gloo's dtypes). */
async function pairViaWider(out: Tensor, input: Tensor, fn: (o: Tensor, i: Tensor) => Promise<void>): Promise<void> {
  const w = WIDER[out.dtype];
  if (w === undefined || out.isCuda) return fn(out, input);
  const o = out.to(w);
  const i = input.to(w);
  try {
    await fn(o, i);
    const back = o.to(out.dtype);
    out.copy_(back);
    back.dispose();
  } finally {
    o.dispose();
    i.dispose();
  }
}

/**
 * Gathers every rank's `input` into `output`, which holds W times its elements (rank r's in the r-th block along
 * dim 0), on every rank (torch.distributed.all_gather_into_tensor): one collective, no list of outputs.
 */
export async function allGatherIntoTensor(output: Tensor, input: Tensor, group?: ProcessGroup): Promise<void> {
  const out = tensorArg(output, 'output');
  const inp = tensorArg(input, 'input');
  const { size, id } = where(group);
  if (out.dtype !== inp.dtype)
    throw new TypeError(`allGatherIntoTensor: output is ${out.dtype} but input is ${inp.dtype}`);
  if (out.numel() !== size * inp.numel())
    throw new RangeError(
      `allGatherIntoTensor: output has ${out.numel()} elements; it needs ${size} x ${inp.numel()} (world size x input)`,
    );
  await pairViaWider(out, inp, (o, i) => native.distAllGatherInto(o._h, i._h, id));
}

/**
 * Reduces `input` (W equal blocks along dim 0, W the group size) over the ranks and leaves block r's reduction in
 * `output` on rank r (torch.distributed.reduce_scatter_tensor). A true reduce-scatter: each rank sends the W - 1
 * blocks that are not its own, (W - 1) / W of `input` (an all-reduce sends 2 (W - 1) / W), and reduces the blocks
 * it receives in rank order.
 */
export async function reduceScatterTensor(
  output: Tensor,
  input: Tensor,
  op: ReduceOp = 'sum',
  group?: ProcessGroup,
): Promise<void> {
  const out = tensorArg(output, 'output');
  const inp = tensorArg(input, 'input');
  const o = opArg(op, out);
  const { size, id } = where(group);
  if (out.dtype !== inp.dtype)
    throw new TypeError(`reduceScatterTensor: output is ${out.dtype} but input is ${inp.dtype}`);
  if (inp.numel() !== size * out.numel())
    throw new RangeError(
      `reduceScatterTensor: input has ${inp.numel()} elements; it needs ${size} x ${out.numel()} (world size x output)`,
    );
  await pairViaWider(out, inp, (a, b) => native.distReduceScatter(a._h, b._h, o, id));
}

/**
 * Reduces `inputList[r]` over all ranks into `output` on rank r (torch.distributed.reduce_scatter): the inputs are
 * concatenated and reduce-scattered as reduceScatterTensor does ((W - 1) / W of the inputs leave each rank).
 */
export async function reduceScatter(
  output: Tensor,
  inputList: Tensor[],
  op: ReduceOp = 'sum',
  group?: ProcessGroup,
): Promise<void> {
  const out = tensorArg(output, 'output');
  if (!Array.isArray(inputList)) throw typeError('an array of Tensors', 'inputList', inputList);
  const { size: worldSize } = where(group);
  if (inputList.length !== worldSize)
    throw new RangeError(
      `reduceScatter: inputList has ${inputList.length} tensors; it needs one per rank (${worldSize})`,
    );
  inputList.forEach((x, i) => {
    tensorArg(x, `inputList[${i}]`);
    if (x.dtype !== out.dtype || x.shape.join() !== out.shape.join())
      throw new TypeError(
        `reduceScatter: inputList[${i}] is ${x.dtype} [${x.shape}] but output is ${out.dtype} [${out.shape}]`,
      );
  });
  opArg(op, out);
  const flat = tidy(() => keep(cat(inputList.map((x) => x.reshape([-1])))));
  try {
    await reduceScatterTensor(out, flat, op, group);
  } finally {
    flat.dispose();
  }
}

/**
 * Waits until every rank (of the default group, or of `group`) has reached it (torch.distributed.barrier);
 * `timeout` (ms, default the group's) bounds the wait: past it the promise rejects with a TorchError 'DISTRIBUTED'.
 * `barrier(group)` is `barrier({ group })`.
 */
export async function barrier(options: ProcessGroup | { group?: ProcessGroup; timeout?: number } = {}): Promise<void> {
  const o = options instanceof ProcessGroup ? { group: options } : options;
  if (o === null || typeof o !== 'object') throw typeError('an options object or a ProcessGroup', 'options', options);
  if (o.timeout !== undefined) is.positiveInteger(o.timeout, 'timeout');
  const { id } = where(o.group);
  const done = native.distBarrier(id, o.timeout);
  if (o.timeout === undefined) return done;
  // libtorch 1.13's Gloo barrier ignores BarrierOptions.timeout (it waits for the group's): bound the wait here
  // too. As after any timed-out collective, the group is then out of step: destroy it (or let the launcher restart).
  let timer: NodeJS.Timeout | undefined;
  const limit = o.timeout;
  done.catch(() => undefined); // settles later, after the rejection below; nobody awaits it then
  try {
    await Promise.race([
      done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new TorchError(
                `barrier timed out after ${limit} ms on rank ${getRank()}: not every rank of the group reached it`,
                'DISTRIBUTED',
              ),
            ),
          limit,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export { withoutGradientSync } from './state.js';
export { runCommand } from './launch.js';
export { CurvatureSync, type CurvatureSyncOptions } from './curvature.js';
export {
  saveCheckpoint,
  restoreCheckpoint,
  allGatherObject,
  type DistributedCheckpointContents,
  type StatefulLoader,
} from './checkpoint.js';
