"""Forwarding confirmations (SMTP or IMAP): keep provider, code and link for `status`.

Why: before Gmail, Microsoft 365 and others forward a support mailbox to the gateway, they send
a confirmation mail to it. The classifier marks it (never answered, never handed off); the admin
still has to click the link or type the code, so `mail-gateway status` shows them. This hook
runs after the process job recorded the mail (MailProcessor.after_record), for any intake.
It lives next to IMAP intake because IMAP set-ups are where the forwarding set-up is mixed in.
"""

from __future__ import annotations

from gateway.models import FORWARDING_CONFIRMATION, Address, ParsedMail
from gateway.pipeline.classify import forwarding_confirmation_details
from gateway.store.db import Store
from gateway.store.imap_state import record_forwarding_confirmation
from gateway.store.mail import Recorded


def forwarding_recorder(store: Store):
    """An after_record hook that stores the details of each forwarding confirmation."""

    async def hook(recorded: Recorded, annotations: frozenset[str]) -> None:
        if FORWARDING_CONFIRMATION not in annotations:
            return
        row = await store.read(
            lambda db: db.execute(
                "SELECT m.raw_id, r.mailbox, r.received_at, m.subject, m.sender_email, "
                "m.sender_name, m.text FROM messages m JOIN raw_mails r ON r.id = m.raw_id "
                "WHERE m.id = ?",
                [recorded.message_row_id],
            ).fetchone()
        )
        if row is None:
            return
        raw_id, mailbox, received_at, subject, sender, name, text = row
        mail = ParsedMail(
            message_id="",
            in_reply_to=[],
            references=[],
            subject=subject or "",
            sender=Address(sender, name or "") if sender else None,
            reply_to=None,
            to=[],
            cc=[],
            delivered_to=[],
            date="",
            text=text or "",
            html="",
            new_text="",
            attachments=[],
            headers={},
        )
        details = forwarding_confirmation_details(mail) or {"provider": "unknown"}
        await store.write(
            lambda db: record_forwarding_confirmation(db, raw_id, mailbox, details, received_at)
        )

    return hook
