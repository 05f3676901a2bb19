"""Prometheus metrics for one Gateway: its own registry, never the process-wide default one.

Two kinds of numbers. Events counted as they happen (mails accepted and rejected, job run
times and failures, delivery attempts) come from small wrappers the service puts around the
SMTP handler's hooks, the worker's job handlers and the relay sender. Everything else (queue
depth, dead letters, deliveries by state, HubSpot calls and budget, SMTP replies, webhook
refusals) is read at scrape time from the parts that already count it: `refresh()` reads the
store once per scrape, and a custom collector turns the counts into metric families.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.errors import Deferred

PREFIX = "mail_gateway"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _code(reply: object) -> str:
    text = str(reply or "")
    return text[:3] if text[:3].isdigit() else "unknown"


def hubspot_budget_left(client: Any) -> int:
    """Calls the rolling window still allows right now (our own 90% of HubSpot's limit)."""
    window = client.window
    now = time.monotonic()
    if now < window.paused_until:
        return 0
    recent = sum(1 for t in window.stamps if t > now - window.interval)
    return max(0, window.limit - recent)


class _Snapshot(Collector):
    """Metric families built from counters the gateway's parts keep anyway."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self):
        m, gw = self.m, self.m.gateway
        queue = GaugeMetricFamily(
            f"{PREFIX}_queue_jobs", "Jobs not done, by kind and state.", labels=["kind", "state"]
        )
        for kind, states in sorted(m.stored.get("queue", {}).items()):
            for state, n in sorted(states.items()):
                queue.add_metric([kind, state], n)
        yield queue
        yield GaugeMetricFamily(
            f"{PREFIX}_dead_letters", "Jobs that failed for good.", m.stored.get("dead", 0)
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_quarantined_mails",
            "Mails whose processing failed, held for a retry.",
            m.stored.get("quarantined", 0),
        )
        deliveries = GaugeMetricFamily(
            f"{PREFIX}_deliveries", "Outgoing replies by state.", labels=["state"]
        )
        for state, n in sorted(m.stored.get("deliveries", {}).items()):
            deliveries.add_metric([state], n)
        yield deliveries

        gate = getattr(gw, "gate", None)
        replies = CounterMetricFamily(
            f"{PREFIX}_smtp_replies", "SMTP replies sent, by reply code.", labels=["code"]
        )
        for code, n in sorted((gate.replies if gate else {}).items()):
            replies.add_metric([code], n)
        yield replies
        yield GaugeMetricFamily(
            f"{PREFIX}_smtp_sessions", "Open SMTP sessions.", gate.active if gate else 0
        )

        webstate = getattr(gw, "webstate", None)
        webhooks = CounterMetricFamily(
            f"{PREFIX}_webhooks", "HubSpot webhooks received, by outcome.", labels=["outcome"]
        )
        counters = webstate.counters if webstate else {}
        webhooks.add_metric(["accepted"], counters.get("webhook_accepted", 0))
        webhooks.add_metric(["rejected"], counters.get("webhook_rejected", 0))
        yield webhooks

        client = getattr(gw, "hubspot", None)
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
    """The registry and the event metrics of one Gateway."""

    def __init__(self, gateway: Any):
        self.gateway = gateway
        self.registry = CollectorRegistry(auto_describe=True)
        self.stored: dict[str, Any] = {}
        r = self.registry
        self.mails_accepted = Counter(
            f"{PREFIX}_mails_accepted", "Mails answered 250 after DATA (stored).", registry=r
        )
        self.mails_rejected = Counter(
            f"{PREFIX}_mails_rejected",
            "Recipients or mails refused, by SMTP reply code.",
            ["code"],
            registry=r,
        )
        self.intake_seconds = Histogram(
            f"{PREFIX}_intake_seconds",
            "Time from the end of DATA to the reply (parse, store, commit).",
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

    # -- hooks -------------------------------------------------------------------------------

    def watch_smtp(self, handler: Any) -> None:
        """Time handle_DATA and count its replies; count refused recipients."""
        data, rcpt = handler.handle_DATA, handler.handle_RCPT

        @functools.wraps(data)
        async def handle_DATA(server, session, envelope):
            start = time.perf_counter()
            reply = await data(server, session, envelope)
            self.intake_seconds.observe(time.perf_counter() - start)
            code = _code(reply)
            if code == "250":
                self.mails_accepted.inc()
            else:
                self.mails_rejected.labels(code).inc()
            return reply

        @functools.wraps(rcpt)
        async def handle_RCPT(server, session, envelope, address, rcpt_options):
            reply = await rcpt(server, session, envelope, address, rcpt_options)
            code = _code(reply)
            if code[0] in "45":
                self.mails_rejected.labels(code).inc()
            return reply

        handler.handle_DATA = handle_DATA
        handler.handle_RCPT = handle_RCPT

    def job(self, kind: str, fn: Callable[[Any], Awaitable[None]]):
        @functools.wraps(fn)
        async def run(job: Any) -> None:
            start = time.perf_counter()
            try:
                await fn(job)
            except Deferred:
                raise  # asked to run later: not a failure
            except Exception:
                self.job_failures.labels(kind).inc()
                raise
            finally:
                self.job_seconds.labels(kind).observe(time.perf_counter() - start)

        return run

    def watch_sender(self, sender: Any) -> None:
        send = sender.send

        @functools.wraps(send)
        async def timed_send(mail: Any) -> Any:
            start = time.perf_counter()
            result = await send(mail)
            self.delivery_seconds.observe(time.perf_counter() - start)
            outcome = "sent" if result.ok else ("permanent" if result.permanent else "temporary")
            self.delivery_attempts.labels(outcome).inc()
            return result

        sender.send = timed_send

    # -- scrape ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read what the store knows (one read per scrape) for the collector."""
        store = getattr(self.gateway, "store", None)
        if store is None:
            return
        self.stored = await store.read(stored_counts)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def stored_counts(db: Any) -> dict[str, Any]:
    from gateway.store import jobs as jobq

    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "queue": jobq.depth_by_kind(db),
        "dead": one("SELECT COUNT(*) FROM jobs WHERE state = 'dead'"),
        "quarantined": one("SELECT COUNT(*) FROM quarantine WHERE state = 'held'"),
        "deliveries": dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")),
    }
