#!/usr/bin/env python3
"""make bench: the series' QEMU ("ours") against a baseline ("stock": QEMU
10.0.13 + only the qtest hcall patch, so TCEs can be put from qtest), in one
run, on a pseries machine under -accel qtest with a vfio-pci device backed
by the VFIO model (LD_PRELOAD). The two QEMUs of a scenario run side by
side, set up alike, and their samples alternate one by one.

Scenarios (issue 10, part 3):
  a  hot-plug into PHB 1's default window (1 GiB of 4 KiB TCEs): empty,
     50 % valid as isolated pages (nothing to coalesce), 50 % as runs
  b  hot-plug with a 64-bit DDW of 1 GiB, 64 GiB, 1 TiB of 64 KiB TCEs,
     1 % valid as runs spread over the window
  c  hot-plug with a DDW direct-mapping all of a 16 GiB guest (as Linux
     does), and how many VFIO_IOMMU_MAP_DMA calls the model saw
  d  TCE update throughput with the device attached: H_PUT_TCE,
     H_PUT_TCE_INDIRECT (512 entries), H_STUFF_TCE, mapping and clearing
  e  QEMU's RSS around the 1 TiB replay (b's largest window)

Hot-plug latency is the wall time of the device_add QMP command, which
replays every window of the PHB into the new host container. TCEs are put
before it (not timed) with H_PUT_TCE_INDIRECT lists of 512.

Writes build/bench/samples.csv (every sample), summary.csv, results.md (the
table printed at the end) and plug-latency.png (gnuplot).
"""

import argparse
import contextlib
import csv
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "run"))
from qmp import QEMU  # noqa: E402
from qtest import QTest  # noqa: E402

BASELINE = "stock 10.0.13 + qtest hcall patch"
HOST_PAGE = f"{os.sysconf('SC_PAGESIZE') // 1024} KiB (this host's own)"
BINARIES = ("stock", "ours")

# sPAPR hypercalls and TCE permission bits
H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT = 0x20, 0x138, 0x13C
TCE_RW = 3
INDIRECT_MAX = 512

# PHB 1 (index=1), as in the series' tests/qtest/spapr-tce-vfio-test.c
PHB1_BUID = 0x800000020000000 + 1
PHB1_LIOBN = 0x80000100                   # its default 32-bit window
DEFAULT_WINDOW = (12, 30)                 # page shift, window shift: 1 GiB / 4 KiB
HOST = "0000:01:00.0"
SCRATCH = 0x10000000                      # guest RAM for RTAS args and TCE lists

MiB, GiB = 1 << 20, 1 << 30


# Fill patterns: lists of runs (first entry index, entries, guest address of
# the first), contiguous in IOVA and guest RAM within a run.

def scattered(entries, page):
    """Every other page, each its own guest page: nothing can coalesce."""
    return [(i, 1, i * page) for i in range(0, entries, 2)]


def runs(entries, page, run, period, span):
    """A run of `run` pages every `period` pages, at guest address IOVA
    modulo span (guest RAM is smaller than the window)."""
    out = [(i, run, (i * page) % span) for i in range(0, entries, period)]
    assert all(gpa + run * page <= span for _, _, gpa in out), "a run wraps"
    return out


def direct(entries, page):
    """TCE i -> guest address i * page: a DDW mapping all of RAM."""
    return [(0, entries, 0)]


@dataclass
class PlugCase:
    """One hot-plug scenario: a guest, an optional DDW, its fill."""
    scenario: str
    name: str
    mem: str                      # -m
    ddw: tuple | None             # (page shift, window shift) of a DDW on PHB 1
    fill: callable                # (entries, page size) -> runs
    fill_label: str
    pairs: int                    # pairs of QEMU processes (stock, ours)
    plugs: int                    # timed plugs per process
    warmup: int = 0               # untimed plugs first, in each process

    @property
    def window(self):
        return self.ddw or DEFAULT_WINDOW

    @property
    def window_bytes(self):
        return 1 << self.window[1]


def plug_cases():
    one_pc = lambda e, p: runs(e, p, 16, 1600, 2 * GiB)  # 1 %: 1 MiB runs  # noqa: E731
    return [
        # The empty window, 20 cycles per process: also QEMU's RSS growth
        # over the cycles (the series must not leak).
        PlugCase("a", "1 GiB/4K, 0 %", "2G", None, lambda e, p: [], "0 %", 5, 20, 1),
        PlugCase("a", "1 GiB/4K, 50 % scattered", "2G", None, scattered,
                 "50 % scattered", 5, 12, 1),
        PlugCase("a", "1 GiB/4K, 50 % runs", "2G", None,
                 lambda e, p: runs(e, p, 256, 512, 1 * GiB), "50 % runs", 5, 8, 1),
        PlugCase("b", "DDW 1 GiB/64K, 1 %", "4G", (16, 30), one_pc, "1 % runs", 5, 10, 1),
        PlugCase("b", "DDW 64 GiB/64K, 1 %", "4G", (16, 36), one_pc, "1 % runs", 5, 5, 1),
        PlugCase("b", "DDW 1 TiB/64K, 1 %", "4G", (16, 40), one_pc, "1 % runs", 5, 2),
        PlugCase("c", "DDW 16 GiB/64K direct map, 16 GiB guest", "16G", (16, 34),
                 direct, "100 % direct", 5, 2),
    ]


# The biggest window: scenario e reads QEMU's memory around its replay.
RSS_CASE = "DDW 1 TiB/64K, 1 %"
# Many cycles of an empty window: QEMU's RSS over them shows any leak.
LEAK_CASE = "1 GiB/4K, 0 %"


class VM:
    """One QEMU: pseries with PHB 1, qtest and QMP, the VFIO model preloaded."""

    # LD_PRELOAD and its settings, for every VM (main() sets them)
    preload = []
    env = {}

    def __init__(self, binary, model, mem, tmp, log=None):
        self.tmp = tempfile.mkdtemp(dir=tmp)
        env = dict(os.environ, LD_PRELOAD=":".join(VM.preload + [model]),
                   VFIO_MODEL_DEVICES=f"{HOST}@7", VFIO_MODEL_TMPDIR=self.tmp, **VM.env)
        # The event log costs a write() per call: only the counting runs
        # (never the timed ones) have it.
        self.log = log
        if log:
            env.update(VFIO_MODEL_LOG=log, VFIO_MODEL_CALLS="1")
        self.qt = QTest(os.path.join(self.tmp, "qtest.sock"))
        args = ["-M", "pseries", "-display", "none", "-nodefaults", "-m", mem,
                "-device", "spapr-pci-host-bridge,index=1,id=phb1"] + self.qt.args()
        self.qmp = QEMU(binary, args, env=env, timeout=60)
        self.qt.accept()
        self.pid = self.qmp.proc.pid

    def close(self):
        self.qt.close()
        out = self.qmp.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def plug(self):
        """Wall and QEMU CPU seconds that device_add took: the replay of
        PHB 1's windows."""
        cpu0, t0 = self.cpu_ns(), time.perf_counter()
        self.qmp.cmd("device_add", driver="vfio-pci", id="vfio1", host=HOST,
                     bus="phb1.0", addr="1")
        return time.perf_counter() - t0, (self.cpu_ns() - cpu0) / 1e9

    def unplug(self):
        # Never brought up by a guest, the device is released at once.
        self.qmp.cmd("device_del", id="vfio1")
        self.qmp.wait_event("DEVICE_DELETED", timeout=120)

    def create_ddw(self, page_shift, window_shift):
        """ibm,create-pe-dma-window for slot 0 of PHB 1: (LIOBN, bus offset)."""
        rets = self.qt.rtas("ibm,create-pe-dma-window",
                            [0, PHB1_BUID >> 32, PHB1_BUID & 0xffffffff,
                             page_shift, window_shift], 4, SCRATCH)
        if rets[0] != 0:
            raise RuntimeError(f"ibm,create-pe-dma-window: RTAS status {rets[0]}")
        return rets[1], (rets[2] << 32) | rets[3]

    def hcalls(self, lines):
        """Run hcall lines (and writes) in one pipeline; fail on any error."""
        for words in self.qt.batch(lines):
            if words and int(words[0], 16) != 0:
                raise RuntimeError(f"hcall returned {words[0]}")

    def fill(self, liobn, offset, page_shift, fill_runs):
        """Put the TCEs of fill_runs with one INDIRECT per 512-entry block
        that holds any (its list written to guest RAM just before)."""
        page = 1 << page_shift
        blocks = {}
        for first, n, gpa in fill_runs:
            for k in range(n):
                i = first + k
                block = blocks.setdefault(i - i % INDIRECT_MAX, [0] * INDIRECT_MAX)
                block[i % INDIRECT_MAX] = (gpa + k * page) | TCE_RW
        lines = []
        for start in sorted(blocks):
            # Only the block's span from its first to its last valid entry.
            tces = blocks[start]
            lo = next(j for j, t in enumerate(tces) if t)
            hi = INDIRECT_MAX - next(j for j, t in enumerate(reversed(tces)) if t)
            # qtest runs commands in order: one scratch page serves every list.
            lines.append(QTest.write_line(SCRATCH, struct.pack(
                f">{hi - lo}Q", *tces[lo:hi])))
            lines.append(QTest.hcall_line(H_PUT_TCE_INDIRECT, liobn,
                                          offset + (start + lo) * page, SCRATCH,
                                          hi - lo))
        self.hcalls(lines)
        return sum(n for _, n, _ in fill_runs)

    def status(self, key):
        """A /proc/PID/status value in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def cpu_ns(self):
        """CPU time of QEMU's live threads in ns (schedstat): fine enough for
        one plug, where /proc/PID/stat's 10 ms ticks are not."""
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:       # the thread has just gone
                pass
        return total

    def cpu(self):
        """QEMU's CPU time so far (utime + stime, all threads), in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup_plug_case(vm, case):
    """Create the case's window (if a DDW) and fill it: (LIOBN, valid TCEs)."""
    if case.ddw:
        liobn, offset = vm.create_ddw(*case.ddw)
    else:
        liobn, offset = PHB1_LIOBN, 0
    page_shift, window_shift = case.window
    entries = 1 << (window_shift - page_shift)
    valid = vm.fill(liobn, offset, page_shift, case.fill(entries, 1 << page_shift))
    return liobn, valid


@contextlib.contextmanager
def vm_pair(binaries, model, tmp, mem, logs=False):
    """Both QEMUs at once, {binary name: VM}, so that their samples can
    alternate one by one: load from elsewhere on the machine then falls on
    both alike. With logs, each has the model's call log, {name}.log in tmp."""
    log = {b: os.path.join(tmp, f"{b}.log") if logs else None for b in binaries}
    try:
        with contextlib.ExitStack() as stack:
            yield {b: stack.enter_context(VM(path, model, mem, tmp, log=log[b]))
                   for b, path in binaries.items()}
    finally:
        for path in log.values():
            if path and os.path.exists(path):
                os.unlink(path)


def alternate(i):
    """The binaries in the order of sample i: ABBA BAAB..., so each goes
    first as often and neither always follows the same neighbour."""
    return BINARIES if bin(i).count("1") % 2 == 0 else BINARIES[::-1]


def run_plug_case(binaries, model, tmp, case):
    """Two processes: fill, warm-up plugs, timed plugs alternating between
    them. {binary: ([(wall ms, CPU ms)...], QEMU's memory around the first
    replay and over the cycles)}, and the valid TCEs."""
    out = {b: ([], {}) for b in BINARIES}
    with vm_pair(binaries, model, tmp, case.mem) as vms:
        for b, vm in vms.items():
            _, valid = setup_plug_case(vm, case)
            out[b][1].update(rss_filled=vm.status("VmRSS"), hwm_filled=vm.status("VmHWM"))
        for i in range(case.warmup + case.plugs):
            for b in alternate(i):
                vm, (times, mem) = vms[b], out[b]
                t = vm.plug()
                if i == 0:
                    mem.update(rss_plugged=vm.status("VmRSS"), hwm_plugged=vm.status("VmHWM"))
                if i >= case.warmup:
                    times.append(tuple(x * 1000 for x in t))
                vm.unplug()
                if i == 0:
                    mem["rss_unplugged"] = vm.status("VmRSS")
        for b, vm in vms.items():
            out[b][1]["rss_last"] = vm.status("VmRSS")
    return out, valid


def count_calls(log, op):
    with open(log) as f:
        return sum(line.startswith(f"call op={op} ") for line in f)


def count_plug_case(binaries, model, tmp, case):
    """Untimed processes with the model's call log: {binary: MAP_DMA calls
    of one plug}."""
    n = {}
    with vm_pair(binaries, model, tmp, case.mem, logs=True) as vms:
        for b, vm in vms.items():
            setup_plug_case(vm, case)
            before = count_calls(vm.log, "MAP_DMA")
            vm.plug()
            n[b] = count_calls(vm.log, "MAP_DMA") - before
    return n


# Scenario d: TCE updates on PHB 1's default window with the device plugged.
# Each op is (name, entries it updates, the hcall lines); lists for INDIRECT
# are written to guest RAM first, untimed.
D_VMS = 4                     # process pairs
D_ROUNDS = 3                  # rounds of every op in each
D_PUT = 32768                 # H_PUT_TCE calls per batch
D_INDIRECT = 128              # H_PUT_TCE_INDIRECT calls of 512 per batch
D_STUFF = (4, 32768)          # H_STUFF_TCE calls x pages per call
D_GPA = 1 * GiB               # guest RAM the TCEs point at
D_LISTS = SCRATCH + 1 * MiB   # where the INDIRECT lists go (4 KiB each)


def d_ops():
    """[(op name, TCEs per batch, setup lines, timed lines)]"""
    page, lio = 1 << 12, PHB1_LIOBN
    tce = lambda i: (D_GPA + i * page) | TCE_RW  # noqa: E731
    ops = []
    put = [QTest.hcall_line(H_PUT_TCE, lio, i * page, tce(i)) for i in range(D_PUT)]
    ops.append(("H_PUT_TCE map", D_PUT, [], put))
    ops.append(("H_PUT_TCE clear", D_PUT, [],
                [QTest.hcall_line(H_PUT_TCE, lio, i * page, 0) for i in range(D_PUT)]))
    lists = [QTest.write_line(D_LISTS + k * page, struct.pack(
        f">{INDIRECT_MAX}Q", *(tce(k * INDIRECT_MAX + j) for j in range(INDIRECT_MAX))))
        for k in range(D_INDIRECT)]
    n = D_INDIRECT * INDIRECT_MAX
    ops.append(("H_PUT_TCE_INDIRECT map", n, lists,
                [QTest.hcall_line(H_PUT_TCE_INDIRECT, lio, k * INDIRECT_MAX * page,
                                  D_LISTS + k * page, INDIRECT_MAX)
                 for k in range(D_INDIRECT)]))
    zeros = D_LISTS + D_INDIRECT * page
    ops.append(("H_PUT_TCE_INDIRECT clear", n,
                [QTest.write_line(zeros, bytes(INDIRECT_MAX * 8))],
                [QTest.hcall_line(H_PUT_TCE_INDIRECT, lio, k * INDIRECT_MAX * page,
                                  zeros, INDIRECT_MAX) for k in range(D_INDIRECT)]))
    calls, pages = D_STUFF
    # Every page to one guest page: STUFF puts one value; mapping is legal.
    ops.append(("H_STUFF_TCE map", calls * pages, [],
                [QTest.hcall_line(H_STUFF_TCE, lio, k * pages * page, tce(0), pages)
                 for k in range(calls)]))
    ops.append(("H_STUFF_TCE clear", calls * pages, [],
                [QTest.hcall_line(H_STUFF_TCE, lio, k * pages * page, 0, pages)
                 for k in range(calls)]))
    return ops


def run_updates(binaries, model, tmp, ops, rounds):
    """Two processes, the device plugged in each; every op's batch `rounds`
    times, alternating between them. {binary: {op: [(wall s, cpu s)...]}}"""
    out = {b: {} for b in BINARIES}
    with vm_pair(binaries, model, tmp, "2G") as vms:
        for vm in vms.values():
            vm.plug()
        i = 0
        for _ in range(rounds):
            for name, _, setup, timed in ops:
                for b in alternate(i):
                    vm = vms[b]
                    vm.hcalls(setup)
                    cpu0, t0 = vm.cpu(), time.perf_counter()
                    vm.hcalls(timed)
                    wall, cpu = time.perf_counter() - t0, vm.cpu() - cpu0
                    out[b].setdefault(name, []).append((wall, cpu))
                i += 1
    return out


def count_updates(binaries, model, tmp, ops):
    """Untimed, with the call log: {binary: {op: (MAP_DMA, UNMAP_DMA calls)}}"""
    out = {b: {} for b in BINARIES}
    calls = ("MAP_DMA", "UNMAP_DMA")
    with vm_pair(binaries, model, tmp, "2G", logs=True) as vms:
        for b, vm in vms.items():
            vm.plug()
            for name, _, setup, timed in ops:
                vm.hcalls(setup)
                before = [count_calls(vm.log, op) for op in calls]
                vm.hcalls(timed)
                out[b][name] = tuple(count_calls(vm.log, op) - n
                                     for op, n in zip(calls, before))
    return out


class Results:
    """Every sample, keyed (scenario, case, metric, binary)."""

    def __init__(self):
        self.samples = {}
        self.order = []

    def add(self, scenario, case, metric, binary, *values):
        key = (scenario, case, metric)
        if key not in self.order:
            self.order.append(key)
        self.samples.setdefault(key + (binary,), []).extend(values)

    def get(self, scenario, case, metric, binary):
        return self.samples.get((scenario, case, metric, binary), [])

    def med(self, *key):
        v = self.get(*key)
        return statistics.median(v) if v else float("nan")


def fmt(v):
    if v != v:      # NaN
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", required=True)
    ap.add_argument("--stock", required=True, help=f"the baseline: {BASELINE}")
    ap.add_argument("--model", required=True, help="libvfio-model.so")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--page-shim", help="e2e/pagesize.c built: QEMU sees 64 KiB "
                    "pages, as on the modelled powernv host (default: the host's own)")
    ap.add_argument("--scenarios", default="abcde")
    opts = ap.parse_args()
    global HOST_PAGE
    if opts.page_shim:
        # QEMU sizes host IOMMU pages by its own page size (hw/vfio/spapr.c):
        # on a 64K POWER host a 64K TCE is one host TCE, on x86 sixteen.
        VM.preload = [os.path.abspath(opts.page_shim)]
        VM.env = {"E2E_PAGE_SIZE": "65536"}
        HOST_PAGE = "64 KiB (e2e/pagesize.c preloaded), as on the modelled powernv host"
    binaries = {"stock": os.path.abspath(opts.stock), "ours": os.path.abspath(opts.ours)}
    model = os.path.abspath(opts.model)
    os.makedirs(opts.out, exist_ok=True)
    start = time.monotonic()
    res = Results()
    counts = {}                      # case -> {binary: MAP_DMA calls}
    valid = {}                       # case -> valid TCEs filled

    print(f"bench: ours = {binaries['ours']}")
    print(f"bench: stock = {binaries['stock']} ({BASELINE})")
    print(f"bench: QEMU's page size: {HOST_PAGE}")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        cases = [c for c in plug_cases()
                 if c.scenario in opts.scenarios or
                 ("e" in opts.scenarios and c.name == RSS_CASE)]
        for case in cases:
            t0 = time.monotonic()
            for _ in range(case.pairs):
                out, valid[case.name] = run_plug_case(binaries, model, tmp, case)
                for b, (times, mem) in out.items():
                    res.add(case.scenario, case.name, "plug ms", b, *(w for w, _ in times))
                    res.add(case.scenario, case.name, "plug cpu ms", b, *(c for _, c in times))
                    res.add(case.scenario, case.name, "RSS growth KiB", b,
                            mem["rss_last"] - mem["rss_unplugged"])
                    if case.name == RSS_CASE:
                        for k, v in mem.items():
                            res.add("e", case.name, k, b, v / 1024)
            counts[case.name] = count_plug_case(binaries, model, tmp, case)
            print(f"bench: {case.scenario} {case.name}: {valid[case.name]} valid TCEs, "
                  + ", ".join(f"{b} median {fmt(res.med(case.scenario, case.name, 'plug ms', b))} ms"
                              f" ({counts[case.name][b]} MAP_DMA)" for b in BINARIES)
                  + f" [{time.monotonic() - t0:.0f} s]", flush=True)
        if "d" in opts.scenarios:
            t0 = time.monotonic()
            ops = d_ops()
            for _ in range(D_VMS):
                for b, by_op in run_updates(binaries, model, tmp, ops, D_ROUNDS).items():
                    for name, samples in by_op.items():
                        res.add("d", name, "wall s", b, *(wall for wall, _ in samples))
                        res.add("d", name, "cpu s", b, *(cpu for _, cpu in samples))
            for b, by_op in count_updates(binaries, model, tmp, ops).items():
                for name, calls in by_op.items():
                    counts.setdefault(name, {})[b] = calls
            print(f"bench: d TCE updates [{time.monotonic() - t0:.0f} s]", flush=True)

    report(res, counts, valid, opts.out, d_ops() if "d" in opts.scenarios else [])
    total = time.monotonic() - start
    print(f"\nbench: total {total:.0f} s ({total / 60:.1f} min); "
          f"CSV, results.md and plug-latency.png in {opts.out}/")


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def mem_gib():
    with open("/proc/meminfo") as f:
        return round(int(f.readline().split()[1]) / (1 << 20))


def report(res, counts, valid, out, ops):
    """Write samples.csv, summary.csv, results.md and the plot; print the table."""
    with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "case", "metric", "binary", "sample", "value"])
        for (sc, case, metric, b), values in res.samples.items():
            for i, v in enumerate(values):
                w.writerow([sc, case, metric, b, i, f"{v:.6g}"])

    rows, targets = [], []
    summary = []

    def row(sc, case, metric, stock, ours, ratio, note=""):
        rows.append(f"| {sc} | {case} | {metric} | {stock} | {ours} | {ratio} | {note} |")

    def minmed(sc, case, metric, b, scale=1.0):
        v = [x * scale for x in res.get(sc, case, metric, b)]
        return (min(v), statistics.median(v)) if v else (float("nan"),) * 2

    # a, b, c: hot-plug latency
    for sc, case, metric in res.order:
        if metric != "plug ms":
            continue
        s, o = minmed(sc, case, metric, "stock"), minmed(sc, case, metric, "ours")
        ratio = o[1] / s[1]
        n = len(res.get(sc, case, metric, "ours"))
        calls = counts.get(case, {})
        cpu = [res.med(sc, case, "plug cpu ms", b) for b in BINARIES]
        note = (f"{valid.get(case, 0)} valid TCEs; stock / ours: MAP_DMA calls "
                f"{calls.get('stock', '?')} / {calls.get('ours', '?')}, QEMU CPU ms "
                f"{fmt(cpu[0])} / {fmt(cpu[1])} (ratio {cpu[1] / cpu[0]:.3f})")
        row(sc, case, f"plug ms (n={n})", f"{fmt(s[0])} / {fmt(s[1])}",
            f"{fmt(o[0])} / {fmt(o[1])}", f"{ratio:.3f} ({o[0] / s[0]:.3f})", note)
        summary.append([sc, case, "plug ms", n, s[0], s[1], o[0], o[1], ratio,
                        calls.get("stock"), calls.get("ours")])
        growth = [res.get(sc, case, "RSS growth KiB", b) for b in BINARIES]
        if case == LEAK_CASE and all(growth):
            cycles = len(res.get(sc, case, "plug ms", "ours")) // len(growth[1])
            row(sc, case, f"RSS growth over {cycles - 1} cycles, KiB (each process)",
                " ".join(f"{v:.0f}" for v in growth[0]),
                " ".join(f"{v:.0f}" for v in growth[1]), "",
                "after the first plug + unplug, to after the last")
        if sc == "a":
            targets.append((f"a {case}: ours/stock <= 1.02", ratio <= 1.02, f"{ratio:.3f}"))
        if case == RSS_CASE:
            targets.append(("b 1 TiB at 1 %: ours >= 10x faster", s[1] / o[1] >= 10,
                            f"{s[1] / o[1]:.1f}x"))
        if sc == "c":
            share = calls["ours"] / calls["stock"] if calls.get("stock") else float("nan")
            targets.append(("c: ours MAP_DMA <= 1 % of stock's", share <= 0.01,
                            f"{calls.get('ours')} / {calls.get('stock')} = {100 * share:.3g} %"))
            targets.append(("c: ours >= 20x faster", s[1] / o[1] >= 20, f"{s[1] / o[1]:.1f}x"))

    # d: throughput in M TCE/s (medians of wall time), CPU per call
    for name, entries, _, timed in ops:
        s, o = minmed("d", name, "wall s", "stock"), minmed("d", name, "wall s", "ours")
        # throughput: best = entries / min time, typical = entries / median
        thr = lambda t: entries / t / 1e6  # noqa: E731
        ratio = s[1] / o[1]
        sc_cpu = minmed("d", name, "cpu s", "stock")
        o_cpu = minmed("d", name, "cpu s", "ours")
        calls = counts.get(name, {})
        # /proc/PID/stat counts in clock ticks (10 ms): say so when a batch
        # is too short for the CPU time to mean anything.
        us = lambda t: fmt(t / len(timed) * 1e6)  # noqa: E731
        if min(sc_cpu[1], o_cpu[1]) >= 0.1:
            cpu = f"QEMU CPU µs/call {us(sc_cpu[1])} / {us(o_cpu[1])}"
        else:
            cpu = "QEMU CPU < 0.1 s a batch (10 ms ticks)"
        note = (f"{len(timed)} calls of {entries // len(timed)}, stock / ours: "
                f"wall µs/call {us(s[1])} / {us(o[1])}; {cpu}; MAP_DMA+UNMAP_DMA calls "
                f"{'+'.join(map(str, calls.get('stock', ())))} / "
                f"{'+'.join(map(str, calls.get('ours', ())))}")
        row("d", name, f"M TCE/s (n={D_VMS * D_ROUNDS})", f"{fmt(thr(s[0]))} / {fmt(thr(s[1]))}",
            f"{fmt(thr(o[0]))} / {fmt(thr(o[1]))}", f"{ratio:.3f} ({s[0] / o[0]:.3f})", note)
        summary.append(["d", name, "M TCE/s", D_VMS * D_ROUNDS, thr(s[0]), thr(s[1]), thr(o[0]),
                        thr(o[1]), ratio, "", ""])
        targets.append((f"d {name}: ours/stock throughput >= 0.95", ratio >= 0.95,
                        f"{ratio:.3f}"))

    # e: RSS around the biggest replay
    table_mib = 0
    for case in plug_cases():
        if case.name == RSS_CASE:
            table_mib = (1 << (case.window[1] - case.window[0])) * 8 / MiB
    labels = {"rss_filled": "VmRSS after fill", "hwm_filled": "VmHWM after fill",
              "rss_plugged": "VmRSS after replay", "hwm_plugged": "VmHWM after replay",
              "rss_unplugged": "VmRSS after unplug"}
    growth = {}
    for key, label in labels.items():
        if not res.get("e", RSS_CASE, key, "stock"):
            continue
        s, o = minmed("e", RSS_CASE, key, "stock"), minmed("e", RSS_CASE, key, "ours")
        row("e", RSS_CASE, f"{label}, MiB", f"{fmt(s[0])} / {fmt(s[1])}",
            f"{fmt(o[0])} / {fmt(o[1])}", f"{o[1] / s[1]:.3f}")
        summary.append(["e", RSS_CASE, label + " MiB", 3, *s, *o, o[1] / s[1], "", ""])
    if res.get("e", RSS_CASE, "rss_plugged", "ours"):
        for b in BINARIES:
            growth[b] = res.med("e", RSS_CASE, "hwm_plugged", b) - res.med("e", RSS_CASE, "rss_filled", b)
        row("e", RSS_CASE, "peak growth over the replay, MiB", fmt(growth["stock"]),
            fmt(growth["ours"]), "", f"table {fmt(table_mib)} MiB")
        targets.append((f"e: no second copy (ours' peak growth over the replay < half the "
                        f"{fmt(table_mib)} MiB table)", growth["ours"] < table_mib / 2,
                        f"{fmt(growth['ours'])} MiB (stock {fmt(growth['stock'])} MiB)"))

    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "case", "metric", "samples", "stock_min", "stock_median",
                    "ours_min", "ours_median", "ours_over_stock", "stock_map_dma",
                    "ours_map_dma"])
        for r in summary:
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in r])

    host = os.uname()
    lines = [
        f"Baseline: {BASELINE}. Ours: the series. Host: "
        f"{cpu_model()}, {os.cpu_count()} CPUs, {mem_gib()} GiB, Linux {host.release}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}. QEMU's page size: {HOST_PAGE}.",
        "Values are min / median; plug in ms (device_add wall time); ratio = "
        "ours / stock of the medians (of the mins); for d, of the throughputs.",
        "",
        "| | case | metric | stock min / median | ours min / median | ratio | notes |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Targets:",
        *(f"- {'PASS' if ok else 'MISS'} {what}: {val}" for what, ok, val in targets),
    ]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print("\n" + text)
    plot(res, out)


def plot(res, out):
    """plug-latency.png: a) the default window by fill, b/c) latency against
    DDW size, stock vs ours, log scale (gnuplot)."""
    if not shutil.which("gnuplot"):
        print("bench: no gnuplot, no plot (scripts/bench-deps.sh installs it)")
        return
    cases = plug_cases()
    a = [c for c in cases if c.scenario == "a" and res.get("a", c.name, "plug ms", "ours")]
    bc = [c for c in cases if c.scenario in "bc" and res.get(c.scenario, c.name, "plug ms", "ours")]
    with open(os.path.join(out, "plot-a.dat"), "w") as f:
        for c in a:
            f.write(f'"{c.fill_label}" ' + " ".join(
                f"{res.med('a', c.name, 'plug ms', b):.4f}" for b in BINARIES) + "\n")
    # One file per scenario: window GiB, stock ms, ours ms
    plots = []
    for sc, title, style in (("b", "b", "linespoints pt 7"),
                             ("c", "c (100 %)", "points pt 5 ps 1.5")):
        data = [c for c in bc if c.scenario == sc]
        if not data:
            continue
        path = os.path.join(out, f"plot-{sc}.dat")
        with open(path, "w") as f:
            for c in data:
                f.write(f"{c.window_bytes / GiB:g} " + " ".join(
                    f"{res.med(sc, c.name, 'plug ms', b):.4f}" for b in BINARIES) + "\n")
        for col, b, color in ((2, "stock", "#c0504d"), (3, "ours", "#4f81bd")):
            plots.append(f'"{path}" using 1:{col} title "{title} {b}" '
                         f'with {style} lc rgb "{color}"')
    panels = []
    if a:
        panels.append(f"""
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel "median ms (log)"
set title "a: default window, 1 GiB of 4 KiB TCEs"
set yrange [0.1:*]
plot "{out}/plot-a.dat" using 2:xtic(1) title "stock" lc rgb "#c0504d", \\
     "" using 3 title "ours" lc rgb "#4f81bd"
unset style
set autoscale y
""")
    if plots:
        panels.append(f"""
set logscale xy 2
set ylabel "median ms (log)"
set xlabel "window size, GiB (log)"
set title "b: 64-bit DDW of 64 KiB TCEs, 1 % valid; c: 16 GiB direct map"
set xrange [0.7:1500]
set xtics ("1" 1, "16" 16, "64" 64, "1024" 1024)
set key top left
plot {", ".join(plots)}
""")
    if not panels:
        return
    script = (f'set terminal pngcairo size {600 * len(panels)},500 font ",10" noenhanced\n'
              f'set output "{out}/plug-latency.png"\n'
              f'set multiplot layout 1,{len(panels)} title "vfio-pci hot-plug latency '
              f'(device_add), {BASELINE} vs the series"\n'
              + "".join(panels) + "unset multiplot\n")
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print(f"bench: gnuplot failed:\n{r.stderr}")


if __name__ == "__main__":
    main()
