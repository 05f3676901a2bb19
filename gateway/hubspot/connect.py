"""Building the HubSpot client from settings, and OAuth tokens kept in the store.

Three ways to authenticate, in this order: a static token from the settings (a private app,
or the sandbox's), OAuth tokens that `mail-gateway hubspot connect` stored (refreshed a minute
before they expire), or none (every call then says how to fix it).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.config import Settings
from gateway.hubspot import api
from gateway.hubspot.client import HubSpotClient, TokenSource, static_token
from gateway.hubspot.errors import HubSpotAuthError
from gateway.store.db import Store
from gateway.store.queries import kv_get, kv_set, take_oauth_state

OAUTH_KEY = "hubspot.oauth"
CALLBACK_PATH = "/hubspot/oauth-callback"
# exactly what the table's OAuth calls need: the same set as the project's requiredScopes
SCOPES = " ".join(sorted(api.required_scopes()))


@dataclass(frozen=True)
class Endpoint:
    """Where HubSpot is and who we are there (the sandbox fills these in itself)."""

    base_url: str
    authorize_url: str
    token: str
    client_id: str
    client_secret: str
    developer_key: str
    app_id: str


def endpoint_for(settings: Settings, sandbox_info: dict[str, Any] | None = None) -> Endpoint:
    hs = settings.hubspot
    if sandbox_info is not None:
        base = sandbox_info["baseUrl"]
        return Endpoint(
            base_url=base,
            authorize_url=f"{base}/oauth/authorize",
            token=str(hs.access_token or sandbox_info["staticToken"]),
            client_id=str(sandbox_info["clientId"]),
            client_secret=str(sandbox_info["clientSecret"]),
            developer_key=str(sandbox_info["developerApiKey"]),
            app_id=str(sandbox_info["appId"]),
        )
    return Endpoint(
        base_url=hs.base_url,
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token=str(hs.access_token),
        client_id=hs.client_id,
        client_secret=str(hs.client_secret),
        developer_key=str(hs.developer_api_key),
        app_id=hs.app_id,
    )


async def sandbox_info_from(settings: Settings) -> dict[str, Any]:
    """Ask the running sandbox (inside `serve`) for its ids, for CLI commands."""
    url = f"http://{settings.hubspot.sandbox_listen}/_sandbox/info"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
            token = settings.sandbox.admin_token
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with s.get(url, headers=headers) as resp:
                return await resp.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HubSpotAuthError(
            0,
            f"the HubSpot sandbox at {url} does not answer ({exc}); start `mail-gateway "
            'serve` (it runs the sandbox when hubspot.mode = "sandbox")',
        ) from None


def oauth_token(store: Store, ep: Endpoint) -> TokenSource:
    """Access tokens from the store, refreshed before they expire and on a 401."""

    async def source(force_refresh: bool) -> str:
        raw = await store.read(lambda db: kv_get(db, OAUTH_KEY))
        if not raw:
            raise HubSpotAuthError(
                0,
                "HubSpot is not connected: run `mail-gateway hubspot connect` "
                "(or put a private app token in hubspot.access_token_file)",
            )
        tokens = json.loads(raw)
        if force_refresh or tokens.get("expires_at", 0) - 60 < time.time():
            tokens = await exchange(
                ep, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
            )
            await store.write(lambda db: kv_set(db, OAUTH_KEY, json.dumps(tokens)))
        return tokens["access_token"]

    return source


async def _client_form(ep: Endpoint, name: str, form: dict[str, str]) -> dict[str, Any]:
    """POST a form with the app's client id and secret to OAuth call `name` of the table.

    Returns the decoded JSON body; raises HubSpotAuthError (HubSpot's message) on a 4xx/5xx.
    The secret goes in the form body only, never in a URL or a log line.
    """
    path = api.path(name)
    form = {"client_id": ep.client_id, "client_secret": ep.client_secret, **form}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as s:
        async with s.post(f"{ep.base_url}{path}", data=form) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 400:
                raise HubSpotAuthError(
                    resp.status,
                    str((body or {}).get("message") or body),
                    method="POST",
                    path=path,
                )
    return body if isinstance(body, dict) else {}


async def exchange(ep: Endpoint, *, redirect_uri: str = "", **grant: str) -> dict[str, Any]:
    """POST /oauth/2026-03/token (form): an authorization code or a refresh token for tokens.

    Returns {access_token, refresh_token, expires_at (epoch seconds)}; raises HubSpotAuthError
    with HubSpot's message on a 4xx. Source: hubspot-sdk resources/auth/oauth.py
    (create_token), https://developers.hubspot.com/docs/api-reference/2026-03/auth/oauth/guide
    """
    form = dict(grant)
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    body = await _client_form(ep, "oauth_token", form)
    return {
        "access_token": body["access_token"],
        "refresh_token": body.get("refresh_token") or grant.get("refresh_token", ""),
        "expires_at": time.time() + int(body.get("expires_in", 1800)),
    }


async def token_info(ep: Endpoint, token: str) -> dict[str, Any]:
    """POST /oauth/2026-03/token/introspect (form): what HubSpot knows of an access token.

    Returns HubSpot's PublicAccessTokenInfoResponse: {token, active, app_id, client_id,
    expires_in (seconds), hub_id, scopes: [str], token_type, token_use, user_id, ...}.
    Raises HubSpotAuthError when HubSpot refuses (unknown token, wrong client secret).
    Source: hubspot-sdk resources/auth/oauth.py (introspect_token) and
    types/auth/public_access_token_info_response.py.
    """
    return await _client_form(
        ep, "oauth_token_info", {"token": token, "token_type_hint": "access_token"}
    )


def authorize_url(ep: Endpoint, public_url: str, state: str) -> str:
    query = urllib.parse.urlencode(
        {
            "client_id": ep.client_id,
            "redirect_uri": public_url.rstrip("/") + CALLBACK_PATH,
            "scope": SCOPES,
            "state": state,
        }
    )
    return f"{ep.authorize_url}?{query}"


def build_client(settings: Settings, store: Store, ep: Endpoint) -> HubSpotClient:
    token = static_token(ep.token) if ep.token else oauth_token(store, ep)
    return HubSpotClient(
        ep.base_url,
        token,
        developer_key=ep.developer_key,
        app_id=ep.app_id,
        burst_limit=settings.hubspot.burst_limit,
        timeout=settings.hubspot.timeout,
    )


async def complete_oauth(
    store: Store, ep: Endpoint, public_url: str, code: str, state: str
) -> None:
    """The callback of `hubspot connect`: use up the state, trade the code, keep the tokens.

    The state is single-use and valid 10 minutes (store.queries.take_oauth_state): whoever
    learns it later (a printed URL, browser history) cannot complete a second callback with a
    code of another portal and redirect every later handoff there.
    """
    now = time.time()
    refused = await store.write(lambda db: take_oauth_state(db, state, now=now))
    if refused:
        raise HubSpotAuthError(400, f"{refused}: run `mail-gateway hubspot connect` again")
    tokens = await exchange(
        ep,
        grant_type="authorization_code",
        code=code,
        redirect_uri=public_url.rstrip("/") + CALLBACK_PATH,
    )
    await store.write(lambda db: kv_set(db, OAUTH_KEY, json.dumps(tokens)))
