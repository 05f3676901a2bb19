"""The chunked DATA reader is aiosmtpd's line loop, byte for byte and reply for reply.

Two properties (hypothesis), on streams built from the characters that matter (dots, bare CR
and LF, CRLF, long runs), with small line and size limits so every branch is reached:

- over a real socket, aiosmtpd 1.4.6's own `SMTP` and `ChunkedDataSMTP` (same limits) give the
  same reply transcript and hand the same mail bytes to the handler, with the stream written in
  pieces split at random points and a command pipelined after the final dot;
- the pure `DataReader` gives the same verdict, mail and end for any split of the stream.
"""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.intake.data_reader import TERMINATOR, DataReader, DataState
from gateway.intake.smtp import ChunkedDataSMTP

ATOMS = [b"a", b"b", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b".\r\n", b"\n.\r\n", b"a" * 23]
bodies = st.lists(st.sampled_from(ATOMS), max_size=40).map(b"".join)
line_limits = st.integers(min_value=32, max_value=64)
size_limits = st.one_of(st.none(), st.integers(min_value=1, max_value=300))


def without_terminator(body: bytes) -> bytes:
    """The body with no CRLF.CRLF inside and not starting with the lone-dot line, so the stream
    ends at the terminator this test appends (or one straddling it)."""
    while TERMINATOR in body:
        body = body.replace(TERMINATOR, b"\r\nx\r\n")
    return b"x" + body if body.startswith(b".\r\n") else body


class Capture:
    def __init__(self) -> None:
        self.mails: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.mails.append(envelope.original_content)
        return "250 OK got it"


async def transcript(
    base: type[SMTP], line_limit: int, size: int | None, pieces: list[bytes]
) -> tuple[list[bytes], list[bytes]]:
    """Every reply line of one session against a server of class `base`, and the mails its
    handler got. The DATA stream goes out in `pieces`, each written and drained on its own."""
    cls = type("Probe", (base,), {"line_length_limit": line_limit})
    handler = Capture()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: cls(handler, data_size_limit=size, hostname="probe", loop=loop), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for command in (b"HELO t\r\n", b"MAIL FROM:<a@t.test>\r\n", b"RCPT TO:<b@t.test>\r\n"):
            writer.write(command)
        writer.write(b"DATA\r\n")
        replies = []
        while not replies or not replies[-1].startswith(b"354"):
            replies.append(await asyncio.wait_for(reader.readline(), 10))
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            for _ in range(3):  # let the server read this piece on its own
                await asyncio.sleep(0)
        writer.write(b"QUIT\r\n")
        replies.extend((await asyncio.wait_for(reader.read(), 10)).splitlines(keepends=True))
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return replies, handler.mails


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    out, start = [], 0
    for p in points:
        if p > start:
            out.append(stream[start:p])
            start = p
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, line_limits, size_limits, st.lists(st.integers(min_value=0), max_size=8))
def test_same_replies_and_bytes_as_aiosmtpd_over_a_socket(body, line_limit, size, cuts):
    stream = without_terminator(body) + TERMINATOR + b"NOOP\r\n"

    async def both():
        pieces = split(stream, cuts)
        return (
            await transcript(SMTP, line_limit, size, pieces),
            await transcript(ChunkedDataSMTP, line_limit, size, pieces),
        )

    theirs, ours = asyncio.run(both())
    assert ours == theirs


def read_all(stream: bytes, line_limit: int, size: int | None, cuts: list[int]):
    data = DataReader(line_limit, size)
    used = 0
    for piece in split(stream, cuts):
        used += data.feed(piece)
        if data.done:
            break
    return data.done, data.state, data.content(), used


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(ATOMS), max_size=60).map(b"".join),
    st.integers(min_value=3, max_value=40),
    size_limits,
    st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_split_gives_the_same_result(stream, line_limit, size, cuts):
    whole = read_all(stream, line_limit, size, [])
    assert read_all(stream, line_limit, size, cuts) == whole
    if whole[0]:  # DATA ended: what follows the terminator was not taken
        assert stream[: whole[3]].endswith(b".\r\n")


@pytest.mark.parametrize(
    "stream, mail",
    [
        (b".\r\n", b""),
        (b"\r\n.\r\n", b"\r\n"),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"a\r\n..b\r\n.\r\nNOOP\r\n", b"a\r\n.b\r\n"),
        # the smuggling endings are data; the line ".\n" is dot-stuffed (its dot goes)
        (b"a\n.\nb\r.\rc\r\n.\n\r\n.\r\n", b"a\n.\nb\r.\rc\r\n\n\r\n"),
    ],
)
def test_known_streams(stream: bytes, mail: bytes):
    used = stream.index(b".\r\n", max(0, stream.find(TERMINATOR))) + 3
    assert read_all(stream, 1000, None, []) == (True, DataState.NOMINAL, mail, used)


def test_wanted_never_reads_past_the_terminator():
    """A reader that follows wanted() (exactly n octets, or up to the next terminator) takes
    the first line's lone dot without touching the pipelined command."""
    data = DataReader(1000, None)
    assert data.wanted() == 3  # the first line could be the lone dot
    assert data.feed(b".\r\n") == 3 and data.done
