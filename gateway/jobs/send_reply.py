"""Sending a reply into a conversation: compose from the store, keep it, deliver it once.

Shared by reps' replies (hubspot/replies.py) and the assistant's (the send_reply job). The
composed mail is stored with its source key before the first attempt, so the same HubSpot
message or assistant decision can never produce two different mails.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from gateway.config import Settings
from gateway.errors import NotFound
from gateway.mail.compose import Conversation, OutgoingAttachment, compose_reply
from gateway.mail.dkim import dkim_sign
from gateway.models import Job
from gateway.relay.sender import DeliveryResult, RelaySender, deliver_once, queue_reply
from gateway.store.db import Store
from gateway.store.outbound import get_by_source_key

log = logging.getLogger(__name__)


def _conversation(db, conversation_id: int) -> tuple[Conversation, dict[str, Any]]:
    row = db.execute(
        "SELECT token, mailbox, subject, customer_email, customer_name FROM conversations "
        "WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"session {conversation_id}: no such session")
    ids = [
        r[0]
        for r in db.execute(
            "SELECT message_id FROM messages WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
    ]
    last_in = db.execute(
        "SELECT message_id FROM messages WHERE conversation_id = ? AND direction = 'in' "
        "ORDER BY id DESC LIMIT 1",
        [conversation_id],
    ).fetchone()
    conv = Conversation(
        token=row[0],
        mailbox=row[1],
        subject=row[2] or "",
        customer_email=row[3] or "",
        customer_name=row[4] or "",
        last_message_id=last_in[0] if last_in else "",
        references=ids,
    )
    return conv, {"mailbox": row[1]}


@dataclass
class Outbound:
    store: Store
    sender: RelaySender
    settings: Settings
    secret: bytes

    async def reply(
        self,
        *,
        conversation_id: int,
        source_key: str,
        body: str,
        body_format: str,
        author_name: str,
        author_email: str,
        auto: bool = False,
        attachments: tuple[OutgoingAttachment, ...] = (),
        meta: dict | None = None,
    ) -> tuple[int, DeliveryResult]:
        """Compose (once per source_key), store, and make one delivery attempt."""
        existing = await self.store.read(lambda db: get_by_source_key(db, source_key))
        if existing is None:
            conv, extra = await self.store.read(lambda db: _conversation(db, conversation_id))
            mail = compose_reply(
                conv,
                body=body,
                body_format=body_format,
                author_name=author_name,
                author_email=author_email or extra["mailbox"],
                signatures=self.settings.signatures,
                secret=self.secret,
                hostname=self.settings.gateway.hostname,
                from_name=self.settings.relay.from_name,
                attachments=attachments,
                auto=auto,
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
            delivery_id, _created = await queue_reply(
                self.store,
                mail,
                source_key=source_key,
                conversation_id=conversation_id,
                author=author_name,
                sender_email=author_email,
                auto=auto,
                meta=meta,
            )
        else:
            delivery_id = existing.id
        result = await deliver_once(self.store, self.sender, delivery_id)
        return delivery_id, result

    async def send_reply_job(self, job: Job) -> None:
        """The assistant's reply: Markdown, automatic (Auto-Submitted), from the mailbox."""
        p = job.payload
        _id, result = await self.reply(
            conversation_id=int(p["conversation_id"]),
            source_key=job.dedupe_key or f"job:{job.id}",
            body=p["markdown"],
            body_format="markdown",
            author_name=p.get("author") or "Assistant",
            author_email="",
            auto=bool(p.get("auto", True)),
        )
        if not result.ok:
            log.warning(
                "assistant reply to conversation %s failed for good: %s",
                p["conversation_id"],
                result.message,
            )
