import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { native } from '../lib/native.js';
import { libtorchSays, thrown, scoped } from './support/helpers.js';

function expectTorchError(fn: () => unknown, code: torch.TorchErrorCode, message: string | RegExp): torch.TorchError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(torch.TorchError);
  expect(e.name).toBe('TorchError');
  expect((e as torch.TorchError).code).toBe(code);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
  // libtorch's "Exception raised from ... (C++ frames)" trailer is cut: the message is what a user needs
  expect(e.message).not.toMatch(/Exception raised from/);
  return e as torch.TorchError;
}

describe('the native exception guard', () => {
  it('turns c10::Error, std::exception and std::bad_alloc into TorchError with codes', () => {
    const c10 = expectTorchError(() => native.throwForTest('c10'), 'TORCH_ERROR', 'test failure from c10');
    expect(c10.stack).toMatch(/TorchError: test failure from c10/);
    expectTorchError(() => native.throwForTest('std'), 'TORCH_ERROR', 'test failure from std');
    expectTorchError(() => native.throwForTest('alloc'), 'OUT_OF_MEMORY', 'out of memory');
  });
  it('TorchError is a real Error subclass, constructible from JS with a default code', () => {
    const e = new torch.TorchError('boom');
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.message]).toEqual(['TorchError', 'TORCH_ERROR', 'boom']);
    expect(new torch.TorchError('x', 'SINGULAR').code).toBe('SINGULAR');
  });
  it('every native entry point survives missing and stale arguments: an Error, never a crash', () => {
    const t = torch.ones(1);
    const stale = t._h;
    t.dispose();
    // process-wide settings would take the stale handle as a value (a thread count, a seed): left out
    const skip = new Set(['setNumThreads', 'manualSeed']);
    const fns = Object.entries(native).filter(([name, f]) => typeof f === 'function' && !skip.has(name));
    expect(fns.length).toBeGreaterThan(150);
    const grad = torch.isGradEnabled();
    const outcomes = new Map<string, string>();
    try {
      for (const [name, f] of fns)
        for (const args of [[], new Array(8).fill(stale)]) {
          try {
            (f as (...a: unknown[]) => unknown)(...args);
          } catch (e) {
            expect(e, name).toBeInstanceOf(Error);
            if (args.length > 0 && e instanceof torch.TorchError) outcomes.set(name, e.code);
          }
          torch.setGradEnabled(grad); // setGradEnabled() with no argument turns recording off
        }
    } finally {
      torch.setGradEnabled(grad);
    }
    // entry points that start with a tensor report the stale handle as DISPOSED
    for (const name of [
      'shape',
      'dtype',
      'item',
      'toBuffer',
      'clone',
      'backward',
      'linear',
      'cholesky',
      'reshape',
      'where',
      'copy_',
      'softmax',
    ])
      expect(outcomes.get(name), name).toBe('DISPOSED');
  });
});

describe('libtorch messages are preserved, with a code', () => {
  it('shape mismatch', () =>
    scoped(() => {
      expectTorchError(
        () => torch.zeros(2, 3).add(torch.zeros(4, 3)),
        'SHAPE_MISMATCH',
        'The size of tensor a (2) must match the size of tensor b (4) at non-singleton dimension 0',
      );
      expectTorchError(
        () => torch.zeros(2, 3).matmul(torch.zeros(2, 3)),
        'SHAPE_MISMATCH',
        'mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)',
      );
    }));
  it('dtype mismatch: matmul float32 x float64', () =>
    scoped(() => {
      expectTorchError(
        () => torch.zeros(2, 2).matmul(torch.zeros([2, 2], { dtype: 'float64' })),
        'DTYPE_MISMATCH',
        libtorchSays(
          'expected scalar type Float but found Double',
          'expected m1 and m2 to have the same dtype, but got: float != double',
        ),
      );
      expectTorchError(
        () => torch.zeros(2).matmul(torch.zeros([2], { dtype: 'float64' })),
        'DTYPE_MISMATCH',
        'dot : expected both vectors to have same dtype, but found Float and Double',
      );
    }));
  it('index out of range: select 10 on size 3', () =>
    scoped(() => {
      expectTorchError(
        () => torch.zeros(3).select(0, 10),
        'INDEX_OUT_OF_RANGE',
        'select(): index 10 out of range for tensor of size [3] at dimension 0',
      );
      expectTorchError(
        () => torch.zeros(3).index(-4),
        'INDEX_OUT_OF_RANGE',
        'select(): index -4 out of range for tensor of size [3] at dimension 0',
      );
    }));
  it("device 'cuda' on this CPU-only build is a TorchError, not a crash", () =>
    scoped(() => {
      expect(torch.cuda.isAvailable()).toBe(false);
      expect(torch.cuda.deviceCount()).toBe(0);
      const ones = torch.ones(2);
      expect(thrown(() => torch.zeros([2], { device: 'cuda' }))).toBeInstanceOf(torch.TorchError);
      // the addon's own message (libtorch's were "Could not run 'aten::empty.memory_format' with arguments from the
      // 'CUDA' backend" and "PyTorch is not linked with support for cuda devices"); test/messages.test.ts has the rest
      expectTorchError(
        () => torch.zeros([2], { device: 'cuda' }),
        'DEVICE_UNAVAILABLE',
        /^CUDA is not available: this libtorch was built without CUDA/,
      );
      expectTorchError(
        () => ones.cuda(),
        'DEVICE_UNAVAILABLE',
        /^CUDA is not available: .*\(device 'cuda:0' asked for\)/,
      );
      expectTorchError(
        () => ones.to('cuda'),
        'DEVICE_UNAVAILABLE',
        /^CUDA is not available: .*\(device 'cuda' asked for\)/,
      );
      expect(thrown(() => torch.tensor([1, 2], { device: 'cuda:1' }))).toBeInstanceOf(torch.TorchError);
      // the addon still works afterwards
      expect(ones.add(1).dataSync()).toEqual([2, 2]);
    }));
  it('cholesky of an indefinite matrix -> NOT_POSITIVE_DEFINITE', () =>
    scoped(() => {
      expectTorchError(
        () =>
          torch.linalg.cholesky(
            torch.tensor(
              [
                [1, 2],
                [2, 1],
              ],
              { dtype: 'float64' },
            ),
          ),
        'NOT_POSITIVE_DEFINITE',
        'linalg.cholesky: The factorization could not be completed because the input is not positive-definite (the leading minor of order 2 is not positive-definite).',
      );
    }));
  it('autograd misuse -> AUTOGRAD', () =>
    scoped(() => {
      expectTorchError(
        () => torch.ones([2], { requiresGrad: true }).mul(2).backward(),
        'AUTOGRAD',
        'grad can be implicitly created only for scalar outputs',
      );
    }));
  it('a disposed tensor -> DISPOSED', () => {
    const t = torch.ones(2);
    t.dispose();
    expectTorchError(() => t.sum(), 'DISPOSED', 'tensor was disposed: it cannot be used any more');
  });
  it('inputs that used to abort the process are errors or work (huge expanded views, huge tensordot dims)', () =>
    scoped(() => {
      // an expanded view holds only its storage: V8 is told 4 bytes, not 2^62 (it aborted on the virtual size)
      const before = torch.memory();
      const v = torch.ones([1, 1]).expand([2 ** 30, 2 ** 30]);
      expect(v.shape).toEqual([2 ** 30, 2 ** 30]);
      expect(torch.memory().bytes - before.bytes).toBeLessThanOrEqual(8);
      expect(torch.tensor(3.5).expand([5, 1e9, 1e9]).shape).toEqual([5, 1e9, 1e9]);
      const a = torch.ones([2]);
      expect(() => torch.tensordot(a, a, 1e9)).toThrow(
        new RangeError('tensordot expects dims (1000000000) <= the number of dimensions of a (1) and of b (1)'),
      );
      expect(() => torch.tensordot(a, undefined as never)).toThrow(
        new TypeError('Expected a Tensor for b but received undefined of type undefined'),
      );
      expect(() => torch.tensordot('a' as never, a, 1)).toThrow(TypeError);
      expect(() => torch.autograd.gradcheck((x) => x, a as never)).toThrow(TypeError);
      // 64-bit overflow, as PyTorch's "Overflow when unpacking long"
      expect(() => torch.randint(0, 2 ** 64, [2])).toThrow(RangeError);
      expect(() => torch.manualSeed(2 ** 64)).toThrow(RangeError);
    }));
  it("manualSeed takes seeds up to 2^64 as PyTorch (2^63 gives torch.manual_seed(2**63)'s numbers)", () =>
    scoped(() => {
      torch.manualSeed(2 ** 63);
      expect(torch.rand([2]).dataSync()).toEqual([0.49625658988952637, 0.7682217955589294]);
    }));
  it('a disposed tensor where a tensor is optional -> DISPOSED, never silently "none"', () =>
    scoped(() => {
      const gone = (shape: number[]): torch.Tensor => {
        const t = torch.ones(shape);
        t.dispose();
        return t;
      };
      const x = torch.ones([2, 3]),
        w = torch.ones([4, 3]);
      const msg = 'tensor was disposed: it cannot be used any more';
      expectTorchError(() => torch.nn.functional.linear(x, w, gone([4])), 'DISPOSED', msg);
      const logits = torch.zeros([2, 3]),
        y = torch.tensor([0, 2], { dtype: 'int64' });
      expectTorchError(() => torch.nn.functional.crossEntropy(logits, y, { weight: gone([3]) }), 'DISPOSED', msg);
      const p = torch.ones([2], { requiresGrad: true });
      expectTorchError(() => p.mul(2).backward(gone([2])), 'DISPOSED', msg);
      expectTorchError(() => torch.autograd.grad([p.mul(2)], [p], { gradOutputs: [gone([2])] }), 'DISPOSED', msg);
      expectTorchError(() => void (p.grad = gone([2])), 'DISPOSED', msg);
      expect(p.grad).toBe(null); // nothing changed
      // assigning a gradient of another shape, dtype or device is refused as PyTorch does
      expect(() => void (p.grad = torch.zeros([3]))).toThrow(
        new RangeError('assigned grad has data of a different size: [3] for a tensor of [2]'),
      );
      expect(() => void (p.grad = torch.zeros([2], { dtype: 'float64' }))).toThrow(
        new TypeError('assigned grad has data of a different type: float64 for a float32 tensor'),
      );
      // null / undefined still mean "none"
      expect(torch.nn.functional.linear(x, w, null as never).shape).toEqual([2, 4]);
    }));
});

describe('error codes of messages without a size or dtype keyword', () => {
  it('classifies square-matrix, floating-point, DATA-bounds, unused-input and cuda-support messages', () =>
    scoped(() => {
      expectTorchError(
        () => torch.linalg.cholesky(torch.zeros(2, 3)),
        'SHAPE_MISMATCH',
        'linalg.cholesky: A must be batches of square matrices, but they are 2 by 3 matrices',
      );
      expectTorchError(
        () => torch.linalg.cholesky(torch.eye(2, { dtype: 'int64' })),
        'DTYPE_MISMATCH',
        'linalg.cholesky: Expected a floating point or complex tensor as input. Got Long',
      );
      expectTorchError(
        () => torch.zeros(2, 3).indexSelect(1, torch.tensor([7], { dtype: 'int64' })),
        'INDEX_OUT_OF_RANGE',
        'INDICES element is out of DATA bounds, id=7 axis_dim=3',
      );
      expectTorchError(() => torch.zeros(2, 3).mm(torch.zeros(3)), 'SHAPE_MISMATCH', 'mat2 must be a matrix');
      expectTorchError(
        () => torch.nn.functional.batchNorm(torch.zeros(2, 3, 2, 2), torch.zeros(4), torch.ones(4), { training: true }),
        'SHAPE_MISMATCH',
        'running_mean should contain 3 elements not 4',
      );
      const x = torch.ones([1], { requiresGrad: true });
      expectTorchError(
        () => torch.grad(x.mul(2).sum(), torch.ones([1], { requiresGrad: true })),
        'AUTOGRAD',
        libtorchSays(
          'One of the differentiated Tensors appears to not have been used in the graph. Pass { allowUnused: true } to autograd.grad() if this is the desired behavior.',
          'element 0of the differentiated Tensors appears to not have been used in the graph. Pass { allowUnused: true } to autograd.grad() if this is the desired behavior.',
        ),
      );
      expectTorchError(() => torch.ones(2).to('cuda'), 'DEVICE_UNAVAILABLE', /^CUDA is not available: /);
    }));
});

describe('TypeError and RangeError from the TypeScript checks, before any native call', () => {
  it('name the argument, its expectation and what was received', () =>
    scoped(() => {
      const t = torch.ones(2, 2);
      const cases: [() => unknown, ErrorConstructor, string][] = [
        [
          () => t.add('1' as never),
          TypeError,
          'Expected a Tensor or a number for other but received "1" of type string',
        ],
        [() => t.sum(1.5), RangeError, 'Expected an integer for dim but received 1.5 of type number'],
        [() => t.transpose('0' as never, 1), TypeError, 'Expected an integer for dim0 but received "0" of type string'],
        [
          () => torch.zeros([2], { dtype: 'complex64' as never }),
          RangeError,
          'Expected a dtype (float32, float64, int32, int64, bool, float16, bfloat16, uint8, int8, int16) for dtype but received "complex64" of type string',
        ],
        [
          () => torch.zeros([2], { device: 'gpu' as never }),
          RangeError,
          "Expected a device ('cpu', 'cuda' or 'cuda:N') for device but received \"gpu\" of type string",
        ],
        [
          () => torch.zeros([-2]),
          RangeError,
          'Expected an array of non-negative integers for size but received [-2] of type array',
        ],
        [
          () => torch.nn.functional.dropout(t, -0.1),
          RangeError,
          'Expected a number in [0, 1] for p but received -0.1 of type number',
        ],
        [
          () => torch.nn.functional.mseLoss(t, t, { reduction: 'avg' as never }),
          RangeError,
          "Expected one of 'none', 'mean', 'sum' for reduction but received \"avg\" of type string",
        ],
        [() => torch.linalg.inv([[1]] as never), TypeError, 'Expected a Tensor for A but received [[1]] of type array'],
        [() => torch.setNumThreads(0), RangeError, 'Expected a positive integer for n but received 0 of type number'],
        [
          () => torch.manualSeed(1.5),
          TypeError,
          'Expected a non-negative integer for seed but received 1.5 of type number',
        ],
        [() => torch.tidy(42 as never), TypeError, 'Expected a function for fn but received 42 of type number'],
      ];
      for (const [fn, cls, message] of cases) {
        const e = thrown(fn);
        expect(e.constructor, message).toBe(cls);
        expect(e.message).toBe(message);
        expect(e).not.toBeInstanceOf(torch.TorchError);
      }
    }));
  it('long values are shortened in the message', () => {
    const e = thrown(() => torch.manualSeed('x'.repeat(100) as never));
    expect(e.message).toBe(
      `Expected a non-negative integer for seed but received "${'x'.repeat(56)}... of type string`,
    );
  });
});
