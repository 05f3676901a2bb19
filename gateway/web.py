"""The gateway's two HTTP listeners: the public one and the admin one.

The public listener (`http.listen`, behind the URL HubSpot calls) serves only what HubSpot and
a load balancer need: the webhooks, the OAuth callback and `/healthz`. Everything that shows
the gateway's inside (`/status` lists customer addresses, `/metrics`, `/readyz` with its error
texts) is on the admin listener (`admin.listen`, loopback by default), which requires
`Authorization: Bearer <admin.token>` when a token is configured.

Webhooks are verified (signature v3 against the public URL HubSpot called, 5-minute window,
constant-time compare, bounded body), written durably, and answered 204 at once: HubSpot
retries anything slower than 5 seconds, and the work happens in a job afterwards.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from gateway.hubspot.connect import CALLBACK_PATH, Endpoint, complete_oauth
from gateway.hubspot.errors import BadWebhook, HubSpotError
from gateway.hubspot.webhooks import parse_events, signed_uri, verify_v3
from gateway.store.db import Store
from gateway.store.queries import kv_set, status
from gateway.store.replies import record_announced

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 1 << 20


class MetricsPage(Protocol):
    """What /metrics serves (gateway.metrics.Metrics; web does not import metrics)."""

    async def refresh(self) -> None: ...  # read the store's counts for this scrape

    def render(self) -> bytes: ...  # the Prometheus text exposition format


@dataclass
class WebState:
    store: Store
    webhook_secret: str = ""
    public_url: str = ""
    wake: Callable[[], None] = lambda: None
    endpoint: Endpoint | None = None  # for the OAuth callback of `hubspot connect`
    counters: Counter = field(default_factory=Counter)
    metrics: MetricsPage | None = None  # /metrics answers 404 without it
    smtp_listening: Callable[[], bool] | None = None
    hubspot_auth: Callable[[], Awaitable[None]] | None = None  # raises when auth is unusable
    hubspot_cache_seconds: float = 30.0
    admin_token: str = ""  # when set, the admin listener requires it as a bearer token
    _hubspot_checked: tuple[float, str] | None = None  # (monotonic time, "" or the problem)

    async def hubspot_problem(self) -> str:
        """Empty when HubSpot auth works, else the problem. Cached: probes must stay cheap."""
        if self.hubspot_auth is None:
            return ""
        now = time.monotonic()
        cached = self._hubspot_checked
        if cached is not None and now - cached[0] < self.hubspot_cache_seconds:
            return cached[1]
        try:
            await self.hubspot_auth()
            problem = ""
        except Exception as exc:  # whatever it is, HubSpot is not usable right now
            problem = str(exc) or type(exc).__name__
        self._hubspot_checked = (now, problem)
        return problem


STATE: web.AppKey[WebState] = web.AppKey("state", WebState)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the store takes a write, SMTP listens and HubSpot accepts our credentials."""
    st = request.app[STATE]
    checks: dict[str, str] = {}
    try:
        await st.store.write(lambda db: kv_set(db, "runtime.readyz", str(time.time())))
        checks["store"] = "writable"
    except Exception as exc:  # not ready is an answer, not a crash
        checks["store"] = f"not writable: {exc}"
    if st.smtp_listening is not None:
        checks["smtp"] = "listening" if st.smtp_listening() else "not listening"
    if st.hubspot_auth is not None:
        problem = await st.hubspot_problem()
        checks["hubspot"] = f"auth unusable: {problem}" if problem else "auth ok"
    ok = (
        checks["store"] == "writable"
        and checks.get("smtp", "listening") == "listening"
        and checks.get("hubspot", "auth ok") == "auth ok"
    )
    return web.json_response(
        {"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503
    )


async def metrics_view(request: web.Request) -> web.Response:
    metrics = request.app[STATE].metrics
    if metrics is None:
        raise web.HTTPNotFound()
    await metrics.refresh()
    from prometheus_client import CONTENT_TYPE_LATEST

    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status_view(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STATE].store.read(status))


async def hubspot_webhook(request: web.Request) -> web.Response:
    st = request.app[STATE]
    source = "channel-webhook" if request.path.endswith("channel-webhook") else "app-webhook"
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
        st.counters["webhook_rejected"] += 1
        return web.json_response({"error": "body too large"}, status=413)
    body = await request.content.read(MAX_WEBHOOK_BODY + 1)
    if len(body) > MAX_WEBHOOK_BODY:
        st.counters["webhook_rejected"] += 1
        return web.json_response({"error": "body too large"}, status=413)
    try:
        verify_v3(
            secret=st.webhook_secret,
            method=request.method,
            uri=signed_uri(st.public_url, request.raw_path),
            body=body,
            signature=request.headers.get("X-HubSpot-Signature-v3"),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
        )
        announced = parse_events(body)
    except BadWebhook as exc:
        st.counters["webhook_rejected"] += 1
        log.warning("webhook %s refused: %s", request.path, exc)
        return web.json_response({"error": str(exc)}, status=401)

    def record(db) -> int:
        return sum(
            record_announced(
                db,
                hubspot_message_id=a.hubspot_message_id,
                thread_id=a.thread_id,
                source=source,
                message=a.message,
            )
            for a in announced
            if a.message_type in ("", "MESSAGE")  # comments are never delivered: not even queued
        )

    new = await st.store.write(record)
    st.counters["webhook_accepted"] += 1
    if new:
        st.wake()
    return web.Response(status=204)


async def oauth_callback(request: web.Request) -> web.Response:
    st = request.app[STATE]
    code, state = request.query.get("code", ""), request.query.get("state", "")
    if st.endpoint is None or not code:
        return web.Response(status=400, text="missing code")
    try:
        await complete_oauth(st.store, st.endpoint, st.public_url, code, state)
    except HubSpotError as exc:
        log.warning("OAuth callback refused: %s", exc)
        return web.Response(status=400, text=f"HubSpot connection failed: {exc.message}")
    log.info("HubSpot connected through OAuth; tokens stored")
    return web.Response(text="mail-gateway is connected to HubSpot. You can close this page.")


@web.middleware
async def bearer_token(request: web.Request, handler) -> web.StreamResponse:
    """With admin_token set, every admin request needs `Authorization: Bearer <token>`
    (RFC 6750 section 2.1), compared in constant time; 401 with WWW-Authenticate otherwise."""
    token = request.app[STATE].admin_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token.encode()
        ):
            return web.json_response(
                {"error": "admin token required (Authorization: Bearer <admin.token>)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="mail-gateway admin"'},
            )
    return await handler(request)


def create_app(state: WebState) -> web.Application:
    """The public listener: webhooks, the OAuth callback, /healthz; nothing private."""
    app = web.Application(client_max_size=MAX_WEBHOOK_BODY)
    app[STATE] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/hubspot/channel-webhook", hubspot_webhook)
    app.router.add_post("/hubspot/webhook", hubspot_webhook)
    app.router.add_get(CALLBACK_PATH, oauth_callback)
    return app


def create_admin_app(state: WebState) -> web.Application:
    """The admin listener: /status, /metrics, /readyz and /healthz, behind the admin token."""
    app = web.Application(middlewares=[bearer_token], client_max_size=64 * 1024)
    app[STATE] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/status", status_view)
    return app
