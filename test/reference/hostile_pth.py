"""Crafted torch.save (.pth) files and what PyTorch's own loader does with each, for test/hostile-pth.test.ts.

  /usr/bin/python3 test/reference/hostile_pth.py test/fixtures/pth

writes DIR/<case>.pt for each case below and DIR/expected.json: {case: {"torch": "ok", "values": {name: [flat
values], ...}, "shapes": {...}, "dtypes": {...}} or {"torch": "error", "message": ...} or {"torch": "not run", "why":
...}} -- what torch.load (Debian's python3-torch, 1.13) returns for it. Files whose loading would run code or read
out of bounds in PyTorch are not loaded here ("not run"). Every file is a few hundred bytes; the fixtures are
committed, so the test needs no Python.
"""
import collections
import io
import json
import os
import pickle
import sys
import zipfile

import torch


class Storage:
    """A storage in a crafted pickle: its key (the record data/<key>), element count and type."""

    def __init__(self, key, numel, stype=torch.FloatStorage):
        self.key, self.numel, self.stype = key, numel, stype


class Tensor:
    """_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) with whatever values are given."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.stype, obj.key, "cpu", obj.numel)
        return None


def crafted_pickle(d):
    b = io.BytesIO()
    Pickler(b, protocol=2).dump(collections.OrderedDict(d))
    return b.getvalue()


def f32(*v):
    return torch.tensor(v, dtype=torch.float32).numpy().tobytes()


def write_zip(path, items, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as w:
        for name, data in items:
            w.writestr(name, data)


def archive(d, records, root="archive", extra=(), version=b"3\n", method=zipfile.ZIP_STORED):
    items = [(f"{root}/data.pkl", crafted_pickle(d))]
    items += [(f"{root}/data/{k}", v) for k, v in records.items()]
    if version is not None:
        items.append((f"{root}/version", version))
    return items + list(extra)


def saved_items(sd):
    b = io.BytesIO()
    torch.save(sd, b)
    z = zipfile.ZipFile(io.BytesIO(b.getvalue()))
    return [(n, z.read(n)) for n in z.namelist()]


def cases():
    s4 = Storage("0", 4)
    four = {"0": f32(1, 2, 3, 4)}
    # honest files, as torch.save writes them: dtypes, a 0-d tensor, an empty one, tied and sliced tensors
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = collections.OrderedDict([
        ("w", base), ("w_tied", base), ("row1", base[1]), ("tail", base.view(-1)[5:]),
        ("d", torch.tensor([0.5, -1.25], dtype=torch.float64)), ("i", torch.tensor([7, -3], dtype=torch.int64)),
        ("b", torch.tensor([True, False])), ("h", torch.tensor([1.5], dtype=torch.float16)),
        ("u8", torch.tensor([255, 0], dtype=torch.uint8)), ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
    ])
    yield "honest", saved_items(sd)
    yield "honest-deflated", [(n, b) for n, b in saved_items(sd)], zipfile.ZIP_DEFLATED
    # offsets and sizes: what set_ accepts on a storage that cannot grow
    yield "offset-negative", archive({"a": Tensor(s4, -1, [2], [1])}, four)
    yield "offset-fraction", archive({"a": Tensor(s4, 1.5, [2], [1])}, four)
    yield "offset-at-end", archive({"a": Tensor(s4, 2, [2], [1])}, four)
    yield "extent-past-storage", archive({"a": Tensor(s4, 3, [2], [1])}, four)
    yield "size-past-storage", archive({"a": Tensor(s4, 0, [5], [1])}, four)
    yield "size-negative", archive({"a": Tensor(s4, 0, [-1], [1])}, four)
    yield "empty-far-offset", archive({"a": Tensor(s4, 100, [0, 3], [3, 1])}, four)
    yield "non-contiguous", archive({"a": Tensor(s4, 0, [2, 2], [1, 2])}, four)
    yield "shared-storage-views", archive({"a": Tensor(s4, 0, [2, 2], [2, 1]), "b": Tensor(s4, 1, [3], [1]),
                                           "c": Tensor(s4, 0, [4], [1])}, four)
    # the zip: which data.pkl, which root, the version record, names in another case
    a = saved_items(collections.OrderedDict([("a", torch.arange(4.0))]))
    z = saved_items(collections.OrderedDict([("z", torch.zeros(3))]))
    ra = [(n.replace(n.split("/")[0], "r", 1), b) for n, b in a]
    rz = [(n.replace(n.split("/")[0], "r", 1), b) for n, b in z]
    pa, pz = [e for e in ra if e[0].endswith("data.pkl")][0], [e for e in rz if e[0].endswith("data.pkl")][0]
    rest = [e for e in ra if not e[0].endswith("data.pkl")]
    yield "dup-pkl-1", [pa, pz] + rest
    yield "dup-pkl-2", [pz, pa] + rest
    yield "dup-pkl-3", [pa] + rest + [pz]
    yield "dup-pkl-4", [pz] + [pa] + rest
    yield "two-roots", ra + [("other/" + n.split("/", 1)[1], b) for n, b in rz]
    yield "stray-root", ra + [("zzz/extra", b"x")]
    yield "no-folder", [(n.split("/", 1)[1], b) for n, b in ra]
    yield "no-version", [e for e in ra if not e[0].endswith("version")]
    yield "version-99", [e if not e[0].endswith("version") else (e[0], b"99\n") for e in ra]
    yield "version-0", [e if not e[0].endswith("version") else (e[0], b"0\n") for e in ra]
    yield "version-text", [e if not e[0].endswith("version") else (e[0], b"x\n") for e in ra]
    yield "upper-case-names", [(n.replace("data.pkl", "DATA.PKL"), b) for n, b in ra]
    yield "dup-pkl-case", [pa, (pz[0].replace("data.pkl", "Data.Pkl"), pz[1])] + rest
    yield "missing-storage", [e for e in ra if "/data/" not in e[0]]
    # not run in Python: torch.load would run the code / read past the record
    yield "global-os-system", archive({"a": Tensor(s4, 0, [4], [1])}, four, extra=()), None, "evil"
    yield "storage-record-short", archive({"a": Tensor(Storage("0", 1000), 0, [4], [1])}, four), None, "oob"


EVIL = (b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    expected = {}
    for case in cases():
        name, items = case[0], case[1]
        method = case[2] if len(case) > 2 and case[2] is not None else zipfile.ZIP_STORED
        skip = case[3] if len(case) > 3 else None
        if skip == "evil":
            items = [(n, EVIL if n.endswith("data.pkl") else b) for n, b in items]
        path = os.path.join(out, f"{name}.pt")
        write_zip(path, items, method)
        if skip == "evil":
            expected[name] = {"torch": "not run", "why": "torch.load would run posix.system"}
            continue
        if skip == "oob":
            expected[name] = {"torch": "not run", "why": "torch.load reads 4000 bytes from a 16-byte record"}
            continue
        try:
            r = torch.load(path)
            expected[name] = {
                "torch": "ok",
                "values": {k: v.reshape(-1).tolist() for k, v in r.items()},
                "shapes": {k: list(v.shape) for k, v in r.items()},
                "dtypes": {k: str(v.dtype).replace("torch.", "") for k, v in r.items()},
            }
        except Exception as e:  # noqa: BLE001 - what PyTorch says is the point
            expected[name] = {"torch": "error", "message": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


main()
