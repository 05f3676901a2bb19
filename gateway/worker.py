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
from gateway.errors import Deferred, PermanentError
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
    def __init__(self, store: Store, registry: Mapping[str, JobSpec], settings: WorkerSettings):
        self.store = store
        self.registry = registry
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: Counter[str] = Counter()  # jobs in flight per kind, for the caps
        self._claiming = asyncio.Lock()  # caps are read and counted in one step
        # a lease outlives the longest timeout, so a running job is never claimed twice
        longest = max((spec.timeout or 0.0 for spec in registry.values()), default=0.0)
        self.lease_seconds = max(float(settings.lease_seconds), longest / 0.8)
        self.ran = 0
        self.failed = 0

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, *, burst: bool = False) -> None:
        """Run `concurrency` claim loops until stop() (or, in burst mode, until nothing is due)."""
        loops = [self._loop(burst) for _ in range(self.settings.concurrency)]
        await asyncio.gather(*loops)

    def _at_cap(self) -> list[str]:
        """Kinds with as many jobs running as their cap allows: not to be claimed now."""
        return sorted(
            kind
            for kind, spec in self.registry.items()
            if spec.concurrency is not None and self._running[kind] >= spec.concurrency
        )

    async def _claim(self) -> Job | None:
        lease = self.lease_seconds
        async with self._claiming:
            full = self._at_cap()
            job = await self.store.write(
                lambda db: jobq.claim(db, lease_seconds=lease, exclude_kinds=full)
            )
            if job is not None:
                self._running[job.kind] += 1
        return job

    async def _loop(self, burst: bool) -> None:
        failures = 0
        while not self._stopping:
            try:
                job = await self._claim()
                if job is None:
                    if burst:
                        return
                    await self._idle()
                    failures = 0
                    continue
            except Exception as exc:
                # The store itself failed (a full disk, an I/O error): intake answers 451 for
                # the same reason. The loop must outlive it, or processing would stop for good
                # while intake resumes once the disk has room again.
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures - 1, 6))
                if failures == 1 or failures % 10 == 0:
                    log.error("worker cannot reach the store (%s); retry in %.1fs", exc, delay)
                if burst:
                    raise
                await self._pause(delay)
                continue
            failures = 0
            try:
                await self.run_job(job)
            finally:
                self._running[job.kind] -= 1
                spec = self.registry.get(job.kind)
                if spec is not None and spec.concurrency is not None:
                    self._wake.set()  # a slot of a capped kind is free: idle loops look again

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if stop() is called."""
        self._wake.clear()
        if self._stopping:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _idle(self) -> None:
        # clear before looking: a wake() (an enqueue, a capped job finishing) that comes while
        # we read is kept, not lost to a clear after the read
        self._wake.clear()
        if self._stopping:  # stop() may have set the event just before the clear above
            return
        full = self._at_cap()
        due = await self.store.read(lambda db: jobq.next_due(db, exclude_kinds=full))
        wait = 5.0 if due is None else max(0.05, min(5.0, due - time.time()))
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
        try:
            async with asyncio.timeout(timeout):
                await spec.handler(job)
        except asyncio.CancelledError:
            raise  # the lease expires and another run picks it up
        except Deferred as exc:
            until, reason = exc.until, str(exc)
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
        self.ran += 1
        await self.store.write(lambda db: jobq.finish(db, job.id))
