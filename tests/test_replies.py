"""Reps' replies: sandbox webhooks and polling into the capture outbox, once, comments never."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.config import Listen, RelaySettings, Settings, SignatureSettings
from gateway.jobs.bounce import read_bounce
from gateway.models import IncomingMail, Job, JobKind
from gateway.service import Gateway
from gateway.store.intake import accept_raw

from conftest import dead_port, make_mail, running, wait_for
from helpers.waiting import wait_idle
from hubspot_helpers import admin, api, conversation_of, hand_off, outbox, rep_replies, send

AGENT = "A-301"


@pytest.fixture
def reply_settings(hub_settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        hub_settings,
        relay=dataclasses.replace(RelaySettings(), mode="capture", capture_dir=tmp_path / "outbox"),
        signatures=SignatureSettings(
            default="The Support Team",
            domains={"sandbox.test": "Alice, Sandbox Support", "*.example.com": "Example Support"},
        ),
    )


@pytest.fixture
async def rgw(reply_settings: Settings):
    async with running(reply_settings) as gw:
        yield gw


async def handed_off_conversation(gw: Gateway, mid: str = "q1@customer.test") -> dict:
    await send(gw, make_mail(message_id=mid), 1)
    conv = await conversation_of(gw, mid)
    return await hand_off(gw, conv) | {"conversation_id": conv}


async def rep_posts(gw: Gateway, thread_id: str, kind: str, text: str, rich: str = "") -> dict:
    extra = {"richText": rich} if rich else {}
    if kind == "MESSAGE":
        return await rep_replies(gw, thread_id, text, AGENT, **extra)
    body = {"type": kind, "text": text, "senderActorId": AGENT, **extra}
    return await api(
        gw, "POST", f"/conversations/v3/conversations/threads/{thread_id}/messages", json=body
    )


async def test_public_reply_is_mailed_once_in_thread_with_signature(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    msg = await rep_posts(
        rgw,
        h["thread_id"],
        "MESSAGE",
        "Your parcel ships today.",
        "<p>Your parcel <b>ships today</b>.<script>alert(1)</script></p>",
    )
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the reply in the outbox")
    mail = outbox(rgw)[0]
    assert mail["In-Reply-To"] == "<q1@customer.test>"
    assert "<q1@customer.test>" in mail["References"]
    assert mail["Subject"] == "Re: Help with my order"
    assert mail["To"].addresses[0].addr_spec == "alice@customer.test"
    assert mail["From"].addresses[0].addr_spec == "support@example.com"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "ships today" in text and "Alice, Sandbox Support" in text  # exact domain signature
    assert "<b>ships today</b>" in html and "<script>" not in html
    assert "Auto-Submitted" not in mail  # a person wrote it

    async def sent_status() -> bool:
        page = await api(
            rgw,
            "GET",
            f"/conversations/v3/conversations/threads/{h['thread_id']}/messages/{msg['id']}",
        )
        return (page.get("status") or {}).get("statusType") == "SENT"

    await wait_for(sent_status, 10, "HubSpot told SENT")
    # the reply is part of the conversation, authored by the rep
    shown = await rgw.store.read(
        lambda db: db.execute(
            "SELECT direction, author, message_id FROM messages WHERE conversation_id = ? "
            "ORDER BY id",
            [h["conversation_id"]],
        ).fetchall()
    )
    assert [r[0] for r in shown] == ["in", "out"]
    assert AGENT in shown[1][1]
    assert f"<{shown[1][2]}>" == mail["Message-ID"]
    # the customer's answer to it threads back into the same conversation
    await send(
        rgw,
        make_mail(
            subject="Re: Help with my order", message_id="q2@customer.test", in_reply_to=shown[1][2]
        ),
        2,
    )
    assert await conversation_of(rgw, "q2@customer.test") == h["conversation_id"]
    await wait_idle(rgw)
    assert len(outbox(rgw)) == 1


async def test_comment_never_reaches_the_customer(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    await rep_posts(rgw, h["thread_id"], "COMMENT", "Internal: customer is a VIP, refund ok")
    await rep_posts(rgw, h["thread_id"], "MESSAGE", "We will refund you.")
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the public reply")
    await rgw.replies.poll_once()  # the polling path sees the comment too
    rgw.worker.wake()
    await wait_idle(rgw)
    mails = outbox(rgw)
    assert len(mails) == 1
    assert "VIP" not in mails[0].get_body(("plain",)).get_content()


def _signed(secret: str, url: str, body: bytes, ts: int | None = None) -> dict[str, str]:
    ts = ts if ts is not None else int(time.time() * 1000)
    sig = hmac.new(
        secret.encode(), b"POST" + url.encode() + body + str(ts).encode(), hashlib.sha256
    ).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(sig).decode(),
        "X-HubSpot-Request-Timestamp": str(ts),
        "Content-Type": "application/json",
    }


async def test_webhook_signatures_replays_and_tampering(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    # a rep message the sandbox knows, but whose webhook we send ourselves
    nowhere = "http://127.0.0.1:9/nowhere"
    await admin(rgw, "PUT", "/webhook-target", json={"url": nowhere})
    channels = rgw.sandbox.state.data["channels"]
    channels[next(iter(channels))]["webhookUrl"] = nowhere
    msg = await rep_posts(rgw, h["thread_id"], "MESSAGE", "Signed reply")
    secret = rgw.sandbox.info()["clientSecret"]
    url = rgw.settings.http.public_url + "/hubspot/channel-webhook"
    event = {
        "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
        "portalId": 1,
        "channelId": "x",
        "channelIntegrationThreadIds": [],
        "message": {k: v for k, v in msg.items() if k not in ("status", "client")},
    }
    body = json.dumps(event).encode()
    async with aiohttp.ClientSession() as s:

        async def post(data: bytes, headers: dict[str, str]) -> int:
            async with s.post(url, data=data, headers=headers) as r:
                return r.status

        assert await post(body, {"Content-Type": "application/json"}) == 401  # unsigned
        bad = _signed("wrong-secret", url, body)
        assert await post(body, bad) == 401
        stale = _signed(secret, url, body, ts=int((time.time() - 600) * 1000))
        assert await post(body, stale) == 401
        good = _signed(secret, url, body)
        tampered = body.replace(b"Signed reply", b"Send me money")
        assert await post(tampered, good) == 401
        other_url = _signed(secret, url.replace("127.0.0.1", "localhost"), body)
        assert await post(body, other_url) == 401
        await wait_idle(rgw)
        assert outbox(rgw) == []
        assert await post(body, good) == 204
        assert await post(body, _signed(secret, url, body)) == 204  # replayed: no second mail
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "one mail")
    await wait_idle(rgw)
    assert len(outbox(rgw)) == 1
    assert rgw.webstate.counters["webhook_rejected"] == 5


@pytest.fixture
async def polling_gw(reply_settings: Settings):
    dead = dead_port()  # HubSpot cannot reach this gateway: webhooks fail, polling works
    s = dataclasses.replace(
        reply_settings,
        http=dataclasses.replace(
            reply_settings.http,
            listen=Listen("127.0.0.1", 0),
            public_url=f"http://127.0.0.1:{dead}",
        ),
        hubspot=dataclasses.replace(reply_settings.hubspot, replies="poll", poll_interval=0.2),
    )
    async with running(s) as gw:
        yield gw


async def test_polling_delivers_public_replies_only(polling_gw: Gateway):
    gw = polling_gw
    h = await handed_off_conversation(gw)
    await rep_posts(gw, h["thread_id"], "COMMENT", "Internal note, never mailed")
    await rep_posts(gw, h["thread_id"], "MESSAGE", "Polled reply")
    await wait_for(lambda: len(outbox(gw)) == 1, 15, "the polled reply")
    for _ in range(3):  # several more polls: none may mail the reply again
        await gw.replies.poll_once()
    await wait_idle(gw)
    mails = outbox(gw)
    assert len(mails) == 1
    assert "Polled reply" in mails[0].get_body(("plain",)).get_content()


def delivery_status(envelope_from: str, message_id: str, subject: str) -> bytes:
    """A bounce (RFC 3464 multipart/report) of the mail `message_id` (with brackets)."""
    return (
        "From: MAILER-DAEMON@mx.customer.test\r\n"
        f"To: {envelope_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.customer.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; alice@customer.test\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: {subject}\r\n"
        "--B--\r\n"
    ).encode()


def test_read_bounce_finds_our_message_and_the_reason():
    got = read_bounce(delivery_status("support+k@example.com", "<r1@gw.example.com>", "Re: x"))
    assert got.message_ids == ["r1@gw.example.com"]
    assert got.reason == "failed; 5.1.1; smtp; 550 5.1.1 user unknown"


async def test_bounce_job_parses_once_off_the_event_loop(store, monkeypatch):
    from gateway.jobs import bounce

    threads: list[int] = []
    real = bounce.parse_mail

    def spy(raw: bytes):
        threads.append(threading.get_ident())
        return real(raw)

    monkeypatch.setattr(bounce, "parse_mail", spy)
    raw = delivery_status("support+k@example.com", "<unknown@gw.example.com>", "Re: x")
    incoming = IncomingMail(
        "smtp",
        "support@example.com",
        "",
        ["support+k@example.com"],
        raw,
        "dsn1@mx.customer.test",
        hashlib.sha256(raw).hexdigest(),
    )
    raw_id, _ = await store.write(lambda db: accept_raw(db, incoming))
    # no delivery has that Message-ID: nothing to report, so no HubSpot client is needed
    runner = bounce.BounceRunner(store, client=None, handoff=None)
    await runner.bounce_job(Job(1, JobKind.BOUNCE, {"raw_id": raw_id}, 0))
    assert len(threads) == 1 and threads[0] != threading.get_ident()


async def test_bounce_of_our_reply_is_linked_and_reported(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    msg = await rep_posts(rgw, h["thread_id"], "MESSAGE", "Answer that will bounce")
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the reply")
    sent = outbox(rgw)[0]
    envelope_from = sent["Reply-To"].addresses[0].addr_spec  # support+TOKEN@example.com
    dsn = delivery_status(envelope_from, sent["Message-ID"], sent["Subject"])

    def bounce():
        import smtplib

        with smtplib.SMTP("127.0.0.1", rgw.smtp_port, timeout=10) as s:
            s.sendmail("", [envelope_from], dsn)

    await asyncio.to_thread(bounce)

    async def reported() -> bool:
        m = await api(
            rgw,
            "GET",
            f"/conversations/v3/conversations/threads/{h['thread_id']}/messages/{msg['id']}",
        )
        return (m.get("status") or {}).get("statusType") == "FAILED"

    await wait_for(reported, 15, "FAILED after the bounce")
    row = await rgw.store.read(
        lambda db: db.execute(
            "SELECT d.state, d.smtp_reply, m.conversation_id FROM deliveries d "
            "JOIN messages m ON m.message_id = 'dsn1@mx.customer.test'"
        ).fetchone()
    )
    assert row[0] == "bounced" and "550 5.1.1" in row[1]
    assert row[2] == h["conversation_id"]  # the bounce joined its conversation


async def test_rep_attachment_reaches_the_customer(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    content = b"%PDF-1.4 invoice 12345\n" + bytes(range(256)) * 40
    form = aiohttp.FormData()
    form.add_field("file", content, filename="invoice.pdf", content_type="application/pdf")
    form.add_field("options", json.dumps({"access": "PRIVATE"}))
    form.add_field("folderPath", "/replies")
    uploaded = await api(rgw, "POST", "/files/v3/files", data=form)
    await rep_replies(
        rgw,
        h["thread_id"],
        "Your invoice is attached.",
        AGENT,
        attachments=[{"type": "FILE", "fileId": uploaded["id"]}],
    )
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the reply with its attachment")
    mail = outbox(rgw)[0]
    parts = [p for p in mail.iter_attachments()]
    assert [p.get_filename() for p in parts] == ["invoice.pdf"]
    assert parts[0].get_content_type() == "application/pdf"
    assert parts[0].get_content() == content


async def test_truncated_rep_reply_is_fetched_whole(rgw: Gateway):
    h = await handed_off_conversation(rgw)
    long_text = "".join(f"Step {i}: check the cable and restart the router.\n" for i in range(800))
    assert len(long_text) > 20_000  # the sandbox, like HubSpot, truncates longer messages
    await rep_posts(rgw, h["thread_id"], "MESSAGE", long_text)
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the long reply")
    text = outbox(rgw)[0].get_body(("plain",)).get_content()
    assert "Step 799: check the cable" in text
