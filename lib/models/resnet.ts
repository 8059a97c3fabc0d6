/**
 * ResNet for CIFAR (He et al. 2016, section 4.2): a 3x3 conv to 16 channels, three stages of n BasicBlocks with
 * 16, 32 and 64 channels (the 2nd and 3rd start with stride 2), global average pooling and a Linear classifier;
 * depth 6n + 2 (n = 5: ResNet32, about 0.46M parameters). Convolutions have no bias and are followed by BatchNorm;
 * shortcuts that change shape are option A: subsample by 2 and zero-pad the new channels (no parameters).
 * Parameter names follow the common PyTorch port (akamaster/pytorch_resnet_cifar10): conv1, bn1,
 * layer1.0.conv1.weight, ..., linear.weight. Initialisation as there and as the paper's reference code:
 * kaiming_normal (fan_in, relu gain) on every conv and Linear weight.
 */
import { Tensor } from '../tensor.js';
import { tidy } from '../scope.js';
import { is } from '../errors.js';
import { Module } from '../nn/module.js';
import { Linear, Identity } from '../nn/linear.js';
import { Conv2d } from '../nn/conv2d.js';
import { BatchNorm2d } from '../nn/batchnorm.js';
import { Sequential } from '../nn/container.js';
import * as F from '../nn/functional.js';
import * as init from '../nn/init.js';

/** Option-A shortcut: x[:, :, ::2, ::2] zero-padded with `pad` channels on each side. */
export class PadShortcut extends Module {
  readonly pad: number;
  constructor(pad: number) {
    super();
    this.pad = is.nonNegativeInteger(pad, 'pad');
  }
  forward(x: Tensor): Tensor {
    return tidy(() => F.pad(x.slice(2, null, null, 2).slice(3, null, null, 2), [0, 0, 0, 0, this.pad, this.pad]));
  }
  extraRepr(): string {
    return `stride=2, pad_channels=${this.pad}`;
  }
}

/** conv3x3-bn-relu-conv3x3-bn, plus the shortcut, then relu. */
export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly shortcut: Module;
  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = new Conv2d(planes, planes, 3, { stride: 1, padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    // Option A keeps the parameter count of the plain network: channels double exactly when the stride is 2.
    this.shortcut = stride !== 1 || inPlanes !== planes ? new PadShortcut(Math.floor(planes / 4)) : new Identity();
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const out = this.bn2.call(this.conv2.call(this.bn1.call(this.conv1.call(x)).relu()));
      return out.add(this.shortcut.call(x)).relu();
    });
  }
}

/** The CIFAR ResNet; `blocks` per stage ([5, 5, 5] for ResNet32). Input (N, 3, 32, 32) -> logits (N, numClasses). */
export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly linear: Linear;
  constructor(blocks: [number, number, number], options: { numClasses?: number; inChannels?: number } = {}) {
    const { numClasses = 10, inChannels = 3 } = is.options(options);
    super();
    is.positiveInteger(numClasses, 'numClasses');
    let inPlanes = 16;
    const stage = (planes: number, n: number, stride: number): Sequential => {
      const list: BasicBlock[] = [];
      for (let i = 0; i < n; i++) {
        list.push(new BasicBlock(inPlanes, planes, i === 0 ? stride : 1));
        inPlanes = planes;
      }
      return new Sequential(...list);
    };
    this.conv1 = new Conv2d(is.positiveInteger(inChannels, 'inChannels'), 16, 3, {
      stride: 1,
      padding: 1,
      bias: false,
    });
    this.bn1 = new BatchNorm2d(16);
    this.layer1 = stage(16, is.positiveInteger(blocks[0], 'blocks[0]'), 1);
    this.layer2 = stage(32, is.positiveInteger(blocks[1], 'blocks[1]'), 2);
    this.layer3 = stage(64, is.positiveInteger(blocks[2], 'blocks[2]'), 2);
    this.linear = new Linear(64, numClasses);
    this.apply((m) => {
      if (m instanceof Linear || m instanceof Conv2d) init.kaimingNormal_(m.weight);
    });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let out = this.bn1.call(this.conv1.call(x)).relu();
      out = this.layer3.call(this.layer2.call(this.layer1.call(out)));
      return this.linear.call(F.adaptiveAvgPool2d(out, 1).flatten(1));
    });
  }
}

/** ResNet32 for CIFAR (5 blocks per stage, 464,154 parameters with 10 classes). */
export function resnet32(options: { numClasses?: number; inChannels?: number } = {}): ResNet {
  const { numClasses = 10, inChannels = 3 } = is.options(options);
  return new ResNet([5, 5, 5], { numClasses, inChannels });
}
