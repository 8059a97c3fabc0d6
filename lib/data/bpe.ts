/**
 * Byte-pair encoding with OpenAI's published vocabularies, through the npm package `js-tiktoken` (an optional peer
 * dependency: `npm install js-tiktoken`; its merge tables ship inside the package, nothing is downloaded at run
 * time).
 */
import { createRequire } from 'node:module';
import { is, typeError } from '../errors.js';

/** The vocabularies js-tiktoken ships: GPT-2's (`gpt2`, = `r50k_base`), `p50k_base`, `cl100k_base`, `o200k_base`. */
export const BPE_ENCODINGS = ['gpt2', 'r50k_base', 'p50k_base', 'cl100k_base', 'o200k_base'] as const;
/** One of BPE_ENCODINGS. */
export type BPEEncoding = (typeof BPE_ENCODINGS)[number];

interface Ranks {
  explicit_n_vocab?: number;
  special_tokens: Record<string, number>;
}
interface Tiktoken {
  encode(text: string, allowedSpecial?: string[] | 'all', disallowedSpecial?: string[] | 'all'): number[];
  decode(tokens: number[]): string;
}

function load(encoding: BPEEncoding): { enc: Tiktoken; nVocab: number } {
  const require = createRequire(import.meta.url);
  let lite: { Tiktoken: new (ranks: Ranks) => Tiktoken };
  let ranks: Ranks;
  try {
    lite = require('js-tiktoken/lite') as typeof lite;
    const r = require(`js-tiktoken/ranks/${encoding}`) as Ranks | { default: Ranks };
    ranks = 'default' in r ? r.default : r;
  } catch (e) {
    throw new Error(
      `BPETokenizer needs the npm package 'js-tiktoken', which is not installed: run \`npm install js-tiktoken\` (${(e as Error).message.split('\n')[0]})`,
      { cause: e },
    );
  }
  const nVocab = ranks.explicit_n_vocab ?? Math.max(...Object.values(ranks.special_tokens)) + 1;
  return { enc: new lite.Tiktoken(ranks), nVocab };
}

/**
 * A byte-pair encoding tokenizer over one of OpenAI's vocabularies (js-tiktoken). Every text encodes (BPE works on
 * bytes); special-token strings such as `<|endoftext|>` are encoded as ordinary text.
 *
 * `new BPETokenizer('gpt2')` has the encoding's whole vocabulary (50,257 ids for GPT-2's: an embedding that large
 * gets TNT's and Shampoo's diagonal factor, above maxFactorDim). `BPETokenizer.fromText(text)` keeps only the ids
 * that `text` uses, renumbered 0..n-1 in the encoding's order, so a small model over one corpus has a small
 * vocabulary; a text with a token outside it is a RangeError naming the token.
 *
 *   const tok = data.BPETokenizer.fromText(corpus);         // GPT-2's merges, the corpus's ids
 *   const ids = tok.encode('Q: What is a fortune?');       // Int32Array
 *   tok.decode(ids);                                        // 'Q: What is a fortune?'
 */
export class BPETokenizer {
  readonly encoding: BPEEncoding;
  /** The encoding's ids this tokenizer uses, in its id order (fromText), or null: all of them, unchanged. */
  readonly ids: Int32Array | null;
  private readonly enc: Tiktoken;
  private readonly nVocab: number;
  private readonly local: Map<number, number> | null;

  constructor(encoding: BPEEncoding = 'gpt2', options: { ids?: ArrayLike<number> | null } = {}) {
    is.oneOf(encoding, 'encoding', BPE_ENCODINGS);
    const { ids = null } = is.options(options);
    this.encoding = encoding;
    ({ enc: this.enc, nVocab: this.nVocab } = load(encoding));
    if (ids === null) {
      this.ids = null;
      this.local = null;
    } else {
      if (typeof ids !== 'object' || typeof (ids as ArrayLike<number>).length !== 'number')
        throw typeError('an array of token ids or null', 'ids', ids);
      this.ids = Int32Array.from(ids as ArrayLike<number>, (v, i) => {
        if (!Number.isInteger(v) || v < 0 || v >= this.nVocab)
          throw new RangeError(`ids[${i}] must be an id of ${encoding} (0..${this.nVocab - 1}), got ${v}`);
        return v;
      });
      this.local = new Map(Array.from(this.ids, (v, i) => [v, i]));
      if (this.local.size !== this.ids.length) throw new RangeError('BPETokenizer: the ids must be distinct');
    }
  }

  /** The tokenizer of the ids `text` encodes to under `encoding` (sorted), renumbered 0..n-1. */
  static fromText(text: string, encoding: BPEEncoding = 'gpt2'): BPETokenizer {
    is.string(text, 'text');
    const full = new BPETokenizer(encoding);
    const used = [...new Set(full.enc.encode(text, [], []))].sort((a, b) => a - b);
    return new BPETokenizer(encoding, { ids: used });
  }

  /** Number of ids: the kept ids (fromText), or the encoding's vocabulary. */
  get vocabSize(): number {
    return this.ids === null ? this.nVocab : this.ids.length;
  }

  encode(text: string): Int32Array {
    is.string(text, 'text');
    const raw = this.enc.encode(text, [], []);
    if (this.local === null) return Int32Array.from(raw);
    const out = new Int32Array(raw.length);
    raw.forEach((id, i) => {
      const v = this.local!.get(id);
      if (v === undefined)
        throw new RangeError(
          `BPETokenizer: the token ${JSON.stringify(this.enc.decode([id]))} (${this.encoding} id ${id}) is not in the vocabulary`,
        );
      out[i] = v;
    });
    return out;
  }

  decode(tokens: ArrayLike<number>): string {
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number')
      throw typeError('an array of token ids', 'tokens', tokens);
    const n = this.vocabSize;
    const raw = Array.from(tokens, (t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= n)
        throw new RangeError(`tokens[${i}] must be an id below the vocabulary size ${n}, got ${t}`);
      return this.ids === null ? t : this.ids[t]!;
    });
    return this.enc.decode(raw);
  }
}
