"""Ten-step trajectories of torch.optim.SGD / Adam / AdamW on a small float64 problem, for test/optim.test.ts.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/optim_trajectories.py > test/reference/optim_trajectories.json

Problem: a 2-layer MLP, out = tanh(X W1^T + b1) W2^T + b2, loss = mean((out - Y)^2) (its negation for the
`maximize` cases, so ascending it is bounded), X [8, 3], Y [8, 2], W1 [4, 3], b1 [4], W2 [2, 4], b2 [2]. A fifth
parameter `u` [3] is given to the optimizer but never used, so it has no gradient and must be skipped (no state).
Every input is written from plain Python floats (sin / cos of small integers), and the JSON carries them, so the
JavaScript side starts from bit-identical data. For each case the JSON holds the loss before each step and every
parameter after each step. zero_grad(set_to_none=True) matches tensornormal's zeroGrad() default.
"""
import json
import math

import torch

STEPS = 10


def data():
    X = [[math.sin(1.7 * i + 0.9 * j + 0.3) for j in range(3)] for i in range(8)]
    Y = [[math.cos(0.8 * i - 1.3 * j) * 0.7 for j in range(2)] for i in range(8)]
    W1 = [[0.5 * math.sin(3.1 * i + 1.9 * j + 1.0) for j in range(3)] for i in range(4)]
    b1 = [0.1 * math.cos(2.3 * i) for i in range(4)]
    W2 = [[0.5 * math.cos(1.1 * i + 2.7 * j + 0.5) for j in range(4)] for i in range(2)]
    b2 = [0.2 * math.sin(1.5 * i + 0.2) for i in range(2)]
    u = [0.3, -0.2, 0.1]
    return dict(X=X, Y=Y, W1=W1, b1=b1, W2=W2, b2=b2, u=u)


# name -> (optimizer, groups, options, negate loss). groups None: one group of all five parameters; otherwise a
# list of (parameter names, group options).
CASES = {
    'sgd_plain': ('SGD', None, dict(lr=0.1), False),
    'sgd_momentum': ('SGD', None, dict(lr=0.1, momentum=0.9), False),
    'sgd_nesterov': ('SGD', None, dict(lr=0.05, momentum=0.9, nesterov=True), False),
    'sgd_weight_decay': ('SGD', None, dict(lr=0.1, momentum=0.5, weight_decay=0.01), False),
    'sgd_dampening': ('SGD', None, dict(lr=0.1, momentum=0.9, dampening=0.3), False),
    'sgd_maximize': ('SGD', None, dict(lr=0.1, momentum=0.9, maximize=True), True),
    'sgd_groups': ('SGD', [(['W1', 'b1'], dict(momentum=0.9)), (['W2', 'b2', 'u'], dict(lr=0.05, weight_decay=0.1))],
                   dict(lr=0.1), False),
    'adam': ('Adam', None, dict(lr=0.05), False),
    # a fast second-moment decay (beta2 0.5-0.7) lets v fall below its running maximum within ten steps, so amsgrad
    # changes the trajectory (with 0.999 it would not, and the case would test nothing)
    'adam_amsgrad': ('Adam', None, dict(lr=0.05, betas=(0.9, 0.6), amsgrad=True), False),
    'adam_no_amsgrad': ('Adam', None, dict(lr=0.05, betas=(0.9, 0.6)), False),
    'adam_weight_decay': ('Adam', None, dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1), False),
    'adam_maximize': ('Adam', None, dict(lr=0.05, maximize=True), True),
    'adam_amsgrad_wd_eps': ('Adam', None, dict(lr=0.05, betas=(0.9, 0.7), amsgrad=True, weight_decay=0.05, eps=1e-3), False),
    'adamw': ('AdamW', None, dict(lr=0.05), False),
    'adamw_amsgrad': ('AdamW', None, dict(lr=0.05, betas=(0.9, 0.5), weight_decay=0.1, amsgrad=True), False),
    'adamw_maximize': ('AdamW', None, dict(lr=0.05, weight_decay=0.1, maximize=True), True),
    'adamw_groups': ('AdamW', [(['W1', 'b1'], dict(weight_decay=0.0)), (['W2', 'b2', 'u'], dict(lr=0.02, betas=(0.5, 0.9)))],
                     dict(lr=0.05), False),
}

NAMES = ['W1', 'b1', 'W2', 'b2', 'u']


def run(kind, groups, options, negate, d):
    X = torch.tensor(d['X'], dtype=torch.float64)
    Y = torch.tensor(d['Y'], dtype=torch.float64)
    P = {n: torch.tensor(d[n], dtype=torch.float64, requires_grad=True) for n in NAMES}
    if groups is None:
        params = [P[n] for n in NAMES]
    else:
        params = [dict(params=[P[n] for n in names], **g) for names, g in groups]
    opt = getattr(torch.optim, kind)(params, **options)
    losses, traj = [], []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        out = torch.tanh(X @ P['W1'].T + P['b1']) @ P['W2'].T + P['b2']
        loss = ((out - Y) ** 2).mean()
        if negate:
            loss = -loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        traj.append({n: P[n].detach().reshape(-1).tolist() for n in NAMES})
    assert len(opt.state[P['u']]) == 0, 'u has no gradient: no state'
    return dict(losses=losses, params=traj)


def main():
    d = data()
    cases = {}
    for name, (kind, groups, options, negate) in CASES.items():
        res = run(kind, groups, options, negate, d)
        if options.get('amsgrad'):
            plain = run(kind, groups, dict(options, amsgrad=False), negate, d)
            assert plain['params'][-1] != res['params'][-1], f'{name}: amsgrad made no difference'
        cases[name] = dict(optimizer=kind, options=options, groups=groups, negate=negate, **res)
    print(json.dumps(dict(torch=torch.__version__, steps=STEPS, data=d, cases=cases), indent=1))


if __name__ == '__main__':
    main()
