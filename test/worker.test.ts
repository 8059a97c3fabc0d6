import { describe, it, expect } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { noLeak } from './support/helpers.js';

// The same addon file the main thread loaded (an explicit TENSORNORMAL_ADDON wins, as in lib/native.ts).
const ADDON = process.env.TENSORNORMAL_ADDON ?? join(packageRoot, 'build', 'Release', 'tensornormal.node');
const SCRIPT = new URL('./support/worker.mjs', import.meta.url);

interface Reply {
  ok: boolean;
  [key: string]: unknown;
}

/** A worker and a request/reply helper over its message port. */
async function start(): Promise<{ worker: Worker; ask: (msg: object) => Promise<Reply> }> {
  const worker = new Worker(SCRIPT, { workerData: { addon: ADDON } });
  const [ready] = (await once(worker, 'message')) as [Reply];
  expect(ready).toEqual({ ok: true, ready: true, live: 0 });
  const ask = async (msg: object): Promise<Reply> => {
    worker.postMessage(msg);
    const [reply] = (await once(worker, 'message')) as [Reply];
    return reply;
  };
  return { worker, ask };
}

/** sum over i, j of (A B)[i][j] for A[i][j] = (i + 1)(j + seed), B = ones: n * sum_i (i + 1) * sum_j (j + seed). */
const expectedTotal = (n: number, seed: number): number => n * ((n * (n + 1)) / 2) * (n * seed + (n * (n - 1)) / 2);

describe('worker_threads', () => {
  it('two workers and the main thread compute concurrently, each with its own handle table', async () => {
    const held = torch.randn(3, 3); // the main thread holds tensors: a worker's table must not see them
    const mainLive = torch.liveTensors();
    const [w1, w2] = await Promise.all([start(), start()]);
    try {
      const jobs = [
        w1.ask({ kind: 'compute', n: 48, seed: 1, rounds: 300 }),
        w2.ask({ kind: 'compute', n: 32, seed: 5, rounds: 300 }),
      ];
      // meanwhile the main thread keeps computing with the TypeScript API
      let mainTotal = 0;
      for (let r = 0; r < 300; r++)
        mainTotal = torch.tidy(() =>
          torch
            .ones(16, 16, { dtype: 'float64' })
            .matmul(torch.full([16, 16], 2, { dtype: 'float64' }))
            .sum()
            .item(),
        );
      const [r1, r2] = await Promise.all(jobs);
      expect(mainTotal).toBe(16 * 16 * 32);
      expect(r1).toEqual({ ok: true, live0: 0, liveMax: 4, liveAfter: 0, total: expectedTotal(48, 1) });
      expect(r2).toEqual({ ok: true, live0: 0, liveMax: 4, liveAfter: 0, total: expectedTotal(32, 5) });
      // nothing the workers did shows in the main thread's table
      expect(torch.liveTensors()).toBe(mainLive);
    } finally {
      await Promise.all([w1.worker.terminate(), w2.worker.terminate()]);
      held.dispose();
    }
  });

  it("errors in a worker are that environment's TorchError, with codes", async () => {
    const w = await start();
    try {
      expect(await w.ask({ kind: 'throw', which: 'c10' })).toEqual({
        ok: false,
        ownClass: true,
        name: 'TorchError',
        code: 'TORCH_ERROR',
        message: 'test failure from c10',
      });
      expect(await w.ask({ kind: 'throw', which: 'alloc' })).toEqual({
        ok: false,
        ownClass: true,
        name: 'TorchError',
        code: 'OUT_OF_MEMORY',
        message: 'out of memory',
      });
      // the worker is still usable after its errors
      expect((await w.ask({ kind: 'compute', n: 4, seed: 2, rounds: 1 })).total).toBe(expectedTotal(4, 2));
    } finally {
      await w.worker.terminate();
    }
  });

  it('the compiled TypeScript API (dist/) works in two workers at once: modules, autograd, an optimizer, tidy', async () => {
    const dist = join(packageRoot, 'dist', 'index.js');
    // each worker fits y = 3x with a Linear layer and SGD; the weight must approach 3 in both, leak-free
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.dist).then((t) => {
        t.manualSeed(workerData.seed);
        const lin = new t.nn.Linear(1, 1, { bias: false, dtype: 'float64' });
        const opt = new t.optim.SGD(lin.parameters(), { lr: 0.1 });
        const x = t.tidy(() => t.linspace(-1, 1, 16, { dtype: 'float64' }).reshape(16, 1));
        const y = x.mul(3);
        const w0 = lin.weight.item();
        for (let k = 0; k < 200; k++) {
          t.tidy(() => t.nn.functional.mseLoss(lin.call(x), y).backward());
          opt.step();
          opt.zeroGrad();
        }
        const w = lin.weight.item();
        opt.dispose(); lin.dispose(); x.dispose(); y.dispose();
        parentPort.postMessage({ w0, w, live: t.memory().tensors });
      });`;
    const workers = [1, 2].map((seed) => new Worker(code, { eval: true, workerData: { dist, seed } }));
    const replies = (await Promise.all(workers.map((w) => once(w, 'message')))) as [
      { w0: number; w: number; live: number },
    ][];
    // gradient descent on mean((w x - 3 x)^2): w - 3 shrinks by 1 - 2 lr mean(x^2) per step
    const m2 = Array.from({ length: 16 }, (_, i) => (-1 + (2 * i) / 15) ** 2).reduce((a, b) => a + b) / 16;
    for (const [r] of replies) {
      expect(Math.abs(r.w - (3 + (r.w0 - 3) * (1 - 2 * 0.1 * m2) ** 200))).toBeLessThan(1e-12);
      expect(r.live).toBe(0);
    }
    expect(replies[0]![0].w0).not.toBe(replies[1]![0].w0); // different draws (the CPU generator is process-wide)
    await Promise.all(workers.map((w) => w.terminate()));
  });

  it('gradient hooks run JavaScript in a worker; a worker terminated while a graph holds its hook exits cleanly', async () => {
    const w = await start();
    // dL/dx = 2 (dL/dy) 2x = 4x
    expect(await w.ask({ kind: 'hook', keep: false })).toEqual({ ok: true, seen: 1, grad: [4, 8, 12] });
    expect(await w.ask({ kind: 'hook', keep: true })).toEqual({ ok: true, seen: 1, grad: [4, 8, 12] });
    expect(await w.worker.terminate()).toBe(1);
    torch.tidy(() => expect(torch.arange(5).sum().item()).toBe(10));
  });

  it('terminating a worker that holds tensors, or letting it exit, leaves the main thread working', () =>
    noLeak(async () => {
      const a = await start();
      expect(await a.ask({ kind: 'hold', count: 8 })).toEqual({ ok: true, live: 8 });
      expect(await a.worker.terminate()).toBe(1);
      const b = await start();
      expect(await b.ask({ kind: 'hold', count: 2 })).toEqual({ ok: true, live: 2 });
      b.worker.postMessage({ kind: 'exit' });
      const [code] = (await once(b.worker, 'exit')) as [number];
      expect(code).toBe(0);
      // a fresh worker after those starts from an empty table, and the main thread still computes
      const c = await start();
      expect((await c.ask({ kind: 'compute', n: 8, seed: 3, rounds: 2 })).total).toBe(expectedTotal(8, 3));
      expect(await c.worker.terminate()).toBe(1);
      torch.tidy(() => expect(torch.arange(5).sum().item()).toBe(10));
    }));
});
