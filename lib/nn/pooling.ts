/** nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d (torch/nn/modules/pooling.py). */
import { Tensor } from '../tensor.js';
import { is } from '../errors.js';
import { Module } from './module.js';
import * as F from './functional.js';
import { pyRepr } from './repr.js';

/** Options of nn.MaxPool2d: stride, padding, dilation, ceilMode. */
export interface MaxPool2dOptions {
  /** Default: kernelSize. */
  stride?: number | number[] | null;
  /** Implicit -infinity padding on both sides. Default 0. */
  padding?: number | number[];
  dilation?: number | number[];
  /** Round the output size up instead of down. Default false. */
  ceilMode?: boolean;
}

/** Maximum over kernelSize windows of (N, C, H, W) inputs. */
export class MaxPool2d extends Module {
  readonly kernelSize: number | number[];
  readonly stride: number | number[];
  readonly padding: number | number[];
  readonly dilation: number | number[];
  readonly ceilMode: boolean;
  constructor(kernelSize: number | number[], options: MaxPool2dOptions = {}) {
    const { stride = null, padding = 0, dilation = 1, ceilMode = false } = is.options(options);
    super();
    F.pair(kernelSize, 'kernelSize', 1);
    if (stride !== null) F.pair(stride, 'stride', 1);
    F.pair(padding, 'padding', 0);
    F.pair(dilation, 'dilation', 1);
    this.kernelSize = kernelSize;
    this.stride = stride ?? kernelSize;
    this.padding = padding;
    this.dilation = dilation;
    this.ceilMode = is.boolean(ceilMode, 'ceilMode');
  }
  forward(input: Tensor): Tensor {
    return F.maxPool2d(input, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      ceilMode: this.ceilMode,
    });
  }
  extraRepr(): string {
    return `kernel_size=${pyRepr(this.kernelSize)}, stride=${pyRepr(this.stride)}, padding=${pyRepr(this.padding)}, dilation=${pyRepr(this.dilation)}, ceil_mode=${pyRepr(this.ceilMode)}`;
  }
}

/** Options of nn.AvgPool2d: stride, padding, ceilMode, countIncludePad. */
export interface AvgPool2dOptions {
  stride?: number | number[] | null;
  padding?: number | number[];
  ceilMode?: boolean;
  /** Count the zero padding in the averages. Default true. */
  countIncludePad?: boolean;
}

/** Mean over kernelSize windows of (N, C, H, W) inputs. */
export class AvgPool2d extends Module {
  readonly kernelSize: number | number[];
  readonly stride: number | number[];
  readonly padding: number | number[];
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  constructor(kernelSize: number | number[], options: AvgPool2dOptions = {}) {
    const { stride = null, padding = 0, ceilMode = false, countIncludePad = true } = is.options(options);
    super();
    F.pair(kernelSize, 'kernelSize', 1);
    if (stride !== null) F.pair(stride, 'stride', 1);
    F.pair(padding, 'padding', 0);
    this.kernelSize = kernelSize;
    this.stride = stride ?? kernelSize;
    this.padding = padding;
    this.ceilMode = is.boolean(ceilMode, 'ceilMode');
    this.countIncludePad = is.boolean(countIncludePad, 'countIncludePad');
  }
  forward(input: Tensor): Tensor {
    return F.avgPool2d(input, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad,
    });
  }
  extraRepr(): string {
    return `kernel_size=${pyRepr(this.kernelSize)}, stride=${pyRepr(this.stride)}, padding=${pyRepr(this.padding)}`;
  }
}

/** Averages (N, C, H, W) inputs onto an outputSize grid whatever H and W are (outputSize 1: global average pooling). */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: number | number[];
  constructor(outputSize: number | number[]) {
    super();
    F.pair(outputSize, 'outputSize', 1);
    this.outputSize = outputSize;
  }
  forward(input: Tensor): Tensor {
    return F.adaptiveAvgPool2d(input, this.outputSize);
  }
  extraRepr(): string {
    return `output_size=${pyRepr(this.outputSize)}`;
  }
}
