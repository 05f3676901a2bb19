"""The SMTP edge: answers 250 only once the mail is durable, and never a 5xx for our own fault.

This is the only module that turns errors into SMTP replies. It serves inside the daemon's own
event loop (`loop.create_server` with the SMTP protocol), not aiosmtpd's threaded Controller.

It uses aiosmtpd (1.4) only through its documented extension points (docs: "SMTP class",
"Handlers"): the handler's `handle_RCPT`, `handle_DATA` and `handle_exception` hooks, which
return the reply; an `SMTP` subclass overriding the verb method `smtp_DATA`, the coroutine
`push` and the `line_length_limit` attribute; the constructor options; and, because `SMTP` is
an asyncio `StreamReaderProtocol`, the protocol factory, `connection_made` and
`connection_lost`. The session limit lives in the factory: a connection over the limit never
reaches aiosmtpd. One undocumented fact is relied on, and pinned by a test
(test_aiosmtpd_sends_552_only_for_size): aiosmtpd's only 552 replies are its size refusals.
"""

from __future__ import annotations

import asyncio
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
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"

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
class Gate:
    """Shared by every session: how many are open, and whether new ones are still welcome."""

    limit: int
    closing: bool = False
    replies: Counter[str] = field(default_factory=Counter)  # reply code -> count, for metrics
    sessions: set[GatewaySMTP] = field(default_factory=set)  # the open sessions
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> int:
        return len(self.sessions)

    def refusal(self) -> str | None:
        """The 421 for a new connection, or None when it is welcome."""
        if self.closing:
            return SHUTTING_DOWN
        if self.active >= self.limit:
            return BUSY
        return None

    def enter(self, session: GatewaySMTP) -> None:
        self.sessions.add(session)
        self._idle.clear()

    def leave(self, session: GatewaySMTP) -> None:
        """Idempotent: after a failed STARTTLS handshake aiosmtpd reports the lost connection
        itself, and the transport may report it too."""
        self.sessions.discard(session)
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


class Refusal(asyncio.Protocol):
    """A connection the gate does not let in: one 421 instead of the greeting, then closed.

    aiosmtpd has no session limit; a 421 in place of the greeting (RFC 5321 sections 3.8 and
    4.3.2) tells the client to come back later, instead of letting sessions pile up unbounded.
    """

    def __init__(self, reply: str, gate: Gate):
        self.reply = reply
        self.gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.reply.encode() + b"\r\n")
        self.gate.replies[self.reply[:3]] += 1
        transport.close()


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with long DATA lines, enhanced size codes, and a drain at the stop."""

    # DATA lines longer than RFC 5321's 1000 octets are common in real mail (HTML on one line);
    # Postfix accepts them, so we do too, up to a bound that still caps memory per session.
    line_length_limit = 1 << 20

    def __init__(self, handler: IntakeHandler, gate: Gate, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self.gate = gate
        self.observer = handler.observer
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.gate.closing:
            # let in by the factory just before the stop began, when close() found no
            # transport yet to end it with
            self.close_if_idle()

    def connection_lost(self, error: Exception | None) -> None:
        try:
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
        if self.routes.mailbox_for(address) is None:
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
        mailboxes = sorted({self.routes.mailbox_for(r) or "" for r in envelope.rcpt_tos} - {""})
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
            log.info("duplicate delivery of %s (raw %s): kept the first copy", message_id, ids)
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
    """The protocol factory for `loop.create_server`: a session for each connection the gate
    lets in, a Refusal (421) for the others. The loop calls it on accept, before
    connection_made, so the count of sessions never passes the limit."""
    ctx = tls_context(settings)

    def factory() -> asyncio.Protocol:
        refusal = gate.refusal()
        if refusal is not None:
            return Refusal(refusal, gate)
        session = GatewaySMTP(
            handler,
            gate,
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
        gate.enter(session)  # left in connection_lost
        return session

    return factory


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
    gate = Gate(limit=settings.max_sessions)
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
