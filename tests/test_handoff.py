"""The handoff against the HubSpot sandbox over HTTP: what a rep finds, and nothing twice."""

from __future__ import annotations

import asyncio
import collections
import json
import time

import aiohttp
import pytest

from gateway.hubspot.connect import OAUTH_KEY, oauth_token
from gateway.service import Gateway
from gateway.store.hubspot import request_handoff
from gateway.store.queries import kv_get, put_oauth_state

from conftest import make_mail, start_gateway, wait_for, wait_processed
from helpers.waiting import wait_idle
from hubspot_helpers import (
    admin,
    all_objects,
    api,
    conversation_of,
    hand_off,
    send,
    thread_messages,
    wait_handed_off,
)


async def test_one_mail_becomes_contact_ticket_thread_note_and_comment(hub: Gateway):
    await admin(hub, "DELETE", "/requests")
    await send(
        hub, make_mail(sender="Anna Meier <anna@customer.test>", message_id="h1@customer.test"), 1
    )
    conv = await conversation_of(hub, "h1@customer.test")
    h = await hand_off(hub, conv, reason="no confident answer")
    # the HubSpot calls one handoff of a one-message conversation costs: contact create,
    # publish (with associateWithContactId), ticket create, the explicit ticket<->thread
    # association and its check, note, comment. The echo of our own publish (an app webhook
    # event) is known to be ours without a call, so nothing else runs, whenever it arrives.
    await wait_idle(hub)
    calls = (await admin(hub, "GET", "/requests"))["results"]
    print(f"HubSpot calls for one handoff of a one-message conversation: {len(calls)}")
    print("  " + ", ".join(f"{c['method']} {c['path']}" for c in calls))
    assert len(calls) <= 7
    assert [c["method"] for c in calls].count("GET") == 1  # the association's check only

    contacts = [
        c
        for c in await all_objects(hub, "contacts")
        if c["properties"].get("email") == "anna@customer.test"
    ]
    assert len(contacts) == 1 and contacts[0]["id"] == h["contact_id"]
    contact = await api(
        hub,
        "GET",
        f"/crm/v3/objects/contacts/{h['contact_id']}",
        params={"properties": "firstname,lastname"},
    )
    assert contact["properties"]["firstname"] == "Anna"
    assert contact["properties"]["lastname"] == "Meier"

    tickets = await all_objects(hub, "tickets")
    assert len(tickets) == 1 and tickets[0]["id"] == h["ticket_id"]
    ticket = await api(
        hub,
        "GET",
        f"/crm/v3/objects/tickets/{h['ticket_id']}",
        params={"properties": "subject,content,hs_pipeline_stage", "associations": "contacts"},
    )
    assert ticket["properties"]["subject"] == "Help with my order"
    assert "12345" in ticket["properties"]["content"]  # the summary keeps the order number
    assoc = ticket["associations"]["contacts"]["results"]
    assert [a["id"] for a in assoc] == [h["contact_id"]]

    thread = await api(
        hub,
        "GET",
        f"/conversations/v3/conversations/threads/{h['thread_id']}",
        params={"association": "TICKET"},
    )
    assert str(thread["threadAssociations"]["associatedTicketId"]) == h["ticket_id"]

    msgs = await thread_messages(hub, h["thread_id"])
    public = [m for m in msgs if m["type"] == "MESSAGE"]
    comments = [m for m in msgs if m["type"] == "COMMENT"]
    assert len(public) == 1 and "did not arrive" in public[0]["text"]
    assert public[0]["direction"] == "INCOMING"
    assert len(comments) == 1
    assert "no confident answer" in comments[0]["text"]
    assert "Sentiment: " in comments[0]["text"] and "Language: en" in comments[0]["text"]
    assert f"mail-gateway sessions show {conv}" in comments[0]["text"]

    notes = await api(hub, "GET", f"/crm/v4/objects/tickets/{h['ticket_id']}/associations/notes")
    assert len(notes["results"]) == 1
    note = await api(
        hub,
        "GET",
        f"/crm/v3/objects/notes/{notes['results'][0]['toObjectId']}",
        params={"properties": "hs_note_body"},
    )
    assert "did not arrive" in note["properties"]["hs_note_body"]

    status = await hub.store.read(
        lambda db: db.execute("SELECT status FROM conversations WHERE id = ?", [conv]).fetchone()[0]
    )
    assert status == "handed_off"


async def test_same_thread_reply_reuses_thread_and_ticket_new_thread_gets_new_ticket(hub: Gateway):
    await send(hub, make_mail(message_id="r1@customer.test"), 1)
    conv = await conversation_of(hub, "r1@customer.test")
    h = await hand_off(hub, conv)
    await send(
        hub,
        make_mail(
            subject="Re: Help with my order",
            message_id="r2@customer.test",
            in_reply_to="r1@customer.test",
            body="Any news?",
        ),
        2,
    )
    await wait_for(
        lambda: _thread_has(hub, h["thread_id"], "Any news?"), 15, "reply published to the thread"
    )
    assert len(await all_objects(hub, "tickets")) == 1
    public = [m for m in await thread_messages(hub, h["thread_id"]) if m["type"] == "MESSAGE"]
    assert len(public) == 2

    await send(hub, make_mail(subject="A different question", message_id="n1@customer.test"), 3)
    conv2 = await conversation_of(hub, "n1@customer.test")
    assert conv2 != conv
    h2 = await hand_off(hub, conv2)
    assert h2["ticket_id"] != h["ticket_id"] and h2["thread_id"] != h["thread_id"]
    assert h2["contact_id"] == h["contact_id"]
    assert len(await all_objects(hub, "tickets")) == 2


async def _thread_has(hub: Gateway, thread_id: str, text: str) -> bool:
    return any(text in (m.get("text") or "") for m in await thread_messages(hub, thread_id))


async def test_reply_on_closed_ticket_reopens_it(hub: Gateway):
    await send(hub, make_mail(message_id="c1@customer.test"), 1)
    conv = await conversation_of(hub, "c1@customer.test")
    h = await hand_off(hub, conv)
    info = hub.sandbox.info()
    stages = info["ticketPipelines"][0]["stages"]
    closed = next(s["id"] for s in stages if s["ticketState"] == "CLOSED")
    first_open = next(s["id"] for s in stages if s["ticketState"] == "OPEN")
    await api(
        hub,
        "PATCH",
        f"/crm/v3/objects/tickets/{h['ticket_id']}",
        json={"properties": {"hs_pipeline_stage": closed}},
    )
    await send(
        hub,
        make_mail(
            subject="Re: Help with my order",
            message_id="c2@customer.test",
            in_reply_to="c1@customer.test",
            body="It broke again",
        ),
        2,
    )

    async def reopened() -> bool:
        t = await api(
            hub,
            "GET",
            f"/crm/v3/objects/tickets/{h['ticket_id']}",
            params={"properties": "hs_pipeline_stage"},
        )
        return t["properties"]["hs_pipeline_stage"] == first_open

    await wait_for(reopened, 15, "ticket reopened")
    assert len(await all_objects(hub, "tickets")) == 1


@pytest.mark.slow
async def test_faults_still_give_exactly_one_of_everything(hub: Gateway):
    """20% of calls fail (429, 5xx, resets, lost responses, hangs): still one of everything."""
    mids = [f"f{i}@customer.test" for i in range(8)]
    for n, mid in enumerate(mids, 1):
        await send(
            hub,
            make_mail(sender=f"C{n} <c{n}@customer.test>", message_id=mid, subject=f"Question {n}"),
            n,
        )
    hub.hubspot.timeout = 1.0  # a hung call must time out quickly in the test
    for seed, (action, status) in enumerate(
        [("status", 429), ("status", 500), ("status", 503), ("reset", 0), ("lose_response", 0)]
    ):
        await admin(
            hub,
            "POST",
            "/faults",
            json={
                "path": "/crm/*",
                "action": action,
                "status": status or 503,
                "rate": 0.04,
                "seed": seed,
            },
        )
        await admin(
            hub,
            "POST",
            "/faults",
            json={
                "path": "/conversations/*",
                "action": action,
                "status": status or 503,
                "rate": 0.04,
                "seed": 100 + seed,
            },
        )
    await admin(
        hub,
        "POST",
        "/faults",
        json={"path": "/crm/*", "action": "hang", "hang_seconds": 3, "rate": 0.02, "seed": 7},
    )
    convs = [await conversation_of(hub, m) for m in mids]
    for c in convs:
        await hub.store.write(
            lambda db, c=c: request_handoff(db, c, reason="test", trigger="person")
        )
    hub.worker.wake()
    results = [await wait_handed_off(hub, c, within=90) for c in convs]
    fired = sum(f["fired"] for f in (await admin(hub, "GET", "/faults"))["results"])
    await admin(hub, "DELETE", "/faults")
    assert fired > 0

    tickets = await all_objects(hub, "tickets")
    assert len(tickets) == len(convs)
    assert sorted(t["id"] for t in tickets) == sorted(r["ticket_id"] for r in results)
    emails = collections.Counter(
        c["properties"].get("email") for c in await all_objects(hub, "contacts")
    )
    assert all(emails[f"c{n}@customer.test"] == 1 for n in range(1, 9))
    for r in results:
        msgs = await thread_messages(hub, r["thread_id"])
        assert sum(m["type"] == "MESSAGE" for m in msgs) == 1
        assert sum(m["type"] == "COMMENT" for m in msgs) == 1
        notes = await api(
            hub, "GET", f"/crm/v4/objects/tickets/{r['ticket_id']}/associations/notes"
        )
        assert len(notes["results"]) == 1
    dead = await hub.store.read(
        lambda db: db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'dead'").fetchone()[0]
    )
    assert dead == 0


async def test_cli_handoff_and_sessions_show_ids(hub: Gateway, hub_settings, tmp_path):
    from click.testing import CliRunner

    from gateway.cli import cli

    await send(hub, make_mail(message_id="cli-h@customer.test"), 1)
    conv = await conversation_of(hub, "cli-h@customer.test")
    config = str(hub_settings.source)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", config, "handoff", str(conv), "--reason", "VIP"]
    )
    assert result.exit_code == 0, result.output
    hub.worker.wake()
    h = await wait_handed_off(hub, conv)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", config, "sessions", "show", str(conv), "--json"]
    )
    shown = json.loads(result.stdout)
    assert shown["hubspot"]["ticket_id"] == h["ticket_id"]
    assert shown["hubspot"]["state"] == "done"
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", config, "handoff", "999"]
    )
    assert result.exit_code == 1 and "no such session" in result.stderr
    await wait_processed(hub, 1)


async def test_hubspot_setup_cli_is_idempotent(hub: Gateway, hub_settings):
    from click.testing import CliRunner

    from gateway.cli import cli

    from conftest import write_config

    # a config file for the CLI: same state dir and public URL, the running sandbox's port
    port = hub.sandbox.info()["baseUrl"].rsplit(":", 1)[1]
    config = write_config(
        hub_settings.source.parent,
        **{
            'mode = "live"': f'mode = "sandbox"\nsandbox_listen = "127.0.0.1:{port}"',
            '"127.0.0.1:8025"': (
                f'"127.0.0.1:{hub.http_port}"\npublic_url = "{hub.settings.http.public_url}"'
            ),
        },
    )
    first = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(config), "hubspot", "setup", "--json"]
    )
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["changed"] == []  # the daemon set it up at start: nothing left to change
    assert any("custom channel" in line for line in report["found"])
    channels = await api(
        hub,
        "GET",
        "/conversations/v3/custom-channels",
        params={
            "hapikey": hub.sandbox.info()["developerApiKey"],
            "appId": hub.sandbox.info()["appId"],
        },
    )
    assert len(channels["results"]) == 1

    # OAuth: the CLI prints the authorize URL; the daemon's callback stores the tokens
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--config", str(config), "hubspot", "connect", "--no-wait"]
    )
    assert result.exit_code == 0, result.output
    url = next(line for line in result.stdout.splitlines() if line.startswith("http"))
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:  # the sandbox approves at once and redirects to us
            assert r.status == 200, await r.text()
            assert "connected" in await r.text()
    tokens = json.loads(await hub.store.read(lambda db: kv_get(db, OAUTH_KEY)))
    assert tokens["access_token"] and tokens["refresh_token"]
    # and they work: a client on the stored OAuth tokens refreshes and calls HubSpot
    from gateway.hubspot.client import HubSpotClient

    async with HubSpotClient(hub.endpoint.base_url, oauth_token(hub.store, hub.endpoint)) as c:
        assert "results" in await c.get("/crm/v3/owners")
    # a forged callback is refused
    async with aiohttp.ClientSession() as s:
        bad = f"{hub.settings.http.public_url}/hubspot/oauth-callback?code=x&state=forged"
        async with s.get(bad) as r:
            assert r.status == 400
    # the state is single-use: the same authorize URL again (whoever saw it: a code of their
    # own portal, same state) is refused and the stored tokens stay the ones of the connect
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 400 and "unknown OAuth state" in await r.text()
    assert json.loads(await hub.store.read(lambda db: kv_get(db, OAUTH_KEY))) == tokens
    # and short-lived: a state older than 10 minutes is refused even on first use
    await hub.store.write(lambda db: put_oauth_state(db, "old-state", now=time.time() - 601))
    async with aiohttp.ClientSession() as s:
        late = f"{hub.settings.http.public_url}/hubspot/oauth-callback?code=x&state=old-state"
        async with s.get(late) as r:
            assert r.status == 400 and "expired" in await r.text()


@pytest.mark.slow
async def test_burst_of_handoffs_stays_within_the_rate_limit(hub: Gateway):
    """200 handoffs against a 100-calls-per-window sandbox (window scaled from 10 s to 1 s)."""
    await admin(hub, "PATCH", "/limits", json={"burst": 100, "interval_ms": 1000})
    n = 200

    def send_all():
        import smtplib

        with smtplib.SMTP("127.0.0.1", hub.smtp_port, timeout=30) as s:
            for i in range(n):
                raw = make_mail(
                    sender=f"B{i} <b{i}@customer.test>",
                    subject=f"Burst {i}",
                    message_id=f"burst{i}@customer.test",
                )
                s.sendmail(f"b{i}@customer.test", ["support@example.com"], raw)

    await asyncio.to_thread(send_all)
    await wait_processed(hub, n, within=60)
    convs = await hub.store.read(
        lambda db: [r[0] for r in db.execute("SELECT id FROM conversations")]
    )

    def ask(db):
        for c in convs:
            request_handoff(db, c, reason="burst", trigger="person")

    before = hub.hubspot.stats.rate_limited
    started = asyncio.get_running_loop().time()
    await hub.store.write(ask)
    hub.worker.wake()
    for c in convs:
        await wait_handed_off(hub, c, within=120)
    took = asyncio.get_running_loop().time() - started
    limited = hub.hubspot.stats.rate_limited - before
    calls = hub.hubspot.stats.total
    print(f"{n} handoffs: {calls} HubSpot calls in {took:.1f} s, {limited} answered 429")
    failed = await hub.store.read(
        lambda db: db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'dead'").fetchone()[0]
    )
    assert failed == 0
    assert len(await all_objects(hub, "tickets")) == n
    assert limited <= calls * 0.02  # pacing keeps 429s rare


async def test_assistant_escalation_reaches_hubspot_with_reason_sentiment_language(hub_settings):
    import dataclasses

    from conftest import ROOT

    s = dataclasses.replace(
        hub_settings,
        assistant=dataclasses.replace(
            hub_settings.assistant,
            backend="knowledge",
            knowledge_dir=ROOT / "examples" / "knowledge",
            debounce=0.2,
        ),
    )
    gw = await start_gateway(s)
    try:
        await send(
            gw,
            make_mail(
                subject="Broken again",
                message_id="esc1@customer.test",
                body="I want a refund, this is the third time it broke! Terrible, awful service.",
            ),
            1,
        )
        conv = await conversation_of(gw, "esc1@customer.test")
        h = await wait_handed_off(gw, conv)
        comments = [m for m in await thread_messages(gw, h["thread_id"]) if m["type"] == "COMMENT"]
        assert len(comments) == 1
        text = comments[0]["text"]
        assert "refund" in text  # the keyword rule's reason
        assert "negative" in text  # sentiment label
        assert "Language: en" in text
        assert "Triggered by: assistant" in text
        ticket = await api(
            gw, "GET", f"/crm/v3/objects/tickets/{h['ticket_id']}", params={"properties": "content"}
        )
        assert "refund" in ticket["properties"]["content"]  # the summary
    finally:
        await gw.stop(drain_seconds=5)


async def test_daily_limit_pauses_hubspot_work_without_failing_it(hub: Gateway):
    await send(hub, make_mail(message_id="daily@customer.test"), 1)
    conv = await conversation_of(hub, "daily@customer.test")
    await admin(hub, "PATCH", "/limits", json={"daily": 1})
    await hub.store.write(lambda db: request_handoff(db, conv, reason="r", trigger="person"))
    hub.worker.wake()

    async def deferred():
        row = await hub.store.read(
            lambda db: db.execute(
                "SELECT state, attempts, run_after, last_error FROM jobs WHERE kind = 'handoff'"
            ).fetchone()
        )
        return row if row and row[0] == "queued" and row[3] else None

    await wait_for(deferred, 10, "the handoff deferred")
    _state, attempts, run_after, error = await deferred()
    assert attempts == 0  # a pause, not a failed try
    assert run_after > time.time() + 3600 or run_after - time.time() > 60  # until the reset
    assert "daily" in error.lower()


async def test_address_of_a_configured_domain_gets_its_channel_account(hub: Gateway):
    raw = make_mail(to="billing@help.example.org", message_id="dom1@customer.test")

    def go():
        import smtplib

        with smtplib.SMTP("127.0.0.1", hub.smtp_port, timeout=10) as s:
            s.sendmail("alice@customer.test", ["billing@help.example.org"], raw)

    await asyncio.to_thread(go)
    await wait_processed(hub, 1)
    conv = await conversation_of(hub, "dom1@customer.test")
    h = await hand_off(hub, conv)
    msgs = [m for m in await thread_messages(hub, h["thread_id"]) if m["type"] == "MESSAGE"]
    assert len(msgs) == 1
    info = hub.sandbox.info()
    accounts = await api(
        hub,
        "GET",
        f"/conversations/v3/custom-channels/{msgs[0]['channelId']}/channel-accounts",
        params={"hapikey": info["developerApiKey"], "appId": info["appId"]},
    )
    values = [a["deliveryIdentifier"]["value"] for a in accounts["results"]]
    assert sorted(values) == [
        "billing@help.example.org",
        "sales@example.com",
        "support@example.com",
    ]


async def test_customer_attachment_reaches_the_hubspot_thread(hub: Gateway):
    import email.message

    pdf = b"%PDF-1.4 broken router photo\n" + bytes(range(256)) * 20
    m = email.message.EmailMessage()
    m["From"] = "Alice <alice@customer.test>"
    m["To"] = "support@example.com"
    m["Subject"] = "Router broken"
    m["Message-ID"] = "<att1@customer.test>"
    m.set_content("The router is broken, see the attached report.")
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    await send(hub, m.as_bytes(), 1)
    h = await hand_off(hub, await conversation_of(hub, "att1@customer.test"))
    msgs = [x for x in await thread_messages(hub, h["thread_id"]) if x["type"] == "MESSAGE"]
    assert len(msgs) == 1
    files = msgs[0]["attachments"]
    assert [f["name"] for f in files] == ["report.pdf"]
    async with aiohttp.ClientSession() as s:
        async with s.get(files[0]["url"]) as r:
            assert await r.read() == pdf
