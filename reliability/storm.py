#!/usr/bin/env python3
"""The storm (issue 11, part 3): N cycles of random operations on one
QEMU per host flavour, two host groups on two PHBs, from a printed seed.

One pseries QEMU (-accel qtest, 512 MiB) with PHB 1 and PHB 2
(spapr-pci-host-bridge index=1 and index=2) and the VFIO model preloaded
with two host devices in two IOMMU groups (0000:01:00.0 in group 7,
0000:02:00.0 in group 8), for each host flavour in turn: powernv (groups
on one PHB share a container) and pseries (a pSeries L1: every group its
own container, QEMU opens a second one when the model refuses a group
with SET_CONTAINER EPERM; windows of one level only; the default window
is 512 MiB there, as for stock QEMU 10.0, which asks more levels of a
1 GiB one). Each cycle is one operation, drawn at random among
those the state allows:

  plug          device_add vfio-pci of an unplugged device on PHB 1 or 2
                (one device per PHB or both on one: the draw mixes them)
  unplug        device_del + RTAS isolate of its DRC, DEVICE_DELETED; one
                in four by device_del + system_reset instead (the reset
                releases it)
  ddw-create    ibm,create-pe-dma-window on a PHB with a free window (4 or
                64 KiB pages, 256 MiB to 1 GiB), mostly on a PHB with a
                device attached
  ddw-remove    ibm,remove-pe-dma-window of the 64-bit window, or of the
                default one (removing the last window brings the default
                back, spapr_phb_dma_reset(), unless it was LIOBN n=0's:
                QEMU's def_win, set at the first reset, is never cleared)
  system_reset  every PHB back to its default window, empty
  tces          a few H_PUT_TCE (RAM pages RW/RO/WO, or clears) in a window

Each operation's outcome is predicted from the model's rules
(vfio-model/README.md): QEMU places a window at 0 when that is free, else
at 1 << 59 (spapr_rtas_ddw.c), and the host puts a container's first
window at 0 and its second at 1 << 59, so a hot-plug that needs a new
container for a PHB whose only window is at 1 << 59 is refused ("Host
doesn't support DMA window"); a pSeries host takes one-level tables only,
which QEMU asks it for (upstream d5e8e6195bcd, backported in the 10.0
stack), and a pSeries host makes no default
window while its 64-bit one is there (TCE_CREATE EPERM: a window at 0
after the guest removed the default one but kept its DDW). Such refusals
are counted as expected; any other outcome fails. On pSeries the storm
plugs no second device on a PHB without any window (the group would join
the first one's window-less container, after which no window can be made
for the two: at the next reset QEMU keeps the default window without host
backing, vfio-start-stop patch 19, which the sweep checks and the storm does not
model).
Every --check-every cycles, and at the end:

  * QEMU running, no assertion/abort/hardware error/sanitizer report;
  * the devices on the buses are those plugged; every window of PHB 1 and
    2 is there exactly when the guest made it, every TCE put reads back;
  * x-vfio-in-use of each table (PHB 0, 1, 2; both LIOBNs) is true exactly
    when the window exists and a device is attached on its PHB,
    x-vfio-starts - x-vfio-stops matches, x-in-kvm false;
  * the model: the containers the flavour calls for (powernv one per PHB
    with devices, pseries one per device), each with its groups open, the
    devices opened once, guest RAM preregistered, exactly its PHB's
    windows, and mappings equal to the valid TCEs of those windows;
  * with no device attached, QEMU's fds are those it had at start but the
    model's own (Machine.model_own_fds()); with devices attached, the same
    as the last time that placement was checked.

At the end every device is unplugged, then: every table's x-vfio-in-use
false with starts == stops, the model empty (no container, group, device,
window, preregistration or mapping), QEMU's fds back to those at start
(the model's own excepted), QEMU exits 0 on quit, and its output has no
sanitizer report (ASan "ERROR: AddressSanitizer", UBSan "runtime error:",
"LeakSanitizer"); the result lines say when QEMU has no sanitizer.

On a powernv host with a 6.11+ kernel (the model's default, 6.12) a group
leaving a shared container clears every TCE of the container's windows,
those of the group that stays too (kernel 4ba2fdff2eb1, vfio-model/README.md
"sibling detach clears"): the storm checks that the model cleared them and
that QEMU mapped them all again (series patch "vfio/container: Replay a
shared sPAPR container when a group leaves").

Usage: storm.py [--cycles N] [--seed S] [--flavours powernv,pseries]
                [--check-every K] [--qemu Q] [--model M] [--verbose]
Prints the operations done per type, "PASS storm/FLAVOUR/CHECK: ..." /
"FAIL storm/FLAVOUR/CHECK: why" per check and flavour, and exits non-zero
on any failure. The seed is printed; --seed S --flavours F reruns one.
"""

import argparse
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FATAL, H_GET_TCE, H_SUCCESS, SANITIZER, TCE_RO, TCE_RW, TCE_WO, MiB, GiB,
    Machine, QMPError, QTestError, coalesce, describe_page_diff,
    model_pages, phb_buid, phb_liobn, valid_pages)

RAM_MIB = 512
RAM = RAM_MIB * MiB
DDW_ADDR = 1 << 59                          # dma64_win_addr of every PHB
PHBS = (1, 2)
RTAS_HW_ERROR = 0xffffffff

# The two host devices: qdev id -> (host BDF, IOMMU group, slot)
DEVICES = {"vfioA": ("0000:01:00.0", 7, 1), "vfioB": ("0000:02:00.0", 8, 2)}
MODEL_DEVICES = ",".join(f"{h}@{g}" for h, g, _ in DEVICES.values())

FLAVOURS = {
    # default window; the largest window the host takes (None: any drawn)
    "powernv": dict(default=1 * GiB, max_window=None),
    "pseries": dict(default=512 * MiB, max_window=None),
}
DDW_SHIFTS = (28, 28, 29, 30)               # 256 MiB .. 1 GiB
DDW_PAGE_SHIFTS = (16, 16, 16, 12)

WEIGHTS = {"plug": 3, "unplug": 3, "ddw-create": 2, "ddw-remove": 2,
           "system_reset": 1, "tces": 2}

def sanitizers_of(qemu):
    """The sanitizer runtimes QEMU links ('' if none), from readelf -d."""
    try:
        out = subprocess.run(["readelf", "-d", os.path.realpath(qemu)],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    names = [n for lib, n in (("libasan", "ASan"), ("libubsan", "UBSan"),
                              ("liblsan", "LSan")) if lib + ".so" in out]
    return "+".join(names)


class Win:
    def __init__(self, liobn, bus, shift, size):
        self.liobn, self.bus, self.shift, self.size = liobn, bus, shift, size
        self.tces = {}              # index -> TCE put (0 once cleared)

    @property
    def n(self):
        return self.size >> self.shift


class Problem(Exception):
    pass


class Storm:
    """One flavour's storm: one QEMU, the guest's view of what it asked
    for (windows, TCEs, devices), the predictions and the checks."""

    def __init__(self, a, flavour, tmp, sanitized):
        self.a, self.flavour, self.sanitized = a, flavour, sanitized
        self.fl = FLAVOURS[flavour]
        self.rng = random.Random(f"{a.seed}:{flavour}")
        self.dir = os.path.join(tmp, flavour)
        self.ops = collections.Counter()        # op -> done
        self.refused = collections.Counter()    # op -> refused as predicted
        self.placements = collections.Counter()
        self.history = []                       # the last operations
        self.checks = 0
        self.remapped_pages = 0                 # cleared by a sibling's detach
        self.sibling_events = 0
        self.fd_by_placement = {}
        self.results = []                       # (PASS|FAIL, check, text)
        self.failed_at = None
        self.model_errors = collections.Counter()
        self.cycle, self.secs = 0, 0.0

    # --- the guest's view -------------------------------------------------

    def default_windows(self, phb):
        return {phb_liobn(phb, 0): Win(phb_liobn(phb, 0), 0, 12, self.fl["default"])}

    def attached_on(self, phb):
        return sorted(d for d, p in self.attached.items() if p == phb)

    def valid(self, phb):
        """{iova: (gpa, perm)} in 4 KiB pages: what VFIO maps for PHB phb."""
        return valid_pages([(w.bus, w.shift, w.tces)
                            for w in self.windows[phb].values()], RAM)

    # --- the host's rules (vfio-model/README.md) ------------------------------

    def host_takes(self, wins):
        """Whether a new container takes windows (replayed in address order).
        Returns the reason the host refuses them, or ''."""
        have = []
        for w in sorted(wins, key=lambda w: w.bus):
            why = self.host_takes_window(w, have)
            if why:
                return why
            have.append(w)
        return ""

    def host_takes_window(self, w, have):
        """Whether a container with windows have takes window w: the host
        makes a new window in its first free slot, slot 0 at 0 and slot 1 at
        1 << 59 (QEMU removes a window the host put elsewhere: "Host doesn't
        support DMA window"); a pSeries host makes no window in slot 0 (its default window again: 4 KiB pages,
        at most tce32_size, which QEMU's windows here always are) while its
        64-bit window is there (spapr_tce_create_table(): EPERM)."""
        slot = 0 if all(h.bus != 0 for h in have) else 1
        start = 0 if slot == 0 else DDW_ADDR
        if w.bus != start:
            return f"the host puts window {slot} at {start:#x}, not {w.bus:#x}"
        mx = self.fl["max_window"]
        if mx and w.size > mx:
            return f"the host takes windows up to {mx >> 20} MiB, not {w.size >> 20} MiB"
        if self.flavour == "pseries" and slot == 0 and \
                any(h.bus == DDW_ADDR for h in have):
            return ("a pSeries host makes no default window while its 64-bit "
                    "window is there")
        return ""

    def new_container(self, phb):
        return self.flavour == "pseries" or not self.attached_on(phb)

    # --- the run --------------------------------------------------------------

    def start(self):
        env = dict(os.environ)
        # The model comes before the ASan runtime QEMU links; UBSan goes on
        # after a report (each counted), ASan stops at its first.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [
            env.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0",
            f"detect_leaks={1 if self.a.leaks else 0}"]))
        env["UBSAN_OPTIONS"] = ":".join(filter(None, [
            env.get("UBSAN_OPTIONS", ""), "print_stacktrace=1"]))
        model_env = {"VFIO_MODEL_DEVICES": MODEL_DEVICES,
                     "VFIO_MODEL_FLAVOUR": self.flavour,
                     "VFIO_MODEL_FAIL": None, "VFIO_MODEL_KERNEL": None,
                     "VFIO_MODEL_CALLS": None}
        win = self.fl["default"]
        self.m = Machine(self.a.qemu, self.dir, "qemu", model=self.a.model,
                         mem_mib=RAM_MIB, env=env, model_env=model_env,
                         dma_win_size=None if win == 1 * GiB else win,
                         extra=["-device", "spapr-pci-host-bridge,index=2,id=phb2"])
        self.windows = {p: self.default_windows(p) for p in PHBS}
        self.attached = {}                  # dev -> phb
        self.fd_base = self.m.fd_census()
        self.fd_start = sum(self.fd_base.values())
        self.log_mark = 0
        self.tables = self.table_paths()

    def table_paths(self):
        out = {}
        for p in self.m.qmp.cmd("qom-list", path="/machine/unattached"):
            if p["type"] == "child<spapr-pci-host-bridge>":
                phb0 = f"/machine/unattached/{p['name']}"
                break
        else:
            raise Problem("no PHB 0")
        for phb, path in ((0, phb0), (1, "/machine/peripheral/phb1"),
                          (2, "/machine/peripheral/phb2")):
            for n in (0, 1):
                out[(phb, n)] = f"{path}/tce-table-{phb_liobn(phb, n):x}"
        return out

    def note(self, text):
        self.history.append(text)
        del self.history[:-12]
        if self.a.verbose:
            print(f"  [{self.flavour} {self.cycle}] {text}", flush=True)

    def model_log_since(self):
        """New model log lines since the last call; non-injected errors are
        counted by op and errno (the model's rules refusing something)."""
        end = self.m.model_log_size()
        lines = self.m.model_log_lines("", self.log_mark, end)
        self.log_mark = end
        for l in lines:
            if l.startswith("error ") and " injected=1" not in l:
                kv = dict(w.split("=", 1) for w in l.split()[1:] if "=" in w)
                self.model_errors[f"{kv.get('op')} {kv.get('errno')}"] += 1
        return lines

    def run(self):
        self.start()
        t0 = time.monotonic()
        self.cycle = 0
        try:
            for self.cycle in range(1, self.a.cycles + 1):
                op = self.draw()
                getattr(self, "op_" + op.replace("-", "_"))()
                self.model_log_since()
                if self.cycle % self.a.check_every == 0:
                    self.check(f"cycle {self.cycle}")
            self.cycle = "end"
            self.finish_devices()
        except Exception as e:          # noqa: BLE001 (Problem, QMP, QEMU gone...)
            self.failed_at = (self.cycle, f"{type(e).__name__}: {e}")
        self.secs = time.monotonic() - t0
        self.end_checks()

    def draw(self):
        cand = {}
        if len(self.attached) < len(DEVICES) and \
                any(self.plug_allowed(p) for p in PHBS):
            cand["plug"] = WEIGHTS["plug"]
        if self.attached:
            cand["unplug"] = WEIGHTS["unplug"]
        if any(len(self.windows[p]) < 2 for p in PHBS):
            cand["ddw-create"] = WEIGHTS["ddw-create"]
        if any(self.windows[p] for p in PHBS):
            cand["ddw-remove"] = WEIGHTS["ddw-remove"]
        cand["system_reset"] = WEIGHTS["system_reset"]
        if any(self.windows[p] for p in PHBS):
            cand["tces"] = WEIGHTS["tces"]
        ops = sorted(cand)
        return self.rng.choices(ops, [cand[o] for o in ops])[0]

    def pick_phb(self, ok):
        """A PHB among those ok() allows, one with a device attached four
        times in five when there is one."""
        phbs = [p for p in PHBS if ok(p)]
        used = [p for p in phbs if self.attached_on(p)]
        if used and self.rng.random() < 0.8:
            return self.rng.choice(used)
        return self.rng.choice(phbs)

    # --- operations -------------------------------------------------------------

    def plug_allowed(self, phb):
        """On a pSeries host a group joins the container of another PE in the
        same address space when that container has no window (SET_CONTAINER
        refuses it only when there are windows), and then no window can be
        made for the two (TCE_CREATE EPERM): after a reset the default
        window would have no host backing (vfio-start-stop patch 19), which the
        storm does not model. It keeps off that state: no second device on
        a PHB without a window, on pseries."""
        return not (self.flavour == "pseries" and not self.windows[phb]
                    and self.attached_on(phb))

    def op_plug(self):
        dev = self.rng.choice(sorted(set(DEVICES) - set(self.attached)))
        phb = self.rng.choice([p for p in PHBS if self.plug_allowed(p)])
        host, group, slot = DEVICES[dev]
        why = self.host_takes(self.windows[phb].values()) \
            if self.new_container(phb) else ""
        kind, val = self.m.plug(dev, host, slot, phb)
        self.note(f"plug {dev} ({host}) on phb{phb}: {kind} {val or ''}")
        if why:
            if kind != "error":
                raise Problem(f"device_add {dev} on phb{phb} worked, but {why}")
            if host not in val:
                raise Problem(f"device_add error does not name {host}: {val!r}")
            self.refused["plug"] += 1
        elif kind == "error":
            raise Problem(f"device_add {dev} on phb{phb}: {val}")
        else:
            self.attached[dev] = phb
            others = [d for d in self.attached if d != dev]
            self.placements["one PHB" if others and self.attached[others[0]] == phb
                            else "two PHBs" if others else "alone"] += 1
        self.ops["plug"] += 1

    def op_unplug(self):
        dev = self.rng.choice(sorted(self.attached))
        phb = self.attached[dev]
        _, _, slot = DEVICES[dev]
        sibling = self.flavour == "powernv" and len(self.attached_on(phb)) == 2
        if self.rng.random() < 0.25:
            self.m.qmp.cmd("device_del", id=dev)
            self.m.qmp.cmd("system_reset")
            self.m.qmp.wait_event("RESET", timeout=60)
            self.m.qmp.wait_event("DEVICE_DELETED", timeout=60,
                                  match=lambda ev: ev["data"].get("device") == dev)
            del self.attached[dev]
            self.reset_world()
            self.ops["unplug by system_reset"] += 1
            self.note(f"unplug {dev} from phb{phb} by system_reset")
            return
        self.m.unplug(dev, slot, timeout=60, phb=phb)
        del self.attached[dev]
        self.ops["unplug"] += 1
        self.note(f"unplug {dev} from phb{phb}")
        if sibling:
            # The kernel clears every TCE of the shared container's windows
            # (the model logs table-clear reason=group-detach for a window
            # with TCEs set): predicted, then seen; the check that follows
            # finds them mapped again
            valid = set(self.valid(phb))
            lines = [l for l in self.model_log_since()
                     if l.startswith("table-clear ") and "reason=group-detach" in l]
            if bool(lines) != bool(valid):
                raise Problem(f"{len(lines)} table-clear lines when {dev} left the "
                              f"container it shared on phb{phb} with "
                              f"{len(valid)} pages mapped (kernel 6.11+ rule)")
            if valid:
                self.remapped_pages += len(valid)
                self.sibling_events += 1

    def op_ddw_create(self):
        phb = self.pick_phb(lambda p: len(self.windows[p]) < 2)
        wins = self.windows[phb]
        shift = self.rng.choice(DDW_SHIFTS)
        pshift = self.rng.choice(DDW_PAGE_SHIFTS)
        free = [n for n in (0, 1) if phb_liobn(phb, n) not in wins]
        used = {w.bus for w in wins.values()}
        want_bus = 0 if 0 not in used else DDW_ADDR
        new = Win(phb_liobn(phb, free[0]), want_bus, pshift, 1 << shift)
        why = ""
        if self.attached_on(phb):
            why = self.host_takes_window(new, list(wins.values()))
        status, liobn, bus = self.m.try_create_ddw(pshift, shift, phb_buid(phb))
        self.note(f"ddw-create phb{phb} {1 << (shift - 20)} MiB of "
                  f"{1 << (pshift - 10)} KiB: status {status:#x} liobn {liobn:#x} "
                  f"at {bus:#x}")
        self.ops["ddw-create"] += 1
        if why:
            if status != RTAS_HW_ERROR:
                raise Problem(f"ibm,create-pe-dma-window on phb{phb}: status "
                              f"{status:#x}, but {why}")
            self.refused["ddw-create"] += 1
            return
        if status != 0:
            raise Problem(f"ibm,create-pe-dma-window on phb{phb}: status {status:#x}")
        if (liobn, bus) != (new.liobn, new.bus):
            raise Problem(f"ibm,create-pe-dma-window on phb{phb}: LIOBN {liobn:#x} "
                          f"at {bus:#x}, not {new.liobn:#x} at {new.bus:#x}")
        wins[liobn] = new

    def op_ddw_remove(self):
        # mostly where there are two windows (else most removals would leave
        # a PHB without any)
        two = [p for p in PHBS if len(self.windows[p]) == 2]
        phb = self.pick_phb(lambda p: p in two if two and self.rng.random() < 0.75
                            else self.windows[p])
        wins = self.windows[phb]
        # the 64-bit window when there is one, four times in five
        high = [l for l, w in wins.items() if w.bus == DDW_ADDR]
        liobn = self.rng.choice(high if high and self.rng.random() < 0.8
                                else sorted(wins))
        status = self.m.try_remove_ddw(liobn)
        # PAPR: removing the last window brings the default one back, unless
        # it is "the default window": QEMU marks LIOBN n=0's table so at the
        # first reset (def_win, never cleared), whatever window it holds
        last = len(wins) == 1
        back = last and liobn == phb_liobn(phb, 1)
        self.note(f"ddw-remove phb{phb} {liobn:#x} at {wins[liobn].bus:#x}"
                  f"{' (the last: default back)' if back else ''}"
                  f"{' (the last: no window left)' if last and not back else ''}"
                  f": {status:#x}")
        if status != 0:
            raise Problem(f"ibm,remove-pe-dma-window {liobn:#x}: status {status:#x}")
        bus = wins.pop(liobn).bus
        if back:
            self.windows[phb] = self.default_windows(phb)
            self.ops["ddw-remove (the last window: default back)"] += 1
        elif last:
            self.ops["ddw-remove (the last window: none left)"] += 1
        elif bus == 0:
            self.ops["ddw-remove (the window at 0)"] += 1
        else:
            self.ops["ddw-remove"] += 1

    def reset_world(self):
        for p in PHBS:
            self.windows[p] = self.default_windows(p)

    def op_system_reset(self):
        self.m.qmp.cmd("system_reset")
        self.m.qmp.wait_event("RESET", timeout=60)
        self.reset_world()
        self.ops["system_reset"] += 1
        self.note("system_reset")

    def op_tces(self):
        phb = self.pick_phb(lambda p: self.windows[p])
        w = self.rng.choice(list(self.windows[phb].values()))
        k = self.rng.randint(1, 8)
        tces = {}
        for _ in range(k):
            i = self.rng.choice((0, w.n - 1, self.rng.randrange(w.n),
                                 self.rng.randrange(min(w.n, 64))))
            r = self.rng.random()
            if r < 0.2 and w.tces:
                i = self.rng.choice(sorted(w.tces))
                tces[i] = 0                 # clear
                continue
            gpa = self.rng.randrange(RAM >> w.shift) << w.shift
            perm = TCE_RW if r < 0.65 else TCE_RO if r < 0.85 else TCE_WO
            tces[i] = gpa | perm
        self.m.put_tces(w.liobn, w.bus, w.shift, tces)
        w.tces.update(tces)
        self.ops["tces"] += 1
        self.ops["  H_PUT_TCE"] += len(tces)
        self.note(f"tces phb{phb} {w.liobn:#x}: {len(tces)}")

    def finish_devices(self):
        """Unplug every device (the end state)."""
        for dev in sorted(self.attached):
            phb = self.attached[dev]
            self.m.unplug(dev, DEVICES[dev][2], timeout=60, phb=phb)
            del self.attached[dev]
            self.note(f"final unplug {dev} from phb{phb}")
        self.check("the end, every device unplugged")

    # --- checks ------------------------------------------------------------------

    def check(self, when):
        """The invariants; raises Problem with every difference."""
        self.checks += 1
        m, bad = self.m, []
        if not m.alive():
            raise Problem(f"{when}: QEMU died")
        st = m.status()
        if st != "running":
            bad.append(f"status {st}")
        fatal = m.fatal_lines()
        if fatal:
            bad.append("QEMU printed: " + "; ".join(fatal[:3])[:400])
        devs = set(m.devices())
        if devs != set(self.attached):
            bad.append(f"devices {sorted(devs)}, want {sorted(self.attached)}")
        # windows and TCEs
        for phb in PHBS:
            for n in (0, 1):
                liobn = phb_liobn(phb, n)
                w = self.windows[phb].get(liobn)
                rc, regs = m.qt.hcall(H_GET_TCE, liobn, w.bus if w else 0)
                if (rc == H_SUCCESS) != bool(w):
                    bad.append(f"window {liobn:#x} {'missing' if w else 'still there'}")
                    continue
                for i, tce in sorted((w.tces if w else {}).items()):
                    rc, regs = m.qt.hcall(H_GET_TCE, liobn, w.bus + (i << w.shift))
                    if rc != H_SUCCESS or regs[0] != tce:
                        bad.append(f"TCE {liobn:#x}[{i}] reads {rc:#x}/{regs[0]:#x}, "
                                   f"not {tce:#x}")
                        break
        # VFIO use of every table
        for (phb, n), path in sorted(self.tables.items()):
            s = m.tcet_state(path)
            want = phb in PHBS and phb_liobn(phb, n) in self.windows[phb] and \
                bool(self.attached_on(phb))
            used = s["x-vfio-starts"] - s["x-vfio-stops"]
            if s["x-vfio-in-use"] != want or used != int(want) or s["x-in-kvm"]:
                bad.append(f"phb{phb} {path.rsplit('-', 1)[1]}: in-use "
                           f"{s['x-vfio-in-use']}, starts {s['x-vfio-starts']} stops "
                           f"{s['x-vfio-stops']}, in-kvm {s['x-in-kvm']}; want in use {want}")
        bad += self.check_model()
        bad += self.check_fds()
        if bad:
            raise Problem(f"{when}: " + "; ".join(bad))

    def check_model(self):
        m, bad = self.m, []
        objs = m.model_objects()
        if not self.attached:
            return ["the model holds, with no device: " + "; ".join(
                k + " " + " ".join(f"{a}={b}" for a, b in kv.items())
                for k, kv in objs[:6])] if objs else []
        by = collections.defaultdict(list)
        for kind, kv in objs:
            by[kind].append(kv)
        # the containers the flavour calls for: groups -> PHB
        want = {}
        for phb in PHBS:
            devs = self.attached_on(phb)
            if not devs:
                continue
            groups = [str(DEVICES[d][1]) for d in devs]
            if self.flavour == "pseries":
                for g in groups:
                    want[g] = phb
            else:
                want[",".join(sorted(groups))] = phb
        got = {}
        for c in by["container"]:
            if c.get("fd") != "open" or c.get("iommu") != "spapr-v2":
                bad.append(f"container {c}")
            got[c.get("c")] = ",".join(sorted(c.get("groups", "").split(",")))
        if sorted(got.values()) != sorted(want):
            return bad + [f"containers with groups {sorted(got.values())}, want "
                          f"{sorted(want)}"]
        groups = sorted((g.get("g"), g.get("fd")) for g in by["group"])
        wgroups = sorted((str(DEVICES[d][1]), "open") for d in self.attached)
        devices = sorted((d.get("dev"), d.get("opens")) for d in by["device"])
        wdevices = sorted((DEVICES[d][0], "1") for d in self.attached)
        if groups != wgroups or devices != wdevices:
            bad.append(f"groups {groups}, devices {devices}; want {wgroups}, {wdevices}")
        try:
            vaddr = m.ram_vaddr()
        except RuntimeError as e:
            return bad + [str(e)]
        maps = collections.defaultdict(list)
        for r in by["mapping"]:
            maps[r["c"]].append((int(r["iova"], 16), int(r["size"], 16),
                                 int(r["vaddr"], 16), r["perm"]))
        for cid, groups in got.items():
            phb = want[groups]
            mem = [int(r["size"], 16) for r in by["memory"] if r.get("c") == cid]
            if mem != [RAM]:
                bad.append(f"container {cid} (groups {groups}) preregistered "
                           f"{[hex(x) for x in mem]}, not guest RAM")
            wins = sorted((int(r["start"], 16), int(r["size"], 16))
                          for r in by["window"] if r.get("c") == cid)
            wwins = sorted((w.bus, w.size) for w in self.windows[phb].values())
            if wins != wwins:
                bad.append(f"container {cid} (phb{phb}) windows "
                           f"{[(hex(a), hex(b)) for a, b in wins]}, want "
                           f"{[(hex(a), hex(b)) for a, b in wwins]}")
            exp = self.valid(phb)
            gotp = model_pages(coalesce(maps[cid]), vaddr)
            diff, text = describe_page_diff(exp, gotp, want_name="the valid TCEs")
            if diff:
                bad.append(f"container {cid} (phb{phb}) mappings differ in "
                           f"{len(diff)} pages:\n{text}")
        return bad

    def check_fds(self):
        m = self.m
        if not self.attached:
            diff = m.fd_diff(self.fd_base)
            return [f"QEMU's fds with no device: {diff}"] if diff else []
        key = tuple(sorted(self.attached.items()))
        now = m.fd_census() - m.model_own_fds()
        before = self.fd_by_placement.setdefault(key, now)
        if now != before:
            more, fewer = now - before, before - now
            return [f"QEMU's fds with {key}: " + ", ".join(
                [f"{c} more {k}" for k, c in more.items()] +
                [f"{c} fewer {k}" for k, c in fewer.items()]) +
                " than the last time"]
        return []

    # --- the end -------------------------------------------------------------------

    def end_checks(self):
        name = f"storm/{self.flavour}"
        m = self.m
        res = self.results
        ok = self.failed_at is None
        if ok:
            res.append(("PASS", f"{name}/operations",
                        f"{self.a.cycles} cycles (seed {self.a.seed}), every outcome as predicted "
                        f"({sum(self.refused.values())} refused by the host's "
                        f"rules, as predicted)"))
            res.append(("PASS", f"{name}/invariants",
                        f"{self.checks} checks (every {self.a.check_every} "
                        f"cycles and at the end)"))
        else:
            cyc, why = self.failed_at
            res.append(("FAIL", f"{name}/storm",
                        f"cycle {cyc} (seed {self.a.seed}): {why[:1500]}; "
                        f"the last operations: " + " | ".join(self.history[-6:])))
        # The end state, whatever happened (when QEMU is still there)
        tables = {}
        if m.alive():
            try:
                for (phb, n), path in sorted(self.tables.items()):
                    tables[(phb, n)] = m.tcet_state(path)
                objs = m.model_objects()
                fds_now = sum(m.fd_census().values())
                own = m.model_own_fds()
                fd_diff = m.fd_diff(self.fd_base) if not self.attached else "devices attached"
            except (QMPError, QTestError, OSError) as e:
                res.append(("FAIL", f"{name}/end-state", f"{type(e).__name__}: {e}"))
                tables = None
        else:
            tables = None
        if tables is not None and ok:
            bad = [f"phb{p} {n}: {s}" for (p, n), s in tables.items()
                   if s["x-vfio-in-use"] or s["x-vfio-starts"] != s["x-vfio-stops"]]
            starts = sum(s["x-vfio-starts"] for s in tables.values())
            per = ", ".join(f"phb{p}/{n} {s['x-vfio-starts']}"
                            for (p, n), s in sorted(tables.items()) if s["x-vfio-starts"])
            res.append(("FAIL" if bad else "PASS", f"{name}/tables-unused",
                        "; ".join(bad) if bad else
                        f"6 tables, x-vfio-in-use false, starts == stops "
                        f"({starts} VFIO starts in all: {per})"))
            res.append(("FAIL" if objs else "PASS", f"{name}/model-empty",
                        "; ".join(f"{k} {kv}" for k, kv in objs[:5]) if objs else
                        "no container, group, device, window, preregistration "
                        "or mapping"))
            res.append(("FAIL" if fd_diff else "PASS", f"{name}/fds",
                        fd_diff or f"{fds_now} open, {self.fd_start} at start + "
                        f"the model's own {sum(own.values())} "
                        f"({', '.join(f'{c} {k}' for k, c in sorted(own.items()))})"))
        alive = m.alive()
        status = m.close()
        out = m.output()
        res.append(("PASS" if status == 0 and alive else "FAIL", f"{name}/exit",
                    f"QEMU exited {status} on quit" if alive else
                    f"QEMU was gone before quit (status {status})"))
        san = [l for l in out.splitlines() if SANITIZER.search(l)]
        fatal = [l for l in out.splitlines() if FATAL.search(l) and l not in san]
        if san or fatal:
            res.append(("FAIL", f"{name}/sanitizers",
                        f"{len(san)} sanitizer lines, {len(fatal)} other fatal "
                        f"lines: " + " | ".join((san + fatal)[:4])[:800] +
                        f" (QEMU output: {m.out_path})"))
        elif self.sanitized:
            res.append(("PASS", f"{name}/sanitizers",
                        f"no {self.sanitized} report (\"ERROR: AddressSanitizer\", "
                        f"\"runtime error:\", \"LeakSanitizer\"), no assertion, abort "
                        f"or hardware error"
                        + ("" if self.a.leaks else "; leak detection off")))
        else:
            res.append(("PASS", f"{name}/no-fatal-output",
                        "no assertion, abort or hardware error (this QEMU has no "
                        "sanitizer: make check-storm runs the storm under ASan + "
                        "UBSan)"))

    def summary(self):
        o = self.ops
        parts = []
        for k in ("plug", "unplug", "unplug by system_reset", "ddw-create",
                  "ddw-remove", "ddw-remove (the window at 0)",
                  "ddw-remove (the last window: default back)",
                  "ddw-remove (the last window: none left)", "system_reset",
                  "tces", "  H_PUT_TCE"):
            if o[k]:
                ref = self.refused[k.split()[0]] if k in ("plug", "ddw-create") else 0
                parts.append(f"{k.strip()} {o[k]}" + (f" ({ref} refused, as the "
                                                      f"model's rules say)" if ref else ""))
        pl = ", ".join(f"{k} {v}" for k, v in sorted(self.placements.items()))
        errs = ", ".join(f"{k} x{v}" for k, v in sorted(self.model_errors.items()))
        return (f"{self.flavour}: {self.cycle if self.failed_at else self.a.cycles} "
                f"cycles in {self.secs:.1f} s (seed {self.a.seed}): "
                + "; ".join(parts) +
                f"\n  hot-plugs placed: {pl or 'none'}"
                f"\n  the model refused (its rules, not injected): {errs or 'nothing'}"
                f"\n  a group left a shared container {self.sibling_events} times "
                f"with TCEs set: the host cleared, and QEMU mapped again, "
                f"{self.remapped_pages} valid 4 KiB pages")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=500)
    p.add_argument("--seed", type=int, default=None, help="random unless given")
    p.add_argument("--flavours", default="powernv,pseries")
    p.add_argument("--check-every", type=int, default=50,
                   help="full invariant check every K cycles (and at the end)")
    p.add_argument("--no-leaks", dest="leaks", action="store_false",
                   help="ASan build: LeakSanitizer off at QEMU's exit")
    p.add_argument("--qemu", default=os.path.join(root, "build/bin/qemu-system-ppc64"))
    p.add_argument("--model", default=os.path.join(root, "build/lib/libvfio-model.so"))
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per operation")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 32)
    flavours = [f for f in a.flavours.split(",") if f]
    bad = set(flavours) - set(FLAVOURS)
    if bad:
        p.error(f"unknown flavours {sorted(bad)}")
    a.check_every = max(1, a.check_every)
    sanitized = sanitizers_of(a.qemu)
    tmp = tempfile.mkdtemp(prefix="storm-")
    print(f"storm: seed {a.seed}, {a.cycles} cycles per flavour "
          f"({', '.join(flavours)}), checks every {a.check_every}; QEMU "
          f"{a.qemu} ({'sanitizers: ' + sanitized if sanitized else 'no sanitizer'}), "
          f"model {a.model}; work directory {tmp}", flush=True)
    t0 = time.monotonic()
    failed = 0
    for fl in flavours:
        s = Storm(a, fl, tmp, sanitized)
        try:
            s.run()
        except Exception as e:          # noqa: BLE001 (QEMU did not start, ...)
            s.results.append(("FAIL", f"storm/{fl}/storm",
                              f"{type(e).__name__}: {str(e)[:1500]}"))
            s.failed_at = (0, "")
        print(s.summary(), flush=True)
        for res, name, text in s.results:
            print(f"{res} {name}: {text}", flush=True)
            failed += res == "FAIL"
    print(f"storm: {'FAILED' if failed else 'PASSED'}, seed {a.seed}, "
          f"{time.monotonic() - t0:.1f} s"
          + (f" (rerun: {sys.argv[0]} --seed {a.seed} --cycles {a.cycles} "
             f"--flavours {','.join(flavours)}; "
             f"QEMU output kept in {tmp})" if failed else ""), flush=True)
    if not failed and not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
