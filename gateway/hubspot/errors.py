"""HubSpot's failures as typed errors, parsed from its error body (every field optional).

A job that meets a HubSpotTransientError is retried later; a HubSpotPermanentError is a dead
letter with HubSpot's own message and correlationId, which is what HubSpot support asks for.
HubSpotNotFound is a NotFound and HubSpotAuthError a PermissionError, like the gateway's
own errors. BadWebhook is a webhook request we refuse (gateway/hubspot/webhooks.py).
Error bodies: https://developers.hubspot.com/docs/api/error-handling
"""

from __future__ import annotations

from typing import Any

from gateway.errors import Deferred, GatewayError, NotFound, PermanentError, TransientError


class HubSpotError(GatewayError):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        category: str = "",
        correlation_id: str = "",
        policy_name: str = "",
        body: Any = None,
        method: str = "",
        path: str = "",
    ):
        self.status = status
        self.message = message
        self.category = category
        self.correlation_id = correlation_id
        self.policy_name = policy_name
        self.body = body
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        extra = f" [{category}]" if category else ""
        cid = f" (correlationId {correlation_id})" if correlation_id else ""
        # status 0: raised here, before any HTTP call (not connected, sandbox down): no code
        head = f"HubSpot {status}" if status else "HubSpot"
        super().__init__(f"{head}{extra}: {where}{message}{cid}")

    @classmethod
    def from_response(cls, status: int, body: Any, method: str, path: str) -> HubSpotError:
        b = body if isinstance(body, dict) else {}
        message = str(b.get("message") or (body if isinstance(body, str) else "") or "no message")
        kwargs = dict(
            category=str(b.get("category") or b.get("errorType") or ""),
            correlation_id=str(b.get("correlationId") or ""),
            policy_name=str(b.get("policyName") or ""),
            body=body,
            method=method,
            path=path,
        )
        if status == 429:
            return RateLimited(status, message[:500], **kwargs)
        if status >= 500:
            return HubSpotTransientError(status, message[:500], **kwargs)
        if status == 404:
            return HubSpotNotFound(status, message[:500], **kwargs)
        if status == 409:
            return HubSpotConflict(status, message[:500], **kwargs)
        if status in (401, 403):
            return HubSpotAuthError(status, message[:500], **kwargs)
        return HubSpotPermanentError(status, message[:500], **kwargs)


class HubSpotTransientError(HubSpotError, TransientError):
    """5xx, timeouts, resets: HubSpot may answer later."""


class RateLimited(HubSpotTransientError):
    """429: `policy_name` says which limit (TEN_SECONDLY_ROLLING, SECONDLY, DAILY)."""


class DailyLimitReached(HubSpotTransientError, Deferred):
    """The daily budget is spent: HubSpot jobs wait until `resume_at` without failing."""

    def __init__(self, *args: Any, resume_at: float, **kwargs: Any):
        HubSpotTransientError.__init__(self, *args, **kwargs)
        self.resume_at = self.until = resume_at


class HubSpotPermanentError(HubSpotError, PermanentError):
    """A 4xx other than 429: the request itself is wrong; retrying will not help."""


class HubSpotNotFound(HubSpotPermanentError, NotFound):
    """404: no such object (a contact by email, a thread, a channel account)."""


class HubSpotConflict(HubSpotPermanentError):
    """409: the object exists already (a contact created twice)."""


class HubSpotAuthError(HubSpotPermanentError, PermissionError):
    """401/403: token expired, revoked or missing scopes; a person must act."""


class BadWebhook(GatewayError, ValueError):
    """Why a webhook request is refused (logged and counted; the body is never logged)."""
