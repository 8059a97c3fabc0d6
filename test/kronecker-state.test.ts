// The Kronecker family's state dicts across versions: checkpoints written by the code before the factors moved into
// the optimizers' per-parameter `state` (test/fixtures/kronecker-*.safetensors, made by the `TN_WRITE_FIXTURES=1` run
// of this file at commit 23d92e4) load into the current TNT, Shampoo and KFAC, and the steps that follow equal the
// steps the old code took after saving (stored in the same file). Gradients and statistics are deterministic (no
// sampling), so the continuation depends on the loaded state alone.
import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as torch from '../lib/index.js';
import { TNT, Shampoo, KFAC } from '../lib/optim/index.js';
import { Tensor } from '../lib/tensor.js';
import { lcg, noLeak } from './support/helpers.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const WRITE = process.env.TN_WRITE_FIXTURES === '1';
const BEFORE = 4; // steps before the save
const AFTER = 3; // steps after it, compared

type Kind = 'tnt' | 'shampoo' | 'kfac';

/** Deterministic values in [-1, 1) for step t of tensor j (the same on every run and version). */
function values(n: number, t: number, j: number): number[] {
  const r = lcg(1000 * t + 17 * j + 5);
  return Array.from({ length: n }, () => 2 * r() - 1);
}
function fill(shape: number[], t: number, j: number, dtype: torch.DType = 'float32'): Tensor {
  return torch.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      t,
      j,
    ),
    { shape, dtype },
  );
}

interface Setup {
  params: Tensor[];
  opt: TNT | Shampoo | KFAC;
  /** One step t: statistics (when the optimizer gathers them outside step()), gradients, step. */
  step(t: number): void;
  dispose(): void;
}

function setup(kind: Kind): Setup {
  if (kind === 'kfac') {
    const l1 = new torch.nn.Linear(4, 3);
    const l2 = new torch.nn.Linear(3, 2, { bias: false });
    const model = new torch.nn.Sequential(l1, l2);
    const params = model.parameters();
    torch.tidy(() => torch.noGrad(() => params.forEach((p, j) => p.copy_(fill(p.shape, 0, j)))));
    const opt = new KFAC(model, { lr: 0.1, damping: 0.05, inverseEvery: 2, weightDecay: 0.01 });
    return {
      params,
      opt,
      step(t) {
        torch.tidy(() => {
          opt.updateStatistics([
            { module: l1, input: fill([5, 4], t, 90), outputGrad: fill([5, 3], t, 91) },
            { module: l2, input: fill([5, 3], t, 92), outputGrad: fill([5, 2], t, 93) },
          ]);
          params.forEach((p, j) => (p.grad = fill(p.shape, t, 50 + j)));
          opt.step();
        });
      },
      dispose() {
        opt.zeroGrad();
        opt.dispose();
        model.dispose();
      },
    };
  }
  // A Linear weight (2 factors), its bias (1), a conv weight (3, one of them diagonal: maxFactorDim 3 < 4) and a
  // scalar (not preconditioned); a second group with its own lr.
  const shapes = [[3, 5], [3], [2, 3, 2, 2], [1]];
  const params = shapes.map((s, j) => torch.tidy(() => fill(s, 0, j).requiresGrad_(true)));
  const groups = [{ params: params.slice(0, 2) }, { params: params.slice(2), lr: 0.05 }];
  const opt =
    kind === 'tnt'
      ? new TNT(groups, {
          lr: 0.1,
          damping: 0.2,
          inverseEvery: 2,
          maxFactorDim: 3,
          factorDtype: 'float64',
          weightDecay: 0.01,
        })
      : new Shampoo(groups, { lr: 0.1, epsilon: 0.01, inverseEvery: 2, maxFactorDim: 3, weightDecay: 0.01 });
  return {
    params,
    opt,
    step(t) {
      torch.tidy(() => {
        if (opt instanceof TNT) opt.updateStatistics(params.map((p, j) => fill(p.shape, t, 70 + j)));
        params.forEach((p, j) => (p.grad = fill(p.shape, t, 50 + j)));
        opt.step();
      });
    },
    dispose() {
      opt.zeroGrad();
      opt.dispose();
      torch.dispose(params);
    },
  };
}

const data = (ts: Tensor[]): number[][] => ts.map((t) => [...(t.dataSync() as Iterable<number>)]);

describe('Kronecker-family state dicts written by the earlier layout', () => {
  for (const kind of ['tnt', 'shampoo', 'kfac'] as const) {
    const path = `${fixtures}kronecker-${kind}.safetensors`;

    if (WRITE)
      it(`${kind}: writes the fixture`, () => {
        mkdirSync(fixtures, { recursive: true });
        const s = setup(kind);
        for (let t = 1; t <= BEFORE; t++) s.step(t);
        const saved = s.params.map((p) => p.clone());
        torch.save(path, { optimizer: s.opt, params: saved });
        for (let t = BEFORE + 1; t <= BEFORE + AFTER; t++) s.step(t);
        torch.save(`${fixtures}kronecker-${kind}.expected.safetensors`, { params: s.params.map((p) => p.clone()) });
        torch.dispose(saved);
        s.dispose();
      });

    it(`${kind}: loads, and the next steps equal the old code's`, async () => {
      expect(existsSync(path)).toBe(true);
      await noLeak(() => {
        const ck = torch.load(path);
        const ex = torch.load(`${fixtures}kronecker-${kind}.expected.safetensors`);
        // the earlier layout: curvature tensors spliced into the parameters' entries beside the momentum
        const old = {
          tnt: ['momentum', 'factor0', 'factor1', 'inverse0', 'inverse1'],
          shampoo: ['momentum', 'factor0', 'factor1', 'root0', 'root1'],
          kfac: ['momentum', 'factorA', 'factorG', 'inverseA', 'inverseG'],
        };
        expect(Object.keys(ck.optimizerStateDict!.state[0]!).sort()).toEqual(old[kind].sort());
        const s = setup(kind);
        torch.noGrad(() => s.params.forEach((p, j) => p.copy_((ck.meta.params as Tensor[])[j]!)));
        s.opt.loadStateDict(ck.optimizerStateDict as Parameters<typeof s.opt.loadStateDict>[0]);
        expect(s.opt.stepCount).toBe(BEFORE);
        // a second optimizer loaded from the first one's state dict (the current layout) takes the same steps
        const s2 = setup(kind);
        torch.noGrad(() => s2.params.forEach((p, j) => p.copy_(s.params[j]!)));
        torch.tidy(() => s2.opt.loadStateDict(s.opt.stateDict() as Parameters<typeof s2.opt.loadStateDict>[0]));
        for (let t = BEFORE + 1; t <= BEFORE + AFTER; t++) {
          s.step(t);
          s2.step(t);
        }
        expect(s.opt.skippedSteps).toBe(0);
        // The fixture's steps ran on the libtorch and OpenBLAS kernels that wrote it (1.13, SkylakeX). Other kernels
        // (Haswell, Prescott: CI machines set OPENBLAS_CORETYPE) or another libtorch (2.6: Shampoo's eigh differs in
        // the last bits) give the same steps to float32 rounding, not bit for bit. A state that was not loaded
        // (fresh factors and momentum, the third optimizer below) is off by far more than this bound.
        const got = data(s.params).flat(),
          want = data(ex.meta.params as Tensor[]).flat();
        expect(got.length).toBe(want.length);
        const off = (xs: number[]): number =>
          Math.max(...xs.map((g, i) => Math.abs(g - want[i]!) / Math.max(1, Math.abs(want[i]!))));
        const TOL = 1e-5;
        expect(off(got)).toBeLessThanOrEqual(TOL);
        const fresh = setup(kind);
        torch.noGrad(() => fresh.params.forEach((p, j) => p.copy_((ck.meta.params as Tensor[])[j]!)));
        for (let t = BEFORE + 1; t <= BEFORE + AFTER; t++) fresh.step(t);
        expect(off(data(fresh.params).flat())).toBeGreaterThan(100 * TOL);
        fresh.dispose();
        expect(data(s2.params)).toEqual(data(s.params));
        s.dispose();
        s2.dispose();
        ck.dispose();
        ex.dispose();
      });
    });
  }
});
