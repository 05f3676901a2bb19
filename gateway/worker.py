"""Runs the durable jobs: claim, run under a timeout, finish, or retry with backoff, or bury.

Modelled on arq: a timeout around every job, bounded tries, a graceful drain on stop (stop
claiming, let running jobs finish within a deadline), and a burst mode that drains whatever
is due and returns, which is what tests use (`Worker.run(burst=True)`). Timeout, tries
and a concurrency cap are per kind, from the registry (jobs/registry.py); a kind at its cap is
not claimed, so other kinds run in the free slots.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping

from gateway.config import WorkerSettings
from gateway.errors import DEFER_AFTER, BudgetSpent, Deferred, PermanentError
from gateway.jobs.registry import JobSpec
from gateway.models import Job
from gateway.store import jobs as jobq
from gateway.store.db import Store

log = logging.getLogger(__name__)


def backoff(attempts: int, first: float = 5.0) -> float:
    """Seconds before try number attempts+1: `first` doubling to an hour, with 20% jitter."""
    base = min(3600.0, first * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


class Worker:
    """Claims due jobs for every kind with a free slot, in one write, and runs each in a task.

    Each kind has its own slots (`JobSpec.concurrency`, default the [worker] concurrency), so
    a kind that waits (HubSpot's handoffs on the rate limit) never holds a slot another kind
    needs: new mail, the assistant's answers and reply deliveries run beside it. A job whose
    external budget is spent raises `BudgetSpent`: it goes back to the queue, due when the
    budget has room, without using a try, and its kind is not claimed until then.
    """

    # A job may wait this long for an external rate limit's budget; longer, it is deferred.
    defer_after = 0.5

    def __init__(self, store: Store, registry: Mapping[str, JobSpec], settings: WorkerSettings):
        self.store = store
        self.registry = registry
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: Counter[str] = Counter()  # jobs in flight per kind, for the slots
        self._paused: dict[str, float] = {}  # kind -> unix time its budget has room again
        self._tasks: set[asyncio.Task[None]] = set()
        # a lease outlives the longest timeout, so a running job is never claimed twice
        longest = max((spec.timeout or 0.0 for spec in registry.values()), default=0.0)
        self.lease_seconds = max(float(settings.lease_seconds), longest / 0.8)
        self.ran = 0
        self.failed = 0

    @property
    def in_flight(self) -> int:
        """Jobs running now (all kinds)."""
        return sum(self._running.values())

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def slots(self, kind: str) -> int:
        """How many jobs of `kind` may run at once."""
        spec = self.registry.get(kind)
        cap = spec.concurrency if spec is not None else None
        return cap if cap is not None else self.settings.concurrency

    def _free(self) -> dict[str, int]:
        """Free slots per kind that may be claimed now (kinds with a spent budget left out)."""
        now = time.time()
        free = {}
        for kind in self.registry:
            if self._paused.get(kind, 0.0) > now:
                continue
            n = self.slots(kind) - self._running[kind]
            if n > 0:
                free[kind] = n
        return free

    async def run(self, *, burst: bool = False) -> None:
        """Claim and run jobs until stop(), then let the running ones finish; in burst mode,
        return once nothing is due and nothing runs."""
        failures = 0
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    jobs = await self._claim()
                except Exception as exc:
                    # The store itself failed (a full disk, an I/O error): intake answers 451
                    # for the same reason. The loop must outlive it, or processing would stop
                    # for good while intake resumes once the disk has room again.
                    failures += 1
                    delay = min(30.0, 0.5 * 2 ** min(failures - 1, 6))
                    if failures == 1 or failures % 10 == 0:
                        log.error("worker cannot reach the store (%s); retry in %.1fs", exc, delay)
                    if burst:
                        raise
                    await self._pause(delay)
                    continue
                failures = 0
                for job in jobs:
                    self._start(job)
                if jobs:
                    continue  # more may be due: claim again before sleeping
                if burst and not self._tasks:
                    return
                await self._idle(burst)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _claim(self) -> list[Job]:
        free = self._free()
        if not free:
            return []
        lease = self.lease_seconds
        jobs = await self.store.write(lambda db: jobq.claim_many(db, free, lease_seconds=lease))
        for job in jobs:
            self._running[job.kind] += 1
        return jobs

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self._run_one(job), name=f"job-{job.id}-{job.kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_one(self, job: Job) -> None:
        try:
            await self.run_job(job)
        except Exception:  # the store failed while finishing: the lease brings the job back
            log.exception("job %s (%s): could not record its outcome", job.id, job.kind)
        finally:
            self._running[job.kind] -= 1
            self._wake.set()  # a slot is free

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if stop() is called."""
        self._wake.clear()
        if self._stopping:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _idle(self, burst: bool) -> None:
        # the event was cleared before the claim: a wake() (an enqueue, a job finishing) that
        # came since is kept, not lost to a clear after the read
        if self._stopping or self._wake.is_set():
            return
        free = self._free()
        wait = 5.0
        if free and not burst:
            due = await self.store.read(lambda db: jobq.next_due(db, kinds=list(free)))
            if due is not None:
                wait = max(0.05, min(5.0, due - time.time()))
        paused = [t for t in self._paused.values() if t > time.time()]
        if paused:
            wait = max(0.05, min(wait, min(paused) - time.time()))
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
        except TimeoutError:
            pass

    async def run_job(self, job: Job) -> None:
        spec = self.registry.get(job.kind)
        if spec is None:
            await self.store.write(
                lambda db: jobq.bury(db, job.id, error=f"no handler for job kind {job.kind!r}")
            )
            return
        # finish (or fail) before the lease expires
        timeout = spec.timeout if spec.timeout is not None else self.lease_seconds * 0.8
        max_tries = spec.max_tries if spec.max_tries is not None else self.settings.max_attempts
        limit = DEFER_AFTER.set(self.defer_after)
        try:
            async with asyncio.timeout(timeout):
                await spec.handler(job)
        except asyncio.CancelledError:
            raise  # the lease expires and another run picks it up
        except Deferred as exc:
            until, reason = exc.until, str(exc)
            if isinstance(exc, BudgetSpent):
                self._paused[job.kind] = max(self._paused.get(job.kind, 0.0), until)
                log.debug("job %s (%s) deferred until %s: %s", job.id, job.kind, until, reason)
            else:
                log.info("job %s (%s) deferred until %s: %s", job.id, job.kind, until, reason)
            await self.store.write(
                lambda db: jobq.reschedule(
                    db, job.id, error=reason, run_after=until, count_attempt=False
                )
            )
            return
        except Exception as exc:
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, PermanentError) or job.attempts >= max_tries:
                log.error(
                    "job %s (%s) dead after %d tries: %s", job.id, job.kind, job.attempts, error
                )
                await self.store.write(lambda db: jobq.bury(db, job.id, error=error))
            else:
                delay = backoff(job.attempts, self.settings.retry_base_seconds)
                log.warning(
                    "job %s (%s) failed, retry in %.0fs: %s", job.id, job.kind, delay, error
                )
                await self.store.write(
                    lambda db: jobq.reschedule(
                        db, job.id, error=error, run_after=time.time() + delay
                    )
                )
            return
        finally:
            DEFER_AFTER.reset(limit)
        self.ran += 1
        await self.store.write(lambda db: jobq.finish(db, job.id))
