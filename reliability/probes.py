#!/usr/bin/env python3
"""Probes for the two QEMU bugs that hostile.py found (README.md, "Bugs
found"), which stock QEMU 10.0.13 has and the series fixes (vfio-start-stop patches 15 and
14), each in a QEMU of its own with vfio-pci on PHB 1 and the VFIO model:

  stale-host-mapping  H_PUT_TCE of a TCE that gives access to no guest RAM,
                      over a mapped entry: QEMU says H_SUCCESS and stores
                      it, VFIO cannot map it and unmaps nothing, so the host
                      keeps DMA to the old page.
  ddw-overlap-abort   remove the default window, with a DDW there, and ask
                      for another DDW: QEMU puts it at dma64_win_addr, on top
                      of the first; removing the first then makes VFIO see
                      the hidden one, which the host cannot place, and QEMU
                      aborts ("vfio: DMA mapping failed, unable to continue").

Each prints "XFAIL probe/NAME: ..." while the bug is there (stock), "PASS probe/NAME"
once QEMU behaves (the table and the host agree; QEMU refuses or places the
window elsewhere and lives), "FAIL probe/NAME: ..." for anything else. They
need no QOM property of the series, so stock QEMU + the qtest hcall patch
(build/bin/qemu-system-ppc64-stock-hcall) runs them too.

Usage: probes.py [--qemu Q] [--model M] [NAME...]
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FATAL, H_GET_TCE, H_PUT_TCE, H_SUCCESS, PHB1_BUID, PHB1_DDW_ADDR,
    PHB1_LIOBN, TCE_RW, Machine, model_pages)

RAM_MIB = 512


def probe_stale_host_mapping(m):
    """-> (result, message)"""
    ram = RAM_MIB << 20
    kind, val = m.plug()
    if kind == "error":
        return "FAIL", f"device_add: {val}"
    good, bad = 0x1000000 | TCE_RW, ram | TCE_RW         # bad: first page past RAM
    r1 = m.qt.hcall(H_PUT_TCE, PHB1_LIOBN, 0, good)[0]
    r2 = m.qt.hcall(H_PUT_TCE, PHB1_LIOBN, 0, bad)[0]
    rc, regs = m.qt.hcall(H_GET_TCE, PHB1_LIOBN, 0)
    host = model_pages(m.model_mappings(), m.ram_vaddr()).get(0)
    seq = (f"H_PUT_TCE(ioba 0, {good:#x}) = {r1:#x}, H_PUT_TCE(ioba 0, {bad:#x}) "
           f"= {r2:#x}, H_GET_TCE(ioba 0) = {regs[0]:#x}, host maps iova 0 to "
           f"{'nothing' if host is None else f'gpa {host[0]:#x} {host[1]}'}")
    if r1 != H_SUCCESS or rc != H_SUCCESS:
        return "FAIL", seq
    if r2 == H_SUCCESS and regs[0] == bad and host == (0x1000000, "rw"):
        return "XFAIL", ("the host keeps the old page (stock QEMU; series "
                         "vfio-start-stop patch 15 fixes it): " + seq)
    table = regs[0]
    if (table == bad and host is None) or (table == good and host == (0x1000000, "rw")):
        return "PASS", seq
    return "FAIL", seq


def probe_ddw_overlap_abort(m):
    kind, val = m.plug()
    if kind == "error":
        return "FAIL", f"device_add: {val}"
    liobn, bus = m.create_ddw(16, 24)
    m.remove_ddw(PHB1_LIOBN)
    rets = m.rtas("ibm,create-pe-dma-window",
                  [1 << 11, PHB1_BUID >> 32, PHB1_BUID & 0xffffffff, 12, 22], 4)
    where = f"second DDW: RTAS {rets[0]:#x}"
    if rets[0] == 0:
        where += f", LIOBN {rets[1]:#x} at {(rets[2] << 32) | rets[3]:#x}"
    try:
        rr = m.rtas("ibm,remove-pe-dma-window", [liobn], 1)[0]
        alive = m.alive() and m.status() is not None
    except Exception:           # noqa: BLE001 (QEMU gone)
        rr, alive = None, False
    seq = (f"DDW {liobn:#x} at {bus:#x}; default window removed; {where}; "
           f"remove {liobn:#x}: "
           f"{'QEMU died' if not alive else f'RTAS {rr:#x}'}")
    if not alive:
        out = m.output()
        if "DMA mapping failed" in out and rets[0] == 0 and \
                (rets[2] << 32 | rets[3]) == PHB1_DDW_ADDR:
            return "XFAIL", "QEMU aborts (stock QEMU; vfio-start-stop patch 14 fixes it): " + seq + " (" + \
                next(l for l in out.splitlines() if "hardware error" in l) + ")"
        return "FAIL", seq + ": " + "; ".join(l for l in out.splitlines()
                                              if FATAL.search(l))[:300]
    if rets[0] == 0 and (rets[2] << 32 | rets[3]) == bus:
        return "FAIL", "QEMU lives, but the windows overlap: " + seq
    return "PASS", seq


PROBES = {"stale-host-mapping": probe_stale_host_mapping,
          "ddw-overlap-abort": probe_ddw_overlap_abort}


def run(qemu, model, names=None, tmp=None):
    """Run the probes; print their lines; return the number that FAILed."""
    failed = 0
    for name in names or PROBES:
        workdir = tempfile.mkdtemp(prefix=f"probe-{name}-", dir=tmp)
        m = Machine(qemu, workdir, "qemu", model=model, mem_mib=RAM_MIB)
        try:
            res, msg = PROBES[name](m)
        except Exception as e:          # noqa: BLE001
            res, msg = "FAIL", f"{type(e).__name__}: {e}"
        status = m.close()
        if res == "PASS" and status != 0:
            res, msg = "FAIL", f"QEMU exited with {status}"
        print(f"{res} probe/{name}: {msg}", flush=True)
        failed += res == "FAIL"
        if res == "FAIL":
            print(f"  (QEMU output in {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return failed


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", choices=[[]] + list(PROBES), default=[])
    p.add_argument("--qemu", default=os.path.join(root, "build/bin/qemu-system-ppc64"))
    p.add_argument("--model", default=os.path.join(root, "build/lib/libvfio-model.so"))
    a = p.parse_args()
    return 1 if run(a.qemu, a.model, a.names) else 0


if __name__ == "__main__":
    sys.exit(main())
