"""Outgoing webhooks, signed and retried like HubSpot's, always off the request path.

Two streams: the app's subscription events (``conversation.*``: a JSON array, batched, signed
v1 and v3) to the app's target URL, and custom-channel events (one JSON object, signed v3) to
the channel's ``webhookUrl``. A failed delivery (connection error, timeout, any non-2xx) is
retried up to 10 times on HubSpot's schedule times ``webhook_retry_scale``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from .state import SandboxState, iso, now_ms

log = logging.getLogger(__name__)

# Seconds before each retry: HubSpot spreads 10 retries over about a day.
RETRY_DELAYS = (60, 120, 300, 600, 1200, 2400, 3600, 7200, 14400, 28800)
MAX_BATCH = 100
_event_ids = itertools.count(1)


def sign_v3(secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{method}{uri}{body}{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def sign_v1(secret: str, body: str) -> str:
    return hashlib.sha256(f"{secret}{body}".encode()).hexdigest()


class WebhookDispatcher:
    """Queues, batches, signs, sends and retries; records every attempt for the admin API."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[dict[str, Any]] = []
        self._flush: asyncio.Task[None] | None = None

    # -- producers (called from handlers; never wait) ----------------------------------------

    def app_event(self, subscription_type: str, object_id: str, **fields: Any) -> None:
        if not self.state.data.get("webhook_target_url"):
            return
        app = self.state.data["app"]
        self._pending.append(
            {
                "eventId": next(_event_ids),
                "subscriptionId": 1000 + len(subscription_type),
                "portalId": self.state.data["portal"]["portalId"],
                "appId": app["appId"],
                "occurredAt": now_ms(),
                "subscriptionType": subscription_type,
                "attemptNumber": 0,
                "objectId": int(object_id),
                **fields,
            }
        )
        if self._flush is None or self._flush.done():
            self._flush = self._spawn(self._flush_later())

    def channel_event(self, url: str, payload: dict[str, Any]) -> None:
        self._spawn(self._deliver("channel", url, lambda attempt: payload, v1=False))

    # -- machinery -----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.state.options.webhook_batch_delay)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            url = self.state.data.get("webhook_target_url")
            if not url:
                return

            def body(attempt: int, batch: list[dict[str, Any]] = batch) -> list[dict[str, Any]]:
                return [{**event, "attemptNumber": attempt} for event in batch]

            self._spawn(self._deliver("app", url, body, v1=True))

    async def _deliver(
        self, kind: str, url: str, make_body: Callable[[int], Any], v1: bool
    ) -> None:
        for attempt in range(len(RETRY_DELAYS) + 1):
            body = json.dumps(make_body(attempt))
            outcome = await self._attempt(kind, url, body, attempt, v1)
            if outcome:
                return
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt] * self.state.options.webhook_retry_scale)
        log.warning("webhook to %s given up after %d attempts", url, len(RETRY_DELAYS) + 1)

    async def _attempt(self, kind: str, url: str, body: str, attempt: int, v1: bool) -> bool:
        secret = self.state.data["app"]["clientSecret"]
        timestamp = str(now_ms())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (sandbox)",
            "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
        }
        if v1:
            headers["X-HubSpot-Signature"] = sign_v1(secret, body)
            headers["X-HubSpot-Signature-Version"] = "v1"
        record: dict[str, Any] = {
            "kind": kind,
            "url": url,
            "attempt": attempt,
            "time": iso(),
            "body": json.loads(body),
            "status": None,
            "error": None,
        }
        self.state.deliveries.append(record)
        started = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=self.state.options.webhook_timeout)
            async with self.session.post(
                url, data=body.encode(), headers=headers, timeout=timeout
            ) as response:
                await response.read()
                record["status"] = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["durationMs"] = int((time.monotonic() - started) * 1000)
        record["ok"] = record["status"] is not None and 200 <= record["status"] < 300
        return bool(record["ok"])

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Cancel pending deliveries (retries may be hours away) and close the session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
