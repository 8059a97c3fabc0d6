/**
 * nn.MultiheadAttention (torch/nn/modules/activation.py), nn.TransformerEncoderLayer and nn.TransformerEncoder
 * (torch/nn/modules/transformer.py), with PyTorch's arguments, parameters and numerics. State-dict keys are the
 * library's camelCase ones (`selfAttn.inProjWeight`, `selfAttn.outProj.weight`, `linear1.bias`, `norm1.weight`);
 * saveWeights/loadWeights spell them as PyTorch does (`self_attn.in_proj_weight`, ...), so a `torch.save(model.
 * state_dict())` of the same architecture loads here and gives the same outputs (test/transformer.test.ts).
 */
import { Tensor } from '../tensor.js';
import { empty, full, zeros } from '../creation.js';
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { is, typeError } from '../errors.js';
import { Module, type AnyModule, type Parameter } from './module.js';
import { Linear, type FactoryOptions } from './linear.js';
import { Dropout } from './dropout.js';
import { LayerNorm } from './normalization.js';
import { ModuleList } from './container.js';
import * as F from './functional.js';
import * as init from './init.js';

/** Options of nn.MultiheadAttention (see its members), and the dtype and device of its parameters. */
export interface MultiheadAttentionOptions extends FactoryOptions {
  /** Dropout on the attention weights while training (default 0). */
  dropout?: number;
  /** Biases on the input and output projections (default true). */
  bias?: boolean;
  /** Inputs and outputs (N, L, E) (true) or (L, N, E) (false, the default, as PyTorch's). */
  batchFirst?: boolean;
}

/** Options of nn.MultiheadAttention's forward: masks and what it returns (see its members). */
export interface MultiheadAttentionForwardOptions {
  /** (N, S): true (or -inf) marks a key to ignore (padding). Float masks are added to the scores. */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights (default true, as PyTorch's). */
  needWeights?: boolean;
  /** (L, S) or (N * numHeads, L, S): true marks a pair that may NOT attend; a float mask is added to the scores. */
  attnMask?: Tensor | null;
  /** Average the returned weights over the heads (default true): (N, L, S), else (N, numHeads, L, S). */
  averageAttnWeights?: boolean;
  /**
   * Causal self-attention: position i attends to keys 0..i only. PyTorch 2.x takes is_causal as a hint that must
   * come with the causal attn_mask; here it builds the mask itself (with or without another attnMask).
   */
  isCausal?: boolean;
}

/** A (sz, sz) float mask with -inf above the diagonal and 0 elsewhere (nn.Transformer.generate_square_subsequent_mask). */
export function generateSquareSubsequentMask(sz: number, options: FactoryOptions = {}): Tensor {
  is.positiveInteger(sz, 'sz');
  const { dtype = 'float32', device } = is.options(options);
  return tidy(() => full([sz, sz], -Infinity, { dtype, device }).triu(1));
}

function sameShape(t: Tensor, shape: number[]): boolean {
  return t.ndim === shape.length && t.shape.every((d, i) => d === shape[i]);
}

/** A mask as an additive float mask of `dtype`: a boolean one gets -inf where it is true. */
function additive(mask: Tensor, dtype: Tensor['dtype']): Tensor {
  if (mask.dtype === 'bool') return zeros(mask.shape, { dtype, device: mask.device }).maskedFill(mask, -Infinity);
  return mask.to({ dtype });
}

/**
 * Multi-head attention: softmax(q k^T / sqrt(headDim) + mask) v per head, with packed input projections and an
 * output projection, as torch.nn.MultiheadAttention (key and value of dimension embedDim).
 *
 * Parameters (PyTorch's, in its order): inProjWeight (3 embedDim, embedDim) ~ xavier_uniform, inProjBias
 * (3 embedDim) = 0, outProj (a Linear: weight as Linear's default, bias = 0). forward(query, key, value, options)
 * returns [output, weights] (weights null unless needWeights, which defaults to true as PyTorch's). Query, key and
 * value the same tensor take the packed self-attention path (one matmul).
 *
 *   const mha = new nn.MultiheadAttention(128, 4, { batchFirst: true });
 *   const [y] = mha.call(x, x, x, { isCausal: true, needWeights: false });   // x (B, T, 128)
 */
export class MultiheadAttention extends Module<
  [Tensor, Tensor, Tensor, MultiheadAttentionForwardOptions?],
  [Tensor, Tensor | null]
> {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  declare inProjWeight: Parameter;
  declare inProjBias: Parameter | null;
  declare outProj: Linear;

  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    const { dropout = 0, bias = true, batchFirst = false, dtype, device } = is.options(options);
    super();
    this.embedDim = is.positiveInteger(embedDim, 'embedDim');
    this.numHeads = is.positiveInteger(numHeads, 'numHeads');
    if (embedDim % numHeads !== 0)
      throw new RangeError(`embedDim must be divisible by numHeads, got embedDim=${embedDim} and numHeads=${numHeads}`);
    this.headDim = embedDim / numHeads;
    this.dropout = is.inRange(dropout, 'dropout', 0, 1);
    this.batchFirst = is.boolean(batchFirst, 'batchFirst');
    is.boolean(bias, 'bias');
    const f = { dtype, device };
    this.registerParameter('inProjWeight', empty([3 * embedDim, embedDim], f));
    this.registerParameter('inProjBias', bias ? empty([3 * embedDim], f) : null);
    this.registerModule('outProj', new Linear(embedDim, embedDim, { bias, ...f }));
    this.resetParameters();
  }

  resetParameters(): void {
    init.xavierUniform_(this.inProjWeight);
    if (this.inProjBias !== null) init.constant_(this.inProjBias, 0);
    if (this.outProj.bias !== null) init.constant_(this.outProj.bias, 0);
  }

  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionForwardOptions = {},
  ): [Tensor, Tensor | null] {
    const {
      keyPaddingMask = null,
      needWeights = true,
      attnMask = null,
      averageAttnWeights = true,
      isCausal = false,
    } = is.options(options);
    for (const [t, n] of [
      [query, 'query'],
      [key, 'key'],
      [value, 'value'],
    ] as const)
      if (!(t instanceof Tensor)) throw typeError('a Tensor', n, t);
    if (keyPaddingMask !== null && !(keyPaddingMask instanceof Tensor))
      throw typeError('a Tensor or null', 'keyPaddingMask', keyPaddingMask);
    if (attnMask !== null && !(attnMask instanceof Tensor)) throw typeError('a Tensor or null', 'attnMask', attnMask);
    is.boolean(needWeights, 'needWeights');
    is.boolean(averageAttnWeights, 'averageAttnWeights');
    is.boolean(isCausal, 'isCausal');
    const batched = query.ndim === 3;
    if (query.ndim !== 2 && query.ndim !== 3)
      throw new RangeError(
        `query should be unbatched 2D or batched 3D tensor but received ${query.ndim}-D query tensor`,
      );
    if (key.ndim !== query.ndim || value.ndim !== query.ndim)
      throw new RangeError(
        `key and value should be ${query.ndim}-D as the query, but received ${key.ndim}-D key and ${value.ndim}-D value`,
      );
    const E = this.embedDim,
      H = this.numHeads,
      hd = this.headDim;
    if (query.shape[query.ndim - 1] !== E || key.shape[key.ndim - 1] !== E || value.shape[value.ndim - 1] !== E)
      throw new RangeError(
        `was expecting embedding dimension of ${E}, but got query ${query.shape[query.ndim - 1]}, key ${key.shape[key.ndim - 1]}, value ${value.shape[value.ndim - 1]}`,
      );
    return tidy(() => {
      // Everything as (N, L, E).
      const nle = (x: Tensor): Tensor => (!batched ? x.unsqueeze(0) : this.batchFirst ? x : x.transpose(0, 1));
      const q0 = nle(query);
      const N = q0.shape[0]!,
        L = q0.shape[1]!;
      const k0 = key === query ? q0 : nle(key);
      const S = k0.shape[1]!;
      const v0 = value === key ? k0 : nle(value);
      if (v0.shape[0] !== N || k0.shape[0] !== N || v0.shape[1] !== S)
        throw new RangeError(
          `key shape [${key.shape.join(', ')}] and value shape [${value.shape.join(', ')}] do not match the query's batch (${N}) or each other`,
        );
      const heads = (x: Tensor, len: number): Tensor => x.reshape([N, len, H, hd]).transpose(1, 2);
      let q: Tensor, k: Tensor, v: Tensor;
      if (key === query && value === query) {
        const p = F.linear(q0, this.inProjWeight, this.inProjBias).reshape([N, L, 3, H, hd]).permute([2, 0, 3, 1, 4]);
        [q, k, v] = p.unbind(0) as [Tensor, Tensor, Tensor];
      } else {
        const [wq, wk, wv] = this.inProjWeight.chunk(3, 0) as [Tensor, Tensor, Tensor];
        const [bq, bk, bv] = (this.inProjBias?.chunk(3, 0) ?? [null, null, null]) as (Tensor | null)[];
        q = heads(F.linear(q0, wq, bq), L);
        k = heads(F.linear(k0, wk, bk), S);
        v = heads(F.linear(v0, wv, bv), S);
      }
      const mask = this.mergeMasks(attnMask, keyPaddingMask, batched, N, L, S, q.dtype);
      const [o, w] = F.attention(
        q,
        k,
        v,
        { attnMask: mask, dropoutP: this.dropout, isCausal, training: this.training },
        needWeights,
      );
      const merged = o!.transpose(1, 2).reshape([N, L, E]);
      const y = this.outProj.call(merged);
      const out = !batched ? y.squeeze(0) : this.batchFirst ? y : y.transpose(0, 1);
      let weights: Tensor | null = null;
      if (needWeights) {
        const avg = averageAttnWeights ? w!.sum(1).div(H) : w!;
        weights = batched ? avg : avg.squeeze(0);
      }
      return [out, weights] as [Tensor, Tensor | null];
    });
  }

  /**
   * Causal self-attention of L new positions that follow `start` earlier ones, for incremental decoding with a
   * key-value cache: the new positions' keys and values are written into `cache.keys` / `cache.values` (each
   * (N, numHeads, capacity, headDim)) at positions [start, start + L), and position start + i attends to the cached
   * positions 0..start + i. `x` is (N, L, E) batch-first, else (L, N, E). Eval-mode numerics (no attention
   * dropout); meant for inference under noGrad (the cache is written in place). With start = 0 and L = T it is
   * forward(x, x, x, { isCausal: true }) (the same numbers up to rounding).
   */
  forwardCached(x: Tensor, cache: { keys: Tensor; values: Tensor }, start: number): Tensor {
    if (!(x instanceof Tensor)) throw typeError('a Tensor', 'x', x);
    if (
      cache === null ||
      typeof cache !== 'object' ||
      !(cache.keys instanceof Tensor) ||
      !(cache.values instanceof Tensor)
    )
      throw typeError('{ keys: Tensor, values: Tensor }', 'cache', cache);
    is.nonNegativeInteger(start, 'start');
    const E = this.embedDim,
      H = this.numHeads,
      hd = this.headDim;
    if (x.ndim !== 3 || x.shape[2] !== E)
      throw new RangeError(
        `Expected x of shape (N, L, ${E}) (batch-first) or (L, N, ${E}) but received [${x.shape.join(', ')}]`,
      );
    return tidy(() => {
      const x0 = this.batchFirst ? x : x.transpose(0, 1);
      const N = x0.shape[0]!,
        L = x0.shape[1]!;
      const cap = cache.keys.shape[2]!;
      for (const t of [cache.keys, cache.values])
        if (!sameShape(t, [N, H, cap, hd]))
          throw new RangeError(
            `Expected cache keys and values of shape [${N}, ${H}, capacity, ${hd}] but received [${t.shape.join(', ')}]`,
          );
      if (start + L > cap)
        throw new RangeError(
          `the cache holds ${cap} positions, but positions ${start}..${start + L - 1} were asked for`,
        );
      const p = F.linear(x0, this.inProjWeight, this.inProjBias).reshape([N, L, 3, H, hd]).permute([2, 0, 3, 1, 4]);
      const [q, k, v] = p.unbind(0) as [Tensor, Tensor, Tensor];
      cache.keys.narrow(2, start, L).copy_(k);
      cache.values.narrow(2, start, L).copy_(v);
      const S = start + L;
      // the new position i (absolute start + i) may attend keys 0..start + i: one new position needs no mask
      const mask = L === 1 ? null : full([L, S], -Infinity, { dtype: q.dtype, device: q.device }).triu(start + 1);
      const [o] = F.attention(
        q,
        cache.keys.narrow(2, 0, S),
        cache.values.narrow(2, 0, S),
        { attnMask: mask, dropoutP: 0, isCausal: false, training: false },
        false,
      );
      const y = this.outProj.call(o!.transpose(1, 2).reshape([N, L, E]));
      return this.batchFirst ? y : y.transpose(0, 1);
    });
  }

  /** attnMask and keyPaddingMask as one additive float mask broadcasting to (N, H, L, S), or null. */
  private mergeMasks(
    attnMask: Tensor | null,
    keyPaddingMask: Tensor | null,
    batched: boolean,
    N: number,
    L: number,
    S: number,
    dtype: Tensor['dtype'],
  ): Tensor | null {
    const H = this.numHeads;
    let m: Tensor | null = null;
    if (attnMask !== null) {
      let a: Tensor;
      if (sameShape(attnMask, [L, S])) a = additive(attnMask, dtype);
      else if (sameShape(attnMask, [batched ? N * H : H, L, S])) a = additive(attnMask, dtype).reshape([N, H, L, S]);
      else
        throw new RangeError(
          `attnMask should be of shape [${L}, ${S}] or [${batched ? N * H : H}, ${L}, ${S}], but got [${attnMask.shape.join(', ')}]`,
        );
      m = a;
    }
    if (keyPaddingMask !== null) {
      const want = batched ? [N, S] : [S];
      if (!sameShape(keyPaddingMask, want))
        throw new RangeError(
          `expecting keyPaddingMask shape of [${want.join(', ')}], but got [${keyPaddingMask.shape.join(', ')}]`,
        );
      const kp = additive(keyPaddingMask, dtype).reshape([N, 1, 1, S]);
      m = m === null ? kp : m.add(kp);
    }
    return m;
  }
}

/** The feed-forward activation of a transformer layer: 'relu', 'gelu', a function or a module. */
export type TransformerActivation = 'relu' | 'gelu' | ((x: Tensor) => Tensor) | AnyModule;

/** Options of nn.TransformerEncoderLayer (see its members), and the dtype and device of its parameters. */
export interface TransformerEncoderLayerOptions extends FactoryOptions {
  /** Width of the feed-forward block (default 2048, as PyTorch's). */
  dimFeedforward?: number;
  /** Dropout after attention, inside and after the feed-forward block, and on the attention weights (default 0.1). */
  dropout?: number;
  /** 'relu' (default), 'gelu', a function, or a module (registered as `activation`, as PyTorch does). */
  activation?: TransformerActivation;
  /** LayerNorm's eps (default 1e-5). */
  layerNormEps?: number;
  /** (N, L, E) (true) or (L, N, E) (false, the default). */
  batchFirst?: boolean;
  /** Pre-norm (x + f(norm(x))) instead of the original post-norm (norm(x + f(x))). Default false. */
  normFirst?: boolean;
  /** Biases in the Linear layers and LayerNorms (default true; PyTorch 2.1's `bias`). */
  bias?: boolean;
}

/** Options of a transformer encoder's forward: its masks (see its members). */
export interface TransformerEncoderForwardOptions {
  /** Attention mask, as MultiheadAttention's attnMask ((L, L) or (N * nhead, L, L); true = may not attend). */
  srcMask?: Tensor | null;
  /** (N, L): true marks padding. */
  srcKeyPaddingMask?: Tensor | null;
  /** Causal self-attention (builds the mask; see MultiheadAttentionForwardOptions.isCausal). */
  isCausal?: boolean;
}

/**
 * One encoder block: self-attention and a feed-forward network (linear1, activation, dropout, linear2), each with
 * dropout, a residual connection and a LayerNorm, as torch.nn.TransformerEncoderLayer:
 *
 *   post-norm: x = norm1(x + dropout1(selfAttn(x))); x = norm2(x + dropout2(ff(x)))
 *   pre-norm:  x = x + dropout1(selfAttn(norm1(x))); x = x + dropout2(ff(norm2(x)))
 *
 * Submodules (PyTorch's names): selfAttn (self_attn), linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
 */
export class TransformerEncoderLayer extends Module<[Tensor, TransformerEncoderForwardOptions?]> {
  readonly dModel: number;
  readonly nhead: number;
  readonly normFirst: boolean;
  /** The options the layer was made with (TransformerEncoder clones it with them). */
  readonly options: Readonly<TransformerEncoderLayerOptions>;
  private readonly act: (x: Tensor) => Tensor;
  declare selfAttn: MultiheadAttention;
  declare linear1: Linear;
  declare dropout: Dropout;
  declare linear2: Linear;
  declare norm1: LayerNorm;
  declare norm2: LayerNorm;
  declare dropout1: Dropout;
  declare dropout2: Dropout;

  constructor(dModel: number, nhead: number, options: TransformerEncoderLayerOptions = {}) {
    const {
      dimFeedforward = 2048,
      dropout = 0.1,
      activation = 'relu',
      layerNormEps = 1e-5,
      batchFirst = false,
      normFirst = false,
      bias = true,
      dtype,
      device,
    } = is.options(options);
    super();
    this.options = { ...options };
    this.dModel = is.positiveInteger(dModel, 'dModel');
    this.nhead = is.positiveInteger(nhead, 'nhead');
    is.positiveInteger(dimFeedforward, 'dimFeedforward');
    this.normFirst = is.boolean(normFirst, 'normFirst');
    const f = { dtype, device };
    this.registerModule('selfAttn', new MultiheadAttention(dModel, nhead, { dropout, bias, batchFirst, ...f }));
    this.registerModule('linear1', new Linear(dModel, dimFeedforward, { bias, ...f }));
    this.registerModule('dropout', new Dropout(dropout));
    this.registerModule('linear2', new Linear(dimFeedforward, dModel, { bias, ...f }));
    this.registerModule('norm1', new LayerNorm(dModel, { eps: layerNormEps, bias, ...f }));
    this.registerModule('norm2', new LayerNorm(dModel, { eps: layerNormEps, bias, ...f }));
    this.registerModule('dropout1', new Dropout(dropout));
    this.registerModule('dropout2', new Dropout(dropout));
    if (activation === 'relu') this.act = F.relu;
    else if (activation === 'gelu') this.act = (x) => F.gelu(x);
    else if (activation instanceof Module) {
      const m = this.registerModule('activation', activation);
      this.act = (x) => m.call(x) as Tensor;
    } else if (typeof activation === 'function') this.act = activation;
    else throw typeError("'relu', 'gelu', a function or a Module", 'activation', activation);
  }

  forward(src: Tensor, options: TransformerEncoderForwardOptions = {}): Tensor {
    const { srcMask = null, srcKeyPaddingMask = null, isCausal = false } = is.options(options);
    if (!(src instanceof Tensor)) throw typeError('a Tensor', 'src', src);
    return tidy(() => {
      const sa = (x: Tensor): Tensor => {
        const [y] = this.selfAttn.call(x, x, x, {
          attnMask: srcMask,
          keyPaddingMask: srcKeyPaddingMask,
          needWeights: false,
          isCausal,
        });
        return this.dropout1.call(y);
      };
      const ff = (x: Tensor): Tensor =>
        this.dropout2.call(this.linear2.call(this.dropout.call(this.act(this.linear1.call(x)))));
      let x = src;
      if (this.normFirst) {
        x = x.add(sa(this.norm1.call(x)));
        x = x.add(ff(this.norm2.call(x)));
      } else {
        x = this.norm1.call(x.add(sa(x)));
        x = this.norm2.call(x.add(ff(x)));
      }
      return x;
    });
  }

  /**
   * The layer on L new positions after `start` cached ones, causal, its self-attention through
   * MultiheadAttention.forwardCached (keys and values written into `cache`): incremental decoding. Eval-mode
   * numerics; for inference under noGrad.
   */
  forwardCached(x: Tensor, cache: { keys: Tensor; values: Tensor }, start: number): Tensor {
    if (!(x instanceof Tensor)) throw typeError('a Tensor', 'x', x);
    return tidy(() => {
      const sa = (h: Tensor): Tensor => this.selfAttn.forwardCached(h, cache, start);
      const ff = (h: Tensor): Tensor => this.linear2.call(this.act(this.linear1.call(h)));
      if (this.normFirst) {
        const h = x.add(sa(this.norm1.call(x)));
        return h.add(ff(this.norm2.call(h)));
      }
      const h = this.norm1.call(x.add(sa(x)));
      return this.norm2.call(h.add(ff(h)));
    });
  }

  /** A new layer with the same options and a copy of this one's parameters (PyTorch's copy.deepcopy of a layer). */
  cloneLayer(): TransformerEncoderLayer {
    const c = new TransformerEncoderLayer(this.dModel, this.nhead, this.options);
    noGrad(() => tidy(() => void c.loadStateDict(this.stateDict())));
    c.train(this.training);
    return c;
  }
}

/** Options of nn.TransformerEncoder (see its members). */
export interface TransformerEncoderOptions {
  /** A final normalisation (a LayerNorm, usually with a pre-norm stack), registered as `norm`. */
  norm?: AnyModule | null;
}

/**
 * numLayers encoder layers in sequence, then `norm` if given, as torch.nn.TransformerEncoder. As PyTorch's, every
 * layer starts with the given layer's weights (PyTorch deep-copies it numLayers times): here the given layer is
 * `layers.0` (the encoder takes it over; dispose the encoder, not the layer) and the others are copies of it.
 */
export class TransformerEncoder extends Module<[Tensor, TransformerEncoderForwardOptions?]> {
  readonly numLayers: number;
  declare layers: ModuleList;
  declare norm: AnyModule | null;

  constructor(encoderLayer: TransformerEncoderLayer, numLayers: number, options: TransformerEncoderOptions = {}) {
    const { norm = null } = is.options(options);
    super();
    if (!(encoderLayer instanceof TransformerEncoderLayer))
      throw typeError('a TransformerEncoderLayer', 'encoderLayer', encoderLayer);
    this.numLayers = is.positiveInteger(numLayers, 'numLayers');
    const layers = [encoderLayer];
    for (let i = 1; i < numLayers; i++) layers.push(encoderLayer.cloneLayer());
    this.registerModule('layers', new ModuleList(layers));
    if (norm !== null && !(norm instanceof Module)) throw typeError('a Module or null', 'norm', norm);
    this.registerModule('norm', norm);
  }

  forward(src: Tensor, options: TransformerEncoderForwardOptions = {}): Tensor {
    options = is.options(options);
    if (!(src instanceof Tensor)) throw typeError('a Tensor', 'src', src);
    return tidy(() => {
      let x = src;
      for (const layer of this.layers) x = (layer as TransformerEncoderLayer).call(x, options);
      if (this.norm !== null) x = this.norm.call(x) as Tensor;
      return x === src ? src.alias() : x;
    });
  }
}
