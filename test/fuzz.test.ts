// Fuzz: hostile model files from test/fuzz/hostile.ts (seeded) through every loader, and hostile arguments through
// the train and distributed namespaces. Each file is read, or refused with a TorchError BAD_FILE whose message
// starts with its path; TorchScript mutants go through jit.load with { isolate: true }, so that a crash of libtorch's
// loader would end a child, not this process; every call returns or throws an Error (never a hang, never a crash).
// npm test runs a few hundred cases; scripts/fuzz.sh runs thousands (TN_FUZZ_N, TN_FUZZ_SEED) and can keep the
// corpus (TN_FUZZ_KEEP=dir).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { distributed as dist, jit, train, TorchError } from '../lib/index.js';
import { noLeak } from './support/helpers.js';
import { repoRoot } from './support/transpile-lib.js';
import { jitCases, pthCases, rng, safetensorsCases, type Case } from './fuzz/hostile.js';

const N = Number(process.env.TN_FUZZ_N ?? 1);
const SEED = Number(process.env.TN_FUZZ_SEED ?? 25);
const KEEP = process.env.TN_FUZZ_KEEP;
let dir: string;
beforeAll(() => {
  dir = KEEP ?? mkdtempSync(join(tmpdir(), 'tn-fuzz-'));
  mkdirSync(dir, { recursive: true });
});
afterAll(() => {
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
});

/** Writes each case and runs `load` on it; counts the outcomes; fails on any error but a BAD_FILE naming the file. */
function run(cases: Case[], prefix: (path: string) => string, load: (path: string) => void): Record<string, number> {
  const seen: Record<string, number> = { read: 0, refused: 0 };
  for (const [name, bytes] of cases) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    try {
      load(path);
      seen.read!++;
    } catch (e) {
      const err = e as Error;
      if (!(err instanceof TorchError) || err.code !== 'BAD_FILE' || !err.message.startsWith(prefix(path)))
        throw new Error(`${name}: ${err?.name}: ${err?.message}`, { cause: e });
      seen.refused!++;
      const why = err.message
        .slice(prefix(path).length)
        .replace(/[0-9]+/g, '#')
        .slice(0, 40);
      seen[why] = (seen[why] ?? 0) + 1;
    }
  }
  return seen;
}

describe('hostile files through the loaders', () => {
  it(`${300 * N} hostile .pth files: read or BAD_FILE naming the file`, async () => {
    await noLeak(() => {
      const seen = run(
        pthCases(SEED, 300 * N),
        (p) => `${p} is not a torch.save state dict tensornormal reads: `,
        (p) => torch.dispose([...torch.loadPickledStateDict(p, { maxBytes: 2 ** 28 }).values()]),
      );
      expect(seen.refused).toBeGreaterThan(100 * N);
      expect(seen.read).toBeGreaterThan(0);
    });
  });

  it(`${300 * N} hostile safetensors files: read or BAD_FILE naming the file`, async () => {
    await noLeak(() => {
      const seen = run(
        safetensorsCases(SEED, 300 * N),
        (p) => `${p} is not a valid safetensors file: `,
        (p) => torch.load(p).dispose(),
      );
      expect(seen.refused).toBeGreaterThan(100 * N);
    });
  });

  it(`${200 * N} hostile TorchScript archives: jit.loadWeights (no code runs) reads or refuses each`, async () => {
    const honest = readFileSync(join(repoRoot, 'test', 'fixtures', 'jit', 'honest.pt'));
    await noLeak(() => {
      const seen = run(
        jitCases(SEED, 200 * N, honest),
        (p) => `${p} is not a TorchScript file libtorch can load: `,
        (p) => torch.dispose([...jit.loadWeights(p, { maxBytes: 2 ** 28 }).values()]),
      );
      expect(seen.refused).toBeGreaterThan(50 * N);
    });
  });

  it(`${N} hostile TorchScript archives through jit.load with isolate: this process lives`, async () => {
    const honest = readFileSync(join(repoRoot, 'test', 'fixtures', 'jit', 'honest.pt'));
    // the mutants that pass the checks, the ones libtorch itself must judge
    const passing = jitCases(SEED + 1, 40 * N, honest).filter(([name, bytes]) => {
      const p = join(dir, `pre-${name}`);
      writeFileSync(p, bytes);
      try {
        torch.dispose([...jit.loadWeights(p).values()]);
        return true;
      } catch {
        return false;
      }
    });
    await noLeak(() => {
      const seen = run(
        passing.slice(0, N),
        (p) => `${p} is not a TorchScript file libtorch can load: `,
        (p) => jit.load(p, { isolate: true, timeout: 60_000 }).dispose(),
      );
      expect(seen.read! + seen.refused!).toBe(Math.min(N, passing.length));
    });
  });
});

// ------------------------------------------------------------------ hostile arguments

/** Values no API takes where it wants something else: each must give a TypeError, RangeError or TorchError. */
function hostileValues(): unknown[] {
  const throwing = new Proxy(
    {},
    {
      get() {
        throw new Error('hostile getter');
      },
    },
  );
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const disposed = torch.zeros([2]);
  disposed.dispose();
  const sparse: unknown[] = [];
  sparse.length = 2 ** 32 - 1;
  return [
    undefined,
    null,
    NaN,
    -1,
    2 ** 53,
    Infinity,
    '',
    'x',
    {},
    [],
    () => undefined,
    Symbol('s'),
    throwing,
    cyclic,
    disposed,
    sparse,
    Object.create(null) as object,
    { model: throwing, epochs: -1 },
    { rank: NaN, worldSize: 2 ** 31 },
  ];
}

/** Calls f with each argument list; every outcome must be a value or an Error, within `limit` ms. */
async function hammer(name: string, f: (...a: unknown[]) => unknown, r: () => number, calls: number): Promise<number> {
  const values = hostileValues();
  let errors = 0;
  for (let k = 0; k < calls; k++) {
    const args = Array.from({ length: Math.floor(r() * 4) }, () => values[Math.floor(r() * values.length)]);
    let outcome: unknown;
    try {
      const v = f(...args);
      if (v instanceof Promise) {
        let timer: NodeJS.Timeout | undefined;
        outcome = await Promise.race([
          v.then(
            () => 'resolved',
            (e: unknown) => e,
          ),
          new Promise((res) => {
            timer = setTimeout(() => res(new Error(`${name}: pending after 20 s`)), 20_000);
          }),
        ]);
        clearTimeout(timer);
        if (outcome instanceof Error && outcome.message.endsWith('pending after 20 s')) throw outcome;
      }
    } catch (e) {
      outcome = e;
    }
    if (outcome !== undefined && outcome !== 'resolved' && !(outcome instanceof Error))
      throw new Error(`${name}: threw a non-Error ${String(outcome)}`);
    if (outcome instanceof Error) {
      errors++;
      expect(['TypeError', 'RangeError', 'TorchError', 'Error'], `${name}: ${outcome.stack}`).toContain(outcome.name);
    }
  }
  return errors;
}

describe('hostile arguments through the train and distributed namespaces', () => {
  it(`every function of train and distributed, ${40 * N} hostile calls each: an Error or a value, never a crash or hang`, async () => {
    const r = rng(SEED);
    const skip = new Set(['runCommand']); // the launcher's command line: it starts processes
    let total = 0;
    for (const [ns, mod] of [
      ['train', train],
      ['distributed', dist],
    ] as const) {
      for (const [name, f] of Object.entries(mod)) {
        if (typeof f !== 'function' || skip.has(name)) continue;
        const isClass = /^class\b/.test(Function.prototype.toString.call(f));
        const call = isClass
          ? (...a: unknown[]) => new (f as new (...x: unknown[]) => unknown)(...a)
          : (f as (...x: unknown[]) => unknown);
        total += await hammer(`${ns}.${name}`, call, r, 40 * N);
      }
    }
    expect(total).toBeGreaterThan(100);
    expect(dist.isInitialized()).toBe(false);
  });
});
