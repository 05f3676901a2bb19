"""Handing one composed mail to the relay (aiosmtplib) or to the capture folder.

This module only sends: it knows nothing of the store, of delivery rows or of retries.
`RelaySender.send` never raises for a delivery problem; it returns a DeliveryResult that says
whether the relay took the mail and, if not, whether trying again can help:
- accepted: ok, with the server's reply to DATA (RFC 5321 §4.2: 250 and its text);
- temporary: a 4xx reply, a refused or dropped connection, a timeout, a failed AUTH (the
  operator's to fix; retrying meanwhile is harmless), a token the provider would not grant;
- permanent: a 5xx reply (RFC 5321 §4.2.1), with the server's text.
With auth = oauth2 the login is SASL XOAUTH2 (RFC 4954 AUTH with the mechanism of Google's and
Microsoft's "XOAUTH2 protocol" pages) with the token of `tokens`; a refused token is replaced
once from the provider within the same attempt.
What happens next (retry schedule, "sent" or "failed") is the delivery job's business
(jobs/send_reply.py) and the store's (store/deliveries.py). An optional observer (Metrics)
is told of every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from gateway.config import RelaySettings
from gateway.errors import TokenError
from gateway.mailauth.tokens import TokenSource
from gateway.relay.outbox import keep

log = logging.getLogger(__name__)


class Sendable(Protocol):
    """What sending needs of a mail: a ComposedMail or a stored delivery row both have it."""

    @property
    def message_id(self) -> str: ...  # without brackets; names the capture file

    @property
    def mail_from(self) -> str: ...  # the envelope sender (MAIL FROM)

    @property
    def rcpts(self) -> tuple[str, ...] | list[str]: ...  # the envelope recipients (RCPT TO)

    @property
    def raw(self) -> bytes: ...  # the message, CRLF line ends, exactly as DATA sends it


@dataclass(frozen=True)
class OutgoingMail:
    """The envelope and bytes of one mail: the plainest Sendable."""

    message_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class DeliveryResult:
    """The relay's answer to one attempt (or, from deliver_once, the answer stored for it)."""

    ok: bool
    permanent: bool = False  # only meaningful when not ok: a 5xx, trying again cannot help
    code: int | None = None  # the SMTP reply code, when there was one
    message: str = ""  # the server's reply text, or what went wrong


class DeliveryObserver(Protocol):
    """Told of every attempt `RelaySender.send` makes (gateway.metrics.Metrics implements it)."""

    def delivery_attempted(self, result: DeliveryResult, seconds: float) -> None: ...


def _temporary(code: int | None, message: str) -> DeliveryResult:
    return DeliveryResult(ok=False, permanent=False, code=code, message=message)


def _from_code(code: int, message: str) -> DeliveryResult:
    return DeliveryResult(ok=False, permanent=code >= 500, code=code, message=message)


class RelaySender:
    """Sends through [relay] (mode smtp) or writes .eml files (mode capture)."""

    def __init__(
        self,
        settings: RelaySettings,
        *,
        capture_dir: Path | None = None,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        observer: DeliveryObserver | None = None,
        tokens: TokenSource | None = None,
    ):
        self.settings = settings
        self.tokens = tokens  # auth = oauth2: the relay login's access token
        self.observer = observer
        self.capture_dir = capture_dir or settings.capture_dir
        self.local_hostname = local_hostname
        self.tls_context = tls_context  # e.g. a private CA; default: the system's trust store

    async def send(self, mail: Sendable) -> DeliveryResult:
        start = time.perf_counter()
        if self.settings.mode == "capture":
            result = await asyncio.to_thread(self._capture, mail)
        else:
            result = await self._smtp(mail)
        if self.observer is not None:
            self.observer.delivery_attempted(result, time.perf_counter() - start)
        return result

    # -- SMTP ---------------------------------------------------------------------------------

    async def _smtp(self, mail: Sendable) -> DeliveryResult:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls == "implicit",
            start_tls=True if s.tls == "starttls" else False,
            timeout=s.timeout,
            local_hostname=self.local_hostname,
            tls_context=self.tls_context,
        )
        # each command has `timeout`; the whole conversation gets a bound too
        budget = s.timeout * 4 + len(mail.raw) / 10_000
        try:
            async with asyncio.timeout(budget):
                await client.connect()
                await self.authenticate(client)
                errors, reply = await client.sendmail(mail.mail_from, list(mail.rcpts), mail.raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
            codes = [r.code for r in refused]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refused)
            code = max(codes) if codes else None
            return DeliveryResult(
                ok=False, permanent=bool(codes) and min(codes) >= 500, code=code, message=text
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            # a wrong password or a refused token is the operator's to fix; retry meanwhile
            return _temporary(exc.code, f"AUTH failed: {exc.code} {exc.message}")
        except TokenError as exc:  # the provider grants no token: the same, before AUTH
            return _temporary(None, f"AUTH not tried: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            return _from_code(exc.code, f"{exc.code} {exc.message}")
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            return _temporary(None, f"timed out talking to {s.host}:{s.port}: {exc}")
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return _temporary(None, f"{type(exc).__name__}: {exc}")
        finally:
            await self._close(client)
        if errors:  # some recipients refused (we send to one, but be exact)
            text = "; ".join(f"{r}: {e.code} {e.message}" for r, e in errors.items())
            codes = [e.code for e in errors.values()]
            return DeliveryResult(
                ok=False, permanent=min(codes) >= 500, code=max(codes), message=text
            )
        # aiosmtplib returns the DATA reply's text; its code was 250 or it would have raised
        text = getattr(reply, "message", reply)
        return DeliveryResult(ok=True, code=getattr(reply, "code", 250), message=str(text))

    async def authenticate(self, client: aiosmtplib.SMTP) -> None:
        """Log in as [relay] says: AUTH XOAUTH2 (auth = oauth2), AUTH with the password (a
        username set), or not at all. Raises SMTPAuthenticationError or TokenError."""
        s = self.settings
        if s.auth == "oauth2":
            await self._xoauth2(client)
        elif s.username:
            await client.login(s.username, str(s.password))

    async def _xoauth2(self, client: aiosmtplib.SMTP) -> None:
        """AUTH XOAUTH2 as [relay] username; on a refusal once more with a new token.
        Raises SMTPAuthenticationError (the server's reply) or TokenError."""
        user, tokens = self.settings.username, self.tokens
        if tokens is None:
            raise TokenError("relay: auth = oauth2 but no token source")
        try:
            await client.auth_xoauth2(user, await tokens.token())
        except aiosmtplib.SMTPAuthenticationError as exc:
            await tokens.refused(f"{exc.code} {exc.message}")
            try:
                await client.auth_xoauth2(user, await tokens.token(fresh=True))
            except aiosmtplib.SMTPAuthenticationError as again:
                await tokens.refused(f"XOAUTH2 as {user}: {again.code} {again.message}")
                raise
        await tokens.logged_in()

    async def _close(self, client: aiosmtplib.SMTP) -> None:
        if not client.is_connected:
            return
        try:
            async with asyncio.timeout(self.settings.timeout):
                await client.quit()
        except Exception:  # the mail is already accepted (or not); QUIT cannot change that
            client.close()

    # -- capture ------------------------------------------------------------------------------

    def _capture(self, mail: Sendable) -> DeliveryResult:
        if self.capture_dir is None:
            return _temporary(None, "relay mode capture needs capture_dir")
        try:
            name = keep(Path(self.capture_dir), mail.message_id, mail.raw)
        except OSError as exc:
            where = exc.filename or self.capture_dir
            return _temporary(None, f"cannot write {where}: {exc.strerror or exc}")
        return DeliveryResult(ok=True, code=250, message=f"captured {name}")
