"""Reference values for test/data.test.ts and test/transforms.test.ts, generated once with Debian's python3 and
torch 1.13 (torchvision is not packaged there; its Resize on tensors with antialias=True is exactly
F.interpolate(mode='bilinear', align_corners=False, antialias=True), which is what is called here).

Run from the repository root:  /usr/bin/python3 test/reference/data_reference.py > test/reference/data_reference.json
"""
import gzip
import json
import os

import torch
import torch.nn.functional as F


def pattern(n, c, h, w):
    """The test's input images: ((31 i + 17 j + 7 n + 13 c) mod 256) / 255 in float32, re-created in the JS test."""
    n_ = torch.arange(n).view(n, 1, 1, 1)
    c_ = torch.arange(c).view(1, c, 1, 1)
    i_ = torch.arange(h).view(1, 1, h, 1)
    j_ = torch.arange(w).view(1, 1, 1, w)
    return ((31 * i_ + 17 * j_ + 7 * n_ + 13 * c_) % 256).to(torch.float32) / 255


def resize_case(shape, size):
    x = pattern(*shape)
    y = F.interpolate(x, size=size, mode='bilinear', align_corners=False, antialias=True)
    return {'input': list(shape), 'size': list(size), 'shape': list(y.shape), 'values': y.flatten().tolist()}


out = {
    'torch': torch.__version__,
    'resize': [
        resize_case((2, 1, 28, 28), (16, 16)),  # the Fashion-MNIST down-scaling of the issue
        resize_case((1, 3, 28, 32), (16, 18)),  # Resize(16) on a 28x32 image: smaller edge 16, other int(16*32/28)
        resize_case((1, 1, 5, 7), (8, 9)),  # up-scaling: antialias changes nothing
    ],
}

root = '/usr/share/datasets/fashion-mnist'


def idx(name):
    with gzip.open(os.path.join(root, name), 'rb') as f:
        b = f.read()
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * d: 8 + 4 * d], 'big') for d in range(ndim)]
    return dims, torch.frombuffer(bytearray(b[4 + 4 * ndim:]), dtype=torch.uint8).view(*dims)


if os.path.isdir(root):
    fm = {}
    for split, prefix in (('train', 'train'), ('test', 't10k')):
        dims, images = idx(prefix + '-images-idx3-ubyte.gz')
        _, labels = idx(prefix + '-labels-idx1-ubyte.gz')
        x = images.to(torch.float64) / 255
        fm[split] = {
            'shape': dims,
            'first_labels': labels[:12].tolist(),
            'counts': torch.bincount(labels.long(), minlength=10).tolist(),
            'mean': x.mean().item(),
            'std': x.std(unbiased=False).item(),
            'first_image_sum': int(images[0].long().sum()),
            'first_image_row14': images[0, 14].tolist(),
        }
    out['fashion_mnist'] = fm

print(json.dumps(out))
