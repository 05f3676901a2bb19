"""The rep console in headless Chromium: reply and comment on a thread, see both, close it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox_fixtures
from sandbox_fixtures import Receiver, SandboxHandle, publish, setup_channel

# pytest fixtures shared with the other sandbox test modules
loop_thread = sandbox_fixtures.loop_thread
receiver = sandbox_fixtures.receiver
sandbox = sandbox_fixtures.sandbox

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")


@contextlib.contextmanager
def console_page(sandbox: SandboxHandle, thread_id: str | None = None) -> Iterator[Any]:
    """Debian's Chromium on the rep console, with `thread_id` opened when given."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.goto(sandbox.url + "/console/")
            if thread_id is not None:
                page.click(f"li.thread[data-thread-id='{thread_id}']")
            yield page
        finally:
            browser.close()


def test_console_reply_and_comment(sandbox: SandboxHandle, receiver: Receiver) -> None:
    from playwright.sync_api import expect

    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "Where is my parcel?").json()["conversationsThreadId"]

    with console_page(sandbox, thread_id) as page:
        expect(page.locator("#messages li")).to_have_count(1)
        page.fill("#reply-text", "It ships tomorrow.")
        page.click("#send-reply")
        expect(page.locator("#messages li")).to_have_count(2)
        page.fill("#comment-text", "Customer asked twice already")
        page.click("#add-comment")
        expect(page.locator("#messages li")).to_have_count(3)

        kinds = page.locator("#messages li").evaluate_all(
            "items => items.map(i => [i.dataset.kind, i.querySelector('.text').textContent])"
        )
        assert kinds == [
            ["INCOMING", "Where is my parcel?"],
            ["OUTGOING", "It ships tomorrow."],
            ["COMMENT", "Customer asked twice already"],
        ]
        expect(page.locator("li.message.OUTGOING .status")).to_have_text("delivery: pending")

        page.click("#close-thread")
        expect(page.locator("#thread-status")).to_have_text("CLOSED")

    calls = receiver.wait_for(lambda c: len(c) >= 1)
    assert len(calls) == 1
    assert json.loads(calls[0]["body"])["message"]["text"] == "It ships tomorrow."
    with sandbox.client() as api:
        thread = api.get(f"/conversations/v3/conversations/threads/{thread_id}").json()
    assert thread["status"] == "CLOSED"


def test_console_closes_ticket(sandbox: SandboxHandle) -> None:
    from playwright.sync_api import expect

    stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
    with sandbox.client() as api:
        ticket = api.post(
            "/crm/v3/objects/tickets",
            json={"properties": {"subject": "Broken widget", "hs_pipeline_stage": stage}},
        ).json()
    with console_page(sandbox) as page:
        row = page.locator(f"li.ticket[data-ticket-id='{ticket['id']}']")
        expect(row).to_contain_text("New")
        row.locator("button.close-ticket").click()
        expect(row).to_contain_text("Closed")
    with sandbox.client() as api:
        read = api.get(f"/crm/v3/objects/tickets/{ticket['id']}").json()
    closed = sandbox.info["ticketPipelines"][0]["stages"][-1]["id"]
    assert read["properties"]["hs_pipeline_stage"] == closed


def test_console_sends_rich_text_and_plain_text(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """Paragraphs, bold and a list typed in the console: HTML richText, plain text with the
    blank lines, both in the channel webhook as HubSpot's editor sends them."""
    from playwright.sync_api import expect

    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "Where is my parcel?").json()["conversationsThreadId"]
    typed = "Hello **Carla**,\n\n- one <box>\n- two\n\nThanks"
    with console_page(sandbox, thread_id) as page:
        page.fill("#reply-text", typed)
        page.click("#send-reply")
        expect(page.locator("#messages li")).to_have_count(2)
    calls = receiver.wait_for(lambda c: len(c) >= 1)
    message = json.loads(calls[0]["body"])["message"]
    assert message["text"] == "Hello Carla,\n\n- one <box>\n- two\n\nThanks"
    assert message["richText"] == (
        "<p>Hello <strong>Carla</strong>,</p><ul><li>one &lt;box&gt;</li><li>two</li></ul>"
        "<p>Thanks</p>"
    )


def test_console_api_keeps_text_and_builds_paragraphs(sandbox: SandboxHandle) -> None:
    ids = setup_channel(sandbox)
    thread_id = publish(sandbox, ids, "Hi").json()["conversationsThreadId"]
    api = sandbox.url + f"/_sandbox/console-api/threads/{thread_id}/messages"
    import httpx

    plain = httpx.post(api, json={"kind": "reply", "text": "One\nline\n\nTwo"}).json()
    rich = httpx.post(
        api, json={"kind": "reply", "text": "Bold", "richText": "<p><strong>Bold</strong></p>"}
    ).json()
    bad = httpx.post(api, json={"kind": "reply", "text": "x", "richText": ["no"]})
    assert (plain["text"], plain["richText"]) == (
        "One\nline\n\nTwo",
        "<p>One<br>line</p><p>Two</p>",
    )
    assert (rich["text"], rich["richText"]) == ("Bold", "<p><strong>Bold</strong></p>")
    assert bad.status_code == 400


def test_admin_and_console_apis_need_the_token_when_set(loop_thread) -> None:
    """A sandbox started with an admin token (`[sandbox] allow_public` needs one): its admin
    API and the rep console's API answer 401 without it, 200 with it; HubSpot's own API keeps
    HubSpot's authentication; the console page itself loads (it asks for the token)."""
    import httpx

    from gateway.sandbox import start_sandbox

    token = "sandbox-t0ken-for-tests"
    server = loop_thread.run(start_sandbox("127.0.0.1", 0, admin_token=token))
    try:
        url = server.url
        for path in ("/_sandbox/info", "/_sandbox/console-api/threads", "/_sandbox/requests"):
            assert httpx.get(url + path).status_code == 401, path
            bad = {"Authorization": "Bearer not-it"}
            assert httpx.get(url + path, headers=bad).status_code == 401, path
            good = {"Authorization": f"Bearer {token}"}
            assert httpx.get(url + path, headers=good).status_code == 200, path
        refused = httpx.post(url + "/_sandbox/reset")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        static = server.info()["staticToken"]
        api = httpx.get(
            url + "/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {static}"}
        )
        assert api.status_code == 200
        assert httpx.get(url + "/console/").status_code == 200
    finally:
        loop_thread.run(server.close())
