// data.BPETokenizer: byte-pair encoding over OpenAI's published vocabularies through js-tiktoken (an optional peer
// dependency, a devDependency here). Reference ids: GPT-2's and cl100k_base's published encodings of "Hello world"
// (tiktoken's own README and test suite use these).
import { describe, it, expect } from 'vitest';
import { data } from '../lib/index.js';

describe('BPETokenizer', () => {
  it("GPT-2's whole vocabulary: the published ids, byte-level round trips, special strings as plain text", () => {
    const tok = new data.BPETokenizer('gpt2');
    expect(tok.vocabSize).toBe(50257);
    expect(tok.ids).toBeNull();
    expect(Array.from(tok.encode('Hello world'))).toEqual([15496, 995]);
    expect(tok.encode('Hello world')).toBeInstanceOf(Int32Array);
    for (const s of ['', ' ', 'naïve café — 東京 🙂', 'a\n\tb  c', "It's 3.14 o'clock!"])
      expect(tok.decode(tok.encode(s))).toBe(s);
    // '<|endoftext|>' is 50256 as a special token; in a text it is ordinary characters
    const eot = Array.from(tok.encode('<|endoftext|>'));
    expect(eot.length).toBeGreaterThan(1);
    expect(eot).not.toContain(50256);
    expect(tok.decode(eot)).toBe('<|endoftext|>');
    expect(() => tok.decode([50257])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
    expect(() => tok.decode('abc' as never)).toThrow(TypeError);
  });

  it('cl100k_base', () => {
    const tok = new data.BPETokenizer('cl100k_base');
    expect(Array.from(tok.encode('Hello world'))).toEqual([9906, 1917]);
    expect(tok.vocabSize).toBe(100277);
  });

  it("fromText: the text's ids only, renumbered in the encoding's order; a token outside them is a RangeError naming it", () => {
    const text = 'the cat sat on the mat. the cat sat.';
    const full = new data.BPETokenizer();
    const raw = Array.from(full.encode(text));
    const tok = data.BPETokenizer.fromText(text);
    const distinct = [...new Set(raw)].sort((a, b) => a - b);
    expect(Array.from(tok.ids!)).toEqual(distinct);
    expect(tok.vocabSize).toBe(distinct.length);
    const ids = Array.from(tok.encode(text));
    expect(ids.map((i) => distinct[i])).toEqual(raw); // the same tokens, renumbered
    expect(Math.max(...ids)).toBe(distinct.length - 1);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(tok.encode(' the mat sat'))).toBe(' the mat sat');
    expect(() => tok.encode('the dog')).toThrow(/" dog" \(gpt2 id \d+\) is not in the vocabulary/);
    expect(() => tok.decode([distinct.length])).toThrow(RangeError);
    // windows for a language model, as with the character tokenizers
    const w = data.sequenceWindows(tok.encode(text), 4, { stride: 1 });
    expect(w.tensors[0].shape).toEqual([ids.length - 4, 4]);
    expect(w.tensors[1].toArray()).toEqual(Array.from({ length: ids.length - 4 }, (_, s) => ids.slice(s + 1, s + 5)));
    w.dispose();
  });

  it('checks its arguments', () => {
    expect(() => new data.BPETokenizer('gpt5' as never)).toThrow(/encoding/);
    expect(() => new data.BPETokenizer('gpt2', { ids: [1, 1] })).toThrow(/distinct/);
    expect(() => new data.BPETokenizer('gpt2', { ids: [50257] })).toThrow(RangeError);
    expect(() => new data.BPETokenizer('gpt2', { ids: 3 as never })).toThrow(TypeError);
    expect(() => data.BPETokenizer.fromText(42 as never)).toThrow(TypeError);
    expect(() => new data.BPETokenizer().encode(null as never)).toThrow(TypeError);
  });
});
