// distributed: c10d process group and collectives, DDP, DistributedSampler, the launcher, distributed optimizer
// statistics, failures, and a mixed Node/Python group. Ranks are child processes on 127.0.0.1 running
// test/support/dist-worker.mjs against the transpiled library.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { distributed as dist, data, TorchError } from '../lib/index.js';
import { addonPath, repoRoot, transpileLib } from './support/transpile-lib.js';
import { noLeak, freePort } from './support/helpers.js';

let work: string;
let lib: string;
const worker = join(repoRoot, 'test', 'support', 'dist-worker.mjs');

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tn-dist-'));
  transpileLib(work);
  lib = join(work, 'lib', 'index.js');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface RankResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Record<string, unknown>[];
  stderr: string;
}

/** Runs `cmd args` as `world` ranks (or the given rank list) and collects their JSON lines; kills all after `limitMs`. */
async function runRanks(
  world: number,
  argv: string[],
  opts: {
    limitMs?: number;
    env?: Record<string, string>;
    ranks?: number[];
    cmd?: (rank: number) => [string, string[]];
  } = {},
): Promise<RankResult[]> {
  const port = await freePort();
  const ranks = opts.ranks ?? Array.from({ length: world }, (_, r) => r);
  const children: ChildProcess[] = [];
  const results = ranks.map((rank) => {
    const [cmd, a] = opts.cmd?.(rank) ?? [process.execPath, [worker, ...argv]];
    const child = spawn(cmd, a, {
      env: {
        ...process.env,
        TENSORNORMAL_ADDON: addonPath,
        TN_LIB: lib,
        OMP_NUM_THREADS: '1',
        TENSORNORMAL_NUM_THREADS: '1',
        RANK: String(rank),
        WORLD_SIZE: String(world),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        USE_LIBUV: '0', // a Python torch 2.4+ rank asks its TCPStore for libuv otherwise, which Debian 13's build lacks
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const r: RankResult = { code: null, signal: null, lines: [], stderr: '' };
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) if (l.startsWith('{')) r.lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (r.stderr += s));
    return new Promise<RankResult>((resolve) =>
      child.on('close', (code, signal) => resolve(Object.assign(r, { code, signal }))),
    );
  });
  const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), opts.limitMs ?? 45_000);
  try {
    return await Promise.all(results);
  } finally {
    clearTimeout(timer);
  }
}

function line(r: RankResult, key: string): Record<string, unknown> {
  const l = r.lines.find((x) => key in x);
  if (l === undefined)
    throw new Error(`rank output has no "${key}" line; exit ${r.code}/${r.signal}; stderr:\n${r.stderr}`);
  return l;
}

// ------------------------------------------------------------------ collectives
describe('collectives over Gloo', () => {
  it('allReduce (sum, avg, max, min, product), broadcast, allGather, reduceScatter, barrier for every dtype, 3 ranks', async () => {
    const W = 3;
    const rs = await runRanks(W, ['collectives']);
    const small = (dtype: string, rank: number, i: number): number =>
      dtype === 'bool' ? (rank + i) % 2 : dtype === 'uint8' || dtype === 'int8' ? rank + 1 + i : (rank + 1) * (i + 1);
    const mm = (dtype: string, rank: number, i: number): number =>
      dtype === 'bool' ? (rank + i) % 2 : (rank * 7 + i * 3) % 5;
    const ranks = [0, 1, 2];
    for (const r of rs) {
      const { res, ticks } = line(r, 'res') as {
        res: Record<string, Record<string, number[] | number[][]>> & {
          big: { min: number; max: number };
          bytes: number;
          leaked: number;
        };
        ticks: number;
      };
      expect(r.code, r.stderr).toBe(0);
      for (const dtype of torch.DTYPES) {
        const got = res[dtype]!;
        const idx = [0, 1, 2, 3];
        const boolish = (v: number): number => (dtype === 'bool' ? (v !== 0 ? 1 : 0) : v);
        expect(got.sum, `${dtype} sum`).toEqual(
          idx.map((i) => boolish(ranks.reduce((a, k) => a + small(dtype, k, i), 0))),
        );
        expect(got.product, `${dtype} product`).toEqual(
          idx.map((i) => boolish(ranks.reduce((a, k) => a * small(dtype, k, i), 1))),
        );
        expect(got.max, `${dtype} max`).toEqual(idx.map((i) => Math.max(...ranks.map((k) => mm(dtype, k, i)))));
        expect(got.min, `${dtype} min`).toEqual(idx.map((i) => Math.min(...ranks.map((k) => mm(dtype, k, i)))));
        if (got.avg !== undefined) {
          const want = idx.map((i) => ranks.reduce((a, k) => a + small(dtype, k, i), 0) / W);
          (got.avg as number[]).forEach((v, i) =>
            expect(v, `${dtype} avg`).toBeCloseTo(want[i]!, dtype.endsWith('16') ? 1 : 6),
          );
        } else expect(['float32', 'float64', 'float16', 'bfloat16']).not.toContain(dtype);
        expect(got.broadcast, `${dtype} broadcast`).toEqual(idx.map((i) => (dtype === 'bool' ? 1 : 10 + i)));
        expect(got.allGather, `${dtype} allGather`).toEqual(
          ranks.map((k) => idx.map((i) => (dtype === 'bool' ? k % 2 : k + i))),
        );
        const me = line(r, 'res').rank as number;
        expect(got.reduceScatter, `${dtype} reduceScatter`).toEqual(
          idx.map((i) =>
            boolish(ranks.reduce((a, k) => a + (dtype === 'bool' ? (k === me ? 1 : 0) : (me + 1) * (i + 1) + k), 0)),
          ),
        );
      }
      expect(res.big).toEqual({ min: 6, max: 6 });
      expect(res.leaked).toBe(0);
      expect(res.bytes).toBeGreaterThan(8 << 20); // the 8 MiB all-reduce at least
      expect(ticks, 'the event loop ran while the 8 MiB all-reduce was in flight').toBeGreaterThan(0);
    }
  }, 60_000);
});

describe('reduceScatter, allGatherIntoTensor, reduce, subgroups, barrier timeout (c10d semantics)', () => {
  it('3 ranks against hand-computed values', async () => {
    const W = 3,
      n = 3;
    const rs = await runRanks(W, ['collectives2']);
    const v = (r: number, k: number, i: number): number => (r + 1) * (k + 1) + i;
    const ranks = [0, 1, 2];
    for (const r of rs) {
      const { res } = line(r, 'res') as { res: Record<string, unknown> & { leaked: number } };
      const rank = Number((r.lines[0] as { rank: number }).rank);
      const blk = (f: (vs: number[]) => number): number[] =>
        [0, 1, 2].slice(0, n).map((i) => f(ranks.map((q) => v(q, rank, i))));
      for (const dtype of ['float64', 'float32', 'int64', 'int16']) {
        const got = res[dtype] as Record<string, number[]>;
        expect(got.sum, `${dtype} sum`).toEqual(blk((vs) => vs.reduce((a, b) => a + b, 0)));
        expect(got.product, `${dtype} product`).toEqual(blk((vs) => vs.reduce((a, b) => a * b, 1)));
        expect(got.max, `${dtype} max`).toEqual(blk((vs) => Math.max(...vs)));
        expect(got.min, `${dtype} min`).toEqual(blk((vs) => Math.min(...vs)));
        if (dtype.startsWith('float')) {
          const want = blk((vs) => vs.reduce((a, b) => a + b, 0) / W);
          got.avg!.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 5));
        }
        expect(got.list, `${dtype} list form`).toEqual(got.sum);
        expect(got.gather, `${dtype} allGatherIntoTensor`).toEqual(ranks.flatMap((q) => [q * 10, q * 10 + 1]));
        if (rank === W - 1) expect(got.reduce, `${dtype} reduce`).toEqual([1 + 2 + 3, 1 + 3 + 5]);
      }
      // a real reduce-scatter: (W - 1) blocks of n float64 leave each rank, not an all-reduce of W n
      expect(res.rsBytes).toBe((W - 1) * n * 8);
      const inA = rank === 0 || rank === W - 1;
      expect(res.member).toEqual([inA ? { rank: rank === 0 ? 0 : 1, size: 2 } : null, rank === 1 ? { rank: 0 } : null]);
      if (inA) {
        expect(res.subSum).toBe(1 + W);
        expect(res.subBroadcast).toBe((W - 1) * 100);
        expect(res.subGather).toEqual([0, W - 1]);
        expect(res.destroyed).toBe('DISTRIBUTED');
      }
      expect(res.worldSum).toBe(W);
      const b = res.barrier as { code: string; ms: number };
      // the late rank 0 may find the others' barrier messages already there (Gloo): either outcome, never a hang
      if (rank !== 0) {
        expect(b.code).toBe('DISTRIBUTED');
        expect(b.ms).toBeGreaterThanOrEqual(550);
        expect(b.ms).toBeLessThan(2400); // it did not wait for rank 0 (2500 ms late)
      }
      expect(res.leaked).toBe(0);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 60_000);
});

describe('initProcessGroup and collectives in one process (world size 1) and misuse', () => {
  it('rejects collectives before initProcessGroup with a TorchError DISTRIBUTED', async () => {
    expect(dist.isAvailable()).toBe(true);
    expect(dist.isInitialized()).toBe(false);
    const t = torch.ones([2]);
    await expect(dist.allReduce(t)).rejects.toMatchObject({
      code: 'DISTRIBUTED',
      message: expect.stringContaining('not initialized'),
    });
    expect(() => dist.getRank()).toThrow(TorchError);
    t.dispose();
  });

  it('a one-rank group over tcp:// and file://; checks its arguments', async () => {
    const port = await freePort();
    await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeout: 10_000 });
    try {
      expect([dist.getRank(), dist.getWorldSize(), dist.getBackend()]).toEqual([0, 1, 'gloo']);
      await expect(
        dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1 }),
      ).rejects.toMatchObject({ code: 'DISTRIBUTED', message: expect.stringContaining('twice') });
      await noLeak(async () => {
        const t = torch.tensor([1.5, -2], { dtype: 'float64' });
        await dist.allReduce(t, 'avg');
        expect(t.toArray()).toEqual([1.5, -2]);
        const i = torch.tensor([3, 4], { dtype: 'int32' });
        await expect(dist.allReduce(i, 'avg')).rejects.toThrow(
          new TypeError("allReduce: op 'avg' needs a floating-point tensor, but it is int32"),
        );
        await expect(dist.allReduce(t, 'mean' as never)).rejects.toThrow(RangeError);
        await expect(dist.allReduce([1] as never)).rejects.toThrow(
          new TypeError('Expected a Tensor for tensor but received [1] of type array'),
        );
        const nc = torch.tidy(() => torch.ones([2, 3]).t());
        await expect(dist.allReduce(nc)).rejects.toThrow('tensor must be contiguous');
        await expect(dist.broadcast(t, 1)).rejects.toThrow(RangeError);
        await expect(dist.allGather([t, t], t)).rejects.toThrow('it needs one per rank (1)');
        await expect(dist.allGather([i], t)).rejects.toThrow(
          'allGather: tensorList[0] is int32 [2] but tensor is float64 [2]',
        );
        await dist.barrier();
        for (const x of [t, i, nc]) x.dispose();
      });
    } finally {
      await dist.destroyProcessGroup();
    }
    expect(dist.isInitialized()).toBe(false);
    const file = join(work, 'rendezvous');
    await dist.initProcessGroup({ initMethod: `file://${file}`, rank: 0, worldSize: 1, timeout: 10_000 });
    const t = torch.ones([3]);
    await dist.allReduce(t, 'max');
    expect(t.toArray()).toEqual([1, 1, 1]);
    t.dispose();
    await dist.destroyProcessGroup();
  });

  it('DistributedDataParallel and CurvatureSync check their arguments', async () => {
    const model = new torch.nn.Linear(3, 2);
    expect(() => new torch.nn.parallel.DistributedDataParallel(model)).toThrow(
      expect.objectContaining({ code: 'DISTRIBUTED', message: expect.stringContaining('initProcessGroup') }),
    );
    const port = await freePort();
    await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeout: 10_000 });
    try {
      expect(() => new torch.nn.parallel.DistributedDataParallel({} as never)).toThrow('Expected a Module for module');
      expect(() => new torch.nn.parallel.DistributedDataParallel(model, { bucketCapMB: 0 })).toThrow(RangeError);
      const ddp = new torch.nn.parallel.DistributedDataParallel(model);
      const x = torch.ones([1, 3]);
      expect(() => ddp.call(x)).toThrow("rank 0's parameters have not arrived yet");
      await ddp.ready;
      torch.tidy(() => ddp.call(x).sum().backward());
      await ddp.synchronize();
      expect(model.weight.grad!.toArray()).toEqual([
        [1, 1, 1],
        [1, 1, 1],
      ]); // W = 1: the gradient itself
      // later steps (buckets rebuilt after the first) hold no more native tensors than before
      await noLeak(async () => {
        for (let k = 0; k < 3; k++) {
          torch.tidy(() => ddp.call(x).sum().backward());
          await ddp.synchronize();
        }
      });
      expect(model.weight.grad!.toArray()).toEqual([
        [4, 4, 4],
        [4, 4, 4],
      ]); // accumulated: 1 + 3 backwards
      expect(ddp.stateDict().has('module.weight')).toBe(true);
      const tnt = new torch.optim.TNT(model.parameters(), { lr: 0.1 });
      expect(new dist.CurvatureSync(tnt).inverses).toBe('sharded');
      expect(new dist.CurvatureSync(tnt).shard).toBe('all');
      expect(new dist.CurvatureSync(tnt, { inverses: 'replicated' }).shard).toBe('none');
      const sh = new torch.optim.Shampoo(model.parameters(), { lr: 0.1 });
      expect(new dist.CurvatureSync(sh).shard).toBe('all');
      expect(new dist.CurvatureSync(sh, { inverses: 'replicated' }).inverses).toBe('replicated');
      expect(() => new dist.CurvatureSync(tnt, { shard: 'half' as never })).toThrow(RangeError);
      const kfac = new torch.optim.KFAC(model, { lr: 0.1 });
      expect(new dist.CurvatureSync(kfac).shard).toBe('all');
      expect(new dist.CurvatureSync(kfac, { shard: 'inverses' }).shard).toBe('inverses');
      kfac.dispose?.();
      expect(() => new dist.CurvatureSync(sh, { inverses: 'sharded' })).toThrow(
        "inverses 'sharded' is implemented for TNT and KFAC",
      );
      expect(() => new dist.CurvatureSync(tnt, { inverses: 'all' as never })).toThrow(RangeError);
      expect(() => new dist.CurvatureSync(new torch.optim.SGD(model.parameters(), { lr: 1 }) as never)).toThrow(
        'Expected a TNT, KFAC or Shampoo optimizer',
      );
      await expect(new dist.CurvatureSync(sh).sampledBackward(x, new torch.Bernoulli())).rejects.toThrow(
        'Shampoo has no sampled backward',
      );
      x.dispose();
      ddp.dispose();
      for (const o of [tnt, sh]) o.dispose?.();
    } finally {
      await dist.destroyProcessGroup();
    }
  });

  it('argument errors name the argument', async () => {
    await expect(dist.initProcessGroup({ backend: 'mpi' as never, rank: 0, worldSize: 1 })).rejects.toThrow(RangeError);
    await expect(dist.initProcessGroup({ initMethod: 'udp://x', rank: 0, worldSize: 1 })).rejects.toThrow(
      "Expected 'env://', 'tcp://host:port' or 'file:///path' for initMethod",
    );
    await expect(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1', rank: 0, worldSize: 1 })).rejects.toThrow(
      RangeError,
    );
    await expect(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 2, worldSize: 2 })).rejects.toThrow(
      'Expected a rank below worldSize (2) for rank but received 2',
    );
    await expect(dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 0, worldSize: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(
      dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 0, worldSize: 1, timeout: -1 }),
    ).rejects.toThrow(RangeError);
    const keys = ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] as const;
    const saved = keys.map((k) => process.env[k]);
    try {
      delete process.env.RANK;
      delete process.env.MASTER_ADDR;
      process.env.WORLD_SIZE = '2';
      await expect(dist.initProcessGroup()).rejects.toThrow('rank is not set (pass rank or set RANK)');
      process.env.RANK = '0';
      await expect(dist.initProcessGroup()).rejects.toThrow("initMethod 'env://' needs MASTER_ADDR");
      process.env.RANK = 'x';
      await expect(dist.initProcessGroup()).rejects.toThrow('environment variable RANK');
    } finally {
      keys.forEach((k, i) => {
        if (saved[i] === undefined) delete process.env[k];
        else process.env[k] = saved[i];
      });
    }
    if (!dist.isNcclAvailable())
      await expect(dist.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 })).rejects.toMatchObject({
        code: 'DISTRIBUTED',
      });
    expect(dist.isInitialized()).toBe(false);
  });

  it('a rendezvous the other ranks never join rejects with DISTRIBUTED after the timeout', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await expect(
      dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 2, timeout: 1500 }),
    ).rejects.toMatchObject({ code: 'DISTRIBUTED' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(dist.isInitialized()).toBe(false);
  });
});

// ------------------------------------------------------------------ data parallel training equals one process
type Weights = number[][];
function maxRelErr(a: Weights, b: Weights): number {
  let num = 0,
    den = 0;
  a.forEach((w, i) =>
    w.forEach((v, j) => {
      num = Math.max(num, Math.abs(v - b[i]![j]!));
      den = Math.max(den, Math.abs(v));
    }),
  );
  return num / den;
}
async function trainRun(
  world: number,
  argv: string[],
): Promise<
  { weights: Weights; bytes: number; stats: { gradient: number; factors: number } | null; owned: number[] | null }[]
> {
  const rs = await runRanks(world, ['train', ...argv]);
  return rs.map((r) => {
    expect(r.code, r.stderr).toBe(0);
    return line(r, 'weights') as never;
  });
}

describe('2 ranks with B/2 each equal 1 process with B (float64, 5 steps, rel err <= 1e-10)', () => {
  for (const opt of ['sgd', 'adam', 'tnt', 'kfac', 'shampoo']) {
    it(
      opt,
      async () => {
        const [ref] = await trainRun(1, [opt, 'single']);
        const modes =
          opt === 'tnt'
            ? ['ddp', 'sharded', 'all']
            : opt === 'kfac'
              ? ['ddp', 'sharded', 'all']
              : opt === 'sgd'
                ? ['ddp', 'nosync']
                : opt === 'shampoo'
                  ? ['ddp', 'all']
                  : ['ddp'];
        for (const mode of modes) {
          const ranks = await trainRun(2, [opt, mode]);
          for (const r of ranks) {
            expect(maxRelErr(ref!.weights, r.weights), `${opt} ${mode}`).toBeLessThanOrEqual(1e-10);
            // and training moved the weights away from the start
            expect(maxRelErr(ref!.weights, await initialWeights()), 'weights moved').toBeGreaterThan(1e-3);
          }
          if (opt === 'shampoo')
            expect(ranks.map((r) => r.owned)).toEqual(
              mode === 'all'
                ? [
                    [0, -1, -1, -1],
                    [-1, 1, 2, 3],
                  ]
                : [
                    [0, 1, 2, 3],
                    [0, 1, 2, 3],
                  ],
            );
          if (opt === 'kfac') {
            // layers' statistics (A 7x7, G 5x5 and A 6x6, G 3x3) live on their owners only: by cost layer 0 on rank 0,
            // layer 1 on rank 1 (shard 'all'); everywhere otherwise
            expect(ranks.map((r) => r.owned)).toEqual(
              mode === 'all'
                ? [
                    [0, -1],
                    [-1, 1],
                  ]
                : [
                    [0, 1],
                    [0, 1],
                  ],
            );
            if (mode === 'all')
              // per step: the reduce-scatter of 2 padded blocks (the larger: 7^2 + 5^2 + 1 flag) sends one block, the
              // all-gather of the updated layer parameters one block (the larger: W1 and b1, 30 + 5)
              expect(ranks[0]!.bytes).toBe(5 * (7 * 7 + 5 * 5 + 1 + 30 + 5) * 8);
          }
          if (opt === 'tnt') {
            // one sampled gradient per statistics step (5 steps), plus the inverses when sharded
            const { gradient, factors } = ranks[0]!.stats!;
            expect(gradient).toBe((6 * 5 + 5 + 5 * 3 + 3) * 8);
            expect(factors).toBe((5 * 5 + 6 * 6 + 5 * 5 + 3 * 3 + 5 * 5 + 3 * 3) * 8); // d^2 per dimension of W1, b1, W2, b2
            if (mode === 'ddp') expect(ranks[0]!.bytes).toBe(5 * gradient);
            else expect(ranks[0]!.bytes).toBeGreaterThan(5 * gradient);
            if (mode === 'all') {
              // each parameter's curvature lives on its owner only: by cost W1 (5x6) on rank 0, W2, b1, b2 on rank 1
              expect(ranks.map((r) => r.owned)).toEqual([
                [0, -1, -1, -1],
                [-1, 1, 2, 3],
              ]);
            } else expect(ranks[0]!.owned).toEqual([0, 1, 2, 3]);
          }
        }
      },
      60_000,
    );
  }

  it('fit() drives DDP: a DataLoader with a DistributedSampler on 2 ranks equals one process, 2 epochs', async () => {
    const [ref] = (await runRanks(1, ['fit', 'single'])).map((r) => line(r, 'weights') as { weights: Weights });
    for (const r of await runRanks(2, ['fit', 'ddp'])) {
      expect(r.code, r.stderr).toBe(0);
      expect(maxRelErr(ref!.weights, (line(r, 'weights') as { weights: Weights }).weights)).toBeLessThanOrEqual(1e-10);
    }
  }, 60_000);

  it('fit() drives TNT across ranks through distributed.CurvatureSync: 2 ranks equal one process, 2 epochs', async () => {
    const [ref] = (await runRanks(1, ['fit', 'single', 'tnt'])).map((r) => line(r, 'weights') as { weights: Weights });
    const init = 0.1; // the first weight before training (see dist-worker.mjs): TNT moved it
    expect(Math.abs(ref!.weights[0]![0]! - init)).toBeGreaterThan(1e-3);
    for (const r of await runRanks(2, ['fit', 'ddp', 'tnt'])) {
      expect(r.code, r.stderr).toBe(0);
      expect(maxRelErr(ref!.weights, (line(r, 'weights') as { weights: Weights }).weights)).toBeLessThanOrEqual(1e-10);
    }
  }, 60_000);

  it('TNT with inverses sharded over 4 ranks (B/4 each) equals 1 process', async () => {
    const [ref] = await trainRun(1, ['tnt', 'single']);
    for (const r of await trainRun(4, ['tnt', 'sharded']))
      expect(maxRelErr(ref!.weights, r.weights)).toBeLessThanOrEqual(1e-10);
  }, 60_000);

  it("TNT with all its curvature work divided (shard 'all') over 4 ranks equals 1 process", async () => {
    const [ref] = await trainRun(1, ['tnt', 'single']);
    const ranks = await trainRun(4, ['tnt', 'all']);
    for (const r of ranks) expect(maxRelErr(ref!.weights, r.weights)).toBeLessThanOrEqual(1e-10);
    // one owner per parameter, every parameter owned (4 parameters, 4 ranks: one each)
    const owned = ranks.flatMap((r) => r.owned!.filter((i) => i >= 0));
    expect(owned.sort()).toEqual([0, 1, 2, 3]);
  }, 60_000);

  it("KFAC with all its curvature work divided (shard 'all') over 4 ranks (two own no layer) equals 1 process", async () => {
    const [ref] = await trainRun(1, ['kfac', 'single']);
    const ranks = await trainRun(4, ['kfac', 'all']);
    for (const r of ranks) expect(maxRelErr(ref!.weights, r.weights)).toBeLessThanOrEqual(1e-10);
    const owned = ranks.map((r) => r.owned!.filter((i) => i >= 0));
    expect(owned.flat().sort()).toEqual([0, 1]);
    expect(owned.filter((o) => o.length === 0)).toHaveLength(2);
  }, 60_000);

  it('checkpoint: rank 0 writes after step 3, every rank restores, the resumed run ends where the whole run does', async () => {
    for (const [opt, mode] of [
      ['tnt', 'ddp'],
      ['adam', 'ddp'],
      ['tnt', 'all'],
      ['kfac', 'all'],
    ] as const) {
      const path = join(work, `ckpt-${opt}-${mode}.safetensors`);
      const whole = await trainRun(2, [opt, mode, '5', 'save', path]);
      const resumed = await trainRun(2, [opt, mode, '5', 'resume', path]);
      for (const r of resumed) expect(maxRelErr(whole[0]!.weights, r.weights), opt).toBeLessThanOrEqual(1e-12);
    }
  }, 90_000);
});

let initial: Weights | null = null;
async function initialWeights(): Promise<Weights> {
  if (initial === null) initial = (await trainRun(1, ['sgd', 'single', '0']))[0]!.weights;
  return initial;
}

// ------------------------------------------------------------------ Python interoperability
const python = '/usr/bin/python3';
const pyTorch = spawnSync(
  python,
  [
    '-c',
    'import torch, torch.distributed as d; assert d.is_available() and d.is_gloo_available(); print(torch.__version__)',
  ],
  { encoding: 'utf8' },
);
const hasTorch = pyTorch.status === 0;
// The rendezvous (store keys, group prefixes, the init barrier) follows the PyTorch the addon is built against: 1.x
// (Debian 12) and 2.x (Debian 13: '/default_pg/0//cpu//0/1') differ, so the Python rank must be the same major
// version (Debian's python3-torch is the libtorch the addon links).
const sameRendezvous = hasTorch && pyTorch.stdout.trim().split('.')[0] === torch.versions().torch.split('.')[0];
const pyRank = join(repoRoot, 'test', 'support', 'dist_python_rank.py');

// Known flake on libtorch 2.6 (Debian 13), seen in 2 of 4 runs on 2026-12-07 and not yet understood: one of these six
// tests now and then has a rank that never finishes its rendezvous (killed at the test's timeout); reruns pass. Retried
// there while it is investigated; on 1.13 a failure fails at once.
describe.skipIf(!hasTorch || !sameRendezvous)(
  'a Node rank and a Python torch.distributed rank in one Gloo group',
  { retry: torch.versions().torch.startsWith('1.') ? 0 : 2 },
  () => {
    for (const nodeRank of [0, 1]) {
      it(`collectives, with the Node rank as rank ${nodeRank}`, async () => {
        const rs = await runRanks(2, ['interop'], {
          cmd: (r) => (r === nodeRank ? [process.execPath, [worker, 'interop']] : [python, [pyRank, 'collectives']]),
        });
        const want = {
          allReduce: [3, 30],
          max: [2, 7],
          broadcast: [1.5, -1],
          allGather: [
            [0, 0, 5],
            [1, 2, 5],
          ],
        };
        for (const r of rs) {
          expect(r.code, r.stderr).toBe(0);
          expect(line(r, 'allReduce')).toMatchObject(want);
        }
      }, 60_000);

      it(`collectives with TORCH_DIST_INIT_BARRIER=1 (the init barrier 2.x runs only when asked), Node rank ${nodeRank}`, async () => {
        const rs = await runRanks(2, ['interop'], {
          env: { TORCH_DIST_INIT_BARRIER: '1' },
          cmd: (r) => (r === nodeRank ? [process.execPath, [worker, 'interop']] : [python, [pyRank, 'collectives']]),
        });
        for (const r of rs) {
          expect(r.code, r.stderr).toBe(0);
          expect(line(r, 'allReduce')).toMatchObject({ allReduce: [3, 30], max: [2, 7] });
        }
      }, 60_000);

      it(`DistributedDataParallel (Node) and torch DistributedDataParallel (Python) train to the same weights, Node rank ${nodeRank}`, async () => {
        const [ref] = await trainRun(1, ['sgd', 'single']);
        const rs = await runRanks(2, [], {
          cmd: (r) =>
            r === nodeRank ? [process.execPath, [worker, 'train', 'sgd', 'ddp']] : [python, [pyRank, 'train']],
        });
        const [a, b] = rs.map((r) => {
          expect(r.code, r.stderr).toBe(0);
          return (line(r, 'weights') as { weights: Weights }).weights;
        });
        // the same collectives (verify_params, broadcast_coalesced, bucket all-reduces, the bucket rebuild) in the same order
        expect(maxRelErr(a!, b!)).toBeLessThanOrEqual(1e-12);
        expect(maxRelErr(ref!.weights, a!)).toBeLessThanOrEqual(1e-12);
      }, 60_000);
    }
  },
);

// ------------------------------------------------------------------ failures
describe('failures', () => {
  it('a rank SIGKILLed in the middle of all-reduces: the others get a TorchError DISTRIBUTED, no hang, no crash', async () => {
    const rs = await runRanks(3, ['kill', '1'], { env: { TN_TIMEOUT: '10000' } });
    expect(rs[1]!.signal).toBe('SIGKILL');
    for (const r of [rs[0]!, rs[2]!]) {
      expect(r.code, r.stderr).toBe(0);
      const { error, ms } = line(r, 'error') as {
        error: { code: string; isTorchError: boolean; message: string };
        ms: number;
      };
      expect(error).toMatchObject({ code: 'DISTRIBUTED', isTorchError: true });
      expect(error.message).toMatch(/allReduce failed on rank \d/);
      expect(ms).toBeLessThan(12_000);
      expect(line(r, 'after').after).toBe('DISTRIBUTED');
    }
  }, 60_000);

  it('a rank SIGKILLed in the middle of a DDP backward: synchronize() rejects on the others with DISTRIBUTED', async () => {
    const rs = await runRanks(3, ['ddpkill'], { env: { TN_TIMEOUT: '10000' } });
    expect(rs[1]!.signal).toBe('SIGKILL');
    for (const r of [rs[0]!, rs[2]!]) {
      expect(r.code, r.stderr).toBe(0);
      const { error, ms } = line(r, 'error') as { error: { code: string; isTorchError: boolean }; ms: number };
      expect(error).toMatchObject({ code: 'DISTRIBUTED', isTorchError: true });
      expect(ms).toBeLessThan(12_000);
    }
  }, 60_000);

  it('a rank that stops calling collectives: the others time out with DISTRIBUTED', async () => {
    const rs = await runRanks(2, ['silent', '1'], { env: { TN_TIMEOUT: '2000' } });
    const r = rs[0]!;
    expect(r.code, r.stderr).toBe(0);
    const { error, ms } = line(r, 'error') as { error: { code: string; message: string }; ms: number };
    expect(error.code).toBe('DISTRIBUTED');
    expect(ms).toBeGreaterThanOrEqual(1500);
    expect(ms).toBeLessThan(10_000);
  }, 60_000);
});

// ------------------------------------------------------------------ launcher
describe('tensornormal run', () => {
  const cli = (): string => join(work, 'lib', 'cli.js');
  function run(
    argv: string[],
    limitMs = 45_000,
  ): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, [cli(), 'run', ...argv], {
        env: {
          ...process.env,
          TENSORNORMAL_ADDON: addonPath,
          TN_LIB: lib,
          TN_TIMEOUT: '20000',
          OMP_NUM_THREADS: undefined,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '',
        stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, ms: Date.now() - t0 });
      });
    });
  }

  it('sets the rank variables and prefixes every line with its rank', async () => {
    const port = await freePort();
    const r = await run(['--nproc-per-node', '3', '--master-port', String(port), worker, 'launcher']);
    expect(r.code, r.stderr).toBe(0);
    for (const rank of [0, 1, 2]) {
      const l = r.stdout.split('\n').find((x) => x.startsWith(`[rank ${rank}]: {`));
      expect(l, r.stdout).toBeDefined();
      const env = (JSON.parse(l!.slice(`[rank ${rank}]: `.length)) as { env: Record<string, string> }).env;
      expect(env).toEqual({
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: '3',
        LOCAL_WORLD_SIZE: '3',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        OMP_NUM_THREADS: '1',
      });
      expect(r.stderr).toContain(`[rank ${rank}]: stderr line from ${rank}\n`);
    }
  }, 60_000);

  it('two nodes of two processes each: global ranks from --node-rank, one group of four', async () => {
    const port = await freePort();
    const common = [
      '--nnodes',
      '2',
      '--nproc-per-node',
      '2',
      '--master-addr',
      '127.0.0.1',
      '--master-port',
      String(port),
    ];
    const [a, b] = await Promise.all([
      run([...common, '--node-rank', '0', worker, 'launcher', 'none']),
      run([...common, '--node-rank', '1', worker, 'launcher', 'none']),
    ]);
    for (const r of [a!, b!]) expect(r.code, r.stderr).toBe(0);
    // ranks 0-1 on node 0, 2-3 on node 1, and the all-reduce of ones saw all four
    expect(a!.stdout).toContain('[rank 1]: {"rank":1,"sum":[4,4]}');
    expect(b!.stdout).toContain('[rank 3]: {"rank":3,"sum":[4,4]}');
  }, 60_000);

  it("a failing rank stops the others and its status is the launcher's", async () => {
    const port = await freePort();
    const r = await run(['--nproc-per-node', '3', '--master-port', String(port), worker, 'launcher', '2', '7']);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.stderr).toContain('tensornormal run: rank 2 exited with status 7; stopping the other ranks');
    expect(r.ms).toBeLessThan(30_000); // not the 60 s the others would wait
  }, 60_000);

  it('a rank killed by a signal: the launcher exits with 128 + the signal number', async () => {
    const port = await freePort();
    const r = await run(['--nproc-per-node', '2', '--master-port', String(port), worker, 'kill', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(128 + 9);
    expect(r.stderr).toContain('tensornormal run: rank 1 exited with signal SIGKILL; stopping the other ranks');
  }, 60_000);

  it('--max-restarts: a rank SIGKILLed at a random step; the group restarts, resumes from the last checkpoint and ends with the weights of an uninterrupted run', async () => {
    const elastic = join(repoRoot, 'test', 'support', 'elastic-worker.mjs');
    const steps = 18; // 48 samples, 2 ranks x batch 4: 6 steps per epoch, 3 epochs
    const every = 4;
    const killStep = 1 + Math.floor(Math.random() * (steps - 2)); // 1..16
    const parse = (stdout: string): { rank: number; attempt: number; step?: number; weights?: Weights }[] =>
      stdout
        .split('\n')
        .filter((l) => /^\[rank \d\]: \{/.test(l))
        .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as never);
    const go = async (maxRestarts: number, kill: number, ckpt: string) => {
      const port = await freePort();
      return run(
        [
          '--nproc-per-node',
          '2',
          '--master-port',
          String(port),
          '--max-restarts',
          String(maxRestarts),
          elastic,
          ckpt,
          String(every),
          '1',
          String(kill),
        ],
        100_000,
      );
    };
    const ref = await go(0, -1, join(work, 'elastic-ref.safetensors'));
    expect(ref.code, ref.stderr).toBe(0);
    const r = await go(2, killStep, join(work, 'elastic-kill.safetensors'));
    const why = `killed at step ${killStep}:\n${r.stderr.slice(-3000)}`;
    expect(r.code, why).toBe(0);
    expect(r.stderr, why).toContain('tensornormal run: rank 1 exited with signal SIGKILL; stopping the other ranks');
    expect(r.stderr, why).toContain('restarting every rank of this node (restart 1 of 2)');
    const lines = parse(r.stdout);
    const final = (xs: typeof lines) =>
      xs.find((l) => l.weights !== undefined) as unknown as { weights: Weights; stepCount: number; steps: number };
    const a = final(lines)!;
    const b = final(parse(ref.stdout))!;
    expect(a.steps).toBe(steps);
    expect(a.stepCount, why).toBe(steps); // the optimizer's step counter came back from the checkpoint: none repeated
    // equal to the uninterrupted run (bitwise on this machine; the bound allows 1e-12)
    expect(maxRelErr(b.weights, a.weights), why).toBeLessThanOrEqual(1e-12);
    // the second attempt resumed at the last checkpoint before the kill and ran every later step exactly once
    const resumed = lines
      .filter((l) => l.attempt === 1 && 'resumedAt' in l)
      .map((l) => (l as never as { resumedAt: number }).resumedAt);
    const ckptStep = Math.floor(killStep / every) * every;
    expect(resumed, why).toEqual([ckptStep, ckptStep]);
    for (const rank of [0, 1]) {
      const second = lines.filter((l) => l.rank === rank && l.attempt === 1 && l.step !== undefined).map((l) => l.step);
      expect(second, why).toEqual(Array.from({ length: steps - ckptStep }, (_, i) => ckptStep + i));
      const first = lines.filter((l) => l.rank === rank && l.attempt === 0 && l.step !== undefined).map((l) => l.step!);
      // the first attempt got through the checkpointed steps (nothing before the checkpoint is redone or lost)
      expect(first.slice(0, ckptStep), why).toEqual(Array.from({ length: ckptStep }, (_, i) => i));
    }
  }, 240_000);

  it('usage errors', async () => {
    const r = await run(['--nproc-per-node', '0', 'x.js']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--nproc-per-node expects a positive integer but received "0"');
    expect((await run(['--nnodes', '2', '--node-rank', '2', 'x.js'])).stderr).toContain(
      '--node-rank 2 must be below --nnodes 2',
    );
    expect((await run(['--bogus', '1', 'x.js'])).stderr).toContain('unknown option --bogus');
    expect((await run(['--max-restarts', '-1', 'x.js'])).stderr).toContain(
      '--max-restarts expects a non-negative integer but received "-1"',
    );
    expect((await run([])).stderr).toContain('missing the script to run');
    const h = await run(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: tensornormal run');
    expect(h.stdout).toContain('--max-restarts N');
  }, 60_000);

  it("--max-restarts: a rank that fails every time is restarted N times, then its status is the launcher's", async () => {
    const port = await freePort();
    const r = await run([
      '--nproc-per-node',
      '3',
      '--master-port',
      String(port),
      '--max-restarts',
      '1',
      worker,
      'launcher',
      '2',
      '7',
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.stderr).toContain('restarting every rank of this node (restart 1 of 1)');
    expect(r.stderr.match(/rank 2 exited with status 7/g)).toHaveLength(2); // the first attempt and the restart
  }, 90_000);
});

// ------------------------------------------------------------------ DistributedSampler
describe('data.DistributedSampler', () => {
  it('gives disjoint equal shards covering the dataset, a new order per epoch, PyTorch padding', () => {
    for (const [n, W] of [
      [10, 3],
      [12, 4],
      [7, 2],
    ] as const) {
      const shards = Array.from(
        { length: W },
        (_, r) => new data.DistributedSampler(n, { numReplicas: W, rank: r, seed: 3 }),
      );
      for (const s of shards) s.setEpoch(1);
      const idx = shards.map((s) => Array.from(s.indices()));
      const per = Math.ceil(n / W);
      for (const x of idx) expect(x.length).toBe(per);
      const all = idx.flat();
      expect(new Set(all).size).toBe(n); // every sample; the padding repeats some
      const pad = per * W - n;
      // without padding the shards are disjoint
      if (pad === 0) expect(all.length).toBe(new Set(all).size);
      shards[0]!.setEpoch(2);
      const e2 = Array.from(shards[0]!.indices());
      expect(e2).not.toEqual(idx[0]);
    }
    const plain = new data.DistributedSampler(5, { numReplicas: 2, rank: 1, shuffle: false });
    expect(Array.from(plain.indices())).toEqual([1, 3, 0]); // PyTorch: [0..4] + pad [0] -> rank 1 takes 1, 3, 0
    const dropped = new data.DistributedSampler(5, { numReplicas: 2, rank: 1, shuffle: false, dropLast: true });
    expect(Array.from(dropped.indices())).toEqual([1, 3]);
    expect(() => new data.DistributedSampler(5, { numReplicas: 2, rank: 2 })).toThrow(
      'Expected a rank in [0, 1] for rank but received 2',
    );
  });

  it("drives a DataLoader: batches come from this rank's shard only", async () => {
    await noLeak(() => {
      const ds = new data.TensorDataset(
        torch.tidy(() => torch.arange(10, { dtype: 'float64' }).reshape([10, 1])),
        torch.arange(10),
      );
      const sampler = new data.DistributedSampler(ds, { numReplicas: 2, rank: 0, shuffle: false });
      const loader = new data.DataLoader(ds, { batchSize: 2, sampler });
      expect(loader.length).toBe(3);
      const seen: number[] = [];
      for (const [, y] of loader) seen.push(...(y.toArray() as number[]));
      expect(seen).toEqual([0, 2, 4, 6, 8]);
      expect(() => new data.DataLoader(ds, { sampler, shuffle: true })).toThrow(
        'sampler and shuffle are mutually exclusive',
      );
      expect(() => new data.DataLoader(ds, { sampler: {} as never })).toThrow(
        'Expected a sampler (an object with indices()) for sampler',
      );
      const bad = new data.DataLoader(ds, { sampler: { length: 1, indices: () => Int32Array.of(10) } });
      expect(() => [...bad]).toThrow('sampler index 10 is out of range for a dataset of 10 samples');
      ds.tensors.forEach((t) => t.dispose());
    });
  });
});
