/**
 * The paper's CNN experiment (Figure 3), scaled to a small machine: training loss and validation error of TNT,
 * KFAC, Shampoo, Adam and SGD-m against epochs and process time.
 *
 * With CIFAR (`root` set): ResNet32 on CIFAR-10 or VGG16-BN on CIFAR-100, batch 128, random crop 32 (padding 4) and
 * horizontal flip, validation on the test split. Without: a ResNet-style network (default ResNet8: one basic block
 * per stage, 1 input channel) on Fashion-MNIST's 60,000 training images, validation on its 10,000 test images.
 * Inputs are normalised by the training set's channel means and standard deviations.
 *
 * Hyperparameters (CNN_DEFAULTS): T1 = 10, T2 = 100 for the second-order methods; decoupled weight decay for all.
 * TNT, Shampoo and SGD-m take the values of the authors' CIFAR-10 runs; KFAC's damping 0.03 and Adam's eps 1e-8
 * are the paper's, their learning rates and weight decays are ours (the paper's grid values are not published).
 * Learning-rate decay x0.1 as the paper, scaled to the run's length: the second-order methods every 40% of the
 * steps (every 40 of 100 epochs), the first-order ones every 30% (every 60 of 200 epochs).
 */
import { tidy, keep, Tensor, tensor, noGrad, data, models, nn, Categorical } from 'tensornormal';
import { OPTIMIZERS, type Hyper, type OptimizerName } from './run.js';
import { runExperiment, type ExperimentEvent, type ExperimentResult } from './experiment.js';

const { TensorDataset, DataLoader, permutation, fashionMnist, FASHION_MNIST_ROOT, cifar10, cifar100, transforms } =
  data;
const { ResNet, vgg16bn, smallCnn } = models;
const F = nn.functional;
type ImageDataset = data.ImageDataset;
type AnyModule = nn.AnyModule;

export const CNN_DEFAULTS: Record<OptimizerName, Hyper> = {
  tnt: { lr: 1e-4, damping: 0.01, weightDecay: 10, statsEvery: 10, inverseEvery: 100 },
  shampoo: { lr: 0.01, damping: 0.01, weightDecay: 0.1, statsEvery: 10, inverseEvery: 100 },
  kfac: { lr: 0.01, damping: 0.03, weightDecay: 0.1, statsEvery: 10, inverseEvery: 100 },
  adam: { lr: 1e-3, damping: 1e-8, weightDecay: 0.1 },
  sgd: { lr: 0.03, momentum: 0.9, weightDecay: 0.01 },
};

export const CNN_MODELS = ['resnet32', 'resnet20', 'resnet8', 'vgg16bn', 'small-cnn'] as const;
export type CnnModel = (typeof CNN_MODELS)[number];
export const CNN_DATASETS = ['fashion-mnist', 'cifar10', 'cifar100'] as const;
export type CnnDataset = (typeof CNN_DATASETS)[number];

export interface CnnExperimentOptions {
  /** Default 'fashion-mnist', or 'cifar10' when `root` is given. */
  dataset?: CnnDataset;
  /** Folder of the CIFAR binary files (required for CIFAR), or of the Fashion-MNIST IDX files. */
  root?: string;
  /** Default: resnet32 (CIFAR-10), vgg16bn (CIFAR-100), resnet8 (Fashion-MNIST). */
  model?: CnnModel;
  optimizers?: OptimizerName[];
  seeds?: number;
  /** The first seed (default 0): seeds firstSeed, ..., firstSeed + seeds - 1. */
  firstSeed?: number;
  /** Default 4. */
  epochs?: number;
  timeBudget?: number;
  /** Default 128, the paper's. */
  batchSize?: number;
  /** Train on a seeded random subset of this many images. */
  limit?: number;
  /** Validate on the first this many test images. */
  valLimit?: number;
  warmBatches?: number;
  overrides?: Partial<Record<OptimizerName, Partial<Hyper>>>;
  grid?: { budget?: number; epochs?: number } | boolean;
  logEvery?: number;
  onEvent?: (e: ExperimentEvent) => void;
}

const STATS: Record<CnnDataset, { mean: number[]; std: number[] }> = {
  // Fashion-MNIST's training-set statistics (lib/data/transforms.ts); CIFAR's as torchvision examples use them
  'fashion-mnist': { mean: [0.286], std: [0.353] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
};

function load(dataset: CnnDataset, root: string | undefined, split: 'train' | 'test'): ImageDataset {
  if (dataset === 'fashion-mnist') return fashionMnist({ root: root ?? FASHION_MNIST_ROOT, split });
  if (root === undefined)
    throw new TypeError(`The ${dataset} experiment needs the folder of its binary files (--data DIR)`);
  return dataset === 'cifar10' ? cifar10({ root, split }) : cifar100({ root, split });
}

/** Images and labels of a split, as owned tensors: a seeded random subset of `limit` (train) or the first `limit` (test). */
function split(ds: ImageDataset, limit: number | undefined, random: boolean): [Tensor, Tensor] {
  const n = ds.length;
  if (limit === undefined || limit >= n)
    return [keep(tidy(() => ds.images.clone())), keep(tidy(() => ds.labels.clone()))];
  return tidy(() => {
    const order = random
      ? Array.from(permutation(n, 12345, 0).subarray(0, limit))
      : Array.from({ length: limit }, (_, i) => i);
    const idx = tensor(order.map((v) => BigInt(v)));
    return [keep(ds.images.indexSelect(0, idx)), keep(ds.labels.indexSelect(0, idx))] as [Tensor, Tensor];
  });
}

export function cnnModel(model: CnnModel, numClasses: number, inChannels: number, imageSize: number): AnyModule {
  switch (model) {
    case 'resnet32':
      return new ResNet([5, 5, 5], { numClasses, inChannels });
    case 'resnet20':
      return new ResNet([3, 3, 3], { numClasses, inChannels });
    case 'resnet8':
      return new ResNet([1, 1, 1], { numClasses, inChannels });
    case 'vgg16bn':
      if (imageSize < 32)
        throw new RangeError(
          `vgg16bn needs 32x32 images (its five poolings), but ${imageSize}x${imageSize} images were given`,
        );
      return vgg16bn({ numClasses, inChannels });
    case 'small-cnn':
      return smallCnn({ numClasses, inChannels, imageSize });
  }
}

export async function runCnnExperiment(o: CnnExperimentOptions = {}): Promise<ExperimentResult> {
  const dataset: CnnDataset = o.dataset ?? (o.root !== undefined ? 'cifar10' : 'fashion-mnist');
  const modelName: CnnModel =
    o.model ?? (dataset === 'cifar10' ? 'resnet32' : dataset === 'cifar100' ? 'vgg16bn' : 'resnet8');
  const optimizers = o.optimizers ?? [...OPTIMIZERS];
  const seeds = Array.from({ length: o.seeds ?? 1 }, (_, i) => i + (o.firstSeed ?? 0));
  const epochs = o.epochs ?? 4;
  const batchSize = o.batchSize ?? 128;
  const trainSet = load(dataset, o.root, 'train');
  const testSet = load(dataset, o.root, 'test');
  const numClasses = trainSet.classes.length;
  const [C, S] = [trainSet.images.shape[1]!, trainSet.images.shape[2]!];
  let owned: Tensor[] = [];
  try {
    owned = [...split(trainSet, o.limit, true), ...split(testSet, o.valLimit, false)];
    trainSet.dispose();
    testSet.dispose();
    const [xTrain, yTrain, xVal, yVal] = owned as [Tensor, Tensor, Tensor, Tensor];
    cnnModel(modelName, numClasses, C, S).dispose(); // fails early on a model that does not fit the images
    const norm = transforms.normalize(STATS[dataset].mean, STATS[dataset].std);
    const transform =
      dataset === 'fashion-mnist'
        ? norm
        : transforms.compose(transforms.randomCrop(S, { padding: 4 }), transforms.randomHorizontalFlip(), norm);
    const valLoader = new DataLoader(new TensorDataset(xVal, yVal), { batchSize: 1000, transform: norm });
    const validate = (model: AnyModule): { loss: number; error: number } =>
      noGrad(() => {
        let loss = 0,
          wrong = 0,
          n = 0;
        for (const [x, y] of valLoader)
          tidy(() => {
            const out = model.call(x) as Tensor;
            loss += F.crossEntropy(out, y, { reduction: 'sum' }).item() as number;
            wrong += out.argmax(1).ne(y).sum().item() as number;
            n += y.shape[0]!;
          });
        return { loss: loss / n, error: wrong / n };
      });
    const stepsPerEpoch = Math.ceil(xTrain.shape[0]! / batchSize);
    const hyperparameters = Object.fromEntries(
      OPTIMIZERS.map((k) => [k, { ...CNN_DEFAULTS[k], ...(o.overrides?.[k] ?? {}) }]),
    ) as Record<OptimizerName, Hyper>;
    const warmBatches = o.warmBatches ?? Infinity;
    const logEvery = o.logEvery ?? Math.max(1, Math.floor(stepsPerEpoch / 20));
    const gridOpt = o.grid
      ? {
          budget: (typeof o.grid === 'object' ? o.grid.budget : undefined) ?? 60,
          epochs: (typeof o.grid === 'object' ? o.grid.epochs : undefined) ?? 1,
          seed: 1000,
        }
      : null;
    const names: Record<CnnDataset, string> = {
      'fashion-mnist': 'Fashion-MNIST',
      cifar10: 'CIFAR-10',
      cifar100: 'CIFAR-100',
    };
    const firstOrder = (k: OptimizerName): boolean => k === 'adam' || k === 'sgd';
    return await runExperiment({
      experiment: 'cnn',
      title: `${modelName} on ${names[dataset]}`,
      config: {
        dataset,
        model: modelName,
        samples: xTrain.shape[0],
        validationSamples: xVal.shape[0],
        batchSize,
        epochs,
        seeds,
        timeBudget: o.timeBudget ?? null,
        warmBatches: Number.isFinite(warmBatches) ? Math.min(warmBatches, stepsPerEpoch) : stepsPerEpoch,
        likelihood: 'categorical (cross-entropy, mean over the batch)',
        lrDecay: 'x0.1 at 40% and 80% of the steps (TNT, KFAC, Shampoo), at 30%, 60%, 90% (Adam, SGD-m)',
        augmentation: dataset === 'fashion-mnist' ? 'none' : 'random crop (padding 4), horizontal flip',
        clock: 'process time (CPU seconds, user + system), warm start included, validation excluded',
        logEvery,
      },
      optimizers,
      seeds,
      hyperparameters,
      grid: gridOpt,
      base: {
        epochs,
        timeBudget: o.timeBudget,
        batchSize,
        model: () => cnnModel(modelName, numClasses, C, S),
        likelihood: new Categorical(),
        train: new TensorDataset(xTrain, yTrain),
        transform,
        warmBatches,
        logEvery,
        validate,
      },
      lrDecay: (k) => ({ at: firstOrder(k) ? [0.3, 0.6, 0.9] : [0.4, 0.8], factor: 0.1 }),
      onEvent: o.onEvent,
    });
  } finally {
    if (!trainSet.images.isDisposed) trainSet.dispose();
    if (!testSet.images.isDisposed) testSet.dispose();
    for (const t of owned) t.dispose();
  }
}
