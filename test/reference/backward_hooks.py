"""What PyTorch's module backward hooks (register_full_backward_hook) see, for test/hooks.test.ts.

Run once with Debian's interpreter (torch 1.13) from the repository root:
    /usr/bin/python3 test/reference/backward_hooks.py > test/reference/backward_hooks.json

Every case is float64 with its parameters and inputs written into the JSON (the test copies them into its modules).
  mlp:          Linear(3, 4) -> Tanh -> Linear(4, 2), mean-squared error against a target. For each Linear layer:
                its input a (forward hook), gradInput and gradOutput (backward hook; the first layer's input does
                not require grad, so its gradInput is [None]), the weight gradient, and KFAC's factors
                A = a^T a / N and G = N g^T g (g = gradOutput of the mean-reduced loss, so N g is per example).
  shared:       one Linear(3, 3) called twice, y = lin(tanh(lin(x))), x requiring grad: the hook runs once per call
                (the second call's first, as backward meets it), then a second backward through the retained graph
                runs both again.
  multi_input:  forward(a, b, c) = a * b + a (c is not used), a, b and c requiring grad; the hook sees gradInput
                (zeros for c) and returns (2 gA, -gB, gC): the leaves' gradients follow.
  multi_output: forward(a) = (2a, 3a) and the loss uses only the first output: gradOutput is (ones, None).
"""
import json

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)


def rnd(*shape):
    # values with few binary digits, easy to read in the JSON
    return (torch.randint(-8, 9, shape) / 4.0).to(torch.float64)


def lst(t):
    return None if t is None else t.detach().tolist()


def mlp():
    l1, l2 = nn.Linear(3, 4), nn.Linear(4, 2)
    with torch.no_grad():
        for p in (l1.weight, l1.bias, l2.weight, l2.bias):
            p.copy_(rnd(*p.shape))
    net = nn.Sequential(l1, nn.Tanh(), l2)
    x, target = rnd(5, 3), rnd(5, 2)
    rec = {}
    for name, layer in (('0', l1), ('2', l2)):
        layer.register_forward_hook(lambda m, inp, out, name=name: rec.setdefault(name, {}).update(a=inp[0].detach().clone()))
        layer.register_full_backward_hook(
            lambda m, gi, go, name=name: rec[name].update(gradInput=[lst(g) for g in gi], g=go[0].detach().clone(), gradOutput=[lst(g) for g in go]))
    nn.functional.mse_loss(net(x), target).backward()
    n = x.shape[0]
    layers = {}
    for name, layer in (('0', l1), ('2', l2)):
        r = rec[name]
        layers[name] = {
            'weight': lst(layer.weight), 'bias': lst(layer.bias), 'input': lst(r['a']),
            'gradInput': r['gradInput'], 'gradOutput': r['gradOutput'], 'weightGrad': lst(layer.weight.grad),
            'kfacA': lst(r['a'].T @ r['a'] / n), 'kfacG': lst(n * r['g'].T @ r['g']),
        }
    return {'x': lst(x), 'target': lst(target), 'layers': layers}


def shared():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.copy_(rnd(3, 3) / 2)
        lin.bias.copy_(rnd(3))
    calls = []
    lin.register_full_backward_hook(lambda m, gi, go: calls.append({'gradInput': [lst(g) for g in gi], 'gradOutput': [lst(g) for g in go]}))
    x = rnd(2, 3).requires_grad_()
    loss = lin(torch.tanh(lin(x))).square().sum()
    loss.backward(retain_graph=True)
    loss.backward()
    return {'weight': lst(lin.weight), 'bias': lst(lin.bias), 'x': lst(x), 'calls': calls, 'xGrad': lst(x.grad)}


class MultiInput(nn.Module):
    def forward(self, a, b, c):
        return a * b + a


def multi_input():
    m = MultiInput()
    seen = []

    def hook(mod, gi, go):
        seen.append({'gradInput': [lst(g) for g in gi], 'gradOutput': [lst(g) for g in go]})
        return (2 * gi[0], -gi[1], gi[2])

    m.register_full_backward_hook(hook)
    a, b, c = (rnd(3).requires_grad_() for _ in range(3))
    (m(a, b, c) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    return {'a': lst(a), 'b': lst(b), 'c': lst(c), 'seen': seen, 'grads': [lst(a.grad), lst(b.grad), lst(c.grad)]}


class MultiOutput(nn.Module):
    def forward(self, a):
        return 2 * a, 3 * a


def multi_output():
    m = MultiOutput()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append({'gradInput': [lst(g) for g in gi], 'gradOutput': [lst(g) for g in go]}))
    a = rnd(2).requires_grad_()
    first, _ = m(a)
    (first * first).sum().backward()
    return {'a': lst(a), 'seen': seen, 'aGrad': lst(a.grad)}


print(json.dumps({'torch': torch.__version__, 'mlp': mlp(), 'shared': shared(), 'multi_input': multi_input(),
                  'multi_output': multi_output()}))
