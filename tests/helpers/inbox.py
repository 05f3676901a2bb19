"""A rep's MESSAGE to a conversations-inbox thread, built as HubSpot's own callers must.

"Send a message to a thread" (POST /conversations/v3/conversations/threads/{threadId}/messages,
dated /conversations/conversations/2026-09-beta/threads/{threadId}/messages) requires ``type``,
``text``, ``attachments``, ``recipients``, ``senderActorId``, ``channelId`` and
``channelAccountId``:
https://developers.hubspot.com/docs/api-reference/2026-09-beta/conversations/conversations/messages/create-message
A caller reads them from the thread (GET .../threads/{threadId}: ``originalChannelId``,
``originalChannelAccountId``) and from its latest INCOMING message (the customer's
``deliveryIdentifier`` among its ``senders``). Pure: no pytest, no I/O (bench/ uses it too).
"""

from __future__ import annotations

from typing import Any

# GET .../threads/{threadId}/messages query: the latest 100 messages, newest first
HISTORY_QUERY = {"sort": "-createdAt", "limit": "100"}


def rep_message(
    thread: dict[str, Any],
    messages: list[dict[str, Any]],
    text: str,
    sender_actor_id: str,
    **optional: Any,
) -> dict[str, Any]:
    """The JSON body of a rep's MESSAGE on ``thread`` (a GET thread answer), addressed to the
    senders of the latest INCOMING message in ``messages`` (newest first, as ``HISTORY_QUERY``
    asks).

    ``optional``: more body fields (``richText``, ``subject``, ``attachments`` as
    ``[{type: "FILE", fileId}]``); they override the defaults (``attachments``: ``[]``).
    Raises ``ValueError`` when the thread has no INCOMING message to answer.
    """
    incoming = [
        m for m in messages if m.get("type") == "MESSAGE" and m.get("direction") == "INCOMING"
    ]
    if not incoming:
        raise ValueError(f"thread {thread['id']} has no INCOMING message to answer")
    recipients = [
        {
            "deliveryIdentifiers": [sender["deliveryIdentifier"]],
            "recipientField": "TO",
            **{k: sender[k] for k in ("actorId", "name") if sender.get(k)},
        }
        for sender in incoming[0].get("senders", [])
        if sender.get("deliveryIdentifier")
    ]
    return {
        "type": "MESSAGE",
        "text": text,
        "attachments": [],
        "recipients": recipients,
        "senderActorId": sender_actor_id,
        "channelId": thread["originalChannelId"],
        "channelAccountId": thread["originalChannelAccountId"],
        **optional,
    }
