"""A client for QEMU's qtest text protocol (system/qtest.c), Python stdlib only.

QEMU connects to a socket we listen on (as libqtest does), so it can be
started with "-qtest unix:PATH" before anyone talks to it. Commands are one
line each and answered in order with one "OK ..." or "ERR ..." line, which
lets batch() send many commands before reading any reply: the round trip is
then paid once per batch, not once per command.
"""

import base64
import os
import socket
import struct

# Replies we have not read yet stay in QEMU's socket buffer; past a few
# hundred KiB QEMU would block writing them while we block writing commands.
# An hcall reply is ~200 bytes, so this many commands per batch is safe.
BATCH = 256


class QTestError(Exception):
    pass


class QTest:
    def __init__(self, path):
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.sock = self.file = None

    def args(self):
        """QEMU's command-line options for this socket."""
        # Without -qtest-log, QEMU echoes every command on stderr.
        return ["-accel", "qtest", "-qtest", f"unix:{self.path}",
                "-qtest-log", "none"]

    def accept(self, timeout=30):
        self.listener.settimeout(timeout)
        self.sock, _ = self.listener.accept()
        self.listener.close()
        os.unlink(self.path)
        self.file = self.sock.makefile("rwb", buffering=1 << 20)

    def close(self):
        for s in (self.file, self.sock, self.listener):
            if s:
                s.close()

    def batch(self, lines):
        """Send every command, then read their replies (lists of words)."""
        replies = []
        for i in range(0, len(lines), BATCH):
            chunk = lines[i:i + BATCH]
            self.file.write("".join(line + "\n" for line in chunk).encode())
            self.file.flush()
            for line in chunk:
                reply = self.file.readline().decode().split()
                if not reply:
                    raise QTestError(f"QEMU closed qtest at: {line[:80]}")
                if reply[0] != "OK":
                    raise QTestError(f"{line[:80]}: {' '.join(reply)}")
                replies.append(reply[1:])
        return replies

    def cmd(self, line):
        return self.batch([line])[0]

    # Guest memory. The pseries guest is big-endian: TCE lists and RTAS
    # arguments are stored big-endian.

    @staticmethod
    def write_line(addr, data):
        return f"b64write {addr:#x} {len(data)} {base64.b64encode(data).decode()}"

    def write(self, addr, data):
        self.cmd(self.write_line(addr, data))

    def read(self, addr, size):
        return base64.b64decode(self.cmd(f"b64read {addr:#x} {size}")[0])

    # Hypercalls ("hcall", vfio-start-stop patch 4) and RTAS ("rtas").

    @staticmethod
    def hcall_line(opcode, *args):
        return "hcall " + " ".join(f"{v:#x}" for v in (opcode,) + args)

    def hcall(self, opcode, *args):
        """Return code and r4..r12 after the hypercall."""
        words = self.cmd(self.hcall_line(opcode, *args))
        return int(words[0], 16), [int(w, 16) for w in words[1:]]

    def rtas(self, name, args, nret, scratch):
        """Call RTAS with 32-bit args put at guest address scratch; rets."""
        self.write(scratch, struct.pack(f">{len(args)}I", *args))
        rets = scratch + 0x100
        self.cmd(f"rtas {name} {len(args)} {scratch:#x} {nret} {rets:#x}")
        return struct.unpack(f">{nret}I", self.read(rets, 4 * nret))
