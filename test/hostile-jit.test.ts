// TorchScript archives from strangers (lib/torchscript.ts, lib/jit.ts): crafted files judged by PyTorch's own
// torch.jit.load (test/fixtures/jit, written by test/reference/hostile_jit.py). The three that kill Python with
// SIGSEGV (6,000 nested parentheses, 6,000 unary minus signs, a sum of 12,000 terms) and the ones PyTorch loads
// although they read out of bounds (a tensor past its storage, a storage record too short) are refused before
// libtorch sees them; jit.loadWeights reads PyTorch's state_dict() without running the archive's code (whose
// __setstate__ runs at load); { isolate: true } survives a loader crash in a child.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { jit, nn, TorchError } from '../lib/index.js';
import { loadInChild } from '../lib/jit.js';
import { MAX_CODE_OPERATORS } from '../lib/torchscript.js';
import { noLeak, thrown } from './support/helpers.js';
import { addonPath, repoRoot } from './support/transpile-lib.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'jit');
type State = Record<string, { shape: number[]; dtype: string; values: number[] }>;
type Expected =
  | { torch: 'ok'; state: State; stdout: string }
  | { torch: 'error'; message: string }
  | { torch: 'crash'; signal: number };
const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as Record<string, Expected>;
const file = (name: string): string => join(fixtures, `${name}.pt`);

function expectBadFile(path: string, f: () => unknown, why?: string | RegExp): void {
  const e = thrown(f);
  expect(e, e.stack).toBeInstanceOf(TorchError);
  expect((e as TorchError).code).toBe('BAD_FILE');
  expect(e.message.startsWith(`${path} is not a TorchScript file libtorch can load: `), e.message).toBe(true);
  if (why !== undefined) expect(e.message).toMatch(why);
}
function expectState(sd: Map<string, torch.Tensor>, state: State): void {
  expect(new Set(sd.keys())).toEqual(new Set(Object.keys(state)));
  for (const [k, t] of sd) {
    expect(t.shape, k).toEqual(state[k]!.shape);
    expect(t.dtype, k).toBe(state[k]!.dtype);
    expect(Array.from(t.dataSync() as ArrayLike<number>), k).toEqual(state[k]!.values);
  }
}

/** Where PyTorch loads or crashes and we refuse, and what we say. */
const REFUSED: Record<string, RegExp> = {
  'parens-6000': /code\/__torch__.py: line \d+ nests brackets more than 200 deep/,
  'unary-6000': new RegExp(`more than ${MAX_CODE_OPERATORS} operators`),
  'sum-12000': new RegExp(`more than ${MAX_CODE_OPERATORS} operators`),
  'not-6000': new RegExp(`more than ${MAX_CODE_OPERATORS} operators`),
  'size-past-storage': /data.pkl: a tensor of size \[4096, 3\] at offset 0 goes past its storage of 6 elements/,
  'storage-record-short': /data.pkl: storage '0' has 4 bytes in data\/, fewer than its \d+ x 4/,
  'deep-tuple-in-state': /data.pkl: the pickle nests values more than 1000 levels deep/,
  'not-torchscript': /no constants.pkl in the archive/,
};

describe('crafted TorchScript archives, against torch.jit.load', () => {
  it('the fixtures are what the reference script recorded: three crash PyTorch, two load out of bounds', () => {
    for (const k of ['parens-6000', 'unary-6000', 'sum-12000']) expect(expected[k]?.torch, k).toBe('crash');
    for (const k of ['size-past-storage', 'storage-record-short', 'honest', 'setstate'])
      expect(expected[k]?.torch, k).toBe('ok');
  });

  for (const [name, exp] of Object.entries(expected)) {
    const refused = REFUSED[name];
    it(`${name}: PyTorch ${exp.torch === 'crash' ? `dies (signal ${exp.signal})` : exp.torch}; here ${refused ? 'refused before libtorch' : 'loaded'}`, async () => {
      const path = file(name);
      await noLeak(() => {
        if (refused) {
          expectBadFile(path, () => jit.load(path), refused);
          expectBadFile(path, () => jit.loadWeights(path), refused);
          expectBadFile(path, () => jit.load(path, { isolate: true }), refused);
          return;
        }
        expect(exp.torch).toBe('ok');
        const state = (exp as { state: State }).state;
        if (name === 'setstate') {
          // its state is whatever its __getstate__ returned, named only by its __setstate__'s code
          expectBadFile(path, () => jit.loadWeights(path), /has its own __setstate__/);
          const m = jit.load(path);
          const own = m.stateDict();
          expectState(own, state);
          torch.dispose([...own.values()]);
          m.dispose();
          return;
        }
        // without running anything: PyTorch's state_dict(), exactly
        const sd = jit.loadWeights(path);
        expectState(sd, state);
        torch.dispose([...sd.values()]);
        // loaded by libtorch: the same tensors
        const m = jit.load(path);
        const own = m.stateDict();
        expectState(own, state);
        torch.dispose([...own.values()]);
        m.dispose();
      });
    });
  }

  it('jit.load runs the archive code at load time (a __setstate__ printed); jit.loadWeights does not run it', async () => {
    const path = file('setstate');
    expect((expected.setstate as { stdout: string }).stdout).toBe('SETSTATE-RAN-AT-LOAD');
    // libtorch's loader, alone in a child: the marker is printed though forward never runs
    const r = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(addonPath)}).jitLoad(process.argv[1])`, path],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('SETSTATE-RAN-AT-LOAD');
    // jit.loadWeights is TypeScript reading the archive as data: it never reaches libtorch's interpreter, and says
    // why it cannot name this module's state without running its __setstate__
    expectBadFile(path, () => jit.loadWeights(path), /has its own __setstate__/);
  });

  it('{ isolate: true }: a loader crash (SIGSEGV) ends the child, and this process gets a BAD_FILE error', () => {
    const path = file('parens-6000'); // the checks refuse it; handed to the child directly, libtorch crashes there
    const t0 = Date.now();
    expectBadFile(path, () => loadInChild(path), /libtorch's loader crashed on it in a child process \(SIGSEGV\)/);
    expect(Date.now() - t0).toBeLessThan(60_000);
    loadInChild(file('honest')); // a good file passes
    expect(() => loadInChild(file('not-torchscript'))).toThrow(
      /PytorchStreamReader failed locating file constants.pkl/,
    );
  });

  it('loadWeights(path, model) reads a TorchScript archive without running it; errors name the file', async () => {
    await noLeak(() => {
      const model = new nn.Linear(2, 2);
      const e = thrown(() => torch.loadWeights(file('honest'), model));
      expect(e.message).toContain(file('honest'));
      expect(e.message).toContain('Unexpected key');
      expectBadFile(file('size-past-storage'), () => torch.loadWeights(file('size-past-storage'), model));
      model.dispose();
    });
  });

  it('options: maxBytes bounds what the records declare; isolate and timeout are checked', () => {
    const path = file('honest');
    expectBadFile(path, () => jit.load(path, { maxBytes: 100 }), /its records declare more than 100 bytes/);
    expect(() => jit.load(path, { isolate: 'yes' as never })).toThrow(TypeError);
    expect(() => jit.load(path, { timeout: 0 })).toThrow(RangeError);
  });
});
