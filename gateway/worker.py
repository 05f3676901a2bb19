"""Runs the durable jobs: claim, run under a timeout, finish, or retry with backoff, or bury.

Modelled on arq: a timeout around every job, bounded tries, a graceful drain on stop (stop
claiming, let running jobs finish within a deadline), and a burst mode that drains whatever
is due and returns, which is what tests and `mail-gateway process --burst` use.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from gateway.config import WorkerSettings
from gateway.errors import Deferred, PermanentError
from gateway.models import Job
from gateway.store import jobs as jobq
from gateway.store.db import Store

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]


def backoff(attempts: int, first: float = 5.0) -> float:
    """Seconds before try number attempts+1: `first` doubling to an hour, with 20% jitter."""
    base = min(3600.0, first * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.8, 1.2)


class Worker:
    def __init__(self, store: Store, handlers: dict[str, Handler], settings: WorkerSettings):
        self.store = store
        self.handlers = handlers
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
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

    async def _loop(self, burst: bool) -> None:
        lease = self.settings.lease_seconds
        while not self._stopping:
            job = await self.store.write(lambda db: jobq.claim(db, lease_seconds=lease))
            if job is None:
                if burst:
                    return
                await self._idle()
                continue
            await self.run_job(job)

    async def _idle(self) -> None:
        due = await self.store.read(jobq.next_due)
        wait = 5.0 if due is None else max(0.05, min(5.0, due - time.time()))
        self._wake.clear()
        if self._stopping:  # stop() may have set the event just before the clear above
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=wait)
        except TimeoutError:
            pass

    async def run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self.store.write(
                lambda db: jobq.bury(db, job.id, error=f"no handler for job kind {job.kind!r}")
            )
            return
        timeout = self.settings.lease_seconds * 0.8  # finish (or fail) before the lease expires
        try:
            async with asyncio.timeout(timeout):
                await handler(job)
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
            if isinstance(exc, PermanentError) or job.attempts >= self.settings.max_attempts:
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
