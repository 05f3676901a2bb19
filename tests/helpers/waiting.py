"""Waiting for a condition instead of sleeping a fixed time.

A fixed sleep before "nothing happened" proves nothing on a loaded machine and wastes time on an
idle one. Tests wait for what they mean: a predicate (`wait_for`, `wait_until`) or a worker with
nothing left to do (`wait_idle`, `wait_idle_db`): no job due now and none running. A job that is
queued for later (a retry backoff, the assistant's debounce) does not count: it is not due.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.02

# Jobs a worker would run now: queued and due, or claimed (running, lease not yet expired or
# expired and about to be reclaimed). Same terms as gateway.store.jobs.claim.
BUSY_JOBS_SQL = (
    "SELECT COUNT(*) FROM jobs WHERE state = 'running' OR (state = 'queued' AND run_after <= ?)"
)


async def wait_for(predicate: Callable[[], object], within: float = 10.0, what: str = "") -> None:
    """Poll an async-or-sync predicate every 20 ms until it is truthy.

    Raises AssertionError naming `what` (or the predicate) after `within` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(POLL_SECONDS)


def wait_until(predicate: Callable[[], object], within: float = 10.0, what: str = "") -> Any:
    """The blocking twin of wait_for, for threads and subprocess tests; returns the value."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(POLL_SECONDS)


def busy_jobs(db: sqlite3.Connection) -> int:
    """How many jobs are due now or running (0: the worker has nothing to do)."""
    return int(db.execute(BUSY_JOBS_SQL, [time.time()]).fetchone()[0])


async def wait_idle(gw: Any, within: float = 15.0) -> None:
    """Until the running gateway's worker has no job due and none running (reads gw.store)."""

    async def idle() -> bool:
        return await gw.store.read(busy_jobs) == 0

    await wait_for(idle, within, "an idle worker")


def wait_idle_db(db_path: Path, within: float = 30.0) -> None:
    """The same for a daemon in another process: reads its SQLite file read-only."""

    def idle() -> bool:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        try:
            return busy_jobs(conn) == 0
        finally:
            conn.close()

    wait_until(idle, within, f"an idle worker on {db_path}")
