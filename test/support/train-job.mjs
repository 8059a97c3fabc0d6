// A training job for test/train-worker.test.ts, run by train.inWorker() in a worker thread. The library comes from
// ctx.workerData.lib (the test transpiles lib/ to plain JavaScript: a worker cannot run the TypeScript sources).

/** The model both threads build: 4 -> 8 -> 3, float64, initialised from `seed`. */
export function makeModel(t, seed) {
  t.manualSeed(seed);
  return new t.nn.Sequential(
    new t.nn.Linear(4, 8, { dtype: 'float64' }),
    new t.nn.Tanh(),
    new t.nn.Linear(8, 3, { dtype: 'float64' }),
  );
}

/** 64 inputs and targets of a fixed linear map, as 8 batches of 8. */
function makeData(t) {
  const xs = t.tidy(() => t.linspace(-1, 1, 256, { dtype: 'float64' }).reshape(64, 4).sin());
  const w = t.tensor(
    [
      [1, -2, 0.5],
      [0.3, 1, -1],
      [2, 0.1, 0.2],
      [-0.5, 0.7, 1],
    ],
    { dtype: 'float64' },
  );
  const ys = xs.matmul(w);
  w.dispose();
  const batches = [];
  for (let i = 0; i < 8; i++) batches.push([xs.narrow(0, 8 * i, 8), ys.narrow(0, 8 * i, 8)]);
  return { batches, owned: [xs, ys, ...batches.flat()] };
}

const finalWeights = (model) => model.parameters().map((p) => Array.from(p.toTypedArray()));

export default async function train(ctx) {
  const { lib, mode, seed = 1, epochs = 3 } = ctx.workerData;
  const t = await import(lib);
  if (mode === 'nice') {
    // this thread's nice value: field 19 of /proc/thread-self/stat (after the parenthesised name)
    const { readFileSync } = await import('node:fs');
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    return { nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) };
  }
  if (mode === 'threads') {
    // parallel work on two threads (an OpenMP region, OpenBLAS's pool), then every thread of the process as
    // { tid, nice, policy } (fields 19 and 41 of /proc/self/task/<tid>/stat), and this thread's tid
    const { readFileSync, readdirSync } = await import('node:fs');
    const before = t.getNumThreads();
    t.setNumThreads(2);
    t.tidy(() => {
      const a = t.rand([512, 512]);
      for (let i = 0; i < 4; i++) a.matmul(a).add(1).exp().sum().item();
      t.rand([1 << 22])
        .mul(2)
        .sin()
        .sum()
        .item();
    });
    t.setNumThreads(before);
    const fields = (tid) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    };
    const threads = [];
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const f = fields(tid);
        threads.push({ tid: Number(tid), nice: Number(f[16]), policy: Number(f[38]) });
      } catch {
        // a thread that exited meanwhile
      }
    }
    return { self: Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]), threads };
  }
  if (mode === 'paced') {
    // steps of `stepMs` of synchronous work, each followed by ctx.afterStep(8), for `seconds`
    const { stepMs = 10, seconds = 2.5 } = ctx.workerData;
    const end = performance.now() + seconds * 1000;
    let steps = 0;
    while (performance.now() < end && !ctx.signal.aborted) {
      const until = performance.now() + stepMs;
      while (performance.now() < until);
      steps++;
      await ctx.afterStep(8);
    }
    return { steps };
  }
  if (mode === 'narrow') {
    // `steps` steps of 3 ms, each followed by ctx.afterStep(8); at the start of each, the intra-op threads of this
    // thread and OpenBLAS's count, and a progress report of the step number
    const { steps = 40 } = ctx.workerData;
    const seen = [];
    for (let i = 0; i < steps && !ctx.signal.aborted; i++) {
      seen.push([t.getNumThreads(), t.versions().blasThreads ?? null]);
      ctx.progress({ step: i });
      const until = performance.now() + 3;
      while (performance.now() < until);
      await ctx.afterStep(8);
    }
    return { seen };
  }
  if (mode === 'stubborn') {
    // never looks at ctx.signal: cancel() has to terminate it
    ctx.progress('started');
    for (;;) await new Promise((r) => setTimeout(r, 5));
  }
  if (mode === 'throw') {
    // a shape error deep in a step: reaches the main thread as a TorchError with its code and this stack
    t.tidy(() => t.zeros(2, 3).matmul(t.zeros(2, 3)));
  }
  const model = makeModel(t, seed);
  const { batches, owned } = makeData(t);
  try {
    if (mode === 'fit') {
      const opt = new t.optim.Adam(model.parameters(), { lr: 0.01 });
      const history = await t.fit(model, {
        train: batches,
        epochs,
        optimizer: opt,
        loss: (o, y) => t.nn.functional.mseLoss(o, y),
        progress: 'none',
        signal: ctx.signal,
        callbacks: ctx.callbacks(model, { publishEvery: 4, progressEvery: 2, optimizer: opt }),
      });
      ctx.publish(model, { step: epochs * batches.length, info: 'final' });
      opt.dispose?.();
      return {
        losses: history.map((h) => h.trainLoss),
        weights: finalWeights(model),
        live: t.liveTensors() - owned.length - model.parameters().length,
      };
    }
    if (mode === 'tnt' || mode === 'forever') {
      // TNT's own loop (not fit): sampled backward for the statistics, the real loss, the step; publish every 3 steps
      const opt = new t.optim.TNT(model.parameters(), { lr: 0.01, damping: 1, inverseEvery: 4 });
      const lik = new t.Gaussian();
      let steps = 0;
      const total = mode === 'tnt' ? epochs * batches.length : Infinity;
      while (steps < total) {
        for (const [x, y] of batches) {
          ctx.signal.throwIfAborted();
          const loss = t.tidy(() => {
            const out = model.call(x);
            opt.sampledBackward(out, lik);
            const l = lik.loss(out, y);
            l.backward();
            return l.item();
          });
          opt.step();
          opt.zeroGrad();
          steps++;
          ctx.progress({ steps, loss });
          if (steps % 3 === 0) ctx.publish(model, { step: steps });
          await new Promise((r) => setImmediate(r));
          if (steps >= total) break;
        }
      }
      ctx.publish(model, { step: steps, info: 'final' });
      opt.dispose?.();
      return { steps, weights: finalWeights(model) };
    }
    throw new RangeError(`unknown mode ${mode}`);
  } finally {
    t.dispose(owned);
  }
}
