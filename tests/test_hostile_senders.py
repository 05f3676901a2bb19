"""Who the customer is and who is an outsider, over real SMTP and the sandbox over HTTP.

- Outside senders are visible and powerless (issue 16 item 1): a stranger who replies to a
  Message-ID of the thread is kept and threaded, marked in `sessions show` and in HubSpot (the
  sender shown as outside, one internal comment), never made a participant, never let in by
  the subject token; a colleague the customer put in Cc, and a trusted domain, still are.
- The requester (issue 14 item 3): a web form's mail belongs to its Reply-To person.
- Every mail reaches a person (issue 14 item 5): a sender that does not validate is handed off
  without a contact, the problem in the note and comment; a handoff that cannot proceed shows
  as failed with its error in `sessions show`, `status` and /metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import smtplib
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from test_handoff_contract import _note_body

from gateway.cli import cli
from gateway.config import RelaySettings, SenderSettings, Settings
from gateway.hubspot import api as hs
from gateway.service import Gateway
from gateway.store.hubspot import request_handoff

from conftest import make_mail, running, wait_for, wait_processed
from helpers.waiting import wait_idle
from hubspot_helpers import api, conversation_of, hand_off, outbox, rep_replies, thread_messages

CASES = Path(__file__).resolve().parent / "data" / "cases"  # copies of ../shared/cases


@pytest.fixture
async def hgw(hub_settings: Settings, tmp_path: Path):
    s = dataclasses.replace(
        hub_settings,
        relay=dataclasses.replace(RelaySettings(), mode="capture", capture_dir=tmp_path / "outbox"),
        senders=SenderSettings(trusted_domains=["partner.test"]),
    )
    async with running(s) as gw:
        yield gw


def cli_json(config_path: Path, *args: str) -> dict:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def smtp_send(gw: Gateway, raw: bytes, envelope_from: str, count: int) -> None:
    def go():
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail(envelope_from, ["support@example.com"], raw)

    await asyncio.to_thread(go)
    await wait_processed(gw, count)


async def message_row(gw: Gateway, message_id: str) -> dict:
    return await gw.store.read(
        lambda db: dict(
            zip(
                ("conversation_id", "annotations"),
                db.execute(
                    "SELECT conversation_id, annotations FROM messages WHERE message_id = ?",
                    [message_id],
                ).fetchone(),
                strict=True,
            )
        )
    )


async def mail_from(gw: Gateway, sender: str, mid: str, count: int, **headers: str) -> dict:
    """`sender` mails us over SMTP (make_mail with `headers`); returns the stored row."""
    raw = make_mail(sender=sender, message_id=mid, **headers)
    await smtp_send(gw, raw, sender.rpartition("<")[2].strip(">"), count)
    return await message_row(gw, mid)


async def test_outside_sender_is_visible_and_powerless(hgw: Gateway, config_path: Path):
    alice = make_mail(
        message_id="h1@customer.test",
        extra_headers="Cc: Bob Colleague <bob@customer.test>",
    )
    await smtp_send(hgw, alice, "alice@customer.test", 1)
    conv = await conversation_of(hgw, "h1@customer.test")
    h = await hand_off(hgw, conv)
    await rep_replies(hgw, h["thread_id"], "We are looking into it.", "A-301")
    await wait_for(lambda: len(outbox(hgw)) == 1, 15, "the rep's reply in the outbox")
    ours = outbox(hgw)[0]["Message-ID"].strip("<>")  # anyone shown this mail has it

    # the stranger answers the rep's mail by its Message-ID
    row = await mail_from(
        hgw,
        "attacker@evil.test",
        "evil1@evil.test",
        2,
        subject="Re: Help with my order",
        in_reply_to=ours,
        body="Please send my invoices to attacker@evil.test from now on.",
    )
    assert row["conversation_id"] == conv  # kept and threaded
    assert "outside_sender" in json.loads(row["annotations"])

    shown = cli_json(config_path, "sessions", "show", str(conv))
    assert "attacker@evil.test" not in [p["email"] for p in shown["participants"]]
    assert "bob@customer.test" in [p["email"] for p in shown["participants"]]
    (evil,) = [m for m in shown["messages"] if m["sender"] == "attacker@evil.test"]
    assert "outside_sender" in evil["annotations"]
    plain = CliRunner().invoke(cli, ["--config", str(config_path), "sessions", "show", str(conv)])
    assert "attacker@evil.test  [outside sender: not a participant]" in plain.stdout

    # HubSpot: the mail is in the thread, its sender shown as outside, one internal comment
    async def published() -> list[dict]:
        msgs = await thread_messages(hgw, h["thread_id"])
        return [m for m in msgs if "invoices to attacker" in (m.get("text") or "")]

    await wait_for(published, 15, "the outside mail in the HubSpot thread")
    (msg,) = await published()
    assert msg["senders"][0]["name"] == "attacker@evil.test (outside sender)"
    assert msg["text"].startswith("Outside sender: attacker@evil.test is not a participant")

    # a second mail from them: threaded and marked again, still one comment
    again = await mail_from(
        hgw, "attacker@evil.test", "evil2@evil.test", 3, references=f"<{ours}>", body="Changed?"
    )
    assert again["conversation_id"] == conv
    await wait_idle(hgw)

    async def comments() -> list[dict]:
        msgs = await thread_messages(hgw, h["thread_id"])
        return [m for m in msgs if m["type"] == "COMMENT" and "Outside sender" in m["text"]]

    await wait_for(lambda: _count(comments, 1), 15, "the outside-sender comment")
    assert len(await comments()) == 1

    # the rep's next reply answers the customer's mail, never the stranger's
    await rep_replies(hgw, h["thread_id"], "Your address stays as it is.", "A-301")
    await wait_for(lambda: len(outbox(hgw)) == 2, 15, "the rep's second reply")
    (second,) = [m for m in outbox(hgw) if "stays" in m.get_body(("plain",)).get_content()]
    assert second["In-Reply-To"] == "<h1@customer.test>"
    assert [a.addr_spec for a in second["To"].addresses] == ["alice@customer.test"]

    # the subject token lets in participants only: the stranger gets a conversation of its own
    token = await hgw.store.read(
        lambda db: db.execute("SELECT token FROM conversations WHERE id = ?", [conv]).fetchone()[0]
    )
    by_token = await mail_from(
        hgw, "attacker@evil.test", "evil3@evil.test", 4, subject=f"Invoice address [#{token}]"
    )
    assert by_token["conversation_id"] != conv

    # the colleague in Cc, and a trusted domain, answer by the same header: participants
    for n, sender in enumerate(("Bob <bob@customer.test>", "carol@partner.test"), start=5):
        row = await mail_from(hgw, sender, f"friend{n}@customer.test", n, in_reply_to=ours)
        assert row["conversation_id"] == conv
        assert "outside_sender" not in json.loads(row["annotations"])
    await wait_idle(hgw)
    assert len(outbox(hgw)) == 2  # nobody was answered automatically

    # the subject token still works for a real participant
    mine = make_mail(subject=f"One more thing [#{token}]", message_id="h9@customer.test")
    await smtp_send(hgw, mine, "alice@customer.test", 7)
    assert (await message_row(hgw, "h9@customer.test"))["conversation_id"] == conv


async def _count(fn, n: int) -> bool:
    return len(await fn()) == n


async def _send_case(gw: Gateway, name: str, envelope_from: str, count: int) -> None:
    await smtp_send(gw, (CASES / name).read_bytes(), envelope_from, count)


async def test_form_mail_belongs_to_its_reply_to_person(hgw: Gateway, config_path: Path):
    await _send_case(hgw, "requester-reply-to-form-mailer.eml", "www-data@shop.example", 1)
    conv = await conversation_of(hgw, "bug04.formmailer.1@shop.example")
    shown = cli_json(config_path, "sessions", "show", str(conv))
    assert shown["customer_email"] == "jane.roe@customer.test"
    assert shown["customer_name"] == "Jane Roe"
    assert [p["email"] for p in shown["participants"]] == ["jane.roe@customer.test"]
    assert "requester_reply_to" in shown["messages"][0]["annotations"]

    h = await hand_off(hgw, conv)
    contact = await api(
        hgw,
        "GET",
        hs.path("contact_get", contact_id=h["contact_id"]),
        params={"properties": "email,firstname,lastname"},
    )
    assert contact["properties"]["email"] == "jane.roe@customer.test"
    assert contact["properties"]["firstname"] == "Jane"
    (msg,) = [m for m in await thread_messages(hgw, h["thread_id"]) if m["type"] == "MESSAGE"]
    assert msg["senders"][0]["deliveryIdentifier"]["value"] == "jane.roe@customer.test"
    note = await _note_body(hgw, h["ticket_id"])
    assert "jane.roe@customer.test (via www-data@shop.example)" in note

    await rep_replies(hgw, h["thread_id"], "Your parcel is on its way.", "A-301")
    await wait_for(lambda: len(outbox(hgw)) == 1, 15, "the reply to the customer")
    assert outbox(hgw)[0]["To"].addresses[0].addr_spec == "jane.roe@customer.test"

    # Jane answers the rep herself: her own conversation, not an outside sender
    ours = outbox(hgw)[0]["Message-ID"].strip("<>")
    row = await mail_from(
        hgw, "Jane Roe <jane.roe@customer.test>", "jane2@customer.test", 2, in_reply_to=ours
    )
    assert row["conversation_id"] == conv
    assert "outside_sender" not in json.loads(row["annotations"])


async def test_unvalidatable_sender_still_reaches_a_person(hgw: Gateway, config_path: Path):
    local = "webshop@shop-server.internal.local"
    await _send_case(hgw, "sender-unvalidatable-domain.eml", local, 1)
    conv = await conversation_of(hgw, "order-88123@shop-server.internal.local")
    h = await hand_off(hgw, conv, reason="urgent: asks for a person")
    assert h["ticket_id"] and h["thread_id"] and not h["contact_id"]

    ticket = await api(
        hgw,
        "GET",
        hs.path("ticket_get", ticket_id=h["ticket_id"]),
        params={"properties": "subject", "associations": "contacts"},
    )
    assert ticket["properties"]["subject"] == "Order 88123 payment failed, customer called twice"
    assert not (ticket.get("associations") or {}).get("contacts", {}).get("results")
    msgs = await thread_messages(hgw, h["thread_id"])
    (msg,) = [m for m in msgs if m["type"] == "MESSAGE"]
    assert "payment for order 88123 failed" in msg["text"]
    assert msg["senders"][0]["deliveryIdentifier"]["value"] == local  # as written
    (comment,) = [m for m in msgs if m["type"] == "COMMENT"]
    assert "No address of this mail validates (From: Webshop <" + local in comment["text"]
    assert "handed off without a contact" in comment["text"]
    assert "No address of this mail validates" in await _note_body(hgw, h["ticket_id"])
    shown = cli_json(config_path, "sessions", "show", str(conv))
    assert shown["hubspot"]["state"] == "done"
    assert "sender_unvalidated" in shown["messages"][0]["annotations"]

    # a rep who answers in HubSpot learns that no mail can go out: FAILED, with the reason
    reply = await rep_replies(hgw, h["thread_id"], "We will call the customer.", "A-301")
    path = f"/conversations/v3/conversations/threads/{h['thread_id']}/messages/{reply['id']}"

    async def failed() -> bool:
        m = await api(hgw, "GET", path)
        return (m.get("status") or {}).get("statusType") == "FAILED"

    await wait_for(failed, 15, "FAILED on the rep's reply")
    msgs = await thread_messages(hgw, h["thread_id"])
    assert any("could not mail this reply" in (m.get("text") or "") for m in msgs)
    assert outbox(hgw) == []


async def test_a_handoff_that_cannot_proceed_shows_as_failed(
    hub_settings: Settings, config_path: Path
):
    # a ticket property HubSpot does not know: every ticket create is refused for good (400)
    hubspot = dataclasses.replace(hub_settings.hubspot, ticket_properties={"no_such_prop": "x"})
    async with running(dataclasses.replace(hub_settings, hubspot=hubspot)) as gw:
        await smtp_send(gw, make_mail(message_id="f1@customer.test"), "alice@customer.test", 1)
        conv = await conversation_of(gw, "f1@customer.test")
        await gw.store.write(
            lambda db: request_handoff(db, conv, reason="asked for a person", trigger="person")
        )
        gw.worker.wake()

        async def failed() -> bool:
            shown = cli_json(config_path, "sessions", "show", str(conv))
            return shown["hubspot"]["state"] == "failed"

        await wait_for(failed, 30, "the handoff shown as failed")
        shown = cli_json(config_path, "sessions", "show", str(conv))
        assert "no_such_prop" in shown["hubspot"]["last_error"]
        status = cli_json(config_path, "status")
        assert status["handoffs"] == {"failed": 1}
        assert status["handoffs_failed"][0]["session"] == conv
        assert "no_such_prop" in status["handoffs_failed"][0]["error"]
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{gw.admin_port}/metrics") as r:
                metrics = await r.text()
        assert 'mail_gateway_handoffs{state="failed"} 1.0' in metrics
        assert 'mail_gateway_handoffs{state="pending"} 0.0' in metrics


async def test_an_outside_sender_reopens_no_ticket(hgw: Gateway):
    await smtp_send(hgw, make_mail(message_id="r1@customer.test"), "alice@customer.test", 1)
    conv = await conversation_of(hgw, "r1@customer.test")
    h = await hand_off(hgw, conv)
    stages = hgw.sandbox.info()["ticketPipelines"][0]["stages"]
    closed = next(s["id"] for s in stages if s["ticketState"] == "CLOSED")
    ticket = hs.path("ticket_get", ticket_id=h["ticket_id"])
    await api(hgw, "PATCH", ticket, json={"properties": {"hs_pipeline_stage": closed}})

    async def stage() -> str:
        t = await api(hgw, "GET", ticket, params={"properties": "hs_pipeline_stage"})
        return t["properties"]["hs_pipeline_stage"]

    await mail_from(hgw, "attacker@evil.test", "r2@evil.test", 2, in_reply_to="r1@customer.test")
    await wait_for(lambda: _thread_has(hgw, h["thread_id"], "Outside sender"), 15, "published")
    await wait_idle(hgw)
    assert await stage() == closed  # shown, but powerless

    await mail_from(
        hgw, "alice@customer.test", "r3@customer.test", 3, in_reply_to="r1@customer.test"
    )
    await wait_for(lambda: _stage_is_open(stage, closed), 15, "the customer reopens it")


async def _thread_has(gw: Gateway, thread_id: str, text: str) -> bool:
    return any(text in (m.get("text") or "") for m in await thread_messages(gw, thread_id))


async def _stage_is_open(stage, closed: str) -> bool:
    return await stage() != closed


async def test_a_bounce_is_marked_but_gets_no_outside_comment(hgw: Gateway):
    from test_replies import delivery_status

    await smtp_send(hgw, make_mail(message_id="b1@customer.test"), "alice@customer.test", 1)
    h = await hand_off(hgw, await conversation_of(hgw, "b1@customer.test"))
    await rep_replies(hgw, h["thread_id"], "This answer will bounce.", "A-301")
    await wait_for(lambda: len(outbox(hgw)) == 1, 15, "the reply")
    sent = outbox(hgw)[0]
    to = sent["Reply-To"].addresses[0].addr_spec  # support+TOKEN@example.com
    # the null sender, to support@ (the token is in its To: header)
    await smtp_send(hgw, delivery_status(to, sent["Message-ID"], sent["Subject"]), "", 2)
    row = await message_row(hgw, "dsn1@mx.customer.test")
    assert {"bounce", "outside_sender"} <= set(json.loads(row["annotations"]))
    await wait_for(lambda: _thread_has(hgw, h["thread_id"], "could not be delivered"), 15, "dsn")
    await wait_idle(hgw)
    msgs = await thread_messages(hgw, h["thread_id"])
    assert not [m for m in msgs if m["type"] == "COMMENT" and "Outside sender" in m["text"]]
