// Calls from hostile code: an argument whose getter disposes the receiver while the addon reads it must not let the
// op run on whatever tensor took the freed slot.
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor, TorchError } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

describe('a getter that disposes the receiver mid-call', () => {
  it('view with a shape array whose getter disposes the tensor and makes another: a DISPOSED error, the other untouched', async () => {
    await noLeak(() => {
      const t = torch.ones([2, 3]);
      let other: Tensor | undefined;
      let calls = 0;
      const shape = [3, 2];
      // the library's own check reads the element once; the addon's read (the second) is the hostile one
      Object.defineProperty(shape, 1, {
        get() {
          if (++calls === 2) {
            t.dispose();
            other = torch.full([6], 7); // takes the slot t had
          }
          return 2;
        },
      });
      let err: unknown;
      try {
        t.view(shape).dispose();
      } catch (e) {
        err = e;
      }
      expect(calls).toBe(2);
      expect(err).toBeInstanceOf(TorchError);
      expect((err as TorchError).code).toBe('DISPOSED');
      expect((err as Error).message).toContain('was disposed while the call read its arguments');
      expect(other!.dataSync()).toEqual([7, 7, 7, 7, 7, 7]);
      other!.dispose();
    });
  });
});
