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
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots; in .gitignore
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
def console_page(
    sandbox: SandboxHandle,
    thread_id: str | None = None,
    *,
    width: int = 1280,
    errors_allowed: bool = False,
) -> Iterator[Any]:
    """Debian's Chromium on the rep console, `width` px wide, with `thread_id` opened when
    given. The page's console errors and uncaught exceptions fail the test (unless allowed)."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(sandbox.url + "/console/")
            if thread_id is not None:
                page.click(f"li.thread[data-thread-id='{thread_id}']")
            yield page
        finally:
            browser.close()
    assert errors_allowed or errors == []


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG under tests/artifacts/ (git ignores it): what the run saw."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_console_reply_and_comment(sandbox: SandboxHandle, receiver: Receiver) -> None:
    from playwright.sync_api import expect

    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "Where is my parcel?").json()["conversationsThreadId"]

    with console_page(sandbox, thread_id) as page:
        expect(page.locator("#messages > li")).to_have_count(1)
        page.fill("#reply-text", "It ships tomorrow.")
        page.click("#send-reply")
        expect(page.locator("#messages > li")).to_have_count(2)
        page.fill("#comment-text", "Customer asked twice already")
        page.click("#add-comment")
        expect(page.locator("#messages > li")).to_have_count(3)

        kinds = page.locator("#messages > li").evaluate_all(
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
        expect(page.locator("#messages > li")).to_have_count(2)
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


def _ticket_for(sandbox: SandboxHandle, thread_id: str, subject: str) -> str:
    """A ticket associated with the thread, as the gateway's handoff makes it."""
    stage = sandbox.info["ticketPipelines"][0]["stages"][0]["id"]
    with sandbox.client() as api:
        ticket = api.post(
            "/crm/objects/2026-03/tickets",
            json={"properties": {"subject": subject, "hs_pipeline_stage": stage}},
        ).json()
        put = api.put(
            f"/crm/v4/objects/tickets/{ticket['id']}/associations/conversation/{thread_id}",
            json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 32}],
        )
        assert put.status_code == 201, put.text
    return str(ticket["id"])


def test_console_updates_itself_titles_threads_and_links_the_ticket(sandbox: SandboxHandle):
    """No reload anywhere: a new thread, its ticket's subject, a new customer mail and the
    integration's comment all appear by themselves; the ticket is one click away; the page
    works at 1280 and at 400 px (screenshots of both in tests/artifacts/)."""
    from playwright.sync_api import expect

    ids = setup_channel(sandbox)
    with console_page(sandbox) as page:
        expect(page.locator("#no-threads")).to_be_visible()
        expect(page.locator("#token-form")).to_be_hidden()  # no token set: not asked for
        thread_id = publish(sandbox, ids, "My parcel never arrived").json()["conversationsThreadId"]
        row = page.locator(f"li.thread[data-thread-id='{thread_id}']")
        expect(row.locator(".subject")).to_have_text("My parcel never arrived")  # first words
        ticket_id = _ticket_for(sandbox, thread_id, "Parcel lost in transit")
        expect(row.locator(".subject")).to_have_text("Parcel lost in transit")
        expect(row.locator(".who")).to_have_text("Carla Customer · carla@customer.test")
        expect(row.locator(".badge")).to_have_text("OPEN")
        expect(row.locator("time")).to_have_text("just now")

        row.click()
        expect(page.locator("#thread-title")).to_have_text("Parcel lost in transit")
        expect(page.locator("#messages > li")).to_have_count(1)
        publish(sandbox, ids, "Any news? It is a birthday present.")
        expect(page.locator("#messages > li")).to_have_count(2)
        with sandbox.client() as api:  # the gateway's internal comment: no user named
            api.post(
                f"/conversations/v3/conversations/threads/{thread_id}/messages",
                json={"type": "COMMENT", "text": "Escalated: the customer asks for a person"},
            )
        comment = page.locator("#messages > li[data-kind='COMMENT']")
        expect(comment).to_have_attribute("data-author", "integration")
        app_id = sandbox.info["appId"]
        expect(comment.locator(".author")).to_have_text(f"Integration (app {app_id})")
        expect(page.locator("#messages > li[data-author='customer'] .author").first).to_have_text(
            "Carla Customer <carla@customer.test>"
        )

        page.click("#thread-ticket")
        expect(page.locator("#ticket-detail")).to_be_visible()
        expect(page.locator("#ticket-title")).to_have_text(
            f"Ticket #{ticket_id} · Parcel lost in transit"
        )
        screenshot(page, "console-desktop")

        page.set_viewport_size({"width": 400, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 400
        expect(page.locator("#lists")).to_be_hidden()  # the open thread takes the screen
        expect(page.locator("#reply-text")).to_be_visible()
        assert page.locator("#reply-text").bounding_box()["width"] <= 400
        screenshot(page, "console-400px-thread")
        page.click("#back")
        expect(row).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 400
        screenshot(page, "console-400px-inbox")


def test_console_toolbar_sends_bold_links_and_numbered_lists(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    """The toolbar writes the markup; the reply goes out as HTML richText and plain text."""
    from playwright.sync_api import expect

    ids = setup_channel(sandbox, webhook_url=receiver.url + "/channel")
    thread_id = publish(sandbox, ids, "How do I return it?").json()["conversationsThreadId"]
    with console_page(sandbox, thread_id, width=400) as page:
        box = page.locator("#reply-text")
        box.fill("Please read the guide")
        box.evaluate("b => b.setSelectionRange(16, 21)")  # "guide"
        page.click("button[data-format='link']")  # [guide](https://) with https:// selected
        page.keyboard.type("https://example.com/returns")
        box.evaluate("b => b.setSelectionRange(0, 6)")  # "Please"
        page.click("button[data-format='bold']")
        box.evaluate("b => b.setSelectionRange(b.value.length, b.value.length)")
        page.click("button[data-format='numbers']")  # "1. item", on its own paragraph
        assert box.input_value() == (
            "**Please** read the [guide](https://example.com/returns)\n\n1. item"
        )
        box.fill(box.input_value().replace("1. item", "1. pack it\n2. post it"))
        expect(page.locator("#reply-preview a")).to_have_attribute(
            "href", "https://example.com/returns"
        )
        page.click("#send-reply")
        expect(page.locator("#messages > li")).to_have_count(2)
        expect(page.locator("#messages > li[data-kind='OUTGOING'] .rich ol li")).to_have_count(2)
    message = json.loads(receiver.wait_for(lambda c: len(c) >= 1)[0]["body"])["message"]
    assert message["richText"] == (
        '<p><strong>Please</strong> read the <a href="https://example.com/returns">guide</a></p>'
        "<ol><li>pack it</li><li>post it</li></ol>"
    )
    assert message["text"] == (
        "Please read the guide (https://example.com/returns)\n\n1. pack it\n2. post it"
    )


def test_console_asks_for_the_admin_token(loop_thread) -> None:
    """With an admin token the console asks for it once, then works as usual."""
    from playwright.sync_api import expect

    from gateway.sandbox import start_sandbox

    server = loop_thread.run(start_sandbox("127.0.0.1", 0, admin_token="console-t0ken-1234"))
    handle = SandboxHandle(server, loop_thread, server.info())
    try:
        ids = setup_channel(handle)
        thread_id = publish(handle, ids, "Hello?").json()["conversationsThreadId"]
        with console_page(handle, errors_allowed=True) as page:  # the 401 is a console error
            expect(page.locator("#token-form")).to_be_visible()
            page.fill("#token", "console-t0ken-1234")
            page.click("#token-form button")
            expect(page.locator(f"li.thread[data-thread-id='{thread_id}']")).to_be_visible()
            expect(page.locator("#token-form")).to_be_hidden()
    finally:
        loop_thread.run(server.close())
