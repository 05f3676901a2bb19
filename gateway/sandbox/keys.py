"""Typed application keys, so handlers reach shared objects without globals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .faults import FaultInjector
    from .limits import RateLimiter
    from .state import SandboxState
    from .webhooks import WebhookDispatcher

STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("sandbox_limiter")
FAULTS: web.AppKey[FaultInjector] = web.AppKey("sandbox_faults")
WEBHOOKS: web.AppKey[WebhookDispatcher] = web.AppKey("sandbox_webhooks")
