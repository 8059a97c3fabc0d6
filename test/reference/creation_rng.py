"""Prints PyTorch's CPU generator output after manual_seed, as JSON, for test/creation.test.ts.

Run once with Debian's interpreter (torch 1.13): /usr/bin/python3 test/reference/creation_rng.py
libtorch's CPU generator (mt19937 plus the same transforms) is the same code in Python and in the addon, so
the same seed must give the same numbers.
"""
import json

import torch


def draws():
    out = {}
    torch.manual_seed(42)
    out['rand_f32'] = torch.rand(4).tolist()
    out['randn_f32'] = torch.randn(4).tolist()
    out['randint_0_10'] = torch.randint(0, 10, (6,)).tolist()
    torch.manual_seed(7)
    out['rand_f64'] = torch.rand(3, dtype=torch.float64).tolist()
    out['randn_f64'] = torch.randn(3, dtype=torch.float64).tolist()
    out['randint_5_9'] = torch.randint(5, 9, (2, 3)).tolist()
    return out


if __name__ == '__main__':
    print(json.dumps(draws(), indent=2))
