// The paper's Figure 1: cosine similarity between each method's direction and a block-Fisher direction on
// 16x16 MNIST digits with an MLP 256-20-20-20-20-20-10, along the block-Fisher method's trajectory.
//
//   npm run example:fisher-similarity -- --iterations 1000 --out results/fisher-similarity
//
// Writes <out>/similarity.json and <out>/similarity.svg (the middle four layers, as in the paper).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as torch from 'tensornormal';
import { runFisherSimilarity, lineChart } from 'tensornormal/experiments';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '1000' },
    gamma: { type: 'string', default: '3' },
    lr: { type: 'string', default: '0.1' },
    batch: { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    'fisher-estimator': { type: 'string', default: 'per-example' },
    'tnt-statistics': { type: 'string', default: 'batch-mean' },
    out: { type: 'string', default: 'results/fisher-similarity' },
  },
});

const digits = torch.data.mnistDigits();
const x = torch.tidy(() => torch.data.transforms.resize(16)(digits.images).reshape([-1, 256]).keep());
const y = digits.labels;
console.log(`MNIST digits: ${x.shape[0]} images down-scaled to 16x16`);

const result = runFisherSimilarity({
  data: { x, y },
  iterations: Number(values.iterations),
  gamma: Number(values.gamma),
  lr: Number(values.lr),
  batchSize: Number(values.batch),
  seed: Number(values.seed),
  fisherEstimator: values['fisher-estimator'] as 'per-example' | 'batch-mean',
  tntStatistics: values['tnt-statistics'] as 'batch-mean' | 'per-example',
  every: 10,
  onProgress: (it, loss) => {
    if (it % 100 === 0) console.log(JSON.stringify({ iteration: it, loss: +loss.toFixed(4) }));
  },
});

mkdirSync(values.out!, { recursive: true });
writeFileSync(join(values.out!, 'similarity.json'), JSON.stringify(result, null, 1));
const panels = [1, 2, 3, 4].map((l) => ({
  title: `l=${l}`,
  xLabel: 'iteration',
  yLabel: 'cosine similarity',
  series: Object.entries(result.cosine).map(([name, layers]) => ({ name, x: result.iterations, y: layers[l]! })),
}));
writeFileSync(join(values.out!, 'similarity.svg'), lineChart(panels));
const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
console.log('mean cosine similarity to the block-Fisher direction, layers l=1..4 (the middle four):');
for (const [name, layers] of Object.entries(result.cosine))
  console.log(`  ${name.padEnd(8)} ${[1, 2, 3, 4].map((l) => mean(layers[l]!).toFixed(3)).join('  ')}`);
console.log(`${result.seconds.toFixed(0)} s; wrote ${values.out}/similarity.json and similarity.svg`);
torch.dispose([x, digits]);
