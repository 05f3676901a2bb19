"""Prometheus metrics for one Gateway: its own registry, never the process-wide default one.

Two kinds of numbers. Events are counted as they happen: the SMTP edge and the relay sender
report to a `Metrics` passed to them at construction as their observer (`mail_accepted`,
`mail_refused`, `delivery_attempted`), and the service wraps each job handler with
`Metrics.job`. Everything else (queue depth, dead letters, deliveries by state, HubSpot calls
and budget, SMTP replies and sessions, webhook refusals) is read at scrape time from the parts
that count it anyway, named in `Metrics.sources`: the store (one read per scrape,
`gateway.store.stats`), the SMTP gate, the webhook counters and the HubSpot client.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.errors import Deferred
from gateway.hubspot.client import HubSpotClient
from gateway.relay.sender import DeliveryResult
from gateway.store.db import Store
from gateway.store.stats import StoreCounts, store_counts

PREFIX = "mail_gateway"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def hubspot_budget_left(client: HubSpotClient) -> int:
    """Calls the rolling window still allows right now (our own 90% of HubSpot's limit)."""
    window = client.window
    now = time.monotonic()
    if now < window.paused_until:
        return 0
    recent = sum(1 for t in window.stamps if t > now - window.interval)
    return max(0, window.limit - recent)


class SmtpGauges(Protocol):
    """What the SMTP edge's `Gate` (gateway.intake.smtp) shows; metrics does not import intake."""

    @property
    def active(self) -> int: ...  # open sessions

    @property
    def replies(self) -> Mapping[str, int]: ...  # reply code ("250") -> replies sent


@dataclass
class Sources:
    """The parts /metrics reads at scrape time; a part not (yet) running reads as zero."""

    store: Store | None = None
    smtp: SmtpGauges | None = None
    webhooks: Mapping[str, int] | None = None  # web.WebState.counters: webhook_accepted/_rejected
    hubspot: HubSpotClient | None = None


class _Snapshot(Collector):
    """Metric families built from counters the gateway's parts keep anyway."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        stored, src = self.m.stored, self.m.sources
        queue = GaugeMetricFamily(
            f"{PREFIX}_queue_jobs", "Jobs not done, by kind and state.", labels=["kind", "state"]
        )
        for kind, states in sorted(stored.queue.items()):
            for state, n in sorted(states.items()):
                queue.add_metric([kind, state], n)
        yield queue
        yield GaugeMetricFamily(
            f"{PREFIX}_dead_letters", "Jobs that failed for good.", stored.dead_letters
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_quarantined_mails",
            "Mails whose processing failed, held for a retry.",
            stored.quarantined,
        )
        deliveries = GaugeMetricFamily(
            f"{PREFIX}_deliveries", "Outgoing replies by state.", labels=["state"]
        )
        for state, n in sorted(stored.deliveries.items()):
            deliveries.add_metric([state], n)
        yield deliveries
        handoffs = GaugeMetricFamily(
            f"{PREFIX}_handoffs",
            "Handoffs to HubSpot by state (done, pending, retrying, failed).",
            labels=["state"],
        )
        for state in sorted({"done", "pending", "retrying", "failed"} | set(stored.handoffs)):
            handoffs.add_metric([state], stored.handoffs.get(state, 0))
        yield handoffs

        gate = src.smtp
        replies = CounterMetricFamily(
            f"{PREFIX}_smtp_replies", "SMTP replies sent, by reply code.", labels=["code"]
        )
        for code, n in sorted((gate.replies if gate else {}).items()):
            replies.add_metric([code], n)
        yield replies
        yield GaugeMetricFamily(
            f"{PREFIX}_smtp_sessions", "Open SMTP sessions.", gate.active if gate else 0
        )

        webhooks = CounterMetricFamily(
            f"{PREFIX}_webhooks", "HubSpot webhooks received, by outcome.", labels=["outcome"]
        )
        counters = src.webhooks or {}
        webhooks.add_metric(["accepted"], counters.get("webhook_accepted", 0))
        webhooks.add_metric(["rejected"], counters.get("webhook_rejected", 0))
        yield webhooks

        client = src.hubspot
        calls = CounterMetricFamily(
            f"{PREFIX}_hubspot_calls",
            "HubSpot API calls by method, endpoint (template) and status.",
            labels=["method", "endpoint", "status"],
        )
        if client is not None:
            for (method, path, status), n in sorted(client.stats.calls.items()):
                calls.add_metric([method, path, status], n)
        yield calls
        yield CounterMetricFamily(
            f"{PREFIX}_hubspot_rate_limited",
            "HubSpot 429 answers.",
            client.stats.rate_limited if client else 0,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_hubspot_retries",
            "HubSpot calls tried again.",
            client.stats.retries if client else 0,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_hubspot_rate_budget_left",
            "Calls the rolling rate window allows right now.",
            hubspot_budget_left(client) if client else 0,
        )


class Metrics:
    """The registry and the event metrics of one Gateway; the observer of SMTP and the relay.

    `sources` names what the scrape reads; the service fills it in once the parts exist.
    """

    def __init__(self, sources: Sources | None = None):
        self.sources = sources or Sources()
        self.registry = CollectorRegistry(auto_describe=True)
        self.stored = StoreCounts()
        r = self.registry
        self.mails_accepted = Counter(
            f"{PREFIX}_mails_accepted", "Mails answered 250 after DATA (stored).", registry=r
        )
        self.accepted_bytes = Counter(
            f"{PREFIX}_accepted_bytes",
            "Octets of the mails answered 250 (as received, after dot-unstuffing).",
            registry=r,
        )
        self.mails_rejected = Counter(
            f"{PREFIX}_mails_rejected",
            "Recipients or mails refused, by SMTP reply code.",
            ["code"],
            registry=r,
        )
        self.intake_seconds = Histogram(
            f"{PREFIX}_intake_seconds",
            "Time from the end of DATA to the 250 (parse, store, commit).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.job_seconds = Histogram(
            f"{PREFIX}_job_seconds",
            "Job run time by kind (handoff and publish are the HubSpot handoff).",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.job_failures = Counter(
            f"{PREFIX}_job_failures",
            "Job runs that raised an error, by kind.",
            ["kind"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            f"{PREFIX}_delivery_seconds",
            "Time of one delivery attempt through the relay.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_attempts = Counter(
            f"{PREFIX}_delivery_attempts",
            "Delivery attempts by outcome (sent, temporary, permanent).",
            ["outcome"],
            registry=r,
        )
        r.register(_Snapshot(self))

    # -- observer of the SMTP edge (gateway.intake.smtp.IntakeObserver) -----------------------

    def mail_accepted(self, size: int, seconds: float) -> None:
        """A mail was committed and answered 250: `size` octets, `seconds` after its DATA."""
        self.mails_accepted.inc()
        self.accepted_bytes.inc(size)
        self.intake_seconds.observe(seconds)

    def mail_refused(self, code: str) -> None:
        """A recipient or a mail was refused with this 3-digit SMTP reply code ("550")."""
        self.mails_rejected.labels(code).inc()

    # -- observer of the relay (gateway.relay.sender.DeliveryObserver) ------------------------

    def delivery_attempted(self, result: DeliveryResult, seconds: float) -> None:
        """One attempt through the relay (or the capture folder) ended after `seconds`."""
        self.delivery_seconds.observe(seconds)
        outcome = "sent" if result.ok else ("permanent" if result.permanent else "temporary")
        self.delivery_attempts.labels(outcome).inc()

    # -- job handlers --------------------------------------------------------------------------

    def job(
        self, kind: str, fn: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        """`fn` timed, its failures counted by kind; the service registers this with the worker.

        A Deferred (asked to run later) is not a failure.
        """

        @functools.wraps(fn)
        async def run(job: Any) -> None:
            start = time.perf_counter()
            try:
                await fn(job)
            except Deferred:
                raise
            except Exception:
                self.job_failures.labels(kind).inc()
                raise
            finally:
                self.job_seconds.labels(kind).observe(time.perf_counter() - start)

        return run

    # -- scrape --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what the store knows (one read per scrape) for the collector."""
        store = self.sources.store
        if store is not None:
            self.stored = await store.read(store_counts)

    def render(self) -> bytes:
        return generate_latest(self.registry)
