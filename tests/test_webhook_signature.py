"""Webhook signature v3 exactly as HubSpot specifies it, checked against HubSpot's own client.

HubSpot's rule ("Validate the v3 request signature",
https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation):
in the request URI decode %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B (and nothing else),
then HMAC-SHA256(client secret, method + URI + body + timestamp), base64. The independent
reference is `hubspot-api-client`'s `hubspot.utils.signature.Signature`, which signs the URI it is
given: every case below gives it the URI decoded by hand, per HubSpot's table, never by the
gateway's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time

import pytest
from hubspot.utils.signature import Signature

from gateway.config import Secret, Settings
from gateway.hubspot.errors import BadWebhook
from gateway.hubspot.webhooks import parse_events, signed_uri, verify_v3
from gateway.service import Gateway

from conftest import running

SECRET = "8f3c2a9e-5d1b-4c7a-9e2f-0b6d4a1c3e5f"
BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":7}]'

# (public_url, path and query as the gateway receives them, the URI HubSpot signs: decoded by
# hand with HubSpot's table). A public_url with a path is a reverse proxy that strips it.
CASES = [
    pytest.param(
        "https://gw.example.com",
        "/hubspot/webhook?src=hs%3Aapp%2Fv3&who=rep%40example.com",
        "https://gw.example.com/hubspot/webhook?src=hs:app/v3&who=rep@example.com",
        id="colon-slash-at-in-query",
    ),
    pytest.param(
        "https://gw.example.com",
        "/hubspot/webhook?x=%21%24%27%28%29%2A%2C%3B%3F",
        "https://gw.example.com/hubspot/webhook?x=!$'()*,;?",
        id="every-other-listed-character",
    ),
    pytest.param(
        "https://gw.example.com",
        "/hubspot/webhook?q=two%20words&plus=a%2Bb&pct=100%25&eq=%3D&amp=%26",
        "https://gw.example.com/hubspot/webhook?q=two%20words&plus=a%2Bb&pct=100%25&eq=%3D&amp=%26",
        id="space-and-unlisted-escapes-stay",
    ),
    pytest.param(
        "https://gw.example.com",
        "/hubspot/webhook?a=%253A&b=%3a",
        "https://gw.example.com/hubspot/webhook?a=%253A&b=%3a",
        id="no-double-decoding-lower-case-stays",
    ),
    pytest.param(
        "https://gw.example.com/mail%3Agw%40x%20y/",
        "/hubspot/webhook?z=2&a=1",
        "https://gw.example.com/mail:gw@x%20y/hubspot/webhook?z=2&a=1",
        id="escapes-in-the-path-query-order-kept",
    ),
    pytest.param(
        "https://gw.example.com/sùpport",
        "/hubspot/webhook?name=Zo%C3%AB%2C%20Ana",
        "https://gw.example.com/sùpport/hubspot/webhook?name=Zo%C3%AB,%20Ana",
        id="non-ascii-path",
    ),
]


def hubspot_signs(uri: str, body: bytes, ts: str, method: str = "POST") -> str:
    """What HubSpot puts in X-HubSpot-Signature-v3, computed by HubSpot's official client."""
    return Signature.get_signature(
        SECRET, body.decode(), "v3", http_uri=uri, http_method=method, timestamp=ts
    )


def now_ms() -> str:
    return str(int(time.time() * 1000))


@pytest.mark.parametrize(("public_url", "received", "decoded"), CASES)
def test_signed_uri_is_hubspots_decoding(public_url: str, received: str, decoded: str):
    assert signed_uri(public_url, received) == decoded


@pytest.mark.parametrize(("public_url", "received", "decoded"), CASES)
def test_hubspot_api_client_signature_verifies(public_url: str, received: str, decoded: str):
    ts = now_ms()
    sig = hubspot_signs(decoded, BODY, ts)
    assert Signature.is_valid(sig, SECRET, BODY.decode(), decoded, "POST", "v3", ts)
    verify_v3(
        secret=SECRET,
        method="POST",
        uri=signed_uri(public_url, received),
        body=BODY,
        signature=sig,
        timestamp=ts,
    )
    if decoded != public_url.rstrip("/") + received:  # hashing the raw URI (the old bug) fails
        with pytest.raises(BadWebhook, match="does not match"):
            verify_v3(
                secret=SECRET,
                method="POST",
                uri=public_url.rstrip("/") + received,
                body=BODY,
                signature=sig,
                timestamp=ts,
            )


@pytest.mark.parametrize(
    ("signature", "timestamp", "why"),
    [
        ("é" * 43 + "=", None, "base64"),
        ("A\udcff" + "A" * 41 + "=", None, "base64"),  # undecodable bytes, as aiohttp hands them
        ("A" * 4000, None, "base64"),
        (None, "١٧٠٠٠٠٠٠٠٠٠٠٠", "epoch milliseconds"),  # Arabic-Indic digits: int() takes them
        (None, "9" * 4000, "epoch milliseconds"),  # int() then float: OverflowError
        (None, "9" * 5000, "epoch milliseconds"),  # past int()'s digit limit: ValueError
        (None, "-1700000000000", "epoch milliseconds"),
    ],
)
def test_malformed_headers_are_refused_without_echo(signature, timestamp, why):
    ts = now_ms()
    uri = "https://gw.example.com/hubspot/webhook"
    with pytest.raises(BadWebhook, match=why) as refused:
        verify_v3(
            secret=SECRET,
            method="POST",
            uri=uri,
            body=BODY,
            signature=signature if signature is not None else hubspot_signs(uri, BODY, ts),
            timestamp=timestamp if timestamp is not None else ts,
        )
    assert str(signature or timestamp)[:20] not in str(refused.value)


def test_deeply_nested_body_is_not_json_to_us():
    with pytest.raises(BadWebhook, match="not JSON"):
        parse_events(b"[" * 100_000 + b"]" * 100_000)


# -- over HTTP, to a running gateway ---------------------------------------------------------


@pytest.fixture
async def gw(settings: Settings):
    """A live-mode gateway (HubSpot unreachable: nothing here may call it) behind a proxy at a
    public URL with escapes and a non-ASCII character in its path."""
    s = dataclasses.replace(
        settings,
        http=dataclasses.replace(settings.http, public_url="https://gw.example.com/sùpport%3Ax"),
        hubspot=dataclasses.replace(
            settings.hubspot,
            mode="live",
            base_url="http://127.0.0.1:9",
            client_secret=Secret(SECRET),
        ),
        worker=dataclasses.replace(settings.worker, parse_processes=0),
    )
    async with running(s) as gateway:
        yield gateway


async def post_raw(gw: Gateway, target: str, headers: dict[str, bytes], body: bytes) -> int:
    """POST with the request line and header bytes exactly as given (no client re-encoding)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    head = f"POST {target} HTTP/1.1\r\nHost: gw.example.com\r\n".encode()
    for name, value in {
        "Content-Type": b"application/json",
        "Content-Length": str(len(body)).encode(),
        "Connection": b"close",
        **headers,
    }.items():
        head += name.encode() + b": " + value + b"\r\n"
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


def signed_headers(uri: str, body: bytes) -> dict[str, bytes]:
    ts = now_ms()
    return {
        "X-HubSpot-Signature-v3": hubspot_signs(uri, body, ts).encode(),
        "X-HubSpot-Request-Timestamp": ts.encode(),
    }


# a channel event that announces nothing to deliver: only the signature decides the answer
EVENT = json.dumps({"type": "CHANNEL_ACCOUNT_CREATED", "portalId": 1}).encode()
TARGET = "/hubspot/webhook?src=hs%3Aapp%2Fv3&x=%28a%29%2C%20b%40c"
HUBSPOT_URI = "https://gw.example.com/sùpport:x/hubspot/webhook?src=hs:app/v3&x=(a),%20b@c"


async def test_gateway_accepts_what_hubspot_signs_and_nothing_else(gw: Gateway):
    assert await post_raw(gw, TARGET, signed_headers(HUBSPOT_URI, EVENT), EVENT) == 204
    assert gw.webstate.counters["webhook_accepted"] == 1
    # the signature over any other reading of the URI is refused
    raw = "https://gw.example.com/sùpport%3Ax" + TARGET
    fully_decoded = HUBSPOT_URI.replace("%20", " ")
    local = f"http://127.0.0.1:{gw.http_port}" + TARGET
    for uri in (raw, fully_decoded, local):
        assert await post_raw(gw, TARGET, signed_headers(uri, EVENT), EVENT) == 401
    assert gw.webstate.counters["webhook_rejected"] == 3
    assert gw.webstate.counters["webhook_accepted"] == 1


async def test_bad_headers_and_bodies_are_an_ordinary_401(gw: Gateway, caplog):
    caplog.set_level(logging.WARNING)
    good = signed_headers(HUBSPOT_URI, EVENT)
    ts = good["X-HubSpot-Request-Timestamp"]
    deep = b"[" * 100_000 + b"]" * 100_000
    bad = [
        ({"X-HubSpot-Signature-v3": "é".encode() * 43 + b"=", "X-HubSpot-Request-Timestamp": ts}),
        ({"X-HubSpot-Signature-v3": b"\xff\xfe" * 20 + b"AAA=", "X-HubSpot-Request-Timestamp": ts}),
        ({"X-HubSpot-Signature-v3": b"A" * 4000, "X-HubSpot-Request-Timestamp": ts}),
        (good | {"X-HubSpot-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠٠٠٠".encode()}),
        (good | {"X-HubSpot-Request-Timestamp": b"9" * 4000}),
        (good | {"X-HubSpot-Request-Timestamp": b"\xff" * 13}),
    ]
    for headers in bad:
        assert await post_raw(gw, TARGET, headers, EVENT) == 401
    # a body HubSpot never sends, correctly signed: still a 401, not a RecursionError
    assert await post_raw(gw, TARGET, signed_headers(HUBSPOT_URI, deep), deep) == 401
    assert gw.webstate.counters["webhook_rejected"] == len(bad) + 1
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == len(bad) + 1
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in refused)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # and the endpoint still takes a good one
    assert await post_raw(gw, TARGET, signed_headers(HUBSPOT_URI, EVENT), EVENT) == 204
