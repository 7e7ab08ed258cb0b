#!/usr/bin/env python3
"""Benchmark: hot-plug/unplug cycles of a passthrough device (backed by the
VFIO model) on a pseries guest, QEMU with the series against stock 10.0.13,
side by side in one run. Reports the time of a cycle and how QEMU's memory
(RSS) grows over the cycles: the series must not slow plugging down or leak.
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "run"))
from qmp import QEMU  # noqa: E402

CYCLES, WARMUP, ROUNDS = 40, 3, 3


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def run(qemu, model, tmp):
    """(cycle times in ms, RSS growth in KiB) for one QEMU process."""
    env = dict(os.environ, LD_PRELOAD=model,
               VFIO_MODEL_DEVICES="0000:01:00.0@7", VFIO_MODEL_TMPDIR=tmp)
    args = ["-M", "pseries", "-accel", "qtest", "-display", "none",
            "-nodefaults", "-m", "1G",
            "-device", "spapr-pci-host-bridge,index=1,id=phb1"]
    times = []
    with QEMU(qemu, args, env=env) as vm:
        for i in range(WARMUP + CYCLES):
            if i == WARMUP:
                rss0 = rss_kib(vm.proc.pid)
            t0 = time.perf_counter()
            vm.cmd("device_add", driver="vfio-pci", id="vfio1",
                   host="0000:01:00.0", bus="phb1.0", addr="1")
            vm.cmd("device_del", id="vfio1")
            vm.wait_event("DEVICE_DELETED")
            if i >= WARMUP:
                times.append((time.perf_counter() - t0) * 1000)
        rss = rss_kib(vm.proc.pid) - rss0
    return times, rss


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: plug-cycles.py QEMU_SERIES QEMU_STOCK VFIO_MODEL_LIB")
    binaries = {"series": sys.argv[1], "stock": sys.argv[2]}
    times = {k: [] for k in binaries}
    rss = {k: [] for k in binaries}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):                 # interleaved: same conditions
            for name, qemu in binaries.items():
                t, r = run(qemu, sys.argv[3], tmp)
                times[name] += t
                rss[name].append(r)
    print(f"hot-plug + unplug of one vfio-pci device, {ROUNDS} x {CYCLES} "
          f"cycles per binary (after {WARMUP} warm-up cycles each)")
    print(f"{'':8} {'median ms':>10} {'p90 ms':>8} {'RSS growth KiB':>16}")
    for name in binaries:
        t = sorted(times[name])
        print(f"{name:8} {statistics.median(t):10.2f} "
              f"{t[int(len(t) * 0.9)]:8.2f} "
              f"{'/'.join(str(r) for r in rss[name]):>16}")
    ratio = statistics.median(times["series"]) / statistics.median(times["stock"])
    print(f"series / stock median cycle time: {ratio:.2f}")


if __name__ == "__main__":
    main()
