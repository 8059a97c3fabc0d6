"""Learning rates of torch.optim.lr_scheduler's StepLR, MultiStepLR, CosineAnnealingLR and LambdaLR over 25 steps,
for test/lr_scheduler.test.ts.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/lr_schedules.py > test/reference/lr_schedules.json

Each case builds SGD over two parameter groups (lr 0.1 and 0.02) and records get_last_lr() after construction and
after each of 25 optimizer.step(); scheduler.step() pairs. Both PyTorch and the TypeScript schedulers use the
recursive forms. 25 steps run past CosineAnnealingLR's T_max (10), where the cosine turns back up, and over
MultiStepLR's repeated milestone (7 twice: gamma applies twice).

CHAINED cases step two schedulers over one optimizer (their factors compose), and the MANUAL cases halve every
group's lr by hand after the 8th optimizer step (the schedule carries on from the new value); these record the
groups' lr after each step.
"""
import json

import torch
from torch.optim import lr_scheduler as S

STEPS = 25
LAMBDAS = [lambda e: 0.95 ** e, lambda e: 1.0 / (1.0 + e)]  # written out again in the test

CASES = {
    'step': lambda opt: S.StepLR(opt, step_size=3, gamma=0.5),
    'multistep': lambda opt: S.MultiStepLR(opt, milestones=[3, 7, 7, 12], gamma=0.3),
    'cosine': lambda opt: S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001),
    'cosine_zero_min': lambda opt: S.CosineAnnealingLR(opt, T_max=4),
    'lambda': lambda opt: S.LambdaLR(opt, lr_lambda=LAMBDAS),
    'lambda_shared': lambda opt: S.LambdaLR(opt, lr_lambda=LAMBDAS[0]),
}

CHAINED = {
    'chain_step_multistep': lambda opt: [S.StepLR(opt, step_size=3, gamma=0.5), S.MultiStepLR(opt, milestones=[5], gamma=0.1)],
    'chain_cosine_step': lambda opt: [S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001), S.StepLR(opt, step_size=4, gamma=0.5)],
}
MANUAL = {
    'manual_step': lambda opt: [S.StepLR(opt, step_size=3, gamma=0.5)],
    'manual_cosine': lambda opt: [S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)],
}


def run_many(make, halve_at=None):
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([{'params': [a]}, {'params': [b], 'lr': 0.02}], lr=0.1)
    scheds = make(opt)
    lrs = [[g['lr'] for g in opt.param_groups]]
    for k in range(1, STEPS + 1):
        opt.step()
        if k == halve_at:
            for g in opt.param_groups:
                g['lr'] *= 0.5
        for sched in scheds:
            sched.step()
        lrs.append([g['lr'] for g in opt.param_groups])
    return lrs


def run(make):
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.SGD([{'params': [a]}, {'params': [b], 'lr': 0.02}], lr=0.1)
    sched = make(opt)
    lrs = [sched.get_last_lr()]
    for _ in range(STEPS):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
    return lrs


cases = {k: run(f) for k, f in CASES.items()}
cases.update({k: run_many(f) for k, f in CHAINED.items()})
cases.update({k: run_many(f, halve_at=8) for k, f in MANUAL.items()})
print(json.dumps({'torch': torch.__version__, 'steps': STEPS, 'cases': cases}))
