// TorchScript interop against PyTorch itself (test/reference/jit_models.py under Debian's python3-torch): a scripted
// ResNet-style model loads here and computes PyTorch's outputs, trains 20 Adam steps to PyTorch's weights, trains
// with TNT, and goes back to Python, which loads what we saved and computes our outputs; scripted control flow and a
// traced model run here; bad files are errors naming them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { jit, optim, Tensor, TorchError, Gaussian } from '../lib/index.js';
import { noLeak } from './support/helpers.js';
import { repoRoot } from './support/transpile-lib.js';

const python = '/usr/bin/python3';
const hasTorch = spawnSync(python, ['-c', 'import torch']).status === 0;
const script = join(repoRoot, 'test', 'reference', 'jit_models.py');
let dir: string;
interface Ref {
  x: number[][][][];
  y: number[][];
  outEval: number[][];
  adam20: Record<string, number[]>;
  xc: number[][];
  control: number[][];
  steps: number;
  xt: number[][];
  traced: number[][];
  tiedTokens: number[][];
  tiedTargets: number[][];
  tiedAdam10: Record<string, number[]>;
  tiedStateKeys: string[];
}
let ref: Ref;

beforeAll(() => {
  if (!hasTorch) return;
  dir = mkdtempSync(join(tmpdir(), 'tn-jit-'));
  const r = spawnSync(python, [script, 'make', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as Ref;
});
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

const flat = (v: unknown): number[] => (Array.isArray(v) ? (v.flat(Infinity as 1) as number[]) : [v as number]);
function maxRelErr(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1e-12, Math.abs(b[i]!)));
  return m;
}
/** What Python computes with a module file: its eval outputs on ref.x and its parameters. */
function pythonCheck(file: string): { outputs: number[][]; params: Record<string, number[]> } {
  const r = spawnSync(python, [script, 'check', file, join(dir, 'ref.json')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { outputs: number[][]; params: Record<string, number[]> };
}

describe.skipIf(!hasTorch)('jit: TorchScript from and to PyTorch', () => {
  it('loads a scripted ResNet-style model: named parameters and buffers, PyTorch outputs in eval mode', async () => {
    await noLeak(() => {
      const m = jit.load(join(dir, 'resnet.pt'));
      expect(m.namedParameters().map(([n]) => n)).toEqual(Object.keys(ref.adam20));
      expect(m.namedBuffers().map(([n]) => n)).toContain('bn.running_mean');
      expect(m.training).toBe(true);
      m.eval();
      expect(m.training).toBe(false);
      const out = torch.tidy(
        () => (m.call(torch.tensor(ref.x, { dtype: 'float64' })) as Tensor).dataSync() as number[],
      );
      expect(maxRelErr(out, flat(ref.outEval))).toBeLessThan(1e-12);
      m.dispose();
      expect(() => m.parameters()).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
    });
  });

  it('20 Adam steps here equal 20 Adam steps in PyTorch; saved, Python reloads our weights and computes our outputs', async () => {
    await noLeak(() => {
      const m = jit.load(join(dir, 'resnet.pt'));
      const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
      const x = torch.tensor(ref.x, { dtype: 'float64' }),
        y = torch.tensor(ref.y, { dtype: 'float64' });
      m.train();
      for (let i = 0; i < 20; i++)
        torch.tidy(() => {
          opt.zeroGrad();
          (m.call(x) as Tensor).sub(y).pow(2).mean().backward();
          opt.step();
        });
      for (const [n, p] of m.namedParameters())
        expect(maxRelErr(p.dataSync() as number[], ref.adam20[n]!), n).toBeLessThan(1e-9);
      const file = join(dir, 'adam.pt');
      m.save(file);
      m.eval();
      const ours = torch.noGrad(() => torch.tidy(() => (m.call(x) as Tensor).dataSync() as number[]));
      const py = pythonCheck(file);
      expect(maxRelErr(flat(py.outputs), ours)).toBeLessThan(1e-12);
      for (const [n, p] of m.namedParameters()) expect(py.params[n]).toEqual(p.dataSync());
      torch.dispose([x, y]);
      opt.dispose();
      m.dispose();
    });
  });

  it("tied weights are one parameter (as Python lists them): 10 Adam steps equal PyTorch's", async () => {
    await noLeak(() => {
      const m = jit.load(join(dir, 'tied.pt'));
      expect(m.namedParameters().map(([n]) => n)).toEqual(['emb.weight', 'mix.weight', 'mix.bias']);
      expect(torch.tidy(() => [...m.stateDict().keys()])).toEqual(ref.tiedStateKeys);
      const opt = new optim.Adam(m.parameters(), { lr: 1e-2 });
      const tok = torch.tensor(ref.tiedTokens, { dtype: 'int64' }),
        tgt = torch.tensor(ref.tiedTargets, { dtype: 'int64' });
      for (let i = 0; i < 10; i++)
        torch.tidy(() => {
          opt.zeroGrad();
          torch.nn.functional.crossEntropy((m.call(tok) as Tensor).reshape([-1, 7]), tgt.reshape([-1])).backward();
          opt.step();
        });
      for (const [n, p] of m.namedParameters())
        expect(maxRelErr(p.dataSync() as number[], ref.tiedAdam10[n]!), n).toBeLessThan(1e-9);
      // the state dict's second name is the same tensor's values
      torch.tidy(() => {
        const sd = m.stateDict();
        expect(sd.get('head.weight')!.dataSync()).toEqual(sd.get('emb.weight')!.dataSync());
      });
      torch.dispose([tok, tgt]);
      opt.dispose();
      m.dispose();
    });
  });

  it('TNT fine-tunes the loaded model (no layer types needed), the loss falls, and Python reads the result exactly', async () => {
    await noLeak(() => {
      const m = jit.load(join(dir, 'resnet.pt'));
      const opt = new optim.TNT(m.parameters(), { lr: 0.05, damping: 0.1, inverseEvery: 5 });
      const x = torch.tensor(ref.x, { dtype: 'float64' }),
        y = torch.tensor(ref.y, { dtype: 'float64' });
      const lik = new Gaussian();
      const losses: number[] = [];
      for (let i = 0; i < 20; i++)
        losses.push(
          torch.tidy(() => {
            const out = m.call(x) as Tensor;
            opt.sampledBackward(out, lik);
            const l = lik.loss(out, y);
            l.backward();
            opt.step();
            opt.zeroGrad();
            return l.item();
          }),
        );
      expect(losses[19]!).toBeLessThan(losses[0]! * 0.9);
      const file = join(dir, 'tnt.pt');
      m.save(file);
      const py = pythonCheck(file);
      for (const [n, p] of m.namedParameters()) expect(py.params[n]).toEqual(p.dataSync());
      torch.dispose([x, y]);
      opt.dispose();
      m.dispose();
    });
  });

  it('scripted control flow (a data-dependent loop and branch) and a traced model run here as in PyTorch', async () => {
    await noLeak(() => {
      const c = jit.load(join(dir, 'control.pt'));
      const xc = torch.tensor(ref.xc),
        xt = torch.tensor(ref.xt);
      const [out, steps] = c.call(xc) as [Tensor, number];
      expect(steps).toBe(ref.steps);
      expect(maxRelErr(out.dataSync() as number[], flat(ref.control))).toBeLessThan(1e-5);
      out.dispose();
      c.dispose();
      const t = jit.load(join(dir, 'traced.pt'));
      const o = t.call(xt) as Tensor;
      expect(maxRelErr(o.dataSync() as number[], flat(ref.traced))).toBeLessThan(1e-5);
      torch.dispose([o, xc, xt]);
      t.dispose();
    });
  });

  it('jit.trace: a library model becomes TorchScript that Python loads and runs to the same outputs', async () => {
    await noLeak(() => {
      torch.manualSeed(3);
      const model = new torch.nn.Sequential(
        new torch.nn.Linear(3, 5),
        new torch.nn.Tanh(),
        new torch.nn.Linear(5, 2),
      ).double();
      const x = torch.randn([4, 3], { dtype: 'float64' });
      const traced = jit.trace(model.eval(), x);
      expect(traced.namedParameters().map(([n]) => n)).toEqual(['0_weight', '0_bias', '2_weight', '2_bias']);
      const ours = torch.noGrad(() => torch.tidy(() => (model.call(x) as Tensor).dataSync() as number[]));
      const here = torch.tidy(() => (traced.call(x) as Tensor).dataSync() as number[]);
      expect(here).toEqual(ours);
      const file = join(dir, 'traced-here.pt');
      traced.save(file);
      const input = join(dir, 'traced-input.json');
      writeFileSync(input, JSON.stringify(x.toArray()));
      const r = spawnSync(python, [script, 'run', file, input], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(maxRelErr(flat((JSON.parse(r.stdout) as { outputs: number[][] }).outputs), ours)).toBeLessThan(1e-12);
      // the trace holds the weights it was given (the attributes alias the model's tensors)
      expect(traced.parameters()[0]!.dataSync()).toEqual(model.parameters()[0]!.dataSync());
      traced.dispose();
      // a forward that throws: the trace is abandoned, the error reaches the caller, nothing leaks
      const bad = {
        namedParameters: () => model.namedParameters(),
        call: () => {
          throw new RangeError('from forward');
        },
      };
      expect(() => jit.trace(bad, x)).toThrow('from forward');
      const notTensor = { namedParameters: () => model.namedParameters(), call: () => 42 };
      expect(() => jit.trace(notTensor as never, x)).toThrow(
        'jit.trace: the forward must return a Tensor or an array of Tensors',
      );
      expect(() => jit.trace(model, 3 as never)).toThrow(
        'Expected a Tensor for exampleInputs[0] but received 3 of type number',
      );
      model.dispose();
      x.dispose();
    });
  });

  it('torch.save(state_dict) files: read exactly, loadWeights fills a library model, a code-running pickle is refused', async () => {
    await noLeak(() => {
      const sd = torch.loadPickledStateDict(join(dir, 'not-a-module.pt'));
      const m = jit.load(join(dir, 'resnet.pt'));
      for (const [n, p] of m.namedParameters()) expect(sd.get(n)!.dataSync(), n).toEqual(p.dataSync());
      expect(sd.get('bn.num_batches_tracked')!.dtype).toBe('int64');
      torch.dispose([...sd.values()]);
      m.dispose();
      // the MLP Python traced, as a library model: same outputs as PyTorch's
      const mlp = new torch.nn.Sequential(new torch.nn.Linear(3, 5), new torch.nn.Tanh(), new torch.nn.Linear(5, 2));
      torch.loadWeights(join(dir, 'mlp-state.pt'), mlp);
      const xt = torch.tensor(ref.xt);
      const out = torch.noGrad(() => torch.tidy(() => (mlp.call(xt) as Tensor).dataSync() as number[]));
      expect(maxRelErr(out, flat(ref.traced))).toBeLessThan(1e-5);
      xt.dispose();
      mlp.dispose();
      const evil = join(dir, 'evil.pt');
      expect(() => torch.loadPickledStateDict(evil)).toThrow(
        `${evil} is not a torch.save state dict tensornormal reads: the global posix.system is not allowed (nothing in the file is executed)`,
      );
      expect(existsSync(join(dir, 'pwned'))).toBe(false);
      expect(() => torch.loadPickledStateDict(join(dir, 'resnet.pt'))).toThrow(
        'is not a torch.save state dict tensornormal reads',
      );
    });
  });

  it('stateDict / loadStateDict / to(float32)', async () => {
    await noLeak(() => {
      const a = jit.load(join(dir, 'resnet.pt'));
      const b = jit.load(join(dir, 'resnet.pt'));
      torch.noGrad(() => a.parameters().forEach((p) => p.add_(1)));
      const sd = a.stateDict();
      b.loadStateDict(sd);
      expect(b.parameters().map((p) => p.dataSync())).toEqual(a.parameters().map((p) => p.dataSync()));
      torch.dispose([...sd.values()]);
      const p0 = b.parameters()[0]!;
      b.to('float32');
      expect(b.parameters()[0]).toBe(p0); // identity kept: an optimizer built before still holds it
      expect(p0.dtype).toBe('float32');
      const z = torch.zeros(1);
      expect(() => b.loadStateDict(new Map([['nope', z]]))).toThrow('Unexpected key(s) in state_dict: "nope"');
      z.dispose();
      a.dispose();
      b.dispose();
    });
  });

  it('bad files are TorchErrors naming the file: not TorchScript, a pickled state dict, truncated, missing, a FIFO', async () => {
    const text = join(dir, 'text.pt');
    writeFileSync(text, 'definitely not a zip');
    const truncated = join(dir, 'truncated.pt');
    writeFileSync(truncated, readFileSync(join(dir, 'resnet.pt')).subarray(0, 4000));
    for (const f of [text, join(dir, 'not-a-module.pt'), truncated]) {
      let err: unknown = null;
      try {
        jit.load(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TorchError);
      expect((err as TorchError).code).toBe('BAD_FILE');
      expect((err as Error).message.startsWith(`${f} is not a TorchScript file libtorch can load: `)).toBe(true);
    }
    expect(() => jit.load(join(dir, 'missing.pt'))).toThrow(
      `jit.load: cannot read ${join(dir, 'missing.pt')}: file not found`,
    );
    expect(() => jit.load('/dev/zero')).toThrow(
      'jit.load: cannot read /dev/zero: it is a character device, not a regular file',
    );
  });
});
