/**
 * Checkpoints of a distributed job, for `tensornormal run --max-restarts N` (torchrun's elastic restarts): every
 * rank calls `saveCheckpoint` at the same step; the state that lives on several ranks is brought together (the
 * curvature a CurvatureSync divided over the ranks, every rank's RNG stream, every rank's data-loader position) and
 * rank 0 writes one file atomically (checkpoint.save: a kill during the write leaves the previous file intact).
 * After a restart every rank calls `restoreCheckpoint`, which puts back the model, the optimizer, its own RNG stream
 * and its loaders' positions, and returns the user values saved with them.
 *
 *   const start = (await dist.restoreCheckpoint(path, { model, optimizer: sync, loaders: { train: loader } }))?.step ?? 0;
 *   for (let step = start; step < steps; step++) {
 *     ...one step...
 *     if ((step + 1) % K === 0) await dist.saveCheckpoint(path, { model, optimizer: sync, loaders: { train: loader }, step: step + 1 });
 *   }
 */
import { existsSync } from 'node:fs';
import { native } from '../native.js';
import { wrap, Tensor } from '../tensor.js';
import { tensor as makeTensor, zeros } from '../creation.js';
import { tidy, keep } from '../scope.js';
import { TorchError, is, typeError } from '../errors.js';
import { save, restore, type CheckpointModel, type CheckpointOptimizer } from '../checkpoint.js';
import { CurvatureSync } from './curvature.js';
import { allGatherIntoTensor, barrier, getRank, getWorldSize } from './index.js';

/** What has a position to save: a DataLoader, a DistributedSampler (stateDict / loadStateDict of JSON values). */
export interface StatefulLoader {
  stateDict(): unknown;
  loadStateDict(state: never): void;
}

/** What saveCheckpoint writes and restoreCheckpoint puts back: the model, the optimizer (or its CurvatureSync), the loaders. */
export interface DistributedCheckpointContents {
  /** The model (not its DistributedDataParallel wrapper: its weights are the same on every rank). */
  model?: CheckpointModel;
  /** The optimizer, or the CurvatureSync around a TNT / KFAC / Shampoo (its divided state is gathered first). */
  optimizer?: CheckpointOptimizer | CurvatureSync;
  /** Loaders and samplers by name: each rank's position is saved, and restored on the same rank. */
  loaders?: Record<string, StatefulLoader>;
  /** Anything else: user values, returned by restoreCheckpoint (taken from rank 0). */
  [key: string]: unknown;
}

/**
 * Every rank's JSON-serialisable `obj`, in rank order, on every rank (torch.distributed.all_gather_object; JSON
 * rather than pickle). Two collectives: the lengths, then the bytes padded to the longest.
 */
export async function allGatherObject(obj: unknown): Promise<unknown[]> {
  const W = getWorldSize();
  const bytes = Buffer.from(JSON.stringify(obj) ?? 'null', 'utf8');
  const len = makeTensor([bytes.length], { dtype: 'int64' });
  const lens = zeros([W], { dtype: 'int64' });
  let n: number[];
  try {
    await allGatherIntoTensor(lens, len);
    n = Array.from(lens.toTypedArray() as ArrayLike<number | bigint>, Number);
  } finally {
    len.dispose();
    lens.dispose();
  }
  const max = Math.max(1, ...n);
  const mine = zeros([max], { dtype: 'uint8' });
  const all = zeros([W * max], { dtype: 'uint8' });
  try {
    if (bytes.length > 0) {
      const src = tidy(() => keep(makeTensor(Array.from(bytes), { dtype: 'uint8' })));
      tidy(() => mine.narrow(0, 0, bytes.length).copy_(src));
      src.dispose();
    }
    await allGatherIntoTensor(all, mine);
    const data = Buffer.from(all.toTypedArray() as Uint8Array);
    return n.map((k, r) => JSON.parse(data.subarray(r * max, r * max + k).toString('utf8')) as unknown);
  } finally {
    mine.dispose();
    all.dispose();
  }
}

function loadersArg(loaders: unknown): Record<string, StatefulLoader> {
  if (loaders === undefined) return {};
  if (loaders === null || typeof loaders !== 'object') throw typeError('an object of loaders', 'loaders', loaders);
  for (const [k, l] of Object.entries(loaders as Record<string, unknown>))
    if (
      l === null ||
      typeof l !== 'object' ||
      typeof (l as StatefulLoader).stateDict !== 'function' ||
      typeof (l as StatefulLoader).loadStateDict !== 'function'
    )
      throw typeError('a loader with stateDict() and loadStateDict()', `loaders.${k}`, l);
  return loaders as Record<string, StatefulLoader>;
}

/**
 * Saves a checkpoint of a distributed job: call it on every rank at the same step. Gathers a CurvatureSync's divided
 * state onto every rank, every rank's libtorch RNG state and loader positions onto rank 0, which writes `path`
 * atomically; resolves on every rank once the file is complete (a barrier).
 */
export async function saveCheckpoint(path: string, contents: DistributedCheckpointContents): Promise<void> {
  is.string(path, 'path');
  if (contents === null || typeof contents !== 'object')
    throw typeError('an object {model, optimizer, loaders, ...values}', 'contents', contents);
  const { model, optimizer, loaders, ...meta } = contents;
  const ls = loadersArg(loaders);
  if ('rngStates' in meta || 'loaderStates' in meta || 'worldSize' in meta)
    throw new RangeError("saveCheckpoint: 'rngStates', 'loaderStates' and 'worldSize' are the checkpoint's own keys");
  let opt: CheckpointOptimizer | undefined;
  if (optimizer instanceof CurvatureSync) {
    await optimizer.gatherState();
    opt = optimizer.optimizer;
  } else opt = optimizer;
  const W = getWorldSize();
  const rng = wrap(native.getRngState());
  const rngs = zeros([W * rng.numel()], { dtype: 'uint8' });
  try {
    await allGatherIntoTensor(rngs, rng);
    const positions = await allGatherObject(Object.fromEntries(Object.entries(ls).map(([k, l]) => [k, l.stateDict()])));
    if (getRank() === 0) {
      const rngStates = tidy(() => keep(rngs.view([W, rng.numel()])));
      try {
        save(path, {
          ...(model !== undefined ? { model } : {}),
          ...(opt !== undefined ? { optimizer: opt } : {}),
          ...meta,
          worldSize: W,
          rngStates,
          loaderStates: positions,
        });
      } finally {
        rngStates.dispose();
      }
    }
  } finally {
    rng.dispose();
    rngs.dispose();
  }
  await barrier();
}

/**
 * Restores a checkpoint written by saveCheckpoint on every rank: the model, the optimizer (a CurvatureSync's whole
 * state; training then goes on divided), this rank's RNG stream and loader positions. Resolves to the user values
 * saved with it, or null when `path` does not exist (a first start). The world size must be the saved one.
 */
export async function restoreCheckpoint(
  path: string,
  contents: {
    model?: CheckpointModel;
    optimizer?: CheckpointOptimizer | CurvatureSync;
    loaders?: Record<string, StatefulLoader>;
  },
): Promise<Record<string, unknown> | null> {
  is.string(path, 'path');
  if (contents === null || typeof contents !== 'object')
    throw typeError('an object {model, optimizer, loaders}', 'contents', contents);
  const ls = loadersArg(contents.loaders);
  if (!existsSync(path)) return null;
  const opt = contents.optimizer instanceof CurvatureSync ? contents.optimizer.optimizer : contents.optimizer;
  const meta = restore(path, { model: contents.model, optimizer: opt, restoreRng: false });
  const { rngStates, loaderStates, worldSize, ...values } = meta as {
    rngStates?: Tensor;
    loaderStates?: Record<string, unknown>[];
    worldSize?: number;
  } & Record<string, unknown>;
  try {
    const W = getWorldSize();
    const rank = getRank();
    if (worldSize !== W || !(rngStates instanceof Tensor) || !Array.isArray(loaderStates))
      throw new TorchError(
        `${path} was written by saveCheckpoint for ${String(worldSize)} ranks; this group has ${W}` +
          (worldSize === W ? ' (and the file lacks its RNG states or loader positions)' : ''),
        'DISTRIBUTED',
      );
    tidy(() => {
      const mine = rngStates.select(0, rank).contiguous();
      const why = native.checkRngState(mine._h);
      if (why !== '') throw new RangeError(`${path}: rank ${rank}'s RNG state is not valid: ${why}`);
      native.setRngState(mine._h);
    });
    const pos = loaderStates[rank] ?? {};
    for (const [k, l] of Object.entries(ls)) {
      if (!(k in pos)) throw new RangeError(`${path} holds no position for the loader '${k}'`);
      l.loadStateDict(pos[k] as never);
    }
  } finally {
    rngStates?.dispose();
  }
  return values;
}
