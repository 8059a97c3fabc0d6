// One rank of test/distributed.test.ts's elastic-restart test, started by `tensornormal run --max-restarts N`:
// `node elastic-worker.mjs <ckpt> <every> <killRank> <killStep>`. A float64 MLP trained with TNT through
// CurvatureSync (shard 'all': the curvature state is divided over the ranks), DDP, a DistributedSampler + DataLoader
// over 48 samples (batch 4 per rank, 3 epochs), and a Gaussian likelihood whose samples come from each rank's own
// RNG stream (seeded per rank). A checkpoint every `every` steps (dist.saveCheckpoint); on the first attempt rank
// `killRank` SIGKILLs itself at the start of step `killStep`. Prints {"attempt", "step"} per step and, on rank 0 at
// the end, the weights.
import { pathToFileURL } from 'node:url';

const torch = await import(pathToFileURL(process.env.TN_LIB).href);
const { distributed: dist, data } = torch;
const [ckpt, everyArg, killRankArg, killStepArg] = process.argv.slice(2);
const every = Number(everyArg),
  killRank = Number(killRankArg),
  killStep = Number(killStepArg);
const attempt = Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0);
const out = (o) => process.stdout.write(JSON.stringify({ rank: Number(process.env.RANK), attempt, ...o }) + '\n');

await dist.initProcessGroup({ timeout: Number(process.env.TN_TIMEOUT ?? 20000) });
const rank = dist.getRank();
torch.manualSeed(1000 + rank); // each rank its own stream: the checkpoint must restore every one
const f = (a, b, c) => Math.sin(a * 12.9898 + b * 78.233 + c * 37.719) * 0.5;
const D = 6,
  H = 5,
  K = 3,
  N = 48,
  epochs = 3;
const mat = (rows, cols, seed) =>
  torch.tensor(
    Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => f(i + seed, j, seed))),
    { dtype: 'float64' },
  );
const model = new torch.nn.Sequential(
  new torch.nn.Linear(D, H, { dtype: 'float64' }),
  new torch.nn.Tanh(),
  new torch.nn.Linear(H, K, { dtype: 'float64' }),
);
torch.noGrad(() =>
  model.parameters().forEach((p, i) => {
    const v = p.ndim === 2 ? mat(p.shape[0], p.shape[1], 100 + i) : mat(1, p.shape[0], 200 + i).reshape([-1]);
    p.copy_(v.mul(0.8));
  }),
);
const ddp = await torch.nn.parallel.DistributedDataParallel.create(model, { bucketCapMB: 0.0002 });
const opt = new torch.optim.TNT(model.parameters(), {
  lr: 0.1,
  statsEvery: 1,
  inverseEvery: 2,
  factorDtype: 'float64',
  damping: 0.1,
});
const sync = new dist.CurvatureSync(opt, { shard: 'all' });
const ds = new data.TensorDataset(mat(N, D, 1), mat(N, K, 2));
const sampler = new data.DistributedSampler(ds, { seed: 3 });
const loader = new data.DataLoader(ds, { batchSize: 4, sampler });
const lik = new torch.Gaussian();
const loaders = { loader, sampler };

const meta = await dist.restoreCheckpoint(ckpt, { model, optimizer: sync, loaders });
let step = meta?.step ?? 0;
if (meta) await ddp.ready;
out({ resumedAt: step });
for (let epoch = Math.floor(step / loader.length); epoch < epochs; epoch++) {
  if (step % loader.length === 0) sampler.setEpoch(epoch); // (a resumed sampler has its epoch back)
  for (const [x, y] of loader) {
    if (attempt === 0 && rank === killRank && step === killStep) process.kill(process.pid, 'SIGKILL');
    out({ step });
    opt.zeroGrad();
    const o = ddp.call(x);
    await sync.sampledBackward(o, lik);
    torch.tidy(() => lik.loss(o, y).backward());
    o.dispose();
    await ddp.synchronize();
    await sync.step();
    step++;
    if (step % every === 0) await dist.saveCheckpoint(ckpt, { model, optimizer: sync, loaders, step });
  }
}
if (rank === 0)
  out({
    weights: model.parameters().map((p) => Array.from(p.reshape([-1]).toArray())),
    stepCount: opt.stepCount,
    steps: step,
  });
await dist.destroyProcessGroup();
