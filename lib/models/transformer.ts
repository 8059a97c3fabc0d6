/**
 * models.transformerLM: a small decoder-only (GPT-style) language model made of this library's nn modules, the
 * architecture of `tensornormal experiment charlm` and of test/reference/transformer.py's CharLM.
 */
import { Tensor } from '../tensor.js';
import { arange, zeros } from '../creation.js';
import { cat } from '../ops.js';
import { noGrad } from '../autograd.js';
import { tidy, dispose } from '../scope.js';
import { is, typeError } from '../errors.js';
import { Module } from '../nn/module.js';
import { Linear, type FactoryOptions } from '../nn/linear.js';
import { Dropout } from '../nn/dropout.js';
import { Embedding, sinusoidalPositionalEncoding } from '../nn/embedding.js';
import { LayerNorm } from '../nn/normalization.js';
import { TransformerEncoder, TransformerEncoderLayer } from '../nn/transformer.js';
import * as init from '../nn/init.js';

/** Options of the transformer language model (see its members), and the dtype and device of its parameters. */
export interface TransformerLMOptions extends FactoryOptions {
  /** Number of token ids (256 for bytes). */
  vocabSize: number;
  /** Longest sequence (positions). Default 128. */
  contextLength?: number;
  /** Width. Default 128. */
  dModel?: number;
  /** Attention heads. Default 4. */
  nHead?: number;
  /** Encoder layers (pre-norm, causal). Default 4. */
  nLayers?: number;
  /** Feed-forward width. Default 4 dModel. */
  dimFeedforward?: number;
  /** Dropout (embeddings, attention, feed-forward). Default 0. */
  dropout?: number;
  /** Output projection shares the token embedding's weight (one parameter). Default true. */
  tieWeights?: boolean;
  /** 'learned' (an Embedding over positions, default) or 'sinusoidal' (a fixed, non-persistent buffer). */
  positional?: 'learned' | 'sinusoidal';
  /** Feed-forward activation, 'gelu' (default) or 'relu'. */
  activation?: 'gelu' | 'relu';
}

/**
 * tokens int64 (B, T) with T <= contextLength -> logits (B, T, vocabSize), position t seeing tokens 0..t only:
 *
 *   x = drop(tokEmb(tokens) + posEmb(0..T-1));  x = encoder(x, causal);  logits = head(norm(x))
 *
 * encoder: nLayers pre-norm TransformerEncoderLayers (batchFirst), norm: LayerNorm(dModel), head: Linear(dModel,
 * vocabSize, no bias) whose weight IS tokEmb.weight when tieWeights (one Parameter: parameters() lists it once, the
 * state dict has it under both names, as PyTorch's). Embeddings start N(0, 0.02^2) (GPT-2's; PyTorch's N(0, 1)
 * would give logits of standard deviation sqrt(dModel) through the tied head); other layers PyTorch's defaults.
 * State-dict names as PyTorch's CharLM in test/reference/transformer.py (tok_emb.weight, encoder.layers.0.self_attn
 * .in_proj_weight, ... through saveWeights/loadWeights).
 */
export class TransformerLM extends Module {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly dModel: number;
  readonly tied: boolean;
  declare tokEmb: Embedding;
  declare posEmb: Embedding | null;
  declare drop: Dropout;
  declare encoder: TransformerEncoder;
  declare norm: LayerNorm;
  declare head: Linear;

  constructor(options: TransformerLMOptions) {
    const {
      vocabSize,
      contextLength = 128,
      dModel = 128,
      nHead = 4,
      nLayers = 4,
      dimFeedforward,
      dropout = 0,
      tieWeights = true,
      positional = 'learned',
      activation = 'gelu',
      dtype,
      device,
    } = is.options(options);
    super();
    this.vocabSize = is.positiveInteger(vocabSize, 'vocabSize');
    this.contextLength = is.positiveInteger(contextLength, 'contextLength');
    this.dModel = is.positiveInteger(dModel, 'dModel');
    this.tied = is.boolean(tieWeights, 'tieWeights');
    is.oneOf(positional, 'positional', ['learned', 'sinusoidal'] as const);
    is.oneOf(activation, 'activation', ['gelu', 'relu'] as const);
    const f = { dtype, device };
    this.registerModule('tokEmb', new Embedding(vocabSize, dModel, f));
    this.registerModule('posEmb', positional === 'learned' ? new Embedding(contextLength, dModel, f) : null);
    if (positional === 'sinusoidal')
      this.registerBuffer('pe', sinusoidalPositionalEncoding(contextLength, dModel, f), { persistent: false });
    this.registerModule('drop', new Dropout(dropout));
    const layer = new TransformerEncoderLayer(dModel, nHead, {
      dimFeedforward: dimFeedforward ?? 4 * dModel,
      dropout,
      activation,
      batchFirst: true,
      normFirst: true,
      ...f,
    });
    this.registerModule('encoder', new TransformerEncoder(layer, nLayers));
    this.registerModule('norm', new LayerNorm(dModel, f));
    this.registerModule('head', new Linear(dModel, vocabSize, { bias: false, ...f }));
    init.normal_(this.tokEmb.weight, 0, 0.02);
    if (this.posEmb !== null) init.normal_(this.posEmb.weight, 0, 0.02);
    if (this.tied) {
      const old = this.head.weight;
      this.head.weight = this.tokEmb.weight;
      old.dispose();
    }
  }

  forward(tokens: Tensor): Tensor {
    if (!(tokens instanceof Tensor)) throw typeError('a Tensor', 'tokens', tokens);
    if (tokens.ndim !== 2)
      throw new RangeError(`Expected tokens of shape (B, T) but received [${tokens.shape.join(', ')}]`);
    const T = tokens.shape[1]!;
    if (T > this.contextLength)
      throw new RangeError(`the sequence has ${T} tokens but the model's context is ${this.contextLength}`);
    return tidy(() => {
      const tok = this.tokEmb.call(tokens);
      const pos =
        this.posEmb !== null
          ? this.posEmb.call(arange(T, { dtype: 'int64', device: tokens.device }))
          : (this._buffers.get('pe') as Tensor).narrow(0, 0, T);
      const x = this.drop.call(tok.add(pos));
      const h = this.encoder.call(x, { isCausal: true });
      return this.head.call(this.norm.call(h));
    });
  }

  /**
   * Logits (B, L, vocabSize) of L new tokens (int64 (B, L)) that follow the `cache.length` tokens the cache holds
   * (their keys and values, per layer), and the new tokens' keys and values appended to the cache: incremental
   * decoding. Position start + i sees tokens 0..start + i, as in forward(), whose logits these equal (up to
   * rounding) for the same tokens. The cache holds at most contextLength positions (learned positions are absolute:
   * past the context the window slides, every position changes, and the cache must be reset and refilled). Eval-mode
   * numerics (no dropout); for inference under noGrad. The first call sizes the cache for batch B.
   *
   *   const cache = lm.createCache();
   *   let logits = lm.forwardCached(prompt, cache);           // (B, T0, V): the prompt at positions 0..T0-1
   *   logits = lm.forwardCached(nextTokens, cache);           // (B, 1, V): position T0, attending 0..T0
   *   cache.dispose();
   */
  forwardCached(tokens: Tensor, cache: KVCache): Tensor {
    if (!(tokens instanceof Tensor)) throw typeError('a Tensor', 'tokens', tokens);
    if (!(cache instanceof KVCache)) throw typeError('a KVCache (lm.createCache())', 'cache', cache);
    if (tokens.ndim !== 2 || tokens.shape[1] === 0)
      throw new RangeError(`Expected tokens of shape (B, L) with L >= 1 but received [${tokens.shape.join(', ')}]`);
    const B = tokens.shape[0]!,
      L = tokens.shape[1]!,
      start = cache.length;
    if (start + L > this.contextLength)
      throw new RangeError(
        `the cache holds ${start} positions and ${L} more exceed the model's context of ${this.contextLength}: reset() the cache and start again from the last window`,
      );
    const layers = [...this.encoder.layers] as TransformerEncoderLayer[];
    if (cache.keys.length > 0 && cache.keys[0]!.shape[0] !== B) {
      if (start > 0)
        throw new RangeError(
          `the cache holds a batch of ${cache.keys[0]!.shape[0]} but the tokens are a batch of ${B}`,
        );
      cache.dispose();
    }
    if (cache.keys.length === 0) {
      const attn = layers[0]!.selfAttn;
      const p = this.tokEmb.weight;
      const shape = [B, attn.numHeads, this.contextLength, attn.headDim];
      for (let i = 0; i < layers.length; i++) {
        cache.keys.push(zeros(shape, { dtype: p.dtype, device: p.device }).keep());
        cache.values.push(zeros(shape, { dtype: p.dtype, device: p.device }).keep());
      }
    }
    const out = tidy(() => {
      const tok = this.tokEmb.call(tokens);
      const pos =
        this.posEmb !== null
          ? this.posEmb.call(arange(start, start + L, 1, { dtype: 'int64', device: tokens.device }))
          : (this._buffers.get('pe') as Tensor).narrow(0, start, L);
      let x = tok.add(pos);
      layers.forEach((layer, i) => {
        x = layer.forwardCached(x, { keys: cache.keys[i]!, values: cache.values[i]! }, start);
      });
      if (this.encoder.norm !== null) x = this.encoder.norm.call(x) as Tensor;
      return this.head.call(this.norm.call(x));
    });
    cache.length = start + L;
    return out;
  }

  /** An empty key-value cache for forwardCached() and generate() (sized at its first use; dispose() it). */
  createCache(): KVCache {
    return new KVCache();
  }

  /**
   * Greedy decoding: appends `steps` tokens to `prompt` (int64 (B, T0)), each the argmax of the last position's
   * logits. With `cache: true` (the default) a key-value cache makes each new token one position's work while the
   * sequence fits the context (the prompt is run once, then one token per step); past contextLength tokens the
   * window of the last contextLength tokens slides, every position shifts, and each step reruns the window, as
   * without the cache. `cache: false` reruns the window (the last contextLength tokens) every step. Both give the
   * same tokens (the logits agree up to rounding). Returns (B, T0 + steps). Runs under noGrad in eval mode (the
   * mode is restored).
   */
  generate(prompt: Tensor, steps: number, options: { cache?: boolean } = {}): Tensor {
    if (!(prompt instanceof Tensor)) throw typeError('a Tensor', 'prompt', prompt);
    is.nonNegativeInteger(steps, 'steps');
    const { cache: useCache = true } = is.options(options);
    is.boolean(useCache, 'cache');
    const wasTraining = this.training;
    this.eval();
    const cache = useCache ? new KVCache() : null;
    try {
      return noGrad(() => {
        let seq = prompt.alias();
        for (let s = 0; s < steps; s++) {
          const next = tidy(() => {
            const T = seq.shape[1]!;
            const win = T > this.contextLength ? seq.narrow(1, T - this.contextLength, this.contextLength) : seq;
            let logits: Tensor;
            if (cache === null) logits = this.forward(win);
            else {
              // the cache holds positions 0..T-2 of this window unless the window slid (or this is the prompt)
              if (T > this.contextLength || cache.length !== T - 1) cache.reset();
              logits = this.forwardCached(cache.length === 0 ? win : seq.narrow(1, T - 1, 1), cache);
            }
            return logits.select(1, logits.shape[1]! - 1).argmax(-1, true);
          });
          const grown = cat([seq, next], 1);
          seq.dispose();
          next.dispose();
          seq = grown;
        }
        return seq;
      });
    } finally {
      cache?.dispose();
      this.train(wasTraining);
    }
  }
}

/**
 * The keys and values of the positions a TransformerLM has run (TransformerLM.forwardCached), per encoder layer:
 * buffers (B, nHead, contextLength, headDim) whose first `length` positions are valid. reset() empties it (the
 * buffers stay for the next sequence of the same batch size); dispose() frees them.
 */
export class KVCache {
  /** Positions held. */
  length = 0;
  /** Per layer: the keys, (B, nHead, contextLength, headDim). Empty before the first forwardCached(). */
  readonly keys: Tensor[] = [];
  /** Per layer: the values, as the keys. */
  readonly values: Tensor[] = [];

  /** Forgets the positions held (keeps the buffers). */
  reset(): void {
    this.length = 0;
  }

  /** Frees the buffers; the cache is empty and usable again. */
  dispose(): void {
    dispose([this.keys, this.values]);
    this.keys.length = 0;
    this.values.length = 0;
    this.length = 0;
  }
}

/** A decoder-only transformer language model (see TransformerLM). */
export function transformerLM(options: TransformerLMOptions): TransformerLM {
  return new TransformerLM(options);
}
