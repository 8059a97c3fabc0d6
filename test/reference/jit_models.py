"""TorchScript fixtures for test/jit.test.ts, made by PyTorch itself (Debian's python3-torch, /usr/bin/python3).

  jit_models.py make DIR    writes DIR/resnet.pt (a scripted ResNet-style model, float64, BatchNorm, a residual
                            block), DIR/control.pt (scripted control flow: a data-dependent loop and branch),
                            DIR/traced.pt (torch.jit.trace of a small MLP), DIR/tied.pt (a scripted model with tied
                            weights, and its parameters after 10 Adam steps), DIR/not-a-module.pt (a pickled state
                            dict, torch.save), DIR/mlp-state.pt (the MLP's state dict), DIR/evil.pt (a pickle that
                            would run `touch DIR/pwned` in Python's torch.load) and DIR/ref.json: the inputs, each module's outputs, and the resnet's
                            weights after 20 Adam steps (lr 1e-2) on (x, y) with MSE in train mode.
  jit_models.py check FILE REF  loads FILE with torch.jit.load and prints {outputs (eval, on REF's x), params}.
  jit_models.py run FILE X      the same on the float64 input in the JSON file X (a traced tensornormal model).
"""
import json
import sys

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.block = Block(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block(x)
        x = x.mean(dim=(2, 3))
        return self.fc(x)


class Control(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        steps = 0
        while bool(x.abs().sum() > 1.0) and steps < 10:
            x = torch.tanh(self.lin(x)) * 0.5
            steps += 1
        if steps % 2 == 1:
            x = -x
        return x, steps


class Tied(nn.Module):
    """A tiny language model whose output projection shares the embedding's weight (tied weights)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4)
        self.mix = nn.Linear(4, 4)
        self.head = nn.Linear(4, 7, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(torch.tanh(self.mix(self.emb(tokens))))


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.path}",))


def params(m):
    return {n: p.detach().reshape(-1).tolist() for n, p in m.named_parameters()}


def main():
    torch.manual_seed(0)
    if sys.argv[1] == "make":
        d = sys.argv[2]
        net = Net().double()
        x = torch.randn(6, 1, 5, 5, dtype=torch.float64)
        y = torch.randn(6, 3, dtype=torch.float64)
        s = torch.jit.script(net)
        s.save(f"{d}/resnet.pt")
        s.eval()
        out_eval = s(x).tolist()
        # 20 Adam steps in train mode, the reference for the same steps in Node
        t = torch.jit.load(f"{d}/resnet.pt")
        t.train()
        opt = torch.optim.Adam(t.parameters(), lr=1e-2)
        for _ in range(20):
            opt.zero_grad()
            loss = ((t(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        c = torch.jit.script(Control())
        c.save(f"{d}/control.pt")
        xc = torch.randn(2, 4) * 3
        oc, steps = c(xc)
        mlp = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
        xt = torch.randn(4, 3)
        torch.jit.trace(mlp, xt).save(f"{d}/traced.pt")
        # tied weights: named_parameters lists emb.weight once, state_dict has both names; 10 Adam steps
        tied = torch.jit.script(Tied().double())
        tied.save(f"{d}/tied.pt")
        tied = torch.jit.load(f"{d}/tied.pt")
        tok = torch.randint(0, 7, (3, 5))
        tgt = torch.randint(0, 7, (3, 5))
        topt = torch.optim.Adam(tied.parameters(), lr=1e-2)
        for _ in range(10):
            topt.zero_grad()
            nn.functional.cross_entropy(tied(tok).reshape(-1, 7), tgt.reshape(-1)).backward()
            topt.step()
        torch.save(net.state_dict(), f"{d}/not-a-module.pt")
        torch.save(mlp.state_dict(), f"{d}/mlp-state.pt")
        # a pickle that runs a command when Python loads it (torch.load(weights_only=False)): must be refused
        torch.save({"w": torch.ones(2), "x": Evil(f"{d}/pwned")}, f"{d}/evil.pt")
        json.dump({
            "x": x.tolist(), "y": y.tolist(), "outEval": out_eval, "adam20": params(t),
            "xc": xc.tolist(), "control": oc.tolist(), "steps": steps,
            "xt": xt.tolist(), "traced": mlp(xt).tolist(),
            "tiedTokens": tok.tolist(), "tiedTargets": tgt.tolist(), "tiedAdam10": params(tied),
            "tiedStateKeys": list(tied.state_dict().keys()),
        }, open(f"{d}/ref.json", "w"))
    elif sys.argv[1] == "run":
        m = torch.jit.load(sys.argv[2])
        m.eval()
        with torch.no_grad():
            out = m(torch.tensor(json.load(open(sys.argv[3])), dtype=torch.float64))
        print(json.dumps({"outputs": out.tolist(), "params": params(m)}))
    else:
        m = torch.jit.load(sys.argv[2])
        ref = json.load(open(sys.argv[3]))
        m.eval()
        with torch.no_grad():
            out = m(torch.tensor(ref["x"], dtype=torch.float64))
        print(json.dumps({"outputs": out.tolist(), "params": params(m)}))


main()
