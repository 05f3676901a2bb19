"""The worker's slots and deferrals: each kind has its own slots, and a job whose external
budget is spent gives its slot back without using a try (issue 17 item 4)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

from gateway.config import WorkerSettings
from gateway.errors import DEFER_AFTER, BudgetSpent
from gateway.jobs.process_mail import InOrder, MailProcessor
from gateway.jobs.registry import JobSpec
from gateway.mail.normalise import intake_key
from gateway.models import IncomingMail, Job
from gateway.store import jobs as jobq
from gateway.store.intake import accept_raw
from gateway.worker import Worker

from helpers.waiting import wait_for


async def _enqueue(store, kind: str, n: int = 1) -> list[int]:
    return [await store.write(lambda db, i=i: jobq.enqueue(db, kind, {"i": i})) for i in range(n)]


def _recorder(into: list[int]) -> JobSpec:
    """A kind whose jobs only note their ids, in order."""

    async def handler(job: Job) -> None:
        into.append(job.id)

    return JobSpec(handler)


async def _rows(store, ids: list[int]) -> list[tuple]:
    marks = ",".join("?" for _ in ids)
    return await store.read(
        lambda db: db.execute(
            f"SELECT state, attempts, run_after, last_error FROM jobs WHERE id IN ({marks}) "
            "ORDER BY id",
            ids,
        ).fetchall()
    )


async def test_a_kind_holding_all_its_slots_never_holds_another_kinds(store):
    """One slot per kind: a stuck kind leaves the other kinds' slots alone."""
    release = asyncio.Event()
    done: list[int] = []

    async def stuck(job: Job) -> None:
        await release.wait()

    async def quick(job: Job) -> None:
        done.append(job.id)

    worker = Worker(
        store, {"stuck": JobSpec(stuck), "quick": JobSpec(quick)}, WorkerSettings(concurrency=1)
    )
    await _enqueue(store, "stuck", 2)  # first in the queue
    quick_ids = await _enqueue(store, "quick", 3)
    task = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: done == quick_ids, what="the quick jobs beside a stuck one")
        assert worker._running["stuck"] == 1  # its one slot, not more
    finally:
        release.set()
        worker.stop()
        await task


async def test_a_spent_budget_defers_without_a_try_and_pauses_only_its_kind(store):
    calls: list[int] = []
    seen_limit: list[float | None] = []
    until = time.time() + 3600

    async def needs_budget(job: Job) -> None:
        calls.append(job.id)
        seen_limit.append(DEFER_AFTER.get())
        raise BudgetSpent("rate limit: no room", until=until)

    done: list[int] = []
    worker = Worker(
        store,
        {"hubspot": JobSpec(needs_budget, max_tries=1), "other": _recorder(done)},
        WorkerSettings(concurrency=1),
    )
    waiting = await _enqueue(store, "hubspot", 3)
    others = await _enqueue(store, "other", 2)
    await worker.run(burst=True)
    # the first one found the budget spent: its kind is not claimed again before `until`
    assert calls == waiting[:1]
    assert seen_limit == [worker.defer_after]  # jobs may wait only briefly for a budget
    assert done == others
    rows = await _rows(store, waiting)
    state, attempts, run_after, error = rows[0]
    assert (state, attempts) == ("queued", 0)  # max_tries=1, yet not dead: no try was used
    assert abs(run_after - until) < 1 and "rate limit" in error
    assert [r[:2] for r in rows[1:]] == [("queued", 0)] * 2
    assert DEFER_AFTER.get() is None  # only inside a job


async def test_claim_many_takes_per_kind_counts_oldest_first(store):
    a = await _enqueue(store, "a", 3)
    b = await _enqueue(store, "b", 2)
    jobs = await store.write(lambda db: jobq.claim_many(db, {"a": 2, "b": 5}, lease_seconds=60))
    assert sorted(j.id for j in jobs) == a[:2] + b
    assert all(j.attempts == 1 for j in jobs)
    again = await store.write(lambda db: jobq.claim_many(db, {"a": 5, "b": 5}, lease_seconds=60))
    assert [j.id for j in again] == a[2:]
    assert await store.read(lambda db: jobq.next_due(db, kinds=["a"])) is not None  # leases
    assert await store.read(lambda db: jobq.next_due(db, kinds=[])) is None


async def test_in_order_lets_a_mail_record_only_after_the_ones_accepted_before_it():
    order = InOrder()
    for raw_id in (1, 2, 3):
        order.enter(raw_id)
    third = asyncio.create_task(order.turn(3))
    await order.turn(1)  # the oldest never waits
    order.leave(1)
    await asyncio.sleep(0)
    assert not third.done()  # 2 is still in flight
    order.leave(2)  # e.g. quarantined: it leaves without a record
    await asyncio.wait_for(third, 5)


async def test_a_burst_of_one_thread_processed_at_once_stays_one_conversation(store):
    """Twelve mails, each a reply to the one before, accepted together and processed by
    16 jobs at once over two parser processes: every reply finds its parent recorded."""
    processor = MailProcessor(store, b"secret", "gw.example.com", frozenset({"support@x.test"}))
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        processor.executor = pool
        for i in range(12):
            parent = f"<t{i - 1}@customer.test>" if i else ""
            raw = (
                f"From: Ann <ann@customer.test>\r\nTo: support@x.test\r\nSubject: Re: Order\r\n"
                f"Message-ID: <t{i}@customer.test>\r\nIn-Reply-To: {parent}\r\n"
                f"References: {parent}\r\n\r\nMail {i} of the thread.\r\n"
            ).encode()
            mid, digest = intake_key(raw)
            mail = IncomingMail(
                source="smtp",
                mailbox="support@x.test",
                envelope_from="ann@customer.test",
                rcpt_tos=["support@x.test"],
                raw=raw,
                message_id=mid,
                sha256=digest,
            )
            await store.write(lambda db, m=mail: accept_raw(db, m))
        worker = Worker(
            store, {"process_mail": JobSpec(processor, concurrency=16)}, WorkerSettings()
        )
        await worker.run(burst=True)
    convs = await store.read(
        lambda db: db.execute(
            "SELECT COUNT(DISTINCT conversation_id), COUNT(*) FROM messages"
        ).fetchone()
    )
    assert tuple(convs) == (1, 12)
