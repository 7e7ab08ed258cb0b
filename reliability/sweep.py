#!/usr/bin/env python3
"""Fault sweep (issue 11, part 2): fail each kernel call of an operation in
turn, with vfio-pci attached where it makes sense, and check that QEMU
either refuses the operation cleanly or survives it, and leaves nothing
behind.

Operations (each a scenario: a set-up, then the operation; pseries QEMU
under -accel qtest with PHB 1, the VFIO model preloaded, powernv host unless
the name says pseries):

  hotplug               TCEs in the default window, device_add vfio-pci
  hotplug-ddw           a DDW made before, TCEs in both windows, device_add
  hotplug-pseries       as hotplug, on a pSeries L1 host
  unplug                device plugged, DDW, TCEs; device_del + RTAS isolate
  ddw-create            device plugged; ibm,create-pe-dma-window
  ddw-create-pseries    the same on a pSeries host (its DDW RTAS fail points)
  ddw-remove            device plugged, DDW with TCEs; ibm,remove-pe-dma-window
  ddw-remove-last       ... with the default window removed before, so the
                        removal restores it (spapr_phb_dma_reset())
  system-reset          device plugged, DDW, TCEs; system_reset
  system-reset-pseries  the same on a pSeries host

The model (VFIO_MODEL_FAIL, read once when QEMU starts) fails the Nth hit
of a fail point, counted from QEMU's start. The number of hits the set-up
makes is found first (a galloping search over set-up-only runs: the set-up
is deterministic), so that "the Nth failure point of the operation" is
VFIO_MODEL_FAIL=any:(K+N). For each scenario:

  any       any:K+N for N = 1, 2, ... until a run consumes no failure (the
            model logs "injected=1" for each failure it injects; the run
            that injects none is the last). This fails every kernel call
            the operation makes that can fail, one at a time, with the
            point's usual errno, and gives the sequence of points it hits.
  errno     for each point hit and each other errno it can return
            (pin_user_pages EFAULT/EBUSY, pnv_pci_ioda2_set_window ENXIO,
            query_ddw ESRCH, ...), its Nth hit within the operation. (Its
            usual errno at its Nth hit is one of the "any" runs.)
  persist   for each point hit and each N: its Nth hit within the operation
            and every later one fail (a host out of memory, an OPAL call
            that keeps failing): QEMU's retries (more TCE levels) fail too.
            A first run counts how many the operation consumes (up to 16
            rules); the checked run then has exactly that many, so that
            nothing is left for the clean hot-plug after.

Each run is a fresh QEMU. After the operation:
  * QEMU is alive (query-status) and printed no abort, assertion or
    hardware error, and exits 0 on quit;
  * device_add failed with an error naming the device, or succeeded;
    ibm,create-pe-dma-window returned -1 (hardware error) and the window is
    not there, or 0; the removal, the unplug and the reset completed;
  * the windows of PHB 1 are as the guest asked (H_GET_TCE), every TCE put
    reads back (none after a reset);
  * every table's x-vfio-in-use equals "vfio-pci is attached and the window
    exists", x-vfio-starts - x-vfio-stops agrees, x-in-kvm is false; PHB
    0's table is never used;
  * the model's state: no container, group, device, window, preregistration
    or mapping when no device is attached; with the device, one container
    with group 7, one preregistration of guest RAM (v2), exactly the
    windows of PHB 1 (QEMU may fall back to v1 when v2's SET_IOMMU fails:
    then the host's own 32-bit window) and mappings equal to the valid TCEs
    of those windows;
  * with no device attached, QEMU's open fds are those it had at start,
    but the model's own (its state socket, the memfd behind the device);
  * then, once every injected failure was consumed: unplug (if attached),
    the model empty; a clean hot-plug works, maps exactly the valid TCEs
    of every window; a new TCE in each window gets mapped; unplug leaves
    the model empty and QEMU's fd count as before the clean plug.

A run is "refused" (the operation failed cleanly), "survived" (it
succeeded despite the failure) or "FAIL". A default window that the host
refuses on reset (or when the last window goes) survives without host
backing: QEMU says so, VFIO does not use it, the host has no window and
no mapping for it, until the device is plugged again.

Usage: sweep.py [--size full|reduced] [--scenarios a,b] [--verbose]
Prints "PASS sweep/SCENARIO: ..." / "FAIL sweep/SCENARIO: why" per
scenario, a summary per operation, and exits non-zero on any failure.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FATAL, H_GET_TCE, H_SUCCESS, HOST1, PHB1_DDW_ADDR,
    PHB1_LIOBN, PHB1_LIOBN64, PHB1_TCET, PHB1_TCET64, TCE_RO, TCE_RW, TCE_WO,
    GiB, MiB, Machine, QMPError, QTestError, coalesce, describe_diff,
    valid_pages)

RAM_MIB = 512
RAM = RAM_MIB * MiB
RTAS_HW_ERROR = 0xffffffff                  # -1
DEV = "vfio1"

# The model's fail points and the errnos each can return, usual first
# (tests/qtest/vfio-spapr-model/config.c, fail_points[]; vfio-model/README.md)
POINT_ERRNOS = {
    "vfio_fops_open": ["ENOMEM"],
    "tce_iommu_open": ["ENOMEM"],
    "iommu_group_claim_dma_owner": ["EPERM", "EBUSY"],
    "tce_iommu_attach_group": ["ENOMEM"],
    "account_locked_vm": ["ENOMEM"],
    "mm_iommu_do_alloc": ["ENOMEM"],
    "pin_user_pages": ["ENOMEM", "EFAULT", "EBUSY"],
    "tce_iommu_register_pages": ["ENOMEM"],
    "pnv_pci_table_alloc": ["ENOMEM"],
    "pnv_alloc_tce_level": ["ENOMEM"],
    "pnv_pci_ioda2_set_window": ["EPERM", "ENXIO"],
    "pnv_tce": ["ENOMEM"],
    "pin_user_pages_fast": ["EFAULT"],
    "iommu_pseries_alloc_table": ["ENODEV"],
    "query_ddw": ["EPERM", "ESRCH"],
    "create_ddw": ["ENODEV"],
    "ddw_property_create": ["ENODEV"],
    "ddw_list_new_entry": ["ENODEV"],
    "strndup_user": ["ENOMEM"],
    "get_unused_fd_flags": ["EMFILE"],
    "vfio_allocate_device_file": ["ENOMEM"],
    "vfio_pci_core_enable": ["ENOMEM"],
    "anon_inode_getfile": ["ENOMEM", "ENFILE"],
    "vfio_info_cap_add": ["ENOMEM"],
    "memdup_user": ["ENOMEM"],
    "vfio_intx_enable": ["ENOMEM"],
    "pci_alloc_irq_vectors": ["ENOSPC", "ENOMEM"],
}
MAX_RULES = 16                              # the model takes at most 16
# A failed DDW query/create on a pSeries host puts the PE on the kernel's
# failed list: every later window of that PE fails ENODEV until the host
# reboots (vfio-model/README.md, fail points), the default window of a new
# container too. After these, the clean hot-plug must be refused, cleanly.
PSERIES_FAILED_LIST = {"query_ddw", "create_ddw", "ddw_property_create",
                       "ddw_list_new_entry"}

# TCEs put before the operation: {index: TCE}. Default window (4 KiB
# pages): RW, RO, WO, a run of 16 contiguous pages, the window's last entry
# (another lower level of a multi-level host table); the DDW (64 KiB):
# likewise. The clean hot-plug then adds one more in each window.
def default_tces(entries):
    t = {0: 0x1000000 | TCE_RW, 3: 0x2000000 | TCE_RO, 4: 0x2100000 | TCE_WO}
    t.update({16 + i: (0x3000000 + (i << 12)) | TCE_RW for i in range(16)})
    t[entries - 1] = 0x4000000 | TCE_RW
    return t


def ddw_tces(entries):
    t = {0: 0x5000000 | TCE_RW, 5: 0x6000000 | TCE_RO}
    t.update({100 + i: (0x7000000 + (i << 16)) | TCE_RW for i in range(4)})
    t[entries - 1] = 0x8000000 | TCE_RW
    return t


NEW_TCE = {PHB1_LIOBN: (7, 0xC800000 | TCE_RW),
           PHB1_LIOBN64: (9, 0xD200000 | TCE_RW)}

# What QEMU says when it keeps a window that the host refused to back
UNBACKED = "passthrough devices cannot DMA through this window until the next reset"


class Win:
    def __init__(self, bus, shift, entries):
        self.bus, self.shift, self.n = bus, shift, entries
        self.tces = {}
        self.zeros = set()          # entries that must read 0 (after a reset)
        self.unbacked = False       # the host refused it: no VFIO use


class World:
    """What the guest asked for: PHB 1's windows and their TCEs, whether
    vfio-pci is attached. Updated from each step's result."""

    def __init__(self, default_size):
        self.default_size = default_size
        self.windows = {PHB1_LIOBN: Win(0, 12, default_size >> 12)}
        self.attached = False

    def attach(self):
        """A device plugged: its new container gets every window."""
        self.attached = True
        for w in self.windows.values():
            w.unbacked = False

    def reset_windows(self):
        """Only the default window, empty: every TCE put before reads 0."""
        old = self.windows.get(PHB1_LIOBN)
        self.windows = {PHB1_LIOBN: Win(0, 12, self.default_size >> 12)}
        if old:
            self.windows[PHB1_LIOBN].zeros = set(old.tces)

    def valid(self):
        """The host mappings a replay gives: {iova: (gpa, perm)}, 4 KiB
        pages."""
        return valid_pages([(w.bus, w.shift, w.tces)
                            for w in self.windows.values() if not w.unbacked],
                           RAM)

    def expected(self, ram_vaddr):
        return coalesce((iova, 4096, ram_vaddr + gpa, perm)
                        for iova, (gpa, perm) in self.valid().items())


class Scenario:
    def __init__(self, name, op, setup, flavour="powernv", reduced=False):
        self.name, self.op, self.setup, self.flavour = name, op, setup, flavour
        self.reduced = reduced
        pseries = flavour == "pseries"
        # A pSeries host takes 1-level tables only: stock QEMU 10.0 (4 KiB
        # pages here) asks 2 levels for a 1 GiB window of 4 KiB TCEs, 1 for
        # 512 MiB, so 512 MiB runs the same with and without the levels fix.
        self.default_size = 512 * MiB if pseries else 1 * GiB
        self.ddw_shift = 28 if pseries else 30
        self.plugs_in_setup = "plug" in setup


SCENARIOS = [
    Scenario("hotplug", "plug", ["tces0"], reduced=True),
    Scenario("hotplug-ddw", "plug", ["ddw", "tces0", "tces64"]),
    Scenario("hotplug-pseries", "plug", ["tces0"], "pseries"),
    Scenario("unplug", "unplug", ["ddw", "tces0", "tces64", "plug"],
             reduced=True),
    Scenario("ddw-create", "ddw-create", ["tces0", "plug"], reduced=True),
    Scenario("ddw-create-pseries", "ddw-create", ["tces0", "plug"], "pseries",
             reduced=True),
    Scenario("ddw-remove", "ddw-remove", ["tces0", "plug", "ddw", "tces64"],
             reduced=True),
    Scenario("ddw-remove-last", "ddw-remove",
             ["tces0", "plug", "ddw", "tces64", "remove-default"]),
    Scenario("system-reset", "reset", ["ddw", "tces0", "tces64", "plug"],
             reduced=True),
    Scenario("system-reset-pseries", "reset", ["ddw", "tces0", "tces64", "plug"],
             "pseries", reduced=True),
]


class Dead(Exception):
    """QEMU went away during a step."""


class Run:
    """One QEMU: set-up, operation, checks, clean hot-plug."""

    def __init__(self, sweep, sc, rules, label):
        self.sw, self.sc, self.rules, self.label = sweep, sc, rules, label
        self.problems = []          # what failed a check
        self.outcome = None         # refused | survived | clean | died
        self.detail = ""
        self.injected = []          # the op's injected-failure log lines
        self.note = ""

    def host_broken(self):
        return any(f"point={p} " in l + " " for l in self.injected
                   for p in PSERIES_FAILED_LIST)

    def start(self):
        self.dir = tempfile.mkdtemp(prefix=f"{self.sc.name}-", dir=self.sw.tmp)
        env = {"VFIO_MODEL_FAIL": ",".join(self.rules) or None,
               "VFIO_MODEL_FLAVOUR": self.sc.flavour,
               "VFIO_MODEL_KERNEL": None, "VFIO_MODEL_CALLS": None}
        self.m = Machine(self.sw.qemu, self.dir, "qemu", model=self.sw.model,
                         mem_mib=RAM_MIB, model_env=env,
                         dma_win_size=self.sc.default_size
                         if self.sc.default_size != 1 * GiB else None)
        self.w = World(self.sc.default_size)
        self.fd_base = self.m.fd_census()

    def check_fds(self, when):
        """With no device attached, QEMU holds no more fds than at its start,
        but the model's own: its state socket (made at the first open of a
        /dev/vfio node) and the memfd behind the device's regions (made at
        its first open), vfio-model/README.md (Machine.model_own_fds())."""
        diff = self.m.fd_diff(self.fd_base)
        if diff:
            self.problems.append(f"{when}: QEMU's fds: {diff}")

    # --- steps ------------------------------------------------------------

    def put(self, liobn, tces):
        win = self.w.windows[liobn]
        self.m.put_tces(liobn, win.bus, win.shift, tces)
        win.tces.update(tces)

    def step(self, name):
        m, w = self.m, self.w
        if name == "tces0":
            self.put(PHB1_LIOBN, default_tces(w.windows[PHB1_LIOBN].n))
        elif name == "tces64":
            self.put(PHB1_LIOBN64, ddw_tces(w.windows[PHB1_LIOBN64].n))
        elif name == "ddw":
            liobn, bus = m.create_ddw(16, self.sc.ddw_shift)
            w.windows[liobn] = Win(bus, 16, 1 << (self.sc.ddw_shift - 16))
        elif name == "remove-default":
            m.remove_ddw(PHB1_LIOBN)
            del w.windows[PHB1_LIOBN]
        elif name == "plug":
            kind, val = m.plug(DEV)
            if kind == "error":
                raise RuntimeError(f"device_add: {val}")
            w.attach()
        else:
            raise ValueError(name)

    def setup(self):
        for s in self.sc.setup:
            self.step(s)

    def operation(self):
        """Run the operation: sets outcome refused/survived (or problems)."""
        m, w, op = self.m, self.w, self.sc.op
        self.op_mark = m.model_log_size()
        if op == "plug":
            kind, val = m.plug(DEV)
            if kind == "error":
                self.outcome, self.detail = "refused", val
                if HOST1 not in val:
                    self.problems.append(f"device_add error does not name the "
                                         f"device: {val!r}")
            else:
                self.outcome = "ok"
                w.attach()
        elif op == "unplug":
            m.unplug(DEV, timeout=30)
            self.outcome, w.attached = "ok", False
        elif op == "ddw-create":
            status, liobn, bus = m.try_create_ddw(16, self.sc.ddw_shift)
            if status == 0:
                self.outcome = "ok"
                if (liobn, bus) != (PHB1_LIOBN64, PHB1_DDW_ADDR):
                    self.problems.append(f"DDW LIOBN {liobn:#x} at {bus:#x}")
                w.windows[liobn] = Win(bus, 16, 1 << (self.sc.ddw_shift - 16))
            else:
                self.outcome, self.detail = "refused", f"RTAS status {status:#x}"
                if status != RTAS_HW_ERROR:
                    self.problems.append(f"ibm,create-pe-dma-window: RTAS "
                                         f"status {status:#x}, not -1")
        elif op == "ddw-remove":
            status = m.try_remove_ddw(PHB1_LIOBN64)
            if status != 0:
                self.problems.append(f"ibm,remove-pe-dma-window: RTAS status "
                                     f"{status:#x}")
            del w.windows[PHB1_LIOBN64]
            if not w.windows:           # the last one: the default comes back
                w.reset_windows()
                self.default_window_back()
            self.outcome = "ok"
        elif op == "reset":
            m.qmp.cmd("system_reset")
            m.qmp.wait_event("RESET", timeout=30)
            w.reset_windows()
            self.default_window_back()
            self.outcome = "ok"
        else:
            raise ValueError(op)

    def default_window_back(self):
        """The default window is back; if its creation failed, the host
        may have refused it, which QEMU says on its stderr (the line can
        land in the file a little after the RTAS or QMP reply)."""
        if not self.w.attached or not any(
                "op=TCE_CREATE" in l for l in self.m.injected(self.op_mark)):
            return
        deadline = time.monotonic() + 5
        while UNBACKED not in self.m.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.w.windows[PHB1_LIOBN].unbacked = UNBACKED in self.m.output()

    # --- checks -----------------------------------------------------------

    def phb0_tcet(self):
        """QOM path of PHB 0's default table (its id is not fixed)."""
        for p in self.m.qmp.cmd("qom-list", path="/machine/unattached"):
            if p["type"] == "child<spapr-pci-host-bridge>":
                return f"/machine/unattached/{p['name']}/tce-table-80000000"
        raise RuntimeError("no PHB 0")

    def check(self, when):
        """Check QEMU against the World; problems are prefixed by when."""
        m, w = self.m, self.w
        bad = []
        if m.status() != "running":
            bad.append(f"status {m.status()}")
        devs = m.devices()
        if (DEV in devs) != w.attached:
            bad.append(f"vfio-pci {'missing' if w.attached else 'still there'}"
                       f" (devices {devs})")
        # windows and TCEs
        for liobn, default_bus in ((PHB1_LIOBN, 0), (PHB1_LIOBN64, PHB1_DDW_ADDR)):
            win = w.windows.get(liobn)
            rc, regs = m.qt.hcall(H_GET_TCE, liobn, win.bus if win else default_bus)
            if (rc == H_SUCCESS) != bool(win):
                bad.append(f"window {liobn:#x} {'missing' if win else 'still there'}"
                           f" (H_GET_TCE {rc:#x})")
                continue
            if win:
                for i, tce in sorted(list(win.tces.items()) +
                                     [(i, 0) for i in win.zeros - set(win.tces)]):
                    rc, regs = m.qt.hcall(H_GET_TCE, liobn, win.bus + (i << win.shift))
                    if rc != H_SUCCESS or regs[0] != tce:
                        bad.append(f"TCE {liobn:#x}[{i}] reads {rc:#x}/{regs[0]:#x}, "
                                   f"not {tce:#x}")
                        break
        # VFIO use of the tables (QEMU without the series has no such
        # property: --qemu build/bin/qemu-system-ppc64-stock-hcall)
        for liobn, path in ((PHB1_LIOBN, PHB1_TCET), (PHB1_LIOBN64, PHB1_TCET64),
                            (None, self.phb0_tcet()))[:3 if self.sw.vfio_qom(m) else 0]:
            st = m.tcet_state(path)
            want = w.attached and liobn in w.windows and \
                not w.windows[liobn].unbacked
            used = st["x-vfio-starts"] - st["x-vfio-stops"]
            if st["x-vfio-in-use"] != want or used != int(want) or st["x-in-kvm"]:
                bad.append(f"{path.rsplit('/', 1)[-1]}: in-use "
                           f"{st['x-vfio-in-use']}, starts {st['x-vfio-starts']} "
                           f"stops {st['x-vfio-stops']}, in-kvm {st['x-in-kvm']}; "
                           f"want in use {want}")
        # the model
        objs = m.model_objects()
        if not w.attached:
            if objs:
                bad.append("the model holds, with no device: " + "; ".join(
                    k + " " + " ".join(f"{a}={b}" for a, b in kv.items())
                    for k, kv in objs[:6]))
        else:
            bad += self.check_model(objs)
        self.problems += [f"{when}: {b}" for b in bad]
        return not bad

    def check_model(self, objs):
        m, w = self.m, self.w
        bad = []
        by = collections.defaultdict(list)
        for kind, kv in objs:
            by[kind].append(kv)
        cont = by["container"]
        if len(cont) != 1 or cont[0].get("groups") != "7" or \
                cont[0].get("fd") != "open":
            return [f"containers {cont}"]
        v2 = cont[0].get("iommu") == "spapr-v2"
        groups = [(g.get("g"), g.get("fd")) for g in by["group"]]
        devs = [(d.get("dev"), d.get("opens")) for d in by["device"]]
        if groups != [("7", "open")] or devs != [(HOST1, "1")]:
            bad.append(f"groups {groups}, devices {devs}")
        mem = [int(r["size"], 16) for r in by["memory"]]
        if v2 and mem != [RAM]:
            bad.append(f"preregistered {[hex(x) for x in mem]}, not guest RAM")
        wins = sorted((int(r["start"], 16), int(r["size"], 16)) for r in by["window"])
        want = sorted((x.bus, x.n << x.shift) for x in w.windows.values()
                      if not x.unbacked)
        if not v2:
            # QEMU fell back to v1 (SET_IOMMU of v2 failed): the host's own
            # 32-bit window, which must hold the guest's (QEMU makes none)
            want = [(0, wins[0][1])] if wins and all(
                b + s <= wins[0][1] for b, s in want) else want
        if wins != want:
            bad.append(f"host windows {[(hex(a), hex(b)) for a, b in wins]}, "
                       f"want {[(hex(a), hex(b)) for a, b in want]}")
        maps = m.model_mappings()
        valid = w.valid()
        try:
            vaddr = m.ram_vaddr()
        except RuntimeError:
            # v1 preregisters nothing: RAM's address from a mapping
            vaddr = next((va - valid[iova][0] for iova, _, va, _ in maps
                          if iova in valid), None)
            if vaddr is None:
                if maps or valid:
                    bad.append(f"no mapping of a valid TCE ({len(maps)} mappings)")
                return bad
        got = coalesce(maps)
        exp = w.expected(vaddr)
        if got != exp:
            gp = {}
            for iova, size, va, perm in got:
                for k in range(0, size, 4096):
                    gp[iova + k] = (va + k - vaddr, perm)
            vp = valid
            missing = {i: v for i, v in vp.items() if gp.get(i) != v and i not in gp}
            other = [i for i in set(vp) | set(gp) if vp.get(i) != gp.get(i)
                     and i not in missing]
            if missing and not other:
                bad.append(f"{len(missing)} valid TCE pages not mapped by the "
                           f"host (first iova {min(missing):#x})")
            else:
                bad.append("host mappings differ from the valid TCEs:\n" +
                           describe_diff(exp, got))
        return bad

    # --- the run ------------------------------------------------------------

    def go(self):
        """Set up, operate, check, clean plug."""
        self.start()
        m, w = self.m, self.w
        try:
            try:
                self.setup()
            except Exception as e:      # noqa: BLE001
                self.problems.append(f"set-up: {type(e).__name__}: {e}")
                return
            mark = m.model_log_size()
            early = m.injected(0, mark)
            if early:
                self.problems.append(f"a failure was injected in the set-up "
                                     f"(the hit count is wrong): {early[0]}")
                return
            try:
                self.operation()
            except (QMPError, QTestError, OSError) as e:
                try:
                    m.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.problems.append(f"operation: {type(e).__name__}: {e}")
                    return
                raise Dead(str(e)) from None
            mark2 = m.model_log_size()
            self.injected = m.injected(mark, mark2)
            if not self.injected:
                if self.outcome == "refused":
                    self.problems.append(f"refused with no failure injected: "
                                         f"{self.detail}")
                self.outcome = "clean"
            elif self.outcome == "ok":
                self.outcome = "survived"
            self.check("after the operation")
            if not w.attached:
                self.check_fds("after the operation")
            # The clean hot-plug: only when no injected failure is left
            if not self.injected:
                return
            if len(self.injected) != len(self.rules):
                self.problems.append(f"{len(self.injected)} of the {len(self.rules)} "
                                     f"failures injected (the count run made "
                                     f"{len(self.rules)}: not deterministic?)")
                return
            if w.attached:
                m.unplug(DEV, timeout=30)
                w.attached = False
                if not self.check("unplug after"):
                    return
                self.check_fds("unplug after")
            kind, val = m.plug(DEV)
            if self.host_broken():
                self.note = "the host refuses the clean hot-plug (failed list)"
                if kind != "error" or HOST1 not in val:
                    self.problems.append(f"clean hot-plug on a PE on the pSeries "
                                         f"failed list: {kind} {val}")
                else:
                    self.check("clean hot-plug refused by the host")
                    self.check_fds("clean hot-plug refused by the host")
                return
            if kind == "error":
                self.problems.append(f"clean hot-plug refused: {val}")
                return
            w.attach()
            if not self.check("clean hot-plug"):
                return
            for liobn, (i, tce) in NEW_TCE.items():
                if liobn in w.windows:
                    self.put(liobn, {i: tce})
            if not self.check("a new TCE after the clean hot-plug"):
                return
            m.unplug(DEV, timeout=30)
            w.attached = False
            self.check("unplug after the clean hot-plug")
            self.check_fds("unplug after the clean hot-plug")
            late = m.injected(mark2)
            if late:
                self.problems.append(f"a failure was injected after the "
                                     f"operation: {late[0]}")
        except Dead as e:
            self.outcome, self.detail = "died", str(e)
        except (QMPError, QTestError) as e:
            self.problems.append(f"{type(e).__name__}: {e}")
            if not m.alive():
                self.outcome = "died"
        except Exception as e:          # noqa: BLE001
            self.problems.append(f"{type(e).__name__}: {e}")
        finally:
            self.finish()

    def finish(self):
        m = self.m
        if self.outcome == "died" or not m.alive():
            m.kill()
            m.close()
            if self.outcome != "died":
                self.outcome = "died"
            status = m.proc.returncode
        else:
            status = m.close()
        out = m.output()
        fatal = [l for l in out.splitlines() if FATAL.search(l)]
        if not self.injected:
            self.injected = m.injected(0)   # to name the failure if it died
        self.classify(status, out, fatal)
        if not self.problems and not self.sw.a.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def classify(self, status, out, fatal):
        if self.outcome == "died":
            self.problems.append(f"QEMU died ({status}): {self.detail}; " +
                                 "; ".join(fatal)[:400])
            return
        if status != 0:
            self.problems.append(f"QEMU exited with {status}")
        if fatal:
            self.problems.append("QEMU printed: " + "; ".join(fatal)[:400])


class Sweep:
    def __init__(self, args):
        self.a = args
        self.qemu, self.model = args.qemu, args.model
        self.tmp = tempfile.mkdtemp(prefix="sweep-")
        self.runs = 0
        self._vfio_qom = None

    def vfio_qom(self, m):
        """Whether this QEMU has the series' x-vfio-* table properties."""
        if self._vfio_qom is None:
            self._vfio_qom = any(p["name"] == "x-vfio-in-use" for p in
                                 m.qmp.cmd("qom-list", path=PHB1_TCET))
            if not self._vfio_qom:
                print("note: this QEMU has no x-vfio-in-use: the tables' VFIO "
                      "use is not checked", flush=True)
        return self._vfio_qom

    def run(self, sc, rules, label):
        r = Run(self, sc, rules, label)
        r.go()
        self.runs += 1
        if self.a.verbose or r.problems:
            what = f"FAIL: {'; '.join(r.problems)}" if r.problems else r.outcome
            print(f"  {sc.name} {label}: {self.point(r)}: {what}", flush=True)
        return r

    @staticmethod
    def point(r):
        if not r.injected:
            return "no failure injected"
        kv = [dict(x.split("=", 1) for x in l.split()[1:] if "=" in x)
              for l in r.injected]
        names = collections.Counter(f"{k.get('op')} {k.get('point')} "
                                    f"{k.get('errno')}" for k in kv)
        return ", ".join(f"{n}{f' x{c}' if c > 1 else ''}" for n, c in names.items())

    def setup_hits(self, sc, kind):
        """How many hits of kind ("any" or a point) the set-up makes: the
        largest M whose failure VFIO_MODEL_FAIL=kind:M the set-up injects."""
        if not sc.plugs_in_setup:
            return 0

        def hit(n):
            r = Run(self, sc, [f"{kind}:{n}"], "calibrate")
            r.start()
            try:
                try:
                    r.setup()
                except Exception:       # noqa: BLE001 (refused by the failure)
                    pass
                return bool(r.m.injected())
            finally:
                r.m.kill()
                r.m.close()
                shutil.rmtree(r.dir, ignore_errors=True)
                self.runs += 1

        if not hit(1):
            return 0
        lo, hi = 1, 2
        while hit(hi):
            lo, hi = hi, hi * 2
            if hi > 1 << 16:
                raise RuntimeError(f"{sc.name}: {kind} never stops failing the set-up")
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if hit(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def count_consumed(self, sc, rules):
        """Set-up and operation only: how many of rules were injected (all
        of them if the set-up fails: the checked run then says why)."""
        r = Run(self, sc, rules, "count")
        r.start()
        try:
            r.setup()
            try:
                r.operation()
            except (QMPError, QTestError, OSError):
                pass                    # QEMU died: the checked run says so
            return len(r.m.injected())
        except Exception:               # noqa: BLE001
            return len(rules)
        finally:
            r.m.kill()
            r.m.close()
            shutil.rmtree(r.dir, ignore_errors=True)
            self.runs += 1

    def scenario(self, sc, size):
        t0 = time.monotonic()
        runs0 = self.runs
        results = []                    # (mode, label, Run)
        stride = self.a.stride if size == "reduced" else 1
        # 1. any:K+N
        k_any = self.setup_hits(sc, "any")
        seq = []                        # points the clean operation hits, in order
        n = 1
        while True:
            r = self.run(sc, [f"any:{k_any + n}"], f"any:{k_any + n} [op {n}]")
            results.append(("any", n, r))
            if not r.injected:
                break
            pt = [x.split("point=")[1].split()[0] for x in r.injected]
            seq.append(pt[0])
            n += stride
            if n > 500:
                r.problems.append("more than 500 failure points: stopping")
                break
        hits = collections.Counter(seq)
        # 2. the other errnos and 3. persistent failures, per point: in
        # full, every point hit and each of its hits; reduced, the first hit
        # of the points --persist names only
        full = size == "full"
        persist = set(hits) if full else set(self.a.persist)
        for p in sorted(set(hits) | persist if full else persist):
            k_p = self.setup_hits(sc, p)
            for j in range(1, (hits[p] if full else 1) + 1):
                if full:
                    for e in POINT_ERRNOS[p][1:]:
                        r = self.run(sc, [f"{p}:{k_p + j}:{e}"],
                                     f"{p}:{k_p + j}:{e} [op {j}]")
                        results.append(("errno", (p, j, e), r))
                if p not in persist:
                    continue
                rules = [f"{p}:{k_p + j + i}" for i in range(MAX_RULES)]
                c = self.count_consumed(sc, rules)
                if c == 0:
                    continue            # the operation does not hit p
                r = self.run(sc, rules[:c],
                             f"{p}:{k_p + j}..{k_p + j + c - 1} [op {j}..{j + c - 1}]"
                             if c > 1 else f"{p}:{k_p + j} [op {j}, the last]")
                results.append(("persist", (p, j, c), r))
        return Summary(sc, results, k_any, hits, self.runs - runs0,
                       time.monotonic() - t0, stride)


class Summary:
    def __init__(self, sc, results, k_any, hits, runs, secs, stride):
        self.sc, self.results, self.hits = sc, results, hits
        self.runs, self.secs, self.k_any, self.stride = runs, secs, k_any, stride
        self.consumed = [r for _, _, r in results if r.injected]
        self.outcomes = collections.Counter(
            "FAIL" if r.problems else r.outcome
            for _, _, r in results if r.injected)
        self.fails = [(mode, lab, r) for mode, lab, r in results if r.problems]
        self.n_any = sum(1 for m, _, r in results if m == "any" and r.injected)
        self.n_errno = sum(1 for m, _, r in results if m == "errno" and r.injected)
        self.n_persist = sum(1 for m, _, r in results if m == "persist")
        self.n_host_broken = sum(1 for _, _, r in results if r.note)

    def line(self):
        sc = self.sc
        any_desc = ("any:1 not hit: the operation makes no call that can fail"
                    if not self.n_any else f"any:1..{self.n_any}" if self.stride == 1
                    else f"any:1..{(self.n_any - 1) * self.stride + 1} every "
                         f"{self.stride}")
        parts = [f"{len(self.consumed)} points ({any_desc}"]
        if self.n_errno:
            parts.append(f", {self.n_errno} other errnos")
        if self.n_persist:
            parts.append(f", {self.n_persist} persistent")
        o = self.outcomes
        return (f"{sc.name}: " + "".join(parts) + f"), {o['refused']} refused cleanly, "
                f"{o['survived']} survived, {o['FAIL']} FAIL"
                + (f" ({self.n_host_broken} left the host's PE on its failed list: "
                   f"the clean hot-plug refused by the host, as it must be)"
                   if self.n_host_broken else "") + "; "
                f"{len(self.hits)} fail points hit "
                f"({', '.join(f'{p} x{c}' for p, c in sorted(self.hits.items()))}); "
                f"set-up hits {self.k_any}; {self.runs} QEMU runs, {self.secs:.0f} s")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("full", "reduced"), default="full",
                   help="full: every N, the other errnos, persistent failures, "
                        "every scenario; reduced: the scenarios marked so, "
                        "every --stride-th N of any:N, no per-point runs")
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--persist", default="pnv_pci_table_alloc",
                   help="with --size reduced: the points (comma list) whose "
                        "persistent failure from their first hit is run "
                        "(default %(default)s: a host out of memory for TCE "
                        "tables; '' for none)")
    p.add_argument("--scenarios", default="",
                   help="comma list (default: all, or the reduced set)")
    p.add_argument("--verbose", action="store_true", help="a line per run")
    p.add_argument("--keep", action="store_true",
                   help="keep every run's directory (QEMU's output, the model's log)")
    p.add_argument("--qemu", default=os.path.join(root, "build/bin/qemu-system-ppc64"))
    p.add_argument("--model", default=os.path.join(root, "build/lib/libvfio-model.so"))
    a = p.parse_args()
    a.persist = [x for x in a.persist.split(",") if x]
    bad = set(a.persist) - set(POINT_ERRNOS)
    if bad:
        p.error(f"unknown fail points {sorted(bad)}")
    names = [s for s in a.scenarios.split(",") if s]
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}")
    scs = [s for s in SCENARIOS if (s.name in names if names else
                                    a.size == "full" or s.reduced)]
    sw = Sweep(a)
    t0 = time.monotonic()
    failed = 0
    summaries = []
    print(f"fault sweep ({a.size}): {len(scs)} scenarios; work directory {sw.tmp}",
          flush=True)
    for sc in scs:
        s = sw.scenario(sc, a.size)
        summaries.append(s)
        print(s.line(), flush=True)
        if s.fails:
            failed += 1
            first = s.fails[0][2]
            print(f"FAIL sweep/{sc.name}: {len(s.fails)} of {len(s.results)} runs; "
                  f"first {first.label} ({sw.point(first)}): "
                  f"{'; '.join(first.problems)[:600]} (QEMU output in {first.dir})",
                  flush=True)
        else:
            o = s.outcomes
            print(f"PASS sweep/{sc.name}: " + (
                  f"{len(s.consumed)} points, {o['refused']} refused cleanly, "
                  f"{o['survived']} survived"
                  if s.consumed else "no failure point (the operation makes no "
                  "kernel call that can fail); the operation itself checked"),
                  flush=True)
    total = collections.Counter()
    for s in summaries:
        total.update(s.outcomes)
    print(f"summary: {sum(len(s.consumed) for s in summaries)} failure points over "
          f"{len(summaries)} operations: {total['refused']} refused cleanly, "
          f"{total['survived']} survived, "
          f"{total['FAIL']} FAIL; {sw.runs} QEMU runs in "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    if not failed and not a.keep:
        shutil.rmtree(sw.tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
