"""Crafted TorchScript archives and what PyTorch's torch.jit.load does with each, for test/hostile-jit.test.ts.

  /usr/bin/python3 test/reference/hostile_jit.py test/fixtures/jit

writes DIR/<case>.pt and DIR/expected.json: {case: {"torch": "ok", "state": {name: {"shape", "dtype", "values"}},
"stdout": what loading printed} or {"torch": "error", "message"} or {"torch": "crash", "signal"}}: torch.jit.load
(Debian's python3-torch, 1.13) of each file in a child process. The crashers kill Python with SIGSEGV; the test
asserts that tensornormal refuses them before libtorch sees them.
"""
import json
import os
import subprocess
import sys
import zipfile
from typing import Tuple

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        return self.bn(self.lin(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))
        self.head = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(self.block(x) * self.scale)


class Setstate(nn.Module):
    """A module whose __setstate__ (run by torch.jit.load, before any forward) prints a marker."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0]))

    def forward(self, x):
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
        print("SETSTATE-RAN-AT-LOAD")
        self.w = state[0]
        self.training = state[1]


def entries(path):
    z = zipfile.ZipFile(path)
    return [(n, z.read(n)) for n in z.namelist()]


def write(path, items):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as w:
        for n, b in items:
            w.writestr(n, b)


def replace(items, name_end, fn):
    return [(n, fn(b) if n.endswith(name_end) else b) for n, b in items]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.block.bn.running_mean.copy_(torch.tensor([0.25, -0.5]))
    honest = os.path.join(out, "honest.pt")
    torch.jit.script(net).save(honest)
    torch.jit.script(Setstate()).save(os.path.join(out, "setstate.pt"))
    base = entries(honest)
    root = base[0][0].split("/")[0]
    code = f"{root}/code/__torch__.py"
    ret = b"return _1"
    assert ret in dict(base)[code], dict(base)[code]

    def code_case(expr):
        return replace(base, code, lambda b: b.replace(ret, b"return " + expr))

    cases = {
        "parens-6000": code_case(b"(" * 6000 + b"x" + b")" * 6000),
        "unary-6000": code_case(b"-" * 6000 + b"x"),
        "sum-12000": code_case(b"x" + b" + x" * 12000),
        "parens-150": code_case(b"(" * 150 + b"x" + b")" * 150),
        "not-6000": code_case(b"not " * 6000 + b"x"),
    }
    pkl = dict(base)[f"{root}/data.pkl"]
    # the first tensor's size tuple (MARK BININT1 2 BININT1 3 TUPLE: head.weight [1, 2] or lin.weight [2, 3])
    i = pkl.find(b"(K\x02K\x03t")
    assert i > 0
    cases["size-past-storage"] = replace(base, "data.pkl", lambda b: b[:i] + b"(M\x00\x10K\x03t" + b[i + 6:])
    # the value of the first _is_full_backward_hook (None) becomes a tuple nested 2,000 deep
    j = pkl.find(b"N", pkl.find(b"_is_full_backward_hook"))
    cases["deep-tuple-in-state"] = replace(base, "data.pkl", lambda b: b[:j] + b"(" * 2000 + b"t" * 2000 + b[j + 1:])
    cases["not-torchscript"] = [(n, b) for n, b in base if "constants.pkl" not in n and "/code/" not in n]
    cases["storage-record-short"] = replace(base, f"{root}/data/0", lambda b: b[:4])
    expected = {}
    for name, items in cases.items():
        write(os.path.join(out, f"{name}.pt"), items)
    for name in ["honest", "setstate"] + list(cases):
        path = os.path.join(out, f"{name}.pt")
        r = subprocess.run([sys.executable, "-c", PROBE, path], capture_output=True, text=True)
        if r.returncode < 0:
            expected[name] = {"torch": "crash", "signal": -r.returncode}
        elif r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [""])[-1]
            expected[name] = {"torch": "error", "message": last[:200]}
        else:
            lines = r.stdout.strip().splitlines()
            expected[name] = {"torch": "ok", "state": json.loads(lines[-1]), "stdout": "\n".join(lines[:-1])}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


PROBE = """
import json, math, sys, torch
m = torch.jit.load(sys.argv[1])
# values read out of bounds can be anything: non-finite ones as strings
fin = lambda x: x if not isinstance(x, float) or math.isfinite(x) else str(x)
print(json.dumps({k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                      "values": [fin(x) for x in v.reshape(-1).tolist()]} for k, v in m.state_dict().items()}))
"""

main()
