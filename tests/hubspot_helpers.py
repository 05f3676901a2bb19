"""Reading the sandbox over its HTTP API, as an independent observer of what the gateway did."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
from typing import Any

import aiohttp

from gateway.service import Gateway
from gateway.store.hubspot import get_handoff, request_handoff

from conftest import wait_for, wait_processed, write_config
from helpers.inbox import HISTORY_QUERY, rep_message

__all__ = ["rep_message", "rep_replies"]  # rep_message re-exported: the one MESSAGE builder


async def api(gw: Gateway, method: str, path: str, **kw: Any) -> Any:
    info = gw.sandbox.info()
    headers = {"Authorization": f"Bearer {info['staticToken']}"}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, info["baseUrl"] + path, headers=headers, **kw) as r:
            assert r.status < 400, (r.status, await r.text())
            return await r.json() if r.content_length != 0 else None


async def admin(gw: Gateway, method: str, path: str, **kw: Any) -> Any:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, gw.sandbox.url + "/_sandbox" + path, **kw) as r:
            assert r.status < 400, (r.status, await r.text())
            return await r.json(content_type=None)


async def send(gw: Gateway, raw: bytes, count: int) -> None:
    """Send one mail over SMTP and wait until `count` mails are processed."""

    def go():
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail("alice@customer.test", ["support@example.com"], raw)

    await asyncio.to_thread(go)
    await wait_processed(gw, count)


async def conversation_of(gw: Gateway, message_id: str) -> int:
    return await gw.store.read(
        lambda db: db.execute(
            "SELECT conversation_id FROM messages WHERE message_id = ?", [message_id]
        ).fetchone()[0]
    )


async def hand_off(gw: Gateway, conv_id: int, reason: str = "customer asked for a person"):
    await gw.store.write(lambda db: request_handoff(db, conv_id, reason=reason, trigger="person"))
    gw.worker.wake()
    return await wait_handed_off(gw, conv_id)


async def wait_handed_off(gw: Gateway, conv_id: int, within: float = 30) -> dict:
    async def done():
        h = await gw.store.read(lambda db: get_handoff(db, conv_id))
        return h and h["state"] == "done"

    await wait_for(done, within, f"handoff of conversation {conv_id}")
    return await gw.store.read(lambda db: get_handoff(db, conv_id))


async def all_pages(gw: Gateway, path: str, params: dict[str, str]) -> list[dict]:
    """Every result of a paged HubSpot list (`paging.next.after` cursors), 100 at a time."""
    out: list[dict] = []
    after = None
    while True:
        cursor = {"after": after} if after else {}
        page = await api(gw, "GET", path, params={"limit": "100", **params, **cursor})
        out.extend(page["results"])
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return out


async def all_objects(gw: Gateway, kind: str) -> list[dict]:
    props = "subject,content,hs_pipeline_stage,email"
    return await all_pages(gw, f"/crm/v3/objects/{kind}", {"properties": props})


async def thread_messages(gw: Gateway, thread_id: str) -> list[dict]:
    path = f"/conversations/v3/conversations/threads/{thread_id}/messages"
    return await all_pages(gw, path, {"sort": "createdAt"})


async def rep_replies(
    gw: Gateway, thread_id: str, text: str, sender_actor_id: str = "A-301", **optional: Any
) -> dict:
    """A rep answers on a HubSpot thread as HubSpot's own callers do: read the thread and its
    history, build the MESSAGE with ``rep_message`` (``optional``: richText, subject,
    attachments), POST it; returns the created message (201)."""
    path = f"/conversations/v3/conversations/threads/{thread_id}"
    thread = await api(gw, "GET", path)
    history = await api(gw, "GET", path + "/messages", params=HISTORY_QUERY)
    body = rep_message(thread, history["results"], text, sender_actor_id, **optional)
    return await api(gw, "POST", path + "/messages", json=body)


DOCTOR_EXTRA = """
[relay]
{relay}

[signatures]
default = "The support team"
"""


def doctor_config(tmp_path, hub, relay: str = 'mode = "capture"'):
    """A config file describing the `hub` fixture's running gateway (same state_dir)."""
    s = hub.settings
    return write_config(
        tmp_path,
        DOCTOR_EXTRA.format(relay=relay),
        **{
            '"127.0.0.1:2525"': f'"127.0.0.1:{hub.smtp_port}"',
            '"127.0.0.1:8025"': f'"127.0.0.1:{hub.http_port}"\npublic_url = "{s.http.public_url}"',
            'mode = "live"': f'mode = "sandbox"\nsandbox_listen = "127.0.0.1:{hub.sandbox.port}"',
        },
    )


def outbox(gw: Gateway) -> list[email.message.EmailMessage]:
    """The mails the gateway sent through its capture relay, oldest first."""
    folder = gw.settings.relay.capture_dir
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]
