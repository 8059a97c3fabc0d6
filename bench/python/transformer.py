"""The Python side of bench/transformer.mjs: a transformer LM training step (AdamW) and greedy generation of one
sequence, without a key-value cache (the model's forward on the window for every token) and with an explicit one
(generate_cached below: torch.nn.TransformerEncoderLayer has no cache, so the layers' own weights are applied by
hand to the new token, its keys and values written into per-layer buffers), with torch.nn on Debian's
python3-torch (the same libtorch as tensornormal).

    /usr/bin/python3 bench/python/transformer.py '{"vocab":96,"context":128,"width":128,"layers":4,"heads":4,
        "batch":32,"steps":10,"warmup":2,"genPrompt":16,"genTokens":32,"threads":1}'

prints one JSON line: {"stepMs": [...], "stepCpuMs": [...], "genTokensPerS": x, "genTokensPerCpuS": y,
"cacheTokensPerS": x, "cacheTokensPerCpuS": y} (wall and process time; "train": false skips the training steps). The model is test/reference/transformer.py's CharLM
(the architecture of models.transformerLM).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn


class CharLM(nn.Module):
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
        x = self.encoder(x, mask=nn.Transformer.generate_square_subsequent_mask(T))
        return self.head(self.norm(x))


def generate_cached(m, seq, n, context):
    """Greedy decoding with a key-value cache, the algorithm of TransformerLM.generate: the prompt once, then one
    position per token while the sequence fits the context; past it the window slides and is rerun."""
    layers = m.encoder.layers
    B, d = seq.shape[0], m.tok_emb.embedding_dim
    H = layers[0].self_attn.num_heads
    hd = d // H
    K = [torch.zeros(B, H, context, hd) for _ in layers]
    V = [torch.zeros(B, H, context, hd) for _ in layers]

    def run(tokens, start):
        L = tokens.shape[1]
        x = m.tok_emb(tokens) + m.pos_emb(torch.arange(start, start + L))
        for i, lay in enumerate(layers):
            a = lay.self_attn
            qkv = nn.functional.linear(lay.norm1(x), a.in_proj_weight, a.in_proj_bias)
            q, k, v = qkv.view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)
            K[i][:, :, start:start + L] = k
            V[i][:, :, start:start + L] = v
            S = start + L
            s = q @ K[i][:, :, :S].transpose(-2, -1) / math.sqrt(hd)
            if L > 1:
                s = s + torch.full((L, S), float('-inf')).triu(start + 1)
            o = s.softmax(-1) @ V[i][:, :, :S]
            x = x + a.out_proj(o.transpose(1, 2).reshape(B, L, d))
            x = x + lay.linear2(nn.functional.gelu(lay.linear1(lay.norm2(x))))
        return m.head(m.norm(x))

    length = 0
    for _ in range(n):
        T = seq.shape[1]
        if T > context or length != T - 1:
            length = 0
        win = seq[:, -context:]
        z = run(win if length == 0 else seq[:, T - 1:], length)
        length = win.shape[1] if length == 0 else length + 1
        seq = torch.cat([seq, z[:, -1].argmax(-1, keepdim=True)], 1)
    return seq


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    torch.manual_seed(0)
    m = CharLM(c["vocab"], c["context"], c["width"], c["heads"], c["layers"], 4 * c["width"])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
    y = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
    times, cpu = [], []
    for i in range(c["warmup"] + c["steps"] if c.get("train", True) else 0):
        t0, c0 = time.perf_counter(), time.process_time()
        out = m(x)
        loss = nn.functional.cross_entropy(out.reshape(-1, c["vocab"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= c["warmup"]:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    m.eval()
    prompt = torch.randint(0, c["vocab"], (1, c["genPrompt"]))

    def plain(seq, n):
        for _ in range(n):
            nxt = m(seq[:, -c["context"]:])[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq

    res = {}
    outs = []
    with torch.no_grad():
        for key, gen in (("gen", plain), ("cache", lambda s, n: generate_cached(m, s, n, c["context"]))):
            gen(prompt, 1)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            outs.append(gen(prompt, c["genTokens"]))
            res[key + "TokensPerS"] = c["genTokens"] / (time.perf_counter() - t0)
            res[key + "TokensPerCpuS"] = c["genTokens"] / (time.process_time() - c0)
    if not torch.equal(outs[0], outs[1]):
        raise SystemExit("generate_cached: the cache changed the tokens")
    print(json.dumps({"stepMs": times, "stepCpuMs": cpu, **res}))


main()
