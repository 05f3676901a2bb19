"""Helpers the benchmarks and the soak campaign share: configs, the sandbox set-up a live-mode
daemon needs, tables and result files.

The daemon launcher (`Daemon`) is the tests' own (tests/helpers/daemon.py): one launcher, so
the benchmarks start, wait for and stop the daemon exactly as the crash tests do, on port 0
with the ports read from its READY status. tests/ goes on sys.path for that; the helpers it
holds import neither pytest nor a test.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from helpers.daemon import Daemon  # noqa: E402  (needs the sys.path above)

__all__ = ["Daemon"]  # re-exported for the benches


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values, in the values' unit."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, round(p / 100 * len(v) + 0.5) - 1))
    return v[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def make_mail(i: int, size: int, *, token: str = "", extra_headers: str = "") -> bytes:
    head = (
        f"From: Customer {i} <c{i}@customer.test>\r\nTo: support@example.com\r\n"
        f"Subject: Benchmark mail {i}\r\nMessage-ID: <bench-{i}-{time.time_ns()}@customer.test>\r\n"
        f"{extra_headers}Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, order 12345 is late.\r\n"
    lead = (token + "\r\n").encode() if token else b""
    body = lead + (line * (size // len(line) + 1))[: max(0, size - len(head) - len(lead))]
    return head + body


def gateway_config(
    state: Path, smtp: int, http: int, extra: str = "", log_level: str = "warning", **hubspot: Any
) -> str:
    """A daemon config: loopback ports (0: the kernel picks), one support address, [hubspot]
    as given. http.public_url is unset: the daemon derives it from the HTTP port it binds."""
    hs = {"mode": "live", **hubspot}
    hs_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in hs.items())
    return f"""
[gateway]
state_dir = "{state}"
hostname = "bench.example.com"
secret = "bench-secret"
log_level = "{log_level}"
[smtp]
listen = "127.0.0.1:{smtp}"
addresses = ["support@example.com"]
max_sessions = 500
[http]
listen = "127.0.0.1:{http}"
[admin]
listen = "127.0.0.1:0"
[hubspot]
{hs_lines}
{extra}
"""


def sandbox_hubspot(info: dict[str, Any]) -> dict[str, Any]:
    """[hubspot] keys that point a live-mode daemon at a running sandbox."""
    return {
        "base_url": info["baseUrl"],
        "access_token": info["staticToken"],
        "app_id": str(info["appId"]),
        "client_secret": str(info["clientSecret"]),
        "developer_api_key": str(info["developerApiKey"]),
    }


async def seed_setup(config: Path, public_url: str = "") -> None:
    """What `mail-gateway hubspot setup` does: find/create the channel, inbox, property...
    and store the ids in the daemon's store (kv `hubspot.setup`). The channel's webhooks go to
    `public_url` (default: the config's http.public_url)."""
    from gateway.config import load_settings
    from gateway.hubspot.connect import build_client, endpoint_for
    from gateway.hubspot.setup import SETUP_KEY, run_setup
    from gateway.store.db import Store
    from gateway.store.queries import kv_set

    s = load_settings(config)
    s.gateway.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(s.db_path)
    client = build_client(s, store, endpoint_for(s))
    try:
        mailboxes = sorted(set(s.smtp.addresses))
        report = await run_setup(client, s.hubspot, mailboxes, public_url or s.http.public_url)
        ids = report.ids.to_json()
        await store.write(lambda db: kv_set(db, SETUP_KEY, ids))
    finally:
        await client.close()
        store.close()


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    disk = ""
    try:
        out = subprocess.run(
            ["df", "-h", "--output=source,fstype,size", str(ROOT)],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.splitlines()
        disk = " ".join(out[-1].split()) if len(out) > 1 else ""
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "disk": disk,
    }


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def save(name: str, data: Any) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "results": data}, indent=2))
    return path


def daemon(workdir: Path, extra: str = "", log_level: str = "warning", **hubspot: Any) -> Daemon:
    """A daemon (not started) whose config `gateway_config` writes into workdir, with the
    [hubspot] keys given."""

    def write(smtp: int, http: int) -> Path:
        cfg = workdir / "config.toml"
        cfg.write_text(
            gateway_config(workdir / "state", smtp, http, extra, log_level=log_level, **hubspot)
        )
        return cfg

    return Daemon(write, workdir / "daemon.log")


async def live_daemon(
    workdir: Path, sandbox: Any, extra: str = "", log_level: str = "warning", **hubspot: Any
) -> Daemon:
    """A daemon in [hubspot] mode = "live" pointed at a sandbox running in this process,
    set up (channel, inbox, property ids in its store) and started."""
    live = daemon(workdir, extra, log_level, **sandbox_hubspot(sandbox.info()), **hubspot)
    await start_live(live)
    return live


async def start_live(daemon: Daemon) -> None:
    """Start a live-mode daemon set up: the ids in its store before it starts (a handoff finds
    them), then, once its HTTP port is known, the channel's webhooks aimed at that port (the
    config says port 0). Restarts keep the port, so the webhooks stay right."""
    await seed_setup(daemon.configure())
    await daemon.astart()
    await seed_setup(daemon.configure(), f"http://127.0.0.1:{daemon.http_port}")


def db_rows(db: Path, sql: str, args: list | None = None) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args or []).fetchall()
    finally:
        conn.close()
