"""Handoff and replies as HubSpot documents them, end to end over HTTP against the sandbox.

Each test reads what a rep or a customer would see (the sandbox's API, the gateway's outbox)
and what the gateway sent (the sandbox's request log): `attachments` always there, the thread's
contact the ticket's, the ticket linked to the thread by the explicit association call, one
message per stored mail even when two mails share a Message-ID, rep replies never published
back, the rep's paragraphs kept in the mailed text part.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import email.policy
import smtplib
from pathlib import Path

import pytest

from gateway.config import RelaySettings, Settings
from gateway.hubspot import api as hs
from gateway.service import Gateway

from conftest import make_mail, running, wait_for, wait_processed
from helpers.waiting import wait_idle
from hubspot_helpers import (
    admin,
    api,
    conversation_of,
    hand_off,
    outbox,
    rep_replies,
    send,
    thread_messages,
)

AGENT = "A-301"
CASES = Path(__file__).resolve().parent / "data" / "cases"  # copies of ../shared/cases


@pytest.fixture
def reply_settings(hub_settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        hub_settings,
        relay=dataclasses.replace(RelaySettings(), mode="capture", capture_dir=tmp_path / "outbox"),
    )


@pytest.fixture
async def rgw(reply_settings: Settings):
    async with running(reply_settings) as gw:
        yield gw


async def rep_posts(gw: Gateway, thread_id: str, text: str, rich: str = "") -> dict:
    return await rep_replies(gw, thread_id, text, AGENT, **({"richText": rich} if rich else {}))


async def published(gw: Gateway) -> list[dict]:
    """The bodies of every channel-message publish the gateway made."""
    calls = (await admin(gw, "GET", "/requests", params={"method": "POST"}))["results"]
    return [
        c["body"]
        for c in calls
        if c["path"].endswith("/messages") and "custom-channels" in c["path"]
    ]


async def test_publish_carries_attachments_and_the_ticket_contact(rgw: Gateway):
    await send(rgw, make_mail(message_id="k1@customer.test"), 1)
    h = await hand_off(rgw, await conversation_of(rgw, "k1@customer.test"))

    (body,) = await published(rgw)
    assert body["attachments"] == []  # required by HubSpot, even for a text-only mail
    assert body["associateWithContactId"] == int(h["contact_id"])
    assert body["integrationIdempotencyId"] != "k1@customer.test"  # never the Message-ID

    thread = await api(
        rgw,
        "GET",
        hs.path("thread_get", thread_id=h["thread_id"]),
        params={"association": "TICKET"},
    )
    ticket = await api(
        rgw,
        "GET",
        hs.path("ticket_get", ticket_id=h["ticket_id"]),
        params={"associations": "contacts"},
    )
    ticket_contacts = [str(a["id"]) for a in ticket["associations"]["contacts"]["results"]]
    assert str(thread["associatedContactId"]) == h["contact_id"]
    assert ticket_contacts == [str(thread["associatedContactId"])]
    assert str(thread["threadAssociations"]["associatedTicketId"]) == h["ticket_id"]

    # the ticket is created with its contact only; the thread by the explicit v4 call
    calls = (await admin(rgw, "GET", "/requests"))["results"]
    (create,) = [
        c for c in calls if c["method"] == "POST" and c["path"] == hs.path("ticket_create")
    ]
    assert [a["to"]["id"] for a in create["body"]["associations"]] == [h["contact_id"]]
    link = hs.path(
        "association_put",
        object_type="tickets",
        object_id=h["ticket_id"],
        to_object_type="conversation",
        to_object_id=h["thread_id"],
    )
    assert [c["method"] for c in calls if c["path"] == link] == ["PUT"]


def test_only_hubspot_s_category_means_already_exists():
    from gateway.pipeline.handoff import already_exists, existing_id

    unique = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid",
        "errors": [
            {
                "message": "gw-abc already has that value on object 1001",
                "code": "INVALID_UNIQUE_VALUE",
                "context": {"propertyName": ["mail_gateway_conversation"]},
            }
        ],
    }
    assert already_exists("VALIDATION_ERROR", unique, "mail_gateway_conversation")
    assert already_exists("CONFLICT", {}, "mail_gateway_conversation")
    assert already_exists("OBJECT_ALREADY_EXISTS", {}, "x")
    # a 400 that is anything else is an error, never "the ticket exists"
    bad_assoc = {
        "category": "VALIDATION_ERROR",
        "message": "Invalid association type",
        "errors": [{"code": "INVALID_ASSOCIATION_TYPE", "message": "32 is not valid"}],
    }
    assert not already_exists("VALIDATION_ERROR", bad_assoc, "mail_gateway_conversation")
    assert not already_exists("", "Bad Request", "mail_gateway_conversation")
    other_prop = {
        "category": "VALIDATION_ERROR",
        "errors": [{"code": "INVALID_UNIQUE_VALUE", "context": {"propertyName": ["email"]}}],
    }
    assert not already_exists("VALIDATION_ERROR", other_prop, "mail_gateway_conversation")
    assert existing_id("Contact already exists. Existing ID: 1234") == "1234"
    assert existing_id("Conflict") == ""


async def _send_case(gw: Gateway, name: str, count: int) -> None:
    raw = (CASES / name).read_bytes()

    def go():
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail("notify@carrier.test", ["support@example.com"], raw)

    await asyncio.to_thread(go)
    await wait_processed(gw, count)


async def test_mails_sharing_a_message_id_each_reach_their_thread_and_their_reply(rgw: Gateway):
    await _send_case(rgw, "identity-reused-message-id-a.eml", 1)
    await _send_case(rgw, "identity-reused-message-id-b.eml", 2)
    convs = await rgw.store.read(
        lambda db: [
            r[0]
            for r in db.execute(
                "SELECT id FROM conversations WHERE subject LIKE 'Shipment%' ORDER BY id"
            )
        ]
    )
    assert len(convs) == 2
    handoffs = [await hand_off(rgw, c) for c in convs]
    assert handoffs[0]["thread_id"] != handoffs[1]["thread_id"]
    for h, shipment in zip(handoffs, ("1Z001", "1Z002"), strict=True):
        msgs = [m for m in await thread_messages(rgw, h["thread_id"]) if m["type"] == "MESSAGE"]
        assert len(msgs) == 1 and shipment in msgs[0]["text"]

    # the reps answer the second thread first: each reply to its own subject
    await rep_posts(rgw, handoffs[1]["thread_id"], "The invoice is on its way.")
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the first reply in the outbox")
    await rep_posts(rgw, handoffs[0]["thread_id"], "Glad it arrived.")
    await wait_for(lambda: len(outbox(rgw)) == 2, 15, "the second reply in the outbox")
    by_subject = {str(m["Subject"]): m.get_body(("plain",)).get_content() for m in outbox(rgw)}
    assert "invoice" in by_subject["Re: Shipment 1Z002 delayed - customs"]
    assert "Glad it arrived" in by_subject["Re: Shipment 1Z001 delivered"]
    for m in outbox(rgw):
        assert m["To"].addresses[0].addr_spec == "notify@carrier.test"


async def test_rep_reply_is_never_published_back_into_the_thread(rgw: Gateway):
    await send(rgw, make_mail(message_id="o1@customer.test"), 1)
    conv = await conversation_of(rgw, "o1@customer.test")
    h = await hand_off(rgw, conv)
    await rep_posts(rgw, h["thread_id"], "We are on it.")
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the rep's reply in the outbox")
    ours = outbox(rgw)[0]["Message-ID"].strip("<>")
    # the customer answers the rep: a publish of the conversation follows
    await send(
        rgw,
        make_mail(
            subject="Re: Help with my order",
            message_id="o2@customer.test",
            in_reply_to=ours,
            body="Thanks, waiting.",
        ),
        2,
    )

    async def follow_up_published() -> bool:
        msgs = await thread_messages(rgw, h["thread_id"])
        return any("Thanks, waiting." in (m.get("text") or "") for m in msgs)

    await wait_for(follow_up_published, 15, "the follow-up in the thread")
    await wait_idle(rgw)
    msgs = [m for m in await thread_messages(rgw, h["thread_id"]) if m["type"] == "MESSAGE"]
    directions = sorted(m["direction"] for m in msgs)
    assert directions == ["INCOMING", "INCOMING", "OUTGOING"]
    assert len(outbox(rgw)) == 1


async def test_rep_paragraphs_in_text_part_formatting_in_html_part(rgw: Gateway):
    await send(rgw, make_mail(message_id="p1@customer.test"), 1)
    h = await hand_off(rgw, await conversation_of(rgw, "p1@customer.test"))
    text = "Hello Alice,\n\nYour order is ready:\n- the lamp\n- the cable\nBest regards"
    rich = (
        "<p>Hello Alice,</p><p>Your order is <b>ready</b>:</p>"
        "<ul><li>the lamp</li><li>the cable</li></ul><p>Best regards</p>"
    )
    await rep_posts(rgw, h["thread_id"], text, rich)
    await wait_for(lambda: len(outbox(rgw)) == 1, 15, "the reply in the outbox")
    mail = outbox(rgw)[0]
    plain = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(("html",)).get_content()
    assert plain.startswith("Hello Alice,\n\nYour order is ready:\n- the lamp\n- the cable\n")
    assert "<b>ready</b>" in html or "<strong>ready</strong>" in html
    assert "<ul><li>the lamp</li><li>the cable</li></ul>" in html


def _mail_with_files(message_id: str, files: dict[str, bytes]) -> bytes:
    m = email.message.EmailMessage()
    m["From"] = "Alice <alice@customer.test>"
    m["To"] = "support@example.com"
    m["Subject"] = "Photos of the damage"
    m["Message-ID"] = f"<{message_id}>"
    m.set_content("Photos attached.")
    for name, data in files.items():
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m.as_bytes(policy=email.policy.SMTP)


async def _note_body(gw: Gateway, ticket_id: str) -> str:
    notes = await api(
        gw,
        "GET",
        hs.path(
            "associations_list", object_type="tickets", object_id=ticket_id, to_object_type="notes"
        ),
    )
    (note,) = notes["results"]
    shown = await api(
        gw,
        "GET",
        hs.path("note_get", note_id=note["toObjectId"]),
        params={"properties": "hs_note_body"},
    )
    return shown["properties"]["hs_note_body"]


@pytest.fixture
async def big_mail_gw(hub_settings: Settings):
    """A gateway that takes customer mail up to 8 MB (the test default is 1 MiB)."""
    smtp = dataclasses.replace(hub_settings.smtp, max_message_size=8 * 1024 * 1024)
    async with running(dataclasses.replace(hub_settings, smtp=smtp)) as gw:
        yield gw


async def test_file_hubspot_refuses_is_left_out_and_named_in_the_note(big_mail_gw: Gateway):
    hub = big_mail_gw
    # HubSpot's Files API refuses a file over its size limit (413) for good; here the
    # sandbox's limit is 1 MB so a small test file is over it
    hub.sandbox.state.options.files_max_bytes = 1_000_000
    big = bytes(range(256)) * 6000  # 1,536,000 bytes
    small = b"%PDF-1.4 small\n" + bytes(range(256)) * 4
    await send(hub, _mail_with_files("big1@customer.test", {"big.bin": big, "ok.pdf": small}), 1)
    h = await hand_off(hub, await conversation_of(hub, "big1@customer.test"))

    (msg,) = [m for m in await thread_messages(hub, h["thread_id"]) if m["type"] == "MESSAGE"]
    assert [f["name"] for f in msg["attachments"]] == ["ok.pdf"]  # the rest still arrives
    assert "big.bin" in msg["text"] and "1536000 bytes" in msg["text"]
    note = await _note_body(hub, h["ticket_id"])
    assert "big.bin" in note and "1536000 bytes" in note and "413" in note
    dead = await hub.store.read(
        lambda db: db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'dead'").fetchone()[0]
    )
    assert dead == 0


async def test_a_one_and_a_half_megabyte_attachment_arrives(big_mail_gw: Gateway):
    photo = bytes(range(256)) * 6000  # 1,536,000 bytes
    await send(big_mail_gw, _mail_with_files("photo1@customer.test", {"photo.bin": photo}), 1)
    h = await hand_off(big_mail_gw, await conversation_of(big_mail_gw, "photo1@customer.test"))
    (msg,) = [
        m for m in await thread_messages(big_mail_gw, h["thread_id"]) if m["type"] == "MESSAGE"
    ]
    assert [f["name"] for f in msg["attachments"]] == ["photo.bin"]
    assert "left out" not in msg["text"]
