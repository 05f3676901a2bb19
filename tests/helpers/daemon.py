"""`mail-gateway serve` as a separate process, as systemd runs it: for crash tests and benches.

Readiness is the daemon's own word, not a port that happens to answer: the launcher passes a
private NOTIFY_SOCKET (sd_notify(3), the protocol gateway.systemd speaks) and waits for
`READY=1`, which the daemon sends once SMTP, HTTP and the worker are up.

Ports: the config file checks ports are 1-65535, so the daemon cannot be told "port 0"; the
launcher picks free ports in advance and writes the config through `write_config(smtp, http)`.
Another process may take such a port between the pick and the bind: when the daemon exits
with "Address already in use" before READY, the launcher picks again and retries (3 times).

Used by tests (tests/test_durability.py and friends) and by bench/ (bench/common.py puts
tests/ on sys.path): one launcher, so both measure the same start and stop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_IN_USE = "address already in use"  # asyncio's bind error; errno EADDRINUSE


def free_port() -> int:
    """A port free right now (the kernel's pick for port 0). Only for servers that must be told
    their port in advance; anything that can bind port 0 itself should, and report it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_status(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in kB, from
    /proc/PID/status (proc(5))."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class PortTaken(RuntimeError):
    """The daemon could not bind a port picked in advance (someone took it meanwhile)."""


class Daemon:
    """One daemon process; `start()` again after `kill9()` or `stop()` restarts it.

    `write_config(smtp_port, http_port) -> Path` writes the config for those ports; it is
    called again with new ports only if the first start finds a port taken. Call
    `configure()` first when the test needs the config before the start (to seed the store).
    """

    def __init__(self, write_config: Callable[[int, int], Path], log: Path):
        self.write_config, self.log = write_config, log
        self.smtp_port = self.http_port = 0
        self.config: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def configure(self) -> Path:
        """Pick the ports and write the config, once (start() does it if not done yet)."""
        if self.config is None:
            self.smtp_port, self.http_port = free_port(), free_port()
            self.config = self.write_config(self.smtp_port, self.http_port)
        return self.config

    def start(self, within: float = 30.0) -> None:
        """Start and wait for READY=1; raises RuntimeError with the log tail if it exits."""
        restart = self.starts > 0
        for attempt in range(3):
            self.configure()
            try:
                self._start_once(within)
                return
            except PortTaken:
                if restart or attempt == 2:
                    raise  # a restart keeps its ports: the test may have told clients
                self.config = None

    def _start_once(self, within: float) -> None:
        folder = tempfile.mkdtemp(prefix="gw-notify-")  # short: AF_UNIX paths are <108 bytes
        path = os.path.join(folder, "notify")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind(path)
                sock.settimeout(0.05)
                since = self.log.stat().st_size if self.log.exists() else 0
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "gateway.cli", "--config", str(self.config), "serve"],
                    stdout=subprocess.DEVNULL,
                    stderr=self.log.open("ab"),
                    cwd=ROOT,
                    env={**os.environ, "NOTIFY_SOCKET": path},
                )
                self.starts += 1
                deadline = time.monotonic() + within
                while time.monotonic() < deadline:
                    try:
                        if b"READY=1" in sock.recv(4096).split(b"\n"):
                            return
                    except TimeoutError:
                        pass
                    if self.proc.poll() is not None:
                        tail = self.tail()
                        this_start = self.log.read_bytes()[since:].decode(errors="replace")
                        if ADDRESS_IN_USE in this_start.lower():
                            raise PortTaken(tail)
                        raise RuntimeError(f"daemon exited ({self.proc.returncode}): {tail}")
                self.kill9()
                raise RuntimeError("daemon did not report READY: " + self.tail())
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def kill9(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; no-op when not running."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM (a clean stop) and its exit code; None if it had to be killed."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def status(self) -> dict[str, int]:
        """VmRSS/VmHWM (kB) of the daemon from /proc."""
        assert self.proc is not None
        return memory_status(self.proc.pid)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""
