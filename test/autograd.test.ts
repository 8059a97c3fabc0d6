import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { expectClose, libtorchSays, scoped, expectTorchError } from './support/helpers.js';
import { T, rnd, nd } from './support/reference.js';

const F = torch.nn.functional;
const L = torch.linalg;
const { gradcheck } = torch.autograd;
type Tn = torch.Tensor;

/** A float64 leaf requiring grad, with LCG values in [lo, hi). */
const leaf = (shape: number[], seed: number, lo = -1, hi = 1): Tn =>
  T(rnd(shape, seed, lo, hi), { requiresGrad: true });
const f64 = (data: number[] | number[][], requiresGrad = false): Tn =>
  torch.tensor(data, { dtype: 'float64', requiresGrad });

describe('backward', () => {
  it('a non-scalar output takes the gradient argument (vector-Jacobian product)', () =>
    scoped(() => {
      const x = f64([1, 2, 3], true);
      const y = x.mul(f64([2, -1, 4])).add(x.square()); // dy_i/dx_i = c_i + 2 x_i
      y.backward(f64([1, 0.5, -2]));
      expectClose(x.grad!, [1 * (2 + 2), 0.5 * (-1 + 4), -2 * (4 + 6)], { atol: 1e-12, rtol: 0 });
      expect(x.isLeaf).toBe(true);
      expect(y.isLeaf).toBe(false);
      expect(y.gradFn).toBe('AddBackward0');
      // a number operand is wrapped as Python wraps one: the Tensor overloads' nodes, as PyTorch 1.13 and 2.x print
      // for x + 2, x - 2, x * 2, x / 2, and Python-number promotion (int64 * 2.5 is float32, float16 * 1e5 float16)
      expect([x.add(2), x.sub(2), x.mul(2), x.div(2)].map((t) => t.gradFn)).toEqual([
        'AddBackward0',
        'SubBackward0',
        'MulBackward0',
        'DivBackward0',
      ]);
      expect(torch.tensor([1, 2], { dtype: 'int64' }).mul(2.5).dtype).toBe('float32');
      expect(torch.ones([2], { dtype: 'float16' }).mul(1e5).dtype).toBe('float16');
    }));
  it('gradients accumulate into .grad across backward calls; setting null clears', () =>
    scoped(() => {
      const x = f64([1, -2], true);
      torch.tidy(() => x.mul(x).sum().backward());
      expectClose(x.grad!, [2, -4], { atol: 0, rtol: 0 });
      const g = x.grad;
      expect(x.grad).toBe(g); // the same wrapper while libtorch keeps the same gradient tensor
      torch.tidy(() => x.mul(3).sum().backward());
      expectClose(x.grad!, [5, -1], { atol: 0, rtol: 0 });
      x.grad = null;
      expect(x.grad).toBe(null);
      torch.tidy(() => x.sum().backward());
      expectClose(x.grad!, [1, 1], { atol: 0, rtol: 0 });
      x.grad!.zero_();
      expectClose(x.grad!, [0, 0], { atol: 0, rtol: 0 });
    }));
  it('retainGraph allows a second backward; without it the second one fails with AUTOGRAD', () =>
    scoped(() => {
      const x = f64([1, 2, 3], true);
      const z = x.sin().sum();
      z.backward(null, { retainGraph: true });
      z.backward();
      expectClose(
        x.grad!,
        [1, 2, 3].map((v) => 2 * Math.cos(v)),
        { atol: 1e-15, rtol: 1e-15 },
      );
      expectTorchError(() => z.backward(), 'AUTOGRAD', /^Trying to backward through the graph a second time/);
    }));
  it('retainGrad keeps the gradient of a non-leaf', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      const h = x.mul(3).retainGrad();
      h.square().sum().backward();
      expectClose(h.grad!, [6, 12], { atol: 0, rtol: 0 });
      expectClose(x.grad!, [18, 36], { atol: 0, rtol: 0 });
    }));
});

describe('grad()', () => {
  it('does not touch .grad and takes gradOutputs', () =>
    scoped(() => {
      const x = f64([1, 2, 3], true);
      const y = x.square();
      const [g] = torch.grad(y, x, { gradOutputs: f64([1, -1, 0.5]) });
      expectClose(g!, [2, -4, 3], { atol: 0, rtol: 0 });
      expect(x.grad).toBe(null);
    }));
  it('createGraph gives differentiable gradients: second derivative of x^3 is 6x', () =>
    scoped(() => {
      const x = f64([-1.5, 0.5, 2], true);
      const y = x.pow(3);
      const [dy] = torch.grad(y, x, { gradOutputs: torch.onesLike(y), createGraph: true });
      expectClose(
        dy!,
        [-1.5, 0.5, 2].map((v) => 3 * v * v),
        { atol: 1e-12, rtol: 0 },
      );
      expect(dy!.requiresGrad).toBe(true);
      const [d2] = torch.grad(dy!.sum(), x);
      expectClose(
        d2!,
        [-1.5, 0.5, 2].map((v) => 6 * v),
        { atol: 1e-12, rtol: 0 },
      );
      // several outputs and inputs at once
      const a = f64([2], true),
        b = f64([3], true);
      const [ga, gb] = torch.grad([a.mul(b), a.square()], [a, b]);
      expectClose(ga!, [3 + 4], { atol: 0, rtol: 0 });
      expectClose(gb!, [2], { atol: 0, rtol: 0 });
    }));
  it('allowUnused returns null for an input the output does not depend on', () =>
    scoped(() => {
      const x = f64([1], true),
        unused = f64([1], true);
      const [gx, gu] = torch.grad(x.mul(2).sum(), [x, unused], { allowUnused: true });
      expectClose(gx!, [2], { atol: 0, rtol: 0 });
      expect(gu).toBe(null);
    }));
});

describe('noGrad, enableGrad, detach', () => {
  it('noGrad records nothing and restores the mode, also after a throw', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      expect(torch.isGradEnabled()).toBe(true);
      const y = torch.noGrad(() => {
        expect(torch.isGradEnabled()).toBe(false);
        const inner = torch.enableGrad(() => x.mul(2));
        expect(inner.requiresGrad).toBe(true);
        return x.mul(2);
      });
      expect(y.requiresGrad).toBe(false);
      expect(y.gradFn).toBe(null);
      expect(torch.isGradEnabled()).toBe(true);
      expect(() =>
        torch.noGrad(() => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(torch.isGradEnabled()).toBe(true);
      // in-place updates of a leaf are allowed under noGrad (what optimizers do)
      torch.noGrad(() => x.sub_(1));
      expect(x.dataSync()).toEqual([0, 1]);
    }));
  it('detach shares storage but leaves the graph; detach_ detaches in place', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      const y = x.mul(2);
      const d = y.detach();
      expect([d.requiresGrad, d.gradFn, d.isLeaf]).toEqual([false, null, true]);
      d.fill_(7);
      expect(y.dataSync()).toEqual([7, 7]);
      const z = x.mul(3);
      expect(z.detach_()).toBe(z);
      expect(z.requiresGrad).toBe(false);
      // the detached branch contributes nothing to the gradient
      x.mul(d).add(x).sum().backward();
      expectClose(x.grad!, [8, 8], { atol: 0, rtol: 0 });
    }));
});

/** One gradcheck case: a function of float64 leaves and the leaves. */
type Case = [name: string, fn: (...xs: Tn[]) => Tn, inputs: () => Tn[]];

function runCases(cases: Case[]): void {
  for (const [name, fn, inputs] of cases)
    it(name, () =>
      scoped(() => {
        const worst = gradcheck(fn, inputs());
        expect(worst).toBeLessThan(1e-6);
      }),
    );
}

describe('gradcheck: unary math and activations', () => {
  runCases([
    [
      'exp, log, sqrt, rsqrt',
      (x) => x.exp().add(x.log()).add(x.sqrt()).add(x.rsqrt()),
      () => [leaf([2, 3], 1, 0.3, 2)],
    ],
    [
      'log1p, expm1, log2, log10, reciprocal',
      (x) => x.log1p().mul(x.expm1()).add(x.log2()).add(x.log10()).add(x.reciprocal()),
      () => [leaf([5], 2, 0.3, 2)],
    ],
    ['sin, cos, tan, erf', (x) => x.sin().add(x.cos()).add(x.tan()).add(x.erf()), () => [leaf([2, 3], 3)]],
    [
      'abs, neg, square, pow scalar',
      (x) => x.abs().sub(x.neg()).add(x.square()).add(x.abs().pow(2.5)),
      () => [leaf([6], 4)],
    ],
    [
      'sigmoid, tanh, relu, silu, softplus, logSigmoid',
      (x) => x.sigmoid().add(x.tanh()).add(x.relu()).add(x.silu()).add(x.softplus()).add(x.logSigmoid()),
      () => [leaf([2, 3], 5, -2, 2)],
    ],
    [
      'gelu (exact and tanh), leakyRelu, elu',
      (x) =>
        x
          .gelu()
          .add(x.gelu({ approximate: 'tanh' }))
          .add(x.leakyRelu(0.1))
          .add(F.elu(x, 0.7)),
      () => [leaf([2, 3], 6, -2, 2)],
    ],
    ['clamp (away from the bounds)', (x) => x.clamp(-0.5, 0.5), () => [f64([-0.9, -0.2, 0.1, 0.3, 0.8], true)]],
    ['softmax and logSoftmax', (x) => x.softmax(1).add(x.logSoftmax(0)), () => [leaf([3, 4], 7, -2, 2)]],
  ]);
});

describe('gradcheck: binary ops with broadcasting', () => {
  runCases([
    [
      'add, sub (alpha), mul, div: (2,3) with (3)',
      (a, b) => a.add(b).mul(a.sub(b, 2)).div(b),
      () => [leaf([2, 3], 10), leaf([3], 11, 0.5, 2)],
    ],
    [
      'pow(tensor, tensor) with (2,1) and (1,3)',
      (a, b) => a.pow(b),
      () => [leaf([2, 1], 12, 0.5, 2), leaf([1, 3], 13)],
    ],
    [
      'maximum, minimum, atan2',
      (a, b) => a.maximum(b).add(a.minimum(b)).add(a.atan2(b)),
      () => [leaf([2, 3], 14), leaf([3], 15)],
    ],
    ['rsub, scalar ops', (a) => a.rsub(2).mul(3).div(4).add(1).sub(0.5), () => [leaf([4], 16)]],
    ['where', (a, b) => torch.where(f64([1, 0, 1]).gt(0), a, b), () => [leaf([2, 3], 17), leaf([3], 18)]],
  ]);
});

describe('gradcheck: reductions', () => {
  runCases([
    [
      'sum and mean with dims and keepdim',
      (x) =>
        x
          .sum(1)
          .add(x.mean([0, 2], false).sum())
          .add(x.sum(null, true).squeeze()),
      () => [leaf([2, 3, 2], 20)],
    ],
    [
      'max/min values, amax, amin',
      (x) =>
        x
          .max(1)[0]
          .add(x.min(0)[0].sum())
          .add(x.amax(1))
          .add(x.amin([0, 1])),
      () => [leaf([3, 4], 21)],
    ],
    [
      'var and std (both corrections)',
      (x) =>
        x
          .var(1)
          .add(x.std(0).sum())
          .add(x.var(null, { correction: 0 }))
          .add(x.std(1, { correction: 0 })),
      () => [leaf([3, 4], 22)],
    ],
    ['norm p = 2, 1, 3', (x) => x.norm().add(x.norm(1, 1)).add(x.norm(3, 0).sum()), () => [leaf([3, 4], 23)]],
    [
      'prod, logsumexp, cumsum',
      (x) => x.prod(1).add(x.logsumexp(1)).add(x.cumsum(1).sum(1)),
      () => [leaf([3, 4], 24, 0.5, 1.5)],
    ],
  ]);
});

describe('gradcheck: matrix products', () => {
  runCases([
    ['matmul with batch broadcasting', (a, b) => a.matmul(b), () => [leaf([2, 1, 2, 3], 30), leaf([3, 3, 2], 31)]],
    [
      'mm, mv, dot, outer',
      (a, b, v) =>
        a
          .mm(b)
          .sum(1)
          .add(a.mv(v))
          .add(v.dot(v))
          .add(torch.outer(v, v).sum(0).narrow(0, 0, 2)),
      () => [leaf([2, 3], 32), leaf([3, 4], 33), leaf([3], 34)],
    ],
    ['bmm', (a, b) => a.bmm(b), () => [leaf([2, 2, 3], 35), leaf([2, 3, 2], 36)]],
    [
      'tensordot and einsum',
      (a, b) =>
        torch
          .tensordot(a, b, [
            [1, 2],
            [0, 1],
          ])
          .add(torch.einsum('ijk,jkl->il', a, b)),
      () => [leaf([2, 3, 2], 37), leaf([3, 2, 2], 38)],
    ],
  ]);
});

describe('gradcheck: shape ops', () => {
  runCases([
    [
      'reshape, view, transpose, permute, flatten',
      (x) =>
        x
          .reshape(3, 4)
          .transpose(0, 1)
          .mul(x.view(4, 3))
          .add(x.permute(2, 0, 1).flatten().view(4, 3)),
      () => [leaf([2, 3, 2], 40)],
    ],
    [
      'squeeze, unsqueeze, expand',
      (x) => x.unsqueeze(0).expand(3, 2, 1, 3).squeeze(2).mul(x.squeeze()),
      () => [leaf([2, 1, 3], 41)],
    ],
    [
      'cat and stack',
      (a, b) => torch.cat([a, b.square()], 1).add(torch.stack([a, a.neg()], 2).sum(2).repeat(1, 3).narrow(1, 0, 5)),
      () => [leaf([2, 2], 42), leaf([2, 3], 43)],
    ],
    [
      'split, chunk, narrow',
      (x) => {
        const [p, q] = x.split([1, 2], 1) as [Tn, Tn];
        const [r, s] = x.chunk(2, 0) as [Tn, Tn];
        return p
          .mul(q.narrow(1, 1, 1))
          .sum()
          .add(r.sum())
          .sub(s.square().sum());
      },
      () => [leaf([4, 3], 44)],
    ],
    [
      'indexSelect and gather (repeated indices accumulate)',
      (x) =>
        x
          .indexSelect(0, torch.tensor([2, 0, 2], { dtype: 'int64' }))
          .sum(0)
          .add(
            x
              .gather(
                1,
                torch.tensor(
                  [
                    [1, 1],
                    [0, 2],
                    [2, 2],
                  ],
                  { dtype: 'int64' },
                ),
              )
              .sum(1),
          ),
      () => [leaf([3, 3], 45)],
    ],
    [
      'index() with slices, "...", a tensor index and a mask; flip, select',
      (x) =>
        x
          .index(null, [1, 3])
          .sum(1)
          .add(x.index('...', 0))
          .add(x.index(torch.tensor([1, 1, 0], { dtype: 'int64' })).sum(1))
          .add(
            x
              .index(torch.tensor([true, false, true]))
              .sum()
              .mul(x.flip(0).select(1, 2)),
          ),
      () => [leaf([3, 4], 46)],
    ],
  ]);
});

describe('gradcheck: layers and losses', () => {
  const target = (): Tn => torch.tensor([2, 0, 1], { dtype: 'int64' });
  runCases([
    [
      'linear (input, weight, bias)',
      (x, w, b) => F.linear(x, w, b),
      () => [leaf([2, 3], 50), leaf([4, 3], 51), leaf([4], 52)],
    ],
    [
      'conv2d with stride, padding, dilation, bias',
      (x, w, b) => F.conv2d(x, w, b, { stride: [2, 1], padding: 1, dilation: [1, 2] }),
      () => [leaf([1, 2, 4, 5], 53), leaf([2, 2, 2, 2], 54), leaf([2], 55)],
    ],
    [
      'conv2d with groups',
      (x, w) => F.conv2d(x, w, null, { groups: 2, padding: 1 }),
      () => [leaf([1, 4, 3, 3], 56), leaf([2, 2, 2, 2], 57)],
    ],
    [
      'maxPool2d (padding, stride)',
      (x) => F.maxPool2d(x, 2, { stride: 1, padding: 1 }),
      () => [leaf([1, 2, 3, 3], 58)],
    ],
    [
      'avgPool2d (count_include_pad off, ceil mode)',
      (x) => F.avgPool2d(x, 2, { stride: 2, padding: 1, countIncludePad: false, ceilMode: true }),
      () => [leaf([1, 2, 4, 3], 59)],
    ],
    ['adaptiveAvgPool2d', (x) => F.adaptiveAvgPool2d(x, [2, 3]), () => [leaf([1, 2, 3, 4], 60)]],
    [
      'batchNorm training (input, weight, bias)',
      (x, w, b) => F.batchNorm(x, null, null, { weight: w, bias: b, training: true, eps: 1e-3 }),
      () => [leaf([3, 2, 2, 2], 61), leaf([2], 62, 0.5, 1.5), leaf([2], 63)],
    ],
    [
      'batchNorm evaluation with running stats',
      (x) => F.batchNorm(x, f64([0.1, -0.2]), f64([0.5, 2]), {}),
      () => [leaf([3, 2], 64)],
    ],
    [
      'crossEntropy (weights, label smoothing)',
      (x) =>
        F.crossEntropy(x, target(), { weight: f64([0.5, 1, 2]) }).add(
          F.crossEntropy(x, target(), { labelSmoothing: 0.1, reduction: 'sum' }),
        ),
      () => [leaf([3, 3], 65, -2, 2)],
    ],
    ['nllLoss', (x) => F.nllLoss(x.logSoftmax(1), target(), { reduction: 'none' }), () => [leaf([3, 3], 66)]],
    [
      'binaryCrossEntropyWithLogits (input and target, posWeight)',
      (x, t) => F.binaryCrossEntropyWithLogits(x, t, { posWeight: f64([1.5, 0.5, 2]) }),
      () => [leaf([2, 3], 67, -2, 2), leaf([2, 3], 68, 0.1, 0.9)],
    ],
    [
      'mseLoss, l1Loss, smoothL1Loss',
      (x, y) =>
        F.mseLoss(x, y)
          .add(F.l1Loss(x, y, { reduction: 'sum' }))
          .add(F.smoothL1Loss(x, y, { beta: 0.5 })),
      () => [leaf([2, 3], 69), leaf([2, 3], 70)],
    ],
  ]);
});

describe('gradcheck: linear algebra', () => {
  // symmetric positive definite inputs are built inside fn so that finite differences stay in the SPD set
  const eye = (n: number): Tn => torch.eye(n, { dtype: 'float64' });
  const spd = (x: Tn): Tn => x.matmul(x.mT).add(eye(x.shape[0]!));
  runCases([
    ['cholesky (of X X^T + I)', (x) => L.cholesky(spd(x)), () => [leaf([3, 3], 80)]],
    [
      'cholesky upper and choleskyInverse',
      (x) => L.choleskyInverse(L.cholesky(spd(x), { upper: true }), { upper: true }),
      () => [leaf([3, 3], 81)],
    ],
    [
      'inv',
      (a) => L.inv(a),
      () => [
        T(
          nd([3, 3], (k, [i, j]) => rnd([9], 82).data[k]! + (i === j ? 2 : 0)),
          { requiresGrad: true },
        ),
      ],
    ],
    [
      'solve (A and B)',
      (a, b) => L.solve(a, b),
      () => [
        T(
          nd([3, 3], (k, [i, j]) => rnd([9], 83).data[k]! + (i === j ? 2 : 0)),
          { requiresGrad: true },
        ),
        leaf([3, 2], 84),
      ],
    ],
    ['eigh eigenvalues and det', (x) => L.eigh(x.add(x.mT)).eigenvalues.add(L.det(spd(x))), () => [leaf([3, 3], 85)]],
  ]);
});

describe('gradcheck: the other differentiable ops', () => {
  const eye = (n: number): Tn => torch.eye(n, { dtype: 'float64' });
  const spd = (x: Tn): Tn => x.matmul(x.mT).add(eye(x.shape[0]!));
  const i64 = (v: number[] | number[][]): Tn => torch.tensor(v, { dtype: 'int64' });
  runCases([
    [
      'layerNorm (input, weight, bias)',
      (x, w, b) => F.layerNorm(x, [3], w, b),
      () => [leaf([2, 3], 90), leaf([3], 91, 0.5, 1.5), leaf([3], 92)],
    ],
    [
      'embedding (repeated rows accumulate)',
      (w) =>
        F.embedding(
          i64([
            [0, 2],
            [2, 1],
          ]),
          w,
        ),
      () => [leaf([3, 4], 93)],
    ],
    [
      'unfold (im2col with padding and stride)',
      (x) => F.unfold(x, 2, { padding: 1, stride: 2 }),
      () => [leaf([1, 2, 3, 3], 94)],
    ],
    [
      'interpolate bilinear (down and up)',
      (x) =>
        F.interpolate(x, [3, 5])
          .sum()
          .add(F.interpolate(x, 2, { alignCorners: true }).sum()),
      () => [leaf([1, 1, 4, 4], 95)],
    ],
    ['pad (constant)', (x) => F.pad(x, [1, 2, 0, 1], 0.5).square(), () => [leaf([1, 2, 3], 96)]],
    ['cumsum, cumprod', (x) => x.cumsum(1).add(x.cumprod(1)), () => [leaf([2, 4], 97, 0.5, 1.5)]],
    [
      'sort and topk values (distinct entries)',
      (x) =>
        x
          .sort(1)[0]
          .mul(f64([1, 2, 3, 4]))
          .sum(1)
          .add(x.topk(2, 1)[0].sum(1)),
      () => [
        f64(
          [
            [0.3, -1.2, 2.5, 0.7],
            [1.1, 0.2, -0.4, 3.3],
          ],
          true,
        ),
      ],
    ],
    [
      'scatter (src) and maskedFill',
      (x, src) =>
        x
          .scatter(
            1,
            i64([
              [2, 0],
              [1, 3],
            ]),
            src,
          )
          .add(
            x.maskedFill(
              torch.tensor([
                [true, false, false, true],
                [false, true, false, false],
              ]),
              2,
            ),
          ),
      () => [leaf([2, 4], 98), leaf([2, 2], 99)],
    ],
    [
      'tril, triu, diag, trace, roll',
      (x) => x.tril(-1).add(x.triu(1).mul(2)).add(x.roll(1, 0)).sum(0).add(x.diag()).add(x.trace()),
      () => [leaf([3, 3], 100)],
    ],
    [
      'xlogy, remainder and fmod by a number (away from the jumps)',
      (x, y) => x.xlogy(y).add(x.remainder(2)).add(x.fmod(2)),
      () => [f64([0.3, 0.7, 1.2, 2.6], true), leaf([4], 101, 0.5, 2)],
    ],
    [
      'binaryCrossEntropy (probabilities and targets)',
      (p, t) => F.binaryCrossEntropy(p, t),
      () => [leaf([2, 3], 102, 0.1, 0.9), leaf([2, 3], 103, 0.1, 0.9)],
    ],
    [
      'svd: singular values and sign-free singular vectors',
      (a) => {
        const { U, S, Vh } = L.svd(a, { fullMatrices: false });
        return S.sum().add(U.square().sum(1).mul(S)).add(Vh.square().sum(0));
      },
      () => [
        f64(
          [
            [3, 1, 0.5],
            [0.2, 2, 0.3],
            [0.1, 0.4, 1],
          ],
          true,
        ),
      ],
    ],
    [
      'qr',
      (a) => {
        const { Q, R } = L.qr(a);
        return Q.sum(0).add(R.sum(1));
      },
      () => [
        T(
          nd([3, 3], (k, [i, j]) => rnd([9], 104).data[k]! + (i === j ? 3 : 0)),
          { requiresGrad: true },
        ),
      ],
    ],
    ['slogdet, matrixNorm', (a) => L.slogdet(spd(a)).logabsdet.add(L.matrixNorm(a)), () => [leaf([3, 3], 105)]],
    [
      'choleskySolve (B and the factor)',
      (x, b) => L.choleskySolve(b, L.cholesky(spd(x))),
      () => [leaf([3, 3], 106), leaf([3, 2], 107)],
    ],
    [
      'eigvalsh, and eigh eigenvectors (sign-free)',
      (x) => {
        const s = x.add(x.mT);
        const { eigenvalues, eigenvectors } = L.eigh(s);
        return L.eigvalsh(s).add(eigenvectors.square().mul(eigenvalues).sum(0));
      },
      () => [
        f64(
          [
            [2, 0.3, 0.1],
            [0.2, -1, 0.4],
            [0.1, 0.5, 0.5],
          ],
          true,
        ),
      ],
    ],
  ]);
});

describe('gradcheck itself', () => {
  it('fails on a wrong gradient (a dependency hidden from autograd by detach)', () =>
    scoped(() => {
      // f(x) = x * x, but one factor is detached: autograd says x where the truth is 2x
      const wrong = (x: Tn): Tn => x.detach().mul(x);
      expect(() => gradcheck(wrong, [f64([1, 2, 3], true)])).toThrow(
        /^gradcheck\(\): input 0 element 0: analytic 0\.\d+ vs numeric \d\.\d+ \(error \d\.\d+\)$/,
      );
      // and a dependency computed under noGrad is invisible too
      const hidden = (x: Tn): Tn => x.add(torch.noGrad(() => x.square()));
      expect(() => gradcheck(hidden, [f64([0.5, -1.5], true)])).toThrow(/^gradcheck\(\): input 0 element 0/);
      // while the honest version passes
      expect(gradcheck((x) => x.mul(x), [f64([1, 2, 3], true)])).toBeLessThan(1e-7);
    }));
  it('checks the gradient of every input, not only the first', () =>
    scoped(() => {
      const wrongInB = (a: Tn, b: Tn): Tn => a.mul(b.detach()).add(b.detach().square());
      expect(() => gradcheck(wrongInB, [f64([1, 2], true), f64([3, 4], true)])).toThrow(
        /^gradcheck\(\): input 1 element 0/,
      );
    }));
  it('refuses float32 inputs and inputs without requiresGrad', () =>
    scoped(() => {
      expect(() => gradcheck((a) => a.mul(2), [torch.ones([2], { requiresGrad: true })])).toThrow(
        new TypeError('gradcheck(): inputs[0] must be float64 (got float32)'),
      );
      expect(() => gradcheck((a) => a.mul(2), [torch.ones([2], { dtype: 'float64' })])).toThrow(
        new TypeError('gradcheck(): inputs[0] must have requiresGrad'),
      );
      expect(() => gradcheck((a) => a, [3 as never])).toThrow(
        new TypeError('Expected a Tensor for inputs[0] but received 3 of type number'),
      );
    }));
});

describe('invalid arguments and autograd errors', () => {
  it('backward of a non-scalar without a gradient, or of a tensor outside the graph -> AUTOGRAD', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      expectTorchError(() => x.mul(2).backward(), 'AUTOGRAD', 'grad can be implicitly created only for scalar outputs');
      expectTorchError(
        () => f64([1, 2]).sum().backward(),
        'AUTOGRAD',
        'element 0 of tensors does not require grad and does not have a grad_fn',
      );
    }));
  it('in-place on a leaf that requires grad, and on a saved tensor -> AUTOGRAD', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      expectTorchError(
        () => x.add_(1),
        'AUTOGRAD',
        'a leaf Variable that requires grad is being used in an in-place operation.',
      );
      const y = x.mul(1);
      const w = y.mul(y); // saves y
      y.add_(1);
      expectTorchError(
        () => w.sum().backward(),
        'AUTOGRAD',
        /^one of the variables needed for gradient computation has been modified by an inplace operation/,
      );
    }));
  it('an unused input without allowUnused -> TorchError', () =>
    scoped(() => {
      const x = f64([1], true);
      expectTorchError(
        () => torch.grad(x.mul(2).sum(), f64([1], true)),
        null,
        libtorchSays(
          'One of the differentiated Tensors appears to not have been used in the graph. Pass { allowUnused: true } to autograd.grad() if this is the desired behavior.',
          'element 0of the differentiated Tensors appears to not have been used in the graph. Pass { allowUnused: true } to autograd.grad() if this is the desired behavior.',
        ),
      );
    }));
  it('TypeErrors and RangeErrors from the TypeScript checks', () =>
    scoped(() => {
      const x = f64([1, 2], true);
      expect(() => x.backward('g' as never)).toThrow(
        new TypeError('Expected a Tensor for gradient but received "g" of type string'),
      );
      expect(() => torch.grad([], x)).toThrow(
        new TypeError('Expected a Tensor or a non-empty array of Tensors for outputs but received [] of type array'),
      );
      expect(() => torch.grad(x.sum(), [1] as never)).toThrow(
        new TypeError('Expected a Tensor or a non-empty array of Tensors for inputs but received [1] of type array'),
      );
      expect(() => torch.grad(x.sum(), x, { gradOutputs: [f64([1]), f64([1])] })).toThrow(
        new RangeError('grad(): gradOutputs has 2 entries for 1 outputs'),
      );
      expect(() => torch.grad(x.sum(), x, { gradOutputs: ['a' as never] })).toThrow(
        new TypeError('Expected a Tensor or null for gradOutputs[0] but received "a" of type string'),
      );
      expect(() => torch.noGrad(5 as never)).toThrow(
        new TypeError('Expected a function for fn but received 5 of type number'),
      );
      expect(() => torch.noGrad(async () => 1)).toThrow(
        new TypeError('noGrad()/enableGrad() are synchronous: fn returned a Promise'),
      );
      expect(torch.isGradEnabled()).toBe(true);
      expect(() => {
        x.grad = 'g' as never;
      }).toThrow(new TypeError('Expected a Tensor or null for grad but received "g" of type string'));
      expect(() => {
        x.requiresGrad = 1 as never;
      }).toThrow(new TypeError('Expected a boolean for requiresGrad but received 1 of type number'));
    }));
});
