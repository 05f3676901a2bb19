"""Fixtures for the sandbox tests: the sandbox and a webhook receiver on free ports.

Both run on an event loop in a background thread, so the tests can drive them with HubSpot's
blocking official clients (and Playwright's sync API) over real HTTP, without mocks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from gateway.sandbox import SandboxServer, start_sandbox

from helpers.inbox import HISTORY_QUERY, rep_message

T = TypeVar("T")
INBOX_V3 = "/conversations/v3/conversations"


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Receiver:
    """Captures webhook POSTs; answers 500 to the first ``fail_first`` of them."""

    url: str = ""
    fail_first: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {
                "url": str(request.url),
                "headers": dict(request.headers),
                "body": await request.text(),
                "path": request.path,
            }
        )
        if len(self.calls) <= self.fail_first:
            return web.Response(status=500, text="receiver failing on purpose")
        return web.Response(status=204)

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.calls):
                return self.calls
            time.sleep(0.02)
        raise AssertionError(f"receiver never saw the expected calls: {self.calls}")


async def _start_receiver(receiver: Receiver) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    receiver.runner = web.AppRunner(app)
    await receiver.runner.setup()
    site = web.TCPSite(receiver.runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{receiver.runner.addresses[0][1]}"


@dataclass
class SandboxHandle:
    """The running sandbox plus helpers the tests share."""

    server: SandboxServer
    loop: LoopThread
    info: dict[str, Any]

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, token: str | None = None) -> httpx.Client:
        token = token or self.info["staticToken"]
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/_sandbox", timeout=10)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture
def sandbox(loop_thread: LoopThread) -> Iterator[SandboxHandle]:
    server = loop_thread.run(
        start_sandbox("127.0.0.1", 0, webhook_retry_scale=0.001, webhook_batch_delay=0.05)
    )
    yield SandboxHandle(server, loop_thread, server.info())
    loop_thread.run(server.close())


@pytest.fixture
def receiver(loop_thread: LoopThread) -> Iterator[Receiver]:
    rec = Receiver()
    loop_thread.run(_start_receiver(rec))
    yield rec
    assert rec.runner is not None
    loop_thread.run(rec.runner.cleanup())


def setup_channel(sb: SandboxHandle, webhook_url: str | None = None) -> dict[str, str]:
    """Register a channel and an account the way the gateway's setup does (raw HTTP)."""
    info = sb.info
    with httpx.Client(base_url=sb.url, timeout=10) as http:
        channel = http.post(
            "/conversations/v3/custom-channels",
            params={"hapikey": info["developerApiKey"], "appId": info["appId"]},
            json={
                "name": "Email gateway",
                "webhookUrl": webhook_url,
                "capabilities": {
                    "deliveryIdentifierTypes": ["HS_EMAIL_ADDRESS"],
                    "threadingModel": "INTEGRATION_THREAD_ID",
                    "allowOutgoingMessages": True,
                    "richText": ["HYPERLINK", "BOLD"],
                },
            },
        ).json()
    with sb.client() as api:
        account = api.post(
            f"/conversations/v3/custom-channels/{channel['id']}/channel-accounts",
            json={
                "name": "support@example.com",
                "inboxId": info["inboxes"][0]["id"],
                "authorized": True,
                "deliveryIdentifier": {"type": "HS_EMAIL_ADDRESS", "value": "support@example.com"},
            },
        ).json()
    return {"channel_id": channel["id"], "account_id": account["id"]}


def rep_body(
    sb: SandboxHandle, thread_id: str, text: str, base: str = INBOX_V3, **optional: Any
) -> dict[str, Any]:
    """A rep's (A-301) MESSAGE body, read from the thread as HubSpot's own callers must (GET
    the thread and its history; ``helpers.inbox.rep_message``); ``base``: the inbox API root
    (numbered or dated); ``optional``: richText, subject, attachments."""
    with sb.client() as api:
        thread = api.get(f"{base}/threads/{thread_id}").json()
        history = api.get(f"{base}/threads/{thread_id}/messages", params=HISTORY_QUERY).json()
    return rep_message(thread, history["results"], text, "A-301", **optional)


def rep_reply(
    sb: SandboxHandle, thread_id: str, text: str, base: str = INBOX_V3, **optional: Any
) -> httpx.Response:
    """POST the MESSAGE ``rep_body`` builds; the sandbox's answer (201 and the message)."""
    body = rep_body(sb, thread_id, text, base, **optional)
    with sb.client() as api:
        return api.post(f"{base}/threads/{thread_id}/messages", json=body)


def publish(
    sb: SandboxHandle,
    ids: dict[str, str],
    text: str,
    thread: str = "session-1",
    idem: str | None = None,
) -> httpx.Response:
    """Publish an incoming customer mail into the inbox."""
    with sb.client() as api:
        return api.post(
            f"/conversations/v3/custom-channels/{ids['channel_id']}/messages",
            json={
                "type": "MESSAGE",
                "messageDirection": "INCOMING",
                "text": text,
                "channelAccountId": ids["account_id"],
                "integrationThreadId": thread,
                "integrationIdempotencyId": idem or f"<{time.monotonic_ns()}@customer.test>",
                "timestamp": "2026-11-25T10:00:00Z",
                "senders": [
                    {
                        "name": "Carla Customer",
                        "deliveryIdentifier": {
                            "type": "HS_EMAIL_ADDRESS",
                            "value": "carla@customer.test",
                        },
                    }
                ],
                "recipients": [
                    {
                        "deliveryIdentifier": {
                            "type": "HS_EMAIL_ADDRESS",
                            "value": "support@example.com",
                        }
                    }
                ],
                "attachments": [],
            },
        )
