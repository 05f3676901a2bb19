"""End to end on real mail servers: compose a reply, send it through Postfix, read it back
from the customer's Dovecot mailbox over IMAP. And the crash window between the relay's 250
and recording "sent"."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.config import Settings, SignatureSettings
from gateway.jobs.send_reply import Outbound, Reply, deliver_once
from gateway.relay.sender import DeliveryResult, RelaySender
from gateway.store import deliveries
from gateway.store.db import Store

from mailservers import mail_servers  # noqa: F401  (fixture)

SECRET = b"test-secret"
CUSTOMER = "alice@customer.test"
SIGS = SignatureSettings(
    default="--\nExample Support", domains={"*.example.com": "--\nExample Regional Desk"}
)


async def conversation(store: Store) -> int:
    def add(db):
        cid = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, customer_name,"
            " status, created_at, updated_at, last_message_at, message_count) VALUES "
            "('k2k2k2k2k2', 'support@example.com', 'AW: Broken invoice', ?, 'Alice',"
            " 'handed_off', 'now', 'now', 'now', 2)",
            [CUSTOMER],
        ).lastrowid
        for mid, refs in (
            ("first@customer.test", "[]"),
            ("second@customer.test", '["first@customer.test"]'),
        ):
            db.execute(
                "INSERT INTO messages (conversation_id, direction, message_id, in_reply_to, "
                "references_, subject) VALUES (?, 'in', ?, '[]', ?, 'Broken invoice')",
                [cid, mid, refs],
            )
        return cid

    return await store.write(add)


async def compose_and_queue(
    store: Store, settings: Settings, *, auto: bool, key: str, body_format: str, body: str
):
    """The production path: Outbound.queue reads the thread context, composes and stores."""
    cid = await conversation(store)
    s = dataclasses.replace(
        settings,
        signatures=SIGS,
        relay=dataclasses.replace(settings.relay, from_name="Example Support"),
    )
    did = await Outbound(store, RelaySender(s.relay), s, SECRET).queue(
        Reply(
            conversation_id=cid,
            source_key=key,
            body=body,
            body_format=body_format,
            author_name="Bob Rep",
            author_email="bob@eu.example.com",
            auto=auto,
        )
    )
    return did, await store.read(lambda db: deliveries.get_delivery(db, did))


@pytest.mark.slow
@pytest.mark.parametrize("auto", [False, True])
async def test_reply_reaches_the_customer_mailbox_in_thread(
    mail_servers,  # noqa: F811
    store,
    settings,
    auto,
):
    body, fmt = (
        ("Your invoice is **fixed**.", "markdown")
        if auto
        else ('<p>Your invoice is <b onclick="x()">fixed</b>.</p><script>bad()</script>', "html")
    )
    did, mail = await compose_and_queue(
        store, settings, auto=auto, key=f"k-{auto}", body_format=fmt, body=body
    )
    sender = RelaySender(mail_servers.relay_settings())
    res = await deliver_once(store, sender, did)
    assert res.ok, res
    (msg,) = await mail_servers.wait_for_messages(CUSTOMER, 1)
    assert msg["Message-ID"] == f"<{mail.message_id}>"
    assert msg["In-Reply-To"] == "<second@customer.test>"
    assert msg["References"].split() == ["<first@customer.test>", "<second@customer.test>"]
    assert msg["Subject"] == "Re: Broken invoice"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["From"].addresses[0].display_name == "Example Support"
    assert msg["Return-Path"] == "<support+k2k2k2k2k2@example.com>"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert ("fixed" in html and "<b>fixed</b>" in html) or "<strong>fixed</strong>" in html
    assert "script" not in html and "onclick" not in html
    assert "Your invoice is" in text and "fixed" in text
    assert "Example Regional Desk" in html and "Example Regional Desk" in text
    if auto:
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["X-Auto-Response-Suppress"] == "All"
    else:
        assert msg["Auto-Submitted"] is None
    d = await store.read(lambda db: deliveries.get_delivery(db, did))
    assert d.state == "sent" and "queued as" in d.smtp_reply


class ProcessDied(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler records anything."""


class DiesAfterRelayAccepts:
    """Sends for real, then 'dies' before deliver_once can record 'sent'."""

    def __init__(self, real: RelaySender):
        self.real = real
        self.settings = real.settings

    async def send(self, mail) -> DeliveryResult:
        result = await self.real.send(mail)
        assert result.ok
        raise ProcessDied


@pytest.mark.slow
async def test_crash_between_relay_250_and_recording_sent_resends_same_message_id(
    mail_servers,  # noqa: F811
    tmp_path,
    settings,
):
    store = Store(tmp_path / "gw.db")
    did, mail = await compose_and_queue(
        store, settings, auto=False, key="hs-1", body_format="text", body="Fixed."
    )
    real = RelaySender(mail_servers.relay_settings())
    with pytest.raises(ProcessDied):
        await deliver_once(store, DiesAfterRelayAccepts(real), did)
    store.close()  # the "restart": a new process opens the same database

    store = Store(tmp_path / "gw.db")
    try:
        d = await store.read(lambda db: deliveries.get_delivery(db, did))
        assert d.state == "sending"  # the crash left it mid-flight: not known to be sent
        res = await deliver_once(store, real, did)
        assert res.ok
        again = await deliver_once(store, real, did)  # and from now on never again
        assert again.ok
        msgs = await mail_servers.wait_for_messages(CUSTOMER, 2, settle=True)
        # the guarantee: at most the same message twice, never two different replies
        assert len(msgs) == 2
        assert {m["Message-ID"] for m in msgs} == {f"<{mail.message_id}>"}
        assert msgs[0].as_bytes() == msgs[1].as_bytes() or (
            msgs[0].get_body(("plain",)).get_content() == msgs[1].get_body(("plain",)).get_content()
        )
        d = await store.read(lambda db: deliveries.get_delivery(db, did))
        assert d.state == "sent" and d.attempts == 2
        count = await store.read(
            lambda db: db.execute(
                "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND message_id = ?",
                [mail.message_id],
            ).fetchone()[0]
        )
        assert count == 1  # recorded once in the conversation
    finally:
        store.close()
