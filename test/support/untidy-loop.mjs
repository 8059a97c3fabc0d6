// Child process of test/memory.test.ts: N steps (1000 there) of a loop that never disposes or tidies what it keeps, run
// without --expose-gc so that only the V8 heuristics fed by the reported external memory can free the tensors.
// Each step trains an MLP (forward, loss, backward, Adam) and, as a service's predict() written with tidy() but
// without noGrad() would, computes an output whose autograd graph holds the hidden activations after tidy()
// disposed their tensors. Prints one JSON line: the RSS at step 100 and its maximum after.
const t = await import(process.argv[2]);
const steps = Number(process.argv[3] ?? 2000);
t.manualSeed(0);
const F = t.nn.functional;
const model = new t.nn.Sequential(
  new t.nn.Linear(784, 512),
  new t.nn.ReLU(),
  new t.nn.Linear(512, 512),
  new t.nn.ReLU(),
  new t.nn.Linear(512, 10),
);
const opt = new t.optim.Adam(model.parameters(), { lr: 1e-4 });
// training on 64 examples, serving 256: the retained graphs (the signal) are large next to the work per step
const x = t.rand([64, 784]);
const y = t.randint(0, 10, [64]);
const xs = t.rand([256, 784]);
const predict = (input) => t.tidy(() => model.call(input));
let rss100 = 0,
  maxRss = 0;
for (let s = 1; s <= steps; s++) {
  const loss = F.crossEntropy(model.call(x), y);
  loss.backward();
  opt.step();
  opt.zeroGrad();
  predict(xs).argmax(1);
  const rss = process.memoryUsage().rss;
  if (s === 100) rss100 = rss;
  if (s > 100) maxRss = Math.max(maxRss, rss);
  if (s % 50 === 0) await new Promise((r) => setImmediate(r));
}
process.stdout.write(JSON.stringify({ rss100, maxRss, retained: t.memory().retainedBytes }) + '\n');
