// optim.lrScheduler: rates over 25 steps against PyTorch 1.13 (test/reference/lr_schedules.py generated the JSON),
// the groups' lr following the schedule, state dicts and resuming, and argument errors.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import * as torch from '../lib/index.js';
import { optim, Tensor } from '../lib/index.js';
import { noLeak } from './support/helpers.js';

const { StepLR, MultiStepLR, CosineAnnealingLR, LambdaLR } = optim.lrScheduler;
const ref = JSON.parse(readFileSync(new URL('./reference/lr_schedules.json', import.meta.url), 'utf8')) as {
  steps: number;
  cases: Record<string, number[][]>;
};
// the lambdas of lr_schedules.py
const LAMBDAS = [(e: number): number => 0.95 ** e, (e: number): number => 1 / (1 + e)];

type Make = (opt: optim.SGD) => optim.lrScheduler.LRScheduler;
const MAKERS: Record<string, Make> = {
  step: (opt) => new StepLR(opt, { stepSize: 3, gamma: 0.5 }),
  multistep: (opt) => new MultiStepLR(opt, { milestones: [3, 7, 7, 12], gamma: 0.3 }),
  cosine: (opt) => new CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.001 }),
  cosine_zero_min: (opt) => new CosineAnnealingLR(opt, { tMax: 4 }),
  lambda: (opt) => new LambdaLR(opt, { lrLambda: LAMBDAS }),
  lambda_shared: (opt) => new LambdaLR(opt, { lrLambda: LAMBDAS[0]! }),
};

function setup(): { a: Tensor; b: Tensor; opt: optim.SGD; dispose(): void } {
  const a = torch.zeros([2], { requiresGrad: true });
  const b = torch.zeros([3], { requiresGrad: true });
  const opt = new optim.SGD([{ params: [a] }, { params: [b], lr: 0.02 }], { lr: 0.1 });
  return { a, b, opt, dispose: () => torch.dispose([a, b]) };
}

/** The same recursive forms as PyTorch's, in the same float64 arithmetic: equal up to a few ulps. */
function expectRates(got: number[], want: number[], what: string): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    if (!(Math.abs(g - want[i]!) <= 1e-15 + 1e-12 * Math.abs(want[i]!)))
      expect.fail(`${what} group ${i}: got ${g}, PyTorch ${want[i]}`);
  });
}

describe('schedules match PyTorch 1.13', () => {
  for (const [name, make] of Object.entries(MAKERS)) {
    it(name, async () => {
      await noLeak(() => {
        const s = setup();
        const sched = make(s.opt);
        const want = ref.cases[name]!;
        expectRates(sched.getLastLr(), want[0]!, `${name} at construction`);
        for (let k = 1; k <= ref.steps; k++) {
          s.opt.step();
          sched.step();
          expectRates(sched.getLastLr(), want[k]!, `${name} after step ${k}`);
          // the optimizer's groups hold the rates the scheduler set
          expect(s.opt.paramGroups.map((g) => g.lr)).toEqual(sched.getLastLr());
        }
        expect(sched.lastEpoch).toBe(ref.steps);
        expect(s.opt.paramGroups.map((g) => g.initialLr)).toEqual([0.1, 0.02]);
        s.dispose();
      });
    });
  }
});

// Two schedulers over one optimizer, and a rate changed by hand after the 8th step (lr_schedules.py's CHAINED and MANUAL)
const MANY: Record<string, [(opt: optim.SGD) => optim.lrScheduler.LRScheduler[], number | null]> = {
  chain_step_multistep: [
    (opt) => [new StepLR(opt, { stepSize: 3, gamma: 0.5 }), new MultiStepLR(opt, { milestones: [5], gamma: 0.1 })],
    null,
  ],
  chain_cosine_step: [
    (opt) => [new CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.001 }), new StepLR(opt, { stepSize: 4, gamma: 0.5 })],
    null,
  ],
  manual_step: [(opt) => [new StepLR(opt, { stepSize: 3, gamma: 0.5 })], 8],
  manual_cosine: [(opt) => [new CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.001 })], 8],
};

describe('chained schedulers and rates changed by hand follow PyTorch 1.13', () => {
  for (const [name, [make, halveAt]] of Object.entries(MANY)) {
    it(name, () => {
      const s = setup();
      const scheds = make(s.opt);
      const want = ref.cases[name]!;
      const lrs = (): number[] => s.opt.paramGroups.map((g) => g.lr);
      expectRates(lrs(), want[0]!, `${name} at construction`);
      for (let k = 1; k <= ref.steps; k++) {
        s.opt.step();
        if (k === halveAt) for (const g of s.opt.paramGroups) g.lr *= 0.5;
        for (const sc of scheds) sc.step();
        expectRates(lrs(), want[k]!, `${name} after step ${k}`);
      }
      s.dispose();
    });
  }
  it('the chained case composes the factors: StepLR halves at 3, 6, 9 and MultiStepLR divides by 10 at 5', () => {
    const w = ref.cases.chain_step_multistep!.map((r) => r[0]!);
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.005, 0.0025, 0.0025, 0.0025, 0.00125].forEach((v, k) =>
      expect(w[k]).toBeCloseTo(v, 15),
    );
  });
});

describe('state', () => {
  it('stateDict / loadStateDict resume a schedule, with the optimizer state dict carrying initialLr', () => {
    const s = setup();
    const sched = new MultiStepLR(s.opt, { milestones: [3, 7, 7, 12], gamma: 0.3 });
    for (let k = 0; k < 9; k++) sched.step();
    const sd = sched.stateDict();
    expect(sd).toMatchObject({ lastEpoch: 9, baseLrs: [0.1, 0.02], milestones: [3, 7, 7, 12], gamma: 0.3 });
    expect(sd).not.toHaveProperty('optimizer');
    const osd = s.opt.stateDict();
    expect(osd.paramGroups[1]).toMatchObject({ initialLr: 0.02 });
    expectRates(
      osd.paramGroups.map((g) => g.lr as number),
      ref.cases.multistep![9]!,
      'optimizer state dict',
    );

    // resume: a new optimizer loads its state (with initialLr), a scheduler built with lastEpoch continues
    const t = setup();
    t.opt.loadStateDict(osd);
    const resumed = new MultiStepLR(t.opt, { milestones: [1], gamma: 0.5, lastEpoch: 8 });
    resumed.loadStateDict(sd);
    expect(resumed.milestones).toEqual([3, 7, 7, 12]);
    for (let k = 10; k <= ref.steps; k++) {
      resumed.step();
      expectRates(resumed.getLastLr(), ref.cases.multistep![k]!, `resumed after step ${k}`);
    }
    s.dispose();
    t.dispose();
  });

  it('CosineAnnealingLR built with lastEpoch resumes from the closed form, then continues recursively', () => {
    const s = setup();
    s.opt.paramGroups.forEach((g, i) => {
      g.initialLr = [0.1, 0.02][i]!;
      g.lr = 123; // whatever the groups hold, the first step of a resumed cosine schedule uses the closed form
    });
    const sched = new CosineAnnealingLR(s.opt, { tMax: 10, etaMin: 0.001, lastEpoch: 4 });
    expectRates(sched.getLastLr(), ref.cases.cosine![5]!, 'resumed at epoch 5');
    for (let k = 6; k <= ref.steps; k++) {
      sched.step();
      expectRates(sched.getLastLr(), ref.cases.cosine![k]!, `resumed after step ${k}`);
    }
    s.dispose();
  });

  it('LambdaLR does not save its functions', () => {
    const s = setup();
    const sched = new LambdaLR(s.opt, { lrLambda: LAMBDAS });
    sched.step();
    const sd = sched.stateDict();
    expect(Object.keys(sd).sort()).toEqual(['baseLrs', 'lastEpoch', 'lastLr', 'stepCount']);
    const other = new LambdaLR(s.opt, { lrLambda: LAMBDAS });
    other.loadStateDict(sd);
    other.step();
    expectRates(other.getLastLr(), ref.cases.lambda![2]!, 'LambdaLR resumed');
    expect(() => other.loadStateDict({ ...sd, lrLambdas: [] } as never)).toThrow(
      "stateDict: unknown key 'lrLambdas' for LambdaLR",
    );
    s.dispose();
  });

  it('a scheduler changes the rate the optimizer uses', async () => {
    await noLeak(() => {
      const w = torch.tensor([1], { dtype: 'float64', requiresGrad: true });
      const opt = new optim.SGD([w], { lr: 1 });
      const sched = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
      for (let k = 0; k < 3; k++) {
        torch.tidy(() => w.sum().backward()); // g = 1: w -= lr
        opt.step();
        opt.zeroGrad();
        sched.step();
      }
      expect(w.item()).toBe(1 - 1 - 0.5 - 0.25);
      w.dispose();
    });
  });
});

describe('invalid arguments', () => {
  const s = setup();
  const cases: [string, () => unknown, string][] = [
    [
      'optimizer',
      () => new StepLR({} as never, { stepSize: 1 }),
      'Expected an Optimizer for optimizer but received [object Object] of type object',
    ],
    [
      'stepSize',
      () => new StepLR(s.opt, { stepSize: 0 }),
      'Expected a positive integer for stepSize but received 0 of type number',
    ],
    [
      'gamma',
      () => new StepLR(s.opt, { stepSize: 2, gamma: NaN }),
      'Expected a finite number for gamma but received NaN of type number',
    ],
    [
      'milestones',
      () => new MultiStepLR(s.opt, { milestones: [1, -2] }),
      'Expected an array of non-negative integers for milestones but received [1,-2] of type array',
    ],
    [
      'tMax',
      () => new CosineAnnealingLR(s.opt, { tMax: 1.5 }),
      'Expected a positive integer for tMax but received 1.5 of type number',
    ],
    [
      'etaMin',
      () => new CosineAnnealingLR(s.opt, { tMax: 3, etaMin: -1 }),
      'Expected a non-negative number for etaMin but received -1 of type number',
    ],
    [
      'lrLambda',
      () => new LambdaLR(s.opt, { lrLambda: 3 as never }),
      'Expected a function for lrLambda but received 3 of type number',
    ],
    [
      'lrLambdas count',
      () => new LambdaLR(s.opt, { lrLambda: [LAMBDAS[0]!] }),
      'Expected 2 lrLambdas (one per parameter group) but received 1',
    ],
    [
      'lastEpoch',
      () => new StepLR(s.opt, { stepSize: 1, lastEpoch: -2 }),
      'Expected an integer ≥ -1 for lastEpoch but received -2 of type number',
    ],
    [
      'resume without initialLr',
      () => {
        const t = setup();
        try {
          return new StepLR(t.opt, { stepSize: 1, lastEpoch: 3 });
        } finally {
          t.dispose();
        }
      },
      "param 'initialLr' is not specified in paramGroups[0] when resuming an optimizer (lastEpoch 3)",
    ],
    [
      'loadStateDict',
      () => new StepLR(s.opt, { stepSize: 1 }).loadStateDict({ lastEpoch: 1, baseLrs: [0.1], lastLr: [0.1, 0.1] }),
      'Expected an array of 2 numbers (one per parameter group) for stateDict.baseLrs but received [0.1] of type array',
    ],
  ];
  for (const [name, fn, message] of cases) it(name, () => expect(fn).toThrow(message));
});
