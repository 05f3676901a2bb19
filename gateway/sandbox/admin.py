"""The admin API under ``/_sandbox/``: what tests and people use to steer the sandbox.

Not part of HubSpot: no auth, never rate limited, never faulted, never logged as a request.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from aiohttp import web

from .errors import bad_request, json_response, not_found, read_json
from .keys import FAULTS, LIMITER, STATE
from .oauth import mint_token


def _base(request: web.Request) -> str:
    state = request.app[STATE]
    return state.options.public_url or f"{request.scheme}://{request.host}"


async def info(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].info(_base(request)))


async def list_requests(request: web.Request) -> web.Response:
    entries: list[dict[str, Any]] = list(request.app[STATE].requests)
    path = request.query.get("path")
    method = request.query.get("method")
    if path:
        entries = [e for e in entries if fnmatch.fnmatchcase(e["path"], path)]
    if method:
        entries = [e for e in entries if e["method"] == method.upper()]
    return json_response({"results": entries})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].requests.clear()
    return web.Response(status=204)


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"results": [r.as_dict() for r in request.app[FAULTS].rules]})


async def add_fault(request: web.Request) -> web.Response:
    spec = await read_json(request)
    if not isinstance(spec, dict):
        raise bad_request("a fault is a JSON object")
    return json_response(request.app[FAULTS].add(spec).as_dict(), status=201)


async def delete_fault(request: web.Request) -> web.Response:
    if not request.app[FAULTS].remove(int(request.match_info["fault_id"])):
        raise not_found("no such fault")
    return web.Response(status=204)


async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    """Fresh portal, no faults, empty logs, new limit windows (limits themselves are kept)."""
    request.app[STATE].reset()
    request.app[FAULTS].clear()
    request.app[LIMITER].reset()
    return json_response(request.app[STATE].info(_base(request)))


async def webhook_target(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method != "GET":
        body = await read_json(request)
        state.data["webhook_target_url"] = body.get("url")
        state.mark_dirty()
    return json_response({"url": state.data.get("webhook_target_url")})


async def limits(request: web.Request) -> web.Response:
    limiter = request.app[LIMITER]
    if request.method != "GET":
        body = await read_json(request)
        for key in ("burst", "interval_ms", "search_per_second", "daily"):
            if key in body:
                setattr(limiter.limits, key, int(body[key]))
        limiter.reset()
    return json_response(vars(limiter.limits))


async def deliveries(request: web.Request) -> web.Response:
    entries = list(request.app[STATE].deliveries)
    kind = request.query.get("kind")
    if kind:
        entries = [d for d in entries if d["kind"] == kind]
    return json_response({"results": entries})


async def tokens(request: web.Request) -> web.Response:
    """Mint an OAuth token without the browser dance, with chosen scopes and lifetime."""
    state = request.app[STATE]
    body = await read_json(request)
    scopes = body.get("scopes") or list(state.data["app"]["scopes"])
    return json_response(mint_token(state, scopes, body.get("expires_in")), status=201)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sandbox/info", info)
    r.add_get("/_sandbox/requests", list_requests)
    r.add_delete("/_sandbox/requests", clear_requests)
    r.add_get("/_sandbox/faults", list_faults)
    r.add_post("/_sandbox/faults", add_fault)
    r.add_delete("/_sandbox/faults", clear_faults)
    r.add_delete("/_sandbox/faults/{fault_id}", delete_fault)
    r.add_post("/_sandbox/reset", reset)
    r.add_get("/_sandbox/webhook-target", webhook_target)
    r.add_put("/_sandbox/webhook-target", webhook_target)
    r.add_post("/_sandbox/webhook-target", webhook_target)
    r.add_get("/_sandbox/limits", limits)
    r.add_patch("/_sandbox/limits", limits)
    r.add_post("/_sandbox/limits", limits)
    r.add_get("/_sandbox/webhooks", deliveries)
    r.add_post("/_sandbox/tokens", tokens)
