"""Webhook delivery: signed, one object per rep reply, batched app events, retried."""

from __future__ import annotations

import json

from hubspot.utils.signature import Signature

import sandbox_fixtures
from sandbox_fixtures import Receiver, SandboxHandle, publish, rep_reply, setup_channel

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
receiver = sandbox_fixtures.receiver
sandbox = sandbox_fixtures.sandbox


def _agent_reply(sb: SandboxHandle, thread_id: str, text: str, kind: str = "MESSAGE") -> dict:
    if kind == "MESSAGE":
        response = rep_reply(sb, thread_id, text)
    else:
        with sb.client() as api:
            response = api.post(
                f"/conversations/v3/conversations/threads/{thread_id}/messages",
                json={"type": kind, "text": text, "senderActorId": "A-301"},
            )
    assert response.status_code == 201, response.text
    return response.json()


def test_rep_reply_posts_one_signed_channel_webhook(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "My printer is on fire").json()["conversationsThreadId"]
    _agent_reply(sandbox, thread_id, "Internal: call facilities", kind="COMMENT")
    reply = _agent_reply(sandbox, thread_id, "Please unplug it.")

    calls = receiver.wait_for(lambda c: len(c) >= 1)
    channel_calls = [c for c in calls if c["path"] == "/channel"]
    assert len(channel_calls) == 1
    call = channel_calls[0]
    body = json.loads(call["body"])
    assert body["type"] == "OUTGOING_CHANNEL_MESSAGE_CREATED"
    assert body["channelIntegrationThreadIds"] == ["session-1"]
    assert body["message"]["id"] == reply["id"]
    assert body["message"]["direction"] == "OUTGOING"
    assert body["message"]["recipients"][0]["deliveryIdentifier"]["value"] == "carla@customer.test"
    headers = call["headers"]
    assert Signature.is_valid(
        signature=headers["X-HubSpot-Signature-v3"],
        client_secret=sandbox.info["clientSecret"],
        request_body=call["body"],
        http_uri=call["url"],
        http_method="POST",
        signature_version="v3",
        timestamp=headers["X-HubSpot-Request-Timestamp"],
    )


def test_app_events_batched_signed_v1_v3_and_comments_included(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    with sandbox.admin() as admin:
        admin.put("/webhook-target", json={"url": receiver.url + "/app"})
    ids = setup_channel(sandbox)
    thread_id = publish(sandbox, ids, "hello").json()["conversationsThreadId"]
    _agent_reply(sandbox, thread_id, "note to self", kind="COMMENT")

    def new_messages(calls: list) -> list:
        events = [e for c in calls for e in json.loads(c["body"])]
        return [e for e in events if e["subscriptionType"] == "conversation.newMessage"]

    receiver.wait_for(lambda c: len(new_messages(c)) >= 2)
    events = new_messages(receiver.calls)
    assert sorted(e["messageType"] for e in events) == ["COMMENT", "MESSAGE"]
    assert {e["objectId"] for e in events} == {int(thread_id)}
    secret = sandbox.info["clientSecret"]
    for call in receiver.calls:
        assert isinstance(json.loads(call["body"]), list)
        h = call["headers"]
        assert h["X-HubSpot-Signature-Version"] == "v1"
        assert Signature.is_valid(
            signature=h["X-HubSpot-Signature"],
            client_secret=secret,
            request_body=call["body"],
            signature_version="v1",
        )
        assert Signature.is_valid(
            signature=h["X-HubSpot-Signature-v3"],
            client_secret=secret,
            request_body=call["body"],
            http_uri=call["url"],
            signature_version="v3",
            timestamp=h["X-HubSpot-Request-Timestamp"],
        )


def test_failing_receiver_is_retried(sandbox: SandboxHandle, receiver: Receiver) -> None:
    receiver.fail_first = 2
    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "hi").json()["conversationsThreadId"]
    reply = _agent_reply(sandbox, thread_id, "hello back")
    calls = receiver.wait_for(lambda c: len(c) >= 3)
    assert [json.loads(c["body"])["message"]["id"] for c in calls] == [reply["id"]] * 3
    with sandbox.admin() as admin:
        attempts = admin.get("/webhooks", params={"kind": "channel"}).json()["results"]
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(0, False), (1, False), (2, True)]
