#!/usr/bin/env node
/**
 * A transformer language model side by side with PyTorch on the same libtorch (`node bench/transformer.mjs`, after
 * `npm run build:ts`): a training step (forward, token cross-entropy, backward, AdamW) of models.transformerLM and
 * of the same architecture in torch.nn (bench/python/transformer.py's CharLM: pre-norm causal encoder layers,
 * learned positions, tied head), and greedy generation of one sequence from a 16-token prompt to the full context,
 * in tokens per second, without a key-value cache (each new token reruns the window; PyTorch's eval-mode encoder
 * takes its fused fast path) and with one (TransformerLM.generate's default; the Python side writes the cache out
 * by hand over the layers' own weights, bench/python/transformer.py's generate_cached, since torch.nn's encoder has
 * none). Both sides check that the cache leaves the tokens unchanged.
 *
 * Each rep runs a fresh Node process (bench/node/transformer.mjs) and a fresh Python process, alternating which goes
 * first; a side's number is the median of its reps' medians; the ratio's spread is the min-max over reps of the
 * per-rep ratios. Same intra-op thread count on both sides (default 1: the machine is shared).
 *
 *   node bench/transformer.mjs                     both sizes, 5 reps
 *   node bench/transformer.mjs --reps 3 --threads 2 --sizes small
 *   node bench/transformer.mjs --cases gen          generation only (no training steps)
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { readCpuinfo, runtimeEnvironment } from '../dist/runtime-env.js';

const here = dirname(fileURLToPath(import.meta.url));
Object.assign(process.env, runtimeEnvironment(process.env, readCpuinfo()));

const SIZES = {
  small: { vocab: 96, context: 64, width: 64, layers: 2, heads: 4, batch: 32 },
  charlm: { vocab: 96, context: 128, width: 128, layers: 4, heads: 4, batch: 32 },
};
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const reps = Number(opt('reps', 5));
const threads = Number(opt('threads', 1));
const sizes = opt('sizes', 'small,charlm').split(',');
const cases = opt('cases', 'train,gen').split(',');
const train = cases.includes('train');
const python = process.env.TENSORNORMAL_BENCH_PYTHON ?? '/usr/bin/python3';

const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const rows = [],
  genRows = [];
for (const name of sizes) {
  const c = {
    ...SIZES[name],
    steps: 10,
    warmup: 2,
    genPrompt: 16,
    genTokens: SIZES[name].context - 16,
    threads,
    train,
  };
  const node = [],
    py = [];
  for (let r = 0; r < reps; r++) {
    const sides = [
      () => node.push(run(process.execPath, [join(here, 'node', 'transformer.mjs'), JSON.stringify(c)])),
      () => py.push(run(python, [join(here, 'python', 'transformer.py'), JSON.stringify(c)])),
    ];
    if (r % 2) sides.reverse();
    sides.forEach((f) => f());
    process.stderr.write(
      `${name} rep ${r + 1}/${reps}: ` +
        (train
          ? `node ${median(node.at(-1).stepCpuMs).toFixed(1)} CPU ms, python ${median(py.at(-1).stepCpuMs).toFixed(1)} CPU ms; `
          : '') +
        `cached tokens/CPU s node ${node.at(-1).cacheTokensPerCpuS.toFixed(0)}, python ${py.at(-1).cacheTokensPerCpuS.toFixed(0)}\n`,
    );
  }
  const cell = (key, per) => {
    const n = node.map((x) => (per ? x[key] : median(x[key]))),
      p = py.map((x) => (per ? x[key] : median(x[key])));
    const r = n.map((v, i) => v / p[i]);
    const digits = per ? 0 : 1;
    return `${median(n).toFixed(digits)} | ${median(p).toFixed(digits)} | ${median(r).toFixed(3)} (${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)})`;
  };
  const model = `${name}: d ${c.width}, ${c.layers} layers, ${c.heads} heads, context ${c.context}`;
  if (train) rows.push(`| ${model}, batch ${c.batch} | ${cell('stepCpuMs', false)} | ${cell('stepMs', false)} |`);
  genRows.push(
    `| ${model}, ${c.genPrompt} + ${c.genTokens} tokens | ${cell('genTokensPerCpuS', true)} | ${cell('cacheTokensPerCpuS', true)} | ` +
      `${cell('genTokensPerS', true)} | ${cell('cacheTokensPerS', true)} |`,
  );
}
console.log(
  `${new Date().toISOString()}, ${threads} thread(s) each side, ${reps} reps, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
if (train) {
  console.log(
    '| model | Node CPU ms/step | PyTorch CPU ms/step | ratio (min-max) | Node wall ms/step | PyTorch wall ms/step | ratio (min-max) |',
  );
  console.log(`|---|${'---|'.repeat(6)}`);
  for (const r of rows) console.log(r);
  console.log();
}
console.log(
  '| generation (batch 1, greedy) | no cache: Node tokens/CPU s | PyTorch | ratio Node/PyTorch (min-max) | ' +
    'KV cache: Node tokens/CPU s | PyTorch | ratio (min-max) | no cache: Node tokens/s | PyTorch | ratio (min-max) | ' +
    'KV cache: Node tokens/s | PyTorch | ratio (min-max) |',
);
console.log(`|---|${'---|'.repeat(12)}`);
for (const r of genRows) console.log(r);
