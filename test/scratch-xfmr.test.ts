import { it } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor, optim, models, tidy, SequenceCategorical } from '../lib/index.js';
const lik = new SequenceCategorical();
it('scratch', () => {
  for (const [name, mk] of [
    ['tnt.05', (lm: models.TransformerLM) => new optim.TNT(lm.parameters(), { lr: 0.05, damping: 0.1, inverseEvery: 5, maxFactorDim: 16 })],
    ['tnt.01', (lm: models.TransformerLM) => new optim.TNT(lm.parameters(), { lr: 0.01, damping: 0.1, inverseEvery: 5, maxFactorDim: 16 })],
    ['tnt.003', (lm: models.TransformerLM) => new optim.TNT(lm.parameters(), { lr: 0.003, damping: 0.1, inverseEvery: 5, maxFactorDim: 16 })],
    ['sh.05', (lm: models.TransformerLM) => new optim.Shampoo(lm.parameters(), { lr: 0.05, inverseEvery: 5, maxFactorDim: 16 })],
    ['sh.01', (lm: models.TransformerLM) => new optim.Shampoo(lm.parameters(), { lr: 0.01, inverseEvery: 5, maxFactorDim: 16 })],
    ['kfac.05', (lm: models.TransformerLM) => new optim.KFAC(lm, { lr: 0.05, damping: 0.1, inverseEvery: 5 })],
    ['kfac.01', (lm: models.TransformerLM) => new optim.KFAC(lm, { lr: 0.01, damping: 0.1, inverseEvery: 5 })],
    ['adam', (lm: models.TransformerLM) => new optim.Adam(lm.parameters(), { lr: 0.01 })],
  ] as const) {
    torch.manualSeed(1);
    const lm = models.transformerLM({ vocabSize: 11, contextLength: 6, dModel: 8, nHead: 2, nLayers: 1, dimFeedforward: 16 });
    const opt = mk(lm) as any;
    const [x, y] = tidy(() => {
      const seq = Array.from({ length: 4 * 7 }, (_, i) => (i * 3) % 11);
      const x = torch.tensor(seq, { dtype: 'int64' }).reshape([4, 7]);
      return [x.narrow(1, 0, 6).contiguous(), x.narrow(1, 1, 6).contiguous()];
    });
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) tidy(() => {
      const out = lm.call(x);
      opt.sampledBackward?.(out, lik);
      const l = lik.loss(out, y);
      l.backward();
      losses.push(l.item());
      opt.step();
      opt.zeroGrad();
    });
    console.log(name, losses.filter((_, i) => i % 3 === 0 || i === 29).map((v) => v.toFixed(3)).join(' '));
  }
});
