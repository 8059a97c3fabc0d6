"""Prints PyTorch's repr() of the tensors that test/format.test.ts builds, as JSON {case: repr}.

Run once with Debian's interpreter (torch 1.13): /usr/bin/python3 test/reference/format_cases.py
and paste the output into test/format.test.ts. Every input is written out from plain Python numbers (no
torch.arange / linspace kernels), so the JavaScript side builds bit-identical float32 data from the same literals.
"""
import json

import torch


def cases():
    x = torch.tensor([1.0, 2.5], requires_grad=True)
    yield 'int_mode', torch.tensor([1.0, 2.0, -3.0])
    yield 'fixed', torch.tensor([[1.5, -2.25], [3.125, 0.1]])
    yield 'scientific', torch.tensor([1e-5, 1.0, 12345.678])
    yield 'negative', torch.tensor([-0.5, -12.75, 3.0])
    yield 'bool', torch.tensor([True, False, True])
    yield 'int64', torch.tensor([1, -20, 300])
    yield 'int32', torch.tensor([7, -8], dtype=torch.int32)
    yield 'float64', torch.tensor([0.5, 1.25, -2.0], dtype=torch.float64)
    yield 'float16', torch.tensor([0.5, 1.75], dtype=torch.float16)
    yield 'requires_grad', x
    yield 'grad_fn', x * x
    yield 'grad_fn_sum', (x * x).sum()
    yield 'zero_d', torch.tensor(3.5)
    yield 'zero_d_int', torch.tensor(7)
    yield 'empty', torch.tensor([])
    yield 'empty_2d', torch.zeros(0, 3)
    yield 'empty_int64', torch.zeros(0, dtype=torch.int64)
    yield 'summarised_1d', torch.tensor([float(i) for i in range(1001)])
    yield 'summarised_2d', torch.tensor([[float(r * 50 + c) / 8 for c in range(50)] for r in range(40)])
    yield 'three_d', torch.tensor([[[float(a * 12 + b * 4 + c) / 4 for c in range(4)] for b in range(3)] for a in range(2)])
    yield 'line_wrap', torch.tensor([i / 24 for i in range(25)])
    yield 'nan_inf', torch.tensor([float('nan'), 1.0, float('inf'), -float('inf')])
    yield 'half_even_tie', torch.tensor([1.03125, 0.5])
    yield 'large_int_sci', torch.tensor([1e9, 2.0])
    yield 'suffix_wrap', torch.tensor([i / 7 for i in range(9)], dtype=torch.float64, requires_grad=True)


if __name__ == '__main__':
    print(json.dumps({name: repr(t) for name, t in cases()}, indent=2))
