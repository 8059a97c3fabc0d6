import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { noLeak } from './support/helpers.js';

/**
 * Expected strings: repr() of the same tensors in PyTorch 1.13, printed by test/reference/format_cases.py
 * (`/usr/bin/python3 test/reference/format_cases.py`) and pasted here unchanged.
 */
const EXPECTED: Record<string, string> = {
  int_mode: 'tensor([ 1.,  2., -3.])',
  fixed: 'tensor([[ 1.5000, -2.2500],\n        [ 3.1250,  0.1000]])',
  scientific: 'tensor([1.0000e-05, 1.0000e+00, 1.2346e+04])',
  negative: 'tensor([ -0.5000, -12.7500,   3.0000])',
  bool: 'tensor([ True, False,  True])',
  int64: 'tensor([  1, -20, 300])',
  int32: 'tensor([ 7, -8], dtype=torch.int32)',
  float64: 'tensor([ 0.5000,  1.2500, -2.0000], dtype=torch.float64)',
  float16: 'tensor([0.5000, 1.7500], dtype=torch.float16)',
  requires_grad: 'tensor([1.0000, 2.5000], requires_grad=True)',
  grad_fn: 'tensor([1.0000, 6.2500], grad_fn=<MulBackward0>)',
  grad_fn_sum: 'tensor(7.2500, grad_fn=<SumBackward0>)',
  zero_d: 'tensor(3.5000)',
  zero_d_int: 'tensor(7)',
  empty: 'tensor([])',
  empty_2d: 'tensor([], size=(0, 3))',
  empty_int64: 'tensor([], dtype=torch.int64)',
  summarised_1d: 'tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])',
  summarised_2d:
    'tensor([[0.0000e+00, 1.2500e-01, 2.5000e-01,  ..., 5.8750e+00, 6.0000e+00,\n         6.1250e+00],\n        [6.2500e+00, 6.3750e+00, 6.5000e+00,  ..., 1.2125e+01, 1.2250e+01,\n         1.2375e+01],\n        [1.2500e+01, 1.2625e+01, 1.2750e+01,  ..., 1.8375e+01, 1.8500e+01,\n         1.8625e+01],\n        ...,\n        [2.3125e+02, 2.3138e+02, 2.3150e+02,  ..., 2.3712e+02, 2.3725e+02,\n         2.3738e+02],\n        [2.3750e+02, 2.3762e+02, 2.3775e+02,  ..., 2.4338e+02, 2.4350e+02,\n         2.4362e+02],\n        [2.4375e+02, 2.4388e+02, 2.4400e+02,  ..., 2.4962e+02, 2.4975e+02,\n         2.4988e+02]])',
  three_d:
    'tensor([[[0.0000, 0.2500, 0.5000, 0.7500],\n         [1.0000, 1.2500, 1.5000, 1.7500],\n         [2.0000, 2.2500, 2.5000, 2.7500]],\n\n        [[3.0000, 3.2500, 3.5000, 3.7500],\n         [4.0000, 4.2500, 4.5000, 4.7500],\n         [5.0000, 5.2500, 5.5000, 5.7500]]])',
  line_wrap:
    'tensor([0.0000, 0.0417, 0.0833, 0.1250, 0.1667, 0.2083, 0.2500, 0.2917, 0.3333,\n        0.3750, 0.4167, 0.4583, 0.5000, 0.5417, 0.5833, 0.6250, 0.6667, 0.7083,\n        0.7500, 0.7917, 0.8333, 0.8750, 0.9167, 0.9583, 1.0000])',
  nan_inf: 'tensor([nan, 1., inf, -inf])',
  half_even_tie: 'tensor([1.0312, 0.5000])',
  large_int_sci: 'tensor([1.0000e+09, 2.0000e+00])',
  suffix_wrap:
    'tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429],\n       dtype=torch.float64, requires_grad=True)',
};

const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** The tensors of format_cases.py, built from the same literals (so the float32 data is bit-identical). */
function build(name: string): torch.Tensor[] {
  const x = torch.tensor([1.0, 2.5], { requiresGrad: true });
  const made: Record<string, () => torch.Tensor> = {
    int_mode: () => torch.tensor([1.0, 2.0, -3.0]),
    fixed: () =>
      torch.tensor([
        [1.5, -2.25],
        [3.125, 0.1],
      ]),
    scientific: () => torch.tensor([1e-5, 1.0, 12345.678]),
    negative: () => torch.tensor([-0.5, -12.75, 3.0]),
    bool: () => torch.tensor([true, false, true]),
    int64: () => torch.tensor([1, -20, 300], { dtype: 'int64' }),
    int32: () => torch.tensor([7, -8], { dtype: 'int32' }),
    float64: () => torch.tensor([0.5, 1.25, -2.0], { dtype: 'float64' }),
    float16: () => torch.tensor([0.5, 1.75], { dtype: 'float16' }),
    requires_grad: () => x.alias(),
    grad_fn: () => x.mul(x),
    grad_fn_sum: () => torch.tidy(() => x.mul(x).sum()),
    zero_d: () => torch.tensor(3.5),
    zero_d_int: () => torch.tensor(7, { dtype: 'int64' }),
    empty: () => torch.tensor([]),
    empty_2d: () => torch.zeros(0, 3),
    empty_int64: () => torch.zeros([0], { dtype: 'int64' }),
    summarised_1d: () => torch.tensor(range(1001, (i) => i)),
    summarised_2d: () => torch.tensor(range(40, (r) => range(50, (c) => (r * 50 + c) / 8))),
    three_d: () => torch.tensor(range(2, (a) => range(3, (b) => range(4, (c) => (a * 12 + b * 4 + c) / 4)))),
    line_wrap: () => torch.tensor(range(25, (i) => i / 24)),
    nan_inf: () => torch.tensor([NaN, 1.0, Infinity, -Infinity]),
    half_even_tie: () => torch.tensor([1.03125, 0.5]),
    large_int_sci: () => torch.tensor([1e9, 2.0]),
    suffix_wrap: () =>
      torch.tensor(
        range(9, (i) => i / 7),
        { dtype: 'float64', requiresGrad: true },
      ),
  };
  const f = made[name];
  if (!f) throw new Error(`no builder for case ${name}`);
  return [f(), x];
}

describe('toString() equals PyTorch repr()', () => {
  it('covers every case of format_cases.py', () => {
    expect(Object.keys(EXPECTED).length).toBeGreaterThanOrEqual(12);
  });
  for (const [name, want] of Object.entries(EXPECTED)) {
    it(name, async () => {
      await noLeak(() => {
        const [t, x] = build(name) as [torch.Tensor, torch.Tensor];
        try {
          expect(t.toString()).toBe(want);
        } finally {
          t.dispose();
          x.dispose();
        }
      });
    });
  }
  it('util.inspect and template strings use the same text', async () => {
    const { inspect } = await import('node:util');
    await noLeak(() => {
      const t = torch.tensor([
        [1.5, -2.25],
        [3.125, 0.1],
      ]);
      expect(inspect(t)).toBe(EXPECTED.fixed);
      expect(`${t}`).toBe(EXPECTED.fixed);
      t.dispose();
    });
  });
  it('a disposed tensor prints as tensor(<disposed>) instead of throwing', () => {
    const t = torch.ones(2);
    t.dispose();
    expect(t.toString()).toBe('tensor(<disposed>)');
  });
});
