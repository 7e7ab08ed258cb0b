#!/usr/bin/env python3
"""Migration with TCE tables that VFIO used (issue 11, part 5).

Pseries QEMUs (-accel qtest) with PHB 1, small default windows
(dma_win_size) and the VFIO model preloaded:

  a  blocked: with vfio-pci on PHB 1 and TCEs in its default window and a
     DDW, `migrate` to a file (file: URI, then exec:cat>FILE) is refused
     with the VFIO blocker (the error names the device and says VFIO
     migration is not supported; query-migrate lists it in blocked-reasons),
     no file is written, and the source runs on unchanged: status as before
     (running, then again paused after `stop`), the device still there, both
     tables still in VFIO use, every TCE as before, the model's mappings as
     before and still the valid TCEs, and a new TCE is mapped.
  b  preserved: a second source goes through a plug/unplug cycle (VFIO
     starts and stops using the default window and a DDW created while
     plugged), gets TCEs in both windows before and after the unplug (valid
     ones, invalid ones, junk bits, addresses outside RAM: the table keeps
     any 64-bit value), migrates to a file, and a destination started with
     `-incoming defer` takes it with migrate-incoming: every TCE of both
     windows is identical (H_GET_TCE over each), the DDW has its LIOBN,
     offset, page size and size (the entry past its end gets H_PARAMETER),
     and x-vfio-in-use is false on both tables of both QEMUs.
  c  VFIO on the destination: vfio-pci hot-plugged there starts VFIO use of
     both windows (x-vfio-in-use true, x-vfio-starts 1 on each), and the
     model maps exactly the valid TCEs of both; a TCE put then is mapped
     too; unplug stops it again.

Prints "PASS migration/NAME" / "FAIL migration/NAME: why" per check and a
summary; exits non-zero on any failure.
Usage: migration.py [--seed S] [--tces N] [--qemu Q] [--model M]
"""

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    FATAL, H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_SUCCESS, HOST1, MiB,
    PHB1_LIOBN, PHB1_TCET, PHB1_TCET64, TCE_RO, TCE_RW, TCE_WO, Machine,
    describe_page_diff, model_pages, valid_pages)

RAM_MIB = 512
RAM = RAM_MIB * MiB
# Window sizes: reduced (make check) and full (make check-migration)
SIZES = {
    # default window (4 KiB TCEs), DDW (page shift, window shift), TCEs put
    "reduced": (32 * MiB, (16, 24), 2000),       # 8192 + 256 entries
    "full": (1024 * MiB, (16, 30), 60000),       # 262144 + 16384 entries
}
DEFAULT_WIN, DDW = SIZES["reduced"][:2]          # main() sets them


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name, ok, why=""):
        self.results.append((name, bool(ok), why))
        line = f"PASS migration/{name}" if ok else f"FAIL migration/{name}: {why}"
        print(line, flush=True)
        return ok

    def failed(self):
        return [r for r in self.results if not r[1]]


def random_tces(rng, n, shift, count, mappable_share=0.7):
    """{index: tce} for count random entries: mostly valid RAM pages (some
    in runs), the rest anything a table may hold."""
    page = 1 << shift
    out = {}
    while len(out) < count:
        i = rng.randrange(n)
        r = rng.random()
        if r < mappable_share:
            run = rng.choice([1, 1, 1, 4, 16])
            gpa = rng.randrange(RAM // page - run) * page
            perm = rng.choice([TCE_RO, TCE_WO, TCE_RW])
            for k in range(min(run, n - i)):
                out[i + k] = (gpa + k * page) | perm
        elif r < 0.8:
            out[i] = rng.randrange(RAM // page) * page | (rng.randrange(1, page >> 2) << 2) \
                | rng.randrange(4)                           # junk bits, any perm
        elif r < 0.9:
            out[i] = (RAM + rng.randrange(64) * page) | TCE_RW     # past RAM
        else:
            out[i] = rng.getrandbits(64)
    return out


def windows(m, ddw_liobn, ddw_bus):
    """Both windows of PHB 1 read back: [(liobn, bus, shift, [tce...])]."""
    return [(PHB1_LIOBN, 0, 12, m.read_table(PHB1_LIOBN, 0, 12, DEFAULT_WIN >> 12)),
            (ddw_liobn, ddw_bus, DDW[0],
             m.read_table(ddw_liobn, ddw_bus, DDW[0], 1 << (DDW[1] - DDW[0])))]


def host_vs_valid(m, wins):
    """(differing pages, description): the model's mappings against the
    valid TCEs of wins."""
    want = valid_pages([(bus, shift, tces) for _, bus, shift, tces in wins], RAM)
    got = model_pages(m.model_mappings(), m.ram_vaddr())
    return describe_page_diff(want, got)


def in_use(m):
    return {p: m.qom(p, "x-vfio-in-use") for p in (PHB1_TCET, PHB1_TCET64)}


def wait_migration(m, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = m.qmp.cmd("query-migrate")
        if r.get("status") in ("completed", "failed", "cancelled"):
            return r
        time.sleep(0.05)
    return m.qmp.cmd("query-migrate")


def clean_exit(c, m, name):
    alive = m.alive()
    status = m.close()
    fatal = [l for l in m.output().splitlines() if FATAL.search(l)]
    c.check(f"{name}-no-abort", alive and status == 0 and not fatal,
            f"alive={alive} exit={status} {fatal[:1]}")


def part_a(c, a, work, rng):
    m = Machine(a.qemu, work, "a-source", model=a.model, mem_mib=RAM_MIB,
                dma_win_size=DEFAULT_WIN)
    try:
        kind, val = m.plug()
        if not c.check("a-setup", kind == "return", f"device_add: {val}"):
            return
        liobn, bus = m.create_ddw(*DDW)
        m.put_tces(PHB1_LIOBN, 0, 12, random_tces(rng, DEFAULT_WIN >> 12, 12, a.tces))
        m.put_tces(liobn, bus, DDW[0], random_tces(rng, 1 << (DDW[1] - DDW[0]),
                                                    DDW[0], a.tces // 16))
        before = windows(m, liobn, bus)
        maps_before = sorted(m.model_mappings())
        bad, text = host_vs_valid(m, before)
        c.check("a-setup-host-maps-valid-tces", not bad, text)
        target = os.path.join(m.dir, "migration.bin")

        for state in ("running", "paused"):
            if state == "paused":
                m.qmp.cmd("stop")
            status0 = m.status()
            for uri in (f"file:{target}", f"exec:cat>{target}"):
                kind, err = m.qmp.try_cmd("migrate", uri=uri)
                q = m.qmp.cmd("query-migrate")
                blocked = q.get("blocked-reasons", [])
                c.check(f"a-refused-{state}-{uri.split(':')[0]}",
                        kind == "error" and HOST1 in err and "VFIO" in err
                        and "migration" in err.lower()
                        and q.get("status") not in ("active", "completed", "setup")
                        and any(HOST1 in b and "VFIO" in b for b in blocked)
                        and not os.path.exists(target),
                        f"migrate {uri}: {kind} {err!r}; query-migrate {q}; "
                        f"file written: {os.path.exists(target)}")
                if kind == "error":
                    print(f"  migrate {uri} ({state}): {err}")
            after = windows(m, liobn, bus)
            bad, text = host_vs_valid(m, after)
            c.check(f"a-source-unchanged-{state}",
                    m.alive() and m.status() == status0 == state and
                    "vfio1" in m.devices() and
                    all(in_use(m).values()) and after == before and
                    sorted(m.model_mappings()) == maps_before and not bad,
                    f"status {m.status()} (was {status0}), devices {m.devices()}, "
                    f"in use {in_use(m)}, TCEs equal: {after == before}, "
                    f"mappings equal: {sorted(m.model_mappings()) == maps_before}\n{text}")
        m.qmp.cmd("cont")
        # The source goes on: a new TCE reaches the host
        free = next(i for i, t in enumerate(before[0][3]) if not t)
        rc = m.qt.hcall(H_PUT_TCE, PHB1_LIOBN, free << 12, 0x4321000 | TCE_RW)[0]
        got = model_pages(m.model_mappings(), m.ram_vaddr()).get(free << 12)
        c.check("a-source-maps-new-tces", rc == H_SUCCESS and got == (0x4321000, "rw")
                and m.status() == "running",
                f"H_PUT_TCE {rc:#x}, host {got}, status {m.status()}")
    finally:
        clean_exit(c, m, "a-source")


def part_bc(c, a, work, rng):
    src = Machine(a.qemu, work, "b-source", model=a.model, mem_mib=RAM_MIB,
                  dma_win_size=DEFAULT_WIN)
    dst = None
    try:
        # a plug/unplug cycle, with a DDW created while VFIO uses the PHB
        kind, val = src.plug()
        if not c.check("b-setup", kind == "return", f"device_add: {val}"):
            return
        liobn, bus = src.create_ddw(*DDW)
        n_ddw = 1 << (DDW[1] - DDW[0])
        src.put_tces(PHB1_LIOBN, 0, 12, random_tces(rng, DEFAULT_WIN >> 12, 12,
                                                    a.tces // 2))
        src.put_tces(liobn, bus, DDW[0], random_tces(rng, n_ddw, DDW[0], a.tces // 32))
        used = in_use(src)
        src.unplug()
        st = {p: src.tcet_state(p) for p in (PHB1_TCET, PHB1_TCET64)}
        c.check("b-source-plug-unplug-cycle",
                all(used.values()) and
                all(s["x-vfio-starts"] == 1 and s["x-vfio-stops"] == 1 and
                    not s["x-vfio-in-use"] for s in st.values()) and
                not src.model_mappings(),
                f"in use while plugged {used}, after unplug {st}, "
                f"{len(src.model_mappings())} host mappings left")
        # more TCEs after VFIO left
        src.put_tces(PHB1_LIOBN, 0, 12, random_tces(rng, DEFAULT_WIN >> 12, 12,
                                                    a.tces // 2))
        src.put_tces(liobn, bus, DDW[0], random_tces(rng, n_ddw, DDW[0], a.tces // 32))
        before = windows(src, liobn, bus)
        q = src.qmp.cmd("query-migrate")
        c.check("b-no-blocker-after-unplug", not q.get("blocked-reasons"),
                f"query-migrate {q}")

        target = os.path.join(work, "b-migration.bin")
        t0 = time.monotonic()
        src.qmp.cmd("migrate", uri=f"file:{target}")
        r = wait_migration(src)
        c.check("b-migrate-to-file", r.get("status") == "completed" and
                src.status() == "postmigrate",
                f"query-migrate {r}, source status {src.status()}")
        print(f"  migrated to {target}: {os.path.getsize(target) if os.path.exists(target) else 0} "
              f"bytes in {time.monotonic() - t0:.2f} s")
        src_use = in_use(src)

        dst = Machine(a.qemu, work, "b-destination", model=a.model, mem_mib=RAM_MIB,
                      dma_win_size=DEFAULT_WIN, incoming="defer")
        dst.qmp.cmd("migrate-incoming", uri=f"file:{target}")
        r = wait_migration(dst)
        deadline = time.monotonic() + 30
        while dst.status() not in ("running", "paused") and time.monotonic() < deadline:
            time.sleep(0.05)
        c.check("b-migrate-incoming", r.get("status") == "completed" and
                dst.status() == "running",
                f"query-migrate {r}, destination status {dst.status()}")
        after = windows(dst, liobn, bus)
        diff = [(w[0], i) for w, v in zip(before, after)
                for i, (x, y) in enumerate(zip(w[3], v[3])) if x != y]
        past = dst.qt.hcall(H_GET_TCE, liobn, bus + (n_ddw << DDW[0]))[0]
        past_def = dst.qt.hcall(H_GET_TCE, PHB1_LIOBN, DEFAULT_WIN)[0]
        valid = sum(1 for w in before for t in w[3] if t & 3)
        nonzero = sum(1 for w in before for t in w[3] if t)
        c.check("b-tces-identical",
                not diff and past == H_PARAMETER and past_def == H_PARAMETER,
                f"{len(diff)} TCEs differ, first {diff[:3]}; H_GET_TCE past the DDW "
                f"{past:#x}, past the default window {past_def:#x}")
        print(f"  {nonzero} non-zero TCEs ({valid} with access) in "
              f"{len(before[0][3])} + {len(before[1][3])} entries, identical")
        dst_st = {p: dst.tcet_state(p) for p in (PHB1_TCET, PHB1_TCET64)}
        c.check("b-vfio-use-off",
                not any(src_use.values()) and
                not any(s["x-vfio-in-use"] for s in dst_st.values()) and
                not dst.model_mappings() and not dst.model_snapshot(),
                f"source {src_use}, destination {dst_st}, destination model "
                f"{dst.model_snapshot()[:3]}")

        # c: VFIO on the destination
        kind, val = dst.plug()
        if c.check("c-hotplug-on-destination", kind == "return", f"device_add: {val}"):
            st = {p: dst.tcet_state(p) for p in (PHB1_TCET, PHB1_TCET64)}
            c.check("c-vfio-use-starts",
                    all(s["x-vfio-in-use"] and s["x-vfio-starts"] == 1 and
                        s["x-vfio-stops"] == 0 for s in st.values()),
                    f"{st}")
            bad, text = host_vs_valid(dst, after)
            nmaps = len(dst.model_mappings())
            c.check("c-host-maps-valid-tces", not bad and nmaps > 0,
                    f"{len(bad)} pages differ ({nmaps} mapping lines):\n{text}")
            print(f"  the destination's host maps {nmaps} ranges, exactly the valid TCEs")
            free = next(i for i, t in enumerate(after[1][3]) if not t)
            iova = bus + (free << DDW[0])
            rc = dst.qt.hcall(H_PUT_TCE, liobn, iova, 0x5670000 | TCE_RO)[0]
            got = model_pages(dst.model_mappings(), dst.ram_vaddr()).get(iova)
            c.check("c-new-tce-mapped", rc == H_SUCCESS and got == (0x5670000, "r"),
                    f"H_PUT_TCE {rc:#x}, host {got}")
            dst.unplug()
            st = {p: dst.tcet_state(p) for p in (PHB1_TCET, PHB1_TCET64)}
            c.check("c-unplug-stops-vfio-use",
                    all(not s["x-vfio-in-use"] and s["x-vfio-stops"] == 1
                        for s in st.values()) and not dst.model_mappings(),
                    f"{st}, {len(dst.model_mappings())} host mappings")

            # and on: the destination, VFIO gone again, migrates once more
            before2 = windows(dst, liobn, bus)
            target2 = os.path.join(work, "c-migration.bin")
            dst.qmp.cmd("migrate", uri=f"file:{target2}")
            r = wait_migration(dst)
            dst2 = Machine(a.qemu, work, "c-destination", model=a.model,
                           mem_mib=RAM_MIB, dma_win_size=DEFAULT_WIN,
                           incoming="defer")
            try:
                dst2.qmp.cmd("migrate-incoming", uri=f"file:{target2}")
                r2 = wait_migration(dst2)
                after2 = windows(dst2, liobn, bus)
                st2 = {p: dst2.tcet_state(p) for p in (PHB1_TCET, PHB1_TCET64)}
                c.check("c-migrates-again",
                        r.get("status") == r2.get("status") == "completed" and
                        after2 == before2 and before2[1][3][free] == 0x5670000 | TCE_RO
                        and not any(s["x-vfio-in-use"] for s in st2.values()),
                        f"out {r.get('status')}, in {r2.get('status')}, TCEs "
                        f"identical: {after2 == before2}, {st2}")
            finally:
                clean_exit(c, dst2, "c-destination")
    finally:
        clean_exit(c, src, "b-source")
        if dst:
            clean_exit(c, dst, "b-destination")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=None, help="default: random, printed")
    p.add_argument("--size", choices=SIZES, default="full",
                   help="reduced: 32 MiB default window, 16 MiB DDW, 2000 TCEs; "
                        "full (default): 1 GiB, 1 GiB of 64 KiB, 60000 TCEs")
    p.add_argument("--tces", type=int, default=None,
                   help="TCEs put into the default window (a 16th of it in the DDW)")
    p.add_argument("--qemu", default=os.path.join(root, "build/bin/qemu-system-ppc64"))
    p.add_argument("--model", default=os.path.join(root, "build/lib/libvfio-model.so"))
    p.add_argument("--tmp", default=None)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 32)
    global DEFAULT_WIN, DDW
    DEFAULT_WIN, DDW, tces = SIZES[a.size]
    a.tces = min(a.tces or tces, (DEFAULT_WIN >> 12) // 2)
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="migration-", dir=a.tmp)
    print(f"migration: seed {a.seed}, {a.size} size: default window "
          f"{DEFAULT_WIN >> 20} MiB, DDW {1 << DDW[1] >> 20} MiB of "
          f"{1 << DDW[0] >> 10} KiB pages, {a.tces} TCEs; QEMU {a.qemu}; work dir {work}",
          flush=True)
    t0 = time.monotonic()
    c = Checks()
    for part in (part_a, part_bc):
        try:
            part(c, a, work, rng)
        except Exception as e:          # noqa: BLE001
            c.check(f"{part.__name__.replace('_', '-')}-ran", False,
                    f"{type(e).__name__}: {e}")
    failed = c.failed()
    el = time.monotonic() - t0
    if failed:
        print(f"\nmigration: FAILED, {len(failed)} of {len(c.results)} checks "
              f"(seed {a.seed}, {el:.1f} s; work dir {work} kept)")
        return 1
    print(f"\nmigration: PASSED, {len(c.results)} checks (seed {a.seed}, {el:.1f} s)")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
