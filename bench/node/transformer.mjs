/**
 * The Node side of bench/transformer.mjs: models.transformerLM (the same architecture as bench/python/
 * transformer.py's CharLM), one AdamW training step (unless c.train is false), and greedy generation of one
 * sequence (TransformerLM.generate) without a key-value cache ({ cache: false }: every token reruns the window) and
 * with one (the default). Prints one JSON line: {"stepMs": [...], "stepCpuMs": [...], "genTokensPerS": x,
 * "genTokensPerCpuS": y, "cacheTokensPerS": x, "cacheTokensPerCpuS": y} (wall and process time).
 */
import * as torch from '../../dist/index.js';

const c = JSON.parse(process.argv[2]);
torch.setNumThreads(c.threads);
torch.manualSeed(0);
const m = torch.models.transformerLM({
  vocabSize: c.vocab,
  contextLength: c.context,
  dModel: c.width,
  nLayers: c.layers,
  nHead: c.heads,
});
const opt = new torch.optim.AdamW(m.parameters(), { lr: 1e-3, weightDecay: 0.01 });
const x = torch.randint(0, c.vocab, [c.batch, c.context]);
const y = torch.randint(0, c.vocab, [c.batch, c.context]);
const F = torch.nn.functional;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const times = [],
  cpu = [];
for (let i = 0; c.train !== false && i < c.warmup + c.steps; i++) {
  const t0 = performance.now(),
    c0 = cpuMs();
  torch.tidy(() => {
    const out = m.call(x);
    const loss = F.crossEntropy(out.reshape([-1, c.vocab]), y.reshape([-1]));
    opt.zeroGrad();
    loss.backward();
    opt.step();
  });
  if (i >= c.warmup) {
    times.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
  }
}
const prompt = torch.randint(0, c.vocab, [1, c.genPrompt]);
/** Tokens per wall and per process second of generating c.genTokens tokens after the prompt. */
function gen(options) {
  torch.tidy(() => m.generate(prompt, 1, options)); // warm-up
  const t0 = performance.now(),
    c0 = cpuMs();
  const out = torch.tidy(() => m.generate(prompt, c.genTokens, options).toArray());
  return { perS: c.genTokens / ((performance.now() - t0) / 1000), perCpuS: c.genTokens / ((cpuMs() - c0) / 1000), out };
}
const plain = gen({ cache: false });
const cached = gen({ cache: true });
if (JSON.stringify(plain.out) !== JSON.stringify(cached.out)) throw new Error('generate: the cache changed the tokens');
console.log(
  JSON.stringify({
    stepMs: times,
    stepCpuMs: cpu,
    genTokensPerS: plain.perS,
    genTokensPerCpuS: plain.perCpuS,
    cacheTokensPerS: cached.perS,
    cacheTokensPerCpuS: cached.perCpuS,
  }),
);
