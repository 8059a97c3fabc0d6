#!/usr/bin/env node
/**
 * TNT on the paper's MNIST autoencoder (batch 1000, T1 = 1, T2 = 20) on every device this machine has: the mean
 * step time over 40 steps after the first 20 (the first-T2 steps, which refresh the inverses every step), and the
 * loss after those 60 steps from the same initial weights and data, which must agree across devices. Run by
 * scripts/gpu-check.sh on a GPU machine; runs on the CPU alone elsewhere. `node bench/tnt-device.mjs [steps]`.
 */
import * as torch from '../dist/index.js';
import { models, optim, Bernoulli, tidy } from '../dist/index.js';

const timed = Number(process.argv[2] ?? 40);
const warm = 20;
const devices = ['cpu', ...(torch.cuda.isAvailable() ? ['cuda'] : [])];
torch.manualSeed(0);
const x0 = torch.rand([1000, 784]).keep();
const init = models.autoencoder('mnist');
const lik = new Bernoulli();
const results = [];
for (const device of devices) {
  torch.manualSeed(0);
  const model = models.autoencoder('mnist');
  model.loadStateDict(init.stateDict());
  model.to(device);
  const x = x0.to(device).keep();
  const opt = new optim.TNT(model.parameters(), { lr: 1e-4, damping: 0.1, statsEvery: 1, inverseEvery: 20 });
  const sync = () => (device === 'cuda' ? torch.tidy(() => x.sum().item()) : 0); // item() waits for the device
  let loss = 0;
  let start = 0;
  for (let i = 0; i < warm + timed; i++) {
    if (i === warm) {
      sync();
      start = performance.now();
    }
    const l = tidy(() => {
      const out = model.call(x);
      opt.sampledBackward(out, lik);
      const v = lik.loss(out, x);
      v.backward();
      opt.step();
      opt.zeroGrad();
      return i === warm + timed - 1 ? v.item() : 0;
    });
    if (l) loss = l;
  }
  sync();
  const ms = (performance.now() - start) / timed;
  results.push({
    device,
    stepMs: +ms.toFixed(2),
    loss: +loss.toFixed(4),
    stateMiB: +(opt.stateBytes() / 2 ** 20).toFixed(1),
    blasKernels: opt.blasKernels,
  });
  console.log(JSON.stringify(results.at(-1)));
  opt.dispose();
  model.dispose();
  x.dispose();
}
if (results.length === 2) {
  console.log(`cuda / cpu step time: ${(results[1].stepMs / results[0].stepMs).toFixed(3)}x`);
  const rel = Math.abs(results[1].loss - results[0].loss) / Math.abs(results[0].loss);
  console.log(
    `loss after ${warm + timed} steps: cpu ${results[0].loss}, cuda ${results[1].loss} (relative difference ${rel.toExponential(2)})`,
  );
}
init.dispose();
x0.dispose();
