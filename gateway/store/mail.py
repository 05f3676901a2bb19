"""Store verbs that place a processed mail in its conversation.

`record_mail` runs inside the single writer's transaction, so finding the conversation and
writing the message cannot race with another mail of the same thread: two replies processed
at once still land in one conversation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlite_utils import Database

from gateway.addresses import address_key
from gateway.mail.ids import new_token, normalise_subject
from gateway.models import Lookup, ParsedMail
from gateway.store.db import inserted_id, now_iso


@dataclass(frozen=True)
class Recorded:
    conversation_id: int
    message_row_id: int
    new_conversation: bool
    matched_by: str  # the threading step that matched, or "new"
    already_done: bool = False


def find_conversation(
    db: Database, mailbox: str, lookups: list[Lookup], sender: str
) -> tuple[int, str] | None:
    """Run the lookups in order; the first hit wins. Every lookup is scoped to the mailbox."""
    for lk in lookups:
        if lk.kind == "token":
            row = db.execute(
                "SELECT id FROM conversations WHERE token = ? AND mailbox = ?", [lk.value, mailbox]
            ).fetchone()
        else:
            row = db.execute(
                "SELECT conversation_id FROM message_ids WHERE mailbox = ? AND message_id = ?",
                [mailbox, lk.value],
            ).fetchone()
        if row is None:
            continue
        if (
            lk.needs_participant
            and not db.execute(
                "SELECT 1 FROM participants WHERE conversation_id = ? AND email = ?",
                [row[0], address_key(sender)],
            ).fetchone()
        ):
            continue  # a quoted ticket number from a stranger does not open the door
        return row[0], lk.step
    return None


def record_mail(
    db: Database,
    *,
    raw_id: int,
    mailbox: str,
    mail: ParsedMail,
    annotations: frozenset[str],
    lookups: list[Lookup],
    support_addresses: frozenset[str] = frozenset(),
) -> Recorded:
    """Write the message and its conversation (new or found) in the caller's transaction.

    Idempotent: a raw mail that already has its message returns that message unchanged.
    """
    done = db.execute(
        "SELECT id, conversation_id FROM messages WHERE raw_id = ?", [raw_id]
    ).fetchone()
    if done:
        return Recorded(done[1], done[0], False, "already recorded", already_done=True)

    sender = mail.sender.email if mail.sender else ""
    ts = now_iso()
    found = find_conversation(db, mailbox, lookups, sender)
    if found:
        conv_id, matched_by = found
        new = False
    else:
        new, matched_by = True, "new"
        cur = db.execute(
            "INSERT INTO conversations (token, mailbox, subject, customer_email, customer_name, "
            "status, created_at, updated_at, last_message_at, message_count) "
            "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, 0)",
            [
                new_token(),
                mailbox,
                normalise_subject(mail.subject) or "(no subject)",
                sender,
                mail.sender.name if mail.sender else "",
                ts,
                ts,
                ts,
            ],
        )
        conv_id = inserted_id(cur)

    cur = db.execute(
        "INSERT INTO messages (conversation_id, raw_id, direction, message_id, in_reply_to, "
        "references_, subject, sender_email, sender_name, recipients, date, created_at, text, "
        "html, new_text, annotations, attachments, author, defects) "
        "VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            conv_id,
            raw_id,
            mail.message_id,
            json.dumps(mail.in_reply_to),
            json.dumps(mail.references),
            mail.subject,
            sender,
            mail.sender.name if mail.sender else "",
            json.dumps({"to": [a.email for a in mail.to], "cc": [a.email for a in mail.cc]}),
            mail.date,
            ts,
            mail.text,
            mail.html,
            mail.new_text,
            json.dumps(sorted(annotations)),
            json.dumps([_attachment_meta(a) for a in mail.attachments]),
            mail.sender.name if mail.sender else "",
            json.dumps(mail.defects),
        ],
    )
    msg_id = inserted_id(cur)
    db.execute(
        "INSERT OR IGNORE INTO message_ids (mailbox, message_id, conversation_id, direction) "
        "VALUES (?, ?, ?, 'in')",
        [mailbox, mail.message_id, conv_id],
    )
    if sender:
        db.execute(
            "INSERT OR IGNORE INTO participants (conversation_id, email, role) VALUES (?, ?, ?)",
            [conv_id, address_key(sender), "customer"],
        )
    for addr in mail.cc:
        key = address_key(addr.email)  # participants hold keys: case never decides a match
        if key not in support_addresses and key != address_key(mailbox):
            db.execute(
                "INSERT OR IGNORE INTO participants (conversation_id, email, role) "
                "VALUES (?, ?, 'cc')",
                [conv_id, key],
            )
    db.execute(
        "UPDATE conversations SET updated_at = ?, last_message_at = ?, "
        "message_count = message_count + 1 WHERE id = ?",
        [ts, ts, conv_id],
    )
    db.execute("UPDATE raw_mails SET state = 'processed' WHERE id = ?", [raw_id])
    return Recorded(conv_id, msg_id, new, matched_by)


def _attachment_meta(a) -> dict:
    meta = asdict(a)
    meta.pop("data", None)
    return meta


def quarantine(db: Database, raw_id: int, error: str, detail: str) -> int:
    """Set a mail aside with its error; the mails behind it keep flowing."""
    db.execute("UPDATE raw_mails SET state = 'quarantined' WHERE id = ?", [raw_id])
    cur = db.execute(
        "INSERT INTO quarantine (raw_id, error, detail, created_at, state) "
        "VALUES (?, ?, ?, ?, 'held')",
        [raw_id, error[:2000], detail[:20000], now_iso()],
    )
    return inserted_id(cur)


def record_outgoing(
    db: Database,
    *,
    conversation_id: int,
    message_id: str,
    subject: str,
    text: str,
    html: str = "",
    author: str = "",
    sender_email: str = "",
    to: list[str] | None = None,
    in_reply_to: list[str] | None = None,
    references: list[str] | None = None,
) -> int:
    """Keep a mail we send, and index its Message-ID so the customer's answer threads back.

    (django-helpdesk indexed only inbound Message-IDs, so every reply to its own mail opened
    a new ticket.)
    """
    mailbox = db.execute(
        "SELECT mailbox FROM conversations WHERE id = ?", [conversation_id]
    ).fetchone()[0]
    ts = now_iso()
    cur = db.execute(
        "INSERT INTO messages (conversation_id, direction, message_id, in_reply_to, references_, "
        "subject, sender_email, sender_name, recipients, date, created_at, text, html, new_text, "
        "annotations, attachments, author, defects) "
        "VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '[]', ?, '[]')",
        [
            conversation_id,
            message_id,
            json.dumps(in_reply_to or []),
            json.dumps(references or []),
            subject,
            sender_email or mailbox,
            author,
            json.dumps({"to": to or [], "cc": []}),
            ts,
            ts,
            text,
            html,
            text,
            author,
        ],
    )
    row_id = inserted_id(cur)
    db.execute(
        "INSERT OR IGNORE INTO message_ids (mailbox, message_id, conversation_id, direction) "
        "VALUES (?, ?, ?, 'out')",
        [mailbox, message_id, conversation_id],
    )
    db.execute(
        "UPDATE conversations SET updated_at = ?, message_count = message_count + 1 WHERE id = ?",
        [ts, conversation_id],
    )
    return row_id
