"""Handing composed mail to the relay (aiosmtplib), or to a capture folder, and `deliver_once`.

`RelaySender.send` never raises for a delivery problem: it returns a DeliveryResult that says
whether the relay took the mail, and if not whether retrying can help (4xx, refused or
dropped connections, timeouts: temporary; 5xx: permanent, with the server's reply).

`deliver_once` runs one attempt for a stored delivery row. The crash window: if the process
dies after the relay answered 250 to DATA but before "sent" is committed, the row is still
'sending' and the next run sends again. It sends the raw bytes stored on the row before the
first attempt, so the second copy carries the SAME Message-ID: the customer's client (and
Dovecot's duplicate suppression where configured) sees one message twice, never two
different replies. The window is the time between the server's 250 and our commit
(milliseconds); it cannot be closed without two-phase commit with the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from gateway.config import RelaySettings
from gateway.errors import Deferred, NotFound, PermanentError
from gateway.mail.compose import ComposedMail
from gateway.store import outbound
from gateway.store.db import Store

log = logging.getLogger(__name__)

# seconds before attempt n+1 after n temporary failures; the last repeats until max_age_hours
RETRY_SCHEDULE = (60, 300, 900, 1800, 3600, 7200, 14400)


class Sendable(Protocol):
    message_id: str
    mail_from: str
    rcpts: tuple[str, ...] | list[str]
    raw: bytes


@dataclass(frozen=True)
class OutgoingMail:
    """The envelope and bytes of one stored delivery (what `send` needs of a ComposedMail)."""

    message_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    permanent: bool = False  # only meaningful when not ok
    code: int | None = None  # the SMTP reply code, when there was one
    message: str = ""  # the server's reply text, or what went wrong
    already_sent: bool = False  # deliver_once found the row sent already: nothing was sent


class DeliveryObserver(Protocol):
    """Told of every attempt `RelaySender.send` makes (gateway.metrics.Metrics implements it)."""

    def delivery_attempted(self, result: DeliveryResult, seconds: float) -> None: ...


class DeliveryExpired(PermanentError):
    """Temporary failures for longer than max_age_hours: the row is now 'failed'."""

    def __init__(self, message: str, result: DeliveryResult):
        super().__init__(message)
        self.result = result


def retry_delay(failures: int) -> float:
    """Seconds to wait after `failures` temporary failures (1 min, growing to every 4 h)."""
    return float(RETRY_SCHEDULE[min(max(failures, 1), len(RETRY_SCHEDULE)) - 1])


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
    ):
        self.settings = settings
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
                if s.username:
                    await client.login(s.username, str(s.password))
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
            # a wrong password is the operator's to fix; keep retrying meanwhile
            return _temporary(exc.code, f"AUTH failed: {exc.code} {exc.message}")
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
        folder = self.capture_dir
        if folder is None:
            return _temporary(None, "relay mode capture needs capture_dir")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9._-]", "_", mail.message_id.split("@")[0])[:80]
        for existing in folder.glob(f"*-{slug}.eml"):  # a retry after a crash: already kept
            return DeliveryResult(ok=True, code=250, message=f"captured {existing.name}")
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{slug}.eml"
        tmp = folder / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(mail.raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return _temporary(None, f"cannot write {folder / name}: {exc.strerror}")
        return DeliveryResult(ok=True, code=250, message=f"captured {name}")


async def deliver_once(
    store: Store,
    sender: RelaySender,
    delivery_id: int,
    *,
    max_age_hours: float | None = None,
    now: float | None = None,
) -> DeliveryResult:
    """One delivery attempt for a stored deliveries row.

    - already 'sent': returns ok with already_sent=True, sends nothing;
    - already 'failed': returns that failure, sends nothing;
    - otherwise marks 'sending', sends the stored raw bytes, and:
      accepted -> 'sent' plus the message in its conversation (one transaction), returns ok;
      permanent (5xx) -> 'failed' with the server's reply, returns the result (no raise);
      temporary -> 'queued' with next_attempt_at, raises Deferred (a TransientError) until
      then; once that would pass max_age_hours after the first attempt: 'failed' and
      DeliveryExpired (a PermanentError) carrying the result.
    Crash window: see the module docstring; a retry re-sends the same bytes and Message-ID.
    """
    d = await store.read(lambda db: outbound.get_delivery(db, delivery_id))
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if d.state == "sent":
        return DeliveryResult(ok=True, code=d.smtp_code, message=d.smtp_reply, already_sent=True)
    if d.state == "failed":
        return DeliveryResult(ok=False, permanent=True, code=d.smtp_code, message=d.smtp_reply)
    started = time.time() if now is None else now
    await store.write(lambda db: outbound.mark_sending(db, delivery_id, now=started))
    mail = OutgoingMail(d.message_id, d.mail_from, tuple(d.rcpts), d.raw)
    result = await sender.send(mail)
    if result.ok:
        await store.write(
            lambda db: outbound.mark_sent(db, delivery_id, code=result.code, reply=result.message)
        )
        log.info("delivery %s sent: %s", delivery_id, result.message)
        return result
    if result.permanent:
        await store.write(
            lambda db: outbound.mark_failed(
                db, delivery_id, error=result.message, code=result.code, reply=result.message
            )
        )
        log.warning("delivery %s failed for good: %s", delivery_id, result.message)
        return result
    max_age = (sender.settings.max_age_hours if max_age_hours is None else max_age_hours) * 3600
    first = d.first_attempt_at or started
    next_at = started + retry_delay(d.attempts + 1)
    if next_at - first > max_age:
        expired = DeliveryResult(
            ok=False,
            permanent=True,
            code=result.code,
            message=f"gave up after {d.attempts + 1} attempts: {result.message}",
        )
        await store.write(
            lambda db: outbound.mark_failed(
                db, delivery_id, error=expired.message, code=result.code, reply=result.message
            )
        )
        raise DeliveryExpired(expired.message, expired)
    await store.write(
        lambda db: outbound.mark_retry(
            db,
            delivery_id,
            error=result.message,
            code=result.code,
            reply=result.message,
            next_attempt_at=next_at,
        )
    )
    raise Deferred(f"delivery {delivery_id}: temporary failure: {result.message}", until=next_at)


async def queue_reply(
    store: Store,
    mail: ComposedMail,
    *,
    source_key: str,
    conversation_id: int,
    author: str = "",
    sender_email: str = "",
    auto: bool = False,
    meta: dict | None = None,
) -> tuple[int, bool]:
    """Store a composed reply as a delivery row (raw bytes included) before any attempt.

    Returns (delivery id, created); the same source_key again returns the first row and
    stores nothing, so the caller may compose again harmlessly but only the first is sent.
    """
    return await store.write(
        lambda db: outbound.create_delivery(
            db,
            source_key=source_key,
            conversation_id=conversation_id,
            message_id=mail.message_id,
            raw=mail.raw,
            mail_from=mail.mail_from,
            rcpts=mail.rcpts,
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            author=author,
            sender_email=sender_email,
            in_reply_to=mail.in_reply_to,
            references=mail.references,
            auto=auto,
            meta=meta,
        )
    )
