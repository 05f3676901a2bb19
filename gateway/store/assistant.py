"""Store verbs for the assistant: what it reads of a conversation, and the decisions it keeps.

A decision is kept once per (conversation, customer mail) by a unique index, so a job that runs
twice records and enqueues nothing the second time. The rows come back as plain dicts with the
JSON columns decoded; jobs/assist.py turns them into the pipeline's views.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlite_utils import Database

from gateway.store.db import now_iso


def conversation(db: Database, conversation_id: int) -> dict[str, Any] | None:
    """The conversation row as the assistant and the handoff's facts read it, or None.

    Keys: subject, status, customer_email, customer_name, escalated_at, escalation_reason,
    sentiment (float or None), sentiment_label, language, summary.
    """
    row = db.execute(
        "SELECT subject, status, customer_email, customer_name, escalated_at, "
        "escalation_reason, sentiment, sentiment_label, language, summary "
        "FROM conversations WHERE id = ?",
        [conversation_id],
    ).fetchone()
    if row is None:
        return None
    keys = (
        "subject",
        "status",
        "customer_email",
        "customer_name",
        "escalated_at",
        "escalation_reason",
        "sentiment",
        "sentiment_label",
        "language",
        "summary",
    )
    return dict(zip(keys, row, strict=True))


def messages(db: Database, conversation_id: int) -> list[dict[str, Any]]:
    """Every message of the conversation, oldest first.

    Keys: id, direction ("in" | "out"), subject, new_text, text, sender_email, sender_name,
    author, annotations (list of names), attachments (list of metadata dicts), sentiment,
    sentiment_label, language, created_at (ISO-8601 UTC).
    """
    out = []
    for r in db.execute(
        "SELECT id, direction, subject, new_text, text, sender_email, sender_name, author, "
        "annotations, attachments, sentiment, sentiment_label, language, created_at "
        "FROM messages WHERE conversation_id = ? ORDER BY id",
        [conversation_id],
    ):
        out.append(
            {
                "id": r[0],
                "direction": r[1],
                "subject": r[2],
                "new_text": r[3],
                "text": r[4],
                "sender_email": r[5],
                "sender_name": r[6],
                "author": r[7],
                "annotations": json.loads(r[8] or "[]"),
                "attachments": json.loads(r[9] or "[]"),
                "sentiment": r[10],
                "sentiment_label": r[11],
                "language": r[12],
                "created_at": r[13],
            }
        )
    return out


def decisions(db: Database, conversation_id: int) -> list[tuple[int, str, str]]:
    """The decisions on the conversation, oldest first: (message row id, action, source)."""
    return [
        (r[0], r[1], r[2])
        for r in db.execute(
            "SELECT message_row_id, action, source FROM assistant_decisions "
            "WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
    ]


def decisions_since(db: Database, sender: str, action: str, since: float) -> int:
    """How many decisions of this action went to this sender since `since` (Unix seconds):
    the count the reply rate limit compares. `sender` is an address_key (addresses.py),
    the form record_decision() keeps."""
    return db.execute(
        "SELECT COUNT(*) FROM assistant_decisions WHERE sender = ? AND action = ? "
        "AND created_ts >= ?",
        [sender, action, since],
    ).fetchone()[0]


def customer_text(db: Database, message_row_id: int) -> str | None:
    """The new part of a mail (its whole text when the new part is empty), None if no row."""
    row = db.execute(
        "SELECT COALESCE(NULLIF(TRIM(new_text), ''), text, '') FROM messages WHERE id = ?",
        [message_row_id],
    ).fetchone()
    return None if row is None else (row[0] or "")


def store_signals(
    db: Database,
    message_row_id: int,
    *,
    sentiment: float | None,
    sentiment_label: str,
    language: str,
) -> None:
    """Keep a mail's measured sentiment (-1..1) and language (ISO 639-1) on its row."""
    db.execute(
        "UPDATE messages SET sentiment = ?, sentiment_label = ?, language = ? WHERE id = ?",
        [sentiment, sentiment_label, language, message_row_id],
    )


def record_decision(
    db: Database,
    *,
    conversation_id: int,
    message_row_id: int,
    sender: str,
    action: str,
    reasons: list[str],
    confidence: float | None,
    source: str,
    markdown: str,
) -> bool:
    """Keep a decision once per (conversation, mail); False when it was kept already.

    `sender` is the customer's address_key, so the rate limit never splits on case."""
    cur = db.execute(
        "INSERT OR IGNORE INTO assistant_decisions (conversation_id, message_row_id, sender, "
        "action, reasons, confidence, source, markdown, created_at, created_ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            conversation_id,
            message_row_id,
            sender,
            action,
            json.dumps(reasons),
            confidence,
            source,
            markdown,
            now_iso(),
            time.time(),
        ],
    )
    return cur.rowcount > 0


def set_summary(db: Database, conversation_id: int, summary: str) -> None:
    db.execute("UPDATE conversations SET summary = ? WHERE id = ?", [summary, conversation_id])


def record_escalation(
    db: Database,
    conversation_id: int,
    *,
    reason: str,
    summary: str,
    sentiment: float | None,
    sentiment_label: str,
    language: str,
) -> None:
    """Keep why the conversation goes to a person, for the handoff's ticket and comment;
    `escalated_at` (now) also stops further automatic answers on it."""
    db.execute(
        "UPDATE conversations SET escalation_reason = ?, summary = ?, sentiment = ?, "
        "sentiment_label = ?, language = ?, escalated_at = ? WHERE id = ?",
        [reason, summary, sentiment, sentiment_label, language, now_iso(), conversation_id],
    )
