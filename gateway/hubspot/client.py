"""One aiohttp session to HubSpot that keeps within HubSpot's limits by itself.

Why pacing on our side: a 429 costs a round trip and, for the burst limit, a wait of up to
ten seconds; a rolling window of our own keeps the gateway just under the limit, learns the
real limit from `X-HubSpot-RateLimit-*` headers, and keeps search at its separate 5/s.
Inside a worker's job (`errors.DEFER_AFTER` set) a call that would wait longer than that for
the budget raises `errors.BudgetSpent` instead: the job gives its slot back and runs again
when the budget has room, without using a try (a 429 on the burst window does the same).
Retries: safe calls (GET, PUT, PATCH, DELETE, searches, and POSTs the caller marks idempotent)
are retried here on 5xx, timeouts and resets with backoff and jitter. Other POSTs are not:
the caller's step logic knows how to find out whether the first try happened.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl

from gateway.errors import DEFER_AFTER, BudgetSpent
from gateway.hubspot import api
from gateway.hubspot.errors import (
    DailyLimitReached,
    HubSpotAuthError,
    HubSpotError,
    HubSpotPermanentError,
    HubSpotTransientError,
    RateLimited,
)

log = logging.getLogger(__name__)

TokenSource = Callable[[bool], Awaitable[str]]  # (force_refresh) -> access token


class RollingWindow:
    """At most `limit` calls in any `interval` seconds, shared by every caller.

    A caller reserves the earliest moment its call fits (a stamp, possibly in the future) and
    sleeps until then outside any lock, so callers never queue behind each other's sleeps.
    A caller that may not wait that long (`max_wait`, from `errors.DEFER_AFTER` in a worker's
    job) reserves nothing and gets BudgetSpent with the moment the budget has room again.
    """

    def __init__(self, limit: int, interval: float, margin: float = 0.9):
        self.interval = interval
        self.margin = margin
        self.limit = max(1, int(limit * margin))
        self.stamps: collections.deque[float] = collections.deque()  # monotonic, ascending
        self.paused_until = 0.0

    def wait_needed(self, now: float | None = None) -> float:
        """Seconds from `now` until one more call fits (0.0: it fits now)."""
        now = time.monotonic() if now is None else now
        while self.stamps and self.stamps[0] <= now - self.interval:
            self.stamps.popleft()
        at = max(now, self.paused_until)
        if len(self.stamps) >= self.limit:
            at = max(at, self.stamps[-self.limit] + self.interval + 0.001)
        return at - now

    async def acquire(self, max_wait: float | None = None) -> None:
        """Wait for room for one call, then count it.

        Raises BudgetSpent (without counting the call) when the room comes later than
        `max_wait` seconds from now; None waits as long as it takes.
        """
        while True:
            now = time.monotonic()
            wait = self.wait_needed(now)
            if max_wait is not None and wait > max_wait:
                raise BudgetSpent(
                    f"HubSpot's rate limit ({self.limit} calls / {self.interval:g} s of ours): "
                    f"no room for {wait:.1f} s",
                    until=time.time() + wait,
                )
            if self.stamps and now + wait < self.stamps[-1]:
                wait = self.stamps[-1] - now  # the limit grew: keep the stamps in order
            self.stamps.append(now + wait)
            if wait <= 0:
                return
            await asyncio.sleep(wait)
            if time.monotonic() >= self.paused_until:
                return
            # a 429 paused the window while we slept: give the stamp back and look again
            with contextlib.suppress(ValueError):
                self.stamps.remove(now + wait)

    def learn(self, headers: Any) -> None:
        """Adopt the limit HubSpot states, and stop early when it says little is left."""
        try:
            if "X-HubSpot-RateLimit-Max" in headers:
                stated = int(headers["X-HubSpot-RateLimit-Max"])
                self.limit = max(1, int(stated * self.margin))
            if "X-HubSpot-RateLimit-Interval-Milliseconds" in headers:
                self.interval = int(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
            remaining = headers.get("X-HubSpot-RateLimit-Remaining")
            if remaining is not None and int(remaining) <= 1:
                self.pause(self.interval)
        except (TypeError, ValueError):
            pass  # a header we cannot read teaches us nothing

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


@dataclass
class CallStats:
    """Counts for status, metrics and the benchmark: calls by endpoint and status, 429s."""

    calls: collections.Counter = field(default_factory=collections.Counter)
    rate_limited: int = 0
    retries: int = 0
    total: int = 0

    def record(self, method: str, path_template: str, status: int | str) -> None:
        self.total += 1
        self.calls[(method, path_template, str(status))] += 1


def _template(path: str) -> str:
    """…/objects/2026-03/tickets/123 -> …/objects/2026-03/tickets/{id}: bounded labels."""
    parts = [("{id}" if p.isdigit() or "@" in p or len(p) > 24 else p) for p in path.split("/")]
    return "/".join(parts)


# Hosts HubSpot serves files and signed file URLs from (api.hubapi.com, app.hubspot.com,
# f.hubspotusercontent-na1.net, cdn2.hubspot.net, ...). UNVERIFIED as a complete list: HubSpot
# documents the signed URL (GET /files/2026-03/files/{fileId}/signed-url, hubspot-sdk
# ``SignedURL``) but not its hosts; these are the ones its files and CDN links use.
_HUBSPOT_FILE_HOST = re.compile(
    r"^(?:[a-z0-9-]+\.)*(?:hubspot\.com|hubapi\.com|hubspot\.net|hubspotusercontent(?:-[a-z0-9]+|\d+)?\.(?:com|net))$"
)


def file_host_refusal(url: str, base_url: str) -> str:
    """Why `url` may not be fetched as a HubSpot file ("" when it may).

    Allowed: https on a HubSpot file host (`_HUBSPOT_FILE_HOST`), or the exact origin
    (scheme, host, port) of `base_url`, the API this client talks to: the sandbox serves its
    files from itself. Everything else is refused: another port of the same machine (the
    gateway's own /status), plain http, user info in the URL, a bare IP.
    """
    try:
        u, base = yarl.URL(url), yarl.URL(base_url)
    except (ValueError, TypeError):
        return "not a URL"
    if not u.is_absolute() or u.user or u.password:
        return "not an absolute URL, or one with user info"
    if (u.scheme, u.host, u.port) == (base.scheme, base.host, base.port):
        return ""
    host = (u.host or "").lower().rstrip(".")
    if u.scheme != "https" or not _HUBSPOT_FILE_HOST.match(host):
        return f"{u.scheme}://{host}:{u.port} is not one of HubSpot's file hosts"
    return ""


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        developer_key: str = "",
        app_id: str = "",
        burst_limit: int = 100,
        burst_interval: float = 10.0,
        search_per_second: int = 5,
        timeout: float = 15.0,
        tries: int = 4,
    ):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.developer_key = developer_key
        self.app_id = app_id
        self.window = RollingWindow(burst_limit, burst_interval)
        self.search_window = RollingWindow(search_per_second, 1.0, margin=0.8)
        self.timeout = timeout
        self.tries = tries
        self.stats = CallStats()
        self._session: aiohttp.ClientSession | None = None
        self.daily_paused_until = 0.0  # wall clock

    async def __aenter__(self) -> HubSpotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "hubspot-mail-gateway"},
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotent: bool | None = None,
        developer: bool = False,
        form: dict[str, str] | None = None,
        multipart: Callable[[], aiohttp.FormData] | None = None,
        auth: bool = True,
    ) -> Any:
        """Call HubSpot; return the decoded JSON (None for 204) or raise a HubSpotError."""
        if idempotent is None:
            idempotent = method != "POST" or path.endswith("/search")
        if time.time() < self.daily_paused_until:
            raise DailyLimitReached(
                429,
                "daily limit reached earlier; waiting for the reset",
                resume_at=self.daily_paused_until,
                method=method,
                path=path,
            )
        search = method == "POST" and path.endswith("/search")
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            await (self.search_window if search else self.window).acquire(DEFER_AFTER.get())
            try:
                status, headers, data = await self._once(
                    method, path, params, body, developer, multipart or form, auth
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.stats.record(method, _template(path), type(exc).__name__)
                err = HubSpotTransientError(
                    0, f"{type(exc).__name__}: {exc}", method=method, path=path
                )
                if idempotent and attempt < self.tries:
                    await self._backoff(attempt)
                    continue
                raise err from exc
            self.stats.record(method, _template(path), status)
            if not search:
                self.window.learn(headers)
            if status < 400:
                return data
            error = HubSpotError.from_response(status, data, method, path)
            if isinstance(error, HubSpotAuthError) and status == 401 and auth and not refreshed:
                refreshed = True  # an expired access token: refresh once and try again
                await self._token(True)
                continue
            if isinstance(error, RateLimited):
                self.stats.rate_limited += 1
                if error.policy_name == "DAILY":
                    self.daily_paused_until = _next_utc_midnight()
                    raise DailyLimitReached(
                        429,
                        error.message,
                        resume_at=self.daily_paused_until,
                        correlation_id=error.correlation_id,
                        policy_name="DAILY",
                        method=method,
                        path=path,
                    )
                wait = 1.0 * attempt if search or error.policy_name == "SECONDLY" else None
                if wait is None:
                    self.window.pause(self.window.interval)
                else:
                    self.search_window.pause(wait)
                if attempt < self.tries + 2:  # a 429 never did the work: always safe to retry
                    self.stats.retries += 1
                    continue
                raise error
            if isinstance(error, HubSpotTransientError) and idempotent and attempt < self.tries:
                await self._backoff(attempt)
                continue
            raise error

    async def _backoff(self, attempt: int) -> None:
        self.stats.retries += 1
        await asyncio.sleep(0.2 * attempt * random.uniform(0.5, 1.5))

    async def _once(self, method, path, params, body, developer, form, auth):
        headers = {}
        query = dict(params or {})
        if developer:
            query.setdefault("hapikey", self.developer_key)
            if self.app_id:
                query.setdefault("appId", self.app_id)
        elif auth:
            headers["Authorization"] = f"Bearer {await self._token(False)}"
        kwargs: dict[str, Any] = {"params": query, "headers": headers}
        if callable(form):  # a fresh FormData each try: aiohttp sends one only once
            kwargs["data"] = form()
        elif form is not None:
            kwargs["data"] = form
        elif body is not None:
            kwargs["json"] = body
        async with self._http().request(method, self.base_url + path, **kwargs) as resp:
            raw = await resp.read()
            data: Any = None
            if raw:
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = raw.decode("utf-8", "replace")[:2000]
            return resp.status, resp.headers, data

    async def download(self, url: str, *, limit: int, redirects: int = 3) -> bytes:
        """A file behind a signed URL from HubSpot's Files API, without our token.

        Only `file_host_allowed` URLs are fetched: https on HubSpot's hosts, or this client's
        own origin (the sandbox). Redirects are followed by hand, at most `redirects`, each
        target checked the same way, so a URL can never lead to another host. `limit` is in
        bytes: a file larger (by Content-Length or by what arrives) raises
        HubSpotPermanentError 413; a refused URL raises HubSpotPermanentError 0 (nothing is
        requested); network errors HubSpotTransientError.
        """
        for _ in range(redirects + 1):
            refused = file_host_refusal(url, self.base_url)
            if refused:
                raise HubSpotPermanentError(0, f"refusing to fetch a file: {refused}")
            try:
                async with self._http().get(url, allow_redirects=False) as resp:
                    if 300 <= resp.status < 400 and "Location" in resp.headers:
                        url = str(resp.url.join(yarl.URL(resp.headers["Location"])))
                        continue
                    if resp.status >= 300:
                        raise HubSpotError.from_response(
                            resp.status, None, "GET", url.split("?")[0]
                        )
                    if (resp.content_length or 0) > limit:
                        raise HubSpotPermanentError(413, f"attachment larger than {limit} bytes")
                    data = await resp.content.read(limit + 1)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                raise HubSpotTransientError(0, f"download failed: {exc}", method="GET") from exc
            if len(data) > limit:
                raise HubSpotPermanentError(413, f"attachment larger than {limit} bytes")
            return data
        raise HubSpotPermanentError(0, f"refusing to fetch a file: more than {redirects} redirects")

    # -- small conveniences --------------------------------------------------------------

    async def access_token(self) -> str:
        """The OAuth access token calls carry now (refreshed when due); for token info."""
        return await self._token(False)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.request("POST", path, body=body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.request("PATCH", path, body=body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.request("PUT", path, body=body, **kw)

    async def call(
        self,
        name: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        **path_values: object,
    ) -> Any:
        """Call `name` from the table in gateway/hubspot/api.py with the credential it names.

        `path_values` fill the path template; the table's credential decides between the
        OAuth token ("oauth"), the developer key and app id ("developer") and neither
        ("client"). Returns the decoded JSON; raises a HubSpotError as `request` does.
        """
        spec = api.CALLS[name]
        return await self.request(
            spec.method,
            api.path(name, **path_values),
            params=params,
            body=body,
            idempotent=idempotent,
            developer=spec.credential == "developer",
            auth=spec.credential == "oauth",
        )


def _next_utc_midnight() -> float:
    now = time.time()
    return now - now % 86400 + 86400 + 60


def static_token(token: str) -> TokenSource:
    async def source(force_refresh: bool) -> str:
        if not token:
            raise HubSpotAuthError(
                0,
                "no HubSpot access token configured (hubspot.access_token_file or "
                "$HUBSPOT_ACCESS_TOKEN, or run `mail-gateway hubspot connect`)",
            )
        return token

    return source


__all__ = ["HubSpotClient", "RollingWindow", "TokenSource", "static_token"]
