"""A float64 port of the curvature update rules of the TNT authors' code, for test/fidelity.test.ts.

The authors' code is github.com/renyiryry/tnt_neurips_2021 (PyTorch); this file re-derives, in its own words, the
rules that tensornormal's `statistics: 'authors'`, `earlyRefresh: false` and KFAC's `convScaling: 'authors'` claim
to follow, and beside each the rule tensornormal uses by default, so the tests can show that the options matter.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/authors_port.py > test/reference/authors_port.json

What is ported (file and function of the authors' repository):
- TNT and Shampoo statistics, utils_git/utils_shampoo.py `shampoo_kron_matrices_per_variable`: gathered when
  i % T1 == 0, i the iteration (`params['i']`, 0 on the first step), with decay 0.9 and weight 0.1
  (`shampoo_decay`, `shampoo_weight`, utils_git/jupyter_functions.py):
      without a warm start: weight = max(1/(i+1), 0.1); i == 0: H = S; else H = 0.9 H + weight S (not convex)
      after a warm start:   i == 0: nothing; else H = 0.9 H + 0.1 S
  the contractions S_k = tensordot(g, g) over every mode but k (`shampoo_get_list_of_contractions`).
- Warm start, utils_git/utils.py `get_warm_start` and `shampoo_kron_matrices_warm_start_per_variable`: the running
  mean over the warm-start batches (H = S at j = 1, then H = (j-1)/j H + 1/j S), sampled targets for TNT and KFAC,
  true targets for Shampoo.
- Refresh schedule, `shampoo_inversion_per_variable`: inverse_freq = T2, but T1 while i < T2, except for the
  '-lessInverse' algorithms (the MNIST / FACES Shampoo) which keep T2 from the start; refresh when
  i % inverse_freq == 0. KFAC: utils_git/utils_kfac.py `kfac_if_inverse`, (i <= T2 and i % T1 == 0) or i % T2 == 0.
- TNT inverse ('same-trace'): c = (tr H_1 / prod n)^(1/k), U_k = H_k / (c^(k-1) prod_{j != k} n_j),
  (U_k + eps I)^-1 by torch.inverse. Shampoo root (the SVD branch, `shampoo_if_coupled_newton` False):
  (H_k + eps I) = U S V^T, root U diag(S^(-1/(2k))) V^T.
- Direction, `shampoo_compute_direction_per_variable`: the momentum tensordot-ed with each factor's matrix over
  its leading mode in turn. Momentum (utils.py `train`): m = 0.9 m + g (dampening 0). Update (`update_parameter`):
  W = W (1 - lr wd) + lr p, p = -direction.
- KFAC, `kfac_update`: when i % T1 == 0, A = rho A + (1 - rho) A_new and the same for G, rho = 0.9 after a warm start
  (also at i = 0), rho = min(1 - 1/(i+1), 0.9) without one (their 'kfac-no-max-no-LM' branch); inverses of
  A + sqrt(lambda) I and G + sqrt(lambda) I; direction G^-1 [mW | mb] A^-1 (`get_homo_grad` layout).
  Factors: utils.py `get_A_A_T` (Linear: (1/N) sum [h 1][h 1]^T), `get_A_A_T_kfac_v2` (conv: unfolded padded
  patches with a 1 appended, summed over locations, divided by N), utils_kfac.py `get_g_g_T` (Linear:
  N g^T g of the batch-mean output gradients; conv: (N g) per location, G = (1/(N L)) sum over examples and
  locations).

tensornormal's default ('convex') rules, ported beside them: weight w = max(1/(t+1), 0.1) with t the count of
statistics updates, H = (1 - w) H + w S, w = 0.1 after a warm start and step 0 folded; KFC conv factors (A averaged
over examples and locations, G = N sum over locations of g g^T).

The problems are tiny and every input is written from plain Python floats (sin of small integers): an MLP
Linear(5, 4) + tanh + Linear(4, 3) with biases for TNT and Shampoo, and Conv2d(2, 3, 3, padding 1) on 3 x 3 inputs
(L = 9 locations) + tanh + flatten + Linear(27, 2) for KFAC, the loss 0.5 ||z - y||^2 summed over outputs and averaged over the batch. The
"sampled" targets are z + noise with the noise written in the JSON, so the JavaScript side draws the same ones.
For each case the JSON holds the options and, after every step, every parameter and every factor (KFAC: the
conv layer's A and G after every step, the Linear layer's after the last).
"""
import json
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

DECAY, WEIGHT = 0.9, 0.1  # shampoo_decay / shampoo_weight; kfac_rho = 0.9
MU = 0.9  # momentum_gradient_rho


def det(shape, seed, scale=1.0):
    """Deterministic values: scale * sin(0.37 k^2 + 1.7 k + seed) over the flat index k (no RNG)."""
    n = 1
    for d in shape:
        n *= d
    v = [scale * math.sin(0.37 * k * k + 1.7 * k + seed) for k in range(n)]
    return torch.tensor(v).reshape(shape)


def loss_fn(z, y):
    """0.5 ||z - y||^2 summed over the outputs, averaged over the batch (the FACES loss)."""
    return 0.5 * ((z - y) ** 2).sum() / z.shape[0]


def tolist(t):
    return t.detach().reshape(-1).tolist()


# ---------------------------------------------------------------------------------------------------------------
# TNT and Shampoo (shampoo_update and the functions it calls)

def contractions(g):
    """S_k = g contracted with itself over every mode but k (shampoo_get_list_of_contractions)."""
    out = []
    for k in range(g.dim()):
        axes = [a for a in range(g.dim()) if a != k]
        out.append(torch.tensordot(g, g, dims=(axes, axes)))
    return out


class KronState:
    """The per-variable statistics H_k and the matrices the direction multiplies by."""

    def __init__(self):
        self.H = None
        self.M = None
        self.updates = 0  # statistics updates (the convex rule's t)


def kron_update(st, g, i, o):
    if i % o['T1'] != 0:
        return
    S = contractions(g)
    if o['rule'] == 'authors':
        weight = WEIGHT
        if not o['warm']:
            weight = max(1 / (i + 1), weight)
        if i == 0:
            if not o['warm']:
                st.H = S
        else:
            st.H = [DECAY * h + weight * s for h, s in zip(st.H, S)]
    else:
        w = 1 - DECAY if o['warm'] else max(1 / (st.updates + 1), 1 - DECAY)
        st.H = S if st.H is None else [(1 - w) * h + w * s for h, s in zip(st.H, S)]
    st.updates += 1


def warm_update(st, g, j):
    """j-th warm-start batch, from 1 (shampoo_kron_matrices_warm_start_per_variable)."""
    S = contractions(g)
    if j == 1:
        st.H = S
    else:
        st.H = [(j - 1) / j * h + 1 / j * s for h, s in zip(st.H, S)]


def refresh_due(i, o):
    freq = o['T2']
    if o['early'] and i < freq:
        freq = o['T1']
    return i % freq == 0


def tnt_matrices(H, eps):
    n = [h.shape[0] for h in H]
    k = len(n)
    total = math.prod(n)
    c = (torch.trace(H[0]) / total) ** (1 / k)
    out = []
    for ii in range(k):
        others = math.prod(n[j] for j in range(k) if j != ii)
        U = H[ii] / c ** (k - 1) / others
        out.append(torch.inverse(U + eps * torch.eye(n[ii])))
    return out


def shampoo_roots(H, eps):
    k = len(H)
    out = []
    for h in H:
        u, s, v = torch.svd(h + eps * torch.eye(h.shape[0]))
        out.append(u @ torch.diag(1 / s ** (0.5 / k)) @ v.t())
    return out


def direction(m, M):
    d = m
    for mat in M:
        d = torch.tensordot(d, mat, dims=([0], [0]))
    return d


MLP_NAMES = ['W1', 'b1', 'W2', 'b2']


def mlp_init():
    return {'W1': det([4, 5], 0.3, 0.5), 'b1': det([4], 1.1, 0.1), 'W2': det([3, 4], 2.2, 0.5), 'b2': det([3], 3.3, 0.1)}


def mlp_forward(P, x):
    return torch.tanh(x @ P['W1'].t() + P['b1']) @ P['W2'].t() + P['b2']


def mlp_data(steps, warm, seed):
    N = 6
    d = {
        'X': [det([N, 5], seed + 10 * i) for i in range(steps)],
        'Y': [det([N, 3], seed + 10 * i + 5, 0.7) for i in range(steps)],
        'noise': [det([N, 3], seed + 10 * i + 7) for i in range(steps)],
        'warmX': [det([N, 5], seed + 100 + 10 * j) for j in range(warm)],
        'warmY': [det([N, 3], seed + 100 + 10 * j + 5, 0.7) for j in range(warm)],
        'warmNoise': [det([N, 3], seed + 100 + 10 * j + 7) for j in range(warm)],
    }
    return d


def grads(P, x, y):
    Q = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    z = mlp_forward(Q, x)
    gs = torch.autograd.grad(loss_fn(z, y), [Q[k] for k in MLP_NAMES])
    return dict(zip(MLP_NAMES, gs)), z.detach()


def run_tnt_or_shampoo(o, data):
    """o: method ('tnt' | 'shampoo'), rule, warm, T1, T2, early, steps, lr, eps, wd."""
    P = mlp_init()
    st = {k: KronState() for k in MLP_NAMES}
    mom = {k: torch.zeros_like(v) for k, v in P.items()}
    tnt = o['method'] == 'tnt'
    if o['warm']:
        for j in range(len(data['warmX'])):
            x = data['warmX'][j]
            _, z = grads(P, x, data['warmY'][j])
            y = z + data['warmNoise'][j] if tnt else data['warmY'][j]
            g, _ = grads(P, x, y)
            for k in MLP_NAMES:
                warm_update(st[k], g[k], j + 1)
    out = []
    for i in range(o['steps']):
        x, y = data['X'][i], data['Y'][i]
        g, z = grads(P, x, y)
        for k in MLP_NAMES:
            mom[k] = MU * mom[k] + g[k]
        # the statistics' gradient: sampled targets (TNT, 'Fisher-correct') or the true ones (Shampoo, 'None')
        gs = grads(P, x, z + data['noise'][i])[0] if tnt else g
        for k in MLP_NAMES:
            kron_update(st[k], gs[k], i, o)
            if refresh_due(i, o):
                st[k].M = tnt_matrices(st[k].H, o['eps']) if tnt else shampoo_roots(st[k].H, o['eps'])
            p = -direction(mom[k], st[k].M)
            P[k] = P[k] * (1 - o['lr'] * o['wd']) + o['lr'] * p
        out.append({'params': {k: tolist(P[k]) for k in MLP_NAMES},
                    'factors': {k: [tolist(h) for h in st[k].H] for k in MLP_NAMES}})
    return out


# ---------------------------------------------------------------------------------------------------------------
# KFAC (kfac_update, get_A_A_T, get_A_A_T_kfac_v2, get_g_g_T, get_warm_start)

CONV_NAMES = ['W1', 'b1', 'W2', 'b2']


def conv_init():
    return {'W1': det([3, 2, 3, 3], 0.7, 0.4), 'b1': det([3], 1.9, 0.1), 'W2': det([2, 27], 2.9, 0.3), 'b2': det([2], 3.9, 0.1)}


def conv_data(steps, warm, seed):
    N = 3
    return {
        'X': [det([N, 2, 3, 3], seed + 10 * i) for i in range(steps)],
        'Y': [det([N, 2], seed + 10 * i + 5, 0.7) for i in range(steps)],
        'noise': [det([N, 2], seed + 10 * i + 7) for i in range(steps)],
        'warmX': [det([N, 2, 3, 3], seed + 100 + 10 * j) for j in range(warm)],
        'warmNoise': [det([N, 2], seed + 100 + 10 * j + 7) for j in range(warm)],
    }


def conv_forward(P, x):
    s1 = F.conv2d(x, P['W1'], P['b1'], padding=1)
    h2 = torch.tanh(s1).flatten(1)
    s2 = h2 @ P['W2'].t() + P['b2']
    return s1, h2, s2


def kfac_factors(P, x, noise, scaling):
    """A and G of both layers from one sampled backward pass at the current weights."""
    s1, h2, s2 = conv_forward({k: v.clone().requires_grad_(True) for k, v in P.items()}, x)
    y = s2.detach() + noise
    g1, g2 = torch.autograd.grad(loss_fn(s2, y), [s1, s2])
    N = x.shape[0]
    patches = F.unfold(x, 3, padding=1)  # (N, C k k, L), channel-major as W1.reshape(3, -1)
    L = patches.shape[2]
    rows = torch.cat([patches.transpose(1, 2).reshape(N * L, -1), torch.ones(N * L, 1)], 1)
    gl = (N * g1).permute(1, 0, 2, 3).flatten(1)  # (out, N L), per-example output gradients
    if scaling == 'authors':
        A1 = rows.t() @ rows / N  # summed over locations, averaged over examples
        G1 = gl @ gl.t() / gl.shape[1]  # averaged over examples and locations
    else:
        A1 = rows.t() @ rows / (N * L)
        G1 = gl @ gl.t() / N
    h = torch.cat([h2, torch.ones(N, 1)], 1).detach()
    A2 = h.t() @ h / N
    G2 = N * g2.t() @ g2
    return [A1, A2], [G1, G2]


def run_kfac(o, data):
    """o: rule, warm, T1, T2, steps, lr, damping, wd, scaling."""
    P = conv_init()
    mom = {k: torch.zeros_like(v) for k, v in P.items()}
    A = G = None
    if o['warm']:
        for j in range(len(data['warmX'])):
            a, g = kfac_factors(P, data['warmX'][j], data['warmNoise'][j], o['scaling'])
            jj = j + 1
            A = a if A is None else [(jj - 1) / jj * x + 1 / jj * y for x, y in zip(A, a)]
            G = g if G is None else [(jj - 1) / jj * x + 1 / jj * y for x, y in zip(G, g)]
    else:
        A = [torch.zeros(19, 19), torch.zeros(28, 28)]
        G = [torch.zeros(3, 3), torch.zeros(2, 2)]
    sq = math.sqrt(o['damping'])
    inv = None
    updates = 0
    out = []
    for i in range(o['steps']):
        x, y = data['X'][i], data['Y'][i]
        Q = {k: v.clone().requires_grad_(True) for k, v in P.items()}
        gr = dict(zip(CONV_NAMES, torch.autograd.grad(loss_fn(conv_forward(Q, x)[2], y), [Q[k] for k in CONV_NAMES])))
        for k in CONV_NAMES:
            mom[k] = MU * mom[k] + gr[k]
        if i % o['T1'] == 0:
            a, g = kfac_factors(P, x, data['noise'][i], o['scaling'])
            if o['rule'] == 'authors':
                rho = DECAY if o['warm'] else min(1 - 1 / (i + 1), DECAY)
            else:
                rho = 1 - (1 - DECAY if o['warm'] else max(1 / (updates + 1), 1 - DECAY))
            A = [rho * x_ + (1 - rho) * y_ for x_, y_ in zip(A, a)]
            G = [rho * x_ + (1 - rho) * y_ for x_, y_ in zip(G, g)]
            updates += 1
        if (i <= o['T2'] and i % o['T1'] == 0) or i % o['T2'] == 0:
            inv = [(torch.inverse(a_ + sq * torch.eye(a_.shape[0])), torch.inverse(g_ + sq * torch.eye(g_.shape[0])))
                   for a_, g_ in zip(A, G)]
        for l, (w, b) in enumerate([('W1', 'b1'), ('W2', 'b2')]):
            out_dim = P[w].shape[0]
            M = torch.cat([mom[w].reshape(out_dim, -1), mom[b].reshape(out_dim, 1)], 1)
            D = inv[l][1] @ M @ inv[l][0]
            P[w] = P[w] * (1 - o['lr'] * o['wd']) - o['lr'] * D[:, :-1].reshape(P[w].shape)
            P[b] = P[b] * (1 - o['lr'] * o['wd']) - o['lr'] * D[:, -1]
        factors = {'A1': tolist(A[0]), 'G1': tolist(G[0])}
        if i == o['steps'] - 1:  # the Linear layer's (28 x 28) only at the end, to keep the JSON small
            factors.update({'A2': tolist(A[1]), 'G2': tolist(G[1])})
        out.append({'params': {k: tolist(P[k]) for k in CONV_NAMES}, 'factors': factors})
    return out


# ---------------------------------------------------------------------------------------------------------------

def case(name, o, data, runner):
    return name, {'options': o, 'steps': runner(o, data)}


def main():
    tnt_data = mlp_data(7, 3, 0.5)
    sh_data = mlp_data(7, 3, 1.5)
    kf_data = conv_data(5, 2, 2.5)
    tnt = dict(method='tnt', T1=1, T2=20, early=True, lr=0.02, eps=0.1, wd=0.01)
    sh = dict(method='shampoo', T1=1, T2=3, early=True, lr=0.01, eps=0.01, wd=0.01)
    kf = dict(T1=1, T2=2, lr=0.05, damping=0.1, wd=0.01, scaling='authors')
    cases = dict([
        # no warm start, T1 = 2: the authors' weight uses the iteration (1/3 at i = 2) and is not convex
        case('tnt_nowarm_authors', {**tnt, 'rule': 'authors', 'warm': False, 'T1': 2, 'T2': 4, 'steps': 7}, tnt_data, run_tnt_or_shampoo),
        case('tnt_nowarm_convex', {**tnt, 'rule': 'convex', 'warm': False, 'T1': 2, 'T2': 4, 'steps': 7}, tnt_data, run_tnt_or_shampoo),
        # warm start: the authors fold nothing at step 0
        case('tnt_warm_authors', {**tnt, 'rule': 'authors', 'warm': True, 'T2': 3, 'steps': 4}, tnt_data, run_tnt_or_shampoo),
        case('tnt_warm_convex', {**tnt, 'rule': 'convex', 'warm': True, 'T2': 3, 'steps': 4}, tnt_data, run_tnt_or_shampoo),
        # Shampoo: the MNIST configuration ('-warmStart-lessInverse': roots at steps 0 and 3 only) and its variants
        case('shampoo_warm_authors_lessinverse', {**sh, 'rule': 'authors', 'warm': True, 'early': False, 'steps': 5}, sh_data, run_tnt_or_shampoo),
        case('shampoo_warm_authors', {**sh, 'rule': 'authors', 'warm': True, 'steps': 5}, sh_data, run_tnt_or_shampoo),
        case('shampoo_warm_convex', {**sh, 'rule': 'convex', 'warm': True, 'steps': 5}, sh_data, run_tnt_or_shampoo),
        case('shampoo_nowarm_authors_lessinverse', {**sh, 'rule': 'authors', 'warm': False, 'early': False, 'steps': 5}, sh_data, run_tnt_or_shampoo),
        case('shampoo_nowarm_convex', {**sh, 'rule': 'convex', 'warm': False, 'steps': 5}, sh_data, run_tnt_or_shampoo),
        # KFAC, a conv layer: the authors' scaling puts L = 9 into A; after a warm start their rule is the convex one
        case('kfac_warm_authors', {**kf, 'rule': 'authors', 'warm': True, 'steps': 4}, kf_data, run_kfac),
        case('kfac_warm_kfc', {**kf, 'rule': 'convex', 'warm': True, 'scaling': 'kfc', 'steps': 4}, kf_data, run_kfac),
        # KFAC without a warm start, T1 = 2: the authors' convex weight uses the iteration (max(1/3, 0.1) at i = 2)
        case('kfac_nowarm_authors', {**kf, 'rule': 'authors', 'warm': False, 'T1': 2, 'T2': 4, 'steps': 5}, kf_data, run_kfac),
        case('kfac_nowarm_convex', {**kf, 'rule': 'convex', 'warm': False, 'T1': 2, 'T2': 4, 'steps': 5}, kf_data, run_kfac),
    ])
    enc = lambda d: {k: [tolist(t) for t in v] for k, v in d.items()}
    print(json.dumps({
        'generator': 'test/reference/authors_port.py',
        'torch': torch.__version__,
        'data': {'mlp_tnt': enc(tnt_data), 'mlp_shampoo': enc(sh_data), 'conv_kfac': enc(kf_data)},
        'init': {'mlp': {k: tolist(v) for k, v in mlp_init().items()}, 'conv': {k: tolist(v) for k, v in conv_init().items()}},
        'cases': cases,
    }))


if __name__ == '__main__':
    main()
