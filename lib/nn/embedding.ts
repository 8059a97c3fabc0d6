/** nn.Embedding (torch/nn/modules/sparse.py) and positional encodings. */
import { Tensor } from '../tensor.js';
import { empty, arange } from '../creation.js';
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { is } from '../errors.js';
import { Module, type Parameter } from './module.js';
import type { FactoryOptions } from './linear.js';
import * as F from './functional.js';
import * as init from './init.js';

/** Options of nn.Embedding (see its members), and the dtype and device of its weight. */
export interface EmbeddingOptions extends FactoryOptions {
  /** This row is initialised to zeros and gets no gradient (a padding token); negative counts from the end. */
  paddingIdx?: number | null;
}

/**
 * A lookup table: an integer input of any shape (*) gives (*, embeddingDim), row `input[i]` of `weight`.
 *
 * weight (numEmbeddings, embeddingDim) ~ N(0, 1), as PyTorch's, with the `paddingIdx` row zero. Its state-dict key
 * is `weight`, as PyTorch's.
 *
 *   const emb = new nn.Embedding(256, 64, { paddingIdx: 0 });
 *   const h = emb.call(tokens);          // tokens int64 (B, T) -> (B, T, 64)
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** The padding row, normalised to [0, numEmbeddings) (null: none). */
  readonly paddingIdx: number | null;
  declare weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingOptions = {}) {
    const { paddingIdx = null, dtype, device } = is.options(options);
    super();
    this.numEmbeddings = is.nonNegativeInteger(numEmbeddings, 'numEmbeddings');
    this.embeddingDim = is.nonNegativeInteger(embeddingDim, 'embeddingDim');
    if (paddingIdx !== null) {
      is.integer(paddingIdx, 'paddingIdx');
      if (paddingIdx >= numEmbeddings || paddingIdx < -numEmbeddings)
        throw new RangeError(`paddingIdx must be within numEmbeddings (${numEmbeddings}), got ${paddingIdx}`);
      this.paddingIdx = paddingIdx < 0 ? paddingIdx + numEmbeddings : paddingIdx;
    } else this.paddingIdx = null;
    this.registerParameter('weight', empty([numEmbeddings, embeddingDim], { dtype, device }));
    this.resetParameters();
  }

  resetParameters(): void {
    init.normal_(this.weight);
    this.fillPaddingRow();
  }

  private fillPaddingRow(): void {
    if (this.paddingIdx === null) return;
    const p = this.paddingIdx;
    noGrad(() => tidy(() => void this.weight.select(0, p).fill_(0)));
  }

  forward(input: Tensor): Tensor {
    return F.embedding(input, this.weight, { paddingIdx: this.paddingIdx });
  }

  extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, padding_idx=${this.paddingIdx}` : ''}`;
  }
}

/**
 * The sinusoidal position encoding of "Attention Is All You Need" (as PyTorch's tutorial): a (length, dModel)
 * tensor with pe[t, 2i] = sin(t / 10000^(2i / dModel)) and pe[t, 2i + 1] = cos(t / 10000^(2i / dModel)). Not a
 * parameter: register it as a buffer (non-persistent, as it is recomputed) or add it to the embeddings directly.
 */
export function sinusoidalPositionalEncoding(length: number, dModel: number, options: FactoryOptions = {}): Tensor {
  is.positiveInteger(length, 'length');
  is.positiveInteger(dModel, 'dModel');
  const { dtype = 'float32', device } = is.options(options);
  return tidy(() => {
    const pos = arange(length, { dtype: 'float64' }).unsqueeze(1); // (T, 1)
    const i = arange(0, dModel, 2, { dtype: 'float64' }); // (ceil(d / 2))
    const div = i.mul(-Math.log(10000) / dModel).exp(); // 10000^(-2i/d)
    const angle = pos.mul(div); // (T, ceil(d / 2))
    const sin = angle.sin(),
      cos = angle.cos();
    // interleave: (T, ceil(d/2), 2) -> (T, 2 ceil(d/2)), then drop the last column when d is odd
    const both = sin.unsqueeze(2).expand([length, sin.shape[1]!, 2]).contiguous();
    both.select(2, 1).copy_(cos);
    const pe = both.reshape([length, -1]).narrow(1, 0, dModel);
    return pe.to({ dtype, device });
  });
}
