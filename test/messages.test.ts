// Error messages written for a JavaScript user (issue 10, item 8): float labels into crossEntropy, why a tensor
// was disposed, null options, wrong argument types, CUDA on a CPU-only build, and integers that must not be
// truncated. Each table entry failed (a raw JS error, a crash-free but silent truncation, or a bare libtorch
// message) before the change it tests.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { native } from '../lib/native.js';
import { jsOptionNames } from '../lib/errors.js';
import { noLeak, thrown } from './support/helpers.js';

const { nn, optim, data } = torch;
const F = nn.functional;

function disposedError(fn: () => unknown): string {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(torch.TorchError);
  expect((e as torch.TorchError).code).toBe('DISPOSED');
  return e.message;
}

describe('crossEntropy / nllLoss with labels that are not int64', () => {
  it("float32, float64 and int32 class indices: DTYPE_MISMATCH whose message says { dtype: 'int64' }", () =>
    noLeak(() =>
      torch.tidy(() => {
        const logits = torch.tensor([
          [2, 0, -1],
          [0.5, 1, 0],
        ]);
        for (const dtype of ['float32', 'float64', 'int32'] as const) {
          const labels = torch.tensor([0, 2], { dtype });
          for (const [name, loss] of [
            ['crossEntropy', () => F.crossEntropy(logits, labels)],
            ['nllLoss', () => F.nllLoss(logits.logSoftmax(1), labels)],
          ] as const) {
            const e = thrown(loss);
            expect(e, `${name} ${dtype}`).toBeInstanceOf(torch.TorchError);
            expect((e as torch.TorchError).code).toBe('DTYPE_MISMATCH');
            // libtorch's own words first, then what to do
            expect(e.message).toMatch(/^expected scalar type Long but found (Float|Double|Int)\. /);
            expect(e.message).toContain(`${name}: target holds class indices and must be int64, but it is ${dtype}`);
            expect(e.message).toContain("{ dtype: 'int64' }");
            expect(e.message).toContain('target.long()');
          }
        }
        // the Categorical likelihood goes through crossEntropy: the same hint
        expect(() => new torch.Categorical().loss(logits, torch.tensor([0, 2]))).toThrow(/\{ dtype: 'int64' \}/);
      }),
    ));

  it("int64 indices and float class probabilities (the input's shape) still work, with PyTorch's values", () =>
    noLeak(() =>
      torch.tidy(() => {
        const z = [
          [2, 0, -1],
          [0.5, 1, 0],
        ];
        const logits = torch.tensor(z, { dtype: 'float64' });
        const lse = z.map((r) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0)));
        // indices: mean of lse - z[target]
        const idx = F.crossEntropy(logits, torch.tensor([0, 2], { dtype: 'int64' })).item();
        expect(idx).toBeCloseTo((lse[0]! - 2 + lse[1]! - 0) / 2, 12);
        // probabilities: mean over rows of -sum_c p_c log softmax_c
        const p = [
          [0.25, 0.75, 0],
          [0.5, 0, 0.5],
        ];
        const want =
          p.map((r, i) => -r.reduce((a, pc, c) => a + pc * (z[i]![c]! - lse[i]!), 0)).reduce((a, b) => a + b) / 2;
        expect(F.crossEntropy(logits, torch.tensor(p, { dtype: 'float64' })).item()).toBeCloseTo(want, 12);
      }),
    ));
});

describe('a DISPOSED error says what freed the tensor and what to do', () => {
  it('dispose(), the end of a tidy(), a Parameter taking a tensor over', () => {
    const t = torch.ones(2);
    t.dispose();
    expect(disposedError(() => t.sum())).toBe('tensor was disposed: it cannot be used any more');

    const escaped = torch.tidy(() => {
      const inner = torch.ones(2);
      return { n: 1, inner: [inner].map((x) => x)[0]!.mul(1) && inner };
    });
    expect(escaped.inner.isDisposed).toBe(false); // returned inside an object: kept
    escaped.inner.dispose();
    let leaked: torch.Tensor | null = null;
    torch.tidy(() => {
      leaked = torch.ones(3);
    });
    const m = disposedError(() => leaked!.add(1));
    expect(m).toMatch(
      /^tensor was disposed at the end of the tidy\(\) scope that created it: it cannot be used any more\. /,
    );
    expect(m).toContain('keep()');
    expect(m).toContain('Return it from the tidy() callback');
    // as a second operand and inside a list of tensors as well
    const a = torch.ones(3);
    expect(disposedError(() => a.add(leaked!))).toBe(m);
    expect(disposedError(() => torch.cat([a, leaked!]))).toBe(m);
    a.dispose();

    const data = torch.zeros(2);
    const p = new nn.Parameter(data);
    expect(disposedError(() => data.sum())).toMatch(
      /^tensor was handed over to a Parameter .*Use the Parameter, or pass t\.clone\(\) to keep t$/,
    );
    p.dispose();
  });

  it('a DataLoader batch after the loop advanced, a .grad after its tensor was freed', async () => {
    await noLeak(() => {
      const ds = new data.TensorDataset(torch.tensor([[0], [1], [2], [3], [4], [5]]), torch.arange(0, 6, 1));
      const loader = new data.DataLoader(ds, { batchSize: 2 });
      let first: torch.Tensor | null = null;
      let kept: torch.Tensor | null = null;
      for (const [x] of loader) {
        if (first === null) first = x;
        else if (kept === null) kept = x.keep();
      }
      const m = disposedError(() => first!.sum());
      expect(m).toMatch(
        /^tensor was a DataLoader batch, disposed when the loop advanced to the next batch \(or ended\)/,
      );
      expect(m).toContain('call keep() on a batch tensor');
      expect(kept!.dataSync()).toEqual([2, 3]); // keep() still works as documented
      kept!.dispose();
      ds.dispose();

      const w = torch.ones([2], { requiresGrad: true });
      torch.tidy(() => w.mul(3).sum().backward());
      const g = w.grad!;
      w.dispose();
      expect(disposedError(() => g.sum())).toMatch(
        /^tensor was a \.grad, disposed when its tensor's gradient was replaced \(or its tensor disposed\).*clone\(\) a gradient/,
      );
    });
  });

  it("optimizer state after loadStateDict, module tensors after Module.dispose() or Module.to(), a hook's gradient", async () => {
    await noLeak(() => {
      const lin = new nn.Linear(2, 1);
      const opt = new optim.SGD(lin.parameters(), { lr: 0.1, momentum: 0.9 });
      torch.tidy(() =>
        lin
          .call(torch.ones([1, 2]))
          .sum()
          .backward(),
      );
      opt.step();
      const buf = opt.state.get(lin.weight)!.momentumBuffer as torch.Tensor;
      opt.loadStateDict(opt.stateDict());
      expect(disposedError(() => buf.sum())).toMatch(
        /^tensor was optimizer state, disposed when the optimizer's state was replaced \(loadStateDict\)/,
      );

      // an optimizer state tensor disposed by hand is an error at the next step, not a silently restarted momentum
      const fresh = opt.state.get(lin.weight)!.momentumBuffer as torch.Tensor;
      fresh.dispose();
      expect(disposedError(() => opt.step())).toBe('tensor was disposed: it cannot be used any more');
      opt.dispose();

      const bn = new nn.BatchNorm1d(2);
      const mean = bn.runningMean!;
      bn.to('float64');
      expect(disposedError(() => mean.sum())).toMatch(
        /^tensor was owned by a Module and disposed with it \(Module\.dispose\(\)\) or replaced by Module\.to\(\)/,
      );
      const weight = lin.weight;
      lin.dispose();
      expect(disposedError(() => weight.sum())).toContain('owned by a Module');
      bn.dispose();

      const x = torch.ones([2], { requiresGrad: true });
      let seen: torch.Tensor | null = null;
      const y = x.mul(2);
      y.registerHook((g) => {
        seen = g;
      });
      torch.tidy(() => y.sum().backward());
      expect(disposedError(() => seen!.sum())).toMatch(
        /^tensor was disposed when the gradient hook that received or created it returned: .*clone\(\) and keep\(\)/,
      );
      torch.dispose([x, y]);
    });
  });
});

describe('options arguments: null or a non-object is a TypeError naming the argument', () => {
  it('every function and method that takes an options object', async () => {
    await noLeak(() => {
      const t = torch.ones([2, 2]);
      const spd = torch.tensor(
        [
          [2, 1],
          [1, 2],
        ],
        { dtype: 'float64' },
      );
      const img = torch.ones([1, 1, 4, 4]);
      const w = torch.ones([1, 1, 1, 1]);
      const lin = new nn.Linear(2, 2);
      const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
      const ds = new data.TensorDataset(torch.ones([2, 1]), torch.zeros([2], { dtype: 'int64' }));
      const dir = mkdtempSync(join(tmpdir(), 'tn-messages-'));
      const logits = torch.zeros([2, 3]),
        y = torch.tensor([0, 1], { dtype: 'int64' });
      const cases: [string, (o: never) => unknown][] = [
        ['tensor', (o) => torch.tensor([1], o)],
        ['zeros', (o) => torch.zeros(2, o)],
        ['full', (o) => torch.full([2], 1, o)],
        ['randint', (o) => torch.randint(0, 5, [2], o)],
        ['fashionMnist', (o) => data.fashionMnist(o)],
        ['randint(high, size, options)', (o) => torch.randint(5, [2], o)],
        ['randperm', (o) => torch.randperm(3, o)],
        ['eye', (o) => torch.eye(2, 2, o)],
        ['arange', (o) => torch.arange(0, 3, 1, o)],
        ['linspace', (o) => torch.linspace(0, 1, 3, o)],
        ['zerosLike', (o) => torch.zerosLike(t, o)],
        ['randnLike', (o) => torch.randnLike(t, o)],
        ['Tensor.backward', (o) => t.backward(null, o)],
        ['Tensor.allclose', (o) => t.allclose(t, o)],
        ['Tensor.gelu', (o) => t.gelu(o)],
        ['Tensor.var', (o) => t.var(0, o)],
        ['Tensor.std', (o) => t.std(0, o)],
        ['autograd.grad', (o) => torch.autograd.grad(t, t, o)],
        ['autograd.gradcheck', (o) => torch.autograd.gradcheck((a) => a, [spd], o)],
        ['linalg.cholesky', (o) => torch.linalg.cholesky(spd, o)],
        ['linalg.choleskyEx', (o) => torch.linalg.choleskyEx(spd, o)],
        ['linalg.choleskyInverse', (o) => torch.linalg.choleskyInverse(spd, o)],
        ['linalg.choleskySolve', (o) => torch.linalg.choleskySolve(spd, spd, o)],
        ['linalg.eigh', (o) => torch.linalg.eigh(spd, o)],
        ['linalg.eigvalsh', (o) => torch.linalg.eigvalsh(spd, o)],
        ['linalg.svd', (o) => torch.linalg.svd(spd, o)],
        ['linalg.qr', (o) => torch.linalg.qr(spd, o)],
        ['F.conv2d', (o) => F.conv2d(img, w, null, o)],
        ['F.maxPool2d', (o) => F.maxPool2d(img, 2, o)],
        ['F.avgPool2d', (o) => F.avgPool2d(img, 2, o)],
        ['F.batchNorm', (o) => F.batchNorm(img, null, null, o)],
        ['F.unfold', (o) => F.unfold(img, 2, o)],
        ['F.interpolate', (o) => F.interpolate(img, 2, o)],
        ['F.crossEntropy', (o) => F.crossEntropy(logits, y, o)],
        ['F.nllLoss', (o) => F.nllLoss(logits, y, o)],
        ['F.binaryCrossEntropyWithLogits', (o) => F.binaryCrossEntropyWithLogits(t, t, o)],
        ['F.binaryCrossEntropy', (o) => F.binaryCrossEntropy(t.mul(0.5), t, o)],
        ['F.mseLoss', (o) => F.mseLoss(t, t, o)],
        ['F.l1Loss', (o) => F.l1Loss(t, t, o)],
        ['F.smoothL1Loss', (o) => F.smoothL1Loss(t, t, o)],
        ['init.kaimingUniform_', (o) => nn.init.kaimingUniform_(t, o)],
        ['init.kaimingNormal_', (o) => nn.init.kaimingNormal_(t, o)],
        ['nn.Linear', (o) => new nn.Linear(2, 2, o)],
        ['nn.Conv2d', (o) => new nn.Conv2d(1, 1, 1, o)],
        ['nn.MaxPool2d', (o) => new nn.MaxPool2d(2, o)],
        ['nn.AvgPool2d', (o) => new nn.AvgPool2d(2, o)],
        ['nn.BatchNorm2d', (o) => new nn.BatchNorm2d(2, o)],
        ['nn.GELU', (o) => new nn.GELU(o)],
        ['Module.parameters', (o) => lin.parameters(o)],
        ['Module.namedParameters', (o) => lin.namedParameters(o)],
        ['Module.buffers', (o) => lin.buffers(o)],
        ['Module.namedBuffers', (o) => lin.namedBuffers(o)],
        ['Module.namedModules', (o) => lin.namedModules(o)],
        ['Module.zeroGrad', (o) => lin.zeroGrad(o)],
        ['Module.stateDict', (o) => lin.stateDict(o)],
        ['Module.loadStateDict', (o) => lin.loadStateDict({}, o)],
        ['Module.registerBuffer', (o) => lin.registerBuffer('extra', null, o)],
        ['nn.captureOutputs', (o) => nn.captureOutputs(lin, o)],
        ['optim.SGD', (o) => new optim.SGD(lin.parameters(), o)],
        ['optim.Adam', (o) => new optim.Adam(lin.parameters(), o)],
        ['Optimizer.zeroGrad', (o) => opt.zeroGrad(o)],
        ['lrScheduler.StepLR', (o) => new optim.lrScheduler.StepLR(opt, o)],
        ['lrScheduler.MultiStepLR', (o) => new optim.lrScheduler.MultiStepLR(opt, o)],
        ['lrScheduler.CosineAnnealingLR', (o) => new optim.lrScheduler.CosineAnnealingLR(opt, o)],
        ['lrScheduler.LambdaLR', (o) => new optim.lrScheduler.LambdaLR(opt, o)],
        ['data.DataLoader', (o) => new data.DataLoader(ds, o)],
        ['transforms.randomCrop', (o) => data.transforms.randomCrop(2, o)],
        ['transforms.resize', (o) => data.transforms.resize(2, o)],
        ['models.mlp', (o) => torch.models.mlp([2, 2], o)],
        ['models.autoencoder', (o) => torch.models.autoencoder([2, 1, 2], o)],
        ['models.smallCnn', (o) => torch.models.smallCnn(o)],
        ['models.resnet32', (o) => torch.models.resnet32(o)],
        ['models.vgg16bn', (o) => torch.models.vgg16bn(o)],
        ['Categorical.loss', (o) => new torch.Categorical().loss(logits, y, o)],
        ['restore', (o) => torch.restore(join(dir, 'none.tnckpt'), o)],
        ['saveWeights', (o) => torch.saveWeights(join(dir, 'w.safetensors'), lin, o)],
        ['loadWeights', (o) => torch.loadWeights(join(dir, 'w.safetensors'), lin, o)],
      ];
      try {
        for (const [name, call] of cases)
          // zeros(2, 5) is a size of [2, 5]: only null is an options argument there
          for (const bad of name === 'zeros' ? [null] : [null, 5, 'float64']) {
            let e: unknown = null;
            try {
              torch.tidy(() => void call(bad as never));
            } catch (err) {
              e = err;
            }
            if (!(e instanceof Error)) expect.fail(`${name}(${String(bad)}) did not throw`);
            expect(e, `${name}(${String(bad)})`).toBeInstanceOf(TypeError);
            expect(e.message, name).toMatch(/^Expected an options object for options but received /);
          }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        torch.dispose([t, spd, img, w, logits, y]);
        opt.dispose();
        lin.dispose();
        ds.dispose();
      }
    });
  });
});

describe('wrong argument types and non-integers: TypeError / RangeError naming the argument, never truncated', () => {
  it('randperm, roll, flip, permute, diagonal, slice and their neighbours', () =>
    noLeak(() =>
      torch.tidy(() => {
        const m = torch.arange(0, 6, 1).reshape(2, 3);
        const cases: [string, () => unknown, typeof TypeError | typeof RangeError, string][] = [
          [
            'randperm string',
            () => torch.randperm('3' as never),
            TypeError,
            'Expected a non-negative integer for n but received "3" of type string',
          ],
          [
            'randperm fraction',
            () => torch.randperm(2.5),
            RangeError,
            'Expected a non-negative integer for n but received 2.5 of type number',
          ],
          [
            'randperm dtype string',
            () => torch.randperm(3, 'int32' as never),
            TypeError,
            'Expected an options object for options but received "int32" of type string',
          ],
          [
            'roll string shifts',
            () => m.roll('1' as never, 0),
            TypeError,
            'Expected an integer or an array of integers for shifts but received "1" of type string',
          ],
          [
            'roll fraction',
            () => m.roll(1.5, 0),
            RangeError,
            'Expected an integer for shifts but received 1.5 of type number',
          ],
          [
            'roll string dims',
            () => m.roll(1, '0' as never),
            TypeError,
            'Expected an integer or an array of integers for dims but received "0" of type string',
          ],
          [
            'roll mismatched',
            () => m.roll([1, 2], [0]),
            RangeError,
            'roll: shifts (2) and dims (1) must have the same number of entries (one shift without dims)',
          ],
          [
            'flip fraction',
            () => m.flip(0.5),
            TypeError,
            'Expected an array of integers for dims but received [0.5] of type array',
          ],
          [
            'permute string',
            () => m.permute('1' as never, 0),
            TypeError,
            'Expected an array of integers for dims but received ["1",0] of type array',
          ],
          [
            'diagonal fraction',
            () => m.diagonal(1.7),
            RangeError,
            'Expected an integer for offset but received 1.7 of type number',
          ],
          [
            'diagonal NaN dim',
            () => m.diagonal(0, NaN),
            RangeError,
            'Expected an integer for dim1 but received NaN of type number',
          ],
          [
            'slice fractional start',
            () => m.slice(1, 0.5),
            RangeError,
            'Expected an integer for start but received 0.5 of type number',
          ],
          [
            'slice Infinity end',
            () => m.slice(1, 0, Infinity),
            RangeError,
            'Expected an integer for end but received Infinity of type number',
          ],
          [
            'argmax keepdim string',
            () => m.argmax(0, 'yes' as never),
            TypeError,
            'Expected a boolean for keepdim but received "yes" of type string',
          ],
          [
            'sort descending number',
            () => m.sort(0, 1 as never),
            TypeError,
            'Expected a boolean for descending but received 1 of type number',
          ],
          [
            'topk fraction',
            () => m.topk(1.5),
            RangeError,
            'Expected a non-negative integer for k but received 1.5 of type number',
          ],
          [
            'topk largest string',
            () => m.topk(1, -1, 'no' as never),
            TypeError,
            'Expected a boolean for largest but received "no" of type string',
          ],
          [
            'max keepdim number',
            () => m.max(0, 1 as never),
            TypeError,
            'Expected a boolean for keepdim but received 1 of type number',
          ],
          [
            'arange string end',
            () => torch.arange(0, '5' as never),
            TypeError,
            'Expected a number or an options object for end but received "5" of type string',
          ],
          [
            'tril fraction',
            () => m.tril(0.5),
            RangeError,
            'Expected an integer for diagonal but received 0.5 of type number',
          ],
          [
            'linalg.eigh uplo',
            () => torch.linalg.eigh(torch.eye(2), { uplo: 'X' as never }),
            RangeError,
            "Expected one of 'L', 'U' for uplo but received \"X\" of type string",
          ],
          [
            'linalg.cholesky upper',
            () => torch.linalg.cholesky(torch.eye(2), { upper: 1 as never }),
            TypeError,
            'Expected a boolean for upper but received 1 of type number',
          ],
          [
            'zeros null options',
            () => torch.zeros(2, null as never),
            TypeError,
            'Expected an options object for options but received null of type null',
          ],
        ];
        for (const [name, fn, type, message] of cases) {
          const e = thrown(fn);
          expect(e, name).toBeInstanceOf(type);
          expect(e.message, name).toBe(message);
        }
        // the neighbours that checked already: each names its argument for 1.7, NaN and Infinity
        const neighbours: [string, (v: number) => unknown][] = [
          ['dim', (v) => m.squeeze(v)],
          ['dim', (v) => m.unsqueeze(v)],
          ['dim', (v) => m.softmax(v)],
          ['dim', (v) => m.cumsum(v)],
          ['dim', (v) => m.sum(v)],
          ['dim', (v) => m.argmax(v)],
          ['dim', (v) => m.select(v, 0)],
          ['index', (v) => m.select(0, v)],
          ['length', (v) => m.narrow(1, 0, v)],
          ['chunks', (v) => m.chunk(v)],
          ['splitSize', (v) => m.split(v)],
          ['dim0', (v) => m.transpose(v, 1)],
          ['startDim', (v) => m.flatten(v)],
          ['k', (v) => m.topk(v)],
          ['diagonal', (v) => m.triu(v)],
          ['n', (v) => torch.eye(v)],
          ['n', (v) => torch.randperm(v)],
          ['steps', (v) => torch.linspace(0, 1, v)],
          ['numSamples', (v) => torch.multinomial(torch.ones(3), v)],
          ['dim', (v) => torch.cat([m, m], v)],
          ['inFeatures', (v) => new nn.Linear(v, 2)],
          ['correction', (v) => m.var(0, { correction: v })],
        ];
        for (const [arg, fn] of neighbours)
          for (const v of [1.7, NaN, Infinity]) {
            const e = thrown(() => fn(v));
            expect(e instanceof RangeError || e instanceof TypeError, `${arg} ${v}: ${e.message}`).toBe(true);
            expect(e.message, `${arg} ${v}`).toMatch(
              new RegExp(`^Expected .* for ${arg} but received ${v} of type number$`),
            );
          }
        // what still works: negative dims for flip and permute, roll without dims (flattened, as torch.roll)
        expect(m.flip(-1).toArray()).toEqual([
          [2, 1, 0],
          [5, 4, 3],
        ]);
        expect(m.permute(-1, -2).shape).toEqual([3, 2]);
        expect(m.roll(1).toArray()).toEqual([
          [5, 0, 1],
          [2, 3, 4],
        ]);
        expect(m.roll([1, -1], [0, 1]).toArray()).toEqual([
          [4, 5, 3],
          [1, 2, 0],
        ]);
        expect(m.diagonal(1).toArray()).toEqual([1, 5]);
      }),
    ));

  it('the addon itself refuses non-integers where it reads an integer (1.7, NaN, Infinity were truncated or read as 0)', () =>
    noLeak(() =>
      torch.tidy(() => {
        const m = torch.arange(0, 9, 1).reshape(3, 3);
        for (const [v, shown] of [
          [1.7, '1.7'],
          [NaN, 'NaN'],
          [Infinity, 'Infinity'],
          [2 ** 63, '9223372036854776000'],
        ] as const) {
          const e = thrown(() => native.diagonal(m._h, v, 0, 1));
          expect(e).toBeInstanceOf(RangeError);
          expect(e.message).toBe(`expected an integer but received ${shown}`);
          // an integer array (a shape, dims) as well
          expect(() => native.reshape(m._h, [v, 1])).toThrow(
            new RangeError(`expected an integer but received ${shown}`),
          );
        }
        expect(() => native.diagonal(m._h, 'x' as never, 0, 1)).toThrow(new TypeError('expected an integer'));
        // integers still pass, up to the int64 range: an offset of -2^63 is libtorch's to judge (an empty diagonal)
        expect(m.diagonal(-(2 ** 63)).shape).toEqual([0]);
      }),
    ));
});

describe.skipIf(torch.cuda.isAvailable())('CUDA asked of a build or machine without it', () => {
  it("tensor creation, .to('cuda'), .cuda() and Module.to('cuda'): TorchError DEVICE_UNAVAILABLE, nothing changed or leaked", async () => {
    await noLeak(() => {
      const message =
        "CUDA is not available: this libtorch was built without CUDA, or no CUDA GPU and driver were found (device 'cuda' asked for). " +
        "Use device 'cpu', or build tensornormal against a CUDA libtorch (see the README, GPU); torch.cuda.isAvailable() tells beforehand";
      const t = torch.ones(2);
      const lin = new nn.Linear(2, 2);
      const calls: [string, () => unknown][] = [
        ['zeros', () => torch.zeros([2], { device: 'cuda' })],
        ['tensor', () => torch.tensor([1, 2], { device: 'cuda' })],
        ['randn', () => torch.randn([2], { device: 'cuda' })],
        ['arange', () => torch.arange(0, 3, 1, { device: 'cuda' })],
        ['to', () => t.to('cuda')],
        ['to({device})', () => t.to({ device: 'cuda' })],
        ['Linear', () => new nn.Linear(2, 2, { device: 'cuda' })],
        ['Module.to', () => lin.to('cuda')],
      ];
      for (const [name, call] of calls) {
        const e = thrown(call);
        expect(e, name).toBeInstanceOf(torch.TorchError);
        expect((e as torch.TorchError).code, name).toBe('DEVICE_UNAVAILABLE');
        expect(e.message, name).toBe(message);
      }
      expect(thrown(() => t.cuda(1)).message).toBe(message.replace("'cuda'", "'cuda:1'"));
      expect(lin.weight.device).toBe('cpu');
      t.dispose();
      lin.dispose();
    });
  });
});

describe('errors for PyTorch habits name what to do (issue 22)', () => {
  it('a shape mismatch in Linear names the layer and the input shape; image-shaped input gets the Flatten hint', () =>
    noLeak(() =>
      torch.tidy(() => {
        const fc = new nn.Linear(784, 10);
        const e = thrown(() => fc.call(torch.zeros([2, 1, 28, 28])));
        expect(e).toBeInstanceOf(torch.TorchError);
        expect((e as torch.TorchError).code).toBe('SHAPE_MISMATCH');
        const [libtorch, ours] = e.message.split('\n  ');
        expect(libtorch).toBe('mat1 and mat2 shapes cannot be multiplied (56x28 and 784x10)'); // libtorch's words first
        expect(ours).toBe(
          'Linear(in_features=784, out_features=10, bias=True) was called with [2, 1, 28, 28] float32: Linear expects ' +
            "inputs of shape [*, 784] (in_features = 784), but the input's last dimension is 28. Image-shaped input " +
            '([N, C, H, W] or [N, H, W]): flatten it first, with new nn.Flatten() before this layer or x.flatten(1), ' +
            'which gives [2, 784] (it fits)',
        );
        expect(e.stack).toContain('nn.Flatten()');
        // the hint is right: flattened, the same input goes through
        expect(fc.call(torch.zeros([2, 1, 28, 28]).flatten(1)).shape).toEqual([2, 10]);
        // inside a Sequential the innermost layer is named, once
        const net = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(5, 2));
        const s = thrown(() => net.call(torch.zeros([2, 4])));
        expect(s.message).toContain(
          '\n  Linear(in_features=5, out_features=2, bias=True) was called with [2, 3] float32',
        );
        expect(s.message).toContain(
          "the input's last dimension is 3 (the layer before it, or the data, gives 3 features)",
        );
        expect(s.message.split('was called with').length).toBe(2);
        expect(s.message).not.toContain('Flatten');
        fc.dispose();
        net.dispose();
      }),
    ));

  it('Conv2d: the wrong channel count, channels-last images, flat pixels', () =>
    noLeak(() =>
      torch.tidy(() => {
        const conv = new nn.Conv2d(3, 8, 3);
        const c = thrown(() => conv.call(torch.zeros([2, 1, 28, 28])));
        expect((c as torch.TorchError).code).toBe('SHAPE_MISMATCH');
        expect(c.message).toMatch(/^Given groups=1, weight of size \[8, 3, 3, 3\]/);
        expect(c.message).toContain(
          'Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)) was called with [2, 1, 28, 28] float32: Conv2d expects 3 channels (in_channels) in dimension 1, but the input has 1',
        );
        expect(thrown(() => conv.call(torch.zeros([2, 32, 32, 3]))).message).toContain(
          'it looks channels-last [N, H, W, C]; x.permute([0, 3, 1, 2]) makes it [N, C, H, W]',
        );
        expect(thrown(() => conv.call(torch.zeros([2, 3 * 28 * 28]))).message).toContain(
          'Conv2d expects images [N, C, H, W] (or one image [C, H, W]), but the input has 2 dimension(s): reshape flat pixels first',
        );
        conv.dispose();
      }),
    ));

  it('a float64 input to a float32 model says so, for Linear and Conv2d', () =>
    noLeak(() =>
      torch.tidy(() => {
        const fc = new nn.Linear(4, 3);
        const e = thrown(() => fc.call(torch.zeros([2, 4], { dtype: 'float64' })));
        expect((e as torch.TorchError).code).toBe('DTYPE_MISMATCH');
        expect(e.message).toContain(
          "was called with [2, 4] float64: the input is float64 but the layer's parameters are float32: convert the input (x.to('float32')",
        );
        expect(e.message).toContain("or the model (model.to('float64'))");
        const conv = new nn.Conv2d(1, 2, 3);
        const c = thrown(() => conv.call(torch.zeros([1, 1, 5, 5], { dtype: 'float64' })));
        expect(c.message).toContain("the input is float64 but the layer's parameters are float32");
        // the advice works both ways
        expect(fc.call(torch.zeros([2, 4], { dtype: 'float64' }).to('float32')).dtype).toBe('float32');
        fc.to('float64');
        expect(fc.call(torch.zeros([2, 4], { dtype: 'float64' })).dtype).toBe('float64');
        fc.dispose();
        conv.dispose();
      }),
    ));

  it('Module.call refuses a non-tensor, naming the module; calling a module as a function is a TypeError', () =>
    noLeak(() => {
      const fc = new nn.Linear(4, 3);
      const a = thrown(() => fc.call([[1, 2, 3, 4]] as never));
      expect(a).toBeInstanceOf(TypeError);
      expect(a.message).toBe(
        'Expected a Tensor for input but received [[1,2,3,4]] of type array\n  Linear.call expects a Tensor as its ' +
          'input but received an array (1 elements) (make one from nested arrays with torch.tensor(data), float32 by default)',
      );
      const net = new nn.Sequential(fc);
      expect(thrown(() => net.call(undefined as never)).message).toContain(
        'Linear.call expects a Tensor as its input but received undefined (was an input left out, or is a call missing its return?)',
      );
      // PyTorch's model(x): modules are objects, not functions. TypeScript refuses it at compile time (the line
      // below fails to type-check without the directive); JavaScript throws V8's TypeError.
      const asFunction = (): unknown =>
        // @ts-expect-error -- "This expression is not callable": use fc.call(x)
        torch.tidy(() => fc(torch.zeros([1, 4])));
      expect(asFunction).toThrow(TypeError);
      net.dispose();
    }));

  it("libtorch's messages use this library's option names (retainGraph, not retain_graph)", () =>
    noLeak(() =>
      torch.tidy(() => {
        const x = torch.ones([2], { requiresGrad: true });
        const y = x.mul(x).sum();
        y.backward();
        const e = thrown(() => y.backward());
        expect((e as torch.TorchError).code).toBe('AUTOGRAD');
        expect(e.message).toContain('Pass { retainGraph: true } to backward() or autograd.grad() if you need to');
        expect(e.message).not.toContain('retain_graph');
        // and the option it names is the one that works
        const z = x.mul(x).sum();
        z.backward({ retainGraph: true });
        z.backward();
        expect(x.grad!.toArray()).toEqual([6, 6]); // d/dx sum(x^2) = 2x = 2, three backward passes
        const g = thrown(() => torch.grad(x.mul(2).sum(), torch.ones([1], { requiresGrad: true })));
        expect(g.message).toContain('Pass { allowUnused: true } to autograd.grad()');
        expect(jsOptionNames('Set create_graph=True and call .retain_grad() under torch.no_grad()')).toBe(
          'Set { createGraph: true } and call .retainGrad() under noGrad()',
        );
      }),
    ));
});
