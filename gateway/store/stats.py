"""Read verbs for /metrics: what the store knows about the backlog, in one read per scrape.

The event counts (mails accepted, job run times, delivery attempts) are not here: they are
counted as they happen, in memory, by `gateway.metrics`. These are the states that survive a
restart and so can only be read from the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlite_utils import Database

from gateway.store import jobs as jobq
from gateway.store.hubspot import handoff_states


@dataclass(frozen=True)
class StoreCounts:
    """The store's backlog at one moment; all zero (empty) before the first read."""

    queue: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> state -> jobs not done
    dead_letters: int = 0  # jobs that failed for good (state 'dead')
    quarantined: int = 0  # mails whose processing failed, held for a retry (state 'held')
    deliveries: dict[str, int] = field(default_factory=dict)  # outgoing replies: state -> rows
    handoffs: dict[str, int] = field(default_factory=dict)  # state as operators see it -> rows


def store_counts(db: Database) -> StoreCounts:
    """Read the backlog: four small aggregate queries, run through `Store.read`."""
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return StoreCounts(
        queue=jobq.depth_by_kind(db),
        dead_letters=one("SELECT COUNT(*) FROM jobs WHERE state = 'dead'"),
        quarantined=one("SELECT COUNT(*) FROM quarantine WHERE state = 'held'"),
        deliveries=dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")),
        handoffs=handoff_states(db),
    )
