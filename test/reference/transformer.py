"""Outputs and gradients of torch.nn's transformer modules, for test/transformer.test.ts.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/transformer.py

Writes, under test/fixtures/transformer/: <case>.pt, each case's module state_dict (torch.save, as users save
theirs: the test loads it with loadWeights into the same architecture), and io.pt, one dict of tensors: each case's
inputs (`<case>.in.*`), outputs (`<case>.out*`) and gradients (`<case>.grad.<input or parameter name>`) of the
scalar sum(out * r) for a fixed random r (`<case>.r`). Everything is float64. torch 1.13 has no
F.scaled_dot_product_attention: its reference is written out by hand below (softmax(q k^T / sqrt(E) + mask) v).
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
OUT = 'test/fixtures/transformer'
io = {}


def record(name, module, inputs, fn):
    """Runs fn(*inputs) (inputs requiring grad where floating), backprops sum(out * r), records everything."""
    for k, v in inputs.items():
        io[f'{name}.in.{k}'] = v.detach().clone()
    leaves = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in inputs.items()}
    outs = fn(**leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    total = 0
    for i, o in enumerate(outs):
        if o is None:
            continue
        r = torch.randn(o.shape)
        io[f'{name}.out{i}'] = o.detach().clone()
        io[f'{name}.r{i}'] = r
        total = total + (o * r).sum()
    total.backward()
    for k, v in leaves.items():
        if v.is_floating_point() and v.grad is not None:
            io[f'{name}.grad.in.{k}'] = v.grad.detach().clone()
    if module is not None:
        for k, p in module.named_parameters():
            io[f'{name}.grad.{k}'] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        torch.save(module.state_dict(), os.path.join(OUT, f'{name}.pt'))


def randomize(module):
    """Every parameter to N(0, 0.5^2) values (LayerNorm's ones and zeros and MHA's zero biases would hide errors)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)
    return module


# ---------------------------------------------------------------- embedding, layer norm, gelu
emb = nn.Embedding(10, 4, padding_idx=1)
idx = torch.tensor([[0, 1, 3, 3, 9], [1, 1, 2, 7, 0]])
record('embedding', emb, {'idx': idx}, lambda idx: emb(idx))

ln = randomize(nn.LayerNorm(6))
record('layernorm', ln, {'x': torch.randn(2, 3, 6)}, lambda x: ln(x))
ln2 = randomize(nn.LayerNorm([3, 6], eps=1e-3))
record('layernorm2d', ln2, {'x': torch.randn(2, 3, 6)}, lambda x: ln2(x))

gx = torch.linspace(-4, 4, 17)
record('gelu', None, {'x': gx}, lambda x: nn.GELU()(x))
record('gelu_tanh', None, {'x': gx}, lambda x: nn.GELU(approximate='tanh')(x))


# ---------------------------------------------------------------- scaled dot-product attention, by hand
def sdpa(q, k, v, mask=None, causal=False, scale=None):
    s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if causal:
        s = s.masked_fill(~torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(), float('-inf'))
    if mask is not None:
        s = s.masked_fill(~mask, float('-inf')) if mask.dtype == torch.bool else s + mask
    return torch.softmax(s, -1) @ v


q, k, v = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 6, 5), torch.randn(2, 3, 6, 7)
record('sdpa', None, {'q': q, 'k': k, 'v': v}, lambda q, k, v: sdpa(q, k, v))
bmask = torch.rand(4, 6) > 0.3
bmask[:, 0] = True  # no row fully masked
io['sdpa_mask.bool'] = bmask
record('sdpa_mask', None, {'q': q, 'k': k, 'v': v}, lambda q, k, v: sdpa(q, k, v, mask=bmask))
fmask = torch.randn(2, 1, 4, 6)
record('sdpa_fmask', None, {'q': q, 'k': k, 'v': v, 'mask': fmask}, lambda q, k, v, mask: sdpa(q, k, v, mask=mask, scale=0.3))
qs, ks, vs = torch.randn(2, 3, 6, 5), torch.randn(2, 3, 6, 5), torch.randn(2, 3, 6, 5)
record('sdpa_causal', None, {'q': qs, 'k': ks, 'v': vs}, lambda q, k, v: sdpa(q, k, v, causal=True))

# ---------------------------------------------------------------- multi-head attention
E, H, L, S, N = 8, 2, 5, 7, 3
m = randomize(nn.MultiheadAttention(E, H, batch_first=True))
record('mha_self', m, {'x': torch.randn(N, L, E)}, lambda x: m(x, x, x))

m = randomize(nn.MultiheadAttention(E, H))  # (L, N, E)
causal = torch.ones(L, L, dtype=torch.bool).triu(1)  # True: may not attend
kpm = torch.zeros(N, L, dtype=torch.bool)
kpm[0, 3:] = True
kpm[2, 4] = True
io['mha_masks.attn_mask'] = causal
io['mha_masks.kpm'] = kpm
record('mha_masks', m, {'x': torch.randn(L, N, E)},
       lambda x: m(x, x, x, attn_mask=causal, key_padding_mask=kpm, average_attn_weights=False))

m = randomize(nn.MultiheadAttention(E, H, batch_first=True))
fam = torch.randn(N * H, L, S)
record('mha_cross', m, {'q': torch.randn(N, L, E), 'kv': torch.randn(N, S, E), 'am': fam},
       lambda q, kv, am: m(q, kv, kv, attn_mask=am))

m = randomize(nn.MultiheadAttention(E, H, batch_first=True, bias=False))
record('mha_qkv', m, {'q': torch.randn(N, L, E), 'k': torch.randn(N, S, E), 'v': torch.randn(N, S, E)},
       lambda q, k, v: m(q, k, v, need_weights=False)[0])

m = randomize(nn.MultiheadAttention(E, H, batch_first=True))
square = nn.Transformer.generate_square_subsequent_mask(L).to(torch.float64)
record('mha_causal', m, {'x': torch.randn(N, L, E)}, lambda x: m(x, x, x, attn_mask=square, need_weights=False)[0])

m = randomize(nn.MultiheadAttention(E, H))
record('mha_unbatched', m, {'x': torch.randn(L, E)}, lambda x: m(x, x, x))

# ---------------------------------------------------------------- encoder layers and encoders
def encoder_layer(**kw):
    return randomize(nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, **kw))


lay = encoder_layer()  # post-norm, relu, (L, N, E)
record('enc_post_relu', lay, {'x': torch.randn(L, N, E)}, lambda x: lay(x))
lay = encoder_layer(activation='gelu', norm_first=True, batch_first=True)
record('enc_pre_gelu', lay, {'x': torch.randn(N, L, E)},
       lambda x: lay(x, src_mask=square, src_key_padding_mask=kpm))
lay = randomize(nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.1, batch_first=True)).eval()
record('enc_eval_dropout', lay, {'x': torch.randn(N, L, E)}, lambda x: lay(x))

enc = randomize(nn.TransformerEncoder(
    nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True, activation='gelu'),
    3, norm=nn.LayerNorm(E), enable_nested_tensor=False))
record('encoder', enc, {'x': torch.randn(N, L, E)}, lambda x: enc(x, mask=square))


# ---------------------------------------------------------------- a decoder-only language model, tied weights
class CharLM(nn.Module):
    """models.transformerLM's architecture: token + learned position embeddings, a pre-norm causal encoder,
    a final LayerNorm and an output projection tied to the token embedding."""

    def __init__(self, vocab, context, d, heads, layers, ff):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(context, d)
        self.drop = nn.Dropout(0.0)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0, activation='gelu',
                                       batch_first=True, norm_first=True),
            layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok_emb.weight

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.drop(self.tok_emb(tokens) + self.pos_emb(torch.arange(T)))
        x = self.encoder(x, mask=nn.Transformer.generate_square_subsequent_mask(T).to(x.dtype))
        return self.head(self.norm(x))


lm = randomize(CharLM(vocab=11, context=9, d=8, heads=2, layers=2, ff=16))
toks = torch.randint(0, 11, (3, 9))
record('charlm', lm, {'tokens': toks}, lambda tokens: lm(tokens))
assert [n for n, _ in lm.named_parameters()].count('head.weight') == 0  # tied: listed once, as tok_emb.weight

io = {k: v.contiguous() for k, v in io.items()}
torch.save(io, os.path.join(OUT, 'io.pt'))
print(f'{len(io)} tensors in {OUT}/io.pt')
