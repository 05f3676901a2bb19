"""Verifying HubSpot's webhook requests (signature v3) and reading what they announce.

The signed string is method + the URI HubSpot called + raw body + timestamp; behind a proxy
that is the configured public URL, not the local one, so `public_url` is what we hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.hubspot.errors import BadWebhook

MAX_AGE_SECONDS = 300


def verify_v3(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float | None = None,
) -> None:
    if not secret:
        raise BadWebhook("no client secret configured to verify webhooks")
    if not signature or not timestamp:
        raise BadWebhook("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    try:
        ts_ms = int(timestamp)
    except ValueError:
        raise BadWebhook("timestamp is not a number") from None
    now = time.time() if now is None else now
    if abs(now - ts_ms / 1000) > MAX_AGE_SECONDS:
        raise BadWebhook("timestamp older than 5 minutes (or in the future)")
    signed = method.encode() + uri.encode() + body + timestamp.encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature.encode()):
        raise BadWebhook("signature does not match")


@dataclass(frozen=True)
class Announced:
    """One message HubSpot told us about: its id, thread, and the message when included."""

    hubspot_message_id: str
    thread_id: str
    message: dict[str, Any] | None  # channel webhooks carry it; app events do not
    message_type: str = ""


def parse_events(body: bytes) -> list[Announced]:
    """A channel webhook (one object) or app webhook (array of events) -> announced messages."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadWebhook("body is not JSON") from None
    out: list[Announced] = []
    if isinstance(data, dict):
        if data.get("type") != "OUTGOING_CHANNEL_MESSAGE_CREATED":
            return []  # CHANNEL_ACCOUNT_* and others: nothing to deliver
        msg = data.get("message")
        if not isinstance(msg, dict) or not msg.get("id"):
            raise BadWebhook("channel event without a message id")
        out.append(
            Announced(str(msg["id"]), str(msg.get("conversationsThreadId") or ""), msg, "MESSAGE")
        )
    elif isinstance(data, list):
        for ev in data[:100]:
            if not isinstance(ev, dict) or ev.get("subscriptionType") != "conversation.newMessage":
                continue
            if not ev.get("messageId") or not ev.get("objectId"):
                continue
            out.append(
                Announced(
                    str(ev["messageId"]),
                    str(ev["objectId"]),
                    None,
                    str(ev.get("messageType") or ""),
                )
            )
    else:
        raise BadWebhook("body is neither an object nor an array")
    return out
