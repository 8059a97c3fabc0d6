/**
 * Transformer modules against torch.nn on the same libtorch (torch 1.13), in float64: outputs and gradients (of
 * sum(out * r), r fixed) to 1e-12, from fixtures test/reference/transformer.py wrote. Each case's weights come from
 * the state dict Python's torch.save wrote, loaded here with loadWeights into the same architecture (PyTorch's
 * snake_case names: self_attn.in_proj_weight, ...).
 */
import { describe, it, expect, afterAll } from 'vitest';
import * as torch from '../lib/index.js';
import { Tensor, nn, tidy, loadWeights, loadPickledStateDict, pytorchName } from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

const F = nn.functional;
const DIR = 'test/fixtures/transformer';
const io = loadPickledStateDict(`${DIR}/io.pt`);
afterAll(() => io.forEach((t) => t.dispose()));

function get(name: string): Tensor {
  const t = io.get(name);
  if (t === undefined) throw new Error(`no ${name} in io.pt`);
  return t;
}
const TOL = { atol: 1e-12, rtol: 1e-12 };
function close(t: Tensor, name: string): void {
  const want = get(name);
  expect(t.shape, name).toEqual(want.shape);
  expectClose(t, Float64Array.from(want.dataSync() as number[]), TOL);
}

/**
 * Runs `fn` on the case's inputs (floating ones requiring grad), backprops sum(out_i * r_i) and compares the
 * outputs, the inputs' gradients and (with a module) every parameter's gradient with Python's.
 */
function check(
  name: string,
  module: nn.AnyModule | null,
  inputs: string[],
  fn: (...xs: Tensor[]) => Tensor | (Tensor | null)[],
): void {
  if (module !== null) {
    module.double();
    loadWeights(`${DIR}/${name}.pt`, module);
  }
  tidy(() => {
    const xs = inputs.map((k) => {
      const x = get(`${name}.in.${k}`).clone();
      if (x.dtype === 'float64') x.requiresGrad = true;
      return x;
    });
    const r = fn(...xs);
    const outs = Array.isArray(r) ? r : [r];
    let total: Tensor | null = null;
    outs.forEach((o, i) => {
      if (o === null) return;
      close(o, `${name}.out${i}`);
      const term = o.mul(get(`${name}.r${i}`)).sum();
      total = total === null ? term : total.add(term);
    });
    (total as unknown as Tensor).backward();
    xs.forEach((x, i) => {
      if (x.dtype === 'float64') close(x.grad!, `${name}.grad.in.${inputs[i]}`);
    });
    if (module !== null)
      for (const [n, p] of module.namedParameters()) close(p.grad!, `${name}.grad.${pytorchName(n)}`);
  });
  module?.dispose();
}

describe('Embedding, LayerNorm, GELU', () => {
  it('Embedding with paddingIdx: rows, and no gradient for the padding row', async () => {
    await noLeak(() => {
      const emb = new nn.Embedding(10, 4, { paddingIdx: 1 });
      expect(String(emb)).toBe('Embedding(10, 4, padding_idx=1)');
      tidy(() => expect(emb.weight.select(0, 1).abs().sum().item()).toBe(0)); // initialised to zeros
      check('embedding', emb, ['idx'], (idx) => emb.call(idx));
    });
  });
  it('Embedding: a negative paddingIdx counts from the end; out of range is a RangeError', async () => {
    await noLeak(() => {
      const e = new nn.Embedding(5, 2, { paddingIdx: -1 });
      expect(e.paddingIdx).toBe(4);
      e.dispose();
      expect(() => new nn.Embedding(5, 2, { paddingIdx: 5 })).toThrow(RangeError);
      const w = torch.zeros([3, 2]);
      const i = torch.tensor([0], { dtype: 'int64' });
      expect(() => F.embedding(i, w, { paddingIdx: -4 })).toThrow(RangeError);
      w.dispose();
      i.dispose();
    });
  });
  it('LayerNorm over the last dimension and over the last two', async () => {
    await noLeak(() => {
      const ln = new nn.LayerNorm(6);
      expect(String(ln)).toBe('LayerNorm((6,), eps=1e-05, elementwise_affine=True)');
      check('layernorm', ln, ['x'], (x) => ln.call(x));
      const ln2 = new nn.LayerNorm([3, 6], { eps: 1e-3 });
      check('layernorm2d', ln2, ['x'], (x) => ln2.call(x));
    });
  });
  it("GELU, approximate 'none' and 'tanh'", async () => {
    await noLeak(() => {
      check('gelu', null, ['x'], (x) => new nn.GELU().call(x));
      check('gelu_tanh', null, ['x'], (x) => new nn.GELU({ approximate: 'tanh' }).call(x));
    });
  });
});

describe('scaledDotProductAttention (PyTorch 2.x semantics; reference by hand in torch 1.13)', () => {
  it('plain, boolean mask (true: take part), float mask with a scale, causal', async () => {
    await noLeak(() => {
      check('sdpa', null, ['q', 'k', 'v'], (q, k, v) => F.scaledDotProductAttention(q, k, v));
      check('sdpa_mask', null, ['q', 'k', 'v'], (q, k, v) =>
        F.scaledDotProductAttention(q, k, v, { attnMask: get('sdpa_mask.bool') }),
      );
      check('sdpa_fmask', null, ['q', 'k', 'v', 'mask'], (q, k, v, m) =>
        F.scaledDotProductAttention(q, k, v, { attnMask: m, scale: 0.3 }),
      );
      check('sdpa_causal', null, ['q', 'k', 'v'], (q, k, v) =>
        F.scaledDotProductAttention(q, k, v, { isCausal: true }),
      );
    });
  });
  it('dropout applies only while training', async () => {
    await noLeak(() =>
      tidy(() => {
        const q = torch.randn([1, 4, 3]);
        const a = F.scaledDotProductAttention(q, q, q, { dropoutP: 0.5, training: false });
        const b = F.scaledDotProductAttention(q, q, q);
        expect(a.sub(b).abs().max().item()).toBe(0);
        expect(() => F.scaledDotProductAttention(q, q, q, { dropoutP: 2 })).toThrow(RangeError);
      }),
    );
  });
});

describe('MultiheadAttention', () => {
  it('self-attention, batchFirst, averaged weights; state-dict keys as PyTorch', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2, { batchFirst: true });
      expect(tidy(() => [...m.stateDict().keys()]).map(pytorchName)).toEqual([
        'in_proj_weight',
        'in_proj_bias',
        'out_proj.weight',
        'out_proj.bias',
      ]);
      check('mha_self', m, ['x'], (x) => m.call(x, x, x));
    });
  });
  it('(L, N, E) with a boolean causal attnMask and a keyPaddingMask, per-head weights', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2);
      check('mha_masks', m, ['x'], (x) =>
        m.call(x, x, x, {
          attnMask: get('mha_masks.attn_mask'),
          keyPaddingMask: get('mha_masks.kpm'),
          averageAttnWeights: false,
        }),
      );
    });
  });
  it('cross-attention (key = value != query) with a float (N * H, L, S) mask', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2, { batchFirst: true });
      check('mha_cross', m, ['q', 'kv', 'am'], (q, kv, am) => m.call(q, kv, kv, { attnMask: am }));
    });
  });
  it('three different inputs, no biases, needWeights false', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2, { batchFirst: true, bias: false });
      check('mha_qkv', m, ['q', 'k', 'v'], (q, k, v) => {
        const [y, w] = m.call(q, k, v, { needWeights: false });
        expect(w).toBeNull();
        return y;
      });
    });
  });
  it('isCausal equals PyTorch with the square subsequent mask', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2, { batchFirst: true });
      check('mha_causal', m, ['x'], (x) => m.call(x, x, x, { isCausal: true, needWeights: false })[0]);
    });
  });
  it('unbatched (L, E) input', async () => {
    await noLeak(() => {
      const m = new nn.MultiheadAttention(8, 2);
      check('mha_unbatched', m, ['x'], (x) => m.call(x, x, x));
    });
  });
  it('bad arguments are clear errors', async () => {
    await noLeak(() => {
      expect(() => new nn.MultiheadAttention(8, 3)).toThrow(/divisible/);
      const m = new nn.MultiheadAttention(8, 2, { batchFirst: true });
      tidy(() => {
        const x = torch.randn([2, 3, 8]);
        expect(() => m.call(x, x, x, { attnMask: torch.zeros([4, 4]) })).toThrow(RangeError);
        expect(() => m.call(x, x, x, { keyPaddingMask: torch.zeros([3, 3], { dtype: 'bool' }) })).toThrow(RangeError);
        const y = torch.randn([2, 3, 6]);
        expect(() => m.call(y, y, y)).toThrow(/embedding dimension/);
      });
      m.dispose();
    });
  });
});

describe('TransformerEncoderLayer and TransformerEncoder', () => {
  it('post-norm relu (L, N, E)', async () => {
    await noLeak(() => {
      const l = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0 });
      check('enc_post_relu', l, ['x'], (x) => l.call(x));
    });
  });
  it('pre-norm gelu, batchFirst, float causal mask and key padding', async () => {
    await noLeak(() => {
      const l = new nn.TransformerEncoderLayer(8, 2, {
        dimFeedforward: 16,
        dropout: 0,
        activation: 'gelu',
        normFirst: true,
        batchFirst: true,
      });
      const mask = nn.generateSquareSubsequentMask(5, { dtype: 'float64' });
      check('enc_pre_gelu', l, ['x'], (x) => l.call(x, { srcMask: mask, srcKeyPaddingMask: get('mha_masks.kpm') }));
      mask.dispose();
    });
  });
  it('dropout 0.1 in eval mode is the identity', async () => {
    await noLeak(() => {
      const l = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true });
      l.eval();
      check('enc_eval_dropout', l, ['x'], (x) => l.call(x));
    });
  });
  it('dropout while training changes the output and is seeded', async () => {
    await noLeak(() => {
      const l = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0.5, batchFirst: true });
      tidy(() => {
        const x = torch.randn([2, 5, 8]);
        torch.manualSeed(3);
        const a = l.call(x);
        torch.manualSeed(3);
        const b = l.call(x);
        const c = l.call(x);
        expect(a.sub(b).abs().max().item()).toBe(0);
        expect(a.sub(c).abs().max().item()).toBeGreaterThan(0);
      });
      l.dispose();
    });
  });
  it('a 3-layer pre-norm encoder with a final norm: layers start equal (PyTorch deep-copies the layer)', async () => {
    await noLeak(() => {
      const enc = new nn.TransformerEncoder(
        new nn.TransformerEncoderLayer(8, 2, {
          dimFeedforward: 16,
          dropout: 0,
          batchFirst: true,
          normFirst: true,
          activation: 'gelu',
        }),
        3,
        { norm: new nn.LayerNorm(8) },
      );
      tidy(() => {
        const a = (enc.layers.at(0) as nn.TransformerEncoderLayer).linear1.weight;
        const b = (enc.layers.at(2) as nn.TransformerEncoderLayer).linear1.weight;
        expect(a.sub(b).abs().max().item()).toBe(0);
        expect(a).not.toBe(b);
      });
      check('encoder', enc, ['x'], (x) => enc.call(x, { isCausal: true }));
    });
  });
});

describe('models.transformerLM', () => {
  it('tied weights: one parameter, both state-dict names; torch.save state dict gives the same logits', async () => {
    await noLeak(() => {
      const lm = torch.models.transformerLM({
        vocabSize: 11,
        contextLength: 9,
        dModel: 8,
        nHead: 2,
        nLayers: 2,
        dimFeedforward: 16,
      });
      expect(lm.head.weight).toBe(lm.tokEmb.weight);
      const names = lm.namedParameters().map(([n]) => n);
      expect(names).toContain('tokEmb.weight');
      expect(names).not.toContain('head.weight');
      const keys = tidy(() => [...lm.stateDict().keys()]);
      expect(keys).toContain('head.weight');
      expect(keys).toContain('tokEmb.weight');
      check('charlm', lm, ['tokens'], (t) => lm.call(t));
    });
  });
  it('sinusoidal positions: the formula; greedy generate appends tokens', async () => {
    await noLeak(() => {
      tidy(() => {
        const pe = nn.sinusoidalPositionalEncoding(3, 4, { dtype: 'float64' });
        const want: number[] = [];
        for (let t = 0; t < 3; t++)
          for (let j = 0; j < 4; j++) {
            const i2 = j - (j % 2);
            const a = t / Math.pow(10000, i2 / 4);
            want.push(j % 2 === 0 ? Math.sin(a) : Math.cos(a));
          }
        expectClose(pe, Float64Array.from(want), { atol: 1e-12, rtol: 0 });
      });
      const lm = torch.models.transformerLM({
        vocabSize: 7,
        contextLength: 4,
        dModel: 8,
        nHead: 2,
        nLayers: 1,
        positional: 'sinusoidal',
      });
      expect(tidy(() => [...lm.stateDict().keys()]).some((k) => k.includes('pe'))).toBe(false);
      tidy(() => {
        const out = lm.generate(torch.tensor([[1, 2]], { dtype: 'int64' }), 5);
        expect(out.shape).toEqual([1, 7]);
        expect(lm.training).toBe(true);
      });
      lm.dispose();
    });
  });
});
