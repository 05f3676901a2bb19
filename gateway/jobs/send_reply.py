"""Outgoing mail, the one path: compose a reply once, keep it, deliver it once.

Shared by reps' replies (jobs/rep_reply.py) and the assistant's (the send_reply job):
1. `Outbound.queue` reads the reply's thread context (store/deliveries.thread_context),
   composes it (mail/compose.py), DKIM-signs it when [relay] says so, and stores it with its
   source key before the first attempt, so the same HubSpot message or assistant decision
   can never produce two different mails;
2. `deliver_once` drives one attempt through the store's state machine
   (store/deliveries.py) and the relay (relay/sender.py), which only sends.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Settings
from gateway.errors import Deferred, PermanentError
from gateway.mail.compose import OutgoingAttachment, compose_reply
from gateway.mail.dkim import dkim_sign
from gateway.models import Job
from gateway.relay.sender import DeliveryResult, RelaySender
from gateway.store import deliveries
from gateway.store.db import Store

log = logging.getLogger(__name__)


class DeliveryExpired(PermanentError):
    """Temporary failures for longer than [relay] max_age_hours: the row is now 'failed'."""

    def __init__(self, message: str, result: DeliveryResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Reply:
    """One reply to the customer, as asked for by a rep's HubSpot message or the assistant."""

    conversation_id: int
    source_key: str  # what asked for it ("hubspot:<id>", a job's dedupe key): one mail per key
    body: str
    body_format: str  # markdown (the assistant) | html (HubSpot rich text) | text
    author_name: str  # recorded with the message; the From is the support mailbox
    author_email: str = ""  # chooses the signature; "" = the conversation's mailbox
    text: str = ""  # html only: the text part as the author wrote it ("" = from the HTML)
    auto: bool = False  # the gateway's own mail: Auto-Submitted (RFC 3834)
    attachments: tuple[OutgoingAttachment, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)  # kept on the row, e.g. the HubSpot ids


async def deliver_once(
    store: Store,
    sender: RelaySender,
    delivery_id: int,
    *,
    max_age_hours: float | None = None,
    now: float | None = None,
) -> DeliveryResult:
    """One delivery attempt for a stored deliveries row.

    - already sent: ok with the relay's stored reply, sends nothing;
    - already failed or bounced: that failure (permanent), sends nothing;
    - otherwise sends the stored raw bytes, and:
      accepted -> 'sent' plus the message in its conversation (one transaction), returns ok;
      permanent (5xx) -> 'failed' with the server's reply, returns the result (no raise);
      temporary -> 'queued' with next_attempt_at, raises Deferred (a TransientError) until
      then; once that would pass max_age_hours (default [relay]) after the first attempt:
      'failed' and DeliveryExpired (a PermanentError) carrying the result.
    `now` (unix time) stands in for the clock in tests. NotFound for an unknown id.
    Crash window: see store/deliveries.py; a retry re-sends the same bytes and Message-ID.
    """
    started = time.time() if now is None else now
    d = await store.write(lambda db: deliveries.begin_attempt(db, delivery_id, now=started))
    if d.state == "sent":
        return DeliveryResult(ok=True, code=d.smtp_code, message=d.smtp_reply)
    if d.state in deliveries.FINAL_STATES:
        return DeliveryResult(ok=False, permanent=True, code=d.smtp_code, message=d.smtp_reply)
    result = await sender.send(d)
    if result.ok:
        await store.write(
            lambda db: deliveries.record_sent(
                db, delivery_id, code=result.code, reply=result.message
            )
        )
        log.info("delivery %s sent: %s", delivery_id, result.message)
        return result
    max_age = (sender.settings.max_age_hours if max_age_hours is None else max_age_hours) * 3600
    after = await store.write(
        lambda db: deliveries.record_failure(
            db,
            delivery_id,
            permanent=result.permanent,
            code=result.code,
            reply=result.message,
            now=started,
            max_age_seconds=max_age,
        )
    )
    if result.permanent:
        log.warning("delivery %s failed for good: %s", delivery_id, result.message)
        return result
    if after.state == "failed":
        expired = DeliveryResult(
            ok=False, permanent=True, code=result.code, message=after.last_error
        )
        log.warning("delivery %s: %s", delivery_id, after.last_error)
        raise DeliveryExpired(expired.message, expired)
    raise Deferred(
        f"delivery {delivery_id}: temporary failure: {result.message}",
        until=after.next_attempt_at or started,
    )


@dataclass
class Outbound:
    store: Store
    sender: RelaySender
    settings: Settings
    secret: bytes

    async def queue(self, reply: Reply) -> int:
        """Compose the reply (once per source_key), sign it, and store it; the delivery id.

        A source_key seen before returns its delivery without composing again.
        Raises NotFound for an unknown conversation, ComposeError for unusable addresses.
        """
        existing = await self.store.read(
            lambda db: deliveries.get_by_source_key(db, reply.source_key)
        )
        if existing is not None:
            return existing.id
        conv = await self.store.read(
            lambda db: deliveries.thread_context(db, reply.conversation_id)
        )
        mail = compose_reply(
            conv,
            body=reply.body,
            body_format=reply.body_format,
            text=reply.text,
            author_name=reply.author_name,
            author_email=reply.author_email or conv.mailbox,
            signatures=self.settings.signatures,
            secret=self.secret,
            hostname=self.settings.gateway.hostname,
            from_name=self.settings.relay.from_name,
            attachments=reply.attachments,
            auto=reply.auto,
        )
        relay = self.settings.relay
        if relay.dkim_selector:
            signed = dkim_sign(
                mail.raw,
                selector=relay.dkim_selector,
                domain=relay.dkim_domain,
                key_pem=str(relay.dkim_key),
            )
            mail = dataclasses.replace(mail, raw=signed)
        delivery_id, _created = await self.store.write(
            lambda db: deliveries.queue_delivery(
                db,
                mail,
                source_key=reply.source_key,
                conversation_id=reply.conversation_id,
                author=reply.author_name,
                sender_email=reply.author_email,
                auto=reply.auto,
                meta=reply.meta,
            )
        )
        return delivery_id

    async def reply(self, reply: Reply) -> tuple[int, DeliveryResult]:
        """Queue the reply (see `queue`) and make one delivery attempt (see `deliver_once`)."""
        delivery_id = await self.queue(reply)
        return delivery_id, await deliver_once(self.store, self.sender, delivery_id)

    async def send_reply_job(self, job: Job) -> None:
        """The assistant's reply: Markdown, automatic (Auto-Submitted), from the mailbox."""
        p = job.payload
        _id, result = await self.reply(
            Reply(
                conversation_id=int(p["conversation_id"]),
                source_key=job.dedupe_key or f"job:{job.id}",
                body=p["markdown"],
                body_format="markdown",
                author_name=p.get("author") or "Assistant",
                auto=bool(p.get("auto", True)),
            )
        )
        if not result.ok:
            log.warning(
                "assistant reply to conversation %s failed for good: %s",
                p["conversation_id"],
                result.message,
            )
