"""Delivery: the relay sender against a real aiosmtpd that fails on demand, deliver_once's
states and retries, capture mode and the outbox CLI, the [relay]/[signatures] settings.
Replies are queued the production way: Outbound.queue (thread context, compose, store)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SMTPProtocol
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import RelaySettings, Settings, SignatureSettings, load_settings
from gateway.errors import ConfigError, PermanentError, TransientError
from gateway.jobs.send_reply import DeliveryExpired, Outbound, Reply, deliver_once
from gateway.mail.compose import compose_reply
from gateway.relay.sender import RelaySender
from gateway.store import deliveries
from gateway.store.db import Store
from gateway.store.deliveries import Delivery, retry_delay

from conftest import dead_port, write_config

SECRET = b"test-secret"


class FaultyHandler:
    """Accepts mail, or fails the next sessions as told: "421", "451", "550", "drop", "slow"."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.faults and self.faults[0] == "421":
            self.faults.pop(0)
            return "421 4.3.2 Service shutting down"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.faults and self.faults[0] == "550":
            self.faults.pop(0)
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "451":
            return "451 4.3.0 Try again later"
        if fault == "drop":
            server.transport.close()
            return "250 never seen"
        if fault == "slow":
            await asyncio.sleep(3)  # the subject: a server slower than the relay timeout
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued as TEST"


@pytest.fixture
async def smtp_server():
    handler = FaultyHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTPProtocol(handler, hostname="relay.test"), "127.0.0.1", 0
    )
    handler.port = server.sockets[0].getsockname()[1]
    try:
        yield handler
    finally:
        server.close()
        await server.wait_closed()


def relay(port: int, **kw) -> RelaySender:
    values = {"mode": "smtp", "host": "127.0.0.1", "port": port, "tls": "none", "timeout": 5}
    values.update(kw)
    return RelaySender(RelaySettings(**values))


async def make_conversation(store: Store) -> int:
    def add(db):
        cid = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, customer_name,"
            " status, created_at, updated_at, last_message_at, message_count) VALUES "
            "('abcde12345', 'support@example.com', 'Order', 'alice@customer.test', 'Alice',"
            " 'handed_off', 'now', 'now', 'now', 1)"
        ).lastrowid
        db.execute(
            "INSERT INTO messages (conversation_id, direction, message_id, in_reply_to, "
            "references_, subject) VALUES (?, 'in', 'c1@customer.test', '[]', '[]', 'Order')",
            [cid],
        )
        return cid

    return await store.write(add)


@pytest.fixture
def outbound(store: Store, settings: Settings) -> Outbound:
    s = dataclasses.replace(settings, signatures=SignatureSettings(default="--\nExample Support"))
    return Outbound(store, RelaySender(s.relay), s, SECRET)


async def get(store: Store, did: int) -> Delivery:
    d = await store.read(lambda db: deliveries.get_delivery(db, did))
    assert d is not None
    return d


async def queued(outbound: Outbound, key: str = "hs-msg-1", auto: bool = False):
    cid = await make_conversation(outbound.store)
    did = await outbound.queue(
        Reply(
            conversation_id=cid,
            source_key=key,
            body="Your order ships **today**.",
            body_format="markdown",
            author_name="Bob Rep",
            author_email="bob@example.com",
            auto=auto,
            meta={"thread_id": "t1"},
        )
    )
    mail = await get(outbound.store, did)
    assert mail.state == "queued" and mail.attempts == 0
    return did, mail


async def test_accepted_records_sent_and_the_outgoing_message(smtp_server, outbound, store):
    did, mail = await queued(outbound)
    res = await deliver_once(store, relay(smtp_server.port), did)
    assert res.ok and res.code == 250 and "queued as TEST" in res.message
    assert len(smtp_server.received) == 1
    mail_from, rcpts, data = smtp_server.received[0]
    assert mail_from == "support+abcde12345@example.com" and rcpts == ["alice@customer.test"]
    assert data == mail.raw
    d = await get(store, did)
    assert d.state == "sent" and d.attempts == 1 and d.smtp_code == 250 and d.sent_at
    assert d.meta == {"thread_id": "t1"}
    row = await store.read(
        lambda db: db.execute(
            "SELECT m.direction, m.author, i.direction FROM messages m JOIN message_ids i "
            "ON i.message_id = m.message_id WHERE m.id = ?",
            [d.message_row_id],
        ).fetchone()
    )
    assert row == ("out", "Bob Rep", "out")
    # a second run sends nothing, counts no attempt, and answers with the stored reply
    again = await deliver_once(store, relay(smtp_server.port), did)
    assert again.ok and again.code == 250 and "queued as TEST" in again.message
    assert len(smtp_server.received) == 1 and (await get(store, did)).attempts == 1


async def test_same_source_key_is_composed_once(outbound, store):
    did, first = await queued(outbound)
    again = Reply(
        conversation_id=first.conversation_id,
        source_key="hs-msg-1",
        body="x",
        body_format="text",
        author_name="",
    )
    assert await outbound.queue(again) == did
    assert (await get(store, did)).raw == first.raw
    # the store verb itself: the same key again stores nothing
    ctx = await store.read(lambda db: deliveries.thread_context(db, first.conversation_id))
    other = compose_reply(
        ctx,
        body="x",
        body_format="text",
        author_name="",
        author_email="",
        signatures=SignatureSettings(),
        secret=SECRET,
        hostname="gw.example.com",
    )
    did2, created = await store.write(
        lambda db: deliveries.queue_delivery(
            db, other, source_key="hs-msg-1", conversation_id=first.conversation_id
        )
    )
    assert did2 == did and not created


@pytest.mark.parametrize("fault", ["421", "451", "drop"])
async def test_temporary_failures_retry_then_deliver(smtp_server, outbound, store, fault):
    did, mail = await queued(outbound)
    smtp_server.faults = [fault]
    sender = relay(smtp_server.port)
    with pytest.raises(TransientError) as info:
        await deliver_once(store, sender, did)
    assert info.value.until > 0  # Deferred: the worker runs it again then
    d = await get(store, did)
    assert d.state == "queued" and d.attempts == 1 and d.next_attempt_at
    if fault != "drop":
        assert d.smtp_code == int(fault)
    res = await deliver_once(store, sender, did)
    assert res.ok
    assert [r[2] for r in smtp_server.received] == [mail.raw]
    d = await get(store, did)
    assert d.state == "sent" and d.attempts == 2


async def test_refused_connection_and_timeout_are_temporary(smtp_server, outbound, store):
    did, _ = await queued(outbound)
    with pytest.raises(TransientError):
        await deliver_once(store, relay(dead_port()), did)
    smtp_server.faults = ["slow"]
    res = await relay(smtp_server.port, timeout=1).send(await get(store, did))
    assert not res.ok and not res.permanent and "timed out" in res.message.lower()


async def test_550_fails_permanently_with_the_server_reply(smtp_server, outbound, store):
    did, _ = await queued(outbound)
    smtp_server.faults = ["550"]
    res = await deliver_once(store, relay(smtp_server.port), did)
    assert not res.ok and res.permanent and res.code == 550
    assert "mailbox unavailable" in res.message
    d = await get(store, did)
    assert d.state == "failed" and "5.1.1" in d.smtp_reply and d.message_row_id is None
    assert smtp_server.received == []
    # nothing is sent again
    again = await deliver_once(store, relay(smtp_server.port), did)
    assert not again.ok and again.permanent and smtp_server.received == []


async def test_a_bounced_delivery_is_never_sent_again(smtp_server, outbound, store):
    did, mail = await queued(outbound)
    assert (await deliver_once(store, relay(smtp_server.port), did)).ok
    hit = await store.write(
        lambda db: deliveries.mark_bounced(db, [mail.message_id, "other@x.test"], "550 5.1.1")
    )
    assert [h["id"] for h in hit] == [did]
    again = await deliver_once(store, relay(smtp_server.port), did)
    assert not again.ok and again.permanent and "5.1.1" in again.message
    assert len(smtp_server.received) == 1 and (await get(store, did)).state == "bounced"


async def test_gives_up_after_max_age(outbound, store):
    did, _ = await queued(outbound)
    sender = relay(dead_port(), max_age_hours=24)
    t0 = 1_000_000.0
    with pytest.raises(TransientError):
        await deliver_once(store, sender, did, now=t0)
    with pytest.raises(TransientError):
        await deliver_once(store, sender, did, now=t0 + 20 * 3600)
    with pytest.raises(DeliveryExpired) as info:
        await deliver_once(store, sender, did, now=t0 + 23.9 * 3600)
    assert isinstance(info.value, PermanentError) and info.value.result.permanent
    d = await get(store, did)
    assert d.state == "failed" and "gave up after 3 attempts" in d.last_error


def test_retry_schedule_reaches_a_day():
    total, n = 0.0, 0
    while total < 24 * 3600:
        n += 1
        total += retry_delay(n)
    assert retry_delay(1) == 60 and retry_delay(100) == 4 * 3600 and n < 20


async def test_capture_mode_and_outbox_cli(tmp_path, outbound, store):
    did, mail = await queued(outbound, auto=True)
    cfg = write_config(tmp_path, '\n[relay]\nmode = "capture"\ncapture_dir = "outbox"\n')
    settings = load_settings(cfg)
    sender = RelaySender(settings.relay)
    res = await deliver_once(store, sender, did)
    assert res.ok and res.message.startswith("captured ")
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1 and files[0].read_bytes() == mail.raw
    # the same Message-ID again (a retry after a crash) is not captured twice
    assert (await sender.send(mail)).ok and len(list((tmp_path / "outbox").glob("*"))) == 1

    runner = CliRunner()
    out = runner.invoke(cli, ["--config", str(cfg), "outbox", "list", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows[0]["message_id"] == mail.message_id and rows[0]["auto"] is True
    assert rows[0]["subject"] == "Re: Order" and rows[0]["in_reply_to"] == "c1@customer.test"
    shown = runner.invoke(cli, ["--config", str(cfg), "outbox", "show", rows[0]["id"]])
    assert shown.exit_code == 0 and f"Message-ID: <{mail.message_id}>" in shown.output
    missing = runner.invoke(cli, ["--config", str(cfg), "outbox", "show", "../nope"])
    assert missing.exit_code == 1 and "no captured mail" in missing.output
    table = runner.invoke(cli, ["--config", str(cfg), "outbox", "list"])
    assert "Re: Order" in table.output


def test_signatures_which_cli(tmp_path):
    cfg = write_config(
        tmp_path,
        '\n[signatures]\ndefault = "--\\nSupport"\n'
        '[signatures.domains]\n"example.com" = "--\\nHQ"\n"*.example.com" = "--\\nRegion"\n',
    )
    runner = CliRunner()
    for address, why in [
        ("bob@example.com", 'exact domain "example.com"'),
        ("ann@eu.example.com", 'wildcard "*.example.com"'),
        ("x@other.test", "default"),
    ]:
        out = runner.invoke(cli, ["--config", str(cfg), "signatures", "which", address])
        assert out.exit_code == 0 and out.output.startswith(f"{address}: {why}"), out.output
    out = runner.invoke(cli, ["--config", str(cfg), "signatures", "which", "--json", "b@x.test"])
    assert json.loads(out.output)["text"] == "--\nSupport"


def test_relay_and_signature_settings(tmp_path):
    cfg = write_config(
        tmp_path,
        '\n[relay]\nmode = "smtp"\nhost = "mail.example.com"\nport = 465\ntls = "implicit"\n'
        'username = "gw"\npassword_file = "pw"\n\n[signatures.domains]\n"*.Example.com" = "x"\n',
    )
    (tmp_path / "pw").write_text("hunter2\n")
    s = load_settings(cfg)
    assert s.relay.tls == "implicit" and str(s.relay.password) == "hunter2"
    assert "hunter2" not in repr(s.relay)
    assert s.signatures.domains == {"*.example.com": "x"}
    assert s.relay.max_age_hours >= 24
    env = load_settings(cfg, environ={"RELAY_PASSWORD": "fromenv"})
    assert str(env.relay.password) == "fromenv"
    bad = write_config(
        tmp_path,
        '\n[relay]\ntls = "ssl"\nport = "x"\n[signatures.domains]\n"ex ample.com" = "x"\n'
        '"*.a*.com" = "y"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings(bad)
    text = "\n".join(info.value.problems)
    assert 'relay.tls: "ssl" is not valid: expected one of starttls, implicit, none' in text
    assert "relay.port" in text and "signatures.domains" in text
    assert all(line.startswith("config.toml: ") for line in info.value.problems)


def test_example_config_relay_is_capture():
    s = load_settings(Path(__file__).resolve().parents[1] / "config.example.toml")
    assert s.relay.mode == "capture" and s.signatures.default
