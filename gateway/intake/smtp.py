"""The SMTP edge: answers 250 only once the mail is durable, and never a 5xx for our own fault.

This is the only module that turns errors into SMTP replies. It serves inside the daemon's own
event loop (`loop.create_server` with the SMTP protocol), not aiosmtpd's threaded Controller.

It uses aiosmtpd (1.4.6) through its documented extension points (docs: "SMTP class",
"Handlers"): the handler's `handle_RCPT`, `handle_DATA` and `handle_exception` hooks, which
return the reply; an `SMTP` subclass overriding the verb method `smtp_DATA`, the coroutine
`push` and the `line_length_limit` attribute; the constructor options; and, because `SMTP` is
an asyncio `StreamReaderProtocol`, `connection_made`, `connection_lost` and `data_received`.
The door (`Door`) admits a connection before aiosmtpd sees it: the session limits and the
per-client limits (anvil.py) answer 421 there.

Relied on beyond the documentation, each pinned by a test: aiosmtpd's only 552 replies are its
size refusals (test_aiosmtpd_sends_552_only_for_size); its stream reader is `self._reader`,
the post-DATA reset `_set_post_data_state()`, and its idle timer `_timeout_handle` /
`_reset_timeout()` (the chunked DATA reader and the DATA rate tests in
test_smtp_hostile.py and test_smtp_data_reader.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import SmtpSettings
from gateway.intake.anvil import Anvil
from gateway.intake.data_reader import DataReader, DataState
from gateway.intake.routing import Routes
from gateway.mail.normalise import header_block_size, intake_key, normalise
from gateway.models import IncomingMail
from gateway.store.db import Store
from gateway.store.intake import accept_raw

log = logging.getLogger(__name__)

# The reply catalogue: every status the edge gives, with its enhanced code (RFC 3463).
TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"
TOO_BIG = "552 5.3.4 Message too big for system"
HEADERS_TOO_BIG = "552 5.3.4 Header block too large"
NOT_OURS = "550 5.1.1 {addr}: recipient not accepted here (no relaying)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
BUSY = "421 4.7.0 Too many connections, please try again later"
CLIENT_BUSY = "421 4.7.0 Too many connections from your address, please try again later"
CLIENT_RATE = "421 4.7.0 Too many connection attempts from your address, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
TOO_SLOW = "421 4.4.2 Timeout: DATA arrived slower than the minimum rate, closing"
NO_MEMORY = "452 4.3.1 Insufficient system storage, please try again later"
# aiosmtpd's own replies for the DATA verdicts (kept word for word: the property test compares)
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
DATA_TOO_MUCH = "552 Error: Too much mail data"

# aiosmtpd's own replies carry no enhanced status code. Of those, the gateway promises one for
# the size refusals (the SIZE parameter of MAIL, and DATA past data_size_limit): they are the
# only 552s aiosmtpd sends, so they are recognised by the reply code, not by their wording.
_ENHANCED = {"552": TOO_BIG}
_WITH_ENHANCED_CODE = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}\b")


class IntakeObserver(Protocol):
    """Told of each mail and recipient the edge accepts or refuses (gateway.metrics.Metrics)."""

    def mail_accepted(self, size: int, seconds: float) -> None:
        """Answered 250: `size` octets of DATA, `seconds` from its end to the reply."""

    def mail_refused(self, code: str) -> None:
        """A recipient or a mail refused, with its 3-digit reply code ("550")."""


class _Unobserved:
    def mail_accepted(self, size: int, seconds: float) -> None:
        pass

    def mail_refused(self, code: str) -> None:
        pass


@dataclass
class MemoryBudget:
    """Octets of DATA received by all unfinished DATA phases together, counted as they arrive
    and released when the mail's commit returns (or the mail is refused). A new DATA phase
    needs HEADROOM octets free, else 452 4.3.1; a phase whose next read would pass the limit
    is dropped (it reads on to the final dot, keeps nothing and gets 452 4.3.1). So mail in
    flight never holds more than the limit, plus the reads in progress."""

    limit: int
    used: int = 0
    dropped: int = 0  # phases dropped so far (for tests and logs)

    HEADROOM = 64 * 1024

    def full(self) -> bool:
        return self.limit - self.used < min(self.HEADROOM, self.limit // 16)

    def grow(self, octets: int) -> bool:
        """Account `octets` more; False (and nothing accounted) when that passes the limit."""
        if self.used + octets > self.limit:
            self.dropped += 1
            return False
        self.used += octets
        return True

    def release(self, octets: int) -> None:
        self.used = max(0, self.used - octets)


M_MMAP_THRESHOLD = -3  # glibc's mallopt(3) parameter number
MAIL_MMAP_THRESHOLD = 256 * 1024


def return_freed_mail_to_the_os() -> bool:
    """Make glibc serve every allocation of MAIL_MMAP_THRESHOLD bytes or more with its own
    mmap, so a mail's buffers go back to the kernel when freed (mallopt(3)). By default glibc
    raises that threshold after the first large free (up to 32 MiB) and then keeps freed
    mail in its heap: RSS stayed at its peak after unfinished DATA phases ended. True when
    set (glibc), False elsewhere (musl, macOS: nothing to do)."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MAIL_MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def default_memory_budget(meminfo: str = "/proc/meminfo") -> int:
    """A quarter of MemAvailable (Linux, /proc/meminfo), at most 1 GiB and at least 64 MiB;
    256 MiB where /proc/meminfo cannot be read."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024  # the file says kB (KiB)
                    return max(64 << 20, min(1 << 30, available // 4))
    except (OSError, ValueError, IndexError):
        pass
    return 256 << 20


@dataclass
class Gate:
    """Shared by every session: how many are open, whether new ones are still welcome, the
    per-client counts and the memory budget of mail in flight."""

    limit: int
    anvil: Anvil = field(default_factory=lambda: Anvil(0, 0))
    budget: MemoryBudget = field(default_factory=lambda: MemoryBudget(1 << 30))
    closing: bool = False
    replies: Counter[str] = field(default_factory=Counter)  # reply code -> count, for metrics
    sessions: set[GatewaySMTP] = field(default_factory=set)  # the open sessions
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> int:
        return len(self.sessions)

    def refusal(self, host: str, now: float) -> tuple[str | None, str | None]:
        """(the client key to `leave` later, the 421 for a new connection or None)."""
        if self.closing:
            return None, SHUTTING_DOWN
        key, why = self.anvil.admit(host, now)
        if why:
            if key is not None and self.anvil.first_refusal(key):  # once a minute per client
                log.warning("refusing connections from %s: per-client %s limit", key, why)
            return None, CLIENT_RATE if why == "rate" else CLIENT_BUSY
        if self.active >= self.limit:
            self.anvil.leave(key)
            return None, BUSY
        return key, None

    def enter(self, session: GatewaySMTP) -> None:
        self.sessions.add(session)
        self._idle.clear()

    def leave(self, session: GatewaySMTP) -> None:
        """Idempotent: after a failed STARTTLS handshake aiosmtpd reports the lost connection
        itself, and the transport may report it too."""
        if session in self.sessions:
            self.sessions.discard(session)
            self.anvil.leave(session.client_key)
        if not self.sessions:
            self._idle.set()

    def close(self) -> None:
        """Stop: refuse newcomers, and end sessions that are not inside DATA.

        A session between mails holds nothing that could be lost; letting it idle until its
        timeout would only delay the stop. Sessions in DATA finish (drained() waits for them).
        """
        self.closing = True
        for session in list(self.sessions):
            session.close_if_idle()

    async def drained(self, seconds: float) -> bool:
        """Wait until no session is open (or the timeout passes); True when drained."""
        if not self.sessions:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True


class Door(asyncio.Protocol):
    """Every accepted connection starts here: the gate decides, knowing the peer's address
    (a protocol factory is called without it). Welcome: the transport is handed to a new
    session (`BaseTransport.set_protocol`) before any byte is read. Not welcome: one 421 in
    place of the greeting (RFC 5321 sections 3.8 and 4.3.2: come back later), then closed, so
    neither aiosmtpd nor the session count ever sees it."""

    def __init__(self, gate: Gate, new_session: Callable[[str | None], GatewaySMTP]):
        self.gate = gate
        self.new_session = new_session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        key, reply = self.gate.refusal(host, time.monotonic())
        if reply is not None:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply.encode() + b"\r\n")
            self.gate.replies[reply[:3]] += 1
            transport.close()
            return
        session = self.new_session(key)
        self.gate.enter(session)  # left in connection_lost
        transport.set_protocol(session)
        session.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class ChunkedDataSMTP(SMTP):
    """aiosmtpd's SMTP with a DATA phase read in large chunks (data_reader.DataReader).

    Same replies and the same mail as aiosmtpd 1.4.6's line loop for every byte stream
    (tests/test_smtp_data_reader.py proves it against aiosmtpd itself): only CRLF . CRLF ends
    DATA, dot-unstuffing, `line_length_limit` and `data_size_limit` enforced while reading,
    nothing kept past them. Reads follow `DataReader.wanted()`, so no byte after the final dot
    is consumed (a pipelined command stays for the command loop). The handler's `handle_DATA`
    is called directly (the documented hook; `decode_data` is not supported: bytes only).

    Hooks for subclasses: `data_refusal()` before 354, `data_started()` after it,
    `data_keep(reader)` after each read (False drops the mail: `data_dropped_reply`),
    `data_read()` after the final dot and `data_done()` once the reply is decided.
    """

    data_dropped_reply = NO_MEMORY

    def data_refusal(self) -> str | None:
        return None

    def data_started(self) -> None:
        pass

    def data_keep(self, data: DataReader) -> bool:
        return True

    def data_read(self) -> None:
        pass

    def data_done(self) -> None:
        pass

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        refusal = self.data_refusal()
        if refusal is not None:
            await self.push(refusal)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = DataReader(self.line_length_limit, self.data_size_limit)
        self.data_started()
        try:
            await self._read_data(data)
            self.data_read()
            reply = await self._data_reply(data)
        finally:
            self.data_done()
        self._set_post_data_state()
        await self.push(reply)

    async def _read_data(self, data: DataReader) -> None:
        """Read to the final dot, following data.wanted()."""
        reader = self._reader
        try:
            while not data.done:
                want = data.wanted()
                try:
                    if want:
                        chunk = await reader.readexactly(want)
                    else:
                        chunk = await reader.readuntil(data.terminator)
                except asyncio.LimitOverrunError as e:  # no terminator within the limit
                    chunk = await reader.read(e.consumed)
                data.feed(chunk)
                if not self.data_keep(data):
                    data.drop()
        except (asyncio.CancelledError, asyncio.IncompleteReadError):
            log.info("Connection lost during DATA")
            data.drop()  # free the mail now, not when the cyclic GC meets this task's frame
            self._writer.close()
            raise

    async def _data_reply(self, data: DataReader) -> str:
        if data.state is DataState.TOO_LONG:
            return LINE_TOO_LONG
        if data.state is DataState.TOO_MUCH:
            return DATA_TOO_MUCH
        if data.state is DataState.DROPPED:
            return self.data_dropped_reply
        assert self.envelope is not None and self.session is not None
        content = data.content()
        self.envelope.content = self.envelope.original_content = content
        status = await self.event_handler.handle_DATA(self, self.session, self.envelope)
        return str(status)


class GatewaySMTP(ChunkedDataSMTP):
    """The gateway's session: long DATA lines, enhanced size codes, the DATA rate deadline,
    the memory budget and a drain at the stop."""

    # DATA lines longer than RFC 5321's 1000 octets are common in real mail (HTML on one line);
    # Postfix accepts them, so we do too, up to a bound that still caps memory per session.
    # It is also the StreamReader's limit, so DATA is read in chunks of about this size.
    line_length_limit = 1 << 20

    def __init__(
        self,
        handler: IntakeHandler,
        gate: Gate,
        *,
        client_key: str | None = None,
        min_data_rate: float = 500.0,
        data_timeout: float = 300.0,
        **kwargs: Any,
    ):
        super().__init__(handler, **kwargs)
        self.gate = gate
        self.client_key = client_key
        self.observer = handler.observer
        self.in_data = False
        self.min_data_rate = min_data_rate
        self.data_timeout = data_timeout
        self._deadline: float | None = None  # loop time; set while reading DATA
        self._rate_timer: asyncio.TimerHandle | None = None
        self._held = 0  # octets of this DATA phase counted in the memory budget
        self._counting = False
        self._dropped = False

    def connection_lost(self, error: Exception | None) -> None:
        try:
            self._stop_rate_clock()
            super().connection_lost(error)
        finally:
            self.gate.leave(self)

    async def push(self, status: AnyStr) -> None:
        """Every reply goes out here (aiosmtpd's documented way to answer): counted by code,
        and aiosmtpd's own size refusals given their enhanced code (see _ENHANCED)."""
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        code = text[:3]
        self.gate.replies[code] += 1
        if code in _ENHANCED and not _WITH_ENHANCED_CODE.match(text):
            self.observer.mail_refused(code)
            await super().push(_ENHANCED[code])
            return
        await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False
        if self.gate.closing:
            self.close_if_idle()  # the mail is committed (or refused): now the session may end

    # -- the memory budget and the DATA rate deadline (Postfix's smtpd_min_data_rate) -------

    def data_refusal(self) -> str | None:
        if self.gate.budget.full():
            log.warning("DATA refused (452): mail in flight holds the memory budget")
            self.observer.mail_refused(NO_MEMORY[:3])
            return NO_MEMORY
        return None

    def data_started(self) -> None:
        self._held, self._counting, self._dropped = 0, True, False
        self._start_rate_clock()

    def data_received(self, data: bytes) -> None:
        """Inside DATA each read is counted against the memory budget, and moves the deadline
        by len(data)/min_data_rate seconds, at most data_timeout seconds ahead of now (Postfix
        3.x smtpd_min_data_rate with smtpd_per_request_deadline)."""
        if self._deadline is not None:
            now = self.loop.time()
            self._deadline = min(
                self._deadline + len(data) / self.min_data_rate, now + self.data_timeout
            )
        if self._counting:
            if self.gate.budget.grow(len(data)):
                self._held += len(data)
            else:
                log.warning("%s: a mail in DATA dropped (452): memory budget spent", self._who())
                self._stop_counting()
                self._dropped = True
        super().data_received(data)

    def data_keep(self, data: DataReader) -> bool:
        if data.state is not DataState.NOMINAL:
            self._stop_counting()  # refused already: nothing of it is kept
        return not self._dropped

    def data_read(self) -> None:
        self._stop_rate_clock()  # the client now waits for us: no deadline on our commit
        self._counting = False  # (pipelined commands are not mail)

    def data_done(self) -> None:
        self._stop_rate_clock()
        self._stop_counting()

    def _stop_counting(self) -> None:
        self._counting = False
        self.gate.budget.release(self._held)
        self._held = 0

    def _who(self) -> str:
        return _peer(self.session) if self.session is not None else "?"

    def _start_rate_clock(self) -> None:
        # inside DATA the idle timer does not apply: aiosmtpd's is stopped, ours runs
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        self._deadline = self.loop.time() + self.data_timeout
        self._rate_timer = self.loop.call_at(self._deadline, self._rate_check)

    def _stop_rate_clock(self) -> None:
        if self._deadline is None:
            return
        self._deadline = None
        if self._rate_timer is not None:
            self._rate_timer.cancel()
            self._rate_timer = None
        if self.transport is not None:
            self._reset_timeout()  # back to the idle timeout between commands

    def _rate_check(self) -> None:
        if self._deadline is None:
            return
        if self.loop.time() < self._deadline:
            self._rate_timer = self.loop.call_at(self._deadline, self._rate_check)
            return
        self._deadline = self._rate_timer = None
        log.info("%s: DATA below %s bytes/s, cut", self._who(), self.min_data_rate)
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(TOO_SLOW.encode() + b"\r\n")
            self.gate.replies[TOO_SLOW[:3]] += 1
            transport.close()

    def close_if_idle(self) -> None:
        """At the stop: a session outside DATA gets 421 and ends at once."""
        transport = self.transport
        if self.in_data or not isinstance(transport, asyncio.WriteTransport):
            return
        transport.write(SHUTTING_DOWN.encode() + b"\r\n")
        self.gate.replies[SHUTTING_DOWN[:3]] += 1
        transport.close()


class IntakeHandler:
    """aiosmtpd hooks: recipients are checked against the routes, DATA is committed.

    Each hook returns the reply aiosmtpd sends (docs: "Handlers"); `handle_RCPT` records an
    accepted recipient on the envelope itself, as aiosmtpd leaves that to the hook.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        store: Store,
        *,
        on_accepted: Callable[[], None] = lambda: None,
        observer: IntakeObserver | None = None,
    ):
        self.settings = settings
        self.store = store
        self.routes = Routes(frozenset(settings.addresses), frozenset(settings.domains))
        # the address check (email_validator) costs about 0.5 ms; RCPT and DATA both ask
        self.mailbox_for = functools.lru_cache(maxsize=4096)(self.routes.mailbox_for)
        self.on_accepted = on_accepted
        self.observer: IntakeObserver = observer or _Unobserved()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return self._refuse(TOO_MANY_RCPTS)
        if self.mailbox_for(address) is None:
            log.info("rejected recipient %r from %s", address, session.peer)
            return self._refuse(NOT_OURS.format(addr=_printable(address)))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        start = time.perf_counter()
        data = envelope.original_content or b""
        raw = normalise(data)
        if header_block_size(raw) > self.settings.max_header_bytes:
            return self._refuse(HEADERS_TOO_BIG)
        message_id, digest = intake_key(raw)
        mailboxes = sorted({self.mailbox_for(r) or "" for r in envelope.rcpt_tos} - {""})
        mails = [
            IncomingMail(
                source="smtp",
                mailbox=mb,
                envelope_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message_id=message_id,
                sha256=digest,
                peer=_peer(session),
                helo=session.host_name or "",
            )
            for mb in mailboxes
        ]
        try:
            results = await self.store.write(lambda db: [accept_raw(db, m) for m in mails])
        except Exception:
            log.exception("intake commit failed; answering 451 so the sender retries")
            return self._refuse(TEMPFAIL)
        self.on_accepted()
        self.observer.mail_accepted(len(data), time.perf_counter() - start)
        ids = ",".join(str(raw_id) for raw_id, _dup in results)
        dups = sum(1 for _id, dup in results if dup)
        if dups:
            log.info("duplicate delivery of %s (raw mail %s): kept the first copy", message_id, ids)
        return f"250 2.0.0 OK queued as {ids}"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default is a permanent 500, which would bounce the customer's mail
        log.error("SMTP session error: %r", error)
        return TEMPFAIL

    def _refuse(self, reply: str) -> str:
        self.observer.mail_refused(reply[:3])
        return reply


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert or not settings.tls_key:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return ctx


def session_factory(
    settings: SmtpSettings,
    handler: IntakeHandler,
    gate: Gate,
    *,
    hostname: str,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], asyncio.Protocol]:
    """The protocol factory for `loop.create_server`: a Door per connection, which lets the
    gate decide on the peer's address and hands welcome connections to a new session."""
    ctx = tls_context(settings)

    def new_session(client_key: str | None) -> GatewaySMTP:
        return GatewaySMTP(
            handler,
            gate,
            client_key=client_key,
            min_data_rate=settings.min_data_rate,
            data_timeout=settings.data_timeout,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="mail-gateway ESMTP",
            tls_context=ctx,
            require_starttls=settings.require_tls,
            timeout=settings.idle_timeout,
            loop=loop,
        )

    return lambda: Door(gate, new_session)


def make_gate(settings: SmtpSettings) -> Gate:
    """The gate for these settings: session limit, per-client limits, memory budget."""
    anvil = Anvil.from_cidrs(
        settings.client_connection_limit, settings.client_connection_rate, settings.relay_networks
    )
    budget = settings.data_memory_budget or default_memory_budget()
    return Gate(limit=settings.max_sessions, anvil=anvil, budget=MemoryBudget(budget))


async def start_smtp(
    settings: SmtpSettings,
    store: Store,
    *,
    hostname: str,
    on_accepted: Callable[[], None] = lambda: None,
    observer: IntakeObserver | None = None,
) -> tuple[asyncio.Server, Gate]:
    """Listen on settings.listen in the running loop; port 0 picks a free port.

    Returns the server and the gate the stop closes and /metrics reads.
    """
    handler = IntakeHandler(settings, store, on_accepted=on_accepted, observer=observer)
    gate = make_gate(settings)
    return_freed_mail_to_the_os()
    loop = asyncio.get_running_loop()
    factory = session_factory(settings, handler, gate, hostname=hostname, loop=loop)
    server = await loop.create_server(
        factory, host=settings.listen.host, port=settings.listen.port, reuse_address=True
    )
    return server, gate


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


def _printable(address: str) -> str:
    return "".join(c for c in address if c.isprintable())[:256]
