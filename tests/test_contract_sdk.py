"""The sandbox against HubSpot's contract, proved with HubSpot's own clients.

``hubspot-sdk`` (official, generated from HubSpot's OpenAPI files) with strict response
validation: every response of the operations the gateway uses must parse into the SDK's
pydantic models. The refusals check the request side: HubSpot's status, category and errors.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import hubspot_sdk
import pytest
from hubspot_sdk import HubSpot

import sandbox_fixtures
from sandbox_fixtures import SandboxHandle

loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox

EMAIL = "HS_EMAIL_ADDRESS"
# what `hubspot setup` creates: a unique text property on tickets
UNIQUE_TICKET_PROPERTY: dict[str, Any] = {
    "name": "gateway_key",
    "label": "Gateway key",
    "type": "string",
    "field_type": "text",
    "group_name": "ticketinformation",
    "has_unique_value": True,
}


def _clients(sb: SandboxHandle) -> tuple[HubSpot, HubSpot]:
    info = sb.info
    common = {"base_url": sb.url, "max_retries": 0, "_strict_response_validation": True}
    dev = HubSpot(developer_api_key=info["developerApiKey"], **common)  # type: ignore[arg-type]
    api = HubSpot(access_token=info["staticToken"], **common)  # type: ignore[arg-type]
    return dev, api


def _channel_and_account(sb: SandboxHandle) -> tuple[str, str]:
    dev, api = _clients(sb)
    app = {"appId": sb.info["appId"]}
    channel = dev.conversations.custom_channels.create(
        name="Email gateway",
        webhook_url="http://127.0.0.1:9/hook",
        capabilities={
            "deliveryIdentifierTypes": [EMAIL],
            "threadingModel": "INTEGRATION_THREAD_ID",
        },
        extra_query=app,
    )
    assert channel.id in [c.id for c in dev.conversations.custom_channels.list(extra_query=app)]
    account = api.conversations.custom_channels.channel_accounts.create(
        channel.id,
        name="support@example.com",
        inbox_id=sb.info["inboxes"][0]["id"],
        authorized=True,
        delivery_identifier={"type": EMAIL, "value": "support@example.com"},
    )
    listed = api.conversations.custom_channels.channel_accounts.list(channel.id)
    assert [a.id for a in listed] == [account.id]
    return channel.id, account.id


def test_channel_operations_pass_strict_validation(sandbox: SandboxHandle) -> None:
    _dev, api = _clients(sandbox)
    channel_id, account_id = _channel_and_account(sandbox)
    contact = api.crm.objects.contacts.create(properties={"email": "carla@c.test"}, associations=[])
    message = api.conversations.custom_channels.messages.create(
        channel_id,
        channel_account_id=account_id,
        message_direction="INCOMING",
        text="hello",
        timestamp="2026-11-25T10:00:00Z",
        attachments=[],
        integration_thread_id="t-1",
        integration_idempotency_id="mail-1",
        associate_with_contact_id=int(contact.id),
        senders=[{"name": "Carla", "deliveryIdentifier": {"type": EMAIL, "value": "carla@c.test"}}],
        recipients=[{"deliveryIdentifier": {"type": EMAIL, "value": "support@example.com"}}],
    )
    got = api.conversations.custom_channels.messages.get(message.id, channel_id=int(channel_id))
    assert got.id == message.id
    api.conversations.custom_channels.messages.update(
        message.id, channel_id=int(channel_id), status_type="READ"
    )


def test_crm_operations_pass_strict_validation(sandbox: SandboxHandle) -> None:
    _dev, api = _clients(sandbox)
    stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
    contact = api.crm.objects.contacts.create(properties={"email": "d@c.test"}, associations=[])
    ticket = api.crm.objects.tickets.create(
        properties={"subject": "Help", "hs_pipeline_stage": stage},
        associations=[
            {
                "to": {"id": contact.id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}],
            }
        ],
    )
    assert api.crm.objects.tickets.get(ticket.id).id == ticket.id
    api.crm.objects.tickets.update(ticket.id, properties={"subject": "Help!"})
    note = api.crm.objects.notes.create(
        properties={"hs_note_body": "<p>t</p>", "hs_timestamp": "1764000000000"},
        associations=[
            {
                "to": {"id": ticket.id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 228}],
            }
        ],
    )
    linked = api.crm.associations.list("notes", object_type="tickets", object_id=ticket.id)
    assert [str(r.to_object_id) for r in linked] == [note.id]


def test_refusals_answer_as_hubspot(sandbox: SandboxHandle) -> None:
    channel_id, account_id = _channel_and_account(sandbox)
    info = sandbox.info
    base = f"/conversations/custom-channels/2026-03/{channel_id}"
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        dev_on_accounts = http.get(
            base + "/channel-accounts",
            params={"hapikey": info["developerApiKey"], "appId": info["appId"]},
        )
    with sandbox.client() as api:
        no_attachments = api.post(
            base + "/messages",
            json={
                "channelAccountId": account_id,
                "messageDirection": "INCOMING",
                "text": "hi",
                "timestamp": "2026-11-25T10:00:00Z",
                "senders": [{"deliveryIdentifier": {"type": EMAIL, "value": "c@c.test"}}],
                "recipients": [{"deliveryIdentifier": {"type": EMAIL, "value": "s@e.test"}}],
                "integrationThreadId": "t",
            },
        )
        bad_enum = api.patch(
            "/conversations/conversations/2026-09-beta/threads/1", json={"status": "DONE"}
        )
    assert dev_on_accounts.status_code == 401
    body = no_attachments.json()
    assert no_attachments.status_code == 400
    assert body["category"] == "VALIDATION_ERROR" and body["correlationId"]
    assert {"code": "REQUIRED_FIELD", "in": "attachments"}.items() <= body["errors"][0].items()
    assert bad_enum.status_code == 400
    assert bad_enum.json()["errors"][0]["code"] == "INVALID_ENUM"


@pytest.mark.parametrize("field", ["channelId", "channelAccountId", "recipients", "attachments"])
@pytest.mark.parametrize(
    "inbox", ["/conversations/v3/conversations", "/conversations/conversations/2026-09-beta"]
)
def test_message_without_a_required_field_is_refused(
    sandbox: SandboxHandle, field: str, inbox: str
) -> None:
    """ "Send a message to a thread" requires channelId, channelAccountId, recipients and
    attachments beside type, text and senderActorId (HubSpot's reference, cited in
    gateway/sandbox/contract.py): without one, 400 VALIDATION_ERROR naming it, and nothing is
    posted; the complete body, built from the thread, is accepted."""
    ids = sandbox_fixtures.setup_channel(sandbox)
    thread_id = sandbox_fixtures.publish(sandbox, ids, "Hi").json()["conversationsThreadId"]
    body = sandbox_fixtures.rep_body(sandbox, thread_id, "Hello", base=inbox)
    anonymous = {**body, "recipients": [{"name": "Alice", "recipientField": "TO"}]}
    path = f"{inbox}/threads/{thread_id}/messages"
    with sandbox.client() as api:
        refused = api.post(path, json={k: v for k, v in body.items() if k != field})
        no_identifier = api.post(path, json=anonymous)
        after_refusals = api.get(path).json()["results"]
        accepted = api.post(path, json=body)
    assert refused.status_code == 400, refused.text
    answer = refused.json()
    assert answer["status"] == "error" and answer["category"] == "VALIDATION_ERROR"
    assert answer["correlationId"] and field in answer["message"]
    assert [(e["code"], e["in"]) for e in answer["errors"]] == [("REQUIRED_FIELD", field)]
    assert no_identifier.status_code == 400
    assert [e["in"] for e in no_identifier.json()["errors"]] == ["recipients.0.deliveryIdentifiers"]
    assert [m["direction"] for m in after_refusals] == ["INCOMING"]
    assert accepted.status_code == 201, accepted.text
    customer = {"type": "HS_EMAIL_ADDRESS", "value": "carla@customer.test"}
    assert [r["deliveryIdentifier"] for r in accepted.json()["recipients"]] == [customer]


def test_numbered_paths_served_and_logged_once(
    sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.sandbox.app")
    with sandbox.client() as api:
        for _ in range(2):
            assert api.get("/crm/v3/owners").status_code == 200
            assert api.get("/crm/owners/2026-03").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 1 and "/crm/v3/owners" in warnings[0]


def test_files_documented_limit_not_web_server_default(
    loop_thread: sandbox_fixtures.LoopThread,
) -> None:
    from gateway.sandbox.app import start_sandbox

    server = loop_thread.run(start_sandbox("127.0.0.1", 0, files_max_bytes=2_000_000))
    try:
        _dev, api = _clients(SandboxHandle(server, loop_thread, server.info()))
        big = api.files.file_assets.upload(
            file=("big.bin", b"x" * 1_500_000, "application/octet-stream"),
            folder_path="/mail-gateway",
            options='{"access": "PRIVATE"}',
        )
        assert big.size == 1_500_000
        with pytest.raises(hubspot_sdk.APIStatusError) as too_big:
            api.files.file_assets.upload(
                file=("huge.bin", b"x" * 2_000_001, "application/octet-stream"),
                folder_path="/mail-gateway",
                options='{"access": "PRIVATE"}',
            )
        assert too_big.value.status_code == 413
        assert too_big.value.body["category"] == "VALIDATION_ERROR"  # type: ignore[index]
        with pytest.raises(hubspot_sdk.BadRequestError) as bad_access:
            api.files.file_assets.upload(
                file=("a.txt", b"a", "text/plain"),
                folder_path="/mail-gateway",
                options='{"access": "SECRET"}',
            )
        assert bad_access.value.body["errors"][0]["in"] == "access"  # type: ignore[index]
        with pytest.raises(hubspot_sdk.BadRequestError):
            api.files.file_assets.upload(
                file=("a.txt", b"a", "text/plain"), options='{"access": "PRIVATE"}'
            )
    finally:
        loop_thread.run(server.close())


def test_setup_reads_pass_strict_validation(sandbox: SandboxHandle) -> None:
    """What `hubspot setup` and `doctor` read: pipelines, owners, the unique ticket property,
    a contact by email; and a property create with a wrong enum is refused."""
    _dev, api = _clients(sandbox)
    pipelines = api.crm.pipelines.list("tickets").results
    assert pipelines and pipelines[0].stages
    assert api.crm.owners.list(limit=1).results
    prop = api.crm.properties.create("tickets", **UNIQUE_TICKET_PROPERTY)
    assert api.crm.properties.get("gateway_key", object_type="tickets").name == prop.name
    api.crm.objects.contacts.create(properties={"email": "e@c.test"}, associations=[])
    found = api.crm.objects.contacts.get("e@c.test", id_property="email")
    assert found.properties["email"] == "e@c.test"
    with sandbox.client() as http:
        wrong = http.post(
            "/crm/properties/2026-03/tickets",
            json={"name": "x", "label": "X", "type": "text", "fieldType": "text", "groupName": "g"},
        )
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0] == {
        "message": wrong.json()["errors"][0]["message"],
        "code": "INVALID_ENUM",
        "in": "type",
    }


def test_every_json_write_route_has_a_contract(sandbox: SandboxHandle) -> None:
    """Each POST/PATCH/PUT with a JSON body is checked against a HubSpot type (a new route
    without one fails here). Bodiless or non-JSON writes are listed by name."""
    from gateway.sandbox.contract import CONTRACTS

    no_json_body = {"v4_default_handler", "upload_handler", "token", "token_introspect"}
    missing = set()
    for route in sandbox.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method not in ("POST", "PATCH", "PUT") or path.startswith(
            ("/_sandbox", "/console")
        ):
            continue
        if route.handler not in CONTRACTS and route.handler.__name__ not in no_json_body:
            missing.add(f"{route.method} {path} ({route.handler.__name__})")
    assert not missing


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{where}[{i}]")]
    return []


def test_inbox_responses_leave_out_fields_without_value(sandbox: SandboxHandle) -> None:
    """The inbox calls the gateway makes (no SDK covers them): no ``null`` anywhere, on the
    numbered and the dated (2026-09-beta) paths alike."""
    ids = sandbox_fixtures.setup_channel(sandbox)
    thread_id = sandbox_fixtures.publish(sandbox, ids, "Hi").json()["conversationsThreadId"]
    inbox = "/conversations/conversations/2026-09-beta"
    with sandbox.client() as api:
        reply = sandbox_fixtures.rep_reply(sandbox, thread_id, "Hello", base=inbox)
        comment = api.post(
            f"/conversations/v3/conversations/threads/{thread_id}/messages",
            json={"type": "COMMENT", "text": "note"},
        )
        answers = {
            "reply": reply,
            "comment": comment,
            "thread": api.get(f"{inbox}/threads/{thread_id}", params={"association": "TICKET"}),
            "messages": api.get(f"{inbox}/threads/{thread_id}/messages"),
            "original": api.get(
                f"{inbox}/threads/{thread_id}/messages/{reply.json()['id']}/original-content"
            ),
            "actor": api.get(f"{inbox}/actors/A-301"),
            "closed": api.patch(f"{inbox}/threads/{thread_id}", json={"status": "CLOSED"}),
        }
    assert {k: r.status_code for k, r in answers.items()} == {
        "reply": 201,
        "comment": 201,
        "thread": 200,
        "messages": 200,
        "original": 200,
        "actor": 200,
        "closed": 200,
    }
    assert {k: _nulls(r.json()) for k, r in answers.items()} == {k: [] for k in answers}
