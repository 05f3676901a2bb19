"""kill -9 of the real daemon between every pair of handoff steps: still one of everything.

The sandbox runs in the test process (it survives the daemon's deaths); the daemon talks to
it in live mode. A latency fault on every call opens a window after each recorded step, and
the test kills the daemon in it, then starts it again.
"""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from gateway.config import load_settings
from gateway.hubspot.client import HubSpotClient, static_token
from gateway.hubspot.setup import SETUP_KEY, run_setup
from gateway.sandbox import start_sandbox
from gateway.store.db import Store, connect
from gateway.store.hubspot import request_handoff
from gateway.store.queries import kv_set

from conftest import make_mail, write_config
from helpers.daemon import Daemon

STEPS = ["contact_id", "thread_id", "ticket_id", "thread_linked", "note_id", "comment_id"]


@pytest.fixture
async def sandbox():
    server = await start_sandbox("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()


def _config(tmp_path: Path, info: dict, smtp_port: int, http_port: int) -> Path:
    extra = """
[assistant]
backend = "off"
debounce = 3600
"""
    return write_config(
        tmp_path,
        extra,
        **{
            '"127.0.0.1:2525"': f'"127.0.0.1:{smtp_port}"',
            '"127.0.0.1:8025"': f'"127.0.0.1:{http_port}"',
            'mode = "live"': (
                f'mode = "live"\nbase_url = "{info["baseUrl"]}"\n'
                f'access_token = "{info["staticToken"]}"\napp_id = "{info["appId"]}"\n'
                f'client_secret = "{info["clientSecret"]}"\n'
                f'developer_api_key = "{info["developerApiKey"]}"\ntimeout = 5'
            ),
            "max_attempts = 3": "max_attempts = 50\nretry_base_seconds = 0.05",
        },
    )


async def _get(sandbox, path: str, **params) -> dict:
    info = sandbox.info()
    async with aiohttp.ClientSession() as s:
        async with s.get(
            info["baseUrl"] + path,
            params=params,
            headers={"Authorization": f"Bearer {info['staticToken']}"},
        ) as r:
            return await r.json()


@pytest.mark.slow
async def test_kill9_between_every_pair_of_steps(sandbox, tmp_path: Path):
    info = sandbox.info()
    daemon = Daemon(
        lambda smtp_port, http_port: _config(tmp_path, info, smtp_port, http_port),
        tmp_path / "daemon.log",
    )
    settings = load_settings(daemon.configure())
    # HubSpot set up beforehand, as `mail-gateway hubspot setup` would
    async with HubSpotClient(
        info["baseUrl"],
        static_token(info["staticToken"]),
        developer_key=info["developerApiKey"],
        app_id=str(info["appId"]),
    ) as c:
        report = await run_setup(
            c, settings.hubspot, ["support@example.com"], settings.http.public_url
        )
    store = Store(settings.db_path)
    ids = report.ids.to_json()
    await store.write(lambda db: kv_set(db, SETUP_KEY, ids))
    store.close()

    daemon.start()
    try:
        await asyncio.to_thread(_send, daemon.smtp_port)
        db = connect(settings.db_path)
        await _until(lambda: _one(db, "SELECT COUNT(*) FROM messages") == 1)
        conv = _one(db, "SELECT id FROM conversations")
        with db.atomic():
            request_handoff(db, conv, reason="crash test", trigger="person")
        # every HubSpot call now takes 300 ms: a window after each recorded step
        async with aiohttp.ClientSession() as s:
            await s.post(
                sandbox.url + "/_sandbox/faults",
                json={"path": "/*", "action": "latency", "latency_ms": 300},
            )
        for step in STEPS:
            await _until(lambda step=step: _step_done(db, conv, step), within=60)
            await asyncio.to_thread(daemon.kill9)
            await asyncio.to_thread(daemon.start)
        await _until(lambda: _one(db, "SELECT state FROM handoffs") == "done", within=60)
        h = dict(
            zip(
                ["contact", "ticket", "thread"],
                db.execute("SELECT contact_id, ticket_id, thread_id FROM handoffs").fetchone(),
                strict=True,
            )
        )
        db.conn.close()
    finally:
        daemon.stop()

    contacts = (await _get(sandbox, "/crm/v3/objects/contacts", properties="email"))["results"]
    assert [c["id"] for c in contacts if c["properties"]["email"] == "alice@customer.test"] == [
        h["contact"]
    ]
    tickets = (await _get(sandbox, "/crm/v3/objects/tickets"))["results"]
    assert [t["id"] for t in tickets] == [h["ticket"]]
    msgs = (
        await _get(
            sandbox, f"/conversations/v3/conversations/threads/{h['thread']}/messages", limit="100"
        )
    )["results"]
    assert sum(m["type"] == "MESSAGE" for m in msgs) == 1
    assert sum(m["type"] == "COMMENT" for m in msgs) == 1
    notes = await _get(sandbox, f"/crm/v4/objects/tickets/{h['ticket']}/associations/notes")
    assert len(notes["results"]) == 1
    thread = await _get(
        sandbox, f"/conversations/v3/conversations/threads/{h['thread']}", association="TICKET"
    )
    assert str(thread["threadAssociations"]["associatedTicketId"]) == h["ticket"]


def _send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail(
            "alice@customer.test",
            ["support@example.com"],
            make_mail(message_id="crash@customer.test"),
        )


def _one(db, sql: str):
    try:
        row = db.execute(sql).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def _step_done(db, conv: int, step: str) -> bool:
    value = _one(db, f"SELECT {step} FROM handoffs WHERE conversation_id = {int(conv)}")
    return bool(value)


async def _until(predicate, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)
