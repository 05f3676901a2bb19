"""The job registry: for each job kind its handler, timeout, tries and concurrency, in one table.

In the spirit of arq's `func(coroutine, timeout=, max_tries=)`: plain dataclasses, read by
the worker (worker.py) and built once by the composition root (service.py). A field left at
None takes the [worker] setting: timeout = 0.8 x lease_seconds, max_tries = max_attempts,
concurrency = the [worker] concurrency.

Why each kind has its own slots: the HubSpot kinds (handoff, hubspot_publish, and the status
reports of rep_reply and send_reply) can wait on HubSpot's rate limit; if they shared slots
with the rest, a burst of handoffs would hold every slot while the process_mail and assist
jobs of new mail waited behind them. With a slot count per kind no kind waits for another,
and a job whose budget is spent gives its slot back (errors.BudgetSpent).
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
    concurrency: jobs of this kind running at once in this worker, at most; every kind has
                 its own slots (None: the [worker] concurrency)
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
    """Every job kind of the gateway and how to run it; `worker` sizes the slots per kind.

    With the default concurrency 4: process_mail 16 (most of its time is spent waiting for
    the parser processes and the group commit, so more in flight means bigger batches per
    fsync, not more CPU), assist, rep_reply, bounce and send_reply 4 each, handoff 2 and
    hubspot_publish 1 (they share HubSpot's budget with each other and the status reports;
    more of them at once would only wait for it).
    """
    slots = worker.concurrency
    table: Mapping[JobKind, JobSpec] = {
        JobKind.PROCESS_MAIL: JobSpec(process_mail, concurrency=4 * slots),
        JobKind.ASSIST: JobSpec(assist),
        JobKind.HANDOFF: JobSpec(handoff, concurrency=max(1, slots // 2)),
        JobKind.PUBLISH: JobSpec(publish, concurrency=max(1, slots // 4)),
        JobKind.REP_REPLY: JobSpec(rep_reply),
        JobKind.BOUNCE: JobSpec(bounce),
        JobKind.SEND_REPLY: JobSpec(send_reply),
    }
    return {str(kind): spec for kind, spec in table.items()}
