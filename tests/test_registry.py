"""The job registry and the worker's per-kind timeout, tries and concurrency cap."""

from __future__ import annotations

import asyncio

from gateway.config import Settings, WorkerSettings
from gateway.jobs.registry import JobSpec, job_registry
from gateway.models import Job, JobKind
from gateway.store import jobs as jobq
from gateway.worker import Worker

from helpers.waiting import wait_for


async def _job_row(store, job_id: int) -> tuple[str, int, str | None]:
    return await store.read(
        lambda db: db.execute(
            "SELECT state, attempts, last_error FROM jobs WHERE id = ?", [job_id]
        ).fetchone()
    )


async def _enqueue(store, kind: str, n: int = 1) -> list[int]:
    return [await store.write(lambda db, i=i: jobq.enqueue(db, kind, {"i": i})) for i in range(n)]


async def _drain_until_dead(worker: Worker, store, job_id: int) -> tuple[str, int, str | None]:
    async def dead() -> bool:
        await worker.run(burst=True)  # runs what is due now; a retry becomes due later
        return (await _job_row(store, job_id))[0] == "dead"

    await wait_for(dead, within=10, what=f"job {job_id} dead")
    return await _job_row(store, job_id)


def test_every_job_kind_has_one_entry(settings: Settings):
    async def nothing(job: Job) -> None:
        return None

    registry = job_registry(
        process_mail=nothing,
        assist=nothing,
        handoff=nothing,
        publish=nothing,
        rep_reply=nothing,
        bounce=nothing,
        send_reply=nothing,
        worker=settings.worker,
    )
    assert set(registry) == {str(kind) for kind in JobKind}
    slots = settings.worker.concurrency
    assert registry["process_mail"].concurrency == 4 * slots  # batches per fsync
    assert registry["assist"].concurrency is None  # the [worker] concurrency, its own slots
    assert 1 <= registry["handoff"].concurrency < slots


async def test_claim_skips_excluded_kinds(store):
    [slow] = await _enqueue(store, "slow")
    [fast] = await _enqueue(store, "fast")
    job = await store.write(lambda db: jobq.claim(db, lease_seconds=60, exclude_kinds=["slow"]))
    assert job is not None and job.id == fast
    assert (
        await store.write(lambda db: jobq.claim(db, lease_seconds=60, exclude_kinds=["slow"]))
        is None
    )
    assert await store.read(lambda db: jobq.next_due(db, exclude_kinds=["slow", "fast"])) is None
    job = await store.write(lambda db: jobq.claim(db, lease_seconds=60))
    assert job is not None and job.id == slow


async def test_timeout_is_per_kind(store):
    never = asyncio.Event()

    async def hangs(job: Job) -> None:
        await never.wait()

    calls: list[int] = []

    async def quick(job: Job) -> None:
        calls.append(job.id)

    worker = Worker(
        store,
        {"hangs": JobSpec(hangs, timeout=0.05, max_tries=1), "quick": JobSpec(quick)},
        WorkerSettings(),
    )
    [hung] = await _enqueue(store, "hangs")
    [ok] = await _enqueue(store, "quick")
    await worker.run(burst=True)
    state, attempts, error = await _job_row(store, hung)
    assert (state, attempts) == ("dead", 1)
    assert error.startswith("TimeoutError")
    assert calls == [ok]
    assert (await _job_row(store, ok))[0] == "done"


async def test_max_tries_is_per_kind(store):
    async def fails(job: Job) -> None:
        raise ValueError("always")

    worker = Worker(
        store,
        {"twice": JobSpec(fails, max_tries=2), "default": JobSpec(fails)},
        WorkerSettings(max_attempts=4, retry_base_seconds=0.01),
    )
    [twice] = await _enqueue(store, "twice")
    [default] = await _enqueue(store, "default")
    state, attempts, error = await _drain_until_dead(worker, store, twice)
    assert (state, attempts, error) == ("dead", 2, "ValueError: always")
    state, attempts, _ = await _drain_until_dead(worker, store, default)
    assert (state, attempts) == ("dead", 4)  # the [worker] max_attempts


async def test_a_kind_at_its_cap_leaves_the_other_slots_to_other_kinds(store):
    release = asyncio.Event()
    running: list[int] = []
    most = 0

    async def slow(job: Job) -> None:
        nonlocal most
        running.append(job.id)
        most = max(most, len(running))
        try:
            await release.wait()
        finally:
            running.remove(job.id)

    done: list[int] = []

    async def fast(job: Job) -> None:
        done.append(job.id)

    worker = Worker(
        store,
        {"slow": JobSpec(slow, concurrency=1), "fast": JobSpec(fast)},
        WorkerSettings(concurrency=2),
    )
    slow_ids = await _enqueue(
        store, "slow", 3
    )  # first in the queue: uncapped, they fill both slots
    fast_ids = await _enqueue(store, "fast", 2)
    task = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: len(done) == 2, what="the fast jobs, while a slow one runs")
        assert done == fast_ids
        assert len(running) == 1
        release.set()

        async def all_done() -> bool:
            states = [(await _job_row(store, i))[0] for i in slow_ids]
            return states == ["done"] * 3

        await wait_for(all_done, what="the slow jobs, one at a time")
        assert most == 1
    finally:
        release.set()  # a failed assertion must not leave the slow jobs holding the worker
        worker.stop()
        await task
