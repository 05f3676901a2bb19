"""The durable job queue: every step after intake is a row here.

A job is claimed with a lease; a worker that dies leaves the lease to expire and the job is
claimed again, so a crash between steps resumes where it stopped. Jobs are idempotent by
contract (running one twice changes nothing the second time), and `dedupe_key` makes the
enqueue idempotent too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from sqlite_utils import Database

from gateway.errors import NotFound
from gateway.models import Job
from gateway.store.db import inserted_id, now_iso


def enqueue(
    db: Database,
    kind: str,
    payload: dict,
    *,
    dedupe_key: str | None = None,
    run_after: float = 0.0,
) -> int:
    """Add a job (or find the one with the same dedupe_key); return its id."""
    if dedupe_key is not None:
        row = db.execute("SELECT id FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone()
        if row:
            return row[0]
    ts = now_iso()
    cur = db.execute(
        "INSERT INTO jobs (kind, payload, dedupe_key, state, attempts, run_after, lease_until, "
        "created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, 0, ?, ?)",
        [kind, json.dumps(payload), dedupe_key, run_after, ts, ts],
    )
    return inserted_id(cur)


def _not_kinds(exclude_kinds: Sequence[str]) -> tuple[str, list[str]]:
    """The SQL term (and its parameters) that leaves out the given job kinds."""
    if not exclude_kinds:
        return "", []
    marks = ", ".join("?" for _ in exclude_kinds)
    return f" AND kind NOT IN ({marks})", [str(k) for k in exclude_kinds]


def claim(
    db: Database,
    *,
    lease_seconds: float,
    now: float | None = None,
    exclude_kinds: Sequence[str] = (),
) -> Job | None:
    """Take the next due job: queued and due, or running with an expired lease.

    `exclude_kinds` are kinds the worker will not start now (at their concurrency cap); their
    jobs stay queued and the next job of another kind is taken instead.
    The `state IN (...)` term lets SQLite use the partial index idx_jobs_due; without it the
    OR makes every claim scan the whole table (every finished job ever).
    """
    now = time.time() if now is None else now
    not_kinds, kinds = _not_kinds(exclude_kinds)
    row = db.execute(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, "
        "updated_at = ? WHERE id = (SELECT id FROM jobs WHERE state IN ('queued', 'running') "
        "AND ((state = 'queued' AND run_after <= ?) OR (state = 'running' AND lease_until < ?))"
        f"{not_kinds} ORDER BY run_after, id LIMIT 1) "
        "RETURNING id, kind, payload, attempts, dedupe_key",
        [now + lease_seconds, now_iso(now), now, now, *kinds],
    ).fetchone()
    if row is None:
        return None
    return Job(
        id=row[0], kind=row[1], payload=json.loads(row[2]), attempts=row[3], dedupe_key=row[4]
    )


def claim_many(
    db: Database, free: Mapping[str, int], *, lease_seconds: float, now: float | None = None
) -> list[Job]:
    """Take up to `free[kind]` due jobs of each kind (queued and due, or running with an
    expired lease), oldest due first, in one transaction: one commit starts a batch.

    Each kind is its own statement on idx_jobs_kind_due, so a kind with nothing due costs one
    index probe however long another kind's backlog is.
    """
    now = time.time() if now is None else now
    jobs: list[Job] = []
    for kind, n in free.items():
        if n <= 0:
            continue
        rows = db.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, "
            "updated_at = ? WHERE id IN (SELECT id FROM jobs WHERE kind = ? "
            "AND state IN ('queued', 'running') AND ((state = 'queued' AND run_after <= ?) "
            "OR (state = 'running' AND lease_until < ?)) "
            "ORDER BY run_after, id LIMIT ?) "
            "RETURNING id, kind, payload, attempts, dedupe_key, run_after",
            [now + lease_seconds, now_iso(now), str(kind), now, now, n],
        ).fetchall()
        rows.sort(key=lambda r: (r[5], r[0]))
        jobs += [
            Job(id=r[0], kind=r[1], payload=json.loads(r[2]), attempts=r[3], dedupe_key=r[4])
            for r in rows
        ]
    return jobs


def next_due(
    db: Database, *, exclude_kinds: Sequence[str] = (), kinds: Sequence[str] | None = None
) -> float | None:
    """When the next job becomes due (or its lease expires): lets an idle worker sleep.

    Only `kinds` when given (those with a free slot), and never `exclude_kinds` (as claim()
    leaves them out); the worker wakes itself when a slot frees.
    """
    not_kinds, params = _not_kinds(exclude_kinds)
    only = ""
    if kinds is not None:
        if not kinds:
            return None
        only = f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params += [str(k) for k in kinds]
    row = db.execute(
        "SELECT MIN(CASE state WHEN 'queued' THEN run_after ELSE lease_until END) FROM jobs "
        f"WHERE state IN ('queued', 'running'){not_kinds}{only}",
        params,
    ).fetchone()
    return row[0] if row and row[0] is not None else None


def finish(db: Database, job_id: int) -> None:
    db.execute(
        "UPDATE jobs SET state = 'done', lease_until = 0, last_error = NULL, updated_at = ? "
        "WHERE id = ?",
        [now_iso(), job_id],
    )


def reschedule(
    db: Database, job_id: int, *, error: str, run_after: float, count_attempt: bool = True
) -> None:
    """Queue the job again at run_after; a deferral (not a failure) gives its attempt back."""
    db.execute(
        "UPDATE jobs SET state = 'queued', run_after = ?, lease_until = 0, last_error = ?, "
        "attempts = attempts - ?, updated_at = ? WHERE id = ?",
        [run_after, error[:2000], 0 if count_attempt else 1, now_iso(), job_id],
    )


def bury(db: Database, job_id: int, *, error: str) -> None:
    """Dead-letter a job: kept with its error until a person runs `mail-gateway retry`."""
    db.execute(
        "UPDATE jobs SET state = 'dead', lease_until = 0, last_error = ?, updated_at = ? "
        "WHERE id = ?",
        [error[:2000], now_iso(), job_id],
    )


def revive(db: Database, job_ids: list[int] | None = None) -> int:
    """Queue dead jobs again (all, or the given ids) with a fresh attempt count."""
    ts = now_iso()
    if job_ids is None:
        cur = db.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = ? "
            "WHERE state = 'dead'",
            [ts],
        )
        return cur.rowcount
    count = 0
    for job_id in job_ids:
        cur = db.execute(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = ? "
            "WHERE id = ? AND state = 'dead'",
            [ts, job_id],
        )
        if cur.rowcount == 0:
            raise NotFound(f"job {job_id}: no dead job with that id (see `mail-gateway status`)")
        count += 1
    return count


def count_for_conversation(db: Database, kind: str, conversation_id: int) -> int:
    """Jobs of this kind ever enqueued for the conversation (payload's conversation_id), in
    any state: the handoff numbers the tickets of one conversation by it."""
    return db.execute(
        "SELECT COUNT(*) FROM jobs WHERE kind = ? "
        "AND json_extract(payload, '$.conversation_id') = ?",
        [kind, conversation_id],
    ).fetchone()[0]


def depth_by_kind(db: Database) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for kind, state, n in db.execute(
        "SELECT kind, state, COUNT(*) FROM jobs WHERE state != 'done' GROUP BY kind, state"
    ):
        out.setdefault(kind, {})[state] = n
    return out


def recover(db: Database) -> int:
    """At daemon start: jobs left 'running' belong to a dead process; make them due now.

    Only one daemon runs on a store (service.py holds a lock), so nobody else owns them, and
    waiting for their leases to expire would only delay the mail.
    """
    cur = db.execute(
        "UPDATE jobs SET state = 'queued', run_after = 0, lease_until = 0, updated_at = ? "
        "WHERE state = 'running'",
        [now_iso()],
    )
    return cur.rowcount
