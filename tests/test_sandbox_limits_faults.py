"""Rate limits and injected faults come out as HubSpot's (and networks') failures do."""

from __future__ import annotations

import time

import httpx
import pytest

import sandbox_fixtures
from sandbox_fixtures import SandboxHandle

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox

OWNERS = "/crm/v3/owners"


def test_eleventh_call_in_window_is_429(sandbox: SandboxHandle) -> None:
    with sandbox.admin() as admin:
        admin.patch("/limits", json={"burst": 10, "interval_ms": 10_000})
    with sandbox.client() as api:
        responses = [api.get(OWNERS) for _ in range(11)]
    assert [r.status_code for r in responses[:10]] == [200] * 10
    assert responses[0].headers["X-HubSpot-RateLimit-Max"] == "10"
    assert responses[0].headers["X-HubSpot-RateLimit-Remaining"] == "9"
    assert responses[9].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert responses[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in responses[0].headers
    limited = responses[10]
    assert limited.status_code == 429
    body = limited.json()
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["correlationId"] and body["message"]
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_search_is_limited_per_second_without_headers(sandbox: SandboxHandle) -> None:
    with sandbox.client() as api:
        responses = [api.post("/crm/v3/objects/contacts/search", json={}) for _ in range(6)]
    assert [r.status_code for r in responses[:5]] == [200] * 5
    assert "X-HubSpot-RateLimit-Max" not in responses[0].headers
    assert responses[5].status_code == 429
    assert responses[5].json()["policyName"] == "SECONDLY"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_status_faults_next_n_calls(sandbox: SandboxHandle, status: int) -> None:
    with sandbox.admin() as admin:
        admin.post(
            "/faults",
            json={
                "path": "/crm/v3/owners*",
                "method": "GET",
                "action": "status",
                "status": status,
                "count": 2,
            },
        )
    with sandbox.client() as api:
        codes = [api.get(OWNERS).status_code for _ in range(3)]
        assert codes == [status, status, 200]
    with sandbox.admin() as admin:
        logged = admin.get("/requests", params={"path": OWNERS}).json()["results"]
    assert [e["status"] for e in logged] == codes


def test_rate_fault_is_reproducible_with_seed(sandbox: SandboxHandle) -> None:
    def run() -> list[int]:
        with sandbox.admin() as admin:
            admin.delete("/faults")
            admin.post(
                "/faults",
                json={
                    "path": r"^/crm/v3/owners",
                    "regex": True,
                    "status": 503,
                    "rate": 0.5,
                    "seed": 7,
                },
            )
        with sandbox.client() as api:
            return [api.get(OWNERS).status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    assert {200, 503} == set(first)


def test_latency_hang_and_reset_faults(sandbox: SandboxHandle) -> None:
    with sandbox.admin() as admin:
        admin.post(
            "/faults", json={"path": OWNERS, "action": "latency", "latency_ms": 300, "count": 1}
        )
        admin.post("/faults", json={"path": "/crm/v3/pipelines/*", "action": "hang", "count": 1})
        admin.post("/faults", json={"path": "/conversations/*", "action": "reset", "count": 1})
    with sandbox.client() as api:
        started = time.monotonic()
        assert api.get(OWNERS).status_code == 200
        assert time.monotonic() - started >= 0.3
        with pytest.raises(httpx.ReadTimeout):
            api.get("/crm/v3/pipelines/tickets", timeout=0.5)
        with pytest.raises(httpx.TransportError):
            api.get("/conversations/v3/conversations/inboxes")
        assert api.get("/conversations/v3/conversations/inboxes").status_code == 200


def test_auth_errors_have_hubspot_bodies(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url) as anonymous:
        response = anonymous.get(OWNERS)
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    with sandbox.admin() as admin:
        token = admin.post("/tokens", json={"scopes": ["tickets"]}).json()["access_token"]
        expired = admin.post("/tokens", json={"expires_in": -5}).json()["access_token"]
    with sandbox.client(token) as api:
        denied = api.get("/crm/v3/objects/contacts/1")
    assert denied.status_code == 403
    body = denied.json()
    assert body["category"] == "MISSING_SCOPES"
    assert "crm.objects.contacts.read" in body["errors"][0]["context"]["requiredGranularScopes"]
    with sandbox.client(expired) as api:
        gone = api.get(OWNERS)
    assert gone.status_code == 401 and gone.json()["category"] == "EXPIRED_AUTHENTICATION"
