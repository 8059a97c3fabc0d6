/**
 * Incremental decoding with a key-value cache: TransformerLM.forwardCached / generate({ cache }),
 * TransformerEncoderLayer.forwardCached and MultiheadAttention.forwardCached against the full forward pass (itself
 * equal to torch.nn in test/transformer.test.ts), in float64, at every step; greedy tokens with and without the
 * cache, across the point where the window starts to slide.
 */
import { describe, it, expect, vi } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor, nn, models, tidy, noGrad, manualSeed } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

const f64 = { dtype: 'float64' as const };

/** A float64 LM whose logits are far from ties: embeddings N(0, 1) instead of N(0, 0.02^2). */
function lm(options: Partial<models.TransformerLMOptions> = {}): models.TransformerLM {
  manualSeed(3);
  const m = models.transformerLM({
    vocabSize: 11,
    contextLength: 8,
    dModel: 16,
    nHead: 4,
    nLayers: 2,
    dimFeedforward: 24,
    ...f64,
    ...options,
  });
  noGrad(() => m.parameters().forEach((p) => p.shape.length === 2 && p.shape[1] === 16 && void nn.init.normal_(p)));
  return m.eval();
}

const tokens = (rows: number[][]): Tensor => torch.tensor(rows, { dtype: 'int64' });
/** max |a - b| / max |b| */
const relErr = (a: Tensor, b: Tensor): number =>
  tidy(() => (a.sub(b).abs().max().item() as number) / (b.abs().max().item() as number));

describe('TransformerLM.forwardCached', () => {
  for (const positional of ['learned', 'sinusoidal'] as const)
    it(`${positional} positions: the prompt, then one token at a time to the full context, equal forward() at every step (1e-12)`, async () => {
      const m = lm({ positional });
      await noLeak(() =>
        noGrad(() => {
          const cache = m.createCache();
          let seq = tokens([
            [1, 5, 2],
            [7, 0, 9],
          ]);
          tidy(() => {
            const got = m.forwardCached(seq, cache); // the prompt, positions 0..2
            expect(got.shape).toEqual([2, 3, 11]);
            expect(relErr(got, m.call(seq))).toBeLessThanOrEqual(1e-12);
          });
          expect(cache.length).toBe(3);
          expect(cache.keys.map((k) => k.shape)).toEqual([
            [2, 4, 8, 4],
            [2, 4, 8, 4],
          ]);
          for (let T = 4; T <= 8; T++) {
            // the next token: greedy from the reference forward pass
            const next = tidy(() =>
              m
                .call(seq)
                .select(1, T - 2)
                .argmax(-1, true),
            );
            const grown = torch.cat([seq, next], 1);
            seq.dispose();
            next.dispose();
            seq = grown;
            tidy(() => {
              const step = m.forwardCached(seq.narrow(1, T - 1, 1), cache); // position T-1 attends 0..T-1
              const full = m.call(seq).narrow(1, T - 1, 1);
              expect(relErr(step, full), `step ${T}`).toBeLessThanOrEqual(1e-12);
              expect(relErr(step, full.mul(1.0001))).toBeGreaterThan(1e-6); // the comparison can fail
            });
            expect(cache.length).toBe(T);
          }
          // the context is full: one more is a RangeError that says what to do
          expect(() => tidy(() => m.forwardCached(tokens([[1], [2]]), cache))).toThrow(/reset\(\) the cache/);
          // a batch of another size while the cache holds positions
          cache.reset();
          tidy(() => void m.forwardCached(tokens([[1], [2]]), cache));
          expect(() => tidy(() => m.forwardCached(tokens([[1], [2], [3]]), cache))).toThrow(RangeError);
          // after reset() a new batch size re-sizes it
          cache.reset();
          tidy(() => expect(m.forwardCached(tokens([[1], [2], [3]]), cache).shape).toEqual([3, 1, 11]));
          expect(cache.keys[0]!.shape[0]).toBe(3);
          expect(() => tidy(() => m.forwardCached(tokens([[1]]), {} as never))).toThrow(TypeError);
          expect(() => tidy(() => m.forwardCached(tokens([[]]), cache))).toThrow(RangeError);
          cache.dispose();
          seq.dispose();
        }),
      );
      m.dispose();
    });

  it('several new tokens after cached ones (a chunk of positions attends the cache and itself, causally)', async () => {
    const m = lm();
    await noLeak(() =>
      noGrad(() =>
        tidy(() => {
          const seq = tokens([[3, 1, 4, 1, 5, 9, 2]]);
          const cache = m.createCache();
          const a = m.forwardCached(seq.narrow(1, 0, 3), cache);
          const b = m.forwardCached(seq.narrow(1, 3, 4), cache);
          expect(relErr(torch.cat([a, b], 1), m.call(seq))).toBeLessThanOrEqual(1e-12);
          cache.dispose();
        }),
      ),
    );
    m.dispose();
  });
});

describe('generate with and without the cache', () => {
  it('the same greedy tokens, within the context and after the window slides; nothing left behind; the mode restored', async () => {
    const m = lm();
    m.train();
    const prompt = tokens([
      [2, 7],
      [10, 4],
    ]);
    await noLeak(() => {
      const withCache = m.generate(prompt, 14); // 2 + 14 = 16 tokens: the window slides from the 9th on
      const without = m.generate(prompt, 14, { cache: false });
      expect(withCache.shape).toEqual([2, 16]);
      expect(withCache.toArray()).toEqual(without.toArray());
      // the tokens are the argmax of forward() on the last window at every step (an independent loop)
      const seq = (withCache.toArray() as number[][]).map((r) => r.slice(0, 2));
      for (let s = 0; s < 14; s++)
        tidy(() => {
          const win = tokens(seq.map((r) => r.slice(-8)));
          const z = noGrad(() => m.call(win));
          const next = z
            .select(1, z.shape[1]! - 1)
            .argmax(-1)
            .toArray() as number[];
          seq.forEach((r, i) => r.push(next[i]!));
        });
      expect(withCache.toArray()).toEqual(seq);
      // not a constant sequence: the comparison means something
      expect(new Set((withCache.toArray() as number[][])[0]).size).toBeGreaterThan(2);
      torch.dispose([withCache, without]);
    });
    expect(m.training).toBe(true);
    // within the context the cached path never runs the whole window (forward); without the cache every step does
    const spy = vi.spyOn(m, 'forward');
    torch.dispose(m.generate(prompt, 5));
    expect(spy).not.toHaveBeenCalled();
    torch.dispose(m.generate(prompt, 5, { cache: false }));
    expect(spy).toHaveBeenCalledTimes(5);
    spy.mockRestore();
    expect(() => m.generate(prompt, 2, { cache: 'yes' as never })).toThrow(TypeError);
    prompt.dispose();
    m.dispose();
  });
});

describe('forwardCached of the layers', () => {
  it('a post-norm ReLU encoder layer, (L, N, E) layout: prompt then steps equal forward(x, { isCausal }) (1e-12)', async () => {
    manualSeed(5);
    const layer = new nn.TransformerEncoderLayer(12, 3, { dimFeedforward: 20, dropout: 0, ...f64 }).eval();
    await noLeak(() =>
      noGrad(() =>
        tidy(() => {
          const x = torch.randn([6, 2, 12], f64); // (L, N, E)
          const want = layer.call(x, { isCausal: true });
          const cache = { keys: torch.zeros([2, 3, 6, 4], f64), values: torch.zeros([2, 3, 6, 4], f64) };
          const parts = [layer.forwardCached(x.narrow(0, 0, 2), cache, 0)];
          for (let t = 2; t < 6; t++) parts.push(layer.forwardCached(x.narrow(0, t, 1), cache, t));
          expect(relErr(torch.cat(parts, 0), want)).toBeLessThanOrEqual(1e-12);
        }),
      ),
    );
    layer.dispose();
  });

  it('MultiheadAttention.forwardCached checks its arguments', () => {
    const mha = new nn.MultiheadAttention(8, 2, { batchFirst: true, ...f64 });
    tidy(() => {
      const x = torch.zeros([1, 2, 8], f64);
      const cache = { keys: torch.zeros([1, 2, 3, 4], f64), values: torch.zeros([1, 2, 3, 4], f64) };
      expect(() => mha.forwardCached(x, cache, 2)).toThrow(/positions 2..3/);
      expect(() => mha.forwardCached(torch.zeros([1, 2, 6], f64), cache, 0)).toThrow(RangeError);
      expect(() => mha.forwardCached(x, { keys: torch.zeros([1, 2, 3, 5], f64), values: cache.values }, 0)).toThrow(
        RangeError,
      );
      expect(() => mha.forwardCached(x, null as never, 0)).toThrow(TypeError);
      expect(() => mha.forwardCached(x, cache, -1)).toThrow(RangeError);
    });
    mha.dispose();
  });
});
