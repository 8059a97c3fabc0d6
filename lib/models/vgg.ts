/**
 * VGG16 with BatchNorm for 32x32 inputs (CIFAR), as in the paper's CIFAR-100 experiment: thirteen 3x3 convolutions
 * (64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M; each conv with bias, then BatchNorm and ReLU; M a 2x2
 * max pool) leave a 512x1x1 map, and the classifier is Linear(512, 4096), ReLU, Linear(4096, 4096), ReLU,
 * Linear(4096, numClasses), without dropout or adaptive pooling. Names follow torchvision: features.0.weight,
 * features.1.runningMean, classifier.0.weight, ...
 * Initialisation as the paper's reference code (after chengyangfu/pytorch-vgg-cifar10): conv weights
 * N(0, 2 / (kh * kw * outChannels)), conv biases zero; BatchNorm and Linear layers keep PyTorch's defaults.
 */
import { Tensor } from '../tensor.js';
import { tidy } from '../scope.js';
import { is } from '../errors.js';
import { Module, type AnyModule } from '../nn/module.js';
import { Linear } from '../nn/linear.js';
import { Conv2d } from '../nn/conv2d.js';
import { BatchNorm2d } from '../nn/batchnorm.js';
import { ReLU } from '../nn/activation.js';
import { MaxPool2d } from '../nn/pooling.js';
import { Sequential } from '../nn/container.js';
import * as init from '../nn/init.js';

/** VGG configuration "D" (16 weight layers): channel counts, 'M' for a max pool. */
export const VGG16_CONFIG: readonly (number | 'M')[] = [
  64,
  64,
  'M',
  128,
  128,
  'M',
  256,
  256,
  256,
  'M',
  512,
  512,
  512,
  'M',
  512,
  512,
  512,
  'M',
];

/** VGG-16 with batch normalisation for 32x32 images (`models.vgg16bn`). */
export class VGG extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;
  constructor(
    config: readonly (number | 'M')[],
    options: { numClasses?: number; inChannels?: number; hidden?: number } = {},
  ) {
    const { numClasses = 100, inChannels = 3, hidden = 4096 } = is.options(options);
    super();
    is.positiveInteger(numClasses, 'numClasses');
    is.positiveInteger(hidden, 'hidden');
    const layers: AnyModule[] = [];
    let c = is.positiveInteger(inChannels, 'inChannels');
    for (const v of config) {
      if (v === 'M') layers.push(new MaxPool2d(2, { stride: 2 }));
      else {
        const conv = new Conv2d(c, is.positiveInteger(v, 'config entry'), 3, { padding: 1 });
        init.normal_(conv.weight, 0, Math.sqrt(2 / (3 * 3 * v)));
        init.zeros_(conv.bias!);
        layers.push(conv, new BatchNorm2d(v), new ReLU());
        c = v;
      }
    }
    this.features = new Sequential(...layers);
    this.classifier = new Sequential(
      new Linear(c, hidden),
      new ReLU(),
      new Linear(hidden, hidden),
      new ReLU(),
      new Linear(hidden, numClasses),
    );
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.classifier.call(this.features.call(x).flatten(1)));
  }
}

/** VGG16-BN for CIFAR: input (N, 3, 32, 32) -> logits (N, numClasses); 100 classes by default (CIFAR-100, as the paper). */
export function vgg16bn(options: { numClasses?: number; inChannels?: number } = {}): VGG {
  const { numClasses = 100, inChannels = 3 } = is.options(options);
  return new VGG(VGG16_CONFIG, { numClasses, inChannels });
}
