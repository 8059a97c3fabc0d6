/**
 * The training job of bench/service.mjs: the MNIST autoencoder (784-1000-500-250-30-250-500-1000-784) on a fixed
 * synthetic batch of 1024 inputs in [0, 1], Bernoulli likelihood (BCE on logits), with Adam or TNT. Run by
 * train.inWorker() (ctx from the worker) or called directly with an in-process ctx (the same-thread and dedicated
 * rows). Reports every step's end time; publishes the weights every `publishEvery` steps.
 */
import * as torch from '../dist/index.js';

export function makeModel() {
  torch.manualSeed(0);
  return torch.models.autoencoder('mnist');
}

export default async function train(ctx) {
  const {
    optimizer = 'adam',
    batch = 1024,
    publishEvery = 10,
    maxSteps = Infinity,
    threads,
    inverseEvery = 20,
  } = ctx.workerData ?? {};
  if (threads !== undefined) torch.setNumThreads(threads);
  const model = makeModel();
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
      await new Promise((r) => setImmediate(r)); // a turn of the event loop, as fit() does (cancel, in-process requests)
    }
  } finally {
    opt.dispose();
    x.dispose();
  }
  return { steps };
}
