"""sd_notify over $NOTIFY_SOCKET with a plain datagram socket; a no-op when it is unset.

systemd (Type=notify) waits for READY=1 before it calls the unit started, shows STATUS= in
`systemctl status`, knows a stop is under way from STOPPING=1, and restarts the daemon when
WATCHDOG=1 stops arriving within WatchdogSec. The watchdog is pinged from a task on the
daemon's own event loop, so a loop that hangs stops pinging and systemd notices.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(environ: Mapping[str, str]) -> str | None:
    addr = environ.get("NOTIFY_SOCKET", "")
    if not addr:
        return None
    if addr.startswith("@"):  # the abstract namespace
        return "\0" + addr[1:]
    return addr


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog is wanted."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    try:
        if not usec or int(usec) <= 0:
            return None
        if pid and int(pid) != os.getpid():
            return None  # meant for another process (e.g. our parent)
    except ValueError:
        return None
    return int(usec) / 1_000_000 / 2


class Notifier:
    """Sends state lines to systemd; every method is safe to call when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.address = _address(environ)
        self.watchdog_seconds = watchdog_interval(environ)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:  # systemd gone or socket wrong: never a reason to stop serving
            log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    async def watchdog_loop(self) -> None:
        """Ping at half the interval systemd asked for, until cancelled."""
        interval = self.watchdog_seconds
        if interval is None or self.address is None:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(interval)
