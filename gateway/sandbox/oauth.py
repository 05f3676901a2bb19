"""OAuth 2 for the sandbox app, and who is calling: bearer tokens, the static token, hapikey.

Access tokens expire like HubSpot's so the gateway's refresh path runs in tests, and each token
carries scopes so a missing scope is a 403 the way HubSpot words it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .errors import ApiError, json_response
from .keys import STATE
from .state import DEMO, SandboxState

SCOPES_LINK = "https://developers.hubspot.com/scopes"


@dataclass
class Principal:
    """The caller of one request: an OAuth/static token or the developer API key."""

    kind: str  # "oauth" | "static" | "developer"
    scopes: list[str] = field(default_factory=list)
    token: str | None = None


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("sandbox_principal", Principal)


def _unauthenticated(message: str, category: str = "INVALID_AUTHENTICATION") -> ApiError:
    return ApiError(401, message, category)


def authenticate(request: web.Request, state: SandboxState) -> Principal:
    """Resolve the caller, or raise HubSpot's 401."""
    header = request.headers.get("Authorization", "")
    hapikey = request.query.get("hapikey")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        record = state.data["tokens"].get(token)
        if record is None:
            raise _unauthenticated(
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
        expires = record.get("expiresAt")
        if expires is not None and expires <= time.time():
            ago = max(1, int((time.time() - expires) // 60))
            raise _unauthenticated(
                f"The OAuth token used to make this call expired {ago} minute(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        return Principal(record["kind"], list(record["scopes"]), token)
    if hapikey is not None:
        if hapikey != state.data["app"]["developerApiKey"]:
            raise _unauthenticated("The API key provided is invalid.")
        return Principal("developer")
    raise _unauthenticated(
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at "
        "https://developers.hubspot.com/docs/methods/auth/oauth-overview"
    )


def require(request: web.Request, *any_of: str, developer_ok: bool = False) -> Principal:
    """Check that the caller holds one of the scopes (HubSpot: "one or more of")."""
    principal = request[PRINCIPAL]
    if principal.kind == "developer":
        if developer_ok:
            return principal
        raise _unauthenticated(
            "This endpoint requires an OAuth access token; a developer API key was provided."
        )
    if any_of and not set(any_of) & set(principal.scopes):
        raise ApiError(
            403,
            "This app hasn't been granted all required scopes to make this call. Read more "
            f"about required scopes here: {SCOPES_LINK}.",
            "MISSING_SCOPES",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": list(any_of)},
                }
            ],
            extra={"links": {"scopes": SCOPES_LINK}},
        )
    return principal


def mint_token(state: SandboxState, scopes: list[str], ttl: int | None = None) -> dict[str, Any]:
    """A new access token (and refresh token) the way /oauth/v1/token answers."""
    ttl = state.options.token_ttl if ttl is None else ttl
    access = "sbx-at-" + secrets.token_urlsafe(24)
    refresh = "sbx-rt-" + secrets.token_urlsafe(24)
    state.data["tokens"][access] = {
        "kind": "oauth",
        "scopes": scopes,
        "expiresAt": time.time() + ttl,
    }
    state.data["refresh_tokens"][refresh] = {"scopes": scopes}
    state.mark_dirty()
    return {
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ttl,
        "hub_id": state.data["portal"]["portalId"],
        "scopes": scopes,
    }


def _oauth_error(status: str, message: str) -> web.Response:
    """OAuth endpoints use their own error body: status is a code such as BAD_AUTH_CODE."""
    from .errors import correlation_id

    return json_response(
        {"status": status, "message": message, "correlationId": correlation_id()}, status=400
    )


async def token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.content_type == "application/json":
        form: dict[str, Any] = await request.json()
    else:
        form = dict(await request.post())
    app = state.data["app"]
    if form.get("client_id") != app["clientId"]:
        return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
    if form.get("client_secret") != app["clientSecret"]:
        return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        code = state.data["auth_codes"].pop(str(form.get("code")), None)
        if code is None or code["expiresAt"] < time.time():
            return _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
        if form.get("redirect_uri") != code["redirectUri"]:
            return _oauth_error("BAD_REDIRECT_URI", "redirect_uri does not match")
        state.mark_dirty()
        return json_response(mint_token(state, code["scopes"]))
    if grant == "refresh_token":
        record = state.data["refresh_tokens"].get(str(form.get("refresh_token")))
        if record is None:
            return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        body = mint_token(state, record["scopes"])
        # HubSpot keeps the refresh token stable across refreshes.
        state.data["refresh_tokens"].pop(body["refresh_token"])
        body["refresh_token"] = str(form["refresh_token"])
        return json_response(body)
    return _oauth_error("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")


async def authorize(request: web.Request) -> web.Response:
    """The consent page, approved at once: redirect back with ?code= (and state)."""
    state = request.app[STATE]
    query = request.query
    if query.get("client_id") != state.data["app"]["clientId"]:
        raise web.HTTPBadRequest(text="unknown client_id")
    redirect_uri = query.get("redirect_uri") or str(DEMO["redirect_uri"])
    requested = (query.get("scope") or "").replace(",", " ").split()
    requested += (query.get("optional_scope") or "").replace(",", " ").split()
    allowed = state.data["app"]["scopes"]
    unknown = [s for s in requested if s not in allowed]
    if unknown:
        raise web.HTTPBadRequest(text=f"scopes not allowed for this app: {' '.join(unknown)}")
    code = "sbx-code-" + secrets.token_urlsafe(16)
    state.data["auth_codes"][code] = {
        "redirectUri": redirect_uri,
        "scopes": requested or list(allowed),
        "expiresAt": time.time() + 300,
    }
    state.mark_dirty()
    params = {"code": code}
    if "state" in query:
        params["state"] = query["state"]
    sep = "&" if "?" in redirect_uri else "?"
    raise web.HTTPFound(f"{redirect_uri}{sep}{urlencode(params)}")


async def token_info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    value = request.match_info["token"]
    record = state.data["tokens"].get(value)
    if record is None:
        return _oauth_error("BAD_ACCESS_TOKEN", "unknown access token")
    expires = record.get("expiresAt")
    return json_response(
        {
            "token": value,
            "hub_id": state.data["portal"]["portalId"],
            "app_id": state.data["app"]["appId"],
            "scopes": record["scopes"],
            "expires_in": max(0, int(expires - time.time())) if expires else None,
            "token_type": "access",
            "user": "alice.agent@sandbox.test",
            "hub_domain": state.data["portal"]["domain"],
        }
    )


async def token_introspect(request: web.Request) -> web.Response:
    """POST /oauth/2026-03/token/introspect: a form (or JSON) {token, client_id, client_secret}.

    Answers the fields of hubspot-sdk's PublicAccessTokenInfoResponse (types/auth/); an
    unknown token or a wrong client is HubSpot's OAuth error body with 400.
    """
    state = request.app[STATE]
    json_body = request.content_type == "application/json"
    form = await request.json() if json_body else await request.post()
    app = state.data["app"]
    if form.get("client_id") != app["clientId"] or form.get("client_secret") != app["clientSecret"]:
        return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id or secret")
    value = str(form.get("token") or "")
    record = state.data["tokens"].get(value)
    if record is None:
        return _oauth_error("BAD_ACCESS_TOKEN", "unknown access token")
    expires = record.get("expiresAt")
    left = max(0, int(expires - time.time())) if expires else 0
    hub_id, app_id = state.data["portal"]["portalId"], app["appId"]
    scopes = list(record["scopes"])
    signed = {
        "appId": app_id,
        "expiresAt": int((expires or 0) * 1000),
        "hubId": hub_id,
        "hublet": "na1",
        "installingUserId": 1,
        "isPrivateDistribution": False,
        "isServiceAccount": False,
        "isUserLevel": False,
        "newSignature": "sandbox",
        "scopes": ",".join(scopes),
        "scopeToScopeGroupPks": "",
        "signature": "sandbox",
        "trialScopes": "",
        "trialScopeToScopeGroupPks": "",
        "userId": 1,
    }
    return json_response(
        {
            "token": value,
            "active": expires is None or left > 0,
            "app_id": app_id,
            "client_id": app["clientId"],
            "expires_in": left,
            "hub_id": hub_id,
            "is_private_distribution": False,
            "scopes": scopes,
            "signed_access_token": signed,
            "token_type": "access",
            "token_use": "access_token",
            "user_id": 1,
            "hub_domain": state.data["portal"]["domain"],
            "user": "alice.agent@sandbox.test",
        }
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/v1/token", token)
    app.router.add_post(r"/oauth/{version:\d{4}-\d{2}}/token", token)
    app.router.add_get("/oauth/v1/access-tokens/{token}", token_info)
    app.router.add_post(r"/oauth/{version:\d{4}-\d{2}}/token/introspect", token_introspect)
