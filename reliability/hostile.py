#!/usr/bin/env python3
"""Hostile TCE hypercalls (issue 11, part 4).

A seeded run of N hypercalls (H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE,
H_GET_TCE) with arguments a guest may send but should not: bad LIOBNs
(unknown, a disabled window's, with bits above 32 set), IOBAs out of the
window, below it, misaligned, near 2^64, counts of 0, past the window's end,
above 512 (INDIRECT) or the window (STUFF) and near 2^64, TCE lists
misaligned, outside guest RAM or in its last page, and TCEs with every
permission, none, junk in the low bits, pointing past the end of RAM, at MMIO
or at random 64-bit addresses. One pseries QEMU (-accel qtest) with PHB 1,
small windows (dma_win_size, for both PHBs) and a 64-bit DDW, the VFIO model
preloaded; the first half of the calls run without VFIO, then vfio-pci is
hot-plugged on PHB 1 and the second half run with it. A few window events
(DDW remove/create, default window removal, ibm,reset-pe-dma-window) happen
at random points of each phase.

Every call's return code is predicted from a shadow of the tables (what
hw/ppc/spapr_iommu.c does, line by line), so the run checks that:
  * only H_SUCCESS and H_PARAMETER come back: the codes QEMU's four TCE
    handlers can return (anything else, H_FUNCTION say, fails), and each
    call gets the one its arguments call for; H_GET_TCE returns the TCE the
    shadow has, and other calls leave r4..r12 as they were;
  * at every window event and at the end of each phase, every window read
    back with H_GET_TCE equals the shadow;
  * with VFIO attached, the model's host mappings (4 KiB pages, guest
    address = vaddr - RAM's host address from the model's register-memory
    line) are exactly what QEMU's notifications give: a TCE with access to
    a RAM page maps it (RO -> "r", WO/RW -> "rw"), one without access
    unmaps, a TCE that gives access to no guest RAM unmaps what was there
    (vfio-start-stop patch 15; stock QEMU left it mapped: bug 1 of README.md), and
    so the mappings are always exactly the valid TCEs of PHB 1's windows;
    without VFIO the model maps nothing;
  * x-vfio-in-use of PHB 1's tables is true exactly while VFIO is attached
    and the window exists, with x-vfio-starts - x-vfio-stops matching;
  * QEMU stays alive (query-status), prints no assertion, abort or hardware
    error, and exits 0 on quit.

At the end it runs probes.py (the bugs it found, fixed by the series; XFAIL
against stock QEMU).

Usage: hostile.py [--calls N] [--seed S] [--qemu Q] [--model M]
Ends with "PASS hostile/..." / "FAIL hostile/...: why" lines, one per kind
of check, and a summary; exits non-zero on any failure.
"""

import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probes  # noqa: E402
from common import (  # noqa: E402
    FATAL, H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_PUT_TCE_INDIRECT,
    H_STUFF_TCE, H_SUCCESS, HCALL_NAMES, MASK64, MiB, PHB0_LIOBN,
    PHB0_LIOBN64, PHB1_BUID, PHB1_DDW_ADDR, PHB1_LIOBN, PHB1_LIOBN64,
    PHB1_TCET, PHB1_TCET64, UNMAPPABLE, Machine, QMPError, QTest, QTestError,
    add_pages, be64_list, describe_page_diff, model_pages, tce_mapping,
    valid_pages)

RAM_MIB = 512
RAM = RAM_MIB * MiB
DEFAULT_WIN = 32 * MiB                 # dma_win_size of both PHBs: 8192 TCEs
LIST_BASE = 256 * MiB                  # TCE lists go in 64 pages from here
LIST_PAGES = 64
# The return codes QEMU's H_PUT_TCE, H_GET_TCE, H_PUT_TCE_INDIRECT and
# H_STUFF_TCE handlers (hw/ppc/spapr_iommu.c) can give.
ALLOWED = {H_SUCCESS: "H_SUCCESS", H_PARAMETER: "H_PARAMETER"}
# Guest addresses outside RAM where nothing is mapped (checked at start to
# read as zeroes, which is what a TCE list there gives)
UNASSIGNED = [RAM, RAM + 64 * MiB, 1 << 40, 1 << 62, (1 << 64) - 4096]
PHB1_TABLES = (PHB1_LIOBN, PHB1_LIOBN64)
# PCI LIOBNs are 0x80000000 | PHB index << 8 | window; VIO ones small
BAD_LIOBNS = [PHB0_LIOBN64, 0x80000102, 0x80000f00, 0x80000200, 0,
              0xffffffff, (1 << 32) | PHB1_LIOBN, (1 << 63) | PHB1_LIOBN64,
              MASK64]


def code_name(rc):
    return ALLOWED.get(rc, f"{rc - (1 << 64) if rc >> 63 else rc} (undocumented)")


class Table:
    """Shadow of one SpaprTceTable: n == 0 is a disabled window. With vfio
    (a window of PHB 1 while vfio-pci is attached), also of what the host
    maps for it: index -> (guest address, perm)."""

    def __init__(self, bus=0, shift=0, n=0, vfio=False):
        self.bus, self.shift, self.n = bus, shift, n
        self.e = {}                                   # index -> TCE, non-zero
        self.vfio = vfio
        self.host = {}

    @property
    def page(self):
        return 1 << self.shift

    def index(self, ioba):
        """put_tce_emu()'s index, after the caller's ioba &= page mask."""
        ioba &= MASK64 & ~(self.page - 1)
        return ((ioba - self.bus) & MASK64) >> self.shift

    def set(self, i, tce):
        if tce:
            self.e[i] = tce
        else:
            self.e.pop(i, None)
        if self.vfio:
            m = tce_mapping(tce, self.shift, RAM)
            if m is None:
                self.host.pop(i, None)
            elif m is UNMAPPABLE:
                # QEMU unmaps the old page, then VFIO refuses the map
                self.host.pop(i, None)
            else:
                self.host[i] = m

    def attach(self):
        """VFIO starts using the window: the replay maps the valid TCEs."""
        self.vfio = True
        self.host = {}
        for i, tce in self.e.items():
            m = tce_mapping(tce, self.shift, RAM)
            if m and m is not UNMAPPABLE:
                self.host[i] = m

    def detach(self):
        self.vfio = False
        self.host = {}

    def host_pages(self):
        out = {}
        for i, (gpa, perm) in self.host.items():
            add_pages(out, self.bus + (i << self.shift), self.page, gpa, perm)
        return out

    def entries(self):
        return [self.e.get(i, 0) for i in range(self.n)]


class Run:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.failures = []
        self.sent = collections.Counter()             # op -> calls
        self.codes = collections.Counter()            # (op, code) -> calls
        self.tags = collections.Counter()             # argument kinds
        self.events = collections.Counter()
        self.verify_gets = 0
        self.checks = collections.Counter()
        self.tables = {}
        self.attached = False
        self.batch = []                               # (line, expectation)
        self.no_qom = False
        self.refused_plugs = 0

    # --- failures ------------------------------------------------------------

    def fail(self, cat, msg):
        self.failures.append((cat, msg))
        if len(self.failures) <= 20:
            print(f"  failure ({cat}): {msg}", flush=True)

    # --- the shadow ----------------------------------------------------------

    def lookup(self, liobn):
        """spapr_tce_find_by_liobn()"""
        if liobn >> 32:
            return None
        return self.tables.get(liobn)

    def active_phb1(self):
        return [l for l in PHB1_TABLES if self.tables[l].n]

    # --- argument pickers ----------------------------------------------------

    def pick_liobn(self):
        r = self.rng.random()
        if r < 0.42:
            return PHB1_LIOBN, "liobn=phb1-default"
        if r < 0.67:
            return PHB1_LIOBN64, "liobn=phb1-ddw"
        if r < 0.75:
            return PHB0_LIOBN, "liobn=phb0"
        if r < 0.80:
            return 0x90000000 + self.rng.randrange(1 << 28), "liobn=random"
        return self.rng.choice(BAD_LIOBNS), "liobn=bad"

    def pick_ioba(self, t, npages=1):
        """An IOBA for table t (a disabled or unknown table: as for PHB 1's
        default window)."""
        if t is None or not t.n:
            t = Table(0, 12, DEFAULT_WIN >> 12)
        page, rng = t.page, self.rng
        end = t.bus + t.n * page
        r = rng.random()
        if r < 0.55:
            return t.bus + rng.randrange(t.n) * page, "ioba=in-window"
        if r < 0.66:
            return (t.bus + rng.randrange(t.n) * page + rng.randrange(1, page),
                    "ioba=misaligned")
        if r < 0.76:
            back = rng.randrange(1, max(2, min(npages, t.n) + 1))
            return end - back * page, "ioba=near-end"
        if r < 0.81:
            return end + rng.randrange(4) * page + rng.randrange(page), "ioba=past-end"
        if r < 0.85:
            return (t.bus - page) & MASK64, "ioba=below-window"
        if r < 0.89:
            return (1 << 64) - rng.randrange(1, 4) * page + rng.randrange(page), \
                "ioba=near-2^64"
        if r < 0.95:
            other = 0 if t.bus else PHB1_DDW_ADDR
            return other + rng.randrange(64) * page, "ioba=other-window"
        return rng.getrandbits(64), "ioba=random"

    def ram_gpa(self, page):
        return self.rng.randrange(RAM // page) * page

    def pick_tce(self, shift, clearing=0.15):
        page, rng = 1 << shift, self.rng
        perm = rng.randrange(1, 4)
        r = rng.random()
        if r < clearing:
            return 0, "tce=zero"
        r = rng.random()
        if r < 0.50:
            return self.ram_gpa(page) | perm, "tce=ram"
        if r < 0.55:
            return self.ram_gpa(page), "tce=no-permission"
        if r < 0.62:
            junk = rng.randrange(1, page >> 2) << 2
            return self.ram_gpa(page) | junk | perm, "tce=junk-low-bits"
        if r < 0.66:
            return (RAM - page) | perm, "tce=last-ram-page"
        if r < 0.72:
            return RAM + rng.randrange(16) * page | perm, "tce=past-ram"
        if r < 0.76:
            return (1 << 45) + rng.randrange(1 << 20) * page | perm, "tce=mmio"
        if r < 0.82:
            return rng.getrandbits(64) & ~(page - 1) | perm, "tce=high-address"
        if r < 0.88:
            return rng.getrandbits(64), "tce=random"
        if r < 0.94 and shift > 12:
            return self.ram_gpa(page) + rng.randrange(1, page >> 12) * 4096 | perm, \
                "tce=sub-page-address"
        # The start of a run that crosses the end of RAM
        return RAM - rng.randrange(1, 8) * page | perm, "tce=before-ram-end"

    def tce_list(self, shift, n):
        """n TCEs: runs of contiguous guest pages, some breaks."""
        page = 1 << shift
        out, tags = [], set()
        tce, tag = self.pick_tce(shift)
        tags.add(tag)
        out.append(tce)
        for _ in range(n - 1):
            if self.rng.random() < 0.85:
                tce = (tce + page) & MASK64 if tce & 3 else 0
            else:
                tce, tag = self.pick_tce(shift)
                tags.add(tag)
            out.append(tce)
        return out, tags

    # --- one call: pick arguments, predict, queue ------------------------------

    def queue(self, op, args, ret, r4=None, tags=(), prelude=()):
        self.batch.extend((line, None) for line in prelude)
        self.batch.append((QTest.hcall_line(op, *args), (op, args, ret, r4)))
        self.sent[op] += 1
        for t in tags:
            self.tags[(HCALL_NAMES[op], t)] += 1

    def call_put(self):
        liobn, lt = self.pick_liobn()
        t = self.lookup(liobn)
        ioba, it = self.pick_ioba(t)
        tce, tt = self.pick_tce(t.shift if t and t.n else 12)
        ret = H_PARAMETER
        if t is not None:
            i = t.index(ioba)
            if i < t.n:
                t.set(i, tce)
                ret = H_SUCCESS
        self.queue(H_PUT_TCE, (liobn, ioba, tce), ret, tags=(lt, it, tt))

    def call_get(self):
        liobn, lt = self.pick_liobn()
        t = self.lookup(liobn)
        ioba, it = self.pick_ioba(t)
        ret, r4 = H_PARAMETER, liobn
        if t is not None:
            i = t.index(ioba)
            if i < t.n:
                ret, r4 = H_SUCCESS, t.e.get(i, 0)
        self.queue(H_GET_TCE, (liobn, ioba), ret, r4, tags=(lt, it))

    def pick_npages(self, limit, window):
        r, rng = self.rng.random(), self.rng
        if r < 0.03:
            return 0, "npages=0"
        if r < 0.45:
            return rng.randrange(1, 17), "npages=1-16"
        if r < 0.75:
            return rng.randrange(17, limit), f"npages=17-{limit - 1}"
        if r < 0.85:
            return limit, f"npages={limit}"
        if r < 0.90:
            return limit + 1, f"npages={limit}+1"
        if r < 0.95:
            return rng.choice([1 << 32, MASK64, 1 << 63, window + 1,
                               rng.getrandbits(64)]), "npages=huge"
        return rng.randrange(1, limit + 1), f"npages=1-{limit}"

    def call_stuff(self):
        liobn, lt = self.pick_liobn()
        t = self.lookup(liobn)
        n = t.n if t and t.n else DEFAULT_WIN >> 12
        npages, nt = self.pick_npages(n, n)
        ioba, it = self.pick_ioba(t, npages)
        tce, tt = self.pick_tce(t.shift if t and t.n else 12, clearing=0.45)
        ret = H_PARAMETER
        if t is not None and npages <= t.n and npages:
            first = t.index(ioba)
            if first < t.n:
                count = min(npages, t.n - first)
                for i in range(first, first + count):
                    t.set(i, tce)
                ret = H_SUCCESS if count == npages else H_PARAMETER
        self.queue(H_STUFF_TCE, (liobn, ioba, tce, npages), ret,
                   tags=(lt, it, tt, nt))

    def call_indirect(self):
        liobn, lt = self.pick_liobn()
        t = self.lookup(liobn)
        shift = t.shift if t and t.n else 12
        npages, nt = self.pick_npages(512, t.n if t and t.n else DEFAULT_WIN >> 12)
        ioba, it = self.pick_ioba(t, npages)
        rng = self.rng
        r = rng.random()
        if r < 0.78:
            lst, ltag = LIST_BASE + rng.randrange(LIST_PAGES) * 4096, "list=ram"
        elif r < 0.83:
            lst, ltag = RAM - 4096, "list=last-ram-page"
        elif r < 0.90:
            lst = LIST_BASE + rng.randrange(LIST_PAGES) * 4096 + \
                rng.choice([8, 1, 4, 2048, rng.randrange(1, 4096)])
            ltag = "list=misaligned"
        else:
            lst, ltag = rng.choice(UNASSIGNED), "list=outside-ram"
        prelude = []
        values = [0] * min(npages, 512)
        tags = {lt, it, nt, ltag}
        if lst + 4096 <= RAM and values:
            values, vt = self.tce_list(shift, len(values))
            tags |= vt
            prelude.append(QTest.write_line(lst, be64_list(values)))
        ret = H_PARAMETER
        if t is not None and npages <= 512 and not lst & 0xfff and npages:
            first = t.index(ioba)
            if first < t.n:
                count = min(npages, t.n - first)
                for k in range(count):
                    t.set(first + k, values[k])
                ret = H_SUCCESS if count == npages else H_PARAMETER
        self.queue(H_PUT_TCE_INDIRECT, (liobn, ioba, lst, npages), ret,
                   tags=tags, prelude=prelude)

    # --- sending ------------------------------------------------------------

    def flush(self):
        if not self.batch:
            return
        lines = [l for l, _ in self.batch]
        if self.a.trace:
            for l in lines:
                print("  > " + (l if len(l) < 200 else l[:200] + "..."))
        try:
            replies = self.m.qt.batch(lines)
        except (QTestError, OSError) as e:
            self.fail("qemu-alive", f"qtest: {e}")
            raise SystemExit(self.finish())
        for (line, exp), words in zip(self.batch, replies):
            if exp is None:
                continue
            op, args, ret, r4 = exp
            rc = int(words[0], 16)
            regs = [int(w, 16) for w in words[1:]]
            self.codes[(op, rc)] += 1
            if rc not in ALLOWED:
                self.fail("return-codes", f"undocumented return {code_name(rc)}: {line}")
            elif rc != ret:
                self.fail("return-codes", f"{code_name(rc)}, expected {code_name(ret)}: {line}")
            if op == H_GET_TCE and rc == H_SUCCESS:
                if regs[0] != r4:
                    self.fail("return-codes", f"H_GET_TCE gave {regs[0]:#x}, the shadow has "
                              f"{r4:#x}: {line}")
            elif [r & MASK64 for r in regs[:len(args)]] != [a & MASK64 for a in args]:
                self.fail("return-codes", f"argument registers changed to {words[1:len(args) + 1]}: {line}")
        self.batch = []

    # --- window events ---------------------------------------------------------

    def window_event(self):
        """Change PHB 1's windows as a guest may, and mirror it."""
        self.flush()
        active = self.active_phb1()
        choices = ["reset"]
        if self.tables[PHB1_LIOBN64].n:
            choices += ["ddw-remove"] * 2
        # (not with the default window removed and the DDW there: QEMU would
        # put the new window at dma64_win_addr again, on top of the DDW)
        if active == [PHB1_LIOBN]:
            choices += ["ddw-create"] * 3
        if len(active) == 2:
            choices += ["default-remove"]
        ev = self.rng.choice(choices)
        m = self.m
        if ev == "ddw-create":
            shift = self.rng.choice([12, 16])
            wshift = shift + self.rng.choice([8, 9, 10])
            liobn, bus = m.create_ddw(shift, wshift)
            want_bus = PHB1_DDW_ADDR if active else 0
            if liobn not in PHB1_TABLES or self.tables[liobn].n or bus != want_bus:
                self.fail("setup", f"ibm,create-pe-dma-window gave LIOBN {liobn:#x} at "
                          f"{bus:#x} with {active} active")
            self.tables[liobn] = Table(bus, shift, 1 << (wshift - shift),
                                       vfio=self.attached)
            ev += f" {liobn:#x} {1 << (wshift - shift)}x{1 << shift >> 10}K@{bus:#x}"
        elif ev in ("ddw-remove", "default-remove"):
            liobn = PHB1_LIOBN64 if ev == "ddw-remove" else PHB1_LIOBN
            m.remove_ddw(liobn)
            self.tables[liobn] = Table()
            # the last window gone, not the default's table: the default back
            if not self.active_phb1() and liobn != PHB1_LIOBN:
                self.tables[PHB1_LIOBN] = Table(0, 12, DEFAULT_WIN >> 12,
                                                vfio=self.attached)
        else:
            rets = m.rtas("ibm,reset-pe-dma-window",
                          [1 << 11, PHB1_BUID >> 32, PHB1_BUID & 0xffffffff], 1)
            if rets[0] != 0:
                self.fail("setup", f"ibm,reset-pe-dma-window: RTAS status {rets[0]:#x}")
            self.tables[PHB1_LIOBN] = Table(0, 12, DEFAULT_WIN >> 12,
                                            vfio=self.attached)
            self.tables[PHB1_LIOBN64] = Table()
        self.events[ev.split()[0]] += 1
        self.verify(f"after {ev}")

    # --- checks ----------------------------------------------------------------

    def verify(self, when, light=False):
        """Tables read back = shadow; model = valid TCEs; VFIO use; alive.
        light: only the model against the shadow (to find the first call
        after which they differ)."""
        self.flush()
        m = self.m
        if not m.alive():
            self.fail("qemu-alive", f"{when}: QEMU died (status {m.proc.returncode})")
            raise SystemExit(self.finish())
        actual = {}
        for liobn, t in sorted(self.tables.items()):
            if not t.n:
                continue
            if light:
                actual[liobn] = t.entries()
                continue
            got = m.read_table(liobn, t.bus, t.shift, t.n)
            self.verify_gets += t.n
            want = t.entries()
            self.checks["table read back"] += 1
            if got != want:
                bad = [i for i in range(t.n) if got[i] != want[i]]
                self.fail("table-contents", f"{when}: LIOBN {liobn:#x}: {len(bad)} TCEs differ from "
                          f"the shadow, first at index {bad[0]}: {got[bad[0]]:#x} "
                          f"!= {want[bad[0]]:#x}")
            actual[liobn] = got
        # VFIO use of PHB 1's tables
        for liobn, path in () if light or self.no_qom else (
                (PHB1_LIOBN, PHB1_TCET), (PHB1_LIOBN64, PHB1_TCET64)):
            try:
                st = m.tcet_state(path)
            except QMPError as e:
                if "not found" not in str(e):
                    raise
                # QEMU without the series (stock + the hcall patch): no such
                # properties, so no VFIO use to check
                print(f"  (no {path} VFIO properties: {e}; not checked)")
                self.no_qom = True
                break
            want = self.attached and bool(self.tables[liobn].n)
            self.checks["x-vfio-in-use"] += 1
            if st["x-vfio-in-use"] != want or \
                    st["x-vfio-starts"] - st["x-vfio-stops"] != int(want):
                self.fail("vfio-use", f"{when}: {path}: {st}, expected in use = {want}")
        # the host's mappings: exactly what QEMU's notifications give (the
        # shadow's host view), and which of them are not the valid TCEs
        got = model_pages(m.model_mappings(), m.ram_vaddr()) if self.attached \
            else model_pages(m.model_mappings(), 0)
        want = {}
        for liobn in PHB1_TABLES:
            if self.tables[liobn].vfio:
                want.update(self.tables[liobn].host_pages())
        self.checks["model mappings"] += 1
        bad, text = describe_page_diff(want, got, want_name="QEMU's notifications give")
        if bad:
            self.fail("model-mappings", f"{when}: the model's mappings differ from what QEMU "
                      f"told VFIO in {len(bad)} pages:\n{text}")
        if self.attached:
            valid = valid_pages([(self.tables[l].bus, self.tables[l].shift,
                                  actual[l]) for l in PHB1_TABLES if l in actual], RAM)
            stale, text = describe_page_diff(valid, got, want_name="valid TCEs give")
            if stale:
                self.fail("model-mappings", f"{when}: the model maps {len(stale)} pages that "
                          f"are not the valid TCEs of the table:\n{text}")
        if not self.attached:
            left = [l for l in m.model_snapshot() if l.startswith(("container ",
                                                                 "window "))]
            if left:
                self.fail("model-mappings", f"{when}: no VFIO device, but the "
                          f"model has {left[:2]}")
        self.model_ranges = len(m.model_mappings())
        if light:
            return
        status = m.status()
        if status != "running":
            self.fail("qemu-alive", f"{when}: query-status says {status}")
        fatal = m.fatal_lines()
        if fatal:
            self.fail("qemu-alive", f"{when}: QEMU printed: {fatal[0]}")

    # --- the run ----------------------------------------------------------------

    def plug(self, when):
        """Hot-plug vfio-pci on PHB 1; then the host maps the valid TCEs.
        With only the 64-bit window left (the default one removed), the host
        cannot place it (its first window goes at 0): the hot-plug must be
        refused cleanly; then the PHB is made pluggable again."""
        m = self.m
        lone_ddw = not self.tables[PHB1_LIOBN].n and self.tables[PHB1_LIOBN64].n
        kind, val = m.plug()
        if kind == "error" and lone_ddw:
            self.refused_plugs += 1
            print(f"  {when}: refused, PHB 1 has only its 64-bit window: {val}",
                  flush=True)
            if "Failed to create SPAPR window" not in val:
                self.fail("setup", f"{when} with only the 64-bit window: {val}")
            self.verify(f"after the refused {when}")
            # Remove the DDW (the default window comes back, empty), make a
            # new one and put TCEs into both again
            m.remove_ddw(PHB1_LIOBN64)
            self.tables[PHB1_LIOBN] = Table(0, 12, DEFAULT_WIN >> 12)
            self.tables[PHB1_LIOBN64] = Table()
            liobn, bus = m.create_ddw(16, 24)
            self.tables[liobn] = Table(bus, 16, 256)
            self.phase("refill without VFIO", min(2000, max(100, self.a.calls // 50)), 0)
            kind, val = m.plug()
        if kind == "error":
            self.fail("setup", f"{when}: device_add vfio-pci: {val}")
            raise SystemExit(self.finish())
        self.attached = True
        for liobn in PHB1_TABLES:
            if self.tables[liobn].n:
                self.tables[liobn].attach()
        self.verify(f"after {when} (replay)")

    def phase(self, name, calls, events):
        ops = [self.call_put] * 35 + [self.call_get] * 25 + \
              [self.call_indirect] * 20 + [self.call_stuff] * 20
        at = sorted(self.rng.sample(range(1, calls), min(events, calls - 1)))
        t0 = time.monotonic()
        done = 0
        for k, ev in enumerate(at + [calls]):
            while done < ev:
                self.rng.choice(ops)()
                done += 1
                if len(self.batch) >= 512 or (self.a.check_every and
                                              done % self.a.check_every == 0):
                    self.flush()
                    if self.a.check_every and done % self.a.check_every == 0:
                        n = len(self.failures)
                        self.verify(f"{name}, call {done}", light=True)
                        if len(self.failures) > n and self.a.stop:
                            raise SystemExit(self.finish())
            if k < len(at):
                self.window_event()
        self.verify(f"end of {name}")
        print(f"  {name}: {calls} calls in {time.monotonic() - t0:.1f} s, "
              f"{self.model_ranges} host ranges mapped", flush=True)

    def main(self):
        a = self.a
        self.t0 = time.monotonic()
        workdir = tempfile.mkdtemp(prefix="hostile-", dir=a.tmp)
        self.workdir = workdir
        print(f"hostile: seed {a.seed}, {a.calls} hypercalls, {a.events} window "
              f"events per phase; QEMU {a.qemu}; work dir {workdir}", flush=True)
        self.m = m = Machine(a.qemu, workdir, "qemu", model=a.model,
                             mem_mib=RAM_MIB, dma_win_size=DEFAULT_WIN)
        try:
            for addr in UNASSIGNED:
                if m.qt.read(addr, 4096) != bytes(4096):
                    self.fail("setup", f"guest address {addr:#x} does not read as zeroes")
            n_def = DEFAULT_WIN >> 12
            self.tables = {PHB0_LIOBN: Table(0, 12, n_def), PHB0_LIOBN64: Table(),
                           PHB1_LIOBN: Table(0, 12, n_def), PHB1_LIOBN64: Table()}
            liobn, bus = m.create_ddw(16, 24)
            if (liobn, bus) != (PHB1_LIOBN64, PHB1_DDW_ADDR):
                self.fail("setup", f"DDW at LIOBN {liobn:#x}, {bus:#x}")
            self.tables[liobn] = Table(bus, 16, 256)
            self.verify("start")

            half = a.calls // 2
            self.phase("without VFIO", half, a.events)

            self.plug("hot-plug")
            self.phase("with VFIO", a.calls - half, a.events)

            m.unplug()
            self.attached = False
            for liobn in PHB1_TABLES:
                self.tables[liobn].detach()
            self.verify("after unplug")
            self.plug("second hot-plug")
        except SystemExit:
            raise
        except Exception as e:          # noqa: BLE001 (report, then summary)
            self.fail("setup", f"{type(e).__name__}: {e}")
            if not m.alive():
                self.fail("qemu-alive", f"QEMU died (status {m.proc.returncode})")
        return self.finish()

    def finish(self):
        m = self.m
        status = m.close()
        out = m.output()
        cats = {c for c, _ in self.failures}
        if status != 0 and "qemu-alive" not in cats:
            self.fail("qemu-alive", f"QEMU exited with status {status}")
        fatal = [l for l in out.splitlines() if FATAL.search(l)]
        if fatal and "qemu-alive" not in cats:
            self.fail("qemu-alive", f"QEMU printed: {fatal[0]}")
        refused = m.refused_maps
        self.report(refused)
        if not self.failures and not self.a.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return 1 if self.failures else 0

    def report(self, refused):
        a = self.a
        ops = [H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE, H_GET_TCE]
        el = time.monotonic() - self.t0
        print(f"\nhypercalls sent (seed {a.seed}, {el:.1f} s):")
        print(f"  {'':20} {'sent':>8} " + " ".join(f"{c:>12}" for c in ALLOWED.values())
              + "  other")
        for op in ops:
            other = sum(v for (o, c), v in self.codes.items()
                        if o == op and c not in ALLOWED)
            print(f"  {HCALL_NAMES[op]:20} {self.sent[op]:8} " +
                  " ".join(f"{self.codes[(op, c)]:12}" for c in ALLOWED) +
                  f"  {other}")
        print(f"  {'total':20} {sum(self.sent.values()):8} " +
              " ".join(f"{sum(v for (o, cc), v in self.codes.items() if cc == c):12}"
                       for c in ALLOWED))
        seen = sorted({c for _, c in self.codes})
        print("  return codes seen: " + ", ".join(code_name(c) for c in seen))
        print(f"  plus {self.verify_gets} H_GET_TCE to read the tables back; "
              f"window events: {dict(sorted(self.events.items()))}")
        print(f"  checks: {dict(self.checks)}; QEMU printed {refused} errors "
              f"of VFIO refusing to map a page that is not RAM")
        if a.verbose:
            print("argument kinds:")
            for (op, tag), n in sorted(self.tags.items()):
                print(f"  {op:20} {tag:28} {n}")
        else:
            kinds = collections.Counter()
            for (op, tag), n in self.tags.items():
                kinds[tag] += n
            print("  argument kinds: " + ", ".join(f"{t} {n}" for t, n in sorted(kinds.items())))

        total = sum(self.sent.values())
        ok = lambda c: self.codes_total(c)  # noqa: E731
        results = [
            ("return-codes", f"{total} hypercalls, only H_SUCCESS ({ok(H_SUCCESS)}) "
                             f"and H_PARAMETER ({ok(H_PARAMETER)}), each as predicted"),
            ("table-contents", f"{self.checks['table read back']} read-backs of "
                               f"every window equal the shadow"),
            ("model-mappings", f"{self.checks['model mappings']} snapshots: the "
                               f"host maps what QEMU told VFIO, always the valid TCEs"),
            ("vfio-use", f"{self.checks['x-vfio-in-use']} reads of x-vfio-in-use "
                         f"and the start/stop counts" +
                         (" (QEMU has no such properties: not checked)" if self.no_qom else "")),
            ("qemu-alive", "QEMU running throughout, no abort or assertion, exit 0"),
            ("setup", "plug, unplug, RTAS window calls" +
                      (f"; {self.refused_plugs} hot-plugs refused cleanly (PHB 1 "
                       f"had only its 64-bit window)" if self.refused_plugs else "")),
        ]
        print()
        suffix = f" [seed {a.seed}, {total} calls]"
        for cat, what in results:
            fails = [msg for c, msg in self.failures if c == cat]
            if fails:
                print(f"FAIL hostile/{cat}: {len(fails)} failures, first: "
                      f"{fails[0].splitlines()[0]}{suffix}")
            else:
                print(f"PASS hostile/{cat}: {what}{suffix}")
        if not a.no_probes:
            print("\nprobes of the bugs found (README.md):", flush=True)
            if probes.run(a.qemu, a.model, tmp=a.tmp):
                self.failures.append(("probes", "a probe failed"))
        el = time.monotonic() - self.t0
        if self.failures:
            print(f"\nhostile: FAILED, {len(self.failures)} failures in {el:.1f} s "
                  f"(rerun: {sys.argv[0]} --calls {a.calls} --seed {a.seed}; "
                  f"work dir {self.workdir} kept)")
        else:
            print(f"\nhostile: PASSED, {total} hypercalls, seed {a.seed}, {el:.1f} s")

    def codes_total(self, code):
        return sum(v for (_, c), v in self.codes.items() if c == code)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=100000)
    p.add_argument("--seed", type=int, default=None,
                   help="default: random, printed")
    p.add_argument("--events", type=int, default=None,
                   help="window events per phase (default: 1 per 10000 calls, at least 2)")
    p.add_argument("--check-every", type=int, default=0,
                   help="also check the model against the shadow after every K calls")
    p.add_argument("--no-probes", action="store_true",
                   help="do not run probes.py's bug probes at the end")
    p.add_argument("--stop", action="store_true",
                   help="stop at the first failure of --check-every")
    p.add_argument("--trace", action="store_true",
                   help="print every hypercall line sent")
    p.add_argument("--qemu", default=os.path.join(root, "build/bin/qemu-system-ppc64"))
    p.add_argument("--model", default=os.path.join(root, "build/lib/libvfio-model.so"))
    p.add_argument("--tmp", default=None)
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 32)
    if a.events is None:
        a.events = max(2, a.calls // 20000)
    if a.calls < 4:
        p.error("--calls must be at least 4")
    return Run(a).main()


if __name__ == "__main__":
    sys.exit(main())
