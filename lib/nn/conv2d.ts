/** nn.Conv2d (torch/nn/modules/conv.py). */
import { Tensor } from '../tensor.js';
import { empty } from '../creation.js';
import { is, typeError } from '../errors.js';
import { Module, type Parameter } from './module.js';
import * as F from './functional.js';
import * as init from './init.js';
import { pyRepr } from './repr.js';
import type { FactoryOptions } from './linear.js';

/** Options of nn.Conv2d: stride, padding (numbers, 'same' or 'valid'), dilation, groups, bias, dtype, device. */
export interface Conv2dOptions extends FactoryOptions {
  /** Default 1. */
  stride?: number | number[];
  /** Zero padding on both sides: a number, a pair, 'valid' (0) or 'same' (stride 1 only). Default 0. */
  padding?: number | number[] | 'valid' | 'same';
  /** Default 1. */
  dilation?: number | number[];
  /** Input and output channels are split in `groups` independent convolutions. Default 1. */
  groups?: number;
  /** Default true. */
  bias?: boolean;
}

/**
 * 2-d convolution over (N, C_in, H, W) inputs.
 *
 * Shapes: weight (outChannels, inChannels / groups, kh, kw), bias (outChannels); output (N, C_out, H_out, W_out) with
 * H_out = floor((H + 2 padding - dilation (kh - 1) - 1) / stride + 1), and likewise W_out.
 * Initialisation (PyTorch's default): weight ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn))
 * with fanIn = inChannels / groups * kh * kw; bias ~ U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 *
 *   const conv = new nn.Conv2d(3, 16, 3, { padding: 1, bias: false });
 *   const y = conv.call(x); // (N, 3, 32, 32) -> (N, 16, 32, 32)
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number[];
  readonly stride: number[];
  /** As given: [top/bottom, left/right] per side, or 'valid' / 'same'. */
  readonly padding: number[] | 'valid' | 'same';
  readonly dilation: number[];
  readonly groups: number;
  /** The symmetric [top/bottom, left/right] padding given to the convolution (what F.unfold needs for patches). */
  readonly resolvedPadding: number[];
  /**
   * Zero padding [left, right, top, bottom] applied to the input before the convolution, or null: only for
   * 'same' with an odd total padding, where the extra row/column goes at the end (as PyTorch).
   */
  readonly extraPadding: number[] | null = null;
  declare weight: Parameter;
  declare bias: Parameter | null;

  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], o: Conv2dOptions = {}) {
    o = is.options(o);
    super();
    this.inChannels = is.positiveInteger(inChannels, 'inChannels');
    this.outChannels = is.positiveInteger(outChannels, 'outChannels');
    this.kernelSize = F.pair(kernelSize, 'kernelSize', 1);
    this.stride = F.pair(o.stride ?? 1, 'stride', 1);
    this.dilation = F.pair(o.dilation ?? 1, 'dilation', 1);
    this.groups = is.positiveInteger(o.groups ?? 1, 'groups');
    const bias = is.boolean(o.bias ?? true, 'bias');
    if (inChannels % this.groups !== 0) throw new RangeError('in_channels must be divisible by groups');
    if (outChannels % this.groups !== 0) throw new RangeError('out_channels must be divisible by groups');
    const padding = o.padding ?? 0;
    if (padding === 'valid') {
      this.padding = 'valid';
      this.resolvedPadding = [0, 0];
    } else if (padding === 'same') {
      if (this.stride.some((s) => s !== 1))
        throw new RangeError("padding='same' is not supported for strided convolutions");
      this.padding = 'same';
      const total = this.kernelSize.map((k, i) => this.dilation[i]! * (k - 1));
      this.resolvedPadding = total.map((t) => Math.floor(t / 2));
      if (total.some((t) => t % 2 === 1)) {
        const extra = total.map((t) => t % 2);
        this.extraPadding = [0, extra[1]!, 0, extra[0]!];
      }
    } else if (typeof padding === 'number' || Array.isArray(padding)) {
      this.padding = F.pair(padding, 'padding', 0);
      this.resolvedPadding = this.padding;
    } else throw typeError("a non-negative integer, a pair of them, 'valid' or 'same'", 'padding', padding);
    const [kh, kw] = this.kernelSize as [number, number];
    const f = { dtype: o.dtype, device: o.device };
    this.registerParameter('weight', empty([outChannels, inChannels / this.groups, kh, kw], f));
    this.registerParameter('bias', bias ? empty([outChannels], f) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    // a = sqrt(5) makes the bound 1/sqrt(fanIn), as torch/nn/modules/conv.py.
    init.kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias !== null) {
      const [fanIn] = init.calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      init.uniform_(this.bias, -bound, bound);
    }
  }

  forward(input: Tensor): Tensor {
    const opts = { stride: this.stride, padding: this.resolvedPadding, dilation: this.dilation, groups: this.groups };
    if (this.extraPadding === null) return F.conv2d(input, this.weight, this.bias, opts);
    const padded = F.pad(input, this.extraPadding);
    try {
      return F.conv2d(padded, this.weight, this.bias, opts);
    } finally {
      padded.dispose();
    }
  }

  /** @internal what a shape error in forward means for this layer (Module.call adds it to the error) */
  _inputHint(input: unknown): string | null {
    if (!(input instanceof Tensor) || input.isDisposed) return null;
    const s = input.shape;
    if (s.length < 3)
      return (
        `Conv2d expects images [N, C, H, W] (or one image [C, H, W]), but the input has ${s.length} dimension(s): ` +
        `reshape flat pixels first, e.g. x.reshape([-1, ${this.inChannels}, H, W]) (x.reshape([-1, 1, 28, 28]) for MNIST)`
      );
    const dim = s.length === 4 ? 1 : 0;
    const c = s[dim];
    if (c === this.inChannels || s.length > 4) return null;
    const channelsLast = s.length === 4 && s[3] === this.inChannels;
    return (
      `Conv2d expects ${this.inChannels} channels (in_channels) in dimension ${dim}, but the input has ${c}` +
      (channelsLast ? ': it looks channels-last [N, H, W, C]; x.permute([0, 3, 1, 2]) makes it [N, C, H, W]' : '')
    );
  }

  extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyRepr(this.kernelSize)}, stride=${pyRepr(this.stride)}`;
    if (typeof this.padding === 'string')
      s += `, padding=${this.padding}`; // unquoted, as PyTorch prints it
    else if (this.padding.some((p) => p !== 0)) s += `, padding=${pyRepr(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${pyRepr(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    return s;
  }
}
