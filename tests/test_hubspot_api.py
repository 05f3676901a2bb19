"""The table of HubSpot calls (gateway/hubspot/api.py): dated paths only, each one real.

- no numbered HubSpot path (/crm/v3, /crm/v4, /conversations/v3, /oauth/v1, /files/v3) and no
  HubSpot path literal outside the table in gateway/ (the sandbox aside);
- every entry: a dated version, a known credential, scopes exactly on the OAuth calls, a
  source on developers.hubspot.com; where the entry cites HubSpot's official `hubspot-sdk`,
  the SDK calls exactly that path;
- the sandbox answers every entry at its dated path with the credential the table names;
- `hubspot setup` reads and creates channel accounts with the OAuth token, never the
  developer key, and registers the channel with the developer key and appId.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import hubspot_sdk
import pytest

from gateway.hubspot import api
from gateway.hubspot.api import required_scopes
from gateway.hubspot.setup import SETUP_KEY, HubSpotIds, run_setup
from gateway.store.queries import kv_get

import sandbox_fixtures
from hubspot_helpers import admin
from sandbox_fixtures import SandboxHandle

loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
SDK_RESOURCES = Path(hubspot_sdk.__file__).parent / "resources"
NUMBERED = re.compile(r"/(crm|conversations|files|oauth|automation|webhooks)/v\d+\b|/v[1-4]/")
# a string literal that starts like a HubSpot API path
PATH_LITERAL = re.compile(r"""f?["'](/(crm|conversations|files|oauth)/[^"']*)["']""")
NOT_API = {"/oauth/authorize"}  # HubSpot's consent page in a browser, not an API call


def _gateway_sources() -> list[Path]:
    return [p for p in GATEWAY.rglob("*.py") if "sandbox" not in p.relative_to(GATEWAY).parts]


def test_no_numbered_hubspot_path_in_the_gateway() -> None:
    found = [
        f"{p.relative_to(GATEWAY)}:{n}: {line.strip()}"
        for p in _gateway_sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if NUMBERED.search(line)
    ]
    assert not found, "numbered HubSpot paths:\n" + "\n".join(found)


def test_every_hubspot_path_comes_from_the_table() -> None:
    found = [
        f"{p.relative_to(GATEWAY)}:{n}: {m.group(1)}"
        for p in _gateway_sources()
        if p.name != "api.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        for m in PATH_LITERAL.finditer(line)
        if not any(m.group(1).startswith(ok) for ok in NOT_API)
    ]
    assert not found, "HubSpot paths outside gateway/hubspot/api.py:\n" + "\n".join(found)


@pytest.mark.parametrize("name", sorted(api.CALLS))
def test_each_entry_is_dated_sourced_and_credentialed(name: str) -> None:
    call = api.CALLS[name]
    assert call.name == name
    assert call.method in {"GET", "POST", "PATCH", "PUT"}
    assert not NUMBERED.search(call.template), call.template
    assert call.version in {"2026-03", "2026-09-beta"}, call.template
    assert call.credential in {"oauth", "developer", "client"}
    # scopes belong to the OAuth token; the developer key and client secret carry none
    assert bool(call.scopes) == (call.credential == "oauth"), call
    assert "https://developers.hubspot.com/docs/" in call.source


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


SDK_PATHS = {
    _normalise(m.group(1))
    for f in SDK_RESOURCES.rglob("*.py")
    for m in re.finditer(r'"(/[a-z][^"\s]*)"', f.read_text())
}


@pytest.mark.parametrize(
    "name", sorted(n for n, c in api.CALLS.items() if "hubspot-sdk" in c.source)
)
def test_the_official_sdk_calls_the_same_path(name: str) -> None:
    """hubspot-sdk (generated from HubSpot's OpenAPI files) is where the dated forms come from."""
    assert _normalise(api.CALLS[name].template) in SDK_PATHS, api.CALLS[name].template


def test_conversations_inbox_is_the_dated_beta_and_not_in_the_sdk() -> None:
    inbox = [c for c in api.CALLS.values() if "/conversations/conversations/" in c.template]
    assert inbox and all(c.version == "2026-09-beta" for c in inbox)
    assert all("hubspot-sdk" not in c.source for c in inbox)  # cited from HubSpot's pages


def test_path_fills_and_encodes_one_segment_per_value() -> None:
    assert (
        api.path("contact_get", contact_id="a+b@x.test")
        == "/crm/objects/2026-03/contacts/a%2Bb@x.test"
    )
    assert api.path("thread_get", thread_id="1/../2") == (
        "/conversations/conversations/2026-09-beta/threads/1%2F..%2F2"
    )
    with pytest.raises(KeyError):
        api.path("ticket_get")


def _fill(template: str) -> str:
    values = {
        "object_type": "tickets",
        "to_object_type": "contacts",
        "property_name": "subject",
    }
    return re.sub(r"\{([^}]*)\}", lambda m: values.get(m.group(1), "1"), template)


@pytest.mark.parametrize("name", sorted(api.CALLS))
def test_the_sandbox_serves_each_entry_with_its_credential(
    sandbox: SandboxHandle, name: str
) -> None:
    """A routed answer (HubSpot's JSON, any status) rather than aiohttp's 404/405 for no route."""
    call = api.CALLS[name]
    info = sandbox.info
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    data = None
    if call.credential == "developer":
        params = {"hapikey": info["developerApiKey"], "appId": str(info["appId"])}
    elif call.credential == "oauth":
        headers = {"Authorization": f"Bearer {info['staticToken']}"}
    else:
        data = {"client_id": info["clientId"], "client_secret": info["clientSecret"]}
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        resp = http.request(
            call.method,
            _fill(call.template),
            params=params,
            headers=headers,
            data=data,
            json={} if data is None and call.method != "GET" else None,
        )
    assert resp.status_code != 405, (name, resp.text)
    assert resp.headers.get("content-type", "").startswith("application/json"), (name, resp.text)
    if resp.status_code in (401, 403):
        pytest.fail(f"{name}: the sandbox refuses the credential the table names: {resp.text}")


async def test_setup_uses_the_oauth_token_for_channel_accounts(hub) -> None:
    """Channel accounts: Bearer token only (no hapikey); the channel itself: hapikey + appId."""
    ids = HubSpotIds.from_json(await hub.store.read(lambda db: kv_get(db, SETUP_KEY)))
    assert ids is not None and ids.channel_accounts
    # HubSpot loses the account: setup must create it again, with the OAuth token
    accounts = hub.sandbox.state.data["channel_accounts"]
    accounts.clear()
    await admin(hub, "DELETE", "/requests")
    report = await run_setup(
        hub.hubspot, hub.settings.hubspot, sorted(hub.settings.smtp.addresses),
        hub.settings.http.public_url,
    )  # fmt: skip
    assert any("created channel account" in line for line in report.changed)
    log = (await admin(hub, "GET", "/requests"))["results"]
    on_accounts = [e for e in log if "/channel-accounts" in e["path"]]
    assert {e["method"] for e in on_accounts} >= {"GET", "POST"}
    for e in on_accounts:
        assert "hapikey" not in e["query"], e
        assert e["status"] < 300, e
    on_channels = [e for e in log if e["path"].rstrip("/").endswith("/custom-channels/2026-03")]
    assert on_channels
    for e in on_channels:
        assert e["query"].get("hapikey") and e["query"].get("appId"), e
    assert all(not NUMBERED.search(e["path"]) for e in log), [e["path"] for e in log]


def test_token_info_answers_as_hubspot_sdk_types_it(sandbox: SandboxHandle) -> None:
    """The table's token-info call, made by hubspot-sdk with strict response validation."""
    info = sandbox.info
    sdk = hubspot_sdk.HubSpot(
        access_token=info["staticToken"],
        base_url=sandbox.url,
        max_retries=0,
        _strict_response_validation=True,
    )
    got = sdk.auth.oauth.introspect_token(
        token=info["staticToken"], client_id=info["clientId"], client_secret=info["clientSecret"]
    )
    assert type(got).__name__ == "PublicAccessTokenInfoResponse"
    assert got.active and required_scopes() <= set(got.scopes)
    with pytest.raises(hubspot_sdk.BadRequestError):
        sdk.auth.oauth.introspect_token(
            token="unknown", client_id=info["clientId"], client_secret=info["clientSecret"]
        )
