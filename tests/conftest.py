"""Shared fixtures: settings on port 0, a running gateway, SMTP helpers, corpus paths.

Gateways listen on port 0 (the kernel picks) and tests read the ports bound from the running
gateway (gw.smtp_port, gw.http_port, gw.sandbox.port): no port is guessed in advance.

Code shared beyond fixtures (the daemon launcher, the mail-server configurations, waiting
helpers, the corpora) lives in tests/helpers/; `wait_for` is re-exported here for the test
modules that import it from conftest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import Listen, Settings, load_settings
from gateway.service import Gateway
from gateway.store.db import Store

from helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]

BASE_CONFIG = """
[gateway]
state_dir = "state"
hostname = "gw.example.com"
secret = "test-secret-not-for-production"
log_level = "info"

[smtp]
listen = "127.0.0.1:2525"
addresses = ["support@example.com", "sales@example.com"]
domains = ["help.example.org"]
max_message_size = 1048576
max_recipients = 5
max_sessions = 50
idle_timeout = 30

[http]
listen = "127.0.0.1:8025"

[admin]
listen = "127.0.0.1:0"

[hubspot]
mode = "live"

[worker]
concurrency = 2
lease_seconds = 30
max_attempts = 3
"""


def write_config(tmp_path: Path, extra: str = "", **replace: str) -> Path:
    text = BASE_CONFIG
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text + extra)
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


_HELD_PORTS: list[socket.socket] = []


def dead_port() -> int:
    """A port that refuses connections for the rest of the run: bound by this process, so no
    other server can take it meanwhile, and never listening, so a connect gets RST (refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(s)  # closed when the test process exits
    return int(s.getsockname()[1])


@pytest.fixture
def settings(config_path: Path) -> Settings:
    """Settings on port 0 (the kernel picks: no races between tests); public_url unset, so the
    gateway derives it from the HTTP port it binds (gw.settings.http.public_url)."""
    s = load_settings(config_path)
    return dataclasses.replace(
        s,
        smtp=dataclasses.replace(s.smtp, listen=Listen("127.0.0.1", 0)),
        http=dataclasses.replace(s.http, listen=Listen("127.0.0.1", 0), public_url=""),
    )


async def start_gateway(settings: Settings) -> Gateway:
    """A started gateway; a start that fails is stopped (lock, store and sockets released)."""
    gw = Gateway(settings)
    try:
        await gw.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await gw.stop(drain_seconds=0)
        raise
    return gw


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    """A started gateway (start_gateway), stopped (drained for at most 5 s) when the block
    ends."""
    gw = await start_gateway(settings)
    try:
        yield gw
    finally:
        await gw.stop(drain_seconds=5)


@pytest.fixture
async def store(tmp_path: Path):
    """A bare store (migrated, writer running) for tests of store verbs and jobs."""
    s = Store(tmp_path / "gw.db")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
async def gateway(settings: Settings):
    async with running(settings) as gw:
        yield gw


async def wait_processed(gw: Gateway, count: int, within: float = 15.0) -> None:
    """Until `count` raw mails exist and none is still pending."""

    async def done() -> bool:
        total, pending = await gw.store.read(
            lambda db: db.execute(
                "SELECT COUNT(*), SUM(state = 'pending') FROM raw_mails"
            ).fetchone()
        )
        return total >= count and not pending

    await wait_for(done, within, f"{count} processed mails")


def make_mail(
    *,
    sender: str = "Alice Customer <alice@customer.test>",
    to: str = "support@example.com",
    subject: str = "Help with my order",
    body: str = "Hello,\r\nmy order 12345 did not arrive.\r\n\r\nAlice",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    extra_headers: str = "",
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Tue, 24 Nov 2026 10:00:00 +0000",
        f"Message-ID: <{message_id or f'{time.time_ns()}@customer.test'}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append(f"References: {references}")
    head = "\r\n".join(lines) + ("\r\n" + extra_headers.strip("\r\n") if extra_headers else "")
    return (head + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    """Settings with the built-in HubSpot sandbox on port 0, fast retries. The sandbox's
    webhooks go to the gateway's public URL, completed with the HTTP port bound at start."""
    return dataclasses.replace(
        settings,
        hubspot=dataclasses.replace(
            settings.hubspot, mode="sandbox", sandbox_listen=Listen("127.0.0.1", 0), sandbox_db=None
        ),
        worker=dataclasses.replace(settings.worker, retry_base_seconds=0.05, max_attempts=50),
    )


@pytest.fixture
async def hub(hub_settings: Settings):
    """A running gateway with its sandbox (gw.sandbox) set up for handoffs."""
    async with running(hub_settings) as gw:
        yield gw
