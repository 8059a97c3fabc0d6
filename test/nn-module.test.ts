import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor } from '../lib/index.js';
import { pyFloat } from '../lib/nn/repr.js';
import { expectClose, noLeak } from './support/helpers.js';

const { nn } = torch;

/** A PyTorch-style module written with class fields: registration is automatic. */
class Net extends nn.Module {
  fc1 = new nn.Linear(4, 3);
  act = new nn.Tanh();
  fc2 = new nn.Linear(3, 2);
  scale = new nn.Parameter(torch.ones([2]));
  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.fc2.call(this.act.call(this.fc1.call(x))).mul(this.scale));
  }
}

describe('Parameter', () => {
  it('takes its data over (same storage, the given handle disposed), requires grad and survives tidy', async () => {
    await noLeak(() => {
      const data = torch.tensor([1, 2, 3]);
      const alias = data.alias();
      const p = torch.tidy(() => new nn.Parameter(data));
      expect(data.isDisposed).toBe(true);
      expect(p.isDisposed).toBe(false);
      expect(p).toBeInstanceOf(Tensor);
      expect(p.requiresGrad).toBe(true);
      expect(p.isLeaf).toBe(true);
      alias.fill_(7);
      expectClose(p, [7, 7, 7]); // no copy was made
      const q = new nn.Parameter(p.clone(), false);
      expect(q.requiresGrad).toBe(false);
      expect(String(p).startsWith('Parameter containing:\ntensor([7., 7., 7.]')).toBe(true);
      expect(() => new nn.Parameter([1] as never)).toThrow(
        new TypeError('Expected a Tensor for data but received [1] of type array'),
      );
      torch.dispose([p, q, alias]);
    });
  });
});

describe('registration and traversal', () => {
  it('registers class fields in declaration order with dotted names', async () => {
    await noLeak(() => {
      const net = new Net();
      expect(net.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
        ['scale', [2]],
        ['fc1.weight', [3, 4]],
        ['fc1.bias', [3]],
        ['fc2.weight', [2, 3]],
        ['fc2.bias', [2]],
      ]);
      expect(net.namedChildren().map(([n]) => n)).toEqual(['fc1', 'act', 'fc2']);
      expect(net.children()).toEqual([net.fc1, net.act, net.fc2]);
      expect(net.namedModules().map(([n]) => n)).toEqual(['', 'fc1', 'act', 'fc2']);
      expect(net.modules()[0]).toBe(net);
      expect(net.parameters({ recurse: false })).toEqual([net.scale]);
      net.dispose();
    });
  });

  it('keeps the registry in step with assignments after registration', async () => {
    await noLeak(() => {
      const net = new Net();
      net.namedParameters(); // first use registers the fields
      const old = net.fc2;
      net.fc2 = new nn.Linear(3, 5);
      expect(net.namedParameters().find(([n]) => n === 'fc2.weight')![1].shape).toEqual([5, 3]);
      old.dispose(); // replaced modules are the caller's again
      const b = net.fc1.bias!;
      net.fc1.bias = null;
      expect(net.namedParameters().map(([n]) => n)).not.toContain('fc1.bias');
      expect(String(net.fc1)).toBe('Linear(in_features=4, out_features=3, bias=False)');
      b.dispose();
      const plain = torch.zeros([3, 4]);
      expect(() => {
        (net.fc1 as unknown as { weight: unknown }).weight = plain;
      }).toThrow(new TypeError("cannot assign a Tensor as parameter 'weight' (Parameter or null expected)"));
      plain.dispose();
      net.dispose();
    });
  });

  it('registers explicitly, hands plain tensors over, and lists shared parameters once', async () => {
    await noLeak(() => {
      class Tied extends nn.Module {
        declare w: torch.nn.Parameter;
        declare stat: Tensor;
        constructor() {
          super();
          const t = torch.randn([2, 2]);
          this.registerParameter('w', t);
          expect(t.isDisposed).toBe(true); // handed over
          this.registerBuffer('stat', torch.zeros([2]));
          this.registerBuffer('scratch', torch.zeros([1]), { persistent: false });
          this.registerModule('a', new nn.Linear(2, 2));
        }
        forward(x: Tensor): Tensor {
          return x.matmul(this.w);
        }
      }
      const m = new Tied();
      const a = m.children()[0] as torch.nn.Linear;
      m.registerModule('b', a); // the same module twice
      expect(m.namedParameters().map(([n]) => n)).toEqual(['w', 'a.weight', 'a.bias']);
      expect(m.namedModules().map(([n]) => n)).toEqual(['', 'a']);
      expect(m.namedBuffers().map(([n]) => n)).toEqual(['stat', 'scratch']);
      expect(m.buffers()[0]).toBe(m.stat);
      // stateDict is not deduplicated (as PyTorch) and leaves non-persistent buffers out
      expect([...m.stateDict({ keepVars: true }).keys()]).toEqual([
        'w',
        'stat',
        'a.weight',
        'a.bias',
        'b.weight',
        'b.bias',
      ]);
      m.dispose();
    });
  });

  it('exempts registered tensors from tidy and frees everything on dispose', async () => {
    await noLeak(() => {
      const net = torch.tidy(() => new Net());
      expect(net.parameters().every((p) => !p.isDisposed)).toBe(true);
      const ps = net.parameters();
      net.dispose();
      expect(ps.every((p) => p.isDisposed)).toBe(true);
    });
  });

  it('rejects bad names', () => {
    const net = new Net();
    const z = () => torch.zeros([1]);
    expect(() => net.registerParameter('', z())).toThrow(new RangeError('parameter name can\'t be empty string ""'));
    expect(() => net.registerBuffer('a.b', z())).toThrow(new RangeError('buffer name can\'t contain ".", got: a.b'));
    expect(() => net.registerModule('fc1', null)).not.toThrow(); // replacing a module with null is fine
    expect(() => net.registerBuffer('scale', z())).toThrow(
      new RangeError("attribute 'scale' already exists (as a parameter)"),
    );
    expect(() => net.registerParameter('training', z())).toThrow(new RangeError("attribute 'training' already exists"));
    expect(() => net.registerModule('forward', new nn.ReLU())).toThrow(
      new RangeError("attribute 'forward' already exists"),
    );
    expect(() => net.registerModule('x', {} as never)).toThrow(
      new TypeError('Expected a Module or null for module but received [object Object] of type object'),
    );
    net.dispose();
  });
});

describe('modes, gradients and conversion', () => {
  it('train() and eval() reach every descendant', () => {
    const net = new nn.Sequential(new nn.Linear(2, 2), new nn.Sequential(new nn.Dropout(), new nn.BatchNorm1d(2)));
    expect(net.modules().every((m) => m.training)).toBe(true);
    expect(net.eval()).toBe(net);
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.modules().every((m) => m.training)).toBe(true);
    net.requiresGrad_(false);
    expect(net.parameters().every((p) => !p.requiresGrad)).toBe(true);
    net.dispose();
  });

  it('zeroGrad sets gradients to null, or zeroes them in place', async () => {
    await noLeak(() => {
      const net = new Net();
      const x = torch.randn([5, 4]);
      const backward = (): void => torch.tidy(() => net.call(x).sum().backward());
      backward();
      expect(net.parameters().every((p) => p.grad !== null)).toBe(true);
      net.zeroGrad({ setToNone: false });
      for (const p of net.parameters()) expect(torch.tidy(() => p.grad!.abs().sum().item())).toBe(0);
      backward();
      net.zeroGrad();
      expect(net.parameters().every((p) => p.grad === null)).toBe(true);
      x.dispose();
      net.dispose();
    });
  });

  it('to(dtype) converts parameters in place (keeping their identity, as PyTorch), replaces floating buffers, keeps integer ones', async () => {
    await noLeak(() => {
      const lin = new nn.Linear(2, 2);
      const net = new nn.Sequential(lin, new nn.BatchNorm1d(2), lin);
      const x = torch.tensor([
        [1, 2],
        [0.5, -1],
      ]);
      const y32 = torch.tidy(() => net.eval().call(x));
      const w0 = lin.weight;
      torch.tidy(() => net.call(x).sum().backward());
      const opt = new torch.optim.SGD(net.parameters(), { lr: 0.5 }); // built before the conversion
      const rm0 = (net.at(1) as torch.nn.BatchNorm1d).runningMean!;
      expect(net.double()).toBe(net);
      expect(lin.weight).toBe(w0); // the same Parameter, now float64
      expect(w0.isDisposed).toBe(false);
      expect(rm0.isDisposed).toBe(true); // buffers are replaced
      // the optimizer still holds the parameters: a step moves them by -lr * grad, in float64
      const [wBefore, gW] = [w0.dataSync() as number[], w0.grad!.dataSync() as number[]];
      const saved = net.parameters().map((p) => p.clone());
      opt.step();
      expect(w0.dataSync()).toEqual(wBefore.map((v, i) => v - 0.5 * gW[i]!));
      torch.noGrad(() => net.parameters().forEach((p, i) => p.copy_(saved[i]!)));
      torch.dispose(saved);
      expect(net.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad && p.isLeaf)).toBe(true);
      expect(lin.weight.grad!.dtype).toBe('float64'); // gradients come along
      const bn = net.at(1) as torch.nn.BatchNorm1d;
      expect([bn.runningMean!.dtype, bn.runningVar!.dtype, bn.numBatchesTracked!.dtype]).toEqual([
        'float64',
        'float64',
        'int64',
      ]);
      expect(net.parameters().length).toBe(4); // the twice-used Linear still shares one weight
      const x64 = x.double();
      const y64 = torch.tidy(() => net.call(x64));
      expectClose(y64, y32.toArray() as number[][], { atol: 1e-6 });
      expect(() => net.to('int64')).toThrow(
        new TypeError('nn.Module.to only accepts floating point dtypes, but got desired dtype=int64'),
      );
      expect(() => net.to('tpu' as never)).toThrow(RangeError);
      torch.dispose([x, y32, x64, y64]);
      net.dispose();
    });
  });
});

describe('stateDict and loadStateDict', () => {
  it("orders entries as PyTorch's OrderedDict and returns detached handles the caller owns", async () => {
    await noLeak(() => {
      const net = new nn.Sequential(new nn.Linear(3, 2), new nn.BatchNorm1d(2));
      const sd = net.stateDict();
      expect([...sd.keys()]).toEqual([
        '0.weight',
        '0.bias',
        '1.weight',
        '1.bias',
        '1.runningMean',
        '1.runningVar',
        '1.numBatchesTracked',
      ]);
      const w = sd.get('0.weight')!;
      expect(w.requiresGrad).toBe(false);
      expect(w).not.toBe((net.at(0) as torch.nn.Linear).weight);
      torch.noGrad(() => (net.at(0) as torch.nn.Linear).weight.fill_(3));
      expect(w.dataSync()).toEqual([3, 3, 3, 3, 3, 3]); // shares storage, no copy
      expect([...net.stateDict({ prefix: 'model.', keepVars: true }).keys()][0]).toBe('model.0.weight');
      torch.dispose(sd);
      net.dispose();
    });
  });

  it('round-trips: a fresh model loaded from a state dict gives identical outputs', async () => {
    await noLeak(() => {
      torch.manualSeed(1);
      const a = torch.models.smallCnn({ imageSize: 8 });
      const b = torch.models.smallCnn({ imageSize: 8 });
      const x = torch.randn([3, 1, 8, 8]);
      torch.tidy(() => void a.call(x)); // one training-mode pass moves the running statistics off their defaults
      a.eval();
      b.eval();
      const sd = a.stateDict();
      const before = torch.tidy(() => b.call(x));
      const ya = torch.tidy(() => a.call(x));
      expect(before.allclose(ya)).toBe(false);
      expect(b.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      const yb = torch.tidy(() => b.call(x));
      expect(yb.dataSync()).toEqual(ya.dataSync());
      expect((b.at(1) as torch.nn.BatchNorm2d).numBatchesTracked!.item()).toBe(1);
      // a record works as well as a Map
      expect(b.loadStateDict(Object.fromEntries(sd))).toEqual({ missingKeys: [], unexpectedKeys: [] });
      torch.dispose([sd, x, before, ya, yb]);
      a.dispose();
      b.dispose();
    });
  });

  it('names missing, unexpected and mis-shaped keys as PyTorch does, and copies nothing then', async () => {
    await noLeak(() => {
      const m = new nn.Sequential(new nn.Linear(3, 4), new nn.Linear(4, 5));
      const sd = new Map([
        ['0.weight', torch.ones([4, 2])],
        ['0.bias', torch.ones([4])],
        ['3.weight', torch.ones([1])],
      ]);
      const bias0 = (m.at(0) as torch.nn.Linear).bias!.dataSync();
      let err: unknown;
      try {
        m.loadStateDict(sd);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(torch.TorchError);
      expect((err as Error).message).toBe(
        'Error(s) in loading state_dict for Sequential:\n' +
          '\tMissing key(s) in state_dict: "1.weight", "1.bias".\n' +
          '\tUnexpected key(s) in state_dict: "3.weight".\n' +
          '\tsize mismatch for 0.weight: copying a param with shape [4, 2] from checkpoint, the shape in current model is [4, 3].',
      );
      expect((m.at(0) as torch.nn.Linear).bias!.dataSync()).toEqual(bias0); // nothing copied
      // strict: false still refuses shape mismatches
      expect(() => m.loadStateDict(sd, { strict: false })).toThrow(
        'Error(s) in loading state_dict for Sequential:\n\tsize mismatch for 0.weight: copying a param with shape [4, 2] from checkpoint, the shape in current model is [4, 3].',
      );
      try {
        m.loadStateDict(sd, { strict: false });
      } catch (e) {
        expect((e as torch.TorchError).code).toBe('SHAPE_MISMATCH');
      }
      sd.get('0.weight')!.dispose();
      sd.set('0.weight', torch.ones([4, 3]));
      expect(m.loadStateDict(sd, { strict: false })).toEqual({
        missingKeys: ['1.weight', '1.bias'],
        unexpectedKeys: ['3.weight'],
      });
      expect((m.at(0) as torch.nn.Linear).bias!.dataSync()).toEqual([1, 1, 1, 1]);
      expect(() => m.loadStateDict({ '0.weight': 3 } as never)).toThrow(
        new TypeError('Expected a Tensor for stateDict["0.weight"] but received 3 of type number'),
      );
      torch.dispose(sd);
      m.dispose();
    });
  });
});

describe('toString', () => {
  it('prints a tree as PyTorch does', () => {
    const s = new nn.Sequential(new nn.Linear(784, 10), new nn.ReLU());
    expect(String(s)).toBe('Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n  (1): ReLU()\n)');
    const nested = new nn.Sequential(
      new Map<string, torch.nn.AnyModule>([
        [
          'block',
          new nn.Sequential(
            new nn.Conv2d(3, 16, 3, { stride: 2, padding: 1, dilation: 2, bias: false }),
            new nn.BatchNorm2d(16),
          ),
        ],
        ['pool', new nn.MaxPool2d(2)],
      ]),
    );
    expect(String(nested)).toBe(
      [
        'Sequential(',
        '  (block): Sequential(',
        '    (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), bias=False)',
        '    (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
        '  )',
        '  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)',
        ')',
      ].join('\n'),
    );
    // The strings below were printed by PyTorch 1.13 for the same constructors.
    const cases: [torch.nn.AnyModule, string][] = [
      [
        new nn.Conv2d(4, 8, [3, 5], { padding: 'same', groups: 2 }),
        'Conv2d(4, 8, kernel_size=(3, 5), stride=(1, 1), padding=same, groups=2)',
      ],
      [
        new nn.BatchNorm1d(5, { momentum: null, affine: false }),
        'BatchNorm1d(5, eps=1e-05, momentum=None, affine=False, track_running_stats=True)',
      ],
      [
        new nn.MaxPool2d([3, 3], { stride: 1, padding: 1 }),
        'MaxPool2d(kernel_size=(3, 3), stride=1, padding=1, dilation=1, ceil_mode=False)',
      ],
      [new nn.AvgPool2d(2), 'AvgPool2d(kernel_size=2, stride=2, padding=0)'],
      [new nn.AdaptiveAvgPool2d(1), 'AdaptiveAvgPool2d(output_size=1)'],
      [new nn.AdaptiveAvgPool2d([2, 3]), 'AdaptiveAvgPool2d(output_size=(2, 3))'],
      [new nn.Flatten(), 'Flatten(start_dim=1, end_dim=-1)'],
      [new nn.Dropout(0.25), 'Dropout(p=0.25, inplace=False)'],
      [new nn.GELU(), "GELU(approximate='none')"],
      [new nn.GELU({ approximate: 'tanh' }), "GELU(approximate='tanh')"],
      [new nn.Identity(), 'Identity()'],
      [new nn.ModuleList([new nn.ReLU(), new nn.Tanh()]), 'ModuleList(\n  (0): ReLU()\n  (1): Tanh()\n)'],
      [new nn.Sequential(), 'Sequential()'],
    ];
    for (const [m, want] of cases) {
      expect(String(m)).toBe(want);
      m.dispose();
    }
    s.dispose();
    nested.dispose();
  });

  it('formats floats as Python repr', () => {
    expect([1e-5, 0.1, 1, 0, 1e-4, 1.5e-7, 1e16, 123456.5, -2.5e-5].map(pyFloat)).toEqual([
      '1e-05',
      '0.1',
      '1.0',
      '0.0',
      '0.0001',
      '1.5e-07',
      '1e+16',
      '123456.5',
      '-2.5e-05',
    ]);
  });
});

describe('containers', () => {
  it('Sequential indexes, appends, accepts named entries and frees intermediates', async () => {
    await noLeak(() => {
      const seq = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU());
      seq.append(new nn.Linear(3, 1));
      expect(seq.length).toBe(3);
      expect(seq.at(-1)).toBe((seq as unknown as Record<string, unknown>)['2']);
      expect([...seq].length).toBe(3);
      const x = torch.randn([4, 2]);
      const live = torch.liveTensors();
      const y = seq.call(x);
      expect(torch.liveTensors()).toBe(live + 1); // only the output remains
      expect(y.shape).toEqual([4, 1]);
      const empty = new nn.Sequential();
      const same = empty.call(x);
      expect(same).not.toBe(x);
      expect(same.dataSync()).toEqual(x.dataSync());
      expect(() => seq.at(3)).toThrow(new RangeError('index 3 is out of range for Sequential of length 3'));
      expect(() => new nn.Sequential(3 as never)).toThrow(
        new TypeError('Expected a Module for Sequential entry 0 but received 3 of type number'),
      );
      torch.dispose([x, y, same]);
      seq.dispose();
    });
  });

  it('ModuleList registers its entries but has no forward', () => {
    class Stack extends nn.Module {
      blocks = new nn.ModuleList([new nn.Linear(2, 2), new nn.Linear(2, 2)]);
      forward(x: Tensor): Tensor {
        let h = x.alias();
        for (const b of this.blocks) {
          const n = b.call(h) as Tensor;
          h.dispose();
          h = n;
        }
        return h;
      }
    }
    const s = new Stack();
    s.blocks.append(new nn.Linear(2, 2));
    expect(s.namedParameters().map(([n]) => n)).toEqual([
      'blocks.0.weight',
      'blocks.0.bias',
      'blocks.1.weight',
      'blocks.1.bias',
      'blocks.2.weight',
      'blocks.2.bias',
    ]);
    expect(() => s.blocks.call()).toThrow(
      new TypeError('ModuleList has no forward(): iterate over it in the parent module'),
    );
    s.dispose();
  });
});

describe('forward hooks', () => {
  it('pre-hooks can replace inputs and forward hooks see and replace outputs; remove() unregisters', async () => {
    await noLeak(() => {
      const lin = new nn.Linear(2, 2);
      torch.noGrad(() => {
        const e = torch.eye(2);
        lin.weight.copy_(e);
        e.dispose();
        lin.bias!.zero_();
      });
      const seen: string[] = [];
      const pre = lin.registerForwardPreHook((m, [x]) => {
        seen.push(`pre ${m === lin}`);
        return [x.mul(10)];
      });
      const post = lin.registerForwardHook((m, [x], out) => {
        seen.push(`post ${x.dataSync()} -> ${out.dataSync()}`);
        return out.add(1);
      });
      const x = torch.tensor([[1, 2]]);
      const y = lin.call(x);
      expect(seen).toEqual(['pre true', 'post 10,20 -> 10,20']);
      expect(y.dataSync()).toEqual([11, 21]);
      pre.remove();
      post.remove();
      post.remove(); // idempotent
      const z = lin.call(x);
      expect(z.dataSync()).toEqual([1, 2]);
      expect(seen.length).toBe(2);
      const direct = lin.forward(x); // forward() skips hooks
      torch.dispose([x, y, z, direct]);
      lin.dispose();
    });
  });
});
