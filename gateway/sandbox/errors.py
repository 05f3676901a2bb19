"""HubSpot's error body, raised from anywhere and rendered in one place (the middleware)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web


def correlation_id() -> str:
    """HubSpot stamps every error with a UUID that support can trace; so do we."""
    return str(uuid.uuid4())


class ApiError(Exception):
    """An error answered with HubSpot's JSON shape: status, message, correlationId, category…"""

    def __init__(
        self,
        status: int,
        message: str,
        category: str | None = "VALIDATION_ERROR",
        *,
        sub_category: str | None = None,
        context: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
        }
        if self.category:
            body["category"] = self.category
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context is not None:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def not_found(message: str = "resource not found") -> ApiError:
    return ApiError(404, message, "OBJECT_NOT_FOUND")


def bad_request(message: str, **kwargs: Any) -> ApiError:
    return ApiError(400, message, "VALIDATION_ERROR", **kwargs)


def rate_limited(message: str, policy: str, headers: dict[str, str] | None = None) -> ApiError:
    """HubSpot's 429 carries errorType and policyName instead of a category."""
    err = ApiError(429, message, None, headers=headers)
    err.extra = {"errorType": "RATE_LIMIT", "policyName": policy}
    return err


def present(value: Any) -> Any:
    """A response value without the fields that have no value, at any depth.

    HubSpot leaves out a field it has no value for rather than sending ``null`` (its reference
    marks most response fields non-nullable; hubspot-sdk's models type them ``Optional`` only
    in the sense "may be absent"). Keys starting with ``_`` are the sandbox's own bookkeeping.
    """
    if isinstance(value, dict):
        return {
            k: present(v) for k, v in value.items() if v is not None and not str(k).startswith("_")
        }
    if isinstance(value, list):
        return [present(v) for v in value]
    return value


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or a HubSpot-style 400 when it is not JSON."""
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}") from exc
