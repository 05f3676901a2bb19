"""End to end on real mail servers: customer mail in over SMTP, handed off, a rep replies in
the sandbox, the reply goes through a real Postfix relay into a real Dovecot mailbox, and the
test reads it back over IMAP. Also: a relay that refuses the customer gives FAILED + comment.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import Settings, SignatureSettings
from gateway.service import Gateway

from conftest import make_mail, start_gateway, wait_for
from hubspot_helpers import api, conversation_of, hand_off, rep_replies, send, thread_messages
from mailservers import mail_servers  # noqa: F401  (fixture)

AGENT = "A-301"


async def _start(settings: Settings) -> Gateway:
    return await start_gateway(settings)


def _with_relay(hub_settings: Settings, relay) -> Settings:
    return dataclasses.replace(
        hub_settings,
        relay=relay,
        signatures=SignatureSettings(
            default="Example Support", domains={"sandbox.test": "Alice · Sandbox Support Team"}
        ),
    )


async def test_rep_reply_reaches_customer_mailbox_in_thread(hub_settings, mail_servers):  # noqa: F811
    gw = await _start(_with_relay(hub_settings, mail_servers.relay_settings()))
    try:
        await send(gw, make_mail(message_id="e2e1@customer.test"), 1)
        h = await hand_off(gw, await conversation_of(gw, "e2e1@customer.test"))
        await api(
            gw,
            "POST",
            f"/conversations/v3/conversations/threads/{h['thread_id']}/messages",
            json={
                "type": "COMMENT",
                "text": "internal: check the warehouse",
                "senderActorId": AGENT,
            },
        )
        await rep_replies(
            gw,
            h["thread_id"],
            "It ships tomorrow.",
            AGENT,
            richText="<p>It ships <b>tomorrow</b>.</p>",
        )
        (msg,) = await mail_servers.wait_for_messages("alice@customer.test", 1, settle=1.0)
    finally:
        await gw.stop(drain_seconds=5)
    assert msg["In-Reply-To"] == "<e2e1@customer.test>"
    assert "<e2e1@customer.test>" in msg["References"]
    assert msg["Subject"] == "Re: Help with my order"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "It ships tomorrow." in text and "<b>tomorrow</b>" in html
    assert "Alice · Sandbox Support Team" in text and "Sandbox Support Team" in html
    assert "warehouse" not in text and "warehouse" not in html  # the comment never leaves


class _Refusing:
    async def handle_RCPT(self, server, session, envelope, address, options):
        return "550 5.1.1 <alice@customer.test>: mailbox unavailable"


@pytest.fixture
async def refusing_relay():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(_Refusing(), hostname="relay.test", loop=loop), "127.0.0.1", 0
    )
    yield server.sockets[0].getsockname()[1]  # port 0: the kernel's pick, no race
    server.close()
    await server.wait_closed()


async def test_permanent_relay_failure_is_reported_to_hubspot(hub_settings, refusing_relay):
    relay = dataclasses.replace(
        hub_settings.relay, mode="smtp", host="127.0.0.1", port=refusing_relay, tls="none"
    )
    gw = await _start(_with_relay(hub_settings, relay))
    try:
        await send(gw, make_mail(message_id="fail1@customer.test"), 1)
        h = await hand_off(gw, await conversation_of(gw, "fail1@customer.test"))
        reply = await rep_replies(gw, h["thread_id"], "Here is your answer", AGENT)

        async def reported() -> bool:
            msgs = await thread_messages(gw, h["thread_id"])
            failed = [m for m in msgs if m["id"] == reply["id"]]
            comments = [
                m for m in msgs if m["type"] == "COMMENT" and "could not deliver" in m["text"]
            ]
            status = (failed[0].get("status") or {}) if failed else {}
            return status.get("statusType") == "FAILED" and len(comments) == 1

        await wait_for(reported, 20, "FAILED status and a comment in HubSpot")
        msgs = await thread_messages(gw, h["thread_id"])
        status = next(m for m in msgs if m["id"] == reply["id"])["status"]
        assert "550" in str(status)
    finally:
        await gw.stop(drain_seconds=5)
