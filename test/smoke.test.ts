import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

describe('smoke', () => {
  it('adds, multiplies and differentiates', async () => {
    await noLeak(() => {
      const a = torch.tensor(
        [
          [1, 2],
          [3, 4],
        ],
        { requiresGrad: true },
      );
      const y = torch.tidy(() => a.mul(a).sum());
      y.backward();
      expectClose(a.grad!, [
        [2, 4],
        [6, 8],
      ]);
      y.dispose();
      a.dispose();
    });
  });
  it('raises TorchError with a code', () => {
    const a = torch.zeros([2, 3]);
    expect(() => a.matmul(a)).toThrow(torch.TorchError);
    try {
      a.matmul(a);
    } catch (e) {
      expect((e as torch.TorchError).code).toBe('SHAPE_MISMATCH');
      expect((e as Error).message).toBe('mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)');
    }
    a.dispose();
  });
});
