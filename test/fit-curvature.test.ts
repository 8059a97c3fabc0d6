// fit() drives the second-order optimizers as the README's hand-written loop does: the sampled backward pass
// (optimizer.beforeBackward) between forward and backward, the warm start, and refusals (no likelihood, a step
// before any statistics).
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { fit, optim, nn, Tensor, TorchError, Categorical, type Likelihood } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

const quiet = { progress: 'none' as const };

/** [x, y] batches of a 3-class problem in float64, made from a fixed seed. */
function batches(n: number, size: number, seed: number): Tensor[][] {
  torch.manualSeed(seed);
  return Array.from({ length: n }, () => {
    const x = torch.randn([size, 5], { dtype: 'float64' });
    const y = torch.tidy(() => x.index(null, torch.tensor([0, 1, 2], { dtype: 'int64' })).argmax(1));
    return [x, y];
  });
}

function model(): nn.Sequential {
  torch.manualSeed(7);
  return new nn.Sequential(new nn.Linear(5, 6), new nn.Tanh(), new nn.Linear(6, 3)).double();
}

type Make = (m: nn.Sequential) => optim.Optimizer;
const makers: [string, Make][] = [
  ['TNT', (m) => new optim.TNT(m.parameters(), { lr: 0.05, damping: 0.1, statsEvery: 2, inverseEvery: 4 })],
  ['KFAC', (m) => new optim.KFAC(m, { lr: 0.05, damping: 0.1, statsEvery: 2, inverseEvery: 4 })],
  ['Shampoo', (m) => new optim.Shampoo(m.parameters(), { lr: 0.05, epsilon: 0.1, statsEvery: 2, inverseEvery: 4 })],
];

/** The README's loop, written out by hand, with the same RNG draws as fit(). */
async function handLoop(
  make: Make,
  data: Tensor[][],
  lik: Likelihood,
  epochs: number,
  warm: number,
): Promise<number[]> {
  const m = model();
  const opt = make(m) as optim.Optimizer & {
    sampledBackward?: (o: Tensor, l: Likelihood) => boolean;
    warmStart?: (b: Tensor[][], f: (x: Tensor) => Tensor, l: Likelihood) => Promise<number>;
  };
  torch.manualSeed(11);
  if (warm > 0) await opt.warmStart!(data.slice(0, warm), (x) => m.call(x) as Tensor, lik);
  for (let e = 0; e < epochs; e++)
    for (const [x, y] of data)
      torch.tidy(() => {
        const out = m.call(x!) as Tensor;
        opt.sampledBackward?.(out, lik);
        lik.loss(out, y!).backward();
        opt.step();
        opt.zeroGrad();
      });
  const w = m.parameters().flatMap((p) => p.dataSync() as number[]);
  opt.dispose();
  m.dispose();
  return w;
}

describe('fit() with second-order optimizers', () => {
  for (const [name, make] of makers)
    for (const warm of [0, 2])
      it(`${name}${warm ? ' with a warm start' : ''}: fit({ likelihood }) takes exactly the steps of the hand-written loop`, async () => {
        const data = batches(4, 8, 3);
        const lik = new Categorical();
        await noLeak(async () => {
          const want = await handLoop(make, data, lik, 2, warm);
          const m = model();
          const opt = make(m);
          torch.manualSeed(11);
          const history = await fit(m, {
            train: data,
            epochs: 2,
            optimizer: opt,
            likelihood: lik,
            warmStart: warm,
            ...quiet,
          });
          const got = m.parameters().flatMap((p) => p.dataSync() as number[]);
          expect(got).toEqual(want); // bit-identical: the same calls in the same order
          expect(history).toHaveLength(2);
          if (opt instanceof optim.TNT || opt instanceof optim.KFAC) {
            // 8 steps, statistics every 2 (the warm start counts separately)
            expect(opt.statsUpdates).toBe(4);
            expect(opt.warmStarted).toBe(warm > 0);
          }
          opt.dispose();
          m.dispose();
        });
        torch.dispose(data.flat());
      });

  it('a warm start reads this many batches of train (Infinity: all of them)', async () => {
    const data = batches(3, 8, 5);
    const m = model();
    const opt = new optim.TNT(m.parameters(), { lr: 0.01 });
    let warmed = -1;
    const orig = opt.warmStart.bind(opt);
    opt.warmStart = async (b, f, l) => (warmed = await orig(b, f, l));
    await fit(m, {
      train: data,
      epochs: 1,
      optimizer: opt,
      likelihood: new Categorical(),
      warmStart: Infinity,
      ...quiet,
    });
    expect(warmed).toBe(3);
    opt.dispose();
    m.dispose();
    torch.dispose(data.flat());
  });

  it('TNT and KFAC refuse to train without a likelihood; step() before any statistics is a NO_STATISTICS TorchError', async () => {
    const data = batches(1, 4, 1);
    const m = model();
    for (const opt of [new optim.TNT(m.parameters(), { lr: 0.01 }), new optim.KFAC(m, { lr: 0.01 })]) {
      await expect(
        fit(m, { train: data, epochs: 1, optimizer: opt, loss: nn.functional.crossEntropy, ...quiet }),
      ).rejects.toThrow(
        `fit: ${opt.constructor.name} gathers its statistics by sampling from the model's predictive distribution: pass \`likelihood\``,
      );
      const before = m.parameters().map((p) => p.dataSync());
      const err = torch.tidy(() => {
        nn.functional.crossEntropy(m.call(data[0]![0]!) as Tensor, data[0]![1]!).backward();
        try {
          opt.step();
        } catch (e) {
          return e;
        }
        return null;
      });
      expect(err).toBeInstanceOf(TorchError);
      expect((err as TorchError).code).toBe('NO_STATISTICS');
      expect((err as TorchError).message).toContain(
        'Call opt.sampledBackward(output, likelihood) after the forward pass and before loss.backward()',
      );
      expect(m.parameters().map((p) => p.dataSync())).toEqual(before); // nothing moved
      expect(opt.stepCount).toBe(0);
      opt.zeroGrad();
      opt.dispose();
    }
    // Shampoo gathers its statistics from the gradient inside step(): no likelihood needed
    const sh = new optim.Shampoo(m.parameters(), { lr: 0.01 });
    await fit(m, { train: data, epochs: 1, optimizer: sh, loss: nn.functional.crossEntropy, ...quiet });
    expect(sh.statsUpdates).toBe(1);
    sh.dispose();
    m.dispose();
    torch.dispose(data.flat());
  });

  it('argument errors: likelihood, warmStart', async () => {
    const data = batches(1, 4, 1);
    const m = model();
    const sgd = new optim.SGD(m.parameters(), { lr: 0.1 });
    await expect(fit(m, { train: data, epochs: 1, optimizer: sgd, likelihood: {} as never, ...quiet })).rejects.toThrow(
      'Expected a likelihood with loss() and sample() (e.g. new Categorical()) for likelihood but received [object Object] of type object',
    );
    await expect(fit(m, { train: data, epochs: 1, optimizer: sgd, ...quiet })).rejects.toThrow(
      'Expected a loss function (or a likelihood) for loss but received undefined',
    );
    await expect(
      fit(m, { train: data, epochs: 1, optimizer: sgd, likelihood: new Categorical(), warmStart: 1, ...quiet }),
    ).rejects.toThrow('fit: warmStart needs an optimizer with warmStart() (TNT, KFAC, Shampoo), not SGD');
    await expect(
      fit(m, { train: data, epochs: 1, optimizer: sgd, likelihood: new Categorical(), warmStart: -1, ...quiet }),
    ).rejects.toThrow('Expected a non-negative integer for warmStart but received -1');
    // under DDP (a model with synchronize()), a bare TNT would precondition each replica with its own shard
    const ddpLike = Object.assign(model(), { synchronize: async () => undefined });
    const tnt = new optim.TNT(ddpLike.parameters(), { lr: 0.1 });
    await expect(
      fit(ddpLike, { train: data, epochs: 1, optimizer: tnt, likelihood: new Categorical(), ...quiet }),
    ).rejects.toThrow(
      'fit: under DistributedDataParallel TNT must gather its statistics over every rank: pass `new distributed.CurvatureSync(optimizer)`',
    );
    tnt.dispose();
    ddpLike.dispose();
    // a likelihood alone is the loss: SGD trains on its cross-entropy
    const h = await fit(m, { train: data, epochs: 1, optimizer: sgd, likelihood: new Categorical(), ...quiet });
    expect(Number.isFinite(h[0]!.trainLoss)).toBe(true);
    sgd.dispose();
    m.dispose();
    torch.dispose(data.flat());
  });
});
