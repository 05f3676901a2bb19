"""Stopping: idle SMTP sessions end with 421 at once; a session inside DATA finishes."""

from __future__ import annotations

import asyncio
import smtplib
import socket

from gateway.intake.smtp import Gate, IntakeHandler, session_factory
from gateway.service import Gateway
from gateway.store.db import connect

from conftest import make_mail, wait_for


async def test_idle_sessions_do_not_hold_the_stop(settings):
    gw = Gateway(settings)
    await gw.start()
    idle = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", gw.smtp_port, timeout=10)
    await asyncio.to_thread(idle.ehlo)
    # A stop that waited for the idle session would sit out the whole 600 s drain deadline;
    # one that ends it at once returns long before the 60 s bound (no tight timing here).
    async with asyncio.timeout(60):
        await gw.stop(drain_seconds=600)
    reply = await asyncio.to_thread(idle.getreply)
    assert reply[0] == 421
    idle.close()


async def test_session_in_data_finishes_during_stop(settings):
    gw = Gateway(settings)
    await gw.start()
    client = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", gw.smtp_port, timeout=10)

    def begin():
        client.ehlo()
        client.mail("alice@customer.test")
        client.rcpt("support@example.com")
        code, _ = client.docmd("DATA")
        assert code == 354

    await asyncio.to_thread(begin)
    stopping = asyncio.create_task(gw.stop(drain_seconds=30))
    assert gw.gate is not None
    await wait_for(lambda: gw.gate.closing, 10, "the stop has begun")

    def finish():
        client.send(make_mail(message_id="inflight@customer.test") + b".\r\n")
        return client.getreply()

    # The stop began before the end of DATA; the mail still gets its 250 (a stop that did not
    # wait would have closed the store: 451) and is in the store afterwards.
    code, _ = await asyncio.to_thread(finish)
    assert code == 250
    await asyncio.wait_for(stopping, 30)
    client.close()
    db = connect(settings.db_path)
    assert db.execute(
        "SELECT COUNT(*) FROM raw_mails WHERE message_id = ?", ["inflight@customer.test"]
    ).fetchone() == (1,)


async def test_connection_let_in_as_the_stop_begins_gets_421(settings, store):
    """The loop calls the factory on accept and connection_made a moment later; a stop in
    between must still end that connection (the door decides at connection_made)."""
    gate = Gate(limit=5)
    handler = IntakeHandler(settings.smtp, store)
    loop = asyncio.get_running_loop()
    factory = session_factory(settings.smtp, handler, gate, hostname="gw.test", loop=loop)
    door = factory()
    gate.close()
    ours, theirs = socket.socketpair()
    with theirs:
        await loop.connect_accepted_socket(lambda: door, ours)
        theirs.settimeout(10)
        lines = await asyncio.to_thread(theirs.makefile("rb").readlines)
    assert lines == [b"421 4.3.2 Service shutting down, please try again later\r\n"]
    assert gate.active == 0
    assert await gate.drained(10)
