"""The SMTP listener under attack, over real sockets on loopback (issue 16 items 3, 4 and 8).

127.0.0.2, 127.0.0.3, ... are distinct clients (Linux routes all of 127/8 to lo); 127.0.0.1 is
the exempt relay network of these tests, as the default config has it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
import time

import pytest

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.intake.anvil import Anvil, client_key

from conftest import make_mail, running, wait_for, write_config


def with_smtp(settings: Settings, **smtp) -> Settings:
    return dataclasses.replace(settings, smtp=dataclasses.replace(settings.smtp, **smtp))


def connect(port: int, source: str) -> tuple[socket.socket, bytes]:
    """A client socket from `source`, and the server's first line (greeting or refusal)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return s, s.makefile("rb").readline()


async def greet(port: int, source: str) -> tuple[socket.socket, bytes]:
    return await asyncio.to_thread(connect, port, source)


# -- per-client limits (anvil) ------------------------------------------------------------------


async def test_one_client_cannot_take_every_session(settings: Settings):
    s = with_smtp(settings, client_connection_limit=2, relay_networks=["127.0.0.1/32"])
    async with running(s) as gw:
        held = []
        try:
            for _ in range(2):
                sock, line = await greet(gw.smtp_port, "127.0.0.2")
                held.append(sock)
                assert line.startswith(b"220"), line
            sock, line = await greet(gw.smtp_port, "127.0.0.2")
            sock.close()
            assert line.startswith(b"421 4.7.0"), line
            # another client, and the exempt relay network, still get in
            sock, line = await greet(gw.smtp_port, "127.0.0.3")
            held.append(sock)
            assert line.startswith(b"220"), line
            for _ in range(3):
                sock, line = await greet(gw.smtp_port, "127.0.0.1")
                held.append(sock)
                assert line.startswith(b"220"), line
            # a session of 127.0.0.2 ends: its place is free again
            held.pop(0).close()
            await wait_for(lambda: gw.gate.anvil.open_sessions("127.0.0.2") == 1)
            sock, line = await greet(gw.smtp_port, "127.0.0.2")
            held.append(sock)
            assert line.startswith(b"220"), line
        finally:
            for sock in held:
                sock.close()


async def test_connection_rate_per_client(settings: Settings):
    s = with_smtp(settings, client_connection_rate=3, relay_networks=[])
    async with running(s) as gw:
        for _ in range(3):
            sock, line = await greet(gw.smtp_port, "127.0.0.4")
            sock.close()
            assert line.startswith(b"220"), line
        sock, line = await greet(gw.smtp_port, "127.0.0.4")
        sock.close()
        assert line.startswith(b"421 4.7.0"), line
        sock, line = await greet(gw.smtp_port, "127.0.0.5")
        sock.close()
        assert line.startswith(b"220"), line


def test_client_key_ipv6_counts_per_64():
    assert (
        client_key("2001:db8:1:2::7") == client_key("2001:db8:1:2:ffff::1") == ("2001:db8:1:2::/64")
    )
    assert client_key("2001:db8:1:3::7") != client_key("2001:db8:1:2::7")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    anvil = Anvil.from_cidrs(1, 0, ["10.0.0.0/8", "2001:db8:ffff::/48"])
    assert anvil.admit("10.1.2.3", 0.0) == (None, "")  # exempt: not counted
    assert anvil.admit("10.1.2.3", 0.0) == (None, "")
    assert anvil.admit("2001:db8:1:2::7", 0.0) == ("2001:db8:1:2::/64", "")
    assert anvil.admit("2001:db8:1:2::8", 0.0) == ("2001:db8:1:2::/64", "count")
    assert anvil.first_refusal("2001:db8:1:2::/64")  # logged once per client and minute
    anvil.admit("2001:db8:1:2::9", 1.0)
    assert not anvil.first_refusal("2001:db8:1:2::/64")
    anvil.leave("2001:db8:1:2::/64")
    assert anvil.admit("2001:db8:1:2::9", 2.0) == ("2001:db8:1:2::/64", "")


def test_relay_networks_must_be_networks(tmp_path):
    path = write_config(tmp_path, **{"max_sessions = 50": 'relay_networks = ["10.0.0.0/33"]'})
    with pytest.raises(ConfigError, match=r"smtp.relay_networks.*10.0.0.0/33"):
        load_settings(path)


# -- the memory budget for mail in flight -------------------------------------------------------


@dataclasses.dataclass
class Session:
    sock: socket.socket
    replies: io.BufferedReader

    def close(self) -> None:
        self.sock.close()


def start_data(port: int) -> tuple[Session, bytes]:
    """A session up to the reply to DATA; returns it and that reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for command in (
        b"HELO t\r\n",
        b"MAIL FROM:<a@customer.test>\r\n",
        b"RCPT TO:<support@example.com>\r\n",
        b"DATA\r\n",
    ):
        s.sendall(command)
        reply = f.readline()
    return Session(s, f), reply


def finish(session: Session, rest: bytes) -> bytes:
    session.sock.sendall(rest + b"\r\n.\r\n")
    return session.replies.readline()


async def test_memory_budget_refuses_new_data_and_comes_back(settings: Settings):
    """Budget 600 kB. A mail of 570 kB in flight leaves less than the headroom: a new DATA
    gets 452 4.3.1. A mail that grows past the budget is dropped and gets 452 4.3.1 after its
    final dot. Each time the sessions end the budget is whole again, and mail flows."""
    s = with_smtp(settings, data_memory_budget=600_000)
    async with running(s) as gw:
        budget = gw.gate.budget
        first, reply = await asyncio.to_thread(start_data, gw.smtp_port)
        assert reply.startswith(b"354")
        body = make_mail(message_id="big@customer.test", body="") + (b"y" * 998 + b"\r\n") * 570
        await asyncio.to_thread(first.sock.sendall, body)
        await wait_for(lambda: budget.used >= 570_000, what="570 kB in flight")
        late, reply = await asyncio.to_thread(start_data, gw.smtp_port)
        late.close()
        assert reply.startswith(b"452 4.3.1"), reply
        assert (await asyncio.to_thread(finish, first, b"")).startswith(b"250")
        first.close()
        await wait_for(lambda: budget.used == 0, what="the budget released")

        grower, reply = await asyncio.to_thread(start_data, gw.smtp_port)
        assert reply.startswith(b"354")
        body = make_mail(message_id="grows@customer.test", body="") + (b"z" * 998 + b"\r\n") * 700
        assert (await asyncio.to_thread(finish, grower, body)).startswith(b"452 4.3.1")
        grower.close()
        assert budget.dropped == 1
        await wait_for(lambda: budget.used == 0, what="the budget released")

        again, reply = await asyncio.to_thread(start_data, gw.smtp_port)
        assert reply.startswith(b"354")
        mail = make_mail(message_id="after@customer.test")
        assert (await asyncio.to_thread(finish, again, mail)).startswith(b"250")
        again.close()
        stored = await gw.store.read(
            lambda db: [r[0] for r in db.execute("SELECT message_id FROM raw_mails ORDER BY id")]
        )
        assert stored == ["big@customer.test", "after@customer.test"]


# -- the minimum data rate inside DATA ------------------------------------------------------------


def open_data(port: int) -> Session:
    session, reply = start_data(port)
    assert reply.startswith(b"354"), reply
    return session


def upload_slowly(port: int) -> bytes:
    """A 1000-octet line every 1.5 s, then the final dot; the reply to it."""
    session = open_data(port)
    session.sock.sendall(make_mail(message_id="slow@customer.test", body=""))
    for _ in range(4):
        session.sock.sendall(b"s" * 998 + b"\r\n")
        time.sleep(1.5)  # the sender's schedule, not a wait for the server
    reply = finish(session, b"")
    session.close()
    return reply


def drip(port: int) -> bytes:
    """10 octets, then 0.2 s listening, until the server says something; what it said."""
    sock = open_data(port).sock
    sock.settimeout(0.2)
    try:
        for _ in range(300):
            try:
                sock.sendall(b"drip drip\n")
                return sock.recv(1024)
            except TimeoutError:
                continue
        return b""
    finally:
        sock.close()


async def test_slow_upload_above_the_rate_is_not_cut(settings: Settings):
    """idle_timeout = 1 s, a 1000-octet line every 1.5 s: 667 octets/s is above the minimum of
    100, so DATA lasts several idle timeouts and the mail is accepted."""
    s = with_smtp(settings, idle_timeout=1, min_data_rate=100, data_timeout=3)
    async with running(s) as gw:
        assert (await asyncio.to_thread(upload_slowly, gw.smtp_port)).startswith(b"250")


async def test_drip_below_the_rate_is_cut_with_421(settings: Settings):
    """10 octets every 0.2 s (50/s) against a minimum of 1000/s: cut with 421 4.4.2 once the
    deadline (at most data_timeout = 2 s ahead) passes; nothing is stored."""
    s = with_smtp(settings, idle_timeout=30, min_data_rate=1000, data_timeout=2)
    async with running(s) as gw:
        assert (await asyncio.to_thread(drip, gw.smtp_port)).startswith(b"421 4.4.2")
        count = await gw.store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM raw_mails").fetchone()[0]
        )
        assert count == 0
