"""Store verbs for reps' replies announced by HubSpot: recorded once, then one job each."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlite_utils import Database

from gateway.models import JobKind
from gateway.store import jobs as jobq
from gateway.store.db import now_iso


def record_announced(
    db: Database,
    *,
    hubspot_message_id: str,
    thread_id: str,
    source: str,
    message: dict[str, Any] | None,
) -> bool:
    """Keep the announcement and queue its job; False when this message was seen before."""
    cur = db.execute(
        "INSERT OR IGNORE INTO hubspot_events (hubspot_message_id, thread_id, source, "
        "received_at, payload, outcome) VALUES (?, ?, ?, ?, ?, 'pending')",
        [
            hubspot_message_id,
            thread_id,
            source,
            now_iso(),
            json.dumps(message) if message is not None else None,
        ],
    )
    if cur.rowcount == 0:
        return False
    jobq.enqueue(
        db,
        JobKind.REP_REPLY,
        {"hubspot_message_id": hubspot_message_id},
        dedupe_key=f"rep-reply:{hubspot_message_id}",
    )
    return True


def set_outcome(db: Database, hubspot_message_id: str, outcome: str) -> None:
    db.execute(
        "UPDATE hubspot_events SET outcome = ? WHERE hubspot_message_id = ?",
        [outcome[:500], hubspot_message_id],
    )


def get_announced(db: Database, hubspot_message_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT thread_id, source, payload, outcome FROM hubspot_events "
        "WHERE hubspot_message_id = ?",
        [hubspot_message_id],
    ).fetchone()
    if row is None:
        return None
    return {
        "thread_id": row[0],
        "source": row[1],
        "message": json.loads(row[2]) if row[2] else None,
        "outcome": row[3],
    }


def conversation_for_thread(db: Database, thread_id: str) -> int | None:
    row = db.execute(
        "SELECT conversation_id FROM handoffs WHERE thread_id = ?", [thread_id]
    ).fetchone()
    if row is None:
        # a handoff still under way: the thread exists (its first message is published and
        # recorded) before the handoff records it; a rep may already have answered there
        row = db.execute(
            "SELECT conversation_id FROM hubspot_messages WHERE thread_id = ? LIMIT 1",
            [thread_id],
        ).fetchone()
    return row[0] if row else None


def handoff_in_progress(db: Database) -> bool:
    """A handoff that moved within the last hour (a dead one does not hold replies back)."""
    since = now_iso(time.time() - 3600)
    return bool(
        db.execute(
            "SELECT 1 FROM handoffs WHERE state = 'pending' AND updated_at >= ? LIMIT 1", [since]
        ).fetchone()
    )


def threads_to_poll(db: Database) -> list[str]:
    """The HubSpot threads whose replies polling looks for: every finished handoff of a
    conversation that is not closed."""
    return [
        str(r[0])
        for r in db.execute(
            "SELECT h.thread_id FROM handoffs h JOIN conversations c "
            "ON c.id = h.conversation_id WHERE h.state = 'done' AND c.status != 'closed'"
        )
    ]
