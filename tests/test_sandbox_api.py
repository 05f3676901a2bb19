"""The sandbox's own behaviour over raw HTTP: OAuth, inbox paging, persistence, files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from click.testing import CliRunner

from gateway.cli.sandbox import sandbox_command
from gateway.sandbox import start_sandbox

import sandbox_fixtures
from sandbox_fixtures import LoopThread, SandboxHandle, publish, rep_reply, setup_channel

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox

THREADS = "/conversations/v3/conversations/threads"


def test_oauth_code_and_refresh(sandbox: SandboxHandle) -> None:
    info = sandbox.info
    with httpx.Client(base_url=sandbox.url) as http:
        approve = http.get(
            "/oauth/authorize",
            params={
                "client_id": info["clientId"],
                "redirect_uri": info["redirectUri"],
                "scope": "tickets conversations.read",
                "state": "xyz",
            },
        )
        assert approve.status_code == 302
        query = parse_qs(urlparse(approve.headers["Location"]).query)
        assert query["state"] == ["xyz"]
        form = {
            "client_id": info["clientId"],
            "client_secret": info["clientSecret"],
            "redirect_uri": info["redirectUri"],
        }
        token = http.post(
            "/oauth/v1/token",
            data={**form, "grant_type": "authorization_code", "code": query["code"][0]},
        ).json()
        assert token["expires_in"] > 0 and token["token_type"] == "bearer"
        refreshed = http.post(
            "/oauth/2026-03/token",
            data={**form, "grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        )
        assert refreshed.status_code == 200
        reused = http.post(
            "/oauth/v1/token",
            data={**form, "grant_type": "authorization_code", "code": query["code"][0]},
        )
        assert reused.status_code == 400 and reused.json()["status"] == "BAD_AUTH_CODE"
    with sandbox.client(refreshed.json()["access_token"]) as api:
        assert api.get("/conversations/v3/conversations/inboxes").status_code == 200
        assert api.get("/crm/v3/owners").status_code == 403


def test_thread_messages_paging_sort_and_ticket_association(sandbox: SandboxHandle) -> None:
    ids = setup_channel(sandbox)
    for n in range(5):
        response = publish(sandbox, ids, f"mail {n}", idem=f"<{n}@c.test>")
    thread_id = response.json()["conversationsThreadId"]
    with sandbox.client() as api:
        newest = api.get(f"{THREADS}/{thread_id}/messages", params={"limit": 2}).json()
        assert [m["text"] for m in newest["results"]] == ["mail 4", "mail 3"]
        texts, after = [], None
        while True:
            params = {"limit": 2, "sort": "createdAt", **({"after": after} if after else {})}
            body = api.get(f"{THREADS}/{thread_id}/messages", params=params).json()
            texts += [m["text"] for m in body["results"]]
            if "next" not in body.get("paging", {}):
                break
            assert body["paging"]["next"]["link"].startswith(sandbox.url)
            after = body["paging"]["next"]["after"]
        assert texts == [f"mail {n}" for n in range(5)]

        stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
        ticket = api.post(
            "/crm/objects/2026-03/tickets",
            json={"properties": {"subject": "s", "hs_pipeline_stage": stage}},
        ).json()
        put = api.put(
            f"/crm/v4/objects/tickets/{ticket['id']}/associations/conversation/{thread_id}",
            json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 32}],
        )
        assert put.status_code == 201, put.text
        thread = api.get(f"{THREADS}/{thread_id}", params={"association": "TICKET"}).json()
        assert thread["threadAssociations"]["associatedTicketId"] == ticket["id"]
        closed = api.patch(f"{THREADS}/{thread_id}", json={"status": "CLOSED"}).json()
        assert closed["status"] == "CLOSED"


def test_state_survives_restart(tmp_path: Path, loop_thread: LoopThread) -> None:
    db = tmp_path / "sandbox.db"
    first = loop_thread.run(start_sandbox("127.0.0.1", 0, db))
    stage = first.info()["ticketPipelines"][0]["stages"][0]["id"]
    token = first.info()["staticToken"]
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        first.url + "/crm/v3/objects/tickets",
        headers=headers,
        json={"properties": {"subject": "persist me", "hs_pipeline_stage": stage}},
    ).json()
    loop_thread.run(first.close())
    second = loop_thread.run(start_sandbox("127.0.0.1", 0, db))
    try:
        read = httpx.get(f"{second.url}/crm/v3/objects/tickets/{created['id']}", headers=headers)
        assert read.json()["properties"]["subject"] == "persist me"
    finally:
        loop_thread.run(second.close())


def test_file_upload_and_attachment(sandbox: SandboxHandle) -> None:
    ids = setup_channel(sandbox)
    with sandbox.client() as api:
        uploaded = api.post(
            "/files/v3/files",
            files={"file": ("log.txt", b"hello", "text/plain")},
            data={"options": '{"access": "PRIVATE"}', "folderPath": "/mail"},
        )
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["id"]
        assert httpx.get(uploaded.json()["url"]).content == b"hello"
        thread_id = publish(sandbox, ids, "see attached").json()["conversationsThreadId"]
        reply = rep_reply(
            sandbox, thread_id, "here", attachments=[{"type": "FILE", "fileId": file_id}]
        ).json()
        assert reply["attachments"][0]["fileId"] == file_id
        assert httpx.get(reply["attachments"][0]["url"]).content == b"hello"


def test_cli_help_lists_options() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    assert "--listen" in result.output and "--db" in result.output


def test_contact_read_shows_company_and_deals(sandbox: SandboxHandle) -> None:
    with sandbox.client() as api:
        contact = api.post(
            "/crm/v3/objects/contacts", json={"properties": {"email": "dora@acme.test"}}
        ).json()
        company = api.post(
            "/crm/v3/objects/companies",
            json={
                "properties": {"name": "Acme", "domain": "acme.test"},
                "associations": [
                    {
                        "to": {"id": contact["id"]},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 2}
                        ],
                    }
                ],
            },
        ).json()
        deal = api.post(
            "/crm/objects/2026-03/deals",
            json={
                "properties": {"dealname": "Renewal", "amount": 1200},
                "associations": [
                    {
                        "to": {"id": contact["id"]},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
                        ],
                    }
                ],
            },
        ).json()
        read = api.get(
            "/crm/v3/objects/contacts/dora@acme.test",
            params={"idProperty": "email", "associations": "companies,deals"},
        ).json()
        unknown = api.post("/crm/v3/objects/contacts", json={"properties": {"shoe_size": 9}})
    assert read["associations"]["companies"]["results"] == [
        {"id": company["id"], "type": "contact_to_company"}
    ]
    assert read["associations"]["deals"]["results"][0]["id"] == deal["id"]
    assert deal["properties"]["amount"] == "1200"
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
