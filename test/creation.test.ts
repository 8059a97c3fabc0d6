import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { expectClose, scoped } from './support/helpers.js';

/**
 * PyTorch's CPU generator after manual_seed, printed by test/reference/creation_rng.py
 * (`/usr/bin/python3 test/reference/creation_rng.py`) and pasted here.
 */
const RNG = {
  rand_f32: [0.8822692632675171, 0.9150039553642273, 0.38286375999450684, 0.9593056440353394],
  randn_f32: [0.23446236550807953, 0.23033303022384644, -1.1228563785552979, -0.18632829189300537],
  randint_0_10: [0, 4, 1, 2, 5, 5],
  rand_f64: [0.279380429906404, 0.27369371365176565, 0.8620929614176255],
  randn_f64: [-1.251400130741154, -1.884067517741636, 0.4457424104093978],
  randint_5_9: [
    [7, 7, 7],
    [5, 8, 7],
  ],
};

describe('tensor() from nested arrays', () => {
  it('infers the shape and gives float32 for numbers', () =>
    scoped(() => {
      const t = torch.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('float32');
      expect(t.toArray()).toEqual([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      // float32 storage: 0.1 is stored as the nearest float32
      expect(torch.tensor([0.1]).item()).toBe(Math.fround(0.1));
    }));
  it('keeps float64 exactly', () =>
    scoped(() => {
      const t = torch.tensor([0.1, -1e300, 2 ** -1074], { dtype: 'float64' });
      expect(t.dtype).toBe('float64');
      expect(Array.from(t.toTypedArray() as Float64Array)).toEqual([0.1, -1e300, 2 ** -1074]);
    }));
  it('truncates towards zero for int32 and int64 (as a PyTorch cast)', () =>
    scoped(() => {
      const a = torch.tensor([1.7, -1.7, 2147483647], { dtype: 'int32' });
      expect(a.dtype).toBe('int32');
      expect(Array.from(a.toTypedArray() as Int32Array)).toEqual([1, -1, 2147483647]);
      const b = torch.tensor([[3.9, -3.9]], { dtype: 'int64' });
      expect(b.dtype).toBe('int64');
      expect(b.toArray()).toEqual([[3, -3]]);
    }));
  it('gives int64 for bigints, exactly beyond 2^53', () =>
    scoped(() => {
      const big = 2n ** 60n + 1n;
      const t = torch.tensor([big, -5n]);
      expect(t.dtype).toBe('int64');
      expect(Array.from(t.toTypedArray() as BigInt64Array)).toEqual([big, -5n]);
    }));
  it('gives bool for booleans', () =>
    scoped(() => {
      const t = torch.tensor([
        [true, false],
        [false, true],
      ]);
      expect(t.dtype).toBe('bool');
      expect(t.toArray()).toEqual([
        [true, false],
        [false, true],
      ]);
      expect(Array.from(t.toTypedArray() as Uint8Array)).toEqual([1, 0, 0, 1]);
      // numbers cast to bool: non-zero is true
      expect(torch.tensor([0, 2, -0.5], { dtype: 'bool' }).toArray()).toEqual([false, true, true]);
    }));
  it('rounds to float16 and bfloat16 (round to nearest even)', () =>
    scoped(() => {
      // float16 0.1: exponent -4 (biased 11 = 0b01011), mantissa round(0.6 * 1024) = 614 -> 0x2E66
      // = 2^-4 * (1 + 614/1024) = 0.0999755859375; 1.5 = 0x3E00; -2 = 0xC000
      const h = torch.tensor([0.1, 1.5, -2], { dtype: 'float16' });
      expect(h.dtype).toBe('float16');
      expect(Array.from(h.toTypedArray() as Uint16Array)).toEqual([0x2e66, 0x3e00, 0xc000]);
      expect(h.dataSync()).toEqual([0.0999755859375, 1.5, -2]);
      // bfloat16 0.1: float32 0x3DCCCCCD, low half 0xCCCD > 0x8000 rounds up -> 0x3DCD = 0.10009765625
      const b = torch.tensor([0.1, 1.5, -2], { dtype: 'bfloat16' });
      expect(b.dtype).toBe('bfloat16');
      expect(Array.from(b.toTypedArray() as Uint16Array)).toEqual([0x3dcd, 0x3fc0, 0xc000]);
      expect(b.dataSync()).toEqual([0.10009765625, 1.5, -2]);
    }));
  it('makes empty tensors', () =>
    scoped(() => {
      expect(torch.tensor([]).shape).toEqual([0]);
      expect(torch.tensor([[], []]).shape).toEqual([2, 0]);
      expect(torch.tensor([]).dtype).toBe('float32');
      expect(torch.tensor([]).toArray()).toEqual([]);
    }));
  it('takes a shape option to reshape flat data', () =>
    scoped(() => {
      expect(torch.tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] }).toArray()).toEqual([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
    }));
});

describe('tensor() from TypedArrays and scalars', () => {
  it('takes the dtype of the TypedArray and a shape', () =>
    scoped(() => {
      const cases: [ArrayBufferView, torch.DType][] = [
        [new Float32Array([1, 2, 3, 4, 5, 6]), 'float32'],
        [new Float64Array([1, 2, 3, 4, 5, 6]), 'float64'],
        [new Int32Array([1, 2, 3, 4, 5, 6]), 'int32'],
        [new BigInt64Array([1n, 2n, 3n, 4n, 5n, 6n]), 'int64'],
        [new Uint8Array([1, 2, 3, 4, 5, 6]), 'uint8'],
        [new Int8Array([1, 2, 3, 4, 5, 6]), 'int8'],
        [new Int16Array([1, 2, 3, 4, 5, 6]), 'int16'],
      ];
      for (const [data, dtype] of cases) {
        const t = torch.tensor(data, { shape: [2, 3] });
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual([2, 3]);
        expect(t.toArray()).toEqual([
          [1, 2, 3],
          [4, 5, 6],
        ]);
      }
      expect(torch.tensor(new Float32Array([1, 2, 3])).shape).toEqual([3]);
    }));
  it('copies the data (later writes to the array do not reach the tensor)', () =>
    scoped(() => {
      const data = new Float32Array([1, 2, 3]);
      const t = torch.tensor(data);
      data[0] = 100;
      expect(t.toArray()).toEqual([1, 2, 3]);
      const out = t.toTypedArray() as Float32Array;
      out[1] = -1;
      expect(t.toArray()).toEqual([1, 2, 3]);
    }));
  it('respects the byte offset of a subarray view', () =>
    scoped(() => {
      const whole = new Float64Array([9, 1, 2, 3, 9]);
      expect(torch.tensor(whole.subarray(1, 4)).toArray()).toEqual([1, 2, 3]);
    }));
  it('converts to the requested dtype', () =>
    scoped(() => {
      const t = torch.tensor(new Int32Array([1, -2, 3]), { dtype: 'float64' });
      expect(t.dtype).toBe('float64');
      expect(t.toArray()).toEqual([1, -2, 3]);
    }));
  it('makes 0-d tensors from scalars', () =>
    scoped(() => {
      const f = torch.tensor(3.5);
      expect([f.shape, f.ndim, f.numel(), f.dtype, f.item()]).toEqual([[], 0, 1, 'float32', 3.5]);
      expect(f.toArray()).toBe(3.5);
      const b = torch.tensor(true);
      expect([b.dtype, b.item()]).toEqual(['bool', true]);
      const i = torch.tensor(5n);
      expect([i.dtype, i.item()]).toEqual(['int64', 5]);
      expect(torch.scalarTensor(2, { dtype: 'float64' }).dtype).toBe('float64');
    }));
});

describe('factories', () => {
  it('zeros, ones and empty take sizes as varargs or an array', () =>
    scoped(() => {
      expect(torch.zeros(2, 3).toArray()).toEqual([
        [0, 0, 0],
        [0, 0, 0],
      ]);
      expect(torch.zeros([2, 3]).shape).toEqual([2, 3]);
      expect(torch.ones([2], { dtype: 'int32' }).toArray()).toEqual([1, 1]);
      expect(torch.ones(2, 2, { dtype: 'float64' }).dtype).toBe('float64');
      expect(torch.empty(4, 0).shape).toEqual([4, 0]);
      expect(torch.zeros([]).shape).toEqual([]);
      expect(torch.zeros([]).item()).toBe(0);
    }));
  it('accepts PyTorch dtype aliases', () =>
    scoped(() => {
      expect(torch.zeros([1], { dtype: 'double' as torch.DType }).dtype).toBe('float64');
      expect(torch.zeros([1], { dtype: 'long' as torch.DType }).dtype).toBe('int64');
      expect(torch.zeros([1], { dtype: 'half' as torch.DType }).dtype).toBe('float16');
    }));
  it('full takes its dtype from the fill value', () =>
    scoped(() => {
      const f = torch.full([2, 2], 7.25);
      expect([f.dtype, f.toArray()]).toEqual([
        'float32',
        [
          [7.25, 7.25],
          [7.25, 7.25],
        ],
      ]);
      const b = torch.full([2], true);
      expect([b.dtype, b.toArray()]).toEqual(['bool', [true, true]]);
      expect(torch.full([3], -4, { dtype: 'int64' }).toArray()).toEqual([-4, -4, -4]);
    }));
  it('eye makes square and rectangular identities', () =>
    scoped(() => {
      expect(torch.eye(3).toArray()).toEqual([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]);
      expect(torch.eye(2, 3).toArray()).toEqual([
        [1, 0, 0],
        [0, 1, 0],
      ]);
      expect(torch.eye(2, { dtype: 'float64' }).dtype).toBe('float64');
    }));
  it('arange: int64 for integer arguments, float32 otherwise, end excluded', () =>
    scoped(() => {
      const a = torch.arange(5);
      expect([a.dtype, a.toArray()]).toEqual(['int64', [0, 1, 2, 3, 4]]);
      expect(torch.arange(2, 8, 3).toArray()).toEqual([2, 5]);
      expect(torch.arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
      const f = torch.arange(0, 1, 0.25);
      expect([f.dtype, f.toArray()]).toEqual(['float32', [0, 0.25, 0.5, 0.75]]);
      // ceil((1 - 0) / 0.1) = 10 elements, k * 0.1 in float32
      const g = torch.arange(0, 1, 0.1);
      expect(g.numel()).toBe(10);
      expectClose(
        g,
        Array.from({ length: 10 }, (_, k) => k * 0.1),
        { atol: 1e-7, rtol: 1e-6 },
      );
      expect(torch.arange(0, 3, { dtype: 'float64' }).dtype).toBe('float64');
    }));
  it('linspace includes both ends', () =>
    scoped(() => {
      const t = torch.linspace(-1, 2, 7);
      expect(t.dtype).toBe('float32');
      expectClose(
        t,
        Array.from({ length: 7 }, (_, k) => -1 + (k * 3) / 6),
        { atol: 1e-7, rtol: 1e-6 },
      );
      expect(torch.linspace(0, 1, 1).toArray()).toEqual([0]);
      expect(torch.linspace(0, 1, 0).shape).toEqual([0]);
      const d = torch.linspace(0, 1, 11, { dtype: 'float64' });
      expectClose(
        d,
        Array.from({ length: 11 }, (_, k) => k / 10),
        { atol: 1e-15, rtol: 0 },
      );
    }));
});

describe('random factories', () => {
  it('rand, randn and randint match PyTorch for the same seed', () =>
    scoped(() => {
      torch.manualSeed(42);
      expect(torch.rand(4).dataSync()).toEqual(RNG.rand_f32);
      expect(torch.randn(4).dataSync()).toEqual(RNG.randn_f32);
      expect(torch.randint(0, 10, [6]).toArray()).toEqual(RNG.randint_0_10);
      torch.manualSeed(7);
      expect(torch.rand([3], { dtype: 'float64' }).dataSync()).toEqual(RNG.rand_f64);
      expect(torch.randn([3], { dtype: 'float64' }).dataSync()).toEqual(RNG.randn_f64);
      expect(torch.randint(5, 9, [2, 3]).toArray()).toEqual(RNG.randint_5_9);
    }));
  it('is reproducible after manualSeed', () =>
    scoped(() => {
      torch.manualSeed(123);
      const a = [torch.rand(5).dataSync(), torch.randn(2, 3).dataSync(), torch.randint(100, [4]).dataSync()];
      torch.manualSeed(123);
      const b = [torch.rand(5).dataSync(), torch.randn(2, 3).dataSync(), torch.randint(100, [4]).dataSync()];
      expect(b).toEqual(a);
      expect(torch.rand(5).dataSync()).not.toEqual(a[0]);
    }));
  it('rand is uniform on [0, 1)', () =>
    scoped(() => {
      torch.manualSeed(1);
      const n = 20000;
      const v = torch.rand([n]).dataSync();
      expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...v)).toBeLessThan(1);
      const mean = v.reduce((a, b) => a + b, 0) / n;
      // U(0,1): variance 1/12, so the sample mean has sd sqrt(1/12/n) = 0.00204; allow 5 sd
      expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
      expect(torch.rand(2, 3).shape).toEqual([2, 3]);
    }));
  it('randn is standard normal', () =>
    scoped(() => {
      torch.manualSeed(2);
      const n = 20000;
      const v = torch.randn([n], { dtype: 'float64' }).dataSync();
      const mean = v.reduce((a, b) => a + b, 0) / n;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
      // sd of the sample mean: 1/sqrt(n) = 0.0071; of the sample variance: sqrt(2/(n-1)) = 0.010; allow 5 sd
      expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
      expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / (n - 1)));
    }));
  it('randint draws every integer of [low, high) and nothing else', () =>
    scoped(() => {
      torch.manualSeed(3);
      const t = torch.randint(-3, 4, [2000]);
      expect(t.dtype).toBe('int64');
      const seen = new Set(t.dataSync());
      expect([...seen].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
      const hi = torch.randint(3, [10, 10]);
      expect(hi.shape).toEqual([10, 10]);
      expect(hi.dataSync().every((x) => x >= 0 && x < 3)).toBe(true);
      expect(torch.randint(0, 5, [3], { dtype: 'int32' }).dtype).toBe('int32');
    }));
});

describe('*Like variants', () => {
  it('copy shape and dtype, and take overrides', () =>
    scoped(() => {
      const base = torch.ones([2, 3], { dtype: 'float64' });
      const z = torch.zerosLike(base);
      expect([z.shape, z.dtype, z.toArray()]).toEqual([
        [2, 3],
        'float64',
        [
          [0, 0, 0],
          [0, 0, 0],
        ],
      ]);
      const o = torch.onesLike(base, { dtype: 'int32' });
      expect([o.dtype, o.dataSync()]).toEqual(['int32', [1, 1, 1, 1, 1, 1]]);
      const f = torch.fullLike(base, 2.5);
      expect([f.dtype, f.dataSync()]).toEqual(['float64', [2.5, 2.5, 2.5, 2.5, 2.5, 2.5]]);
      expect(torch.emptyLike(base).shape).toEqual([2, 3]);
      const r = torch.randLike(base);
      expect([r.shape, r.dtype]).toEqual([[2, 3], 'float64']);
      expect(r.dataSync().every((x) => x >= 0 && x < 1)).toBe(true);
      expect(torch.randnLike(base).shape).toEqual([2, 3]);
      const ri = torch.randintLike(torch.zeros([50], { dtype: 'int64' }), 2, 4);
      expect(ri.dtype).toBe('int64');
      expect(ri.dataSync().every((x) => x === 2 || x === 3)).toBe(true);
      const g = torch.zerosLike(base, { requiresGrad: true });
      expect(g.requiresGrad).toBe(true);
    }));
});

describe('properties and data access', () => {
  it('shape, dtype, device, numel, ndim, size()', () =>
    scoped(() => {
      const t = torch.zeros([2, 3, 4], { device: 'cpu' });
      expect(t.shape).toEqual([2, 3, 4]);
      expect(t.dtype).toBe('float32');
      expect(t.device).toBe('cpu');
      expect(t.isCuda).toBe(false);
      expect(t.numel()).toBe(24);
      expect(t.ndim).toBe(3);
      expect(t.dim()).toBe(3);
      expect(t.size()).toEqual([2, 3, 4]);
      expect(t.size(-1)).toBe(4);
      expect(t.size(1)).toBe(3);
      expect(t.stride()).toEqual([12, 4, 1]);
      expect(t.isContiguous()).toBe(true);
    }));
  it('requiresGrad: option, getter, setter and requiresGrad_()', () =>
    scoped(() => {
      const a = torch.tensor([1, 2]);
      expect(a.requiresGrad).toBe(false);
      expect(a.isLeaf).toBe(true);
      a.requiresGrad = true;
      expect(a.requiresGrad).toBe(true);
      const b = torch.randn([2], { requiresGrad: true });
      expect(b.requiresGrad).toBe(true);
      const c = torch.zeros([2]);
      expect(c.requiresGrad_()).toBe(c);
      expect(c.requiresGrad).toBe(true);
      c.requiresGrad_(false);
      expect(c.requiresGrad).toBe(false);
      const d = a.mul(b);
      expect([d.requiresGrad, d.isLeaf]).toEqual([true, false]);
    }));
  it('item(), toArray() and toTypedArray() give the TypedArray of each dtype', () =>
    scoped(() => {
      expect(torch.tensor([[2.5]]).item()).toBe(2.5);
      expect(torch.tensor([7], { dtype: 'int64' }).item()).toBe(7);
      expect(torch.tensor([7], { dtype: 'int32' }).item()).toBe(7);
      expect(torch.tensor([1, 2], { dtype: 'float32' }).toTypedArray()).toBeInstanceOf(Float32Array);
      expect(torch.tensor([1, 2], { dtype: 'float64' }).toTypedArray()).toBeInstanceOf(Float64Array);
      expect(torch.tensor([1, 2], { dtype: 'int32' }).toTypedArray()).toBeInstanceOf(Int32Array);
      expect(torch.tensor([1, 2], { dtype: 'int64' }).toTypedArray()).toBeInstanceOf(BigInt64Array);
      expect(torch.tensor([true]).toTypedArray()).toBeInstanceOf(Uint8Array);
      expect(torch.tensor([1], { dtype: 'float16' }).toTypedArray()).toBeInstanceOf(Uint16Array);
      // a non-contiguous view comes out in logical (row-major) order
      const t = torch
        .tensor([
          [1, 2, 3],
          [4, 5, 6],
        ])
        .t();
      expect(t.isContiguous()).toBe(false);
      expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 4, 2, 5, 3, 6]);
      expect(t.toArray()).toEqual([
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
    }));
});

describe('invalid arguments', () => {
  const DTYPE_LIST = 'a dtype (float32, float64, int32, int64, bool, float16, bfloat16, uint8, int8, int16)';
  it('ragged nested arrays -> RangeError', () =>
    scoped(() => {
      expect(() => torch.tensor([[1, 2], [3]])).toThrow(
        new RangeError('tensor(): ragged nested array: expected 2 elements at depth 1 but found 1'),
      );
      expect(() => torch.tensor([[1], 2] as never)).toThrow(
        new RangeError('tensor(): ragged nested array: a scalar at depth 1 where arrays of depth 2 were seen'),
      );
      expect(() => torch.tensor([1, [2]] as never)).toThrow(
        new RangeError('tensor(): ragged nested array: an array at depth 1 where numbers were seen'),
      );
    }));
  it('non-numeric data -> TypeError naming data', () => {
    expect(() => torch.tensor(['a'] as never)).toThrow(
      new TypeError('Expected numbers, booleans or bigints for data but received "a" of type string'),
    );
    expect(() => torch.tensor(new Uint16Array(2) as never)).toThrow(TypeError);
    expect(() => torch.tensor(new Uint16Array(2) as never)).toThrow(
      /^Expected a Float32Array, .* for data but received/,
    );
  });
  it('negative or fractional sizes -> RangeError naming size / shape', () => {
    expect(() => torch.zeros([-1, 2])).toThrow(
      new RangeError('Expected an array of non-negative integers for size but received [-1,2] of type array'),
    );
    expect(() => torch.ones(2.5)).toThrow(
      new RangeError('Expected an array of non-negative integers for size but received [2.5] of type array'),
    );
    expect(() => torch.tensor([1, 2], { shape: [-2] })).toThrow(
      new RangeError('Expected an array of non-negative integers for shape but received [-2] of type array'),
    );
    expect(() => torch.tensor(new Float32Array(6), { shape: [4, 3] })).toThrow(
      new RangeError('tensor(): shape [4, 3] needs 12 elements but data has 6'),
    );
    expect(() => torch.eye(-1)).toThrow(
      new RangeError('Expected a non-negative integer for n but received -1 of type number'),
    );
    expect(() => torch.linspace(0, 1, -1)).toThrow(
      new RangeError('Expected a non-negative integer for steps but received -1 of type number'),
    );
  });
  it('unknown dtype -> RangeError, non-string dtype -> TypeError', () => {
    expect(() => torch.zeros([2], { dtype: 'float128' as torch.DType })).toThrow(
      new RangeError(`Expected ${DTYPE_LIST} for dtype but received "float128" of type string`),
    );
    expect(() => torch.tensor([1], { dtype: 5 as never })).toThrow(
      new TypeError(`Expected ${DTYPE_LIST} for dtype but received 5 of type number`),
    );
  });
  it('unknown device -> RangeError, non-string device -> TypeError', () => {
    expect(() => torch.zeros([2], { device: 'tpu' as torch.Device })).toThrow(
      new RangeError("Expected a device ('cpu', 'cuda' or 'cuda:N') for device but received \"tpu\" of type string"),
    );
    expect(() => torch.tensor([1], { device: 0 as never })).toThrow(
      new TypeError("Expected a device ('cpu', 'cuda' or 'cuda:N') for device but received 0 of type number"),
    );
  });
  it('bad ranges and fill values', () => {
    expect(() => torch.arange(0, 5, 0)).toThrow(
      new RangeError('Expected a non-zero number for step but received 0 of type number'),
    );
    expect(() => torch.arange(5, 0, 1)).toThrow(RangeError);
    expect(() => torch.arange(0, Infinity)).toThrow(
      new RangeError('Expected a finite number for end but received Infinity of type number'),
    );
    expect(() => torch.randint(5, 5, [2])).toThrow(
      new RangeError('Expected an integer above low (5) for high but received 5 of type number'),
    );
    expect(() => torch.randint(0, 1.5, [2])).toThrow(
      new RangeError('Expected an integer for high but received 1.5 of type number'),
    );
    expect(() => torch.full([2], 'a' as never)).toThrow(
      new TypeError('Expected a number or boolean for fillValue but received "a" of type string'),
    );
    expect(() => torch.manualSeed(-1)).toThrow(
      new TypeError('Expected a non-negative integer for seed but received -1 of type number'),
    );
  });
  it('*Like of a non-tensor -> TypeError naming input', () => {
    expect(() => torch.zerosLike(null as never)).toThrow(
      new TypeError('Expected a Tensor for input but received null of type null'),
    );
    expect(() => torch.onesLike(5 as never)).toThrow(
      new TypeError('Expected a Tensor for input but received 5 of type number'),
    );
  });
  it('requiresGrad must be a boolean, and only floating tensors can require grad', () =>
    scoped(() => {
      expect(() => torch.tensor([1, 2], { requiresGrad: 'yes' as never })).toThrow(
        new TypeError('Expected a boolean for requiresGrad but received "yes" of type string'),
      );
      const i = torch.zeros([2], { dtype: 'int64' });
      let err: unknown;
      try {
        i.requiresGrad = true;
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(torch.TorchError);
      expect((err as Error).message).toBe('Only Tensors of floating point and complex dtype can require gradients');
    }));
  it('item() of several elements and size() out of range', () =>
    scoped(() => {
      const t = torch.ones(2);
      expect(() => t.item()).toThrow(new torch.TorchError('a Tensor with 2 elements cannot be converted to a scalar'));
      expect(() => t.item()).toThrow(torch.TorchError);
      expect(() => t.size(5)).toThrow(
        new RangeError('Dimension out of range (expected to be in range of [-1, 0], but got 5)'),
      );
    }));
});
