"""Read verbs for operators (status, sessions, quarantine) and small key/value state.

They return plain dicts with stable snake_case keys: the CLI prints them as tables or `--json`.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time

from sqlite_utils import Database

from gateway.errors import NotFound
from gateway.models import JobKind
from gateway.store import hubspot as hubspot_store
from gateway.store import imap_state
from gateway.store import jobs as jobq
from gateway.store.db import now_iso


def status(db: Database) -> dict:
    today = time.strftime("%Y-%m-%dT00:00:00", time.gmtime())
    one = lambda sql, args=(): db.execute(sql, list(args)).fetchone()[0]  # noqa: E731
    last = db.execute(
        "SELECT received_at, mailbox, envelope_from FROM raw_mails ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return {
        "mails_accepted_today": one(
            "SELECT COUNT(*) FROM raw_mails WHERE received_at >= ?", [today]
        ),
        "mails_total": one("SELECT COUNT(*) FROM raw_mails"),
        "mails_pending": one("SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'"),
        "conversations": one("SELECT COUNT(*) FROM conversations"),
        "conversations_open": one("SELECT COUNT(*) FROM conversations WHERE status = 'open'"),
        "queue": jobq.depth_by_kind(db),
        "dead_letters": one("SELECT COUNT(*) FROM jobs WHERE state = 'dead'"),
        "last_errors": [
            {"job_id": r[0], "kind": r[1], "state": r[2], "error": r[3], "at": r[4]}
            for r in db.execute(
                "SELECT id, kind, state, last_error, updated_at FROM jobs "
                "WHERE last_error IS NOT NULL AND last_error != '' AND state != 'done' "
                "ORDER BY updated_at DESC, id DESC LIMIT 5"
            )
        ],
        "last_delivery": _last_delivery(db),
        "hubspot_budget": _runtime(db, "runtime.hubspot"),
        "handoffs": hubspot_store.handoff_states(db),
        "handoffs_failed": hubspot_store.failed_handoffs(db),
        "quarantined": one("SELECT COUNT(*) FROM quarantine WHERE state = 'held'"),
        "last_mail": (
            {"received_at": last[0], "mailbox": last[1], "envelope_from": last[2]} if last else None
        ),
        "imap": imap_state.imap_status(db),
        "forwarding_confirmations": imap_state.forwarding_confirmations(db),
    }


def _last_delivery(db: Database) -> dict | None:
    row = db.execute(
        "SELECT id, state, sent_at, updated_at, smtp_code, last_error FROM deliveries "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "state", "sent_at", "updated_at", "smtp_code", "last_error")
    return dict(zip(keys, row, strict=True))


def _runtime(db: Database, key: str) -> dict | None:
    """A snapshot the running daemon stores every few seconds (None when it never ran)."""
    raw = kv_get(db, key)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


# The columns `sessions list` and `sessions show` report, in their order.
_LIST_COLUMNS = (
    "id", "token", "mailbox", "subject", "customer_email", "status", "created_at",
    "last_message_at", "message_count",
)  # fmt: skip
_SHOW_COLUMNS = (
    "id", "token", "mailbox", "subject", "customer_email", "customer_name", "status",
    "created_at", "updated_at", "last_message_at", "message_count",
)  # fmt: skip


def list_sessions(db: Database, *, limit: int = 50, status: str | None = None) -> list[dict]:
    where, args = "", []
    if status:
        where, args = "WHERE status = ?", [status]
    rows = db.execute(
        f"SELECT {', '.join(_LIST_COLUMNS)} FROM conversations {where} "
        "ORDER BY last_message_at DESC, id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [dict(zip(_LIST_COLUMNS, r, strict=True)) for r in rows]


def show_session(db: Database, conversation_id: int) -> dict:
    conv = db.execute(
        f"SELECT {', '.join(_SHOW_COLUMNS)} FROM conversations WHERE id = ?", [conversation_id]
    ).fetchone()
    if conv is None:
        raise NotFound(
            f"session {conversation_id}: no such session (see `mail-gateway sessions list`)"
        )
    out = dict(zip(_SHOW_COLUMNS, conv, strict=True))
    handoff = db.execute(
        "SELECT state, trigger, reason, contact_id, ticket_id, thread_id, note_id, comment_id, "
        "last_error, updated_at FROM handoffs WHERE conversation_id = ?",
        [conversation_id],
    ).fetchone()
    out["hubspot"] = (
        dict(
            zip(
                (
                    "state",
                    "trigger",
                    "reason",
                    "contact_id",
                    "ticket_id",
                    "thread_id",
                    "note_id",
                    "comment_id",
                    "last_error",
                    "updated_at",
                ),
                handoff,
                strict=True,
            )
        )
        if handoff
        else None
    )
    if out["hubspot"]:  # failed or retrying, with the job's error: never a silent "pending"
        shown = hubspot_store.handoff_outcome(db, conversation_id)
        if shown:
            out["hubspot"]["state"], out["hubspot"]["last_error"] = shown
    out["participants"] = [
        {"email": e, "role": r}
        for e, r in db.execute(
            "SELECT email, role FROM participants WHERE conversation_id = ? ORDER BY email",
            [conversation_id],
        )
    ]
    out["messages"] = [
        {
            "id": r[0],
            "time": r[1],
            "direction": r[2],
            "sender": r[3],
            "sender_name": r[4],
            "subject": r[5],
            "message_id": r[6],
            "new_text": r[7],
            "annotations": json.loads(r[8] or "[]"),
            "attachments": [
                {k: a[k] for k in ("filename", "content_type", "size", "content_id", "inline")}
                for a in json.loads(r[9] or "[]")
            ],
            "author": r[10],
        }
        for r in db.execute(
            "SELECT id, created_at, direction, sender_email, sender_name, subject, message_id, "
            "new_text, annotations, attachments, author FROM messages "
            "WHERE conversation_id = ? ORDER BY id",
            [conversation_id],
        )
    ]
    return out


def dead_letters(db: Database) -> list[dict]:
    return [
        {
            "id": r[0],
            "kind": r[1],
            "payload": json.loads(r[2]),
            "attempts": r[3],
            "last_error": r[4],
            "updated_at": r[5],
        }
        for r in db.execute(
            "SELECT id, kind, payload, attempts, last_error, updated_at FROM jobs "
            "WHERE state = 'dead' ORDER BY id"
        )
    ]


def list_quarantine(db: Database, *, include_retried: bool = False) -> list[dict]:
    where = "" if include_retried else "WHERE q.state = 'held'"
    return [
        {
            "id": r[0],
            "raw_id": r[1],
            "error": r[2],
            "created_at": r[3],
            "state": r[4],
            "envelope_from": r[5],
            "mailbox": r[6],
            "message_id": r[7],
        }
        for r in db.execute(
            "SELECT q.id, q.raw_id, q.error, q.created_at, q.state, m.envelope_from, m.mailbox, "
            f"m.message_id FROM quarantine q JOIN raw_mails m ON m.id = q.raw_id {where} "
            "ORDER BY q.id"
        )
    ]


def retry_quarantined(db: Database, quarantine_id: int) -> int:
    """Send a quarantined mail through processing again; returns the new job id."""
    row = db.execute(
        "SELECT raw_id, state FROM quarantine WHERE id = ?", [quarantine_id]
    ).fetchone()
    if row is None:
        raise NotFound(
            f"quarantine {quarantine_id}: no such entry (see `mail-gateway quarantine list`)"
        )
    raw_id, state = row
    if state != "held":
        raise NotFound(f"quarantine {quarantine_id}: already retried")
    db.execute("UPDATE quarantine SET state = 'retried' WHERE id = ?", [quarantine_id])
    db.execute("UPDATE raw_mails SET state = 'pending' WHERE id = ?", [raw_id])
    return jobq.enqueue(
        db,
        JobKind.PROCESS_MAIL,
        {"raw_id": raw_id},
        dedupe_key=f"process:{raw_id}:retry:{quarantine_id}",
    )


def kv_get(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM kv WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


OAUTH_STATE_KEY = "hubspot.oauth_state"
OAUTH_STATE_SECONDS = 600  # a `hubspot connect` must be approved within 10 minutes


def put_oauth_state(db: Database, state: str, *, now: float) -> None:
    """Remember the state of the `hubspot connect` now under way (one at a time: a new connect
    replaces an unused older state), valid for OAUTH_STATE_SECONDS."""
    value = json.dumps({"state": state, "expires_at": now + OAUTH_STATE_SECONDS})
    kv_set(db, OAUTH_STATE_KEY, value)


def take_oauth_state(db: Database, state: str, *, now: float) -> str | None:
    """Use up the OAuth `state` of a callback (RFC 6749 §10.12: it binds the callback to the
    `connect` that asked for it). Returns None when it matches and is still valid — and deletes
    it, so a second callback with the same state is refused — or the reason it is refused."""
    raw = kv_get(db, OAUTH_STATE_KEY)
    try:
        expected = json.loads(raw) if raw else None
    except ValueError:
        expected = None
    if not isinstance(expected, dict) or not state:
        return "unknown OAuth state"
    if not hmac.compare_digest(str(expected.get("state", "")), state):
        return "unknown OAuth state"
    db.execute("DELETE FROM kv WHERE key = ?", [OAUTH_STATE_KEY])
    if now > float(expected.get("expires_at", 0)):
        return "expired OAuth state (older than 10 minutes)"
    return None


def kv_set(db: Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [key, value, now_iso()],
    )


def ensure_secret(db: Database) -> str:
    """The generated HMAC key for installations that configured none (kept in the store)."""
    value = kv_get(db, "secret")
    if value is None:
        value = secrets.token_hex(32)
        kv_set(db, "secret", value)
    return value
