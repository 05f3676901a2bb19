"""Forwarding confirmations (SMTP or IMAP): keep provider, code and link for `status`.

Why: before Gmail, Microsoft 365 and others forward a support mailbox to the gateway, they send
a confirmation mail to it. The classifier marks it (never answered, never handed off); the admin
still has to click the link or type the code, so `mail-gateway status` shows them. This hook
runs after the process job recorded the mail (MailProcessor.after_record), for any intake: it
is a follow-up of the process_mail job, not a job kind of its own.
"""

from __future__ import annotations

from gateway.models import FORWARDING_CONFIRMATION, Address, ParsedMail
from gateway.pipeline.classify import forwarding_confirmation_details
from gateway.store.db import Store
from gateway.store.imap_state import forwarding_source, record_forwarding_confirmation
from gateway.store.mail import Recorded


def forwarding_recorder(store: Store):
    """An after_record hook that stores the details of each forwarding confirmation."""

    async def hook(recorded: Recorded, annotations: frozenset[str]) -> None:
        if FORWARDING_CONFIRMATION not in annotations:
            return
        row = await store.read(lambda db: forwarding_source(db, recorded.message_row_id))
        if row is None:
            return
        sender, name = row["sender_email"], row["sender_name"]
        mail = ParsedMail(
            message_id="",
            in_reply_to=[],
            references=[],
            subject=row["subject"] or "",
            sender=Address(sender, name or "") if sender else None,
            reply_to=None,
            to=[],
            cc=[],
            delivered_to=[],
            date="",
            text=row["text"] or "",
            html="",
            new_text="",
            attachments=[],
            headers={},
        )
        details = forwarding_confirmation_details(mail) or {"provider": "unknown"}
        await store.write(
            lambda db: record_forwarding_confirmation(
                db, row["raw_id"], row["mailbox"], details, row["received_at"]
            )
        )

    return hook
