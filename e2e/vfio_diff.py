"""Case diff of e2e/run.py: the VFIO calls of L2's QEMU on the real L1 kernel
(strace) against those the VFIO model (vfio-model/, LD_PRELOAD) answers for
the same QMP sequence, both normalized to `OP result`.

Kernel side: `strace -f -y -e trace=openat,ioctl,close`; only calls on
/dev/vfio/* and on VFIO device fds (anon_inode:[vfio-device]) are kept, the
ioctl request is decoded into the model's op name from the numbers in
linux-headers/linux/vfio.h and from the kind of fd it went to (several VFIO
requests share a number: strace prints "A or B").

Model side: VFIO_MODEL_CALLS=1 lines of VFIO_MODEL_LOG, `call op=NAME
ret=N` or `call op=NAME errno=ENAME`; closes from its event log lines
(`container-close`, `group-close`, `device-close`, not those of the exit).

Known differences: e2e/diff-known.txt. Python standard library only.
"""
import difflib
import fnmatch
import re

# The model's op names (vfio-model/README.md) for each kind of fd, keyed by
# the vfio.h name of the request.
CONTAINER_OPS = {
    "VFIO_GET_API_VERSION": "GET_API_VERSION",
    "VFIO_CHECK_EXTENSION": "CHECK_EXTENSION",
    "VFIO_SET_IOMMU": "SET_IOMMU",
    "VFIO_IOMMU_SPAPR_TCE_GET_INFO": "TCE_GET_INFO",
    "VFIO_IOMMU_MAP_DMA": "MAP_DMA",
    "VFIO_IOMMU_UNMAP_DMA": "UNMAP_DMA",
    "VFIO_IOMMU_ENABLE": "ENABLE",
    "VFIO_IOMMU_DISABLE": "DISABLE",
    "VFIO_IOMMU_SPAPR_REGISTER_MEMORY": "REGISTER_MEMORY",
    "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY": "UNREGISTER_MEMORY",
    "VFIO_IOMMU_SPAPR_TCE_CREATE": "TCE_CREATE",
    "VFIO_IOMMU_SPAPR_TCE_REMOVE": "TCE_REMOVE",
    "VFIO_EEH_PE_OP": "EEH_PE_OP",
}
GROUP_OPS = {
    "VFIO_GROUP_GET_STATUS": "GET_STATUS",
    "VFIO_GROUP_SET_CONTAINER": "SET_CONTAINER",
    "VFIO_GROUP_UNSET_CONTAINER": "UNSET_CONTAINER",
    "VFIO_GROUP_GET_DEVICE_FD": "GET_DEVICE_FD",
}
DEVICE_OPS = {
    "VFIO_DEVICE_GET_INFO": "GET_INFO",
    "VFIO_DEVICE_GET_REGION_INFO": "GET_REGION_INFO",
    "VFIO_DEVICE_GET_IRQ_INFO": "GET_IRQ_INFO",
    "VFIO_DEVICE_SET_IRQS": "SET_IRQS",
    "VFIO_DEVICE_RESET": "RESET",
    "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO": "GET_PCI_HOT_RESET_INFO",
    "VFIO_DEVICE_PCI_HOT_RESET": "PCI_HOT_RESET",
    "VFIO_DEVICE_FEATURE": "DEVICE_FEATURE",
}
KIND_OPS = {"container": CONTAINER_OPS, "group": GROUP_OPS, "device": DEVICE_OPS}
FD_RESULT = {"OPEN_CONTAINER", "OPEN_GROUP", "GET_DEVICE_FD"}
VFIO_TYPE = ord(";")
VFIO_BASE = 100


def vfio_numbers(vfio_h):
    """{name: request number (nr)} of every _IO(VFIO_TYPE, VFIO_BASE + n)."""
    nrs = {}
    with open(vfio_h) as f:
        for m in re.finditer(r"#define\s+(VFIO_\w+)\s+_IO\(\s*VFIO_TYPE\s*,\s*VFIO_BASE\s*\+\s*(\d+)\s*\)",
                             f.read()):
            nrs[m.group(1)] = VFIO_BASE + int(m.group(2))
    return nrs


def op_name(kind, nr, nrs):
    """The model's name of request number nr on an fd of that kind."""
    for name, op in KIND_OPS.get(kind, {}).items():
        if nrs.get(name) == nr:
            return op
    # The model's IOCTL_0x<req> uses the x86 encoding (_IOC_NONE = 0).
    return f"IOCTL_0x{(VFIO_TYPE << 8) | nr:x}"


def norm_ioctl_op(op):
    """IOCTL_0x<req>: ppc64's _IO() sets bit 29 (_IOC_NONE = 1): drop it."""
    m = re.fullmatch(r"IOCTL_0x([0-9a-fA-F]+)", op)
    if m:
        req = int(m.group(1), 16)
        if req >> 16 in (0, 0x2000):
            return f"IOCTL_0x{req & 0xffff:x}"
    return op


def fd_kind(path):
    if path == "/dev/vfio/vfio":
        return "container"
    if re.fullmatch(r"/dev/vfio/\d+", path or ""):
        return "group"
    if path and "vfio-device" in path:
        return "device"
    if path and path.startswith("/dev/vfio/"):
        return "other"
    return None


class Call:
    """One VFIO call: op, result (`ret=N`, `fd` or `errno=E`), detail (for
    display only), step (index of the QMP step it fell in), raw text."""

    def __init__(self, op, result, detail="", step=0, raw=""):
        self.op, self.result, self.detail, self.step, self.raw = op, result, detail, step, raw
        if op in FD_RESULT and result.startswith("ret="):
            self.result = "fd"

    def key(self):
        return f"{self.op} {self.result}"

    def __repr__(self):
        return self.key() + (f" ({self.detail})" if self.detail else "")


def step_of(lineno, marks):
    """marks: line counts at the end of each step (ascending)."""
    for i, n in enumerate(marks):
        if lineno < n:
            return i
    return len(marks)


def _split_request(rest):
    """'REQ, ARG' where REQ may be _IOC(...) with commas inside."""
    rest = rest.strip()
    if rest.startswith("_IOC("):
        depth = 0
        for i, c in enumerate(rest):
            depth += c == "("
            depth -= c == ")"
            if c == ")" and depth == 0:
                return rest[:i + 1], rest[i + 1:].lstrip(", ")
    req, _, arg = rest.partition(", ")
    return req, arg


def request_nr(req, nrs):
    """Request number from strace's rendering of it, or None."""
    for name in re.findall(r"\bVFIO_\w+", req):
        if name in nrs:
            return nrs[name]
    m = re.fullmatch(r"_IOC\(\s*[^,]+,\s*(0x[0-9a-f]+|\d+),\s*(0x[0-9a-f]+|\d+),\s*(0x[0-9a-f]+|\d+)\)", req)
    if m and int(m.group(1), 0) == VFIO_TYPE:
        return int(m.group(2), 0)
    m = re.fullmatch(r"0x([0-9a-f]+)", req)
    if m and (int(m.group(1), 16) >> 8) & 0xff == VFIO_TYPE:
        return int(m.group(1), 16) & 0xff
    return None


SYSCALL_RX = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+)(?:<([^>]*)>)?(?:\s+(E[A-Z0-9]+)\b.*)?(?:\s+\(.*\))?\s*$")


def parse_strace(text, nrs, marks=()):
    """The VFIO calls in an `strace -f -y` output, in order."""
    calls = []
    pending = {}
    fds = {}            # fd -> kind, for fds -y could not name
    for lineno, line in enumerate(text.splitlines()):
        m = re.match(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$", line)
        pid, body = (m.group(1), m.group(2)) if m else ("", line)
        if body.endswith("<unfinished ...>"):
            pending[pid] = body[:-len("<unfinished ...>")].rstrip()
            continue
        r = re.match(r"^<\.\.\. (\w+) resumed>\s?(.*)$", body)
        if r:
            body = pending.pop(pid, r.group(1) + "(") + r.group(2)
        m = SYSCALL_RX.match(body)
        if not m:
            continue
        sc, args, ret, retpath, err = m.groups()
        result = f"errno={err}" if err else f"ret={int(ret, 0)}"
        st = step_of(lineno, marks)
        if sc == "openat":
            p = re.search(r'"((?:[^"\\]|\\.)*)"', args)
            path = p.group(1) if p else ""
            kind = fd_kind(path)
            if kind is None:
                continue
            op = {"container": "OPEN_CONTAINER", "group": "OPEN_GROUP"}.get(kind, "OPEN_OTHER")
            if not err:
                fds[int(ret)] = kind
            calls.append(Call(op, result, path if op == "OPEN_OTHER" else "", st, line))
            continue
        f = re.match(r"^(\d+)(?:<([^>]*)>)?(?:,\s*(.*))?$", args)
        if not f:
            continue
        fd, path, rest = int(f.group(1)), f.group(2), f.group(3) or ""
        kind = fd_kind(path) if path is not None else fds.get(fd)
        if kind is None:
            continue
        if sc == "close":
            fds.pop(fd, None)
            calls.append(Call("CLOSE_" + kind.upper(), result, "", st, line))
        elif sc == "ioctl":
            req, arg = _split_request(rest)
            nr = request_nr(req, nrs)
            if nr is None:
                op = norm_ioctl_op(f"IOCTL_{req}")
            else:
                op = op_name(kind, nr, nrs)
            detail = f"arg {arg}" if op == "CHECK_EXTENSION" else ""
            if op == "GET_DEVICE_FD" and not err:
                fds[int(ret)] = "device"
            calls.append(Call(op, result, detail, st, line))
    return calls


def parse_model(text, marks=()):
    """The model's call record (VFIO_MODEL_CALLS=1) plus its close events."""
    lines = text.splitlines()
    has_close_calls = any(re.match(r"call op=CLOSE", ln) for ln in lines)
    calls = []
    for lineno, line in enumerate(lines):
        st = step_of(lineno, marks)
        m = re.match(r"call op=(\S+)\s+(ret=-?\d+|errno=\S+)(.*)$", line)
        if m:
            op = norm_ioctl_op(m.group(1))
            calls.append(Call(op, m.group(2), m.group(3).strip(), st, line))
            continue
        if has_close_calls:
            continue
        m = re.match(r"(container|group|device)-close\b(.*)$", line)
        if m and "exit=1" not in m.group(2):
            calls.append(Call("CLOSE_" + m.group(1).upper(), "ret=0", m.group(2).strip(), st, line))
    return calls


def load_known(path):
    """[(side, op glob, result glob, step glob, reason)] from diff-known.txt:
    `kernel|model OP RESULT [@STEP] | reason`."""
    known = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            head, sep, reason = line.partition("|")
            parts = head.split(None, 3)
            step = parts[3].strip() if len(parts) == 4 else "*"
            if not sep or len(parts) < 3 or parts[0] not in ("kernel", "model") \
                    or not step.startswith(("@", "*")) or not reason.strip():
                raise ValueError(f"{path}:{n}: want 'kernel|model OP RESULT [@STEP] | reason': {line!r}")
            known.append((parts[0], parts[1], parts[2], step.lstrip("@"), reason.strip()))
    return known


def explain(side, call, label, known, used=None):
    for i, (s, op, res, step, reason) in enumerate(known):
        if s == side and fnmatch.fnmatchcase(call.op, op) and fnmatch.fnmatchcase(call.result, res) \
                and fnmatch.fnmatchcase(label, step):
            if used is not None:
                used.add(i)
            return reason
    return None


def label_of(steps, c):
    return steps[c.step] if c.step < len(steps) else "after the last step"


def compare(kernel, model, known, ksteps=(), msteps=()):
    """Diff the two sequences. Returns (differences, unexplained, unused):
    differences and unexplained are lists of (side, index, Call, step
    label, reason or None); unused, the known entries no difference used."""
    a = [c.key() for c in kernel]
    b = [c.key() for c in model]
    diffs = []
    used = set()
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        for i in range(i1, i2):
            lb = label_of(ksteps, kernel[i])
            diffs.append(("kernel", i, kernel[i], lb, explain("kernel", kernel[i], lb, known, used)))
        for j in range(j1, j2):
            lb = label_of(msteps, model[j])
            diffs.append(("model", j, model[j], lb, explain("model", model[j], lb, known, used)))
    unused = [k for i, k in enumerate(known) if i not in used]
    return diffs, [d for d in diffs if d[4] is None], unused


def render(kernel, model, ksteps, msteps):
    """Both sequences merged, unified-diff style, with the step each call
    fell in (the kernel's steps; a model-only call shows the model's)."""
    out = []
    a = [c.key() for c in kernel]
    b = [c.key() for c in model]
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    last = None
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        rows = []
        if tag == "equal":
            rows = [(" ", kernel[i]) for i in range(i1, i2)]
        else:
            rows = [("-", kernel[i]) for i in range(i1, i2)] + [("+", model[j]) for j in range(j1, j2)]
        for mark, c in rows:
            label = label_of(msteps if mark == "+" else ksteps, c)
            if label != last:
                last = label
                out.append(f"  [{label}]")
            out.append(f"  {mark} {c!r}")
    return "\n".join(out)


def windows_from_trace(lines):
    """TCE_CREATE/TCE_REMOVE with their arguments as QEMU saw them on L1
    (its trace events, which strace cannot give: it does not decode VFIO
    structs): ("create", page_shift, levels, size, start) / ("remove", start)."""
    out = []
    for ln in lines:
        m = re.search(r"vfio_spapr_create_window pageshift=(0x[0-9a-f]+) levels=(\d+) "
                      r"winsize=(0x[0-9a-f]+) offset=(0x[0-9a-f]+)", ln)
        if m:
            out.append(("create", int(m.group(1), 16), int(m.group(2)), int(m.group(3), 16),
                        int(m.group(4), 16)))
        m = re.search(r"vfio_spapr_remove_window offset=(0x[0-9a-f]+)", ln)
        if m:
            out.append(("remove", int(m.group(1), 16)))
    return out


def windows_from_model(text):
    """The same from the model's event log (window-create/-remove lines;
    a create the kernel makes by itself, default=1, is no call of QEMU's)."""
    out = []
    for ln in text.splitlines():
        kv = dict(re.findall(r"(\w+)=(\S+)", ln))
        if ln.startswith("window-create ") and "default" not in kv:
            out.append(("create", int(kv["page_shift"], 0), int(kv["levels"], 0), int(kv["size"], 0),
                        int(kv["start"], 0)))
        elif ln.startswith("window-remove "):
            out.append(("remove", int(kv["start"], 0)))
    return out


def fmt_window(w):
    if w[0] == "create":
        return f"TCE_CREATE page_shift={w[1]} levels={w[2]} size={w[3]:#x} -> start={w[4]:#x}"
    return f"TCE_REMOVE start={w[1]:#x}"
