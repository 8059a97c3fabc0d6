// One rank of a test/distributed.test.ts scenario: `node dist-worker.mjs <scenario> [args]`, with RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (by the test or by `tensornormal run`) and TN_LIB naming the transpiled
// library (test/support/transpile-lib.ts). Prints one JSON line per result: {"rank": r, ...}.
import { pathToFileURL } from 'node:url';

const torch = await import(pathToFileURL(process.env.TN_LIB).href);
const { distributed: dist } = torch;
const [scenario, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify({ rank: Number(process.env.RANK), ...o }) + '\n');
const timeout = Number(process.env.TN_TIMEOUT ?? 20000);

const scenarios = {
  // Every collective for every dtype: rank r contributes v_r[i] = (r + 1) * (i + 1) (+ an offset for max/min).
  async collectives() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank(),
      W = dist.getWorldSize();
    const live0 = torch.liveTensors();
    const bytes0 = dist.bytesCommunicated();
    const res = {};
    const vals = (dtype, f) =>
      torch.tensor(
        [0, 1, 2, 3].map((i) => f(i)),
        { dtype },
      );
    for (const dtype of torch.DTYPES) {
      const small =
        dtype === 'bool'
          ? (i) => (rank + i) % 2
          : dtype === 'uint8' || dtype === 'int8'
            ? (i) => rank + 1 + i
            : (i) => (rank + 1) * (i + 1);
      const r = {};
      for (const op of [
        'sum',
        'max',
        'min',
        'product',
        ...(['float32', 'float64', 'float16', 'bfloat16'].includes(dtype) ? ['avg'] : []),
      ]) {
        const t = vals(dtype, (i) =>
          op === 'max' || op === 'min' ? (dtype === 'bool' ? small(i) : (rank * 7 + i * 3) % 5) : small(i),
        );
        await dist.allReduce(t, op);
        r[op] = Array.from(t.toArray(), Number);
        t.dispose();
      }
      const b = vals(dtype, (i) => (dtype === 'bool' ? (rank === 1 ? 1 : 0) : rank * 10 + i));
      await dist.broadcast(b, 1);
      r.broadcast = Array.from(b.toArray(), Number);
      b.dispose();
      const g = vals(dtype, (i) => (dtype === 'bool' ? rank % 2 : rank + i));
      const list = Array.from({ length: W }, () => torch.zerosLike(g));
      await dist.allGather(list, g);
      r.allGather = list.map((x) => Array.from(x.toArray(), Number));
      for (const x of [g, ...list]) x.dispose();
      const inputs = Array.from({ length: W }, (_, k) =>
        vals(dtype, (i) => (dtype === 'bool' ? (rank === k ? 1 : 0) : (k + 1) * (i + 1) + rank)),
      );
      const o = torch.zeros([4], { dtype });
      await dist.reduceScatter(o, inputs, 'sum');
      r.reduceScatter = Array.from(o.toArray(), Number);
      for (const x of [o, ...inputs]) x.dispose();
      res[dtype] = r;
    }
    // a big tensor (several MB): chunked transfer, then the event loop stays free while it runs
    const big = torch.full([1 << 20], rank + 1, { dtype: 'float64' });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const p = dist.allReduce(big, 'sum');
    await p;
    clearInterval(timer);
    res.big = torch.tidy(() => ({ min: big.min().item(), max: big.max().item() }));
    big.dispose();
    await dist.barrier();
    res.bytes = dist.bytesCommunicated() - bytes0;
    res.leaked = torch.liveTensors() - live0;
    out({ res, W, ticks });
    await dist.destroyProcessGroup();
  },

  // The c10d-shaped collectives: reduceScatterTensor / reduceScatter (every op), allGatherIntoTensor, reduce,
  // subgroups (newGroup) and a barrier with a timeout. Rank r contributes to block k, element i: (r + 1) * (k + 1) + i.
  async collectives2() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank(),
      W = dist.getWorldSize();
    const live0 = torch.liveTensors();
    const res = {};
    const n = 3;
    const v = (r, k, i) => (r + 1) * (k + 1) + i;
    for (const dtype of ['float64', 'float32', 'int64', 'int16']) {
      const r = {};
      for (const op of ['sum', 'max', 'min', 'product', ...(dtype.startsWith('float') ? ['avg'] : [])]) {
        const input = torch.tensor(
          Array.from({ length: W * n }, (_, j) => v(rank, Math.floor(j / n), j % n)),
          { dtype },
        );
        const o = torch.zeros([n], { dtype });
        const b0 = dist.bytesCommunicated();
        await dist.reduceScatterTensor(o, input, op);
        r[op] = Array.from(o.toArray(), Number);
        if (dtype === 'float64' && op === 'sum') res.rsBytes = dist.bytesCommunicated() - b0;
        input.dispose();
        o.dispose();
      }
      const list = Array.from({ length: W }, (_, k) =>
        torch.tensor(
          Array.from({ length: n }, (_, i) => v(rank, k, i)),
          { dtype },
        ),
      );
      const o = torch.zeros([n], { dtype });
      await dist.reduceScatter(o, list, 'sum');
      r.list = Array.from(o.toArray(), Number);
      for (const x of [o, ...list]) x.dispose();
      const g = torch.tidy(() => torch.tensor([rank * 10, rank * 10 + 1], { dtype }).reshape([1, 2]));
      const all = torch.full([W, 2], -1, { dtype });
      await dist.allGatherIntoTensor(all, g);
      r.gather = torch.tidy(() => Array.from(all.reshape([-1]).toArray(), Number));
      g.dispose();
      all.dispose();
      const t = torch.tensor([rank + 1, 2 * rank + 1], { dtype });
      await dist.reduce(t, W - 1, 'sum');
      if (rank === W - 1) r.reduce = Array.from(t.toArray(), Number);
      t.dispose();
      res[dtype] = r;
    }
    // subgroups: {0, W-1} and {1}; every rank calls newGroup for both, in the same order
    const ga = await dist.newGroup([W - 1, 0]);
    const gb = await dist.newGroup([1]);
    res.member = [ga === null ? null : { rank: ga.rank, size: ga.size }, gb === null ? null : { rank: gb.rank }];
    if (ga) {
      const t = torch.tensor([rank + 1], { dtype: 'float64' });
      await dist.allReduce(t, 'sum', ga);
      res.subSum = t.item();
      const b = torch.tensor([rank * 100], { dtype: 'float64' });
      await dist.broadcast(b, W - 1, ga); // src is a global rank
      res.subBroadcast = b.item();
      const all = torch.zeros([2], { dtype: 'float64' });
      const mine = torch.tensor([rank], { dtype: 'float64' });
      await dist.allGatherIntoTensor(all, mine, ga);
      res.subGather = Array.from(all.toArray());
      await dist.barrier(ga);
      for (const x of [t, b, all, mine]) x.dispose();
    }
    // default-group collectives still line up after the subgroup's
    const t = torch.tensor([1], { dtype: 'float64' });
    await dist.allReduce(t, 'sum');
    res.worldSum = t.item();
    t.dispose();
    // a barrier with a timeout that rank 0 does not reach in time: rejects (the others wait 600 ms for it)
    const t0 = Date.now();
    if (rank === 0) await new Promise((r) => setTimeout(r, 2500));
    try {
      await dist.barrier({ timeout: 600 });
      res.barrier = 'ok';
    } catch (e) {
      res.barrier = { code: e.code, message: e.message, ms: Date.now() - t0 };
    }
    if (ga) await dist.destroyProcessGroup(ga);
    if (gb) await dist.destroyProcessGroup(gb);
    const one = torch.ones([1]);
    res.destroyed = ga
      ? await dist.allReduce(one, 'sum', ga).then(
          () => 'ok',
          (e) => e.code,
        )
      : null;
    one.dispose();
    res.leaked = torch.liveTensors() - live0;
    out({ res, W });
    process.exit(0);
  },

  // Rank KILL_RANK SIGKILLs itself in the middle of a run of all-reduces; the others report what they got.
  async kill() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank();
    const killRank = Number(args[0] ?? 1);
    const t = torch.ones([1 << 16], { dtype: 'float32' });
    const t0 = Date.now();
    try {
      for (let step = 0; step < 1000; step++) {
        if (rank === killRank && step === 5) process.kill(process.pid, 'SIGKILL');
        await dist.allReduce(t, 'avg');
      }
      out({ error: null });
    } catch (e) {
      out({
        error: { name: e.name, code: e.code, message: e.message, isTorchError: e instanceof torch.TorchError },
        ms: Date.now() - t0,
      });
    }
    // the group is broken: later collectives fail too, and leaving the process is clean
    try {
      await dist.barrier();
      out({ after: 'ok' });
    } catch (e) {
      out({ after: e.code });
    }
    process.exitCode = 0;
  },

  // DDP training where rank 1 SIGKILLs itself in the middle of step 3's backward (from a gradient hook).
  async ddpkill() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank();
    const model = new torch.nn.Sequential(
      new torch.nn.Linear(64, 64),
      new torch.nn.Tanh(),
      new torch.nn.Linear(64, 64),
    );
    const ddp = await torch.nn.parallel.DistributedDataParallel.create(model, { bucketCapMB: 0.01 });
    const opt = new torch.optim.SGD(ddp.parameters(), { lr: 0.01 });
    const t0 = Date.now();
    try {
      for (let step = 0; step < 100; step++) {
        opt.zeroGrad();
        torch.tidy(() => {
          const x = torch.ones([8, 64]);
          const out = ddp.call(x);
          if (rank === 1 && step === 3) out.registerHook(() => process.kill(process.pid, 'SIGKILL'));
          out.pow(2).mean().backward();
        });
        await ddp.synchronize();
        opt.step();
      }
      out({ error: null });
    } catch (e) {
      out({
        error: { code: e.code, message: e.message, isTorchError: e instanceof torch.TorchError },
        ms: Date.now() - t0,
      });
    }
  },

  // Rank SILENT_RANK stops calling collectives (alive, sockets open): the others time out.
  async silent() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank();
    const t = torch.ones([4]);
    if (rank === Number(args[0] ?? 1)) {
      await new Promise((r) => setTimeout(r, timeout + 5000));
      out({ silent: true });
      process.exit(0);
    }
    const t0 = Date.now();
    try {
      await dist.allReduce(t, 'sum');
      out({ error: null });
    } catch (e) {
      out({ error: { code: e.code, message: e.message }, ms: Date.now() - t0 });
    }
    process.exit(0);
  },

  // `train <optimizer> <mode> [steps] [ckpt]`: a float64 MLP trained on a global batch of B = 8 examples per step.
  // mode 'single': one process, the whole batch, the optimizer's own API (the reference);
  // 'ddp' / 'sharded' / 'nosync': DDP over the group, each rank its B / W rows ('sharded': inverses sharded;
  // 'nosync': two micro-batches per step, the first under noSync). Every number (weights, data, the likelihood's
  // "samples") is a fixed function of indices, so the runs differ only by how the work is split.
  // With ckpt: 'save' writes a checkpoint (rank 0) after step 3; 'resume' restores it and runs the remaining steps.
  async train() {
    const [optName, mode, stepsArg, ckptMode, ckptPath] = args;
    const steps = Number(stepsArg ?? 5);
    const B = 8,
      D = 6,
      H = 5,
      K = 3;
    const single = mode === 'single';
    if (!single) await dist.initProcessGroup({ timeout });
    const W = single ? 1 : dist.getWorldSize(),
      rank = single ? 0 : dist.getRank();
    const f = (a, b, c) => Math.sin(a * 12.9898 + b * 78.233 + c * 37.719) * 0.5;
    const mat = (rows, cols, seed, scale = 1) =>
      torch.tensor(
        Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => scale * f(i + seed, j, seed))),
        { dtype: 'float64' },
      );
    const model = new torch.nn.Sequential(
      new torch.nn.Linear(D, H, { dtype: 'float64' }),
      new torch.nn.Tanh(),
      new torch.nn.Linear(H, K, { dtype: 'float64' }),
    );
    torch.noGrad(() => {
      // rank 0's initial weights differ from the others': DDP's broadcast must make them equal
      const off = single ? 0 : rank * 0.3;
      model.parameters().forEach((p, i) => {
        const v = tensorLike(p.shape, 100 + i, 0.4);
        p.copy_(v.add(off));
        v.dispose();
      });
    });
    function tensorLike(shape, seed, scale) {
      return shape.length === 2
        ? mat(shape[0], shape[1], seed, scale)
        : torch.tensor(
            Array.from({ length: shape[0] }, (_, j) => scale * f(j, seed, 7)),
            { dtype: 'float64' },
          );
    }
    const ddp = single ? null : await torch.nn.parallel.DistributedDataParallel.create(model, { bucketCapMB: 0.0002 });
    const net = ddp ?? model;
    const opts = { lr: 0.1, statsEvery: 1, inverseEvery: 2, factorDtype: 'float64', damping: 0.1 };
    const opt =
      optName === 'sgd'
        ? new torch.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 })
        : optName === 'adam'
          ? new torch.optim.Adam(model.parameters(), { lr: 0.01 })
          : optName === 'tnt'
            ? new torch.optim.TNT(model.parameters(), opts)
            : optName === 'kfac'
              ? new torch.optim.KFAC(model, opts)
              : new torch.optim.Shampoo(model.parameters(), {
                  lr: 0.1,
                  statsEvery: 1,
                  inverseEvery: 2,
                  factorDtype: 'float64',
                });
    const curv = ['tnt', 'kfac', 'shampoo'].includes(optName);
    const sync =
      !single && curv
        ? new dist.CurvatureSync(
            opt,
            mode === 'all'
              ? { shard: 'all' }
              : { inverses: mode === 'sharded' && optName !== 'shampoo' ? 'sharded' : 'replicated' },
          )
        : null;
    let start = 0;
    if (ckptMode === 'resume') {
      const meta = torch.restore(ckptPath, { model, optimizer: opt });
      start = meta.step;
      if (ddp) await ddp.ready;
    }
    const rows = () => Array.from({ length: B / W }, (_, k) => rank * (B / W) + k);
    const mse = (out, y) => out.sub(y).pow(2).sum(1).mean().mul(0.5);
    for (let s = start; s < steps; s++) {
      const idx = rows();
      const xs = torch.tensor(
        idx.map((i) => Array.from({ length: D }, (_, j) => f(i, j, s))),
        { dtype: 'float64' },
      );
      const ys = torch.tensor(
        idx.map((i) => Array.from({ length: K }, (_, j) => f(i, j + 50, s))),
        { dtype: 'float64' },
      );
      const noise = torch.tensor(
        idx.map((i) => Array.from({ length: K }, (_, j) => f(i, j + 90, s))),
        { dtype: 'float64' },
      );
      // a Gaussian likelihood whose "sample" for example i is fixed by i (the same whichever rank holds it)
      const lik = { sample: (out) => out.detach().add(noise), loss: mse };
      opt.zeroGrad();
      if (mode === 'nosync') {
        const h = B / W / 2;
        await ddp.noSync(async () => {
          torch.tidy(() =>
            mse(ddp.call(xs.narrow(0, 0, h)), ys.narrow(0, 0, h))
              .mul(0.5)
              .backward(),
          );
        });
        torch.tidy(() =>
          mse(ddp.call(xs.narrow(0, h, h)), ys.narrow(0, h, h))
            .mul(0.5)
            .backward(),
        );
        await ddp.synchronize();
        opt.step();
      } else {
        const out = net.call(xs);
        if (optName === 'tnt' || optName === 'kfac') {
          if (sync) await sync.sampledBackward(out, lik);
          else opt.sampledBackward(out, lik);
        }
        torch.tidy(() => mse(out, ys).backward());
        out.dispose();
        if (ddp) await ddp.synchronize();
        if (sync) await sync.step();
        else opt.step();
      }
      for (const t of [xs, ys, noise]) t.dispose();
      if (ckptMode === 'save' && s === 2) {
        if (sync) await sync.gatherState(); // shard 'all': the owners' state onto every rank, so rank 0 has it whole
        if (rank === 0) torch.save(ckptPath, { model, optimizer: opt, step: s + 1 });
        if (!single) await dist.barrier();
      }
    }
    const weights = model.parameters().map((p) => Array.from(p.reshape([-1]).toArray()));
    // which parameters have curvature state here (shard 'all': only this rank's own)
    const owned =
      optName === 'tnt' || optName === 'shampoo'
        ? model.parameters().map((p, i) => (torch.tidy(() => opt.curvatureState(p)) ? i : -1))
        : optName === 'kfac' // KFAC: the layers whose statistics are here (zero elsewhere)
          ? opt.layers.map((l, i) => (torch.tidy(() => opt.curvatureState(l.module).A.abs().sum().item()) > 0 ? i : -1))
          : null;
    out({ weights, bytes: sync ? sync.bytes : 0, stats: sync ? sync.statisticsBytes() : null, owned });
    if (!single) await dist.destroyProcessGroup();
  },

  // fit() over a DataLoader: `fit single` (one process, batches of 8) or `fit ddp` (DDP + DistributedSampler,
  // batches of 8 / W): the same global batches, so the same weights after 2 epochs.
  async fit() {
    const single = args[0] === 'single';
    if (!single) await dist.initProcessGroup({ timeout });
    const W = single ? 1 : dist.getWorldSize();
    const f = (a, b) => Math.sin(a * 12.9898 + b * 78.233) * 0.5;
    const x = torch.tensor(
      Array.from({ length: 32 }, (_, i) => Array.from({ length: 4 }, (_, j) => f(i, j))),
      { dtype: 'float64' },
    );
    const y = torch.tensor(
      Array.from({ length: 32 }, (_, i) => Array.from({ length: 2 }, (_, j) => f(i, j + 9))),
      { dtype: 'float64' },
    );
    const ds = new torch.data.TensorDataset(x, y);
    const model = new torch.nn.Sequential(
      new torch.nn.Linear(4, 3, { dtype: 'float64' }),
      new torch.nn.Tanh(),
      new torch.nn.Linear(3, 2, { dtype: 'float64' }),
    );
    torch.noGrad(() =>
      model.parameters().forEach((p, i) =>
        p.copy_(
          torch.tidy(() =>
            torch
              .ones(p.shape, { dtype: 'float64' })
              .mul(0.1 * (i + 1))
              .add(torch.arange(p.numel(), { dtype: 'float64' }).reshape(p.shape).mul(0.05)),
          ),
        ),
      ),
    );
    const sampler = single ? undefined : new torch.data.DistributedSampler(ds, { shuffle: false });
    const loader = new torch.data.DataLoader(ds, { batchSize: 8 / W, sampler });
    const net = single ? model : await torch.nn.parallel.DistributedDataParallel.create(model);
    const mse = (o, t) => torch.tidy(() => o.sub(t).pow(2).mean());
    if (args[1] === 'tnt') {
      // fit() with TNT through distributed.CurvatureSync: a Gaussian likelihood whose "samples" are a fixed function
      // of each example's output, so that a rank's share of the batch draws what one process draws for it
      const lik = {
        loss: (o, t) =>
          torch.tidy(() =>
            o
              .sub(t)
              .pow(2)
              .sum()
              .mul(0.5 / o.shape[0]),
          ),
        sample: (o) => torch.tidy(() => o.detach().add(o.detach().mul(37).sin().mul(0.3))),
      };
      const tnt = new torch.optim.TNT(model.parameters(), { lr: 0.01, damping: 0.1, statsEvery: 1, inverseEvery: 2 });
      const opt = single ? tnt : new dist.CurvatureSync(tnt);
      await torch.fit(net, { train: loader, epochs: 2, optimizer: opt, likelihood: lik, progress: 'none' });
      tnt.dispose();
    } else {
      const opt = new torch.optim.SGD(model.parameters(), { lr: 0.2, momentum: 0.5 });
      await torch.fit(net, { train: loader, epochs: 2, optimizer: opt, loss: mse, progress: 'none' });
    }
    out({ weights: model.parameters().map((p) => Array.from(p.reshape([-1]).toArray())) });
    if (!single) await dist.destroyProcessGroup();
  },

  // The Node side of test/support/dist_python_rank.py's `collectives`: the same calls in the same order.
  async interop() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank(),
      W = dist.getWorldSize();
    const a = torch.tensor([rank + 1, 10 * (rank + 1)], { dtype: 'float64' });
    await dist.allReduce(a);
    const b = torch.tensor([rank * 3 - 1, 7 - rank], { dtype: 'int64' });
    await dist.allReduce(b, 'max');
    const c = torch.tensor([0.5 + rank, -rank], { dtype: 'float32' });
    await dist.broadcast(c, 1);
    const g = Array.from({ length: W }, () => torch.zeros([3], { dtype: 'int32' }));
    await dist.allGather(g, torch.tensor([rank, rank * 2, 5], { dtype: 'int32' }));
    await dist.barrier();
    out({ allReduce: a.toArray(), max: b.toArray(), broadcast: c.toArray(), allGather: g.map((x) => x.toArray()) });
    await dist.destroyProcessGroup();
  },

  // For the launcher: prints, and fails with status FAIL_STATUS on rank FAIL_RANK.
  async launcher() {
    const env = [
      'RANK',
      'LOCAL_RANK',
      'WORLD_SIZE',
      'LOCAL_WORLD_SIZE',
      'MASTER_ADDR',
      'MASTER_PORT',
      'OMP_NUM_THREADS',
    ];
    out({ env: Object.fromEntries(env.map((k) => [k, process.env[k]])) });
    process.stderr.write(`stderr line from ${process.env.RANK}\n`);
    if (args[0] !== undefined) {
      await dist.initProcessGroup({ timeout });
      const t = torch.ones([2]);
      await dist.allReduce(t);
      out({ sum: Array.from(t.toArray()) });
      if (args[0] === 'none') return await dist.destroyProcessGroup();
      if (Number(process.env.RANK) === Number(args[0])) process.exit(Number(args[1]));
      // the others wait in a collective until the launcher stops them
      await dist.allReduce(t);
      await new Promise((r) => setTimeout(r, 60000));
    }
  },
};

await scenarios[scenario]();
