"""Only HubSpot's files are fetched (issue 16 item 5): a rep's attachment comes by file id
through HubSpot's Files API, never from a URL in a webhook body, and a download goes only to
HubSpot's hosts (here: the sandbox's own origin), without following redirects elsewhere.

The attack runs over HTTP as it did when it worked: a signed channel webhook whose attachment
`url` points at another local server; the gateway must not request it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aiohttp
import hubspot_sdk
import pytest
from aiohttp import web
from test_replies import AGENT, _signed, handed_off_conversation, reply_settings, rgw

from gateway.hubspot.client import HubSpotClient, file_host_refusal
from gateway.hubspot.errors import HubSpotPermanentError
from gateway.service import Gateway

import sandbox_fixtures
from conftest import wait_for
from helpers.waiting import wait_idle
from hubspot_helpers import admin, api, outbox, rep_replies
from sandbox_fixtures import SandboxHandle

__all__ = ["reply_settings", "rgw"]  # fixtures of test_replies used here

loop_thread = sandbox_fixtures.loop_thread
sandbox = sandbox_fixtures.sandbox


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request: (base URL, paths requested)."""
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path.startswith("/redirect"):
            raise web.HTTPFound(request.query["to"])
        return web.json_response({"status": "private", "secret": "do not mail me"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


async def _upload(gw: Gateway, content: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("file", content, filename="invoice.pdf", content_type="application/pdf")
    form.add_field("options", json.dumps({"access": "PRIVATE"}))
    form.add_field("folderPath", "/replies")
    return str((await api(gw, "POST", "/files/v3/files", data=form))["id"])


async def _post_channel_event(gw: Gateway, message: dict) -> int:
    """A channel webhook signed with the sandbox's (public) secret, as an attacker can."""
    url = gw.settings.http.public_url + "/hubspot/channel-webhook"
    event = {
        "type": "OUTGOING_CHANNEL_MESSAGE_CREATED",
        "portalId": 1,
        "channelId": "x",
        "channelIntegrationThreadIds": [],
        "message": message,
    }
    body = json.dumps(event).encode()
    headers = _signed(gw.sandbox.info()["clientSecret"], url, body)
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        return r.status


async def test_webhook_attachment_url_is_never_fetched(rgw: Gateway, canary: tuple[str, list[str]]):
    base, hits = canary
    h = await handed_off_conversation(rgw)
    nowhere = "http://127.0.0.1:9/nowhere"  # the sandbox's own webhooks go nowhere
    await admin(rgw, "PUT", "/webhook-target", json={"url": nowhere})
    channels = rgw.sandbox.state.data["channels"]
    channels[next(iter(channels))]["webhookUrl"] = nowhere
    content = b"%PDF-1.4 the real invoice\n" + bytes(range(256)) * 8
    file_id = await _upload(rgw, content)
    msg = await rep_replies(
        rgw, h["thread_id"], "Invoice attached.", AGENT,
        attachments=[{"type": "FILE", "fileId": file_id}],
    )  # fmt: skip
    message = {k: v for k, v in msg.items() if k not in ("status", "client")}
    status_url = rgw.settings.http.public_url + "/status"
    # the real file id, but a url of the attacker's choosing: the file comes by its id
    message["attachments"] = [
        {**message["attachments"][0], "url": base + "/status.json", "name": "status.json"}
    ]
    assert await _post_channel_event(rgw, message) == 204
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the reply with its file")
    (part,) = list(outbox(rgw)[0].iter_attachments())
    assert part.get_content() == content
    assert hits == []

    # a second rep message whose attachment is no HubSpot file at all: nothing fetched,
    # nothing mailed, the rep's message FAILED with the reason
    msg2 = await rep_replies(rgw, h["thread_id"], "Here is the status.", AGENT)
    message2 = {k: v for k, v in msg2.items() if k not in ("status", "client")}
    message2["attachments"] = [
        {"type": "FILE", "fileId": "../../status", "url": status_url, "name": "status.json"},
    ]
    assert await _post_channel_event(rgw, message2) == 204

    async def failed() -> bool:
        m = await api(
            rgw,
            "GET",
            f"/conversations/v3/conversations/threads/{h['thread_id']}/messages/{msg2['id']}",
        )
        return (m.get("status") or {}).get("statusType") == "FAILED"

    await wait_for(failed, 15, "FAILED on the message with a forged attachment")
    await wait_idle(rgw)
    assert len(outbox(rgw)) == 1 and hits == []


async def test_download_goes_only_to_hubspot_hosts(canary: tuple[str, list[str]]):
    base, hits = canary
    async with HubSpotClient(base, token=_no_token) as client:  # the canary plays HubSpot
        assert json.loads(await client.download(base + "/file", limit=1000))["status"]
        # a redirect to another origin (here: another port) is refused before it is followed
        with pytest.raises(HubSpotPermanentError, match="not one of HubSpot's file hosts"):
            await client.download(f"{base}/redirect?to=http://127.0.0.1:9/x", limit=1000)
        with pytest.raises(HubSpotPermanentError, match="413"):
            await client.download(base + "/big", limit=10)
    assert hits == ["/file", "/redirect", "/big"]
    # live mode: https on HubSpot's hosts only
    live = "https://api.hubapi.com"
    assert file_host_refusal("https://f.hubspotusercontent-na1.net/hubfs/1/a.pdf", live) == ""
    assert file_host_refusal("https://api-eu1.hubapi.com/filemanager/a", live) == ""
    for bad in (
        "http://f.hubspotusercontent-na1.net/a.pdf",  # not https
        "https://hubspot.com.evil.test/a.pdf",
        "https://evilhubspot.com/a.pdf",
        "https://169.254.169.254/latest/meta-data",
        "https://user:pw@api.hubapi.com/a",
        "file:///etc/passwd",
        "/relative/path",
    ):
        assert file_host_refusal(bad, live), bad


async def _no_token(force: bool) -> str:
    return "unused"


def test_signed_url_as_hubspot_sdk_reads_it(sandbox: SandboxHandle) -> None:
    """GET .../files/{id}/signed-url answers hubspot-sdk's SignedURL (strict validation): a
    URL that works until expiresAt, refused once altered; bad parameters are a 400."""
    import httpx

    api_client = hubspot_sdk.HubSpot(
        access_token=sandbox.info["staticToken"],
        base_url=sandbox.url,
        max_retries=0,
        _strict_response_validation=True,
    )
    up = api_client.files.file_assets.upload(
        file=("a.txt", b"hello", "text/plain"),
        folder_path="/mail-gateway",
        options='{"access": "PRIVATE"}',
    )
    assert up.id is not None
    signed = api_client.files.file_assets.get_signed_url(up.id, expiration_seconds=60)
    assert signed.size == 5 and signed.name == "a" and signed.extension == "txt"
    assert 0 < (signed.expires_at.timestamp() - time.time()) <= 61
    assert httpx.get(signed.url).content == b"hello"
    assert httpx.get(signed.url.replace("signature=", "signature=0")).status_code == 403
    with pytest.raises(hubspot_sdk.BadRequestError):
        api_client.files.file_assets.get_signed_url(up.id, expiration_seconds=10**6)
    with pytest.raises(hubspot_sdk.BadRequestError):
        api_client.files.file_assets.get_signed_url(up.id, size="huge")  # type: ignore[arg-type]
