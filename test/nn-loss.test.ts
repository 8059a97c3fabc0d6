// nn's loss modules against PyTorch 1.13's (test/reference/losses.py generated the JSON): values for every
// reduction, the input gradient of the mean, and the repr.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import * as torch from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

const { nn } = torch;

interface Case {
  module: keyof typeof LOSSES;
  options: Record<string, number | number[]>;
  input: number[][];
  target: number[] | number[][];
  targetDtype: 'int64' | 'float64';
  repr: string;
  none: number[] | number[][];
  mean: number;
  sum: number;
  grad: number[][];
}
const ref = JSON.parse(readFileSync(new URL('./reference/losses.json', import.meta.url), 'utf8')) as Case[];

const LOSSES = {
  L1Loss: nn.L1Loss,
  MSELoss: nn.MSELoss,
  SmoothL1Loss: nn.SmoothL1Loss,
  CrossEntropyLoss: nn.CrossEntropyLoss,
  NLLLoss: nn.NLLLoss,
  BCELoss: nn.BCELoss,
  BCEWithLogitsLoss: nn.BCEWithLogitsLoss,
};

/** The module of a case, its tensor options (weight, posWeight) made float64 tensors. */
function build(
  c: Case,
  reduction: 'none' | 'mean' | 'sum',
): torch.nn.Module<[torch.Tensor, torch.Tensor], torch.Tensor> {
  const o: Record<string, unknown> = { reduction };
  for (const [k, v] of Object.entries(c.options)) o[k] = Array.isArray(v) ? torch.tensor(v, { dtype: 'float64' }) : v;
  return new (LOSSES[c.module] as new (o: unknown) => torch.nn.Module<[torch.Tensor, torch.Tensor], torch.Tensor>)(o);
}

describe('loss modules match PyTorch', () => {
  for (const c of ref) {
    it(`${c.module}(${JSON.stringify(c.options)}) with ${c.targetDtype} targets`, () =>
      noLeak(() => {
        const x = torch.tensor(c.input, { dtype: 'float64', requiresGrad: true });
        const y = torch.tensor(c.target as number[][], { dtype: c.targetDtype });
        for (const reduction of ['none', 'mean', 'sum'] as const) {
          const criterion = build(c, reduction);
          expect(String(criterion)).toBe(c.repr);
          const loss = criterion.call(x, y);
          expectClose(
            loss,
            typeof c[reduction] === 'number' ? [c[reduction] as number] : (c[reduction] as number[][]),
            { atol: 1e-12, rtol: 1e-10 },
          );
          if (reduction === 'mean') {
            loss.backward();
            expectClose(x.grad!, c.grad, { atol: 1e-12, rtol: 1e-10 });
          }
          loss.dispose();
          criterion.dispose();
        }
        x.dispose();
        y.dispose();
      }));
  }
});

describe('loss modules as modules', () => {
  it('weight and posWeight are buffers: in stateDict (PyTorch names), converted by to(), freed by dispose()', () =>
    noLeak(() => {
      const c = new nn.BCEWithLogitsLoss({ weight: torch.ones(4), posWeight: torch.full([4], 2) });
      expect([...c.stateDict({ keepVars: true }).keys()]).toEqual(['weight', 'posWeight']);
      expect(c.weight!.dtype).toBe('float32');
      c.to('float64');
      expect(c.posWeight!.dtype).toBe('float64');
      expect(c.posWeight!.dataSync()).toEqual([2, 2, 2, 2]);
      const none = new nn.CrossEntropyLoss();
      expect(none.weight).toBe(null);
      expect(none.stateDict().size).toBe(0);
      expect(none.reduction).toBe('mean');
      c.dispose();
    }));

  it('trains a classifier in fit() as PyTorch scripts write it (criterion = nn.CrossEntropyLoss())', async () => {
    torch.manualSeed(0);
    const model = new nn.Linear(2, 2, { dtype: 'float64' });
    const criterion = new nn.CrossEntropyLoss();
    const x = torch.tensor(
      [
        [1, 0],
        [0, 1],
        [1, 0.2],
        [0.1, 1],
      ],
      { dtype: 'float64' },
    );
    const y = torch.tensor([0, 1, 0, 1], { dtype: 'int64' });
    const opt = new torch.optim.SGD(model.parameters(), { lr: 1 });
    const history = await torch.fit(model, {
      train: [[x, y]],
      epochs: 20,
      optimizer: opt,
      loss: (o, t) => criterion.call(o, t),
      progress: 'none',
    });
    expect(history[19]!.trainLoss).toBeLessThan(history[0]!.trainLoss / 4);
    torch.dispose([model.parameters(), x, y]);
    opt.dispose();
  });

  it('invalid arguments', () => {
    expect(() => new nn.MSELoss({ reduction: 'avg' as never })).toThrow(
      new RangeError("Expected one of 'none', 'mean', 'sum' for reduction but received \"avg\" of type string"),
    );
    expect(() => new nn.CrossEntropyLoss({ labelSmoothing: 1.5 })).toThrow(
      new RangeError('Expected a number in [0, 1] for labelSmoothing but received 1.5 of type number'),
    );
    expect(() => new nn.CrossEntropyLoss({ ignoreIndex: 0.5 })).toThrow(RangeError);
    expect(() => new nn.NLLLoss({ weight: [1, 2] as never })).toThrow(
      new TypeError('Expected a Tensor for weight but received [1,2] of type array'),
    );
    expect(() => new nn.SmoothL1Loss({ beta: -1 })).toThrow(
      new RangeError('Expected a non-negative number for beta but received -1 of type number'),
    );
    const c = new nn.CrossEntropyLoss();
    const x = torch.zeros(3, 4);
    const y = torch.tensor([0, 1, 7], { dtype: 'int64' });
    let err: unknown;
    try {
      c.call(x, y);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(torch.TorchError);
    expect((err as torch.TorchError).code).toBe('INDEX_OUT_OF_RANGE');
    torch.dispose([x, y]);
  });
});
