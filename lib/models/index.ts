/**
 * The paper's models: autoencoders, CIFAR ResNet32 and VGG16-BN, a small CNN for Fashion-MNIST, and plain MLPs; and a
 * small decoder-only transformer language model.
 */
export {
  mlp,
  autoencoder,
  AUTOENCODER_WIDTHS,
  type MlpOptions,
  type ActivationName,
  type ActivationSpec,
} from './mlp.js';
export { resnet32, ResNet, BasicBlock, PadShortcut } from './resnet.js';
export { vgg16bn, VGG, VGG16_CONFIG } from './vgg.js';
export { smallCnn, type SmallCnnOptions } from './smallcnn.js';
export { transformerLM, TransformerLM, KVCache, type TransformerLMOptions } from './transformer.js';
