"""The PyTorch side of the benchmarks: a long-lived worker driven by bench/run.mjs.

Protocol: one JSON request per line on stdin; one reply per request on stdout, on a line starting with "@@bench "
(anything else on stdout is noise, which the runner ignores). Requests:
  {"cmd": "hello", "threads": n}             -> {"ok", "torch", "threads"}
  {"cmd": "setup", "case": {...}, "fixtures": {...}, "seed": s}
  {"cmd": "run", "warmup": w, "count": n}    -> {"ok", "sample" (seconds), "times" | "losses"}
  {"cmd": "check", "steps": n}               -> {"ok", "losses"}
  {"cmd": "stats"}                           -> {"ok", "peakRssBytes", "stateBytes"}
  {"cmd": "quit"}
"""
import json
import os
import resource
import statistics
import sys
import time
import traceback

# TENSORNORMAL_BENCH_CLOCK=process (bench/run.mjs --clock process): process time (CPU seconds of this process) instead
# of wall time, for a machine loaded by other jobs (run with one thread: OpenBLAS's helpers would count too).
clock = time.process_time if os.environ.get("TENSORNORMAL_BENCH_CLOCK") == "process" else time.perf_counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def reply(obj):
    sys.stdout.write("@@bench " + json.dumps(obj) + "\n")
    sys.stdout.flush()


try:
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means the same thing here
    reply({"ok": False, "fatal": f"{sys.executable} cannot import torch ({type(e).__name__}: {e}). "
           "Install Debian's python3-torch, or point TENSORNORMAL_BENCH_PYTHON at a Python that has torch."})
    sys.exit(3)

from models import Problem  # noqa: E402 (needs torch)


def openblas_core():
    """The kernel set of the OpenBLAS that torch loaded (None when torch's BLAS is not OpenBLAS)."""
    import ctypes
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libopenblas" in line}
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return None


class Loop:
    """Tight loops of one small op, timed as a whole (per-op overhead)."""

    def __init__(self, op):
        if op == "add1":
            a, b = torch.tensor([1.0]), torch.tensor([2.0])

            def body(n):
                for _ in range(n):
                    a + b
        elif op == "chain10":
            x = torch.rand(16)

            def body(n):
                for _ in range(n):
                    ((x * 2 + 1).relu().exp().neg().sigmoid() * 3 - 1).tanh().abs()
        elif op == "matmul512":
            a, b = torch.rand(512, 512), torch.rand(512, 512)

            def body(n):
                for _ in range(n):
                    torch.matmul(a, b)
        else:
            raise ValueError(f"unknown op {op}")
        self.body = body
        self.impl = "torch ops"

    def run(self, warmup, count):
        self.body(warmup)
        t0 = clock()
        self.body(count)
        return {"sample": (clock() - t0) / count}

    def state_bytes(self):
        return 0


class Train:
    def __init__(self, case, fixtures):
        self.case = case
        self.problem = Problem(case, fixtures)
        opt = type(self.problem.opt)
        self.impl = "torch.nn + " + ("bench/python/tnt.py" if opt.__name__ == "TNT" else f"torch.optim.{opt.__name__}")

    def run(self, warmup, count):
        for _ in range(warmup):
            self.problem.step()
        times, losses = [], []
        t_all = clock()
        for _ in range(count):
            t0 = clock()
            losses.append(self.problem.step())
            times.append(clock() - t0)
        total = clock() - t_all
        sample = total / count if self.case.get("amortised") else statistics.median(times)
        return {"sample": sample, "times": times, "losses": losses}

    def state_bytes(self):
        return self.problem.state_bytes()


def main():
    bench = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        cmd = req.get("cmd")
        try:
            if cmd == "hello":
                torch.set_num_threads(int(req["threads"]))
                reply({"ok": True, "torch": torch.__version__, "blasCore": openblas_core(), "threads": torch.get_num_threads(), "python": sys.version.split()[0]})
            elif cmd == "setup":
                torch.manual_seed(int(req.get("seed", 0)))
                case = req["case"]
                if case.get("kind") == "loop":
                    bench = Loop(case["op"])
                else:
                    bench = Train(case, req["fixtures"])
                torch.manual_seed(int(req.get("seed", 0)))
                reply({"ok": True, "impl": bench.impl})
            elif cmd == "run":
                reply({"ok": True, **bench.run(int(req["warmup"]), int(req["count"]))})
            elif cmd == "check":
                reply({"ok": True, "losses": [bench.problem.step() for _ in range(int(req["steps"]))]})
            elif cmd == "stats":
                # ru_maxrss is in kilobytes on Linux.
                reply({"ok": True, "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                       "stateBytes": bench.state_bytes() if bench is not None else 0})
            elif cmd == "quit":
                reply({"ok": True})
                return
            else:
                reply({"ok": False, "error": f"unknown command {cmd!r}"})
        except Exception as e:  # noqa: BLE001 - reported to the runner, which decides
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})


if __name__ == "__main__":
    main()
