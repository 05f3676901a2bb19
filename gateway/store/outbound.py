"""Store verbs for outgoing deliveries: one `deliveries` row per reply, keyed by `source_key`.

States: queued -> sending -> sent | failed (a temporary failure goes back to queued with
`next_attempt_at`). The composed raw bytes are stored when the row is created, before the
first attempt, so every retry sends the very same message with the same Message-ID.
`mark_sent` also records the outgoing message in its conversation (record_outgoing) in the
same transaction: "sent" and the threading index become durable together, before anyone
tells HubSpot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from gateway.errors import NotFound
from gateway.store.db import now_iso
from gateway.store.mail import record_outgoing


@dataclass(frozen=True)
class Delivery:
    id: int
    source_key: str
    conversation_id: int
    state: str
    auto: bool
    message_id: str
    mail_from: str
    rcpts: list[str]
    subject: str
    text: str
    html: str
    author: str
    sender_email: str
    in_reply_to: list[str]
    references: list[str]
    raw: bytes
    attempts: int
    last_error: str
    smtp_code: int | None
    smtp_reply: str
    meta: dict[str, Any]
    message_row_id: int | None
    created_at: str
    updated_at: str
    first_attempt_at: float | None
    next_attempt_at: float | None
    sent_at: str | None


def _row(db: Database, where: str, args: list) -> Delivery | None:
    cur = db.execute(f"SELECT * FROM deliveries WHERE {where}", args)
    row = cur.fetchone()
    if row is None:
        return None
    d = dict(zip([c[0] for c in cur.description], row, strict=True))
    for key in ("rcpts", "in_reply_to", "references_"):
        d[key] = json.loads(d[key] or "[]")
    d["references"] = d.pop("references_")
    d["meta"] = json.loads(d["meta"] or "{}")
    d["auto"] = bool(d["auto"])
    return Delivery(**d)


def get_delivery(db: Database, delivery_id: int) -> Delivery | None:
    return _row(db, "id = ?", [delivery_id])


def get_by_source_key(db: Database, source_key: str) -> Delivery | None:
    return _row(db, "source_key = ?", [source_key])


def create_delivery(
    db: Database,
    *,
    source_key: str,
    conversation_id: int,
    message_id: str,
    raw: bytes,
    mail_from: str,
    rcpts: Sequence[str],
    subject: str,
    text: str,
    html: str,
    author: str = "",
    sender_email: str = "",
    in_reply_to: Sequence[str] = (),
    references: Sequence[str] = (),
    auto: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[int, bool]:
    """(delivery id, created). The same source_key again returns the existing row unchanged:
    a webhook delivered twice, a poll that sees the message again, never composes twice."""
    found = db.execute("SELECT id FROM deliveries WHERE source_key = ?", [source_key]).fetchone()
    if found:
        return found[0], False
    ts = now_iso()
    row_id = db.execute(
        "INSERT INTO deliveries (source_key, conversation_id, state, auto, message_id, "
        "mail_from, rcpts, subject, text, html, author, sender_email, in_reply_to, "
        "references_, raw, attempts, last_error, smtp_reply, meta, created_at, updated_at) "
        "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?, ?, ?)",
        [
            source_key,
            conversation_id,
            int(auto),
            message_id,
            mail_from,
            json.dumps(list(rcpts)),
            subject,
            text,
            html,
            author,
            sender_email,
            json.dumps(list(in_reply_to)),
            json.dumps(list(references)),
            raw,
            json.dumps(meta or {}),
            ts,
            ts,
        ],
    ).lastrowid
    return row_id, True


def mark_sending(db: Database, delivery_id: int, *, now: float) -> None:
    """An attempt starts: count it; the retry window starts at the first one."""
    db.execute(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
        "first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ? "
        "WHERE id = ? AND state IN ('queued', 'sending')",
        [now, now_iso(now), delivery_id],
    )


def mark_sent(db: Database, delivery_id: int, *, code: int | None, reply: str) -> int:
    """Record the relay's acceptance and the message in its conversation, in one transaction.

    Returns the messages row id. Idempotent: a row already sent keeps its first record.
    """
    d = get_delivery(db, delivery_id)
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if d.state == "sent" and d.message_row_id:
        return d.message_row_id
    msg_row = record_outgoing(
        db,
        conversation_id=d.conversation_id,
        message_id=d.message_id,
        subject=d.subject,
        text=d.text,
        html=d.html,
        author=d.author,
        sender_email=d.sender_email,
        to=d.rcpts,
        in_reply_to=d.in_reply_to,
        references=d.references,
    )
    db.execute(
        "UPDATE deliveries SET state = 'sent', smtp_code = ?, smtp_reply = ?, sent_at = ?, "
        "updated_at = ?, message_row_id = ?, next_attempt_at = NULL WHERE id = ?",
        [code, reply[:2000], now_iso(), now_iso(), msg_row, delivery_id],
    )
    return msg_row


def mark_retry(
    db: Database,
    delivery_id: int,
    *,
    error: str,
    code: int | None,
    reply: str,
    next_attempt_at: float,
) -> None:
    """A temporary failure: back to queued until next_attempt_at."""
    db.execute(
        "UPDATE deliveries SET state = 'queued', last_error = ?, smtp_code = ?, "
        "smtp_reply = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state != 'sent'",
        [error[:2000], code, reply[:2000], next_attempt_at, now_iso(), delivery_id],
    )


def mark_failed(
    db: Database, delivery_id: int, *, error: str, code: int | None, reply: str
) -> None:
    """For good: a 5xx, or temporary failures for longer than the retry window."""
    db.execute(
        "UPDATE deliveries SET state = 'failed', last_error = ?, smtp_code = ?, "
        "smtp_reply = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ? AND state != 'sent'",
        [error[:2000], code, reply[:2000], now_iso(), delivery_id],
    )


def list_deliveries(
    db: Database, *, state: str | None = None, conversation_id: int | None = None, limit: int = 100
) -> list[Delivery]:
    where, args = ["1 = 1"], []
    if state:
        where.append("state = ?")
        args.append(state)
    if conversation_id is not None:
        where.append("conversation_id = ?")
        args.append(conversation_id)
    ids = db.execute(
        f"SELECT id FROM deliveries WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [d for (i,) in ids if (d := get_delivery(db, i)) is not None]


def thread_context(db: Database, conversation_id: int) -> dict[str, Any]:
    """What a reply needs of its conversation, as the keyword arguments of
    delivery.compose.Conversation: the customer's last Message-ID (In-Reply-To) and the
    thread's chain (the last customer mail's References, then every Message-ID of the
    conversation, ours included, oldest first)."""
    conv = db.execute(
        "SELECT token, mailbox, subject, customer_email, customer_name FROM conversations "
        "WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if conv is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    rows = db.execute(
        "SELECT direction, message_id, references_ FROM messages WHERE conversation_id = ? "
        "ORDER BY id",
        [conversation_id],
    ).fetchall()
    last_in = next((r for r in reversed(rows) if r[0] == "in"), None)
    chain: list[str] = list(json.loads(last_in[2] or "[]")) if last_in else []
    for _direction, mid, _refs in rows:
        if mid and mid not in chain:
            chain.append(mid)
    return {
        "token": conv[0],
        "mailbox": conv[1],
        "subject": conv[2] or "",
        "customer_email": conv[3] or "",
        "customer_name": conv[4] or "",
        "last_message_id": last_in[1] if last_in else "",
        "references": tuple(chain),
    }


def mark_bounced(db: Database, message_id: str, reply: str) -> list[dict[str, Any]]:
    """A bounce came back for one of our mails: record it; return the deliveries it hit."""
    rows = db.execute(
        "UPDATE deliveries SET state = 'bounced', smtp_reply = ?, updated_at = ? "
        "WHERE message_id = ? AND state != 'bounced' RETURNING id, conversation_id, meta",
        [reply[:2000], now_iso(), message_id],
    ).fetchall()
    return [{"id": r[0], "conversation_id": r[1], "meta": json.loads(r[2] or "{}")} for r in rows]
