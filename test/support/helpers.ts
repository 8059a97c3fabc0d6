/** Shared test helpers: numeric comparison against references, the live-tensor leak check, expected errors. */
import { expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Tensor,
  TorchError,
  liveTensors,
  tidy,
  versions,
  type NestedArray,
  type TorchErrorCode,
} from '../../lib/index.js';

function flat(x: NestedArray<number> | number[] | Float64Array): number[] {
  if (typeof x === 'number') return [x];
  if (x instanceof Float64Array) return Array.from(x);
  return (x as unknown[]).flat(Infinity as 1) as number[];
}

function shapeOf(x: NestedArray<number>): number[] {
  const shape: number[] = [];
  let cur: unknown = x;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

/** Asserts a tensor's values equal `expected` within |a - e| <= atol + rtol * |e|, and its shape when given nested arrays. */
export function expectClose(
  t: Tensor,
  expected: NestedArray<number> | Float64Array,
  { atol = 1e-6, rtol = 1e-5 } = {},
): void {
  const got = t.dataSync() as number[];
  const want = flat(expected as NestedArray<number>);
  // nested arrays give the shape too (a flat array or a Float64Array only the values, in order)
  if (Array.isArray(expected) && Array.isArray(expected[0]))
    expect(t.shape, 'shape').toEqual(shapeOf(expected as NestedArray<number>));
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const e = want[i]!,
      a = got[i]!;
    if (Number.isNaN(e)) {
      expect(Number.isNaN(a), `element ${i}`).toBe(true);
      continue;
    }
    if (!Number.isFinite(e)) {
      expect(a, `element ${i}`).toBe(e);
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      expect.fail(`element ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`);
  }
}

/** Runs fn and asserts it leaves no more live native tensors than before. */
export async function noLeak<T>(fn: () => T | Promise<T>): Promise<T> {
  const before = liveTensors();
  const r = await fn();
  expect(liveTensors() - before, 'live native tensors leaked').toBe(0);
  return r;
}

/** Runs fn inside tidy and checks that no tensor outlives it. */
export const scoped = (fn: () => void): Promise<void> => noLeak(() => tidy(fn));

/** Asserts that fn throws a TorchError with this code (null: any code) and message (a string: exactly that). */
export function expectTorchError(fn: () => unknown, code: TorchErrorCode | null, message: string | RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(TorchError);
  if (code !== null) expect((err as TorchError).code).toBe(code);
  if (typeof message === 'string') expect((err as Error).message).toBe(message);
  else expect((err as Error).message).toMatch(message);
}

/** Runs fn with a fresh folder under the system's temporary folder (named from `prefix`), removed afterwards. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A deterministic pseudo-random stream for building reference inputs (independent of libtorch's RNG). */
export function lcg(seed = 1): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/**
 * libtorch's own wording of a message, which changed between the versions the project builds against (Debian 12's
 * 1.13 and Debian 13's 2.6; scripts/test-debian13.sh runs the suite on the latter): `old` up to 1.13, `current` from 2.x.
 */
export function libtorchSays(old: string, current: string): string {
  return Number(versions().torch.split('.')[0]) >= 2 ? current : old;
}

/** The error fn throws (fails the test when it does not throw). */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }
  return expect.fail('expected fn to throw');
}

/** A TCP port on 127.0.0.1 that nobody listens on now (for a store or a server a test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The largest |a - b| / max(1e-12, |b|) over two lists of rows of numbers (b is the reference). */
export function maxRelDiff(a: number[][], b: number[][]): number {
  let worst = 0;
  a.forEach((row, i) =>
    row.forEach((v, j) => {
      const w = b[i]![j]!;
      worst = Math.max(worst, Math.abs(v - w) / Math.max(1e-12, Math.abs(w)));
    }),
  );
  return worst;
}
