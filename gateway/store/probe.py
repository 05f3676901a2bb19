"""The verbs of `mail-gateway receive-test`: find the probe mail it sent, then remove every
trace of it (its raw mail, its conversation and everything recorded about them).

Removal is generic over the schema: every table with a `conversation_id`, `raw_id` or
`message_row_id` column loses the rows that point at the probe, and the jobs whose payload
names it; foreign keys are checked at COMMIT (PRAGMA defer_foreign_keys), so the order of the
deletes does not matter and a table added by a later migration is covered without an edit.
"""

from __future__ import annotations

from typing import Any

from gateway.store.db import Database

_KEYS = ("conversation_id", "raw_id", "message_row_id")


def find_received(db: Database, message_id: str) -> dict[str, Any] | None:
    """{raw_id, state, conversation_id, busy} of the raw mail with this Message-ID (without
    brackets); conversation_id is None until processing recorded it; busy counts the jobs
    about it still queued or running (its process_mail until its hooks are done). None: not
    received."""
    row = db.execute(
        "SELECT r.id, r.state, m.conversation_id FROM raw_mails r "
        "LEFT JOIN messages m ON m.raw_id = r.id WHERE r.message_id = ? ORDER BY r.id LIMIT 1",
        [message_id],
    ).fetchone()
    if row is None:
        return None
    busy = db.execute(
        "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') AND "
        "(json_extract(payload, '$.raw_id') = ? OR json_extract(payload, '$.conversation_id') = ?)",
        [row[0], row[2]],
    ).fetchone()[0]
    return {"raw_id": row[0], "state": row[1], "conversation_id": row[2], "busy": busy}


def remove_probe(db: Database, raw_id: int, conversation_id: int | None) -> dict[str, int]:
    """Delete the raw mail `raw_id`, the conversation (with its messages, participants,
    Message-ID index rows, jobs, ...) and return {table: rows deleted}. Run it inside
    write_transaction(): either all of it goes or nothing does."""
    db.execute("PRAGMA defer_foreign_keys = ON")
    messages = [
        r[0]
        for r in db.execute("SELECT id FROM messages WHERE conversation_id = ?", [conversation_id])
    ]
    wanted: dict[str, list[Any]] = {
        "conversation_id": [conversation_id] if conversation_id is not None else [],
        "raw_id": [raw_id],
        "message_row_id": messages,
    }
    deleted: dict[str, int] = {}
    for table in db.table_names():
        columns = {c.name for c in db[table].columns}
        for key in _KEYS:
            ids = wanted[key]
            if key in columns and ids:
                marks = ", ".join("?" * len(ids))
                n = db.execute(f"DELETE FROM [{table}] WHERE [{key}] IN ({marks})", ids).rowcount
                deleted[table] = deleted.get(table, 0) + n
    payload_keys = " OR ".join(
        f"json_extract(payload, '$.{key}') IN ({', '.join('?' * len(ids))})"
        for key, ids in wanted.items()
        if ids
    )
    args = [i for ids in wanted.values() for i in ids]
    n = db.execute(f"DELETE FROM jobs WHERE {payload_keys}", args).rowcount
    deleted["jobs"] = deleted.get("jobs", 0) + n
    if conversation_id is not None:
        n = db.execute("DELETE FROM conversations WHERE id = ?", [conversation_id]).rowcount
        deleted["conversations"] = n
    deleted["raw_mails"] = db.execute("DELETE FROM raw_mails WHERE id = ?", [raw_id]).rowcount
    return {t: n for t, n in deleted.items() if n}
