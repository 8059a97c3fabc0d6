/**
 * Ownership of native tensors: explicit `dispose()`, `tidy()` scopes, `using`, and the garbage collector as the
 * safety net.
 *
 * GC registration (a FinalizationRegistry entry, ~200 ns each) is deferred: a new tensor goes into a pending list
 * and is registered only if it is still alive when the list is flushed (every 512 creations or on the next macrotask).
 * Tensors that are disposed quickly, the common case in a training step, never pay for it, and nothing that is
 * still referenced can be collected before it is registered because the pending list holds it.
 */
import { native, type Handle } from './native.js';
import { typeError, FREED, type FreedReason } from './errors.js';

/** The minimum a scope needs of a tensor (implemented by Tensor). */
export interface Owned {
  _h: Handle;
  _kept: boolean;
  dispose(): void;
  /** dispose(), recording why (the DISPOSED error says it) */
  _free(reason: FreedReason): void;
}

const registry = new FinalizationRegistry<Handle>((h) => {
  native.dispose(h); // a stale handle (already disposed) is a no-op: the generation no longer matches
});

let pending: Owned[] = [];
let flushScheduled = false;
const FLUSH_AT = 512;

function flushPending(): void {
  flushScheduled = false;
  const list = pending;
  pending = [];
  for (const t of list) if (t._h >= 0) registry.register(t, t._h);
}

let scope: Owned[] | null = null;

/** Called by every Tensor constructor. */
export function track(t: Owned): void {
  if (scope !== null) scope.push(t);
  pending.push(t);
  if (pending.length >= FLUSH_AT) flushPending();
  else if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushPending).unref();
  }
}

/** Tensors (found in arrays, plain objects, Maps and Sets) that a value carries out of a scope. */
function collect(value: unknown, into: Set<Owned>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if ('_h' in value && '_kept' in value) {
    into.add(value as Owned);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, into, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collect(v, into, depth + 1);
  else if (value instanceof Set) for (const v of value) collect(v, into, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, into, depth + 1);
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns (in an array, object, Map or Set)
 * and those marked with `keep()`. Scopes nest: returned tensors belong to the enclosing scope. `tidy` is
 * synchronous: `fn` must not return a Promise (use a tidy per step inside an async loop instead).
 */
export function tidy<T>(fn: () => T): T;
export function tidy<T>(name: string, fn: () => T): T;
export function tidy<T>(a: string | (() => T), b?: () => T): T {
  const fn = typeof a === 'function' ? a : b;
  if (typeof fn !== 'function') throw typeError('a function', 'fn', typeof a === 'string' ? b : a);
  return scoped(fn, FREED.tidy);
}

/** @internal tidy() whose disposals record `reason` (a gradient hook's scope says so in the DISPOSED error). */
export function scoped<T>(fn: () => T, reason: FreedReason): T {
  const outer = scope;
  const mine: Owned[] = [];
  scope = mine;
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scope = outer;
    for (const t of mine) if (!t._kept) t._free(reason);
    throw err;
  }
  scope = outer;
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of mine) if (!t._kept) t._free(reason);
    throw new TypeError('tidy() is synchronous: fn returned a Promise. Call tidy() inside the async function, once per step.');
  }
  const out = new Set<Owned>();
  collect(result, out);
  for (const t of mine) {
    if (t._kept) continue;
    if (out.has(t)) {
      if (outer !== null) outer.push(t);
    } else t._free(reason);
  }
  return result;
}

/** Marks tensors so no enclosing `tidy` disposes them; they are then the caller's to dispose. */
export function keep<T extends Owned | Owned[]>(t: T): T {
  if (Array.isArray(t)) for (const x of t) x._kept = true;
  else t._kept = true;
  return t;
}

/** Disposes tensors found in a value (a tensor, an array, an object of tensors, ...). */
export function dispose(value: unknown): void {
  const found = new Set<Owned>();
  collect(value, found);
  for (const t of found) t.dispose();
}

/** Live native tensors and their bytes (storage shared by views counted once). */
export function memory(): { tensors: number; bytes: number } {
  const m = native.memory();
  return { tensors: m.tensors, bytes: m.bytes };
}

/** Number of live native tensors in this environment (cheap; tests compare it before and after). */
export function liveTensors(): number {
  return native.liveCount();
}
