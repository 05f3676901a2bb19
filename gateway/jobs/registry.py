"""The job registry: for each job kind its handler, timeout, tries and concurrency, in one table.

In the spirit of arq's `func(coroutine, timeout=, max_tries=)`: plain dataclasses, read by
the worker (worker.py) and built once by the composition root (service.py). A field left at
None takes the [worker] setting: timeout = 0.8 x lease_seconds, max_tries = max_attempts,
concurrency = every worker slot.

Why caps: the HubSpot kinds (handoff, hubspot_publish) can wait seconds per call on HubSpot's
rate limit and retries; uncapped, a burst of them could hold every worker slot while the
process_mail and assist jobs of new mail wait behind them. A kind at its cap is not claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.config import WorkerSettings
from gateway.models import Job, JobKind

Handler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class JobSpec:
    """How the worker runs one job kind.

    timeout:     seconds one run may take before it is cancelled and counted as a failed try
    max_tries:   tries before the job becomes a dead letter (a Deferred does not count)
    concurrency: jobs of this kind running at once in this worker, at most
    """

    handler: Handler
    timeout: float | None = None
    max_tries: int | None = None
    concurrency: int | None = None


def job_registry(
    *,
    process_mail: Handler,
    assist: Handler,
    handoff: Handler,
    publish: Handler,
    rep_reply: Handler,
    bounce: Handler,
    send_reply: Handler,
    worker: WorkerSettings,
) -> dict[str, JobSpec]:
    """Every job kind of the gateway and how to run it; `worker` sizes the HubSpot caps.

    With the default 4 slots, at most 2 handoffs and 1 publish run at once, so one slot is
    always left for the mail that keeps arriving.
    """
    slots = worker.concurrency
    table: Mapping[JobKind, JobSpec] = {
        JobKind.PROCESS_MAIL: JobSpec(process_mail),
        JobKind.ASSIST: JobSpec(assist),
        JobKind.HANDOFF: JobSpec(handoff, concurrency=max(1, slots // 2)),
        JobKind.PUBLISH: JobSpec(publish, concurrency=max(1, slots // 4)),
        JobKind.REP_REPLY: JobSpec(rep_reply),
        JobKind.BOUNCE: JobSpec(bounce),
        JobKind.SEND_REPLY: JobSpec(send_reply),
    }
    return {str(kind): spec for kind, spec in table.items()}
