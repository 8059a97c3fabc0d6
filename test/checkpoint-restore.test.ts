// restore() is all or nothing and never hands libtorch an RNG state it would misuse: a crafted rng_state (a Mersenne
// Twister position past the 624 words, a wrong size, a NaN cached normal sample) is refused before anything changes;
// a checkpoint whose optimizer or model section does not fit leaves the model, the optimizer and the RNG as they
// were; every error names the file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { nn, optim, save, restore } from '../lib/index.js';
import { wrap } from '../lib/tensor.js';
import { native } from '../lib/native.js';
import { noLeak } from './support/helpers.js';

let dir: string;
beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), 'tn-restore-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rewrites bytes of the tensor `name` of a safetensors file in place: patch(view of its bytes). */
function patchTensor(path: string, name: string, patch: (bytes: DataView) => void): void {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>;
  const [b, e] = header[name]!.data_offsets;
  patch(new DataView(buf.buffer, buf.byteOffset + 8 + n + b, e - b));
  writeFileSync(path, buf);
}

/** The CPU generator state layout (CPUGeneratorImplStateLegacy): seed u64, left i32, seeded i32, next u64, 624 u64, ... */
const LEFT = 8,
  NEXT = 16,
  NORMAL_X = 16 + 8 + 624 * 8,
  NORMAL_RHO = NORMAL_X + 16,
  NORMAL_VALID = NORMAL_X + 24;

function setup(): { model: nn.Sequential; opt: optim.Adam; path: string } {
  torch.manualSeed(1);
  const model = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
  const opt = new optim.Adam(model.parameters(), { lr: 0.1 });
  torch.tidy(() => {
    model
      .call(torch.randn([5, 3]))
      .sum()
      .backward();
    opt.step();
    opt.zeroGrad();
  });
  torch.randn([7]).dispose(); // the generator mid-stream: left + next == 625, left != 1
  const path = join(dir, `ck-${Math.random().toString(36).slice(2)}.safetensors`);
  save(path, { model, optimizer: opt, epoch: 3 });
  return { model, opt, path };
}

const weights = (m: nn.Module): number[][] => m.parameters().map((p) => p.dataSync() as number[]);
/** The next draws of the process-wide generator, leaving it where it was. */
function peekRandom(): number[] {
  const state = wrap(native.getRngState());
  const v = torch.tidy(() => torch.rand([4]).dataSync() as number[]);
  native.setRngState(state._h);
  state.dispose();
  return v;
}

describe('restore() with a crafted RNG state', () => {
  const crafted: [string, (d: DataView) => void, string][] = [
    [
      'left beyond the state',
      (d) => d.setInt32(LEFT, 100_000, true),
      'Mersenne Twister position is invalid (left 100000',
    ],
    ['left negative', (d) => d.setInt32(LEFT, -5, true), 'Mersenne Twister position is invalid (left -5'],
    ['next beyond the state', (d) => d.setBigUint64(NEXT, 10_000n, true), 'Mersenne Twister position is invalid'],
    [
      'left + next past the end',
      (d) => (d.setInt32(LEFT, 600, true), d.setBigUint64(NEXT, 600n, true)),
      'it would read past the generator',
    ],
    [
      'a NaN cached normal sample',
      (d) => (d.setInt32(NORMAL_VALID, 1, true), d.setFloat64(NORMAL_RHO, NaN, true)),
      'cached normal sample is not finite',
    ],
  ];
  for (const [name, patch, message] of crafted)
    it(`${name}: refused before anything changes, naming the file`, async () => {
      await noLeak(() => {
        const { model, opt, path } = setup();
        patchTensor(path, 'rng_state', patch);
        // change everything, so that a restore that applied anything would show
        torch.noGrad(() => model.parameters().forEach((p) => p.fill_(0.5)));
        const before = weights(model);
        const stepBefore = opt.state.get(model.parameters()[0]!)!.step;
        const draws = peekRandom();
        let err: unknown = null;
        try {
          restore(path, { model, optimizer: opt });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(RangeError);
        expect((err as Error).message).toContain(path);
        expect((err as Error).message).toContain(message);
        expect(weights(model)).toEqual(before);
        expect(opt.state.get(model.parameters()[0]!)!.step).toBe(stepBefore);
        expect(peekRandom()).toEqual(draws);
        opt.dispose();
        model.dispose();
      });
    });

  it('a genuine state (mid-stream, and freshly seeded: left 1) is accepted and restored', async () => {
    await noLeak(() => {
      const { model, opt, path } = setup();
      const draws = torch.tidy(() => torch.rand([4]).dataSync());
      restore(path, { model, optimizer: opt });
      expect(torch.tidy(() => torch.rand([4]).dataSync())).toEqual(draws);
      torch.manualSeed(5);
      const fresh = wrap(native.getRngState());
      expect(native.checkRngState(fresh._h)).toBe('');
      fresh.dispose();
      opt.dispose();
      model.dispose();
    });
  });

  it('a state of the wrong size or dtype is refused by setRngState itself', async () => {
    await noLeak(() => {
      const short = torch.zeros([100], { dtype: 'uint8' });
      expect(native.checkRngState(short._h)).toBe('the RNG state has 100 bytes, not 5056 (or the legacy 5048)');
      expect(() => native.setRngState(short._h)).toThrow(RangeError);
      const f = torch.zeros([5056]);
      expect(native.checkRngState(f._h)).toBe('the RNG state must be a CPU uint8 vector (torch.get_rng_state())');
      torch.dispose([short, f]);
    });
  });
});

describe('a failed restore changes nothing', () => {
  it("another optimizer's state: the model already loaded is put back, the RNG too; the error names the file", async () => {
    await noLeak(() => {
      const { model, opt, path } = setup();
      const sgd = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      torch.noGrad(() => model.parameters().forEach((p) => p.fill_(0.25)));
      const before = weights(model);
      const draws = peekRandom();
      expect(() => restore(path, { model, optimizer: sgd })).toThrow(`restore(${path}): loaded state dict`);
      expect(weights(model)).toEqual(before);
      expect(peekRandom()).toEqual(draws);
      expect(sgd.state.size).toBe(0);
      sgd.dispose();
      opt.dispose();
      model.dispose();
    });
  });

  it('a model of another shape: nothing changes, the optimizer keeps its state', async () => {
    await noLeak(() => {
      const { model, opt, path } = setup();
      const other = new nn.Sequential(new nn.Linear(3, 5), new nn.ReLU(), new nn.Linear(5, 2));
      const otherOpt = new optim.Adam(other.parameters(), { lr: 0.1 });
      const before = weights(other);
      let err: unknown = null;
      try {
        restore(path, { model: other, optimizer: otherOpt });
      } catch (e) {
        err = e;
      }
      expect((err as Error).message).toContain(path);
      expect(weights(other)).toEqual(before);
      expect(otherOpt.state.size).toBe(0);
      otherOpt.dispose();
      other.dispose();
      opt.dispose();
      model.dispose();
    });
  });

  it('no optimizer section: refused before the model is touched', async () => {
    await noLeak(() => {
      const { model, opt } = setup();
      const path = join(dir, 'model-only.safetensors');
      save(path, { model });
      torch.noGrad(() => model.parameters().forEach((p) => p.fill_(0.75)));
      const before = weights(model);
      expect(() => restore(path, { model, optimizer: opt })).toThrow(`${path} holds no optimizer state`);
      expect(weights(model)).toEqual(before);
      opt.dispose();
      model.dispose();
    });
  });
});
