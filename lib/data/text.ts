/**
 * Text for language models: byte- and character-level tokenizers, contiguous windows of a token stream as a
 * dataset (inputs and next-token targets), a seeded train/validation split, and a real corpus a machine can
 * install: Debian's `fortunes` package (about 2.6 MB of English text under /usr/share/games/fortunes).
 *
 *   const text = data.fortunes();                              // the corpus, one string
 *   const tok = data.CharTokenizer.fromText(text);              // ~100 symbols
 *   const { train, val } = data.textSplit(tok.encode(text), { contextLength: 128, valFraction: 0.1, seed: 0 });
 *   const loader = new data.DataLoader(train, { batchSize: 32, shuffle: true, seed: 0 });
 *   for (const [x, y] of loader) ...                            // x, y int64 (32, 128); y is x shifted by one
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tensor } from '../creation.js';
import { is, typeError } from '../errors.js';
import { TensorDataset } from './dataset.js';
import { permutation } from './loader.js';
import type { Tensor } from '../tensor.js';

function ids(x: unknown, name: string): ArrayLike<number> {
  if (Array.isArray(x) || ArrayBuffer.isView(x)) return x as ArrayLike<number>;
  throw typeError('an array of token ids', name, x);
}

/** UTF-8 bytes as tokens: vocabulary 256, every text encodable, decode(encode(s)) === s. */
export class ByteTokenizer {
  readonly vocabSize = 256;
  encode(text: string): Uint8Array {
    is.string(text, 'text');
    return new TextEncoder().encode(text);
  }
  /** Bytes back to text (invalid UTF-8, say a cut multi-byte character, becomes U+FFFD). */
  decode(tokens: ArrayLike<number>): string {
    const a = ids(tokens, 'tokens');
    const b = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const v = a[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`token ${i} is ${v}, not a byte (0..255)`);
      b[i] = v;
    }
    return new TextDecoder().decode(b);
  }
}

/**
 * Characters (Unicode code points) as tokens: the vocabulary is the sorted set of characters of a text
 * (fromText), ids 0..vocabSize-1 in code-point order. Encoding a character outside it is a RangeError naming it.
 */
export class CharTokenizer {
  /** The characters, id order. */
  readonly chars: readonly string[];
  private readonly index: Map<string, number>;

  constructor(chars: Iterable<string>) {
    const list = [...chars];
    list.forEach((c, i) => {
      if (typeof c !== 'string' || [...c].length !== 1) throw typeError('one character', `chars[${i}]`, c);
    });
    this.chars = list;
    this.index = new Map(list.map((c, i) => [c, i]));
    if (this.index.size !== list.length) throw new RangeError('CharTokenizer: the characters must be distinct');
  }

  /** The tokenizer of every character in `text`, sorted by code point. */
  static fromText(text: string): CharTokenizer {
    is.string(text, 'text');
    const set = new Set(text);
    return new CharTokenizer([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string): Int32Array {
    is.string(text, 'text');
    const out: number[] = [];
    for (const c of text) {
      const id = this.index.get(c);
      if (id === undefined)
        throw new RangeError(
          `CharTokenizer: ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) is not in the vocabulary`,
        );
      out.push(id);
    }
    return Int32Array.from(out);
  }

  decode(tokens: ArrayLike<number>): string {
    const a = ids(tokens, 'tokens');
    let s = '';
    for (let i = 0; i < a.length; i++) {
      const c = this.chars[a[i]!];
      if (c === undefined) throw new RangeError(`token ${i} is ${a[i]}, outside the vocabulary of ${this.vocabSize}`);
      s += c;
    }
    return s;
  }
}

/** Options of the sequence windows over a token stream (see its members). */
export interface SequenceWindowsOptions {
  /** Start of window k is k * stride (default contextLength: non-overlapping inputs). */
  stride?: number;
}

/**
 * Contiguous windows of a token stream as a dataset of (x, y): x = tokens[s, s + T), y = tokens[s + 1, s + T + 1)
 * (the next token at every position), both int64 (N, T), for s = 0, stride, 2 stride, ... while s + T + 1 <= length.
 */
export function sequenceWindows(
  tokens: ArrayLike<number>,
  contextLength: number,
  options: SequenceWindowsOptions = {},
): TensorDataset<[Tensor, Tensor]> {
  const a = ids(tokens, 'tokens');
  const T = is.positiveInteger(contextLength, 'contextLength');
  const { stride = T } = is.options(options);
  is.positiveInteger(stride, 'stride');
  const starts: number[] = [];
  for (let s = 0; s + T + 1 <= a.length; s += stride) starts.push(s);
  return windowsAt(a, T, starts);
}

function windowsAt(a: ArrayLike<number>, T: number, starts: number[]): TensorDataset<[Tensor, Tensor]> {
  if (starts.length === 0)
    throw new RangeError(`the token stream (${a.length} tokens) is shorter than one window of ${T} + 1 tokens`);
  const x = new Array<number>(starts.length * T);
  const y = new Array<number>(starts.length * T);
  starts.forEach((s, k) => {
    for (let t = 0; t < T; t++) {
      x[k * T + t] = a[s + t]!;
      y[k * T + t] = a[s + t + 1]!;
    }
  });
  const shape = [starts.length, T];
  const xs = tensor(x, { dtype: 'int64', shape }).keep();
  const ys = tensor(y, { dtype: 'int64', shape }).keep();
  return new TensorDataset(xs, ys);
}

/** Options of splitting a text corpus into training and validation parts (see its members). */
export interface TextSplitOptions {
  /** Tokens per window (the model's context). */
  contextLength: number;
  /** Share of the windows held out for validation (default 0.1); at least one window each side. */
  valFraction?: number;
  /** Which windows are held out: a seeded permutation (default seed 0). */
  seed?: number;
}

/**
 * Cuts the stream into non-overlapping blocks of contextLength + 1 tokens, holds out a seeded random
 * `valFraction` of them for validation (the rest train), and gives each side as (x, y) windows as sequenceWindows.
 * No target token of one side is an input of the other. Both datasets are the caller's to dispose.
 */
export function textSplit(
  tokens: ArrayLike<number>,
  options: TextSplitOptions,
): { train: TensorDataset<[Tensor, Tensor]>; val: TensorDataset<[Tensor, Tensor]> } {
  const a = ids(tokens, 'tokens');
  const { contextLength, valFraction = 0.1, seed = 0 } = is.options(options);
  const T = is.positiveInteger(contextLength, 'contextLength');
  is.inRange(valFraction, 'valFraction', 0, 1);
  is.nonNegativeInteger(seed, 'seed');
  const blocks = Math.floor(a.length / (T + 1));
  if (blocks < 2)
    throw new RangeError(`the token stream (${a.length} tokens) holds fewer than two blocks of ${T} + 1 tokens`);
  const nVal = Math.min(blocks - 1, Math.max(1, Math.round(valFraction * blocks)));
  const perm = permutation(blocks, seed, 0);
  const valBlocks = [...perm.slice(0, nVal)].sort((p, q) => p - q);
  const trainBlocks = [...perm.slice(nVal)].sort((p, q) => p - q);
  const at = (b: number[]): number[] => b.map((k) => k * (T + 1));
  const train = windowsAt(a, T, at(trainBlocks));
  try {
    return { train, val: windowsAt(a, T, at(valBlocks)) };
  } catch (e) {
    train.dispose();
    throw e;
  }
}

/** Options of the Debian fortunes corpus reader (see its members). */
export interface FortunesOptions {
  /** Where the package's files are (default /usr/share/games/fortunes). */
  dir?: string;
}

/**
 * Debian's `fortunes` corpus (`apt-get install fortunes`): every fortune file of `dir` (not the .dat indexes nor
 * the .u8 links), in name order, concatenated (files are separated by a newline). About 2.6 MB of text, nearly all
 * ASCII. Throws an Error saying what to install when the directory is missing.
 */
export function fortunes(options: FortunesOptions = {}): string {
  const { dir = '/usr/share/games/fortunes' } = is.options(options);
  is.string(dir, 'dir');
  if (!existsSync(dir))
    throw new Error(`${dir} does not exist: install Debian's fortunes package (apt-get install fortunes)`);
  const files = readdirSync(dir)
    .filter((f) => !f.endsWith('.dat') && !f.endsWith('.u8'))
    .sort()
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile());
  if (files.length === 0) throw new Error(`${dir} holds no fortune files (apt-get install fortunes)`);
  return files.map((p) => readFileSync(p, 'utf8')).join('\n');
}
