"""Assembling the sandbox: routes, the middleware chain, and embedding with AppRunner.

Middleware order matters and mirrors what a client sees from HubSpot: the request log wraps
everything (so tests see faults and 429s too), then injected faults (they hit before auth, like
an edge failure), then authentication, then rate limits, then the handler; the state is written
to SQLite after each call that changed it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_log import AccessLogger

from . import admin, channels, console, conversations, crm, files, oauth
from .errors import ApiError, correlation_id, json_response
from .faults import ConnectionResetFault, FaultInjector, reset_connection
from .keys import FAULTS, LIMITER, STATE, WEBHOOKS
from .limits import Limits, RateLimiter
from .state import SandboxOptions, SandboxState, iso
from .webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMETERED = ("/_sandbox/", "/console", "/oauth/")
MAX_LOGGED_BODY = 20_000


def _is_api(path: str) -> bool:
    return not path.startswith(UNMETERED)


async def _logged_body(request: web.Request) -> Any:
    if request.content_type.startswith("multipart/"):
        return "<multipart>"
    raw = await request.text()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw[:MAX_LOGGED_BODY]


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every API call (method, path, query, status, time, body) for the admin API."""
    if not _is_api(request.path) and not request.path.startswith("/oauth/"):
        return await handler(request)
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "time": iso(),
        "body": await _logged_body(request),
        "status": None,
        "fault": None,
    }
    request.app[STATE].requests.append(entry)
    started = time.monotonic()
    try:
        response = await handler(request)
        entry["status"] = response.status
        return response
    except ConnectionResetFault:
        entry["fault"] = "reset"
        raise
    finally:
        entry["durationMs"] = int((time.monotonic() - started) * 1000)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ApiError and aiohttp's own 404/405 with HubSpot's error body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400 or not _is_api(request.path):
            raise
        category = "OBJECT_NOT_FOUND" if exc.status == 404 else "VALIDATION_ERROR"
        return json_response(
            {
                "status": "error",
                "message": exc.reason,
                "correlationId": correlation_id(),
                "category": category,
            },
            status=exc.status,
        )
    except (ConnectionResetFault, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("sandbox handler failed on %s %s", request.method, request.path)
        return ApiError(500, "internal error", "INTERNAL_ERROR").response()


@web.middleware
async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = None
    if _is_api(request.path):
        rule = request.app[FAULTS].pick(request.method, request.path)
        if rule is not None:
            await request.app[FAULTS].apply(rule, request)
    response = await handler(request)
    if rule is not None and rule.action == "lose_response":
        raise ConnectionResetFault()
    return response


@web.middleware
async def auth_and_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if not _is_api(request.path):
        return await handler(request)
    request[oauth.PRINCIPAL] = oauth.authenticate(request, state)
    search = request.method == "POST" and request.path.endswith("/search")
    headers = request.app[LIMITER].check(str(state.data["app"]["appId"]), search=search)
    try:
        response = await handler(request)
    except ApiError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    response.headers.update(headers)
    return response


ADMIN_PREFIX = "/_sandbox/"


@web.middleware
async def admin_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With `admin_token` set (a sandbox reachable from other machines), the admin API and the
    rep console's API under /_sandbox/ need `Authorization: Bearer <token>` (RFC 6750 section
    2.1); the HubSpot API itself keeps HubSpot's own authentication."""
    token = request.app[STATE].options.admin_token
    if token and request.path.startswith(ADMIN_PREFIX):
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token.encode()
        ):
            return json_response(
                {
                    "status": "error",
                    "message": "sandbox admin token required (Authorization: Bearer <token>)",
                    "correlationId": correlation_id(),
                    "category": "INVALID_AUTHENTICATION",
                },
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="hubspot-sandbox admin"'},
            )
    return await handler(request)


@web.middleware
async def persist(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        request.app[STATE].flush()


async def _reset_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConnectionResetFault:
        reset_connection(request)
        # The socket is gone; this response is never written.
        return web.Response(status=500)


@web.middleware
async def connection_reset(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await _reset_guard(request, handler)


# A numbered API path (/crm/v3/..., /crm/v4/..., /conversations/v3/..., /files/v3/...,
# /oauth/v1/...): HubSpot ends v4 on 2027-03-30 and v1-v3 in September 2027 and says to move to
# the dated paths (developers.hubspot.com/changelog/
# legacy-apis-and-legacy-apps-whats-going-unsupported-and-when).
NUMBERED = re.compile(r"^/[a-z-]+/v\d+/|^/[a-z-]+/[a-z-]+/v\d+/")


def deprecation_logger() -> Callable[[web.Request], None]:
    """Warn once per route (its pattern, not each id) that a numbered path was called."""
    seen: set[str] = set()

    def note(request: web.Request) -> None:
        if not NUMBERED.match(request.path):
            return
        info = request.match_info.route.resource
        pattern = info.canonical if info is not None else request.path
        if pattern in seen:
            return
        seen.add(pattern)
        log.warning(
            "deprecated numbered HubSpot path %s %s: HubSpot stops serving v1-v4 paths in "
            "2027; call the dated path instead",
            request.method,
            pattern,
        )

    return note


def deprecation(note: Callable[[web.Request], None]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        note(request)
        return await handler(request)

    return middleware


def build_app(state: SandboxState, closing: asyncio.Event | None = None) -> web.Application:
    """The aiohttp application over a given state (use start_sandbox to also serve it).

    Request bodies may be as large as HubSpot's Files API allows (``files_max_bytes`` plus the
    multipart envelope), not aiohttp's 1 MiB default.
    """
    app = web.Application(
        client_max_size=state.options.files_max_bytes + 1024 * 1024,
        middlewares=[
            connection_reset,
            admin_token,
            request_log,
            deprecation(deprecation_logger()),
            errors,
            faults,
            auth_and_limits,
            persist,
        ],
    )
    opts = state.options
    app[STATE] = state
    app[LIMITER] = RateLimiter(
        Limits(opts.burst_limit, opts.burst_interval_ms, opts.search_per_second, opts.daily_limit)
    )
    app[FAULTS] = FaultInjector(closing or asyncio.Event(), opts.hang_seconds)
    for spec in opts.faults:
        app[FAULTS].add(spec)
    app[WEBHOOKS] = WebhookDispatcher(state)

    async def close_webhooks(app: web.Application) -> None:
        await app[WEBHOOKS].close()

    app.on_cleanup.append(close_webhooks)
    for module in (oauth, crm, conversations, channels, files, admin, console):
        module.setup_routes(app)
    return app


class DebugAccessLog(AccessLogger):
    """One line per request at DEBUG (`gateway.sandbox.access`): at info the sandbox's access
    log would be most of the daemon's log, one line for every HubSpot call the gateway makes."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: Any, response: Any, time: float) -> None:
        self.logger.debug(
            "%s %s -> %s in %.1f ms", request.method, request.path_qs, response.status, time * 1e3
        )


@dataclass
class SandboxServer:
    """A running sandbox: its URL, app and state, and how to stop it."""

    url: str
    app: web.Application
    runner: web.AppRunner
    closing: asyncio.Event

    @property
    def state(self) -> SandboxState:
        return self.app[STATE]

    @property
    def port(self) -> int:
        """The port bound (the kernel's pick when started on port 0), read from the socket."""
        return int(self.runner.addresses[0][1])

    def info(self) -> dict[str, Any]:
        """Provisioned ids and demo credentials (the same as GET /_sandbox/info)."""
        return self.state.info(self.url)

    async def close(self) -> None:
        self.closing.set()
        await self.runner.cleanup()
        self.state.close()


async def start_sandbox(
    host: str, port: int, db_path: Path | None = None, **options: Any
) -> SandboxServer:
    """Serve the sandbox on host:port (0 picks a free port; ``url`` reports the real one).

    ``options`` are the fields of SandboxOptions (burst_limit, webhook_target_url,
    webhook_retry_scale, faults, ...).
    """
    state = SandboxState(SandboxOptions(**options), db_path)
    closing = asyncio.Event()
    app = build_app(state, closing)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=1.0,
        access_log_class=DebugAccessLog,
        access_log=logging.getLogger("gateway.sandbox.access"),
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    real_port = runner.addresses[0][1] if runner.addresses else port
    shown_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{real_port}"
    log.info("HubSpot sandbox listening on %s", url)
    return SandboxServer(url=url, app=app, runner=runner, closing=closing)
