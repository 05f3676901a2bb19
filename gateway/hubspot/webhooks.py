"""Verifying HubSpot's webhook requests (signature v3) and reading what they announce.

Signature v3, as HubSpot specifies it ("Validate the v3 request signature",
https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation):
reject a timestamp (X-HubSpot-Request-Timestamp, epoch milliseconds) older than 5 minutes; in the
request URI decode the percent-encoded characters of HubSpot's fixed list (URI_DECODED) and no
others; HMAC-SHA256, keyed with the app's client secret, over the UTF-8 string
method + URI + body + timestamp; base64 of the digest is X-HubSpot-Signature-v3.

The URI is the one HubSpot called: behind a reverse proxy that is the configured `public_url`
(scheme, host and any path prefix the proxy strips; the gateway's own routes are fixed) followed
by the request's path and query exactly as they arrived (`signed_uri`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from gateway.hubspot.errors import BadWebhook

MAX_AGE_SECONDS = 300  # HubSpot: "older than 5 minutes"; a timestamp this far ahead is refused too

# HubSpot's table of percent-encoded characters to decode in the signed URI, exactly as
# published (upper-case hex); every other escape (%20, %25, %C3%A9, lower-case %3a ...) stays.
URI_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_DECODE = re.compile("|".join(URI_DECODED))  # one left-to-right pass: no escape decoded twice

# What HubSpot sends: the base64 of a 32-byte HMAC-SHA256, and epoch milliseconds (13 digits
# today; 15 allows for the next few thousand years). Anything else is refused before use.
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def signed_uri(public_url: str, raw_path_qs: str) -> str:
    """The requestUri HubSpot signed: `public_url` (trailing "/" dropped) + the request's path
    and query as received (aiohttp's `request.raw_path`, not the decoded `path_qs`), with
    HubSpot's listed escapes decoded. Example: ("https://gw.example.com",
    "/hubspot/webhook?a=%3A%20") -> "https://gw.example.com/hubspot/webhook?a=:%20".
    """
    return _DECODE.sub(lambda m: URI_DECODED[m.group(0)], public_url.rstrip("/") + raw_path_qs)


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
    """Accept a webhook request or raise BadWebhook (the caller answers 401).

    `uri` is the URI HubSpot signed, already decoded (`signed_uri`); `body` the raw bytes;
    `signature` and `timestamp` the X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp
    header values as received (None when absent); `now` in epoch seconds. The error's message
    never repeats a header's value.
    """
    if not secret:
        raise BadWebhook("no client secret configured to verify webhooks")
    if not signature or not timestamp:
        raise BadWebhook("missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise BadWebhook("X-HubSpot-Request-Timestamp is not epoch milliseconds")
    if not _SIGNATURE.fullmatch(signature):
        raise BadWebhook("X-HubSpot-Signature-v3 is not a base64 HMAC-SHA256")
    now = time.time() if now is None else now
    if abs(now - int(timestamp) / 1000) > MAX_AGE_SECONDS:
        raise BadWebhook("timestamp older than 5 minutes (or in the future)")
    try:
        signed = method.encode() + uri.encode() + body + timestamp.encode()
    except UnicodeEncodeError:  # undecodable bytes in the request line
        raise BadWebhook("request URI is not UTF-8") from None
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
    except (ValueError, RecursionError):  # not UTF-8 / not JSON / nested too deep to parse
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
