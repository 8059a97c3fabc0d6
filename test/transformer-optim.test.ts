/**
 * Language models with the library's optimizers: SequenceCategorical (hand-computed loss, sampled tokens per
 * position), TNT and Shampoo preconditioning every parameter of a transformer with the factor shapes the rules
 * give (diagonal above maxFactorDim), KFAC on its Linear layers, fit() training the char LM, and jit.trace of the
 * LM reloaded by Python with the same logits.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { Tensor, optim, data, models, tidy, jit, SequenceCategorical, fit, save, restore } from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

const lik = new SequenceCategorical();
const tinyLM = (): models.TransformerLM =>
  models.transformerLM({ vocabSize: 11, contextLength: 6, dModel: 8, nHead: 2, nLayers: 1, dimFeedforward: 16 });

describe('SequenceCategorical', () => {
  it('token-level cross-entropy: mean over B * T positions, sum, none (B, T)', async () => {
    await noLeak(() =>
      tidy(() => {
        // position 0: uniform over 3 -> ln 3; position 1: softmax(ln 2, 0, 0) = (1/2, 1/4, 1/4), target 0 -> ln 2
        const z = torch.tensor(
          [
            [
              [0, 0, 0],
              [Math.log(2), 0, 0],
            ],
          ],
          { dtype: 'float64' },
        );
        const y = torch.tensor([[1, 0]], { dtype: 'int64' });
        expect(lik.loss(z, y).item()).toBeCloseTo(Math.log(6) / 2, 14);
        expect(lik.loss(z, y, { reduction: 'sum' }).item()).toBeCloseTo(Math.log(6), 14);
        const none = lik.loss(z, y, { reduction: 'none' });
        expect(none.shape).toEqual([1, 2]);
        expectClose(none, [[Math.log(3), Math.log(2)]], { atol: 1e-14, rtol: 0 });
        expect(() => lik.loss(z, torch.tensor([1, 0], { dtype: 'int64' }))).toThrow(
          /Expected target of shape \[1, 2\]/,
        );
      }),
    );
  });
  it('samples one token per position with the probabilities softmax(z) of that position', async () => {
    await noLeak(() =>
      tidy(() => {
        torch.manualSeed(21);
        const n = 20000;
        const rows = [
          [2, 0, -1],
          [-1, 0, 1],
        ];
        const z = torch.tensor(rows).reshape([1, 2, 3]).expand([n, 2, 3]).contiguous();
        const s = lik.sample(z);
        expect(s.shape).toEqual([n, 2]);
        expect(s.dtype).toBe('int64');
        const v = s.dataSync() as number[];
        rows.forEach((r, t) => {
          const e = r.map(Math.exp);
          const tot = e.reduce((a, b) => a + b, 0);
          for (let k = 0; k < 3; k++) {
            let c = 0;
            for (let i = 0; i < n; i++) if (v[i * 2 + t] === k) c++;
            const p = e[k]! / tot;
            expect(Math.abs(c / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
          }
        });
      }),
    );
  });
});

/** A fixed batch of a repeating pattern (learnable) and the LM's loss on it. */
function batch(): [Tensor, Tensor] {
  return tidy(() => {
    const seq = Array.from({ length: 4 * 7 }, (_, i) => (i * 3) % 11);
    const x = torch.tensor(seq, { dtype: 'int64' }).reshape([4, 7]);
    return [x.narrow(1, 0, 6).contiguous(), x.narrow(1, 1, 6).contiguous()];
  });
}
function train(
  lm: models.TransformerLM,
  opt: { step(): unknown; zeroGrad(): void; sampledBackward?: (o: Tensor, l: SequenceCategorical) => unknown },
  steps: number,
): number[] {
  const [x, y] = batch();
  const losses: number[] = [];
  for (let i = 0; i < steps; i++)
    tidy(() => {
      const out = lm.call(x);
      opt.sampledBackward?.(out, lik);
      const l = lik.loss(out, y);
      l.backward();
      losses.push(l.item());
      opt.step();
      opt.zeroGrad();
    });
  torch.dispose([x, y]);
  return losses;
}

describe('second-order optimizers on a transformer', () => {
  it('TNT preconditions every parameter (the tied one once); maxFactorDim gives large dims diagonal factors', async () => {
    await noLeak(() => {
      torch.manualSeed(1);
      const lm = tinyLM();
      expect(lm.parameters().length).toBe(16); // 17 tensors, the head's weight is the embedding's
      const opt = new optim.TNT(lm.parameters(), { lr: 0.01, damping: 0.1, inverseEvery: 5, maxFactorDim: 16 });
      const losses = train(lm, opt, 30);
      expect(losses[29]!).toBeLessThan(0.5 * losses[0]!);
      const shapes = tidy(() =>
        Object.fromEntries(
          lm.namedParameters().map(([n, p]) => {
            const c = opt.curvatureState(p)!;
            return [n, c.factors.map((f) => f.shape)];
          }),
        ),
      );
      expect(shapes['tokEmb.weight']).toEqual([
        [11, 11],
        [8, 8],
      ]);
      expect(shapes['posEmb.weight']).toEqual([
        [6, 6],
        [8, 8],
      ]);
      expect(shapes['encoder.layers.0.selfAttn.inProjWeight']).toEqual([[24], [8, 8]]); // 24 > maxFactorDim: diagonal
      expect(shapes['encoder.layers.0.selfAttn.inProjBias']).toEqual([[24]]);
      expect(shapes['encoder.layers.0.selfAttn.outProj.weight']).toEqual([
        [8, 8],
        [8, 8],
      ]);
      expect(shapes['encoder.layers.0.linear1.weight']).toEqual([
        [16, 16],
        [8, 8],
      ]);
      expect(shapes['encoder.layers.0.norm1.weight']).toEqual([[8, 8]]);
      expect(shapes['norm.bias']).toEqual([[8, 8]]);
      opt.dispose();
      lm.dispose();
    });
  });
  it('Shampoo preconditions every parameter and trains the LM', async () => {
    await noLeak(() => {
      torch.manualSeed(2);
      const lm = tinyLM();
      const opt = new optim.Shampoo(lm.parameters(), { lr: 0.01, inverseEvery: 5, maxFactorDim: 16 });
      const losses = train(lm, opt, 30);
      expect(losses[29]!).toBeLessThan(0.5 * losses[0]!);
      tidy(() => {
        expect(opt.curvatureState(lm.tokEmb.weight)!.factors.map((f) => f.shape)).toEqual([
          [11, 11],
          [8, 8],
        ]);
        expect(
          opt
            .curvatureState((lm.encoder.layers.at(0) as torch.nn.TransformerEncoderLayer).selfAttn.inProjWeight)!
            .factors.map((f) => f.shape),
        ).toEqual([[24], [8, 8]]);
      });
      opt.dispose();
      lm.dispose();
    });
  });
  it("KFAC covers the Linear layers (attention's output projection, the feed-forward, the tied head)", async () => {
    await noLeak(() => {
      torch.manualSeed(3);
      const lm = tinyLM();
      const opt = new optim.KFAC(lm, { lr: 0.05, damping: 0.1, inverseEvery: 5 });
      expect(opt.layers.map((l) => l.name)).toEqual([
        'encoder.layers.0.selfAttn.outProj',
        'encoder.layers.0.linear1',
        'encoder.layers.0.linear2',
        'head',
      ]);
      expect(opt.layers[3]!.module.weight).toBe(lm.tokEmb.weight);
      const losses = train(lm, opt, 30);
      expect(losses[29]!).toBeLessThan(0.5 * losses[0]!);
      opt.dispose();
      lm.dispose();
    });
  });
});

describe('the char LM with fit() and TorchScript', () => {
  it('fit() trains it with TNT and the sequence likelihood', async () => {
    await noLeak(async () => {
      torch.manualSeed(4);
      const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
      const tok = data.CharTokenizer.fromText(text);
      const { train: tr, val } = data.textSplit(tok.encode(text), { contextLength: 16, valFraction: 0.2, seed: 0 });
      const lm = models.transformerLM({
        vocabSize: tok.vocabSize,
        contextLength: 16,
        dModel: 16,
        nHead: 2,
        nLayers: 1,
      });
      const opt = new optim.TNT(lm.parameters(), { lr: 0.01, damping: 0.1, inverseEvery: 10 });
      const loader = new data.DataLoader(tr, { batchSize: 16, shuffle: true, seed: 0 });
      const valLoader = new data.DataLoader(val, { batchSize: 32 });
      const hist = await fit(lm, {
        train: loader,
        val: valLoader,
        epochs: 8,
        optimizer: opt,
        likelihood: lik,
        progress: 'none',
      });
      // uniform over the vocabulary is ln(V) nats per character
      expect(hist[7]!.valLoss!).toBeLessThan(0.5 * Math.log(tok.vocabSize));
      opt.dispose();
      lm.dispose();
      tr.dispose();
      val.dispose();
    });
  });
  it('a checkpoint of the LM and TNT (tied weights, curvature state, RNG) resumes to the same weights', async () => {
    await noLeak(() => {
      const dir = mkdtempSync(join(tmpdir(), 'tn-lm-ckpt-'));
      const make = (): [models.TransformerLM, optim.TNT] => {
        const lm = tinyLM();
        return [lm, new optim.TNT(lm.parameters(), { lr: 0.01, damping: 0.1, inverseEvery: 3 })];
      };
      try {
        torch.manualSeed(6);
        const [a, optA] = make();
        train(a, optA, 4);
        save(join(dir, 'ck.pt'), { model: a, optimizer: optA });
        train(a, optA, 4);
        const [b, optB] = make();
        restore(join(dir, 'ck.pt'), { model: b, optimizer: optB });
        expect(b.head.weight).toBe(b.tokEmb.weight);
        train(b, optB, 4);
        tidy(() => {
          const pa = a.parameters(),
            pb = b.parameters();
          pa.forEach((p, i) => expect(p.sub(pb[i]!).abs().max().item(), `parameter ${i}`).toBeLessThan(1e-6));
        });
        for (const x of [optA, optB, a, b]) x.dispose();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch']).status === 0;
  it.skipIf(!hasTorch)('jit.trace of the LM: Python loads it and computes the same logits', async () => {
    await noLeak(() => {
      torch.manualSeed(5);
      const lm = tinyLM().double();
      lm.eval();
      const dir = mkdtempSync(join(tmpdir(), 'tn-lm-trace-'));
      try {
        const [x, y] = batch();
        y.dispose();
        const traced = jit.trace(lm, x);
        traced.save(join(dir, 'lm.pt'));
        const ours = tidy(() => lm.call(x).dataSync() as number[]);
        writeFileSync(join(dir, 'x.json'), JSON.stringify(x.toArray()));
        const py = spawnSync(
          '/usr/bin/python3',
          [
            '-c',
            'import json,sys,torch\nm=torch.jit.load(sys.argv[1]);m.eval()\n' +
              'x=torch.tensor(json.load(open(sys.argv[2])),dtype=torch.int64)\n' +
              'json.dump(m(x).reshape(-1).tolist(),open(sys.argv[3],"w"))',
            join(dir, 'lm.pt'),
            join(dir, 'x.json'),
            join(dir, 'out.json'),
          ],
          { encoding: 'utf8' },
        );
        expect(py.status, py.stderr).toBe(0);
        const theirs = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as number[];
        expect(theirs.length).toBe(ours.length);
        for (let i = 0; i < ours.length; i++) expect(Math.abs(theirs[i]! - ours[i]!)).toBeLessThan(1e-12);
        traced.dispose();
        x.dispose();
      } finally {
        rmSync(dir, { recursive: true, force: true });
        lm.dispose();
      }
    });
  });
});
