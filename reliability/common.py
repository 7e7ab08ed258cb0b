"""What hostile.py, migration.py, sweep.py and storm.py share: a pseries QEMU with PHB 1 driven
over qtest and QMP, optionally with the VFIO model preloaded, and readers of
the model's state snapshot and event log. Python stdlib only.

The qtest text-protocol client is run/qtest.py, which the benchmark uses too.
"""

import collections
import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import termios
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "run"))
from qtest import QTest, QTestError  # noqa: E402,F401
from qmp import connect_unix  # noqa: E402

# Hypercalls (the four the qtest "hcall" command makes) and their returns
H_GET_TCE, H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT = 0x1C, 0x20, 0x138, 0x13C
HCALL_NAMES = {H_PUT_TCE: "H_PUT_TCE", H_GET_TCE: "H_GET_TCE",
               H_PUT_TCE_INDIRECT: "H_PUT_TCE_INDIRECT",
               H_STUFF_TCE: "H_STUFF_TCE"}
H_SUCCESS = 0
H_PARAMETER = (1 << 64) - 4
MASK64 = (1 << 64) - 1

TCE_RO, TCE_WO, TCE_RW = 1, 2, 3

# PHB 1 (index=1), as in tests/qtest/spapr-tce-vfio-test.c; any PHB by
# its index: phb_buid(), phb_liobn() (SPAPR_PCI_LIOBN: window n of PHB i)
SPAPR_PCI_BASE_BUID = 0x800000020000000


def phb_buid(index):
    return SPAPR_PCI_BASE_BUID + index


def phb_liobn(index, n=0):
    return 0x80000000 | (index << 8) | n


PHB1_BUID = phb_buid(1)
PHB0_LIOBN = 0x80000000
PHB0_LIOBN64 = 0x80000001
PHB1_LIOBN = 0x80000100
PHB1_LIOBN64 = 0x80000101
PHB1_DDW_ADDR = 0x800000000000000           # dma64_win_addr, 1 << 59
PHB1_TCET = "/machine/peripheral/phb1/tce-table-80000100"
PHB1_TCET64 = "/machine/peripheral/phb1/tce-table-80000101"
HOST1 = "0000:01:00.0"

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# Words in QEMU's output that mean it died or went wrong (beyond the
# error_report lines that VFIO prints for TCEs it cannot map)
FATAL = re.compile(r"assert|Assertion|Aborted|abort\(|hardware error|hw_error|"
                   r"core dumped|Segmentation|AddressSanitizer|LeakSanitizer|"
                   r"runtime error|Bail out|\*\*\s*ERROR", re.I)
# A sanitizer's report (ASan, LSan, UBSan) in a sanitized QEMU's output
SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                       r"LeakSanitizer|runtime error:|SUMMARY: \w+Sanitizer")


def phb_drc(index, slot):
    """PCI DRC index of slot on the root bus of the PHB of that index."""
    return 0x40000000 | (index << 16) | (slot << 3)


def phb1_drc(slot):
    """PCI DRC index of slot on the root bus of PHB 1."""
    return phb_drc(1, slot)


class QMPError(Exception):
    pass


class QMP:
    """A QMP client; QEMU listens (server=on,wait=off), we connect."""

    def __init__(self, path, proc, timeout=60, on_stall=None):
        self.events = []
        self.proc = proc
        self.on_stall = on_stall        # called before a timeout is raised
        self.sock = connect_unix(path, timeout, lambda: proc.poll() is None)
        if not self.sock:
            raise QMPError("QEMU did not start its QMP monitor")
        self.sock.settimeout(timeout)
        # Binary, and read only: a text file's write() drops the lines it
        # has read ahead and not returned yet (an event after a reply)
        self.file = self.sock.makefile("rb")
        self._read()                                    # the greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        try:
            line = self.file.readline()
        except socket.timeout:
            if self.on_stall:
                self.on_stall(self.sock, f"{getattr(self, 'sent', 0)} commands "
                              f"sent, the last {getattr(self, 'last', None)}")
            raise QMPError("QMP: no answer") from None
        if not line:
            raise QMPError("QEMU closed the QMP monitor")
        return json.loads(line)

    def send(self, name, **args):
        self.last = json.dumps({"execute": name, "arguments": args})
        self.sent = getattr(self, "sent", 0) + 1
        self.sock.sendall((self.last + "\n").encode())

    def reply(self):
        """The next reply (events are kept): ('return', value) or ('error', desc)."""
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                return "error", msg["error"]["desc"]
            else:
                return "return", msg["return"]

    def try_cmd(self, name, **args):
        self.send(name, **args)
        return self.reply()

    def cmd(self, name, **args):
        kind, value = self.try_cmd(name, **args)
        if kind == "error":
            raise QMPError(f"{name}: {value}")
        return value

    def wait_event(self, name, timeout=60, match=None):
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name and (match is None or match(ev)):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError(f"no {name} event in {timeout} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            finally:
                self.sock.settimeout(None)

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


class Machine:
    """A pseries QEMU: PHB 1 (id phb1) with a default window of dma_win_size,
    qtest (-accel qtest) and QMP; with model, the VFIO model is preloaded
    with host device HOST1 in group 7. Its output goes to DIR/qemu.log.
    model_env: more VFIO_MODEL_* settings (VFIO_MODEL_FAIL,
    VFIO_MODEL_FLAVOUR, ...); a value of None unsets one inherited."""

    def __init__(self, qemu, workdir, name, model=None, mem_mib=512,
                 dma_win_size=None, extra=(), incoming=None, env=None,
                 model_env=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.mem = mem_mib * MiB
        self.model_log = os.path.join(self.dir, "model.log")
        self.model_state = os.path.join(self.dir, "model.state")
        self.out_path = os.path.join(self.dir, "qemu.log")
        for p in (self.model_log, self.model_state):
            if os.path.exists(p):
                os.unlink(p)
        e = dict(os.environ if env is None else env)
        if model:
            old = e.get("LD_PRELOAD", "")
            e["LD_PRELOAD"] = (old + " " if old else "") + model
            e.update(VFIO_MODEL_DEVICES=f"{HOST1}@7", VFIO_MODEL_TMPDIR=self.dir,
                     VFIO_MODEL_LOG=self.model_log,
                     VFIO_MODEL_STATE=self.model_state)
            for k, v in (model_env or {}).items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        qmp_path = os.path.join(self.dir, "qmp.sock")
        if os.path.exists(qmp_path):
            os.unlink(qmp_path)
        self.qt = QTest(os.path.join(self.dir, "qtest.sock"))
        # (-global: the default PHB 0 gets the same small window)
        win = ["-global", f"spapr-pci-host-bridge.dma_win_size={dma_win_size:#x}"] \
            if dma_win_size else []
        args = [qemu, "-M", "pseries", "-m", f"{mem_mib}M", "-nodefaults",
                "-display", "none"] + win + [
                "-device", "spapr-pci-host-bridge,index=1,id=phb1",
                "-qmp", f"unix:{qmp_path},server=on,wait=off"] + self.qt.args()
        if incoming:
            args += ["-incoming", incoming]
        args += list(extra)
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=e)
        self.refused_maps = 0
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        try:
            self.qt.accept(timeout=60)
            self.qmp = QMP(qmp_path, self.proc, on_stall=self.diagnose_stall)
        except Exception:
            self.kill()
            raise QMPError(f"{name}: QEMU did not start:\n" + self.output())

    # --- process ---------------------------------------------------------

    # VFIO reports each TCE it cannot map (a page that is not RAM): hostile
    # runs make hundreds of thousands. They are counted; the first few kept.
    NOISE = b"iommu map to non memory area"
    NOISE_KEPT = 20

    def _drain(self):
        for line in self.proc.stdout:
            if self.NOISE in line:
                self.refused_maps += 1
                if self.refused_maps > self.NOISE_KEPT:
                    continue
            self.out.write(line)
            self.out.flush()

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def diagnose_stall(self, sock, what):
        """QMP gave no answer in time: record what QEMU and the socket
        hold (DIR/stall.txt) before the caller gives up on it."""
        pid = self.proc.pid
        lines = [f"{time.strftime('%H:%M:%S')} QMP stall, QEMU pid {pid}: {what}"]
        try:
            pending = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD,
                                                     b"\0" * 4))[0]
            lines.append(f"bytes waiting on our QMP socket: {pending}")
        except OSError as e:
            lines.append(f"FIONREAD: {e}")
        for t in sorted(os.listdir(f"/proc/{pid}/task")):
            try:
                comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
                st = open(f"/proc/{pid}/task/{t}/stat").read().split(") ")[1].split()[0]
                sysc = open(f"/proc/{pid}/task/{t}/syscall").read().strip()
                lines.append(f"thread {t} {comm} state {st} syscall {sysc}")
            except OSError:
                pass
        try:
            gdb = subprocess.run(
                ["gdb", "-p", str(pid), "-batch", "-nx",
                 "-ex", "thread apply all bt 12",
                 "-ex", "p *(MonitorQMP *)mon_list.tqh_first",
                 "-ex", "p ((Monitor *)mon_list.tqh_first)->outbuf->len",
                 "-ex", "p *((MonitorQMP *)mon_list.tqh_first)->qmp_requests"],
                capture_output=True, text=True, timeout=120)
            lines.append(gdb.stdout[-20000:] + gdb.stderr[-2000:])
        except (OSError, subprocess.TimeoutExpired) as e:
            lines.append(f"gdb: {e}")
        with open(os.path.join(self.dir, "stall.txt"), "a") as f:
            f.write("\n".join(lines) + "\n")

    def alive(self):
        return self.proc.poll() is None

    def fatal_lines(self):
        return [l for l in self.output().splitlines() if FATAL.search(l)]

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def fd_count(self):
        """QEMU's open file descriptors."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_census(self):
        """QEMU's open fds by kind (link target without inode numbers)."""
        d = f"/proc/{self.proc.pid}/fd"
        out = collections.Counter()
        for f in os.listdir(d):
            try:
                t = os.readlink(f"{d}/{f}")
            except FileNotFoundError:
                continue
            out[re.sub(r"\[\d+\]|\s*\(deleted\)", "", t)] += 1
        return out

    def model_own_fds(self):
        """The fds the model itself holds in QEMU, by fd_census() kind
        (vfio-model/README.md): its state socket, made at the first open of
        a /dev/vfio node, and a memfd behind each host device's regions,
        made at that device's first open. They stay open until exit."""
        extra = collections.Counter()
        log = self.model_log_lines()
        if any(l.startswith(("group-open ", "container-open ")) for l in log):
            extra["socket:"] += 1
        devs = {l.split("dev=", 1)[1].split()[0] for l in log
                if l.startswith("device-open ")}
        if devs:
            extra["/memfd:vfio-model-device"] += len(devs)
        return extra

    def fd_diff(self, base):
        """How QEMU's fds differ from base (an fd_census() taken with no VFIO
        device) plus the model's own: '' when they are the same."""
        now, want = self.fd_census(), base + self.model_own_fds()
        more, fewer = now - want, want - now
        return ", ".join([f"{c} more {k}" for k, c in more.items()] +
                         [f"{c} fewer {k}" for k, c in fewer.items()])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=30)

    def close(self):
        """Quit QEMU; return its exit status (negative: a signal)."""
        if self.proc.poll() is None:
            try:
                self.qmp.send("quit")
            except (OSError, AttributeError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        for c in (getattr(self, "qmp", None), self.qt):
            if c:
                c.close()
        self.reader.join(timeout=30)
        self.out.close()
        return self.proc.returncode

    # --- QOM, devices ------------------------------------------------------

    def qom(self, path, prop):
        return self.qmp.cmd("qom-get", path=path, property=prop)

    def tcet_state(self, path):
        return {p: self.qom(path, p) for p in
                ("x-vfio-in-use", "x-in-kvm", "x-vfio-starts", "x-vfio-stops")}

    def plug(self, dev_id="vfio1", host=HOST1, slot=1, phb=1):
        """device_add vfio-pci on the root bus of PHB phb (its id is phbN)."""
        return self.qmp.try_cmd("device_add", driver="vfio-pci", id=dev_id,
                                host=host, bus=f"phb{phb}.0", addr=str(slot))

    def unplug(self, dev_id="vfio1", slot=1, timeout=60, phb=1):
        """Unplug as a guest would (ask, then isolate the slot's DRC)."""
        self.qmp.cmd("device_del", id=dev_id)
        self.rtas("set-indicator", [9001, phb_drc(phb, slot), 0], 1)
        self.qmp.wait_event("DEVICE_DELETED", timeout=timeout,
                            match=lambda ev: ev["data"].get("device") == dev_id)

    def devices(self):
        """ids of the devices on PHB 1's bus."""
        out = []
        for bus in self.qmp.cmd("query-pci"):
            for dev in bus["devices"]:
                if dev.get("qdev_id"):
                    out.append(dev["qdev_id"])
        return out

    # --- RTAS, hypercalls ----------------------------------------------------

    def scratch(self):
        """Guest RAM for RTAS arguments: the last 64 KiB."""
        return self.mem - 64 * KiB

    def rtas(self, name, args, nret):
        return self.qt.rtas(name, args, nret, self.scratch())

    def try_create_ddw(self, page_shift, window_shift, buid=PHB1_BUID):
        """ibm,create-pe-dma-window on PHB 1 (or the PHB of buid): (RTAS
        status, LIOBN, bus offset), the last two valid only with status 0."""
        rets = self.rtas("ibm,create-pe-dma-window",
                         [1 << 11, buid >> 32, buid & 0xffffffff,
                          page_shift, window_shift], 4)
        return rets[0], rets[1], (rets[2] << 32) | rets[3]

    def create_ddw(self, page_shift, window_shift):
        status, liobn, bus = self.try_create_ddw(page_shift, window_shift)
        if status != 0:
            raise RuntimeError(f"ibm,create-pe-dma-window: RTAS status {status:#x}")
        return liobn, bus

    def try_remove_ddw(self, liobn):
        """ibm,remove-pe-dma-window: the RTAS status."""
        return self.rtas("ibm,remove-pe-dma-window", [liobn], 1)[0]

    def remove_ddw(self, liobn):
        status = self.try_remove_ddw(liobn)
        if status != 0:
            raise RuntimeError(f"ibm,remove-pe-dma-window: RTAS status {status:#x}")

    def read_table(self, liobn, bus_offset, page_shift, entries):
        """Every TCE of a window, by H_GET_TCE (fails on any error)."""
        lines = [QTest.hcall_line(H_GET_TCE, liobn, bus_offset + (i << page_shift))
                 for i in range(entries)]
        out = []
        for i, words in enumerate(self.qt.batch(lines)):
            if int(words[0], 16) != H_SUCCESS:
                raise RuntimeError(f"H_GET_TCE {liobn:#x} entry {i}: {words[0]}")
            out.append(int(words[1], 16))
        return out

    def put_tces(self, liobn, bus_offset, page_shift, tces):
        """Put {index: tce} with H_PUT_TCE (fails on any error)."""
        lines = [QTest.hcall_line(H_PUT_TCE, liobn, bus_offset + (i << page_shift), t)
                 for i, t in sorted(tces.items())]
        for words in self.qt.batch(lines):
            if int(words[0], 16) != H_SUCCESS:
                raise RuntimeError(f"H_PUT_TCE: {words[0]}")

    # --- the VFIO model --------------------------------------------------------

    def model_snapshot(self):
        """The model's state snapshot, as lines (none before any VFIO open)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.model_state)
        except FileNotFoundError:
            return []
        with s, s.makefile("r") as f:
            return f.read().splitlines()

    def model_mappings(self):
        """(iova, size, vaddr, perm) of every mapping line of the snapshot."""
        out = []
        for line in self.model_snapshot():
            if line.startswith("mapping "):
                kv = dict(w.split("=", 1) for w in line.split()[1:])
                out.append((int(kv["iova"], 16), int(kv["size"], 16),
                            int(kv["vaddr"], 16), kv["perm"]))
        return out

    def model_objects(self):
        """The snapshot as (kind, {key: value}) pairs, e.g. ("window",
        {"c": "1", "start": "0x0", ...})."""
        out = []
        for line in self.model_snapshot():
            words = line.split()
            if words:
                out.append((words[0], dict(w.split("=", 1) for w in words[1:]
                                           if "=" in w)))
        return out

    def model_log_lines(self, prefix="", start=0, end=None):
        """Lines of the model's event log that start with prefix, from byte
        offset start (a model_log_size() taken before) to end."""
        try:
            with open(self.model_log, "rb") as f:
                f.seek(start)
                data = f.read() if end is None else f.read(end - start)
        except FileNotFoundError:
            return []
        return [l for l in data.decode(errors="replace").splitlines()
                if l.startswith(prefix)]

    def model_log_size(self):
        """The event log's size in bytes: mark a point in it (the model
        writes a line with one write() before its call returns)."""
        try:
            return os.path.getsize(self.model_log)
        except FileNotFoundError:
            return 0

    def injected(self, start=0, end=None):
        """The model's log lines of injected failures (VFIO_MODEL_FAIL)."""
        return [l for l in self.model_log_lines("error ", start, end)
                if " injected=1 " in l + " "]

    def ram_vaddr(self):
        """QEMU's host address of guest RAM (gpa 0), from the model's
        register-memory line for a region of the guest's RAM size."""
        for line in self.model_log_lines("register-memory "):
            kv = dict(w.split("=", 1) for w in line.split()[1:])
            if int(kv["size"], 16) == self.mem:
                return int(kv["vaddr"], 16)
        raise RuntimeError("no register-memory line for guest RAM in the model log")


def coalesce(ranges):
    """Merge (iova, size, vaddr, perm) ranges contiguous in iova and vaddr
    with one perm, as the model's snapshot does: a canonical form."""
    out = []
    for iova, size, vaddr, perm in sorted(ranges):
        if out:
            pi, ps, pv, pp = out[-1]
            if pi + ps == iova and pv + ps == vaddr and pp == perm:
                out[-1] = (pi, ps + size, pv, pp)
                continue
        out.append((iova, size, vaddr, perm))
    return out


# tce_mapping(): a TCE that gives access to a page that is not guest RAM.
# VFIO cannot map it (vfio_iommu_map_notify() reports the error and returns),
# so the host keeps whatever it mapped at that IOVA before.
UNMAPPABLE = "unmappable"


def tce_mapping(tce, shift, ram_size):
    """What VFIO makes of a TCE: None (no access: unmap), UNMAPPABLE, or
    (guest address, "r"|"rw") (RO -> "r"; WO and RW -> "rw": VFIO has no
    write-only)."""
    perm = tce & 3
    if not perm:
        return None
    size = 1 << shift
    gpa = tce & MASK64 & ~(size - 1)
    if gpa + size > ram_size:
        return UNMAPPABLE
    return gpa, "r" if perm == TCE_RO else "rw"


def valid_pages(windows, ram_size):
    """{iova: (gpa, perm)} of the TCEs VFIO maps, 4 KiB pages, for windows
    = [(bus_offset, page_shift, [tce...] or {index: tce})]: what a replay
    gives the host."""
    out = {}
    for bus_offset, shift, tces in windows:
        for i, tce in tces.items() if isinstance(tces, dict) else enumerate(tces):
            m = tce_mapping(tce, shift, ram_size)
            if m and m is not UNMAPPABLE:
                add_pages(out, bus_offset + (i << shift), 1 << shift, *m)
    return out


def add_pages(pages, iova, size, gpa, perm):
    for k in range(0, size, 4096):
        pages[iova + k] = (gpa + k, perm)


def model_pages(mappings, ram_vaddr):
    """The model's mapping lines as {iova: (gpa, perm)} in 4 KiB pages
    (vaddr - ram_vaddr: the guest address; None if outside guest RAM)."""
    out = {}
    for iova, size, vaddr, perm in mappings:
        add_pages(out, iova, size, vaddr - ram_vaddr, perm)
    return out


def expected_mappings(windows, ram_size, ram_vaddr):
    """The valid TCEs of windows as coalesced (iova, size, vaddr, perm)."""
    return coalesce((iova, 4096, ram_vaddr + gpa, perm)
                    for iova, (gpa, perm) in valid_pages(windows, ram_size).items())


def describe_page_diff(want, got, limit=6, want_name="expected",
                       got_name="the model"):
    """A few lines on how two {iova: (gpa, perm)} maps differ."""
    bad = sorted(i for i in set(want) | set(got) if want.get(i) != got.get(i))
    fmt = lambda v: "nothing" if v is None else f"gpa {v[0]:#x} {v[1]}"  # noqa: E731
    lines = [f"  iova {i:#x}: {want_name} {fmt(want.get(i))}, {got_name} {fmt(got.get(i))}"
             for i in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... {len(bad) - limit} more 4 KiB pages differ")
    return bad, "\n".join(lines)


def describe_diff(want, got, limit=8):
    """A few lines on how two coalesced mapping lists differ."""
    w, g = set(want), set(got)
    lines = []
    for tag, s in (("missing in the model", sorted(w - g)),
                   ("extra in the model", sorted(g - w))):
        for r in s[:limit]:
            lines.append(f"  {tag}: iova={r[0]:#x} size={r[1]:#x} vaddr={r[2]:#x} perm={r[3]}")
        if len(s) > limit:
            lines.append(f"  ... {len(s) - limit} more {tag}")
    return "\n".join(lines)


def be64_list(values):
    return struct.pack(f">{len(values)}Q", *values)
