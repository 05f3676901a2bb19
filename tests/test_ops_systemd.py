"""The unit file: `systemd-analyze verify` passes and the security exposure is at most 2.0;
and the sd_notify client speaks the protocol (plain and abstract sockets, no-op when unset)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.systemd import Notifier, watchdog_interval

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "mail-gateway.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart on this venv's binary: verify checks that ExecStart exists."""
    binary = Path(sys.executable).parent / "mail-gateway"
    text = UNIT.read_text().replace("/opt/mail-gateway/venv/bin/mail-gateway", str(binary))
    path = tmp_path / "mail-gateway.service"
    path.write_text(text)
    return path


@needs_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path):
    proc = subprocess.run(
        [ANALYZE, "verify", str(unit_copy(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "mail-gateway.service" not in proc.stderr, proc.stderr  # no warnings about it


@needs_analyze
def test_unit_security_exposure_is_at_most_2(tmp_path):
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    exposure = float(found.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= 2.0


def test_unit_has_what_the_issue_asks():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=mail-gateway",
        "ConfigurationDirectory=mail-gateway",
        "LoadCredential=",
        "User=mail-gateway",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "SystemCallFilter=@system-service",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text, line


def _bound(tmp_path: Path, abstract: bool) -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"mail-gateway-test-{id(sock)}"
        sock.bind("\0" + name)
        addr = "@" + name
    else:
        addr = str(tmp_path / "notify.sock")
        sock.bind(addr)
    sock.settimeout(2)
    return sock, addr


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_state_lines(tmp_path, abstract):
    sock, addr = _bound(tmp_path, abstract)
    with sock:
        n = Notifier({"NOTIFY_SOCKET": addr})
        assert n.ready("serving")
        assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
        assert n.stopping()
        assert sock.recv(4096).startswith(b"STOPPING=1\n")
        assert n.reloading()
        msg = sock.recv(4096).decode()
        assert msg.startswith("RELOADING=1\nMONOTONIC_USEC=")


def test_notifier_is_a_noop_without_systemd():
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False


def test_watchdog_interval_is_half_and_respects_the_pid():
    assert watchdog_interval({"WATCHDOG_USEC": "200000"}) == pytest.approx(0.1)
    assert watchdog_interval({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
