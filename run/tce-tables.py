#!/usr/bin/env python3
"""The main job: a pseries guest under the qtest accelerator (no guest OS
needed) with a passthrough device backed by the VFIO model, hot-plugged and
unplugged over QMP. At each step it prints every PCI host bridge with its DMA
windows (TCE tables: LIOBN, bus range, x-vfio-in-use, x-in-kvm) and what the
model says the host kernel holds (containers, windows, mappings)."""

import os
import re
import socket
import sys
import time

from qmp import QEMU

PHB_TYPE = "spapr-pci-host-bridge"
TCE_TYPE = "spapr-tce-table"
H_GET_TCE, H_PUT_TCE = 0x1c, 0x20
LIOBN = 0x80000100                  # default window of PHB 1
HOST = "0000:01:00.0"


class QTest:
    """The qtest protocol, for what QMP cannot do: hypercalls, guest RAM."""

    def __init__(self, path):
        deadline = time.monotonic() + 30
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # Read only: a text file's write() drops lines it has read ahead
        self.file = self.sock.makefile("rb")

    def cmd(self, line):
        self.sock.sendall((line + "\n").encode())
        while True:
            reply = self.file.readline().decode().split()
            if reply and reply[0] != "IRQ":
                assert reply[0] == "OK", f"qtest {line}: {reply}"
                return [int(w, 0) for w in reply[1:]]

    def hcall(self, opcode, *args):
        """[return code, r4, ..., r12]"""
        return self.cmd("hcall " + " ".join(hex(a) for a in (opcode, *args)))


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


def show_tables(vm, only=None):
    ranges = iommu_ranges(vm)
    get = lambda p, o: vm.cmd("qom-get", path=o, property=p)
    for phb in sorted(vm.find(PHB_TYPE), key=lambda o: get("index", o)):
        if only is not None and get("index", phb) != only:
            continue
        print(f"  PHB {get('index', phb)}: default window "
              f"{get('dma_win_addr', phb):#x}+{get('dma_win_size', phb):#x}, "
              f"DDW {'on' if get('ddw', phb) else 'off'} "
              f"(64-bit window at {get('dma64_win_addr', phb):#x}, "
              f"page sizes {get('pgsz', phb):#x})")
        for tcet in sorted(vm.find(TCE_TYPE, phb)):
            liobn = int(tcet.rsplit("-", 1)[1], 16)
            props = {p["name"] for p in vm.cmd("qom-list", path=tcet)}
            flags = "".join(f", {p} {str(get(p, tcet)).lower()}"
                            for p in ("x-vfio-in-use", "x-in-kvm") if p in props)
            if liobn in ranges:
                first, last = ranges[liobn]
                where = f"bus {first:#x}-{last:#x}"
            else:
                where = "disabled"
            print(f"    TCE table {liobn:#010x}: {where}{flags}")


def read_state(path):
    """The VFIO model's state snapshot, served on the Unix socket at path
    from QEMU's first open of /dev/vfio on ("" before)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except FileNotFoundError:
            return ""
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks).decode()
            chunks.append(data)


def show_model(state):
    lines = read_state(state).split("\n")
    lines = [l for l in lines if l]
    print("  host (VFIO model):", "no containers" if not lines else "")
    for line in lines:
        print("    " + line)


def step(title, vm, state, only=1):
    print(f"\n== {title}")
    show_tables(vm, only)
    if state:
        show_model(state)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: tce-tables.py QEMU_BINARY [VFIO_MODEL_LIBRARY]")
    qemu = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) == 3 else None
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tce-run-{os.getpid()}")
    os.makedirs(tmp)
    state, qtest_path = f"{tmp}/model.state", f"{tmp}/qtest.sock"
    env = dict(os.environ)
    if model:
        env.update(LD_PRELOAD=model, VFIO_MODEL_DEVICES=f"{HOST}@7",
                   VFIO_MODEL_LOG=f"{tmp}/model.log", VFIO_MODEL_STATE=state)
    args = ["-M", "pseries", "-accel", "qtest", "-display", "none",
            "-nodefaults", "-m", "512M",
            "-qtest", f"unix:{qtest_path},server=on,wait=off",
            "-device", "spapr-pci-host-bridge,index=1,id=phb1"]
    try:
        with QEMU(qemu, args, env=env) as vm:
            qt = QTest(qtest_path)
            print("(qtest accelerator: the guest view of a table never lives "
                  "in KVM here, so x-in-kvm stays false)")
            step("pseries guest, PHB 0 and PHB 1, no passthrough device",
                 vm, model and state, only=None)
            if not model:
                return
            qt.hcall(H_PUT_TCE, LIOBN, 0x0, 0x1000000 | 3)
            qt.hcall(H_PUT_TCE, LIOBN, 0x5000, 0x2000000 | 1)
            step(f"H_PUT_TCE x2 on {LIOBN:#x} (rw page at 0x0, ro at 0x5000)",
                 vm, state)
            vm.cmd("device_add", driver="vfio-pci", id="vfio1", host=HOST,
                   bus="phb1.0", addr="1")
            step(f"device_add vfio-pci host={HOST} on PHB 1: VFIO starts "
                 "using the table, the two TCEs are replayed", vm, state)
            qt.hcall(H_PUT_TCE, LIOBN, 0x9000, 0x3000000 | 3)
            qt.hcall(H_PUT_TCE, LIOBN, 0x5000, 0)
            step("H_PUT_TCE: map 0x9000, clear 0x5000", vm, state)
            vm.cmd("device_del", id="vfio1")
            vm.wait_event("DEVICE_DELETED")
            step("device_del vfio1: VFIO stops using the table", vm, state)
            tces = [qt.hcall(H_GET_TCE, LIOBN, ioba)[1]
                    for ioba in (0x0, 0x5000, 0x9000)]
            print("  H_GET_TCE 0x0, 0x5000, 0x9000 ->",
                  ", ".join(hex(t) for t in tces))
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
