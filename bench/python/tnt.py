"""Tensor-Normal Training (Ren & Goldfarb, NeurIPS 2021) written the way a PyTorch user would write it.

This is the Python side of the TNT benchmark rows: a plain, readable implementation from the paper
(/work/shared/paper/tensor-normal-training.txt, eq. (3) and (5), Algorithm 1) and its implementation notes,
with no fusion or other tricks, so that it measures what PyTorch gives a user who implements the method directly.

For a parameter W whose gradient has (matricised) shape (d_1, ..., d_k):

  statistics   G^(i) = G contracted with itself over every mode but i      (d_i x d_i, G the sampled gradient)
               H_i <- decay * H_i + (1 - decay) * G^(i)                    (one moving-average pass per factor)
  factors      c0 = (tr(H_1) / prod_j d_j)^(1/k)
               U_i = H_i / (c0^(k-1) * prod_{j != i} d_j)                  (eq. 5: tr(U_i) = c0 * d_i for every i)
  inverses     (U_i + eps I)^-1 by torch.linalg.inv (an LU inverse, as the authors used)
  update       m <- momentum * m + g                                       (raw gradient, no dampening)
               p = m x_1 (U_1 + eps I)^-1 x_2 ... x_k (U_k + eps I)^-1     (mode products)
               W <- W * (1 - lr * weight_decay) - lr * p                   (decoupled weight decay)

Schedules: statistics every T1 steps; inverses every T1 steps while fewer than T2 steps were taken, then every T2.
Conv weights (out, in, kh, kw) are matricised to three factors (out, in, kh * kw); a bias is one full d x d factor.

Usage (the sampled backward pass reuses the training step's forward pass):

    opt = TNT(model.parameters(), lr=1e-4, eps=0.1)
    z = model(x)
    if opt.wants_statistics():
        y = torch.bernoulli(torch.sigmoid(z.detach()))      # y from the model's own predictive distribution
        sampled_loss(z, y).backward(retain_graph=True)
        opt.collect_statistics()
        opt.zero_grad(set_to_none=True)
    loss(z, x).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
"""
import torch


def factor_shape(p):
    """The tensor shape whose modes get one Kronecker factor each."""
    if p.dim() == 4:
        return (p.shape[0], p.shape[1], p.shape[2] * p.shape[3])
    return tuple(p.shape)


def mode_product(g, a, i):
    """G x_i A: multiplies mode i of G by the matrix A, (G x_i A)[.., j, ..] = sum_k A[j, k] G[.., k, ..]."""
    return torch.movedim(torch.tensordot(g, a, dims=([i], [1])), -1, i)


class TNT(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, eps=0.1, momentum=0.9, weight_decay=0.0, decay=0.9, T1=1, T2=20):
        if lr <= 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps <= 0:
            raise ValueError(f"Invalid eps: {eps}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay: {weight_decay}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"Invalid decay: {decay}")
        if int(T1) < 1 or int(T2) < 1:
            raise ValueError(f"Invalid T1/T2: {T1}, {T2}")
        defaults = dict(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, decay=decay, T1=int(T1), T2=int(T2))
        super().__init__(params, defaults)
        self.steps = 0
        self.warm_batches = 0

    def wants_statistics(self):
        """True on the steps whose sampled gradient feeds the statistics (every T1 steps)."""
        return self.steps % self.defaults["T1"] == 0

    def _refresh_inverses(self):
        T1, T2, t = self.defaults["T1"], self.defaults["T2"], self.steps
        return (t < T2 and t % T1 == 0) or t % T2 == 0

    @torch.no_grad()
    def collect_statistics(self, warm_start=False):
        """Reads the sampled gradient from p.grad and folds G^(i) into each factor's statistic H_i.

        With warm_start=True (before training, at the initial weights) H_i is the plain running mean of the
        G^(i) seen so far instead of a moving average.
        """
        if warm_start:
            self.warm_batches += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                shape = factor_shape(p)
                g = p.grad.reshape(shape)
                state = self.state[p]
                if "H" not in state:
                    state["H"] = [torch.zeros(d, d, dtype=p.dtype) for d in shape]
                k = len(shape)
                for i in range(k):
                    others = [j for j in range(k) if j != i]
                    gi = torch.tensordot(g, g, dims=(others, others))
                    h = state["H"][i]
                    if warm_start:
                        n = self.warm_batches
                        h.mul_((n - 1) / n).add_(gi, alpha=1.0 / n)
                    else:
                        h.mul_(group["decay"]).add_(gi, alpha=1.0 - group["decay"])

    @torch.no_grad()
    def _inverses(self, state, shape, eps):
        k = len(shape)
        total = 1
        for d in shape:
            total *= d
        H = state["H"]
        c0 = (torch.trace(H[0]).item() / total) ** (1.0 / k)
        inv = []
        for i, d in enumerate(shape):
            others = total // d
            u = H[i] / (c0 ** (k - 1) * others)
            inv.append(torch.linalg.inv(u + eps * torch.eye(d, dtype=u.dtype)))
        state["inv"] = inv

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        refresh = self._refresh_inverses()
        for group in self.param_groups:
            lr, eps, momentum, wd = group["lr"], group["eps"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "H" not in state:
                    raise RuntimeError("TNT.step(): no statistics yet; call collect_statistics() after a sampled backward pass first")
                shape = factor_shape(p)
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = p.grad.clone()
                else:
                    buf.mul_(momentum).add_(p.grad)
                if refresh or "inv" not in state:
                    self._inverses(state, shape, eps)
                direction = buf.reshape(shape)
                for i, a in enumerate(state["inv"]):
                    direction = mode_product(direction, a, i)
                if wd != 0:
                    p.mul_(1 - lr * wd)
                p.add_(direction.reshape(p.shape), alpha=-lr)
        self.steps += 1
        return loss
