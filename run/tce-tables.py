#!/usr/bin/env python3
"""The main job: start a pseries guest under the qtest accelerator (no guest
OS needed) and print, through QMP, each PCI host bridge with its DMA windows
(TCE tables): LIOBN, bus address range, and what else QEMU exposes."""

import re
import sys

from qmp import QEMU

PHB_TYPE = "spapr-pci-host-bridge"
TCE_TYPE = "spapr-tce-table"


def iommu_ranges(vm):
    """{liobn: (first, last)} of every enabled TCE window, from info mtree."""
    ranges = {}
    pat = re.compile(r"([0-9a-f]+)-([0-9a-f]+) \(prio \d+, i/o\): "
                     r"tce-iommu-([0-9a-f]+)$")
    for line in vm.hmp("info mtree").splitlines():
        m = pat.search(line.strip())
        if m:
            first, last, liobn = (int(x, 16) for x in m.groups())
            ranges[liobn] = (first, last)
    return ranges


def show(vm):
    ranges = iommu_ranges(vm)
    get = lambda p, o: vm.cmd("qom-get", path=o, property=p)
    for phb in sorted(vm.find(PHB_TYPE), key=lambda o: get("index", o)):
        print(f"PHB index {get('index', phb)} ({phb})")
        print(f"  default window: {get('dma_win_addr', phb):#x} + "
              f"{get('dma_win_size', phb):#x}; ddw {'on' if get('ddw', phb) else 'off'},"
              f" 64-bit window at {get('dma64_win_addr', phb):#x},"
              f" DDW page sizes mask {get('pgsz', phb):#x}")
        for tcet in sorted(vm.find(TCE_TYPE, phb)):
            liobn = int(tcet.rsplit("-", 1)[1], 16)
            props = {p["name"] for p in vm.cmd("qom-list", path=tcet)}
            extra = "".join(f", {p} {get(p, tcet)}" for p in
                            ("vfio-in-use", "in-kvm") if p in props)
            if liobn in ranges:
                first, last = ranges[liobn]
                print(f"  TCE table LIOBN {liobn:#010x}: bus "
                      f"{first:#x}-{last:#x} ({(last - first + 1) >> 20} MiB)"
                      f"{extra}")
            else:
                print(f"  TCE table LIOBN {liobn:#010x}: disabled{extra}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tce-tables.py QEMU_BINARY")
    args = ["-M", "pseries", "-accel", "qtest", "-display", "none",
            "-nodefaults", "-m", "512M",
            "-device", "spapr-pci-host-bridge,index=1,ddw=off"]
    with QEMU(sys.argv[1], args) as vm:
        show(vm)


if __name__ == "__main__":
    main()
