/** Tokenizers, sequence windows and the seeded split, on hand-computed cases; the fortunes corpus when installed. */
import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

describe('tokenizers', () => {
  it('ByteTokenizer: UTF-8 bytes and back', () => {
    const t = new data.ByteTokenizer();
    expect(t.vocabSize).toBe(256);
    expect([...t.encode('Hi é')]).toEqual([72, 105, 32, 0xc3, 0xa9]);
    expect(t.decode([72, 105, 32, 0xc3, 0xa9])).toBe('Hi é');
    expect(() => t.decode([256])).toThrow(RangeError);
  });
  it('CharTokenizer: sorted characters of the text, unknown characters are named', () => {
    const t = data.CharTokenizer.fromText('hello, world');
    expect(t.chars).toEqual([' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect([...t.encode('hold')]).toEqual([4, 6, 5, 2]);
    expect(t.decode([4, 3, 5, 5, 6])).toBe('hello');
    expect(() => t.encode('hex')).toThrow(/"x" \(U\+0078\) is not in the vocabulary/);
    expect(() => t.decode([9])).toThrow(RangeError);
    expect(() => new data.CharTokenizer(['a', 'a'])).toThrow(RangeError);
  });
});

describe('sequence windows and the split', () => {
  it('sequenceWindows: x = tokens[s, s+T), y shifted by one; stride', async () => {
    await noLeak(() => {
      const ds = data.sequenceWindows([0, 1, 2, 3, 4, 5, 6, 7], 3);
      // starts 0, 3 (3 + 3 + 1 = 7 <= 8); 6 would need 10 tokens
      expect(ds.length).toBe(2);
      expect(ds.tensors[0].dtype).toBe('int64');
      expect(ds.tensors[0].toArray()).toEqual([
        [0, 1, 2],
        [3, 4, 5],
      ]);
      expect(ds.tensors[1].toArray()).toEqual([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      ds.dispose();
      const ov = data.sequenceWindows([0, 1, 2, 3, 4, 5], 3, { stride: 1 });
      expect(ov.tensors[0].toArray()).toEqual([
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
      ]);
      ov.dispose();
      expect(() => data.sequenceWindows([1, 2, 3], 3)).toThrow(RangeError);
    });
  });
  it('textSplit: blocks of T + 1, a seeded held-out share, no block on both sides', async () => {
    await noLeak(() => {
      const tokens = Array.from({ length: 40 }, (_, i) => i); // 10 blocks of 4 (T = 3)
      const a = data.textSplit(tokens, { contextLength: 3, valFraction: 0.2, seed: 5 });
      const b = data.textSplit(tokens, { contextLength: 3, valFraction: 0.2, seed: 5 });
      const c = data.textSplit(tokens, { contextLength: 3, valFraction: 0.2, seed: 6 });
      expect(a.train.length).toBe(8);
      expect(a.val.length).toBe(2);
      const firsts = (ds: typeof a.train): number[] => (ds.tensors[0].toArray() as number[][]).map((r) => r[0]!);
      const all = [...firsts(a.train), ...firsts(a.val)].sort((p, q) => p - q);
      expect(all).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36]); // every block once
      expect(firsts(a.val)).toEqual(firsts(b.val)); // seeded
      expect(firsts(a.val)).not.toEqual(firsts(c.val));
      // a window's target ends inside its own block: y[-1] = x[0] + 3
      for (const r of a.val.tensors[1].toArray() as number[][]) expect(r).toEqual([r[0]!, r[0]! + 1, r[0]! + 2]);
      for (const s of [a, b, c]) {
        s.train.dispose();
        s.val.dispose();
      }
      expect(() => data.textSplit([1, 2, 3, 4, 5], { contextLength: 3 })).toThrow(RangeError);
    });
  });
});

describe('fortunes corpus', () => {
  it('reads the fortune files of a directory in name order, not the .dat indexes nor the .u8 links', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tn-fortunes-'));
    try {
      writeFileSync(join(dir, 'b'), 'second\n%\n');
      writeFileSync(join(dir, 'a'), 'first\n%\n');
      writeFileSync(join(dir, 'a.dat'), '\x00\x01');
      symlinkSync('a', join(dir, 'a.u8'));
      expect(data.fortunes({ dir })).toBe('first\n%\n\nsecond\n%\n');
      expect(() => data.fortunes({ dir: join(dir, 'missing') })).toThrow(/apt-get install fortunes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it.skipIf(!existsSync('/usr/share/games/fortunes'))('the installed package: megabytes of text', () => {
    const text = data.fortunes();
    expect(text.length).toBeGreaterThan(1_000_000);
    const tok = data.CharTokenizer.fromText(text);
    expect(tok.vocabSize).toBeGreaterThan(60);
    expect(tok.vocabSize).toBeLessThan(300);
  });
});
