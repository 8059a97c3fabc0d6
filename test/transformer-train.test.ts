// The transformer language model through the library's training paths: train.inWorker (fit() with TNT and the
// sequence likelihood in a worker thread, snapshots into the main thread's model) and data parallelism (2 ranks of
// DistributedDataParallel, with distributed.CurvatureSync for TNT, Shampoo and KFAC, equal to one process on the
// whole batch). Both run the library transpiled to JavaScript (a worker thread or a child process cannot run the
// TypeScript sources): test/support/lm-job.mjs and test/support/lm-rank.mjs.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { addonPath, repoRoot, transpileLib } from './support/transpile-lib.js';
import type * as Lib from '../lib/index.js';
import { freePort } from './support/helpers.js';

process.env.TENSORNORMAL_ADDON = addonPath;
const JOB = new URL('./support/lm-job.mjs', import.meta.url);
const RANK = join(repoRoot, 'test', 'support', 'lm-rank.mjs');
let work: string;
let libPath: string;
let lib: string;
let t: typeof Lib;
let job: { makeLM: (t: typeof Lib, seed: number) => Lib.models.TransformerLM; probe: (t: typeof Lib) => Lib.Tensor };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'tn-lm-train-'));
  transpileLib(work);
  libPath = join(work, 'lib', 'index.js');
  lib = pathToFileURL(libPath).href;
  t = (await import(lib)) as typeof Lib;
  job = (await import(JOB.href)) as typeof job;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Weights = number[][];
const flatParams = (m: Lib.nn.Module): Weights =>
  m.parameters().map((p) => Array.from(p.toTypedArray() as Float64Array));
function maxRelErr(a: Weights, b: Weights): number {
  let num = 0,
    den = 0;
  expect(b.length).toBe(a.length);
  a.forEach((w, i) => {
    expect(b[i]!.length).toBe(w.length);
    w.forEach((v, j) => {
      num = Math.max(num, Math.abs(v - b[i]![j]!));
      den = Math.max(den, Math.abs(v));
    });
  });
  return num / den;
}

describe('train.inWorker', () => {
  it('fit() trains the LM with TNT and SequenceCategorical in a worker; the snapshots carry it to the main thread with the same logits', async () => {
    const served = job.makeLM(t, 99); // another initialisation: only the snapshots can make it equal the job's
    const handles = served.parameters().map((p) => p._h);
    expect(served.head.weight).toBe(served.tokEmb.weight); // tied: one parameter under two names
    const live0 = t.liveTensors();
    const trainer = t.train.inWorker(JOB, { workerData: { lib, seed: 1, epochs: 3 }, serve: served });
    const versions: number[] = [];
    trainer.on('weights', (s) => versions.push(s.version));
    const result = (await trainer.done) as { losses: number[]; weights: Weights; logits: number[]; live: number };
    expect(await trainer.cancel()).toBe(0); // finished: resolves once the worker has exited (its buffers freed)
    // 3 epochs of 4 steps: a snapshot every 2 steps, one per epoch, and the final one
    expect(versions.at(-1)).toBe(6 + 3 + 1);
    expect(trainer.weights()!.info).toBe('final');
    expect(result.losses[2]).toBeLessThan(result.losses[0]!); // TNT trained it
    expect(result.live).toBe(0); // the job leaked nothing in its thread
    // the main thread's model holds the job's final weights, in its own parameter tensors, still tied
    expect(flatParams(served)).toEqual(result.weights);
    expect(served.parameters().map((p) => p._h)).toEqual(handles);
    expect(served.head.weight).toBe(served.tokEmb.weight);
    expect(t.liveTensors()).toBe(live0);
    // and answers with the job's logits
    const x = job.probe(t);
    const logits = t.noGrad(() =>
      t.tidy(() => Array.from(served.call(x).reshape([-1]).toTypedArray() as Float64Array)),
    );
    expect(maxRelErr([result.logits], [logits])).toBeLessThanOrEqual(1e-12);
    // loadInto() another LM of the same architecture: the same weights
    const other = job.makeLM(t, 5);
    trainer.loadInto(other);
    expect(flatParams(other)).toEqual(result.weights);
    t.dispose([x, served.parameters(), other.parameters()]);
  }, 60_000);
});

// ------------------------------------------------------------------ data parallel

interface RankOut {
  rank: number;
  weights: Weights;
  initial: Weights;
  params: number[];
  ddpParams: number | null;
  gradBytes: number;
  owned: number[] | null;
}

/** Runs lm-rank.mjs as `world` ranks (1: the single-process reference) and returns each rank's JSON line. */
async function ranks(world: number, argv: string[]): Promise<RankOut[]> {
  const port = await freePort();
  const children = Array.from({ length: world }, (_, rank) =>
    spawn(process.execPath, [RANK, ...argv], {
      env: {
        ...process.env,
        TENSORNORMAL_ADDON: addonPath,
        TN_LIB: libPath,
        OMP_NUM_THREADS: '1',
        TENSORNORMAL_NUM_THREADS: '1',
        RANK: String(rank),
        WORLD_SIZE: String(world),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        USE_LIBUV: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), 50_000);
  try {
    return await Promise.all(
      children.map(
        (c) =>
          new Promise<RankOut>((resolve, reject) => {
            let out = '',
              err = '';
            c.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
            c.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
            c.on('close', (code, signal) => {
              const l = out.split('\n').find((x) => x.startsWith('{'));
              if (code !== 0 || l === undefined) reject(new Error(`rank exited ${code}/${signal}:\n${err}`));
              else resolve(JSON.parse(l) as RankOut);
            });
          }),
      ),
    );
  } finally {
    clearTimeout(timer);
  }
}

describe('DistributedDataParallel: 2 ranks with B/2 sequences each equal 1 process with B (float64, 4 steps)', () => {
  // the model's parameters: tokEmb (7x8, also the head), posEmb (6x8), per layer the packed q/k/v projection and its
  // bias, the output projection, linear1, linear2, two LayerNorms; the final LayerNorm
  const layer = [24 * 8, 24, 8 * 8, 8, 16 * 8, 16, 8 * 16, 8, 8, 8, 8, 8];
  const numels = [7 * 8, 6 * 8, ...layer, ...layer, 8, 8];

  for (const opt of ['adam', 'tnt', 'shampoo', 'kfac']) {
    it(`${opt}${opt === 'adam' ? '' : ' with distributed.CurvatureSync (its default)'}`, async () => {
      const [ref] = await ranks(1, [opt, 'single']);
      expect(ref!.params).toEqual(numels); // the tied weight once
      expect(maxRelErr(ref!.weights, ref!.initial)).toBeGreaterThan(1e-2); // training moved the weights
      const two = await ranks(2, [opt, 'ddp']);
      for (const r of two) {
        expect(r.initial).toEqual(ref!.initial); // rank 1 started elsewhere: DDP broadcast rank 0's weights
        expect(maxRelErr(ref!.weights, r.weights), `${opt} rank ${r.rank}`).toBeLessThanOrEqual(1e-10);
        expect(r.ddpParams).toBe(numels.length);
        // one all-reduce of every gradient per step: the tied weight's once (float64)
        expect(r.gradBytes).toBe(numels.reduce((a, b) => a + b, 0) * 8);
      }
      if (opt === 'tnt' || opt === 'shampoo') {
        // shard 'all': each parameter's curvature lives on one rank, every parameter on one
        const owned = two.flatMap((r) => r.owned!.filter((i) => i >= 0)).sort((a, b) => a - b);
        expect(owned).toEqual(numels.map((_, i) => i));
        expect(two.every((r) => r.owned!.some((i) => i < 0))).toBe(true);
      }
    }, 90_000);
  }
});
