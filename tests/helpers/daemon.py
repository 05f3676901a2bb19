"""`mail-gateway serve` as a separate process, as systemd runs it: for crash tests and benches.

Readiness is the daemon's own word, not a port that happens to answer: the launcher passes a
private NOTIFY_SOCKET (sd_notify(3), the protocol gateway.systemd speaks) and waits for
`READY=1`, which the daemon sends once SMTP, HTTP and the worker are up.

Ports: the config names port 0 and the kernel picks, so no port is guessed in advance and none
can be taken meanwhile. The daemon reports what it bound in the READY status (`STATUS=serving
SMTP on 127.0.0.1:PORT, HTTP on 127.0.0.1:PORT, admin on 127.0.0.1:PORT[, HubSpot sandbox on
127.0.0.1:PORT]`); the launcher reads `smtp_port`, `http_port`, `admin_port` and `sandbox_port`
from it. A restart binds the same
ports again (the config is rewritten with them): clients and webhooks told about them still
find the daemon.

Every sd_notify line of the current run (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1) is kept in
`messages`; `received()` reads what came since. Read it now and then when the daemon pings a
watchdog: an unread socket holds net.unix.max_dgram_qlen (512) datagrams, then sd_notify blocks.

Used by tests (tests/test_durability.py and friends) and by bench/ (bench/common.py puts
tests/ on sys.path): one launcher, so both measure the same start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def memory_status(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in kB, from
    /proc/PID/status (proc(5))."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def bound_ports(status: str) -> dict[str, int]:
    """{"SMTP": port, "HTTP": port, "HubSpot sandbox": port} from the daemon's status text
    "serving SMTP on HOST:PORT, HTTP on HOST:PORT, admin on HOST:PORT[, HubSpot sandbox on
    HOST:PORT]" (and "admin": port)."""
    listeners = status.removeprefix("serving ").split(", ")
    return {
        name: int(address.rpartition(":")[2])
        for name, _, address in (item.partition(" on ") for item in listeners)
    }


class Daemon:
    """One daemon process; `start()` again after `kill9()` or `stop()` restarts it.

    `write_config(smtp_port, http_port) -> Path` writes the config: with 0, 0 first (the kernel
    picks), and with the ports bound when restarting. Call `configure()` first when the test
    needs the config before the start (to seed the store). `env` is added to the daemon's
    environment (WATCHDOG_USEC, for one).
    """

    def __init__(
        self,
        write_config: Callable[[int, int], Path],
        log: Path,
        env: Mapping[str, str] | None = None,
    ):
        self.write_config, self.log, self.env = write_config, log, dict(env or {})
        self.smtp_port = self.http_port = self.admin_port = self.sandbox_port = 0
        self.config: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.messages: list[str] = []
        self._notify: socket.socket | None = None
        self._notify_dir = ""

    def configure(self) -> Path:
        """Write the config, once (start() does it if not done yet)."""
        if self.config is None:
            self.config = self.write_config(0, 0)
        return self.config

    def start(self, within: float = 30.0) -> None:
        """Start and wait for READY=1, then read the bound ports from its STATUS; raises
        RuntimeError with the log tail if the daemon exits or stays silent."""
        self.configure()
        if self.starts:  # the same ports again
            self.config = self.write_config(self.smtp_port, self.http_port)
        self._close_notify()
        self._notify_dir = tempfile.mkdtemp(prefix="gw-notify-")  # AF_UNIX paths: <108 bytes
        path = os.path.join(self._notify_dir, "notify")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(path)
        self.messages = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(self.config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            cwd=ROOT,
            env={**os.environ, **self.env, "NOTIFY_SOCKET": path},
            start_new_session=True,  # its own process group: kill9() takes the parsers too
        )
        self.starts += 1
        deadline = time.monotonic() + within
        while "READY=1" not in self.received(wait=0.05):
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited ({self.proc.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError("daemon did not report READY: " + self.tail())
        status = next(m for m in self.messages if m.startswith("STATUS=serving "))
        ports = bound_ports(status.removeprefix("STATUS="))
        self.smtp_port, self.http_port = ports["SMTP"], ports["HTTP"]
        self.admin_port = ports.get("admin", 0)
        self.sandbox_port = ports.get("HubSpot sandbox", 0)

    def received(self, wait: float = 0.0) -> list[str]:
        """Every sd_notify line of this run so far, after reading what is waiting (up to
        `wait` seconds for the first datagram)."""
        sock = self._notify
        if sock is None:
            return self.messages
        sock.settimeout(wait)  # 0: only what is there already
        while True:
            try:
                self.messages += sock.recv(4096).decode().splitlines()
            except (TimeoutError, BlockingIOError):
                return self.messages
            sock.settimeout(0)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def kill9(self) -> None:
        """SIGKILL, as a crash or the OOM killer would, then the rest of its process group (its
        parser processes), as systemd's KillMode=control-group does before a restart; no-op when
        not running."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._close_notify()

    def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM (a clean stop) and its exit code; None if it had to be killed."""
        if not self.proc or self.proc.poll() is not None:
            self._close_notify()
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill9()
            code = None
        self._close_notify()
        return code

    def _close_notify(self) -> None:
        """Keep what the daemon sent last (STOPPING=1), then drop the socket and its folder."""
        if self._notify is not None:
            self.received()
            self._notify.close()
            self._notify = None
            shutil.rmtree(self._notify_dir, ignore_errors=True)

    def status(self) -> dict[str, int]:
        """VmRSS/VmHWM (kB) of the daemon from /proc."""
        assert self.proc is not None
        return memory_status(self.proc.pid)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""
