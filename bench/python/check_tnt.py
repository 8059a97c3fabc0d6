"""Checks bench/python/tnt.py against a dense float64 re-derivation: `python3 bench/python/check_tnt.py`.

For a conv-shaped parameter (three factors), a linear weight (two) and a bias (one), after a warm start and two
moving-average updates, the step must equal W - lr * (kron_i (U_i + eps I)^-1) vec(m) with U_i from eq. (5),
computed here from unfolded matrices and an explicit Kronecker product rather than tensordot and mode products.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tnt import TNT  # noqa: E402


def unfold(g, i):
    return torch.movedim(g, i, 0).reshape(g.shape[i], -1)


def main():
    torch.manual_seed(1)
    shapes = [(4, 3, 2, 2), (5, 3), (6,)]
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    lr, eps, mom, wd, decay = 0.3, 0.05, 0.9, 0.1, 0.9
    opt = TNT(params, lr=lr, eps=eps, momentum=mom, weight_decay=wd, decay=decay, T1=1, T2=20)
    # Gradients with non-trivial spectra: a random matrix times a scaled one, not something close to I.
    grads = [[torch.randn(s, dtype=torch.float64) * torch.linspace(0.1, 3, s[-1], dtype=torch.float64) for s in shapes] for _ in range(3)]
    real = [torch.randn(s, dtype=torch.float64) for s in shapes]

    for p, g in zip(params, grads[0]):
        p.grad = g.clone()
    opt.collect_statistics(warm_start=True)
    for p, g in zip(params, grads[1]):
        p.grad = g.clone()
    opt.collect_statistics(warm_start=True)
    for p, g in zip(params, grads[2]):
        p.grad = g.clone()
    opt.collect_statistics()
    before = [p.detach().clone() for p in params]
    for p, g in zip(params, real):
        p.grad = g.clone()
    opt.step()

    worst = 0.0
    for k, (w0, p, s) in enumerate(zip(before, params, shapes)):
        fs = (s[0], s[1], s[2] * s[3]) if len(s) == 4 else s
        order = len(fs)
        gs = [g[k].reshape(fs) for g in grads]
        H = []
        for i in range(order):
            stats = [unfold(g, i) @ unfold(g, i).T for g in gs]
            h = (stats[0] + stats[1]) / 2  # warm start: plain mean of the first two
            H.append(decay * h + (1 - decay) * stats[2])
        total = 1
        for d in fs:
            total *= d
        c0 = (torch.trace(H[0]).item() / total) ** (1 / order)
        K = torch.ones(1, 1, dtype=torch.float64)
        for i, d in enumerate(fs):
            u = H[i] / (c0 ** (order - 1) * (total // d))
            assert abs(torch.trace(u).item() - c0 * d) < 1e-9 * c0 * d, "eq. (5): tr(U_i) = c0 d_i"
            K = torch.kron(K, torch.linalg.inv(u + eps * torch.eye(d, dtype=torch.float64)))
        m = real[k].reshape(-1)  # first step: the momentum buffer is the gradient
        expected = w0 * (1 - lr * wd) - lr * (K @ m).reshape(s)
        err = (p.detach() - expected).abs().max().item() / expected.abs().max().item()
        worst = max(worst, err)
        print(f"param {tuple(s)}: relative error {err:.2e}")
    if worst > 1e-10:
        raise SystemExit(f"tnt.py disagrees with the dense re-derivation (worst {worst:.2e})")
    print("tnt.py matches the dense float64 re-derivation")


if __name__ == "__main__":
    main()
