"""Values and input gradients of torch.nn's loss modules, for test/nn-loss.test.ts.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/losses.py > test/reference/losses.json

Inputs are fixed float64 numbers (written out here and in the JSON). Each case records the module's repr, the loss
for each reduction and, for 'mean', d loss / d input.
"""
import json

import torch
import torch.nn as nn

X = [[0.3, -1.2, 2.0, 0.5], [1.5, 0.1, -0.7, -2.2], [-0.4, 0.9, 0.2, 1.1]]   # logits / predictions (3, 4)
CLASSES = [2, 0, 3]
IGNORED = [2, -100, 3]
T = [[0.5, -1.0, 1.5, 0.0], [2.0, 0.3, -0.2, -1.0], [0.0, 1.0, 0.6, 0.4]]    # regression targets
P = [[0.2, 0.7, 0.9, 0.4], [0.55, 0.1, 0.35, 0.8], [0.6, 0.3, 0.05, 0.95]]   # probabilities in (0, 1)
B = [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.25]]      # binary (soft) targets
W = [0.5, 2.0, 1.0, 1.5]                                                     # per-class weights / pos_weight

def t(v, dtype=torch.float64):
    return torch.tensor(v, dtype=dtype)

CASES = [
    ('L1Loss', {}, lambda **k: nn.L1Loss(**k), X, T, 'float'),
    ('MSELoss', {}, lambda **k: nn.MSELoss(**k), X, T, 'float'),
    ('SmoothL1Loss', {'beta': 0.5}, lambda **k: nn.SmoothL1Loss(beta=0.5, **k), X, T, 'float'),
    ('SmoothL1Loss', {'beta': 0}, lambda **k: nn.SmoothL1Loss(beta=0.0, **k), X, T, 'float'),
    ('CrossEntropyLoss', {}, lambda **k: nn.CrossEntropyLoss(**k), X, CLASSES, 'long'),
    ('CrossEntropyLoss', {'weight': W, 'ignoreIndex': 3}, lambda **k: nn.CrossEntropyLoss(weight=t(W), ignore_index=3, **k), X, CLASSES, 'long'),
    ('CrossEntropyLoss', {'labelSmoothing': 0.2}, lambda **k: nn.CrossEntropyLoss(label_smoothing=0.2, **k), X, CLASSES, 'long'),
    ('CrossEntropyLoss', {'weight': W, 'labelSmoothing': 0.1}, lambda **k: nn.CrossEntropyLoss(weight=t(W), label_smoothing=0.1, **k), X, CLASSES, 'long'),
    ('CrossEntropyLoss', {}, lambda **k: nn.CrossEntropyLoss(**k), X, P, 'float'),  # class probabilities
    ('NLLLoss', {}, lambda **k: nn.NLLLoss(**k), X, IGNORED, 'long'),
    ('NLLLoss', {'weight': W}, lambda **k: nn.NLLLoss(weight=t(W), **k), X, CLASSES, 'long'),
    ('BCELoss', {}, lambda **k: nn.BCELoss(**k), P, B, 'float'),
    ('BCELoss', {'weight': W}, lambda **k: nn.BCELoss(weight=t(W), **k), P, B, 'float'),
    ('BCEWithLogitsLoss', {}, lambda **k: nn.BCEWithLogitsLoss(**k), X, B, 'float'),
    ('BCEWithLogitsLoss', {'posWeight': W}, lambda **k: nn.BCEWithLogitsLoss(pos_weight=t(W), **k), X, B, 'float'),
    ('BCEWithLogitsLoss', {'weight': [2.0], 'posWeight': W}, lambda **k: nn.BCEWithLogitsLoss(weight=t([2.0]), pos_weight=t(W), **k), X, B, 'float'),
]

out = []
for name, options, make, inp, target, kind in CASES:
    case = {'module': name, 'options': options, 'input': inp, 'target': target, 'targetDtype': 'int64' if kind == 'long' else 'float64',
            'repr': repr(make())}
    for reduction in ['none', 'mean', 'sum']:
        x = t(inp).requires_grad_(True)
        y = t(target, torch.long if kind == 'long' else torch.float64)
        loss = make(reduction=reduction)(x, y)
        case[reduction] = loss.tolist()
        if reduction == 'mean':
            loss.backward()
            case['grad'] = x.grad.tolist()
    out.append(case)
print(json.dumps(out, indent=1))
