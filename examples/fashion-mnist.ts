// Trains the small CNN (models.smallCnn: two conv-bn-relu-pool blocks and two linear layers) on Fashion-MNIST with
// Adam and a cosine learning-rate schedule, reports test accuracy after every epoch, and saves a checkpoint.
//
//   npm run build:ts && npm run example:fashion-mnist -- --epochs 2 --out results/fashion-mnist.safetensors
//
// The data comes from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist), or --root.
// Progress: a bar on a terminal, JSON lines when the output is piped.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import * as torch from 'tensornormal';
import { data, fit, models, nn, optim, save } from 'tensornormal';

const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '0.002' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string' },
    root: { type: 'string', default: data.FASHION_MNIST_ROOT },
    out: { type: 'string', default: 'results/fashion-mnist.safetensors' },
  },
});
const epochs = Number(values.epochs);
const seed = Number(values.seed);
if (values.threads !== undefined) torch.setNumThreads(Number(values.threads));
torch.manualSeed(seed);

const started = performance.now();
const trainSet = data.fashionMnist({ root: values.root, split: 'train' });
const testSet = data.fashionMnist({ root: values.root, split: 'test' });
// Fashion-MNIST's training-set pixel mean and standard deviation (of the [0, 1] images)
const normalize = data.transforms.normalize([0.286], [0.353]);
const train = new data.DataLoader(trainSet, {
  batchSize: Number(values.batch),
  shuffle: true,
  seed,
  transform: normalize,
});
const test = new data.DataLoader(testSet, { batchSize: 1000, transform: normalize });

const model = models.smallCnn();
const optimizer = new optim.Adam(model.parameters(), { lr: Number(values.lr) });
const scheduler = new optim.lrScheduler.CosineAnnealingLR(optimizer, { tMax: epochs });
console.error(
  `fashion-mnist: ${trainSet.length} training and ${testSet.length} test images, smallCnn with ` +
    `${model.parameters().reduce((n, p) => n + p.numel(), 0)} parameters, ${epochs} epochs of Adam, ` +
    `${torch.getNumThreads()} threads (libtorch ${torch.versions().torch})`,
);

const history = await fit(model, {
  train,
  val: test,
  epochs,
  optimizer,
  scheduler,
  loss: (output, target) => nn.functional.crossEntropy(output, target),
  metrics: ['loss', 'accuracy'],
  logEvery: 50,
});

const last = history[history.length - 1]!;
const seconds = (performance.now() - started) / 1000;
mkdirSync(dirname(values.out), { recursive: true });
save(values.out, { model, optimizer, epoch: epochs, history, seed });
console.error(
  `fashion-mnist: test accuracy ${(100 * last.valAccuracy!).toFixed(2)}% (loss ${last.valLoss!.toFixed(4)}) after ` +
    `${epochs} epochs in ${seconds.toFixed(0)} s; checkpoint saved to ${values.out}`,
);

optimizer.dispose();
model.dispose();
trainSet.dispose();
testSet.dispose();
