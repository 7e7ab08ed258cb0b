"""A small QMP client over a unix socket (Python stdlib only)."""

import json
import os
import socket
import subprocess
import tempfile
import time


class QMPError(Exception):
    pass


def connect_unix(path, timeout, alive=lambda: True):
    """A socket connected to the Unix socket path once something listens
    there; None if alive() turns false or timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if not alive() or time.monotonic() > deadline:
                return None
            time.sleep(0.05)


class QEMU:
    """A QEMU process with a QMP monitor; use as a context manager."""

    def __init__(self, binary, args, env=None, timeout=30):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="qmp-")
        self.path = os.path.join(self.tmpdir.name, "qmp.sock")
        self.events = []
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [binary, "-qmp", f"unix:{self.path},server=on,wait=on"] + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env)
        self.sock = connect_unix(self.path, timeout,
                                 lambda: self.proc.poll() is None)
        if not self.sock:
            raise QMPError("QEMU did not start:\n" + self.output())
        # Binary, and read only: a text file's write() drops the lines it
        # has read ahead and not returned yet (an event after a reply)
        self.file = self.sock.makefile("rb")
        self._read()                                  # the greeting
        self.cmd("qmp_capabilities")

    def output(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.stdout.read().decode(errors="replace")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise QMPError("QEMU closed the monitor:\n" + self.output())
        return json.loads(line)

    def _send(self, text):
        self.sock.sendall(text.encode())

    def cmd(self, name, **args):
        """Run a command; return its result or raise QMPError."""
        self._send(json.dumps({"execute": name, "arguments": args}) + "\n")
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise QMPError(f"{name}: {msg['error']['desc']}")
            else:
                return msg["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def wait_event(self, name, timeout=None):
        """Return (and consume) the first event called name."""
        self.sock.settimeout(timeout or self.timeout)
        try:
            while True:
                for ev in self.events:
                    if ev["event"] == name:
                        self.events.remove(ev)
                        return ev
                self.events.append(self._read())
        except socket.timeout:
            raise QMPError(f"no {name} event") from None
        finally:
            self.sock.settimeout(None)

    def close(self):
        """Quit QEMU (kill it if it does not); return what it printed."""
        try:
            self.cmd("quit")
        except (QMPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = self.proc.stdout.read().decode(errors="replace")
        self.proc.stdout.close()
        self.sock.close()
        self.tmpdir.cleanup()
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def find(self, qom_type, path="/machine"):
        """QOM paths of every object of type qom_type below path."""
        found = []
        for prop in self.cmd("qom-list", path=path):
            t = prop["type"]
            if not t.startswith("child<"):
                continue
            child = f"{path}/{prop['name']}"
            if t == f"child<{qom_type}>":
                found.append(child)
            found += self.find(qom_type, child)
        return found
