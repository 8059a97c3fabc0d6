/** torch.nn: modules, layers, initialisers, layer capture, and the functional ops. */
export * as functional from './functional.js';
export * as init from './init.js';
export {
  Module,
  Parameter,
  RemovableHandle,
  type AnyModule,
  type ForwardHook,
  type ForwardPreHook,
  type BackwardHook,
  type BackwardPreHook,
  type LoadStateDictResult,
  type StateDict,
  type ModuleTarget,
} from './module.js';
export { Linear, Identity, type LinearOptions, type FactoryOptions } from './linear.js';
export { Conv2d, type Conv2dOptions } from './conv2d.js';
export { BatchNormBase, BatchNorm1d, BatchNorm2d, type BatchNormOptions } from './batchnorm.js';
export { ReLU, Sigmoid, Tanh, GELU } from './activation.js';
export { Dropout } from './dropout.js';
export { Embedding, sinusoidalPositionalEncoding, type EmbeddingOptions } from './embedding.js';
export { LayerNorm, type LayerNormOptions } from './normalization.js';
export {
  MultiheadAttention,
  TransformerEncoderLayer,
  TransformerEncoder,
  generateSquareSubsequentMask,
  type MultiheadAttentionOptions,
  type MultiheadAttentionForwardOptions,
  type TransformerEncoderLayerOptions,
  type TransformerEncoderOptions,
  type TransformerEncoderForwardOptions,
  type TransformerActivation,
} from './transformer.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, type MaxPool2dOptions, type AvgPool2dOptions } from './pooling.js';
export { Flatten } from './flatten.js';
export { Sequential, ModuleList } from './container.js';
export * as parallel from './parallel.js';
export { captureOutputs, LayerCapture, type CapturedLayer, type CaptureOptions } from './capture.js';
export { L1Loss, MSELoss, SmoothL1Loss, CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss } from './loss.js';
