"""Threading over the whole path: mails sent over SMTP, conversations read from the store."""

from __future__ import annotations

import asyncio
import smtplib

from gateway.mail.ids import make_message_id
from gateway.service import Gateway
from gateway.store.mail import record_outgoing

from conftest import make_mail, wait_processed

SECRET = b"test-secret-not-for-production"  # as in conftest's config
HOST = "gw.example.com"


class Mailer:
    """Sends over SMTP and waits until the gateway has processed what it sent."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.sent = 0

    async def send(self, raw: bytes, rcpts=("support@example.com",), sender="x@customer.test"):
        def go():
            with smtplib.SMTP("127.0.0.1", self.gw.smtp_port, timeout=10) as s:
                s.sendmail(sender, list(rcpts), raw)

        await asyncio.to_thread(go)
        self.sent += 1
        await wait_processed(self.gw, self.sent)
        return await self.conversation_of(raw)

    async def conversation_of(self, raw: bytes) -> int:
        mid = raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
        return await self.gw.store.read(
            lambda db: db.execute(
                "SELECT conversation_id FROM messages WHERE message_id = ? ORDER BY id DESC",
                [mid],
            ).fetchone()[0]
        )

    async def conversations(self) -> int:
        return await self.gw.store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
        )


async def test_gmail_references_chain(gateway: Gateway):
    m = Mailer(gateway)
    c1 = await m.send(make_mail(message_id="g1@mail.gmail.test"))
    c2 = await m.send(
        make_mail(
            subject="Re: Help with my order",
            message_id="g2@mail.gmail.test",
            in_reply_to="g1@mail.gmail.test",
            references="<g1@mail.gmail.test>",
        )
    )
    c3 = await m.send(
        make_mail(
            subject="Re: Help with my order",
            message_id="g3@mail.gmail.test",
            in_reply_to="g2@mail.gmail.test",
            references="<g1@mail.gmail.test>\r\n <g2@mail.gmail.test>",
        )
    )
    assert c1 == c2 == c3
    assert await m.conversations() == 1


async def test_outlook_in_reply_to_only(gateway: Gateway):
    m = Mailer(gateway)
    c1 = await m.send(make_mail(message_id="AM0PR01@outlook.test"))
    c2 = await m.send(
        make_mail(
            subject="AW: Help with my order",
            message_id="AM0PR02@outlook.test",
            in_reply_to="AM0PR01@outlook.test",
        )
    )
    assert c1 == c2


async def test_reply_to_our_own_sent_mail(gateway: Gateway):
    m = Mailer(gateway)
    conv = await m.send(make_mail(message_id="first@customer.test"))
    token = await gateway.store.read(
        lambda db: db.execute("SELECT token FROM conversations WHERE id = ?", [conv]).fetchone()[0]
    )
    ours = make_message_id(SECRET, HOST, token)
    await gateway.store.write(
        lambda db: record_outgoing(
            db, conversation_id=conv, message_id=ours, subject="Re: Help", text="We are on it"
        )
    )
    # the customer's client kept only our Message-ID (no References to their own first mail)
    c2 = await m.send(
        make_mail(subject="Re: Help", message_id="second@customer.test", in_reply_to=ours)
    )
    assert c2 == conv
    # even if the index lost it, the HMAC-tagged Message-ID still names the conversation
    unindexed = make_message_id(SECRET, HOST, token)
    c3 = await m.send(
        make_mail(subject="Re: Help", message_id="third@customer.test", references=f"<{unindexed}>")
    )
    assert c3 == conv
    # a forged tag does not
    tok, nonce, _tag = unindexed.split("@")[0].split(".")
    forged = f"{tok}.{nonce}.{'0' * 12}@{HOST}"
    c4 = await m.send(
        make_mail(subject="Re: Help", message_id="fourth@customer.test", in_reply_to=forged)
    )
    assert c4 != conv


async def test_new_subject_without_references_is_new_conversation(gateway: Gateway):
    m = Mailer(gateway)
    c1 = await m.send(make_mail(message_id="a1@customer.test"))
    c2 = await m.send(make_mail(subject="Another question", message_id="a2@customer.test"))
    c3 = await m.send(make_mail(message_id="a3@customer.test"))  # same subject, no references
    assert len({c1, c2, c3}) == 3


async def test_bcc_and_forwarded_copy_routes(gateway: Gateway):
    m = Mailer(gateway)
    # BCC: support appears only in the envelope
    c1 = await m.send(
        make_mail(to="colleague@customer.test", message_id="bcc1@customer.test"),
        rcpts=("support@example.com",),
    )
    mailbox = await gateway.store.read(
        lambda db: db.execute("SELECT mailbox FROM conversations WHERE id = ?", [c1]).fetchone()[0]
    )
    assert mailbox == "support@example.com"
    token = await gateway.store.read(
        lambda db: db.execute("SELECT token FROM conversations WHERE id = ?", [c1]).fetchone()[0]
    )
    # forwarded copy: the reply token only in Delivered-To, nothing else links it
    c2 = await m.send(
        make_mail(
            to="alias@customer-forwarder.test",
            subject="Something new",
            message_id="fwd1@customer.test",
            extra_headers=f"Delivered-To: support+{token}@example.com",
        ),
        rcpts=("support@example.com",),
    )
    assert c2 == c1


async def test_subject_token_needs_a_participant(gateway: Gateway):
    m = Mailer(gateway)
    conv = await m.send(make_mail(message_id="t1@customer.test"))
    token = await gateway.store.read(
        lambda db: db.execute("SELECT token FROM conversations WHERE id = ?", [conv]).fetchone()[0]
    )
    stranger = await m.send(
        make_mail(
            sender="Mallory <mallory@attacker.test>",
            subject=f"[#{token}] let me in",
            message_id="m1@attacker.test",
        )
    )
    assert stranger != conv
    participant = await m.send(
        make_mail(subject=f"Update [#{token}]", message_id="t2@customer.test")
    )
    assert participant == conv


async def test_lookups_are_scoped_to_the_mailbox(gateway: Gateway):
    m = Mailer(gateway)
    c1 = await m.send(make_mail(message_id="s1@customer.test"))
    c2 = await m.send(
        make_mail(
            to="sales@example.com", message_id="s2@customer.test", in_reply_to="s1@customer.test"
        ),
        rcpts=("sales@example.com",),
    )
    assert c1 != c2


async def test_concurrent_replies_land_in_one_conversation(gateway: Gateway):
    m = Mailer(gateway)
    root = await m.send(make_mail(message_id="root@customer.test"))

    def go(i: int):
        raw = make_mail(
            subject="Re: Help with my order",
            message_id=f"par{i}@customer.test",
            in_reply_to="root@customer.test",
        )
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as s:
            s.sendmail("x@customer.test", ["support@example.com"], raw)

    await asyncio.gather(*(asyncio.to_thread(go, i) for i in range(10)))
    await wait_processed(gateway, 11)
    convs = await gateway.store.read(
        lambda db: {r[0] for r in db.execute("SELECT conversation_id FROM messages")}
    )
    assert convs == {root}
