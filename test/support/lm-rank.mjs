// One rank of test/transformer-train.test.ts's data-parallel cases: `node lm-rank.mjs <optimizer> <mode> [steps]`,
// with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and TN_LIB (the transpiled library) set by the test.
//
// A tiny float64 models.transformerLM (vocabulary 7, width 8, 2 heads, 2 layers, context 6, tied head) trained with
// the token cross-entropy (SequenceCategorical) on a global batch of B = 4 sequences per step.
// mode 'single': one process, the whole batch, the optimizer's own API (the reference);
// 'ddp': DistributedDataParallel over the group, each rank its B / W sequences, with distributed.CurvatureSync
// (its default: shard 'all' for TNT and Shampoo, inverses sharded for KFAC) for the second-order optimizers.
// Every token, target and likelihood "sample" is a fixed function of (sequence index, position, step), so the runs
// differ only by how the work is split. Prints one JSON line: {"rank", "weights", "initial" (after DDP's broadcast),
// "params", "ddpParams", "gradBytes", "owned"}.
import { pathToFileURL } from 'node:url';

const torch = await import(pathToFileURL(process.env.TN_LIB).href);
const { distributed: dist } = torch;
const [optName, mode, stepsArg] = process.argv.slice(2);
const steps = Number(stepsArg ?? 4);
const B = 4,
  T = 6,
  V = 7;
const single = mode === 'single';
if (!single) await dist.initProcessGroup({ timeout: Number(process.env.TN_TIMEOUT ?? 20000) });
const W = single ? 1 : dist.getWorldSize(),
  rank = single ? 0 : dist.getRank();

torch.manualSeed(0);
const model = torch.models.transformerLM({
  vocabSize: V,
  contextLength: T,
  dModel: 8,
  nHead: 2,
  nLayers: 2,
  dimFeedforward: 16,
  dtype: 'float64',
});
// the other ranks start elsewhere: DDP's broadcast of rank 0's parameters must make them equal
if (rank > 0) torch.noGrad(() => model.parameters().forEach((p) => void p.add_(0.3)));
const ddp = single ? null : await torch.nn.parallel.DistributedDataParallel.create(model, { bucketCapMB: 0.0002 });
const net = ddp ?? model;
const curvature = { statsEvery: 1, inverseEvery: 2, factorDtype: 'float64' };
const opt =
  optName === 'adam'
    ? new torch.optim.Adam(model.parameters(), { lr: 0.01 })
    : optName === 'tnt'
      ? new torch.optim.TNT(model.parameters(), { lr: 0.05, damping: 0.1, ...curvature })
      : optName === 'kfac'
        ? new torch.optim.KFAC(model, { lr: 0.05, damping: 0.1, ...curvature })
        : new torch.optim.Shampoo(model.parameters(), { lr: 0.05, ...curvature });
const sync = !single && optName !== 'adam' ? new dist.CurvatureSync(opt) : null;

const flat = () => model.parameters().map((p) => Array.from(p.reshape([-1]).toArray()));
const initial = flat();
const f = (a, b, c) => Math.sin(a * 12.9898 + b * 78.233 + c * 37.719) * 43758.5453;
const token = (a, b, c) => Math.floor((f(a, b, c) - Math.floor(f(a, b, c))) * V);
const tokens = (idx, s, salt) =>
  torch.tensor(
    idx.map((i) => Array.from({ length: T }, (_, t) => token(i, t + salt, s))),
    { dtype: 'int64' },
  );
const seq = new torch.SequenceCategorical();
let gradBytes = 0;
for (let s = 0; s < steps; s++) {
  const idx = Array.from({ length: B / W }, (_, k) => rank * (B / W) + k);
  const x = tokens(idx, s, 0),
    y = tokens(idx, s, 50),
    drawn = tokens(idx, s, 90);
  // the likelihood's "sample" for sequence i is fixed by i (the same whichever rank holds it)
  const lik = { sample: () => drawn.clone(), loss: (out, target) => seq.loss(out, target) };
  opt.zeroGrad();
  const out = net.call(x);
  if (optName === 'tnt' || optName === 'kfac') {
    if (sync) await sync.sampledBackward(out, lik);
    else opt.sampledBackward(out, lik);
  }
  // what the gradient all-reduces of the last step communicate (DDP launches a bucket's during the backward)
  const b0 = single ? 0 : dist.bytesCommunicated();
  torch.tidy(() => seq.loss(out, y).backward());
  out.dispose();
  if (ddp) await ddp.synchronize();
  if (!single) gradBytes = dist.bytesCommunicated() - b0;
  if (sync) await sync.step();
  else opt.step();
  for (const t of [x, y, drawn]) t.dispose();
}
const weights = flat();
const owned =
  optName === 'tnt' || optName === 'shampoo'
    ? model.parameters().map((p, i) => (torch.tidy(() => opt.curvatureState(p)) ? i : -1))
    : null;
process.stdout.write(
  JSON.stringify({
    rank,
    weights,
    initial,
    params: model.parameters().map((p) => p.numel()),
    ddpParams: ddp ? ddp.parameters().length : null,
    gradBytes,
    owned,
  }) + '\n',
);
if (!single) await dist.destroyProcessGroup();
