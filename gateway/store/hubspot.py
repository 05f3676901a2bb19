"""Store verbs for the HubSpot handoff: the per-step record and the published messages."""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from gateway.errors import NotFound
from gateway.models import JobKind
from gateway.store import jobs as jobq
from gateway.store.db import now_iso

_STEP_COLUMNS = {
    "contact_id",
    "thread_id",
    "ticket_id",
    "ticket_attempted",
    "thread_linked",
    "note_id",
    "note_attempted",
    "comment_id",
    "comment_attempted",
    "state",
    "last_error",
}


def request_handoff(db: Database, conversation_id: int, *, reason: str, trigger: str) -> bool:
    """Ask for a handoff (once per conversation); returns False when one exists already."""
    new = ensure_handoff(db, conversation_id, reason=reason, trigger=trigger)
    jobq.enqueue(
        db,
        JobKind.HANDOFF,
        {"conversation_id": conversation_id, "reason": reason, "trigger": trigger},
        dedupe_key=f"handoff:{conversation_id}",
    )
    return new


def follow_up_mail(
    db: Database, conversation_id: int, message_row_id: int, *, bounce: bool
) -> None:
    """After a customer mail is recorded: publish it when its conversation was handed off
    already, and report it when it is a bounce of one of our replies. Both enqueues are
    idempotent (dedupe keys), so a crash before the job finished makes no second job."""
    if db.execute("SELECT 1 FROM handoffs WHERE conversation_id = ?", [conversation_id]).fetchone():
        jobq.enqueue(
            db,
            JobKind.PUBLISH,
            {"conversation_id": conversation_id},
            dedupe_key=f"publish:{message_row_id}",
        )
    if bounce:
        raw_id = db.execute(
            "SELECT raw_id FROM messages WHERE id = ?", [message_row_id]
        ).fetchone()[0]
        jobq.enqueue(db, JobKind.BOUNCE, {"raw_id": raw_id}, dedupe_key=f"bounce:{raw_id}")


def ensure_handoff(db: Database, conversation_id: int, *, reason: str, trigger: str) -> bool:
    """The handoff's record of steps; a handoff job enqueued by anyone creates it on first run."""
    if not db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone():
        raise NotFound(
            f"session {conversation_id}: no such session (see `mail-gateway sessions list`)"
        )
    ts = now_iso()
    cur = db.execute(
        "INSERT OR IGNORE INTO handoffs (conversation_id, state, trigger, reason, requested_at, "
        "updated_at) VALUES (?, 'pending', ?, ?, ?, ?)",
        [conversation_id, trigger, reason, ts, ts],
    )
    return cur.rowcount == 1


def get_handoff(db: Database, conversation_id: int) -> dict[str, Any] | None:
    cur = db.execute("SELECT * FROM handoffs WHERE conversation_id = ?", [conversation_id])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([c[0] for c in cur.description], row, strict=True))


def record_step(db: Database, conversation_id: int, **values: Any) -> None:
    unknown = set(values) - _STEP_COLUMNS
    if unknown:
        raise ValueError(f"unknown handoff columns {unknown}")
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(
        f"UPDATE handoffs SET {sets}, updated_at = ? WHERE conversation_id = ?",
        [*values.values(), now_iso(), conversation_id],
    )


def finish_handoff(db: Database, conversation_id: int) -> None:
    record_step(db, conversation_id, state="done", last_error=None)
    db.execute(
        "UPDATE conversations SET status = 'handed_off', updated_at = ? WHERE id = ?",
        [now_iso(), conversation_id],
    )


def conversation_for_handoff(db: Database, conversation_id: int) -> dict[str, Any]:
    """The conversation and its messages as the handoff needs them (oldest first)."""
    cur = db.execute("SELECT * FROM conversations WHERE id = ?", [conversation_id])
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"session {conversation_id}: no such session")
    conv = dict(zip([c[0] for c in cur.description], row, strict=True))
    cur = db.execute(
        "SELECT m.id, m.direction, m.message_id, m.subject, m.sender_email, m.sender_name, "
        "m.recipients, m.created_at, m.text, m.new_text, m.annotations, m.author, "
        "m.attachments, m.raw_id, "
        "h.hubspot_message_id, h.thread_id AS hubspot_thread_id, h.left_out "
        "FROM messages m LEFT JOIN hubspot_messages h "
        "ON h.message_row_id = m.id WHERE m.conversation_id = ? ORDER BY m.id",
        [conversation_id],
    )
    cols = [c[0] for c in cur.description]
    msgs = []
    for r in cur.fetchall():
        m = dict(zip(cols, r, strict=True))
        m["annotations"] = json.loads(m["annotations"] or "[]")
        m["recipients"] = json.loads(m["recipients"] or "{}")
        m["attachments"] = json.loads(m["attachments"] or "[]")
        m["left_out"] = json.loads(m["left_out"] or "[]")
        msgs.append(m)
    conv["messages"] = msgs
    return conv


def record_published(
    db: Database,
    *,
    message_row_id: int,
    conversation_id: int,
    hubspot_message_id: str,
    thread_id: str,
    left_out: list[dict[str, Any]] | None = None,
) -> None:
    """The message row is in HubSpot's thread as `hubspot_message_id`: never published again.

    Also called for a rep's reply once it was mailed (its messages row is the mail we sent),
    so a later handoff step never republishes it. `left_out`: files the publish went without.
    """
    db.execute(
        "INSERT OR IGNORE INTO hubspot_messages (message_row_id, conversation_id, "
        "hubspot_message_id, thread_id, published_at, left_out) VALUES (?, ?, ?, ?, ?, ?)",
        [
            message_row_id,
            conversation_id,
            hubspot_message_id,
            thread_id,
            now_iso(),
            json.dumps(left_out) if left_out else None,
        ],
    )


def is_our_hubspot_message(db: Database, hubspot_message_id: str) -> bool:
    """A message the gateway itself published: never delivered back to the customer.

    A rep's reply we mailed is recorded too (record_published) but is not "ours": its job
    may still have to tell HubSpot SENT after a crash (its delivery is keyed hubspot:<id>).
    """
    return bool(
        db.execute(
            "SELECT 1 FROM hubspot_messages WHERE hubspot_message_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries WHERE source_key = ?)",
            [hubspot_message_id, f"hubspot:{hubspot_message_id}"],
        ).fetchone()
    )


def handoff_state_of_thread(db: Database, thread_id: str) -> str | None:
    """The state of the handoff that owns HubSpot thread `thread_id` (pending | done | dead),
    None when no handoff knows the thread (yet)."""
    row = db.execute(
        "SELECT h.state FROM handoffs h WHERE h.thread_id = ? UNION ALL "
        "SELECT h.state FROM hubspot_messages m JOIN handoffs h "
        "ON h.conversation_id = m.conversation_id WHERE m.thread_id = ? LIMIT 1",
        [thread_id, thread_id],
    ).fetchone()
    return str(row[0]) if row else None


def handoff_job_dead(db: Database, conversation_id: int) -> bool:
    return bool(
        db.execute(
            "SELECT 1 FROM jobs WHERE dedupe_key = ? AND state = 'dead'",
            [f"handoff:{conversation_id}"],
        ).fetchone()
    )


# A handoff as operators see it (`status`, `sessions show`, /metrics): its recorded state,
# unless its job says more: 'failed' once the job is dead (a person must `retry` it),
# 'retrying' while the job waits after an error; the error is the job's last one. A handoff
# is never shown as "pending" while its job is dead.
_HANDOFF_VIEW = (
    "SELECT h.conversation_id AS conversation_id, "
    "CASE WHEN h.state = 'done' THEN 'done' WHEN j.state = 'dead' THEN 'failed' "
    "WHEN COALESCE(j.last_error, '') != '' THEN 'retrying' ELSE h.state END AS state, "
    "CASE WHEN h.state = 'done' THEN h.last_error "
    "ELSE COALESCE(NULLIF(j.last_error, ''), h.last_error) END AS error, "
    "h.updated_at AS at "
    "FROM handoffs h LEFT JOIN jobs j ON j.dedupe_key = 'handoff:' || h.conversation_id"
)


def handoff_states(db: Database) -> dict[str, int]:
    """Handoffs by state as operators see them: done, pending, retrying, failed -> count."""
    return dict(
        db.execute(f"SELECT state, COUNT(*) FROM ({_HANDOFF_VIEW}) GROUP BY state").fetchall()
    )


def handoff_outcome(db: Database, conversation_id: int) -> tuple[str, str | None] | None:
    """(state as operators see it, last error) of one conversation's handoff, or None."""
    row = db.execute(
        f"SELECT state, error FROM ({_HANDOFF_VIEW}) WHERE conversation_id = ?",
        [conversation_id],
    ).fetchone()
    return (row[0], row[1]) if row else None


def failed_handoffs(db: Database, limit: int = 5) -> list[dict[str, Any]]:
    """The newest failed handoffs: [{session, error, at}], at most `limit`."""
    rows = db.execute(
        f"SELECT conversation_id, error, at FROM ({_HANDOFF_VIEW}) WHERE state = 'failed' "
        "ORDER BY at DESC, conversation_id DESC LIMIT ?",
        [limit],
    )
    return [{"session": c, "error": e, "at": a} for c, e, a in rows.fetchall()]
