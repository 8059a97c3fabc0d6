/**
 * torch.distributed on libtorch's c10d: a default process group (Gloo on CPU; NCCL in CUDA builds that have it) and
 * its collectives. One group per process (per Node environment), PyTorch-shaped:
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
import { tidy } from '../scope.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';
export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min', 'product'];

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
/** This process's rank in the default group. */
export function getRank(): number {
  return info().rank;
}
/** Number of processes in the default group. */
export function getWorldSize(): number {
  return info().worldSize;
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
  return info().bytes;
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
export async function destroyProcessGroup(): Promise<void> {
  info();
  await native.distDestroy();
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
export async function allReduce(tensor: Tensor, op: ReduceOp = 'sum'): Promise<void> {
  const t = tensorArg(tensor, 'tensor');
  const o = opArg(op, t);
  info();
  await viaWider(t, (x) => native.distAllReduce(x._h, o));
}

/** Copies rank `src`'s `tensor` into `tensor` on every other rank (torch.distributed.broadcast). */
export async function broadcast(tensor: Tensor, src: number): Promise<void> {
  const t = tensorArg(tensor, 'tensor');
  is.nonNegativeInteger(src, 'src');
  const { worldSize } = info();
  if (src >= worldSize) throw rangeError(`a rank below the world size (${worldSize})`, 'src', src);
  await viaWider(t, (x) => native.distBroadcast(x._h, src));
}

/**
 * Gathers every rank's `tensor` into `tensorList` (one tensor per rank, each of `tensor`'s shape and dtype), on
 * every rank (torch.distributed.all_gather).
 */
export async function allGather(tensorList: Tensor[], tensor: Tensor): Promise<void> {
  if (!Array.isArray(tensorList)) throw typeError('an array of Tensors', 'tensorList', tensorList);
  const t = tensorArg(tensor, 'tensor');
  const { worldSize } = info();
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
  );
}

/**
 * Reduces `inputList[r]` over all ranks into `output` on rank r (torch.distributed.reduce_scatter). Gloo in
 * libtorch 1.13 has no reduce-scatter, so this all-reduces the concatenated inputs and keeps this rank's part:
 * W times the bytes of a true reduce-scatter (fine for statistics, not for a bandwidth-bound inner loop).
 */
export async function reduceScatter(output: Tensor, inputList: Tensor[], op: ReduceOp = 'sum'): Promise<void> {
  const out = tensorArg(output, 'output');
  if (!Array.isArray(inputList)) throw typeError('an array of Tensors', 'inputList', inputList);
  const { rank, worldSize } = info();
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
  const o = opArg(op, out);
  const flat = tidy(() => cat(inputList.map((x) => x.reshape([-1]))));
  try {
    await viaWider(flat, (x) => native.distAllReduce(x._h, o));
    const n = out.numel();
    tidy(() => {
      out.copy_(flat.narrow(0, rank * n, n).view(out.shape));
    });
  } finally {
    flat.dispose();
  }
}

/** Waits until every rank has reached it (torch.distributed.barrier). */
export async function barrier(): Promise<void> {
  info();
  await native.distBarrier();
}

export { withoutGradientSync } from './state.js';
export { runCommand } from './launch.js';
export { CurvatureSync, type CurvatureSyncOptions } from './curvature.js';
