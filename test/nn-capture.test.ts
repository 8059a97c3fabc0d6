/**
 * captureOutputs: recorded layer inputs are the layers' actual inputs, and the output gradients it returns satisfy
 * the identities autograd's parameter gradients must obey (Linear: dW = g^T a, db = sum g; Conv2d: dW = sum g U^T
 * with U the unfolded input patches), plus a float64 closed form for the last layer under cross-entropy.
 */
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor } from '../lib/index.js';
import { expectClose, noLeak, lcg } from './support/helpers.js';

const { nn, models } = torch;
const F = nn.functional;

function data(shape: number[], seed: number, scale = 2): Tensor {
  const r = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return torch.tensor(
    Array.from({ length: n }, () => r() * scale),
    { shape },
  );
}

describe('captureOutputs', () => {
  it('records Linear inputs and outputs; output gradients reproduce the weight and bias gradients', async () => {
    await noLeak(() => {
      torch.manualSeed(2);
      const net = models.mlp([4, 5, 3], { activation: 'tanh' });
      const cap = nn.captureOutputs(net);
      expect(cap.layers.map(([n]) => n)).toEqual(['0', '2']);
      const x = data([6, 4], 1);
      const y = torch.tensor([0n, 2n, 1n, 1n, 0n, 2n]);
      torch.tidy(() => {
        const logits = net.call(x);
        const recs = cap.records();
        expect(recs.map((r) => r.name)).toEqual(['0', '2']);
        expect(recs[0]!.input.dataSync()).toEqual(x.dataSync());
        expect(recs[0]!.input.requiresGrad).toBe(false);
        expect(recs[1]!.input.dataSync()).toEqual(recs[0]!.output.tanh().dataSync());
        expect(recs[1]!.output.dataSync()).toEqual(logits.dataSync());
        expect(cap.get('2')).toBe(recs[1]);
        expect(cap.get(net.at(0))).toBe(recs[0]);

        const loss = F.crossEntropy(logits, y);
        const g = cap.outputGrads(loss);
        // Closed form for the logits: (softmax(z) - onehot(y)) / N, in float64.
        const z = logits.toArray() as number[][];
        const labels = [0, 2, 1, 1, 0, 2];
        const want = z.flatMap((row, n) => {
          const m = Math.max(...row);
          const e = row.map((v) => Math.exp(v - m));
          const s = e.reduce((a, b) => a + b, 0);
          return e.map((v, c) => (v / s - (c === labels[n] ? 1 : 0)) / 6);
        });
        expectClose(g.get('2')!, Float64Array.from(want), { atol: 1e-7 });

        loss.backward(); // the graph was retained: the same forward pass serves the real backward
        for (const r of recs) {
          const lin = r.module as torch.nn.Linear;
          const gr = g.get(r.name)!;
          expectClose(lin.weight.grad!, gr.t().mm(r.input).toArray() as number[][], { atol: 1e-6 });
          expectClose(lin.bias!.grad!, gr.sum(0).toArray() as number[], { atol: 1e-6 });
        }
      });
      cap.remove();
      torch.dispose([x, y]);
      net.dispose();
    });
  });

  it('gives Conv2d outputs whose gradients reproduce dW through unfolded patches', async () => {
    await noLeak(() => {
      torch.manualSeed(4);
      const net = models.smallCnn({ imageSize: 8, numClasses: 3 });
      const cap = nn.captureOutputs(net, { filter: (m) => m instanceof nn.Conv2d });
      expect(cap.layers.map(([n]) => n)).toEqual(['0', '4']);
      const x = data([2, 1, 8, 8], 5);
      torch.tidy(() => {
        const out = net.call(x);
        const loss = out.square().sum();
        const g = cap.outputGrads(loss);
        loss.backward();
        for (const r of cap.records()) {
          const conv = r.module as torch.nn.Conv2d;
          const gr = g.get(r.name)!;
          expect(gr.shape).toEqual(r.output.shape);
          const patches = F.unfold(r.input, conv.kernelSize, { padding: conv.resolvedPadding }); // (N, C*k*k, L)
          const go = gr.flatten(2); // (N, O, L)
          const dW = torch.einsum('nol,nkl->ok', go, patches);
          const [o] = conv.weight.shape;
          expectClose(conv.weight.grad!.reshape([o!, -1]), dW.toArray() as number[][], { atol: 1e-4, rtol: 1e-4 });
        }
      });
      cap.remove();
      x.dispose();
      net.dispose();
    });
  });

  it('gives zeros for a layer the loss does not depend on, keeps the last call, and can pause, clear and stop', async () => {
    await noLeak(() => {
      class TwoHeads extends nn.Module {
        used = new nn.Linear(3, 2);
        unused = new nn.Linear(3, 2);
        forward(x: Tensor): Tensor {
          this.unused.call(x).dispose();
          return this.used.call(x);
        }
      }
      const m = new TwoHeads();
      const cap = nn.captureOutputs(m);
      expect(() => cap.outputGrads(3 as never)).toThrow(
        new TypeError('Expected a Tensor for loss but received 3 of type number'),
      );
      const x = data([4, 3], 6);
      torch.tidy(() => {
        const loss = m.call(x).sum();
        const g = cap.outputGrads(loss, { retainGraph: false });
        expect(g.get('unused')!.dataSync()).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
        expect(g.get('used')!.dataSync()).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      });
      // a second pass replaces the records (and frees the old ones)
      const live = torch.liveTensors();
      torch.tidy(() => void m.call(x));
      torch.tidy(() => void m.call(x));
      expect(torch.liveTensors()).toBe(live);
      cap.enabled = false;
      cap.clear();
      torch.tidy(() => void m.call(x));
      expect(cap.records()).toEqual([]);
      expect(() => cap.outputGrads(x)).toThrow(new Error('captureOutputs: no forward pass has been recorded'));
      cap.enabled = true;
      cap.remove();
      torch.tidy(() => void m.call(x));
      expect(cap.records()).toEqual([]);
      expect(m.used._forwardHooks.size).toBe(0);
      expect(() => nn.captureOutputs({} as never)).toThrow(
        new TypeError('Expected a Module for model but received [object Object] of type object'),
      );
      x.dispose();
      m.dispose();
    });
  });
});
