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

// ---------------------------------------------------------------- leak tracing (off unless asked for)
/** Live tensors created at one place in the caller's code (see leaks()). */
export interface LeakSite {
  /** The first stack frame outside tensornormal ("at train (file:///app/job.js:12:19)"), or '<unknown>'. */
  site: string;
  /** Live tensors created there. */
  count: number;
}

// handle -> creation site, for every tensor created while tracing; pruned of dead handles as it grows
let traced: Map<number, string> | null = null;
let pruneAt = 1024;
let warnAt = 10_000;
const LIB_DIR = new URL('.', import.meta.url).href;

function creationSite(): string {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const l = line.trim();
    if (l.includes(LIB_DIR) || l.includes(LIB_DIR.replace('file://', '')) || l.startsWith('at new Tensor')) continue;
    if (l.includes('node:internal')) continue;
    return l;
  }
  return '<unknown>';
}

function pruneTraced(): void {
  if (traced === null) return;
  for (const h of traced.keys()) if (!native.isLive(h)) traced.delete(h);
  pruneAt = Math.max(1024, 2 * traced.size);
  // a count that keeps growing is a leak until proven otherwise: say where the tensors come from
  if (traced.size >= warnAt) {
    warnAt *= 2;
    const top = leaks()
      .slice(0, 3)
      .map((s) => `${s.count} from ${s.site}`)
      .join('; ');
    process.emitWarning(
      `${traced.size} traced tensors are alive and the count keeps growing: ${top}`,
      'TensorLeakWarning',
    );
  }
}

/** Starts (or stops) recording where each new tensor is created. TENSORNORMAL_DEBUG_LEAKS=1 starts it at load. */
export function traceLeaks(on = true): void {
  if (typeof on !== 'boolean') throw typeError('a boolean', 'on', on);
  if (on && traced === null) traced = new Map();
  if (!on) traced = null;
}

/**
 * Live tensors grouped by where they were created (tensors created while tracing was on), most first. Needs
 * tracing: TENSORNORMAL_DEBUG_LEAKS=1, traceLeaks() or memory({ trace: true }); empty otherwise.
 */
export function leaks(): LeakSite[] {
  if (traced === null) return [];
  const counts = new Map<string, number>();
  for (const [h, site] of traced) {
    if (!native.isLive(h)) {
      traced.delete(h);
      continue;
    }
    counts.set(site, (counts.get(site) ?? 0) + 1);
  }
  return [...counts].map(([site, count]) => ({ site, count })).sort((a, b) => b.count - a.count);
}

if (process.env.TENSORNORMAL_DEBUG_LEAKS === '1') traced = new Map();

/** Called by every Tensor constructor. */
export function track(t: Owned): void {
  if (traced !== null) {
    traced.set(t._h, creationSite());
    if (traced.size >= pruneAt) pruneTraced();
  }
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
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, into, depth + 1);
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
    throw new TypeError(
      'tidy() is synchronous: fn returned a Promise. Call tidy() inside the async function, once per step.',
    );
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

/** What `memory()` reports: live native tensors and their bytes in this environment (thread). */
export interface MemoryInfo {
  /** Live native tensors (not disposed, not yet collected). */
  tensors: number;
  /** Their storage bytes (storage shared by views counted once). */
  bytes: number;
  /**
   * Bytes of storages whose tensors are gone but that something still keeps alive: an autograd graph held by a
   * live tensor (an activation saved for backward), or a view. They are reported to V8 with the live bytes, so
   * that dropped outputs that hold graphs are collected.
   */
  retainedBytes: number;
  /** With tracing on: live tensors grouped by creation site (leaks()). */
  sites?: LeakSite[];
}

/**
 * Live native tensors and their bytes. `memory({ trace: true })` also starts recording where tensors are created
 * (as TENSORNORMAL_DEBUG_LEAKS=1 does); while tracing, the result lists live tensors by creation site.
 */
export function memory(options: { trace?: boolean } = {}): MemoryInfo {
  if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
  if (options.trace !== undefined) traceLeaks(options.trace);
  const m = native.memory();
  const out: MemoryInfo = { tensors: m.tensors, bytes: m.bytes, retainedBytes: m.retainedBytes };
  if (traced !== null) out.sites = leaks();
  return out;
}

/** Number of live native tensors in this environment (cheap; tests compare it before and after). */
export function liveTensors(): number {
  return native.liveCount();
}
