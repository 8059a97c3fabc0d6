// A language-model training job for test/transformer-train.test.ts, run by train.inWorker() in a worker thread:
// fit() trains a tiny float64 models.transformerLM with TNT and the sequence likelihood, publishing snapshots. The
// library comes from ctx.workerData.lib (the test transpiles lib/ to plain JavaScript).

/** The model both threads build: vocabulary 7, width 8, 2 heads, 2 layers, context 6, tied head; from `seed`. */
export function makeLM(t, seed) {
  t.manualSeed(seed);
  return t.models.transformerLM({
    vocabSize: 7,
    contextLength: 6,
    dModel: 8,
    nHead: 2,
    nLayers: 2,
    dimFeedforward: 16,
    dtype: 'float64',
  });
}

/** Tokens the logits are compared on: int64 (2, 6). */
export function probe(t) {
  return t.tensor(
    [
      [0, 1, 2, 3, 4, 5],
      [6, 3, 0, 4, 1, 5],
    ],
    { dtype: 'int64' },
  );
}

/** 4 batches of 2 sequences of a periodic text (token t of sequence i is (3 i + 2 t) mod 7), targets shifted by one. */
function makeData(t) {
  const seq = (i, t0) => Array.from({ length: 6 }, (_, k) => (3 * i + 2 * (k + t0)) % 7);
  const batches = [];
  for (let b = 0; b < 4; b++) {
    const rows = [2 * b, 2 * b + 1];
    batches.push([
      t.tensor(
        rows.map((i) => seq(i, 0)),
        { dtype: 'int64' },
      ),
      t.tensor(
        rows.map((i) => seq(i, 1)),
        { dtype: 'int64' },
      ),
    ]);
  }
  return batches;
}

export default async function train(ctx) {
  const { lib, seed = 1, epochs = 3 } = ctx.workerData;
  const t = await import(lib);
  const model = makeLM(t, seed);
  const batches = makeData(t);
  const x = probe(t);
  try {
    const opt = new t.optim.TNT(model.parameters(), { lr: 0.01, damping: 0.1, inverseEvery: 2 });
    const history = await t.fit(model, {
      train: batches,
      epochs,
      optimizer: opt,
      likelihood: new t.SequenceCategorical(),
      progress: 'none',
      signal: ctx.signal,
      callbacks: ctx.callbacks(model, { publishEvery: 2, progressEvery: 1, optimizer: opt }),
    });
    ctx.publish(model, { step: epochs * batches.length, info: 'final' });
    opt.dispose?.();
    const logits = t.noGrad(() => t.tidy(() => Array.from(model.call(x).reshape([-1]).toTypedArray())));
    return {
      losses: history.map((h) => h.trainLoss),
      weights: model.parameters().map((p) => Array.from(p.toTypedArray())),
      logits,
      live: t.liveTensors() - 2 * batches.length - 1 - model.parameters().length,
    };
  } finally {
    t.dispose([batches, x]);
  }
}
