"""The Python side of bench/transformer.mjs: a transformer LM training step (AdamW) and greedy generation
(without a key-value cache), with torch.nn on Debian's python3-torch (the same libtorch as tensornormal).

    /usr/bin/python3 bench/python/transformer.py '{"vocab":96,"context":128,"width":128,"layers":4,"heads":4,
        "batch":32,"steps":10,"warmup":2,"genPrompt":16,"genTokens":32,"threads":1}'

prints one JSON line: {"stepMs": [...], "stepCpuMs": [...], "genTokensPerS": x, "genTokensPerCpuS": y} (wall
and process time). The model is test/reference/transformer.py's CharLM
(the architecture of models.transformerLM).
"""
import json
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


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    torch.manual_seed(0)
    m = CharLM(c["vocab"], c["context"], c["width"], c["heads"], c["layers"], 4 * c["width"])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
    y = torch.randint(0, c["vocab"], (c["batch"], c["context"]))
    times, cpu = [], []
    for i in range(c["warmup"] + c["steps"]):
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
    seq = torch.randint(0, c["vocab"], (1, c["genPrompt"]))
    with torch.no_grad():
        m(seq)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(c["genTokens"]):
            win = seq[:, -c["context"]:]
            nxt = m(win)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        gen = c["genTokens"] / (time.perf_counter() - t0)
        gen_cpu = c["genTokens"] / (time.process_time() - c0)
    print(json.dumps({"stepMs": times, "stepCpuMs": cpu, "genTokensPerS": gen, "genTokensPerCpuS": gen_cpu}))


main()
