"""The benchmark models, losses and training step on the PyTorch side (mirrors bench/node/models.mjs)."""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from tnt import TNT


def read_fixture(path):
    """[(name, tensor)] from a fixture written by bench/fixtures.mjs (float32 values back to back + an index)."""
    with open(path) as f:
        meta = json.load(f)
    with open(meta["bin"], "rb") as f:
        flat = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    out = []
    for t in meta["tensors"]:
        n = 1
        for d in t["shape"]:
            n *= d
        out.append((t["name"], flat[t["offset"]:t["offset"] + n].reshape(t["shape"]).clone()))
    return out


def autoencoder(widths):
    """Linear layers with ReLU after each except the narrowest (the code) and the last (logits)."""
    code = min(widths)
    layers = []
    for l in range(len(widths) - 1):
        layers.append(nn.Linear(widths[l], widths[l + 1]))
        if widths[l + 1] != code and l + 2 < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def small_cnn():
    """The architecture of tensornormal's models.smallCnn (Sequential indices match its parameter names)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def load_weights(model, weights):
    params = list(model.parameters())
    if len(params) != len(weights):
        raise RuntimeError(f"model has {len(params)} parameters, the fixture {len(weights)}")
    with torch.no_grad():
        for p, (name, w) in zip(params, weights):
            if tuple(p.shape) != tuple(w.shape):
                raise RuntimeError(f"{name}: fixture shape {tuple(w.shape)} but the model has {tuple(p.shape)}")
            p.copy_(w)


class Problem:
    """A model with its batch, loss and sampling rule (for TNT's sampled backward pass)."""

    def __init__(self, case, fixtures):
        kind = case["model"]
        data = dict(read_fixture(fixtures["data"]))
        if kind == "autoencoder":
            self.model = autoencoder(case.get("widths", [784, 1000, 500, 250, 30, 250, 500, 1000, 784]))
            self.x = data["x"]
            self.target = self.x
            # BCE-with-logits summed over pixels, averaged over the batch.
            self.loss = lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="sum") / z.shape[0]
            self.sample = lambda z: torch.bernoulli(torch.sigmoid(z))
        elif kind == "cnn":
            self.model = small_cnn()
            self.x = data["x"]
            self.target = data["y"].long()
            self.loss = lambda z, y: F.cross_entropy(z, y)
            self.sample = lambda z: torch.multinomial(torch.softmax(z, dim=1), 1, replacement=True).squeeze(1)
        else:
            raise ValueError(f"unknown model {kind}")
        load_weights(self.model, read_fixture(fixtures["weights"]))
        self.opt = make_optimizer(case["optim"], self.model.parameters(), case["hyper"])
        self.is_tnt = isinstance(self.opt, TNT)
        if self.is_tnt:
            self.warm_start()

    def sampled_backward(self, z):
        with torch.no_grad():
            y = self.sample(z.detach())
        self.loss(z, y).backward(retain_graph=True)

    def warm_start(self):
        """TNT's warm start: statistics at the initial weights over the training set (here: the one batch)."""
        z = self.model(self.x)
        self.sampled_backward(z)
        self.opt.collect_statistics(warm_start=True)
        self.opt.zero_grad(set_to_none=True)

    def step(self):
        z = self.model(self.x)
        if self.is_tnt and self.opt.wants_statistics():
            self.sampled_backward(z)
            self.opt.collect_statistics()
            self.opt.zero_grad(set_to_none=True)
        loss = self.loss(z, self.target)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()

    def state_bytes(self):
        total = 0

        def add(v):
            nonlocal total
            if torch.is_tensor(v):
                total += v.numel() * v.element_size()
            elif isinstance(v, (list, tuple)):
                for x in v:
                    add(x)
            elif isinstance(v, dict):
                for x in v.values():
                    add(x)

        for st in self.opt.state.values():
            add(st)
        return total


def make_optimizer(name, params, h):
    if name == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"], weight_decay=h.get("weightDecay", 0))
    if name == "adam":
        return torch.optim.Adam(params, lr=h["lr"], eps=h["eps"], weight_decay=h.get("weightDecay", 0))
    if name == "tnt":
        return TNT(params, lr=h["lr"], eps=h["eps"], momentum=h["momentum"], weight_decay=h.get("weightDecay", 0), T1=h["T1"], T2=h["T2"])
    raise ValueError(f"unknown optimizer {name}")
