#!/usr/bin/env python3
"""A delayed point-to-point link between two network namespaces, in user space (for kernels without sch_netem).

    python3 scripts/delay-link.py NS_A NS_B --delay-ms 5 [--rate-mbit 0] [--loss 0] [--mtu 65000]

Creates a TUN device in each namespace (tdA in NS_A with 10.212.0.1/24, tdB in NS_B with 10.212.0.2/24; the
names and addresses can be changed with --dev-a/--dev-b/--addr-a/--addr-b), brings them up, prints "ready" and then
forwards every IP packet that one side sends to the other, each held for --delay-ms (one way) before it is written
out, in order; with --rate-mbit the packets of each direction are also serialised at that rate (a queue behind the
delay, as netem's rate), and with --loss that percentage of the packets is dropped at random. It stops on SIGTERM or
SIGINT (the devices disappear with the process). Root only; standard library only (the namespace is entered with
libc's setns through ctypes, since os.setns needs Python 3.12).

What differs from `tc qdisc add dev X root netem delay D`: the packets cross user space (two system calls per
packet; this process needs CPU, and on a loaded machine its wake-ups are late by the scheduler's latency, so the
delay is D or more); the link's MTU is large (65000 by default) so that TCP sends ~64 KB packets and the per-packet
cost stays low, where a netem'd Ethernet link carries 1500-byte frames; there is no jitter, reordering or corruption.
"""

import argparse
import ctypes
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({path}): {os.strerror(e)}")
    finally:
        os.close(fd)


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def sh(*cmd):
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ns_a")
    ap.add_argument("ns_b")
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--rate-mbit", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--mtu", type=int, default=65000)
    ap.add_argument("--dev-a", default="tdA")
    ap.add_argument("--dev-b", default="tdB")
    ap.add_argument("--addr-a", default="10.212.0.1")
    ap.add_argument("--addr-b", default="10.212.0.2")
    o = ap.parse_args()

    home = "/proc/self/ns/net"
    home_fd = os.open(home, os.O_RDONLY)
    fds = []
    for ns, dev, addr in ((o.ns_a, o.dev_a, o.addr_a), (o.ns_b, o.dev_b, o.addr_b)):
        setns(f"/var/run/netns/{ns}")
        fds.append(tun(dev))
        if libc.setns(home_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        sh("ip", "-n", ns, "link", "set", dev, "mtu", str(o.mtu))
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    os.close(home_fd)

    stop = False

    def on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)

    delay = o.delay_ms / 1000.0
    per_byte = 8.0 / (o.rate_mbit * 1e6) if o.rate_mbit > 0 else 0.0
    # per direction: the time the link is busy until (rate), and a heap of (release time, seq, packet, out fd)
    busy = [0.0, 0.0]
    heap = []
    seq = 0
    rng = random.Random(0)
    forwarded = dropped = 0
    while not stop:
        timeout = None
        if heap:
            timeout = max(0.0, heap[0][0] - time.monotonic())
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            side = fds.index(fd)
            while True:
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if o.loss > 0 and rng.random() * 100 < o.loss:
                    dropped += 1
                    continue
                t = now + delay
                if per_byte:
                    start = max(now, busy[side])
                    busy[side] = start + len(pkt) * per_byte
                    t = busy[side] + delay
                heapq.heappush(heap, (t, seq, pkt, fds[1 - side]))
                seq += 1
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            _, _, pkt, out = heapq.heappop(heap)
            try:
                os.write(out, pkt)
                forwarded += 1
            except OSError:
                dropped += 1
    print(f"forwarded {forwarded} packets, dropped {dropped}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
