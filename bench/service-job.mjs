/**
 * The training jobs of bench/service.mjs, run by train.inWorker() (ctx from the worker) or called directly with an
 * in-process ctx (the same-thread and dedicated rows). Each reports every step's end time (`ctx.progress({ t })`)
 * and publishes the weights every `publishEvery` steps.
 *
 * - model 'mlp' (the classifier of issue 23): a 784-512-512-10 MLP trained by fit() on 8192 synthetic 784-pixel
 *   inputs in [0, 1] with 10 classes, batch 128, Categorical likelihood (cross-entropy), Adam or TNT: the README's
 *   recipe as a user writes it (fit() with ctx.callbacks).
 * - model 'autoencoder': the MNIST autoencoder (784-1000-500-250-30-250-500-1000-784) on a fixed synthetic batch of
 *   1024 inputs in [0, 1], Bernoulli likelihood (BCE on logits), with Adam or TNT, in a hand-written loop.
 */
import * as torch from '../dist/index.js';

export function makeModel(model = 'autoencoder') {
  torch.manualSeed(0);
  return model === 'mlp' ? torch.models.mlp([784, 512, 512, 10]) : torch.models.autoencoder('mnist');
}

export default async function train(ctx) {
  const { model: kind = 'autoencoder', threads } = ctx.workerData ?? {};
  if (threads !== undefined) torch.setNumThreads(threads);
  return kind === 'mlp' ? trainMlp(ctx) : trainAutoencoder(ctx);
}

async function trainMlp(ctx) {
  const { optimizer = 'adam', batch = 128, publishEvery = 10, epochs = 1000 } = ctx.workerData ?? {};
  const model = makeModel('mlp');
  torch.manualSeed(1);
  const x = torch.rand([8192, 784]);
  const y = torch.randint(0, 10, [8192]);
  const set = new torch.data.TensorDataset(x, y);
  const loader = new torch.data.DataLoader(set, { batchSize: batch, shuffle: true });
  const opt =
    optimizer === 'tnt'
      ? new torch.optim.TNT(model.parameters(), { lr: 1e-2, damping: 0.1 })
      : new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  const fromCtx = ctx.callbacks(model, { publishEvery, progressEvery: 0 });
  let steps = 0;
  try {
    await torch.fit(model, {
      train: loader,
      epochs,
      optimizer: opt,
      likelihood: new torch.Categorical(),
      progress: 'none',
      signal: ctx.signal,
      callbacks: {
        onBatchEnd(b) {
          steps++;
          ctx.progress({ steps, t: performance.now() + performance.timeOrigin });
          return fromCtx.onBatchEnd?.(b);
        },
        onEpochEnd: fromCtx.onEpochEnd,
      },
    });
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
  } finally {
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  }
  return { steps };
}

async function trainAutoencoder(ctx) {
  const {
    optimizer = 'adam',
    batch = 1024,
    publishEvery = 10,
    maxSteps = Infinity,
    inverseEvery = 20,
  } = ctx.workerData ?? {};
  const model = makeModel('autoencoder');
  const x = torch.tidy(() => torch.rand([batch, 784]));
  const lik = new torch.Bernoulli();
  const opt =
    optimizer === 'tnt'
      ? new torch.optim.TNT(model.parameters(), { lr: 1e-4, damping: 0.1, inverseEvery }) // T1 = 1, T2 = 20 (the defaults)
      : new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  let steps = 0;
  try {
    while (steps < maxSteps) {
      if (ctx.signal.aborted) break;
      torch.tidy(() => {
        const out = model.call(x);
        if (optimizer === 'tnt') opt.sampledBackward(out, lik);
        lik.loss(out, x).backward();
      });
      opt.step();
      opt.zeroGrad();
      steps++;
      ctx.progress({ steps, t: performance.now() + performance.timeOrigin });
      if (steps % publishEvery === 0) ctx.publish(model, { step: steps });
      // a turn of the event loop, as fit() does (cancel, in-process requests); in a worker, also the trainer's
      // pause between steps while requests are served (ctx.afterStep, with a numeric priority)
      if (ctx.afterStep) await ctx.afterStep(batch);
      else await new Promise((r) => setImmediate(r));
    }
  } finally {
    opt.dispose();
    model.dispose();
    x.dispose();
  }
  return { steps };
}
