/**
 * The paper's models: parameter counts (hand-computed from the architectures), names, output shapes, initialisation
 * statistics, BatchNorm train/eval behaviour, and leak-free forward + backward under tidy.
 */
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

const { nn, models } = torch;
const count = (m: torch.nn.AnyModule): number => m.parameters().reduce((s, p) => s + p.numel(), 0);
/** Parameters of Linear layers between consecutive widths. */
const fcCount = (w: number[]): number => w.slice(1).reduce((s, out, i) => s + w[i]! * out + out, 0);

/** Forward and backward under tidy leave no tensor behind (the model's gradients aside, freed with it). */
function trainStep(model: torch.nn.AnyModule, x: Tensor, outShape: number[]): void {
  torch.tidy(() => {
    const out = model.call(x) as Tensor;
    expect(out.shape).toEqual(outShape);
    out.square().mean().backward();
  });
  expect(model.parameters().every((p) => p.grad !== null)).toBe(true);
}

describe('mlp and autoencoders', () => {
  it('mlp puts the activation between Linear layers only', async () => {
    await noLeak(() => {
      const net = models.mlp([256, 20, 20, 20, 20, 20, 10], { activation: 'tanh' });
      expect(count(net)).toBe(fcCount([256, 20, 20, 20, 20, 20, 10]));
      expect(count(net)).toBe(7030); // 256*20+20 + 4*(20*20+20) + 20*10+10
      expect([...net].map((m) => m.constructor.name)).toEqual([
        'Linear',
        'Tanh',
        'Linear',
        'Tanh',
        'Linear',
        'Tanh',
        'Linear',
        'Tanh',
        'Linear',
        'Tanh',
        'Linear',
      ]);
      const custom = models.mlp([3, 4, 2], { activation: () => new nn.GELU({ approximate: 'tanh' }), bias: false });
      expect(String(custom)).toBe(
        "Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=False)\n  (1): GELU(approximate='tanh')\n  (2): Linear(in_features=4, out_features=2, bias=False)\n)",
      );
      net.dispose();
      custom.dispose();
    });
  });

  it("autoencoder: no activation after the code layer or the output; the paper's sizes", async () => {
    await noLeak(() => {
      const small = models.autoencoder([6, 4, 2, 4, 6]);
      expect(String(small)).toBe(
        [
          'Sequential(',
          '  (0): Linear(in_features=6, out_features=4, bias=True)',
          '  (1): ReLU()',
          '  (2): Linear(in_features=4, out_features=2, bias=True)',
          '  (3): Linear(in_features=2, out_features=4, bias=True)',
          '  (4): ReLU()',
          '  (5): Linear(in_features=4, out_features=6, bias=True)',
          ')',
        ].join('\n'),
      );
      small.dispose();
      const mnist = models.autoencoder('mnist');
      // 784*1000+1000 + 1000*500+500 + 500*250+250 + 250*30+30 + 30*250+250 + 250*500+500 + 500*1000+1000 + 1000*784+784
      expect(count(mnist)).toBe(2837314);
      expect([...mnist].filter((m) => m instanceof nn.ReLU).length).toBe(6);
      expect(
        mnist
          .namedParameters()
          .map(([n]) => n)
          .filter((n) => n.endsWith('weight')),
      ).toEqual(['0.weight', '2.weight', '4.weight', '6.weight', '7.weight', '9.weight', '11.weight', '13.weight']);
      const x = torch.rand([3, 784]);
      trainStep(mnist, x, [3, 784]);
      x.dispose();
      mnist.dispose();
      const faces = models.autoencoder('faces');
      expect(count(faces)).toBe(7537655);
      expect(count(faces)).toBe(fcCount([...models.AUTOENCODER_WIDTHS.faces]));
      faces.dispose();
    });
  });
});

describe('resnet32', () => {
  it('has 464,154 parameters, the usual names, option-A shortcuts and kaiming-normal weights', async () => {
    await noLeak(() => {
      torch.manualSeed(7);
      const net = models.resnet32();
      // conv1 432 + bn1 32; stage 1: 5 x (2*2304 + 64); stage 2: (4608 + 9216 + 128) + 4 x (2*9216 + 128);
      // stage 3: (18432 + 36864 + 256) + 4 x (2*36864 + 256); linear 64*10 + 10
      expect(count(net)).toBe(
        432 +
          32 +
          5 * (2 * 2304 + 64) +
          (4608 + 9216 + 128) +
          4 * (2 * 9216 + 128) +
          (18432 + 36864 + 256) +
          4 * (2 * 36864 + 256) +
          650,
      );
      expect(count(net)).toBe(464154);
      const names = net.namedParameters().map(([n]) => n);
      expect(names.slice(0, 4)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'layer1.0.conv1.weight']);
      expect(names.slice(-2)).toEqual(['linear.weight', 'linear.bias']);
      expect(
        net
          .namedParameters()
          .filter(([n]) => n.includes('conv'))
          .every(([, p]) => p.ndim === 4),
      ).toBe(true);
      expect(net.namedBuffers().length).toBe(31 * 3); // 31 BatchNorms: running mean, variance, batch count
      expect(String(net.layer2.at(0))).toContain('(shortcut): PadShortcut(stride=2, pad_channels=8)');
      expect(String(net.layer2.at(1))).toContain('(shortcut): Identity()');
      // kaiming_normal (fan_in, gain sqrt 2): layer3.0.conv2 has 36864 weights, fan_in 576; 5 sd of the sample sd
      const w = (net.layer3.at(0) as torch.models.BasicBlock).conv2.weight.dataSync();
      const sd = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
      expect(Math.abs(sd / Math.sqrt(2 / 576) - 1)).toBeLessThan(5 / Math.sqrt(2 * w.length));
      const x = torch.randn([2, 3, 32, 32]);
      trainStep(net, x, [2, 10]);
      x.dispose();
      net.dispose();
      const c100 = models.resnet32({ numClasses: 100 });
      expect(count(c100)).toBe(464154 - 650 + 6500);
      c100.dispose();
    });
  });

  it('PadShortcut subsamples by 2 and zero-pads channels on both sides', async () => {
    await noLeak(() => {
      const r = torch.arange(0, 16 * 16, { dtype: 'float32' });
      const x = r.reshape([1, 16, 4, 4]);
      r.dispose();
      const y = new models.PadShortcut(8).call(x);
      expect(y.shape).toEqual([1, 32, 2, 2]);
      const v = y.dataSync();
      expect(v.slice(0, 32).every((e) => e === 0) && v.slice(96).every((e) => e === 0)).toBe(true);
      // channel 8 of the output is input channel 0 at rows/columns 0 and 2
      expect(v.slice(32, 36)).toEqual([0, 2, 8, 10]);
      expect(v.slice(92, 96)).toEqual([15 * 16 + 0, 15 * 16 + 2, 15 * 16 + 8, 15 * 16 + 10]);
      torch.dispose([x, y]);
    });
  });
});

describe('vgg16bn', () => {
  it("has the paper's 512-4096-4096-numClasses classifier, conv init N(0, 2/(9 out)) with zero biases, and trains leak-free", async () => {
    await noLeak(() => {
      torch.manualSeed(8);
      const net = models.vgg16bn();
      let c = 3,
        convs = 0,
        bns = 0;
      for (const v of models.VGG16_CONFIG) {
        if (v === 'M') continue;
        convs += c * v * 9 + v;
        bns += 2 * v;
        c = v;
      }
      expect(convs + bns).toBe(14723136);
      expect(count(net)).toBe(convs + bns + 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 100 + 100);
      expect(count(net)).toBe(34015396);
      expect(String(net.classifier)).toBe(
        [
          'Sequential(',
          '  (0): Linear(in_features=512, out_features=4096, bias=True)',
          '  (1): ReLU()',
          '  (2): Linear(in_features=4096, out_features=4096, bias=True)',
          '  (3): ReLU()',
          '  (4): Linear(in_features=4096, out_features=100, bias=True)',
          ')',
        ].join('\n'),
      );
      expect([...net.stateDict({ keepVars: true }).keys()].slice(0, 7)).toEqual([
        'features.0.weight',
        'features.0.bias',
        'features.1.weight',
        'features.1.bias',
        'features.1.runningMean',
        'features.1.runningVar',
        'features.1.numBatchesTracked',
      ]);
      const conv = net.features.at(14) as torch.nn.Conv2d; // 128 -> 256 (after conv, bn, relu x4 and a pool)
      expect(conv.weight.shape).toEqual([256, 128, 3, 3]);
      const w = conv.weight.dataSync();
      const sd = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
      expect(Math.abs(sd / Math.sqrt(2 / (9 * 256)) - 1)).toBeLessThan(5 / Math.sqrt(2 * w.length));
      expect(conv.bias!.dataSync().every((v) => v === 0)).toBe(true);
      const x = torch.randn([2, 3, 32, 32]);
      trainStep(net, x, [2, 100]);
      x.dispose();
      net.dispose();
    });
  });
});

describe('smallCnn', () => {
  it('maps (N, 1, 28, 28) to logits; BatchNorm uses batch statistics in training and running ones in evaluation', async () => {
    await noLeak(() => {
      torch.manualSeed(9);
      const net = models.smallCnn();
      // conv 1*32*9 + bn 64 + conv 32*64*9 + bn 128 + fc 3136*128+128 + fc 128*10+10
      expect(count(net)).toBe(288 + 64 + 18432 + 128 + 3136 * 128 + 128 + 1290);
      const x = torch.randn([4, 1, 28, 28]);
      trainStep(net, x, [4, 10]);
      const one = x.narrow(0, 0, 1);
      torch.tidy(() => {
        const batch = net.call(x).narrow(0, 0, 1);
        net.eval();
        const alone = net.call(one);
        const inBatch = net.call(x).narrow(0, 0, 1);
        expect(alone.allclose(inBatch, { atol: 1e-5 })).toBe(true); // evaluation does not depend on the batch
        expect(alone.allclose(batch, { atol: 1e-3 })).toBe(false);
      });
      torch.dispose([x, one]);
      net.dispose();
      expect(() => models.smallCnn({ imageSize: 30 })).toThrow(
        new RangeError('Expected a positive multiple of 4 for imageSize but received 30 of type number'),
      );
    });
  });

  it('rejects bad widths and activations', () => {
    expect(() => models.mlp([3])).toThrow(
      new TypeError('Expected an array of at least two positive integers for widths but received [3] of type array'),
    );
    expect(() => models.mlp([3, 2], { activation: 'swish' as never })).toThrow(
      new RangeError(
        "Expected one of 'relu', 'tanh', 'sigmoid', 'gelu' for activation but received \"swish\" of type string",
      ),
    );
    expect(() => models.autoencoder('cifar' as never)).toThrow(RangeError);
  });
});
