"""HubSpot's official hubspot-sdk (alpha), unchanged, against the sandbox: custom channels."""

from __future__ import annotations

import hubspot_sdk
import pytest
from hubspot_sdk import HubSpot

import sandbox_fixtures
from sandbox_fixtures import SandboxHandle

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox

EMAIL = "HS_EMAIL_ADDRESS"


def test_register_channel_account_publish_and_status(sandbox: SandboxHandle) -> None:
    info = sandbox.info
    dev = HubSpot(developer_api_key=info["developerApiKey"], base_url=sandbox.url, max_retries=0)
    channel = dev.conversations.custom_channels.create(
        name="Email gateway",
        webhook_url="http://127.0.0.1:9/hook",
        capabilities={
            "deliveryIdentifierTypes": [EMAIL],
            "threadingModel": "INTEGRATION_THREAD_ID",
            "allowOutgoingMessages": True,
        },
        extra_query={"appId": info["appId"]},
    )
    assert [
        c.id for c in dev.conversations.custom_channels.list(extra_query={"appId": info["appId"]})
    ] == [channel.id]

    with pytest.raises(hubspot_sdk.BadRequestError) as bad:
        dev.conversations.custom_channels.update(
            channel.id,
            capabilities={"deliveryIdentifierTypes": [{"type": EMAIL}]},
            name="Email gateway",
            webhook_url="http://127.0.0.1:9/hook",
            channel_description="",
            channel_logo_url="",
            channel_account_connection_redirect_url="",
            extra_query={"appId": info["appId"]},
        )
    assert "INVALID_CHANNEL_CAPABILITY_VALUES" in str(bad.value.body)

    api = HubSpot(access_token=info["staticToken"], base_url=sandbox.url, max_retries=0)
    account = api.conversations.custom_channels.channel_accounts.create(
        channel.id,
        name="support@example.com",
        inbox_id=info["inboxes"][0]["id"],
        authorized=True,
        delivery_identifier={"type": EMAIL, "value": "support@example.com"},
    )
    assert account.inbox_id == info["inboxes"][0]["id"]

    def send(idem: str, text: str):
        return api.conversations.custom_channels.messages.create(
            channel.id,
            channel_account_id=account.id,
            message_direction="INCOMING",
            text=text,
            timestamp="2026-11-25T10:00:00Z",
            attachments=[],
            integration_thread_id="session-7",
            integration_idempotency_id=idem,
            senders=[
                {"name": "Carla", "deliveryIdentifier": {"type": EMAIL, "value": "carla@c.test"}}
            ],
            recipients=[{"deliveryIdentifier": {"type": EMAIL, "value": "support@example.com"}}],
        )

    first = send("<m1@c.test>", "hello")
    second = send("<m2@c.test>", "more")
    again = send("<m1@c.test>", "hello")
    assert first.conversations_thread_id == second.conversations_thread_id
    assert again.id == first.id

    updated = api.conversations.custom_channels.messages.update(
        first.id,
        channel_id=int(channel.id),
        status_type="FAILED",
        error_message="550 5.1.1 mailbox unavailable",
    )
    assert updated.status is not None and updated.status.status_type == "FAILED"

    with sandbox.client() as http:
        thread_id = first.conversations_thread_id
        msgs = http.get(f"/conversations/v3/conversations/threads/{thread_id}/messages").json()
    assert len(msgs["results"]) == 2
    failed = next(m for m in msgs["results"] if m["id"] == first.id)
    assert failed["status"] == {
        "statusType": "FAILED",
        "failureDetails": {"errorMessage": "550 5.1.1 mailbox unavailable"},
    }
