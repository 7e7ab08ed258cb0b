"""The host's truth for e2e/run.py: what L1's host IOMMU maps for an L2
device must equal the valid TCEs of the L2 guest's windows.

L1 is a pseries guest of L0 (our x86 QEMU). L1's VFIO driver writes L1's
TCEs into L0 with H_PUT_TCE (tce_exchange_pseries: H_GET_TCE, H_PUT_TCE),
clears them with H_PUT_TCE 0 or H_STUFF_TCE, and makes and removes windows
with RTAS ibm,create-pe-dma-window / remove / reset. L0 holds them in
userspace and traces each one (L0_TRACES, to a file). L1IOMMU rebuilds L1's
TCE tables per LIOBN from that trace, and checks the rebuild against the
tables themselves, read from L0's memory (/proc/PID/mem at the address
spapr_iommu_new_table traced): a rebuild that the trace cannot make (an
H_PUT_TCE_INDIRECT, whose trace names only its last entry) shows there.

The L2 side comes from L1: e2e/guest/l2view reads each enabled window's
table out of L2's QEMU (KVM's mmap or QEMU's array, at the address L2's
spapr_iommu_new_table traced) and, for every valid entry, the L1 physical
pages behind its guest page (/proc/PID/pagemap of the guest RAM's HVA).

compare() then expects, for each L1 PHB whose group a plugged device uses,
every valid L2 TCE at the same IOVA in L1's window (VFIO maps IOVAs 1:1),
to the L1 address backing its guest address, and nothing else mapped.
Python standard library only.
"""
import array
import os
import re
import time

L0_TRACES = ["spapr_iommu_pci_put", "spapr_iommu_pci_stuff", "spapr_iommu_pci_indirect",
             "spapr_iommu_ddw_create", "spapr_iommu_ddw_remove", "spapr_iommu_ddw_reset",
             "spapr_iommu_new_table"]
BASE_BUID = 0x800000020000000       # SPAPR_PCI_BASE_BUID: BUID = base + PHB index
DEFAULT_WINDOW = (0, 12, 1 << 18)   # a PHB's default window: at 0, 4 KiB pages, 1 GiB
PERM = 3                            # TCE_PCI_READ | TCE_PCI_WRITE
L1_PAGE = 1 << 16                   # L1 is a -64k kernel


def phb_of(liobn):
    """The PHB index of an sPAPR PCI LIOBN (SPAPR_PCI_LIOBN(index, window))."""
    return (liobn >> 8) & 0xff


class L1IOMMU:
    """L1's TCE tables, rebuilt from L0's trace (path) and read from L0's
    memory (pid). update() reads the trace from where it stopped; with
    rotate (a function that points L0's log at a new file: HMP logfile) it
    moves L0 to a new file first and deletes the old one once read, so the
    trace (a million lines per window L1 clears) never piles up on disk."""

    def __init__(self, path, pid, rotate=None):
        self.path, self.pid, self.off, self.rotate = path, pid, 0, rotate
        self.base, self.files, self.bytes = path, 0, 0
        self.tables = {}            # liobn -> {index: tce}, valid or not
        self.geo = {}               # liobn -> (bus offset, page shift, entries)
        self.addr = {}              # liobn -> the table's address in L0
        self.indirect = set()       # liobns that got an H_PUT_TCE_INDIRECT
        self.lines = 0
        self.indirect_lines = {}    # liobn -> H_PUT_TCE_INDIRECT calls (any LIOBN)

    def update(self):
        if self.rotate:
            # L0 logs to a new file from now on; the old one is complete
            # once L0 has closed it (after an RCU grace period)
            old, self.files = self.path, self.files + 1
            self.path = f"{self.base}.{self.files}"
            self.rotate(self.path)
            deadline = time.monotonic() + 10
            while any(os.path.realpath(f"/proc/{self.pid}/fd/{fd}") == old
                      for fd in os.listdir(f"/proc/{self.pid}/fd")) and time.monotonic() < deadline:
                time.sleep(0.01)
            with open(old, "rb") as f:
                data = f.read()
            os.unlink(old)
        else:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
            data = data[:data.rfind(b"\n") + 1]     # whole lines only
            self.off += len(data)
        self.bytes += len(data)
        lines = data.decode(errors="replace").splitlines()
        self.lines += len(lines)
        tables = self.tables
        for ln in lines:
            # Most lines clear an entry of a window with none set (L1's VFIO
            # clears whole windows entry by entry): skip those quickly.
            if " tce=0x0 " in ln and ln.startswith("spapr_iommu_pci_put liobn=") \
                    and not tables.get(int(ln[26:36], 16)):
                continue
            self._line(ln)

    def _line(self, ln):
        if ln[:1].isdigit():                        # "PID@TIME:" with -msg timestamp=on
            ln = ln.partition(":")[2]
        ev, _, args = ln.partition(" ")
        if ev == "spapr_iommu_pci_put":             # most lines: the fast path
            a = args.split()
            if a[3] == "ret=0":
                liobn, tce = int(a[0][6:], 16), int(a[2][4:], 16)
                if liobn in self.tables and (tce or self.tables[liobn]):
                    self._set(liobn, int(a[1][5:], 16), tce, 1)
            return
        kv = dict(re.findall(r"([a-z ]+)=(\S+?),?(?:\s|$)", args))
        kv = {k.strip(): int(v, 0) for k, v in kv.items() if re.match(r"-?(0x)?[0-9a-f]+$", v)}
        if ev == "spapr_iommu_pci_stuff":
            if kv["liobn"] in self.tables:
                self._set(kv["liobn"], kv["ioba"], kv["tcevalue"], kv["npages"])
        elif ev == "spapr_iommu_pci_indirect":
            self.indirect_lines[kv["liobn"]] = self.indirect_lines.get(kv["liobn"], 0) + 1
            if kv["liobn"] in self.tables:
                self.indirect.add(kv["liobn"])
        elif ev == "spapr_iommu_new_table":
            liobn = kv["liobn"]
            self.tables[liobn] = {}
            self.addr[liobn] = kv["table"]
            self.indirect.discard(liobn)
            self.geo[liobn] = DEFAULT_WINDOW if liobn & 0xff == 0 else None
        elif ev == "spapr_iommu_ddw_create":
            shift = kv["page size"].bit_length() - 1
            self.geo[kv["liobn"]] = (kv["start addr"], shift, kv["requested"] >> shift)
        elif ev == "spapr_iommu_ddw_remove":
            for d in (self.tables, self.addr, self.geo):
                d.pop(kv["liobn"], None)
        elif ev == "spapr_iommu_ddw_reset":
            # Traced after the reset, which re-made the default window
            # (its new_table came first): the PHB's other windows are gone.
            phb = kv["buid"] - BASE_BUID
            for liobn in [x for x in self.tables if phb_of(x) == phb and x & 0xff]:
                for d in (self.tables, self.addr, self.geo):
                    d.pop(liobn, None)

    def _set(self, liobn, ioba, tce, n):
        """n entries from ioba set to tce, as QEMU does (put_tce_emu stops at
        the window's end; H_STUFF_TCE refuses more entries than it has)."""
        geo = self.geo.get(liobn)
        if not geo:
            self.indirect.add(liobn)                # a window we cannot place
            return
        off, shift, nb = geo
        first = (ioba - off) >> shift
        if n > nb or first < 0:
            return
        t = self.tables[liobn]
        if tce:
            for i in range(first, min(first + n, nb)):
                t[i] = tce
        elif n > len(t):
            for i in [i for i in t if first <= i < first + n]:
                del t[i]
        else:
            for i in range(first, first + n):
                t.pop(i, None)

    def memory(self, liobn):
        """The table as it is in L0's memory: {index: tce} of its nonzero entries."""
        nb = self.geo[liobn][2]
        with open(f"/proc/{self.pid}/mem", "rb") as f:
            f.seek(self.addr[liobn])
            a = array.array("Q")
            a.frombytes(f.read(nb * 8))
        return {i: v for i, v in enumerate(a) if v}

    def check_rebuild(self, liobns):
        """Differences between the rebuilt tables and L0's memory."""
        bad = []
        for liobn in liobns:
            if liobn in self.indirect:
                bad.append(f"L1 LIOBN {liobn:#x}: H_PUT_TCE_INDIRECT or a put outside a known "
                           "window: the trace cannot rebuild it")
                continue
            if not self.geo.get(liobn):
                bad.append(f"L1 LIOBN {liobn:#x}: no geometry")
                continue
            mem = self.memory(liobn)
            rebuilt = {i: v for i, v in self.tables[liobn].items() if v}
            if mem != rebuilt:
                diff = sorted(set(mem.items()) ^ set(rebuilt.items()))[:3]
                bad.append(f"L1 LIOBN {liobn:#x}: the rebuild from L0's trace differs from L0's "
                           f"memory in {len(set(mem.items()) ^ set(rebuilt.items()))} entries, "
                           f"e.g. (index, tce) {[(hex(i), hex(v)) for i, v in diff]}")
        return bad


def parse_l2view(text):
    """l2view's output: {table#: [(index, tce, [(L1 PA or None, chunks), ...]), ...]}."""
    out = {}
    for ln in text.splitlines():
        w = ln.split()
        if w[:1] == ["T"]:
            out.setdefault(int(w[1]), [])
        elif w[:1] == ["E"]:
            runs = [(None if r.split("+")[0] == "-" else int(r.split("+")[0], 16), int(r.split("+")[1]))
                    for r in w[4:]]
            out.setdefault(int(w[1]), []).append((int(w[2], 16), int(w[3], 16), runs))
    return out


def expected(windows, view):
    """{iova: (L1 PA or None, size, perm, source)} for every valid L2 TCE,
    cut in l2view's chunks (an L2 page, or an L1 page of a larger one);
    windows[t] = (liobn, bus offset, page shift) of l2view's table t."""
    exp = {}
    for t, (liobn, off, shift) in enumerate(windows):
        chunk = min(1 << shift, L1_PAGE)
        for index, tce, runs in view.get(t, []):
            iova = off + (index << shift)
            for start, n in runs:
                for k in range(n):
                    exp[iova] = (None if start is None else start + k * chunk, chunk, tce & PERM,
                                 f"L2 {liobn:#x}[{index:#x}]={tce:#x}")
                    iova += chunk
    return exp


def compare(exp, iommu, phb):
    """Mismatches between exp (from expected()) and L1's tables on L0 PHB
    index phb (those of the group a device uses; exp is empty if none)."""
    bad = []
    wins = {l: iommu.geo[l] for l in iommu.tables if phb_of(l) == phb and iommu.geo.get(l)}

    def where(iova):
        for liobn, (off, shift, nb) in wins.items():
            if off <= iova < off + (nb << shift):
                return liobn, (iova - off) >> shift, shift
        return None, None, None
    seen = set()
    for iova, (pa, chunk, perm, src) in sorted(exp.items()):
        liobn, first, shift = where(iova)
        if liobn is None:
            bad.append(f"{src}: iova {iova:#x} -> {pa and hex(pa)} perm {perm}: no L1 window on PHB {phb} holds it")
            continue
        for j in range(max(1, chunk >> shift)):
            i = first + j
            seen.add((liobn, i))
            got = iommu.tables[liobn].get(i, 0)
            a = iova + (j << shift)
            if pa is None:
                bad.append(f"{src}: iova {a:#x}: its guest page is not backed in L1 (L1 {liobn:#x}[{i:#x}]={got:#x})")
                continue
            want = (pa + (j << shift)) & ~((1 << shift) - 1)
            # VFIO's map asks for read always, write if the TCE allows it;
            # KVM maps the TCE's own permissions: accept both
            ok_perm = (got & PERM) in (perm, perm | 1)
            if not got & PERM or (got & ~0xfff) != want or not ok_perm:
                perms = f"{perm}" if perm == perm | 1 else f"{perm} or {perm | 1}"
                bad.append(f"{src}: iova {a:#x}: want L1 {liobn:#x}[{i:#x}] = {want | perm:#x} "
                           f"(perm {perms}), have {got:#x}")
    for liobn in wins:
        off, shift, _ = wins[liobn]
        for i, tce in sorted(iommu.tables[liobn].items()):
            if tce & PERM and (liobn, i) not in seen:
                bad.append(f"L1 {liobn:#x}[{i:#x}] = {tce:#x} maps iova {off + (i << shift):#x},"
                           " which no valid L2 TCE maps")
    return bad


def self_test(exp, iommu, phb):
    """The comparison must catch a wrong, a missing and an extra mapping:
    run it on deliberately wrong expectations; returns the faults it missed
    (None if there is nothing valid to try it on)."""
    valid = sorted(k for k, v in exp.items() if v[0] is not None)
    if not valid:
        return None
    k = valid[len(valid) // 2]
    free = next(k + m * exp[k][1] for m in range(1, 1 << 20) if k + m * exp[k][1] not in exp)
    wrong_pa, missing, extra = dict(exp), dict(exp), dict(exp)
    wrong_pa[k] = (exp[k][0] + 7 * L1_PAGE,) + exp[k][1:]
    del missing[k]
    extra[free] = exp[k]
    base = len(compare(exp, iommu, phb))
    return [what for what, e in (("a wrong L1 address", wrong_pa),
                                 ("an L1 mapping with no valid L2 TCE", missing),
                                 ("a valid L2 TCE L1 does not map", extra))
            if len(compare(e, iommu, phb)) <= base]
