# One Python rank of a mixed Node/Python group (test/distributed.test.ts): torch.distributed with the Gloo backend
# (Debian's python3-torch, the libtorch the addon links). `python3 dist_python_rank.py collectives|train`, with
# RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. Prints one JSON line, as test/support/dist-worker.mjs does.
import json
import math
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

mode = sys.argv[1]
dist.init_process_group("gloo", timeout=timedelta(seconds=20))
rank, W = dist.get_rank(), dist.get_world_size()


def out(**kw):
    print(json.dumps({"rank": rank, **kw}), flush=True)


if mode == "collectives":
    # the same calls, in the same order, as dist-worker.mjs's `interop` scenario
    a = torch.tensor([rank + 1.0, 10.0 * (rank + 1)], dtype=torch.float64)
    dist.all_reduce(a)
    b = torch.tensor([rank * 3 - 1, 7 - rank], dtype=torch.int64)
    dist.all_reduce(b, op=dist.ReduceOp.MAX)
    c = torch.tensor([0.5 + rank, -rank], dtype=torch.float32)
    dist.broadcast(c, 1)
    g = [torch.zeros(3, dtype=torch.int32) for _ in range(W)]
    dist.all_gather(g, torch.tensor([rank, rank * 2, 5], dtype=torch.int32))
    dist.barrier()
    out(allReduce=a.tolist(), max=b.tolist(), broadcast=c.tolist(), allGather=[x.tolist() for x in g])
elif mode == "train":
    # dist-worker.mjs's `train sgd ddp` with torch.nn.parallel.DistributedDataParallel
    B, D, H, K = 8, 6, 5, 3

    def f(a, b, c):
        return math.sin(a * 12.9898 + b * 78.233 + c * 37.719) * 0.5

    def like(shape, seed, scale):
        if len(shape) == 2:
            return torch.tensor([[scale * f(i + seed, j, seed) for j in range(shape[1])] for i in range(shape[0])], dtype=torch.float64)
        return torch.tensor([scale * f(j, seed, 7) for j in range(shape[0])], dtype=torch.float64)

    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, K)).double()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(like(list(p.shape), 100 + i, 0.4) + rank * 0.3)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for s in range(5):
        idx = [rank * (B // W) + k for k in range(B // W)]
        x = torch.tensor([[f(i, j, s) for j in range(D)] for i in idx], dtype=torch.float64)
        y = torch.tensor([[f(i, j + 50, s) for j in range(K)] for i in idx], dtype=torch.float64)
        opt.zero_grad()
        loss = ((ddp(x) - y) ** 2).sum(1).mean() * 0.5
        loss.backward()
        opt.step()
    out(weights=[p.detach().reshape(-1).tolist() for p in model.parameters()])
dist.destroy_process_group()
