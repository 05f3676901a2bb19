"""The SMTP edge: answers 250 only once the mail is durable, and never a 5xx for our own fault.

This is the only module that turns errors into SMTP replies. It serves inside the daemon's own
event loop (`loop.create_server` with the SMTP protocol), not aiosmtpd's threaded Controller.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import SmtpSettings
from gateway.intake.routing import Routes
from gateway.mail.normalise import header_block_size, intake_key, normalise
from gateway.models import IncomingMail
from gateway.store.db import Store
from gateway.store.intake import accept_raw

log = logging.getLogger(__name__)

# The reply catalogue: every status the edge gives, with its enhanced code.
TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"
TOO_BIG = "552 5.3.4 Message too big for system"
HEADERS_TOO_BIG = "552 5.3.4 Header block too large"
NOT_OURS = "550 5.1.1 {addr}: recipient not accepted here (no relaying)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
BUSY = "421 4.7.0 Too many connections, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"

# aiosmtpd's own wording for the same situations, rewritten with enhanced status codes.
_REWRITE = {
    "552 Error: Too much mail data": TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
}


@dataclass
class Gate:
    """Shared by every session: how many are open, and whether new ones are still welcome."""

    limit: int
    active: int = 0
    closing: bool = False
    replies: Counter = field(default_factory=Counter)  # reply code -> count, for status/metrics
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    sessions: set = field(default_factory=set)  # the open GatewaySMTP protocols

    def enter(self, session: GatewaySMTP) -> None:
        self.active += 1
        self.sessions.add(session)
        self._idle.clear()

    def leave(self, session: GatewaySMTP) -> None:
        self.active -= 1
        self.sessions.discard(session)
        if self.active == 0:
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
        if self.active == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with session limits and enhanced status codes."""

    # DATA lines longer than RFC 5321's 1000 octets are common in real mail (HTML on one line);
    # Postfix accepts them, so we do too, up to a bound that still caps memory per session.
    line_length_limit = 1 << 20

    def __init__(self, handler: IntakeHandler, gate: Gate, **kwargs):
        super().__init__(handler, **kwargs)
        self.gate = gate

    async def push(self, status: str) -> None:
        status = _REWRITE.get(status, status)
        self.gate.replies[status[:3]] += 1
        await super().push(status)

    async def _handle_client(self) -> None:
        # aiosmtpd has no session limit; refusing here, before the greeting, sends a 421 that
        # tells the client to come back, instead of letting sessions pile up without bound.
        gate = self.gate
        if gate.closing or gate.active >= gate.limit:
            await self.push(SHUTTING_DOWN if gate.closing else BUSY)
            if self.transport is not None:
                self.transport.close()
            return
        gate.enter(self)
        try:
            await super()._handle_client()
        finally:
            gate.leave(self)

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
        if self.gate.closing:
            self.close_if_idle()  # the mail is committed (or refused): now the session may end

    def close_if_idle(self) -> None:
        if getattr(self, "_in_data", False) or self.transport is None:
            return
        self.transport.write(SHUTTING_DOWN.encode() + b"\r\n")
        self.transport.close()


class IntakeHandler:
    """aiosmtpd hooks: recipients are checked against the routes, DATA is committed."""

    def __init__(
        self,
        settings: SmtpSettings,
        store: Store,
        *,
        on_accepted: Callable[[], None] = lambda: None,
    ):
        self.settings = settings
        self.store = store
        self.routes = Routes(frozenset(settings.addresses), frozenset(settings.domains))
        self.on_accepted = on_accepted

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return TOO_MANY_RCPTS
        if self.routes.mailbox_for(address) is None:
            log.info("rejected recipient %r from %s", address, session.peer)
            return NOT_OURS.format(addr=_printable(address))
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        raw = normalise(data)
        if header_block_size(raw) > self.settings.max_header_bytes:
            return HEADERS_TOO_BIG
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
            return TEMPFAIL
        self.on_accepted()
        ids = ",".join(str(raw_id) for raw_id, _dup in results)
        dups = sum(1 for _id, dup in results if dup)
        if dups:
            log.info("duplicate delivery of %s (raw %s): kept the first copy", message_id, ids)
        return f"250 2.0.0 OK queued as {ids}"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default is a permanent 500, which would bounce the customer's mail
        log.error("SMTP session error: %r", error)
        return TEMPFAIL


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert or not settings.tls_key:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return ctx


async def start_smtp(
    settings: SmtpSettings,
    store: Store,
    *,
    hostname: str,
    on_accepted: Callable[[], None] = lambda: None,
) -> tuple[asyncio.base_events.Server, Gate, IntakeHandler]:
    """Listen on settings.listen in the running loop; port 0 picks a free port."""
    handler = IntakeHandler(settings, store, on_accepted=on_accepted)
    gate = Gate(limit=settings.max_sessions)
    ctx = tls_context(settings)
    loop = asyncio.get_running_loop()

    def factory() -> GatewaySMTP:
        return GatewaySMTP(
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

    server = await loop.create_server(
        factory, host=settings.listen.host, port=settings.listen.port, reuse_address=True
    )
    return server, gate, handler


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


def _printable(address: str) -> str:
    return "".join(c for c in address if c.isprintable())[:256]
