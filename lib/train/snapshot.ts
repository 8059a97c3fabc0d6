/**
 * Weight snapshots: every tensor of a model's stateDict packed into one ArrayBuffer, so that a training worker can
 * hand its weights to the main thread as a single transferable buffer (no copy in transit) and the main thread can
 * copy them straight into a serving model's parameters (the only copy on its side).
 *
 * Layout: tensors in stateDict order, each contiguous in its own dtype, starting at a multiple of 64 bytes (one
 * cache line, and aligned for every dtype).
 */
import type { DType } from '../dtype.js';

/** One tensor of a snapshot. */
export interface WeightEntry {
  /** The stateDict name ('0.weight'). */
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offset of the first element in the buffer. */
  offset: number;
  byteLength: number;
}

/** A model's weights at one point of training, as published by a training job (see train.inWorker). */
export interface WeightsSnapshot {
  /** Increases by one with every snapshot a job publishes (1 for the first). */
  version: number;
  /** The step the job gave to publish() (its optimizer step count when published from fit callbacks), or null. */
  step: number | null;
  /** Whatever the job passed as `info` (structured-cloned), or null. */
  info: unknown;
  /** Milliseconds since the epoch when the worker packed it. */
  time: number;
  entries: WeightEntry[];
  /** All the tensors' bytes. Valid until the next snapshot arrives, when it goes back to the worker for reuse. */
  buffer: ArrayBuffer;
  /**
   * Milliseconds the copy into the trainer's `serve` model took on the main thread, all slices together (absent
   * without `serve`).
   */
  loadMs?: number;
  /** The longest the copy held the main thread at once (one slice, or the final swap), in milliseconds. */
  loadBlockMs?: number;
}

/** The tensors a snapshot needs: what a Tensor has (the library's own tensors in the job's thread). */
export interface SnapshotTensor {
  readonly dtype: DType;
  readonly shape: number[];
  numel(): number;
  /** @internal */ _copyTo(span: Uint8Array): void;
  /** @internal */ _copyFrom(span: Uint8Array): void;
}

/** What a snapshot is taken of (nn.Module has it). */
export interface SnapshotModel {
  stateDict(options?: { keepVars?: boolean }): Map<string, unknown> | Record<string, unknown>;
}

// bytes per element of each dtype
const ITEM_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  bfloat16: 2,
  uint8: 1,
  int8: 1,
  int16: 2,
};
const ALIGN = 64;

function isSnapshotTensor(v: unknown): v is SnapshotTensor {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as SnapshotTensor)._copyTo === 'function' &&
    typeof (v as SnapshotTensor).numel === 'function'
  );
}

/** The model's tensors by name, in stateDict order (its own tensors for an nn.Module: nothing to dispose). */
export function namedTensors(model: SnapshotModel, what: string): [string, SnapshotTensor][] {
  if (model === null || typeof model !== 'object' || typeof model.stateDict !== 'function')
    throw new TypeError(
      `${what}: expected a model with stateDict() (an nn.Module) but received ${model === null ? 'null' : typeof model}`,
    );
  const sd = model.stateDict({ keepVars: true });
  const entries = sd instanceof Map ? [...sd.entries()] : Object.entries(sd);
  for (const [name, t] of entries)
    if (!isSnapshotTensor(t)) throw new TypeError(`${what}: stateDict entry '${name}' is not a tensornormal Tensor`);
  return entries as [string, SnapshotTensor][];
}

/** The layout of a model's tensors and the buffer size it needs. */
export function layoutOf(tensors: [string, SnapshotTensor][]): { entries: WeightEntry[]; byteLength: number } {
  let offset = 0;
  const entries: WeightEntry[] = [];
  for (const [name, t] of tensors) {
    const dtype = t.dtype;
    const byteLength = t.numel() * ITEM_BYTES[dtype];
    entries.push({ name, dtype, shape: [...t.shape], offset, byteLength });
    offset += Math.ceil(byteLength / ALIGN) * ALIGN;
  }
  return { entries, byteLength: offset };
}

/** Copies the tensors into `buffer` at the layout's offsets (one copy per tensor, native to buffer). */
export function packInto(tensors: [string, SnapshotTensor][], entries: WeightEntry[], buffer: ArrayBuffer): void {
  for (let i = 0; i < tensors.length; i++) {
    const e = entries[i]!;
    tensors[i]![1]._copyTo(new Uint8Array(buffer, e.offset, e.byteLength));
  }
}

/**
 * Copies a snapshot into the model's parameters and buffers, in place and outside autograd: the parameters keep
 * their identity (an optimizer or hooks on them stay valid). Throws a RangeError, copying nothing, when the names,
 * dtypes or shapes differ.
 */
export function loadSnapshot(model: SnapshotModel, snapshot: WeightsSnapshot): void {
  const tensors = checkSnapshot(model, snapshot);
  const { entries, buffer } = snapshot;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    tensors[i]![1]._copyFrom(new Uint8Array(buffer, e.offset, e.byteLength));
  }
}

/** The model's tensors, once the snapshot is known to match them (names, dtypes, shapes); else a RangeError. */
export function checkSnapshot(model: SnapshotModel, snapshot: WeightsSnapshot): [string, SnapshotTensor][] {
  const tensors = namedTensors(model, 'loadInto');
  const { entries, buffer } = snapshot;
  if (buffer.byteLength === 0 && entries.some((e) => e.byteLength > 0))
    throw new RangeError(
      'loadInto: the snapshot was superseded by a newer one (its buffer went back to the worker); use trainer.weights()',
    );
  if (tensors.length !== entries.length)
    throw new RangeError(
      `loadInto: the snapshot has ${entries.length} tensors but the model's stateDict has ${tensors.length}`,
    );
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!,
      [name, t] = tensors[i]!;
    if (e.name !== name)
      throw new RangeError(`loadInto: tensor ${i} is '${e.name}' in the snapshot but '${name}' in the model`);
    const shape = t.shape;
    if (e.dtype !== t.dtype || shape.length !== e.shape.length || shape.some((d, k) => d !== e.shape[k]))
      throw new RangeError(
        `loadInto: '${name}' is ${e.dtype} [${e.shape.join(', ')}] in the snapshot but ${t.dtype} [${shape.join(', ')}] in the model`,
      );
  }
  return tensors;
}

/** The size in bytes of one element of a dtype. */
export const itemBytes = (dtype: DType): number => ITEM_BYTES[dtype];
