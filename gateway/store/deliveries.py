"""Store verbs for outgoing mail: one `deliveries` row per reply, keyed by `source_key`.

The state machine, whole, lives here; the send_reply job drives it and the relay only sends:

    queue_delivery  -> queued            (raw bytes stored before the first attempt)
    begin_attempt   queued|sending -> sending   (attempts + 1; the retry window starts)
    record_sent     sending -> sent      (and the message in its conversation, one commit)
    record_failure  sending -> queued    (temporary: 4xx, no connection; next_attempt_at)
                    sending -> failed    (permanent: 5xx; or temporary for too long)
    mark_bounced    sent -> bounced      (a DSN for our Message-ID came back later)

Exactly once, as far as SMTP allows: one row per source_key (a webhook delivered twice, a
poll that sees the message again, never composes twice), and every attempt sends the bytes
stored on the row, so a retry carries the same Message-ID. A row already sent, failed or
bounced is never sent again. The one window left: a crash after the relay's 250 to DATA and
before `record_sent` commits leaves the row 'sending', and the next attempt sends the same
bytes again (the customer may see one message twice, never two different replies); closing
it would take a two-phase commit with the relay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from gateway.errors import NotFound
from gateway.mail.compose import ComposedMail, Conversation
from gateway.store.db import inserted_id, now_iso
from gateway.store.hubspot import record_published
from gateway.store.mail import record_outgoing

# seconds before attempt n+1 after n temporary failures; the last repeats until the window ends
RETRY_SCHEDULE = (60, 300, 900, 1800, 3600, 7200, 14400)
FINAL_STATES = frozenset({"sent", "failed", "bounced"})  # nothing is sent for these again


@dataclass(frozen=True)
class Delivery:
    id: int
    source_key: str
    conversation_id: int
    state: str  # queued | sending | sent | failed | bounced
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
    first_attempt_at: float | None  # unix time
    next_attempt_at: float | None  # unix time
    sent_at: str | None


def retry_delay(failures: int) -> float:
    """Seconds to wait after `failures` temporary failures (1 min, growing to every 4 h)."""
    return float(RETRY_SCHEDULE[min(max(failures, 1), len(RETRY_SCHEDULE)) - 1])


def _row(db: Database, where: str, args: list[Any]) -> Delivery | None:
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


def _existing(db: Database, delivery_id: int) -> Delivery:
    d = get_delivery(db, delivery_id)
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    return d


def get_by_source_key(db: Database, source_key: str) -> Delivery | None:
    return _row(db, "source_key = ?", [source_key])


def thread_context(db: Database, conversation_id: int) -> Conversation:
    """What a reply needs of its conversation, its parent above all.

    The parent is the customer's last mail in the conversation (a rep's second reply in a
    row answers the customer again, it is not a reply to our first; an outside sender's mail
    is never the parent, store/mail.py). Following RFC 5322
    §3.6.4, the reply's In-Reply-To is the parent's Message-ID and its References are the
    parent's References, or, when it has none, its In-Reply-To if that holds exactly one id,
    followed by the parent's Message-ID (compose.thread_ids appends that, drops invalid ids
    and caps the chain). Mails of the conversation that are not the parent's ancestors (our
    earlier replies it does not cite, mails threaded by token) are not listed: they are not
    in the reply's line of descent. NotFound when the conversation does not exist.
    """
    conv = db.execute(
        "SELECT token, mailbox, subject, customer_email, customer_name FROM conversations "
        "WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if conv is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    parent = db.execute(
        "SELECT message_id, in_reply_to, references_ FROM messages "
        "WHERE conversation_id = ? AND direction = 'in' "
        "AND COALESCE(annotations, '') NOT LIKE '%\"outside_sender\"%' ORDER BY id DESC LIMIT 1",
        [conversation_id],
    ).fetchone()
    ancestors: list[str] = []
    if parent is not None:
        ancestors = list(json.loads(parent[2] or "[]"))
        in_reply_to = list(json.loads(parent[1] or "[]"))
        if not ancestors and len(in_reply_to) == 1:
            ancestors = in_reply_to
    return Conversation(
        token=conv[0],
        mailbox=conv[1],
        subject=conv[2] or "",
        customer_email=conv[3] or "",
        customer_name=conv[4] or "",
        last_message_id=parent[0] if parent else "",
        references=tuple(ancestors),
    )


def queue_delivery(
    db: Database,
    mail: ComposedMail,
    *,
    source_key: str,
    conversation_id: int,
    author: str = "",
    sender_email: str = "",
    auto: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[int, bool]:
    """Keep a composed reply, raw bytes included, before any attempt: (delivery id, created).

    The same source_key again returns the first row unchanged and stores nothing, so a caller
    may compose again harmlessly but only the first mail is ever sent.
    """
    found = db.execute("SELECT id FROM deliveries WHERE source_key = ?", [source_key]).fetchone()
    if found:
        return int(found[0]), False
    ts = now_iso()
    cur = db.execute(
        "INSERT INTO deliveries (source_key, conversation_id, state, auto, message_id, "
        "mail_from, rcpts, subject, text, html, author, sender_email, in_reply_to, "
        "references_, raw, attempts, last_error, smtp_reply, meta, created_at, updated_at) "
        "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?, ?, ?)",
        [
            source_key,
            conversation_id,
            int(auto),
            mail.message_id,
            mail.mail_from,
            json.dumps(list(mail.rcpts)),
            mail.subject,
            mail.text,
            mail.html,
            author,
            sender_email,
            json.dumps(list(mail.in_reply_to)),
            json.dumps(list(mail.references)),
            mail.raw,
            json.dumps(meta or {}),
            ts,
            ts,
        ],
    )
    return inserted_id(cur), True


def begin_attempt(db: Database, delivery_id: int, *, now: float) -> Delivery:
    """Start an attempt: the row as it is afterwards; the caller sends only if 'sending'.

    A row in a final state (sent, failed, bounced) is returned unchanged. Otherwise the
    attempt is counted and the retry window starts at the first one (unix time `now`). A
    row already 'sending' is a previous attempt cut short by a crash: it is sent again.
    NotFound when there is no such delivery.
    """
    db.execute(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
        "first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ? "
        "WHERE id = ? AND state IN ('queued', 'sending')",
        [now, now_iso(now), delivery_id],
    )
    return _existing(db, delivery_id)


def record_sent(db: Database, delivery_id: int, *, code: int | None, reply: str) -> int:
    """Record the relay's acceptance and the message in its conversation, in one transaction.

    "Sent" and the threading index (record_outgoing) become durable together, before anyone
    tells HubSpot. Returns the messages row id. Idempotent: a row already sent keeps its
    first record.
    """
    d = _existing(db, delivery_id)
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
    hubspot_id = str(d.meta.get("hubspot_message_id") or "")
    if hubspot_id:  # a rep's reply: it is in HubSpot's thread already, never publish it
        record_published(
            db,
            message_row_id=msg_row,
            conversation_id=d.conversation_id,
            hubspot_message_id=hubspot_id,
            thread_id=str(d.meta.get("thread_id") or ""),
        )
    return msg_row


def record_failure(
    db: Database,
    delivery_id: int,
    *,
    permanent: bool,
    code: int | None,
    reply: str,
    now: float,
    max_age_seconds: float,
) -> Delivery:
    """An attempt that the relay did not accept; returns the row afterwards.

    permanent (a 5xx): 'failed' with the server's reply. Temporary: back to 'queued' until
    `now + retry_delay(attempts)`; once that would pass `max_age_seconds` after the first
    attempt, 'failed' with "gave up after N attempts: <reply>" in last_error. A row already
    sent is left alone.
    """
    d = _existing(db, delivery_id)
    next_at = now + retry_delay(d.attempts)
    first = d.first_attempt_at or now
    if not permanent and next_at - first <= max_age_seconds:
        db.execute(
            "UPDATE deliveries SET state = 'queued', last_error = ?, smtp_code = ?, "
            "smtp_reply = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state != 'sent'",
            [reply[:2000], code, reply[:2000], next_at, now_iso(), delivery_id],
        )
    else:
        error = reply if permanent else f"gave up after {d.attempts} attempts: {reply}"
        db.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?, smtp_code = ?, "
            "smtp_reply = ?, next_attempt_at = NULL, updated_at = ? "
            "WHERE id = ? AND state != 'sent'",
            [error[:2000], code, reply[:2000], now_iso(), delivery_id],
        )
    return _existing(db, delivery_id)


def mark_bounced(db: Database, message_ids: Sequence[str], reply: str) -> list[dict[str, Any]]:
    """A bounce came back for mails of ours with these Message-IDs: record it (one write for
    all of them); return the deliveries it hit, each {"id", "conversation_id", "meta"}. A
    delivery already bounced is not returned again."""
    hit: list[dict[str, Any]] = []
    for message_id in message_ids:
        rows = db.execute(
            "UPDATE deliveries SET state = 'bounced', smtp_reply = ?, updated_at = ? "
            "WHERE message_id = ? AND state != 'bounced' RETURNING id, conversation_id, meta",
            [reply[:2000], now_iso(), message_id],
        ).fetchall()
        hit += [
            {"id": r[0], "conversation_id": r[1], "meta": json.loads(r[2] or "{}")} for r in rows
        ]
    return hit
