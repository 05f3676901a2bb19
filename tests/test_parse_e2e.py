"""The field cases end to end: over real SMTP into the gateway, handed off to the HubSpot
sandbox, and read back over HTTP as a rep sees them (the thread's messages and the files'
URLs): text readable, files there with their exact names and bytes, no `[cid:…]` left."""

from __future__ import annotations

import asyncio
import base64
import smtplib
from pathlib import Path

import aiohttp

from gateway.hubspot import api as hs
from gateway.service import Gateway

from conftest import wait_processed
from hubspot_helpers import admin, api, conversation_of, hand_off, thread_messages

CASES = Path(__file__).resolve().parent / "data" / "cases"  # copies of ../shared/cases


async def send_raw(gw: Gateway, raw: bytes, count: int) -> None:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail("customer@customer.test", ["support@example.com"], raw)

    await asyncio.to_thread(go)
    await wait_processed(gw, count)


async def rep_view(gw: Gateway, message_id: str) -> dict:
    """The customer's message in the HubSpot thread, with each file's bytes from its URL."""
    handed = await hand_off(gw, await conversation_of(gw, message_id))
    (msg,) = [m for m in await thread_messages(gw, handed["thread_id"]) if m["type"] == "MESSAGE"]
    async with aiohttp.ClientSession() as session:
        for att in msg["attachments"]:
            async with session.get(att["url"]) as resp:
                assert resp.status == 200
                att["bytes"] = await resp.read()
    return msg


async def test_field_cases_reach_the_rep_readable_with_their_files(hub: Gateway):
    for count, name in enumerate(
        (
            "attachment-inline-cid-no-disposition.eml",
            "container-tnef-winmail-dat.eml",
            "structure-broken-rfc2231-parameter.eml",
            "charset-iso2022jp-body-no-charset.eml",
        ),
        start=1,
    ):
        await send_raw(hub, (CASES / name).read_bytes(), count)

    inline = await rep_view(hub, "bug07.inlinecid@customer.test")
    assert "My card payment fails with the error in the screenshot below." in inline["text"]
    assert "[cid:" not in inline["text"]
    assert [(a["name"], a["bytes"][:4]) for a in inline["attachments"]] == [
        ("image001.png", b"\x89PNG")
    ]

    tnef = await rep_view(hub, "bug12.tnef@customer.test")
    assert "Item 3 was damaged." in tnef["text"]
    assert [(a["name"], a["bytes"]) for a in tnef["attachments"]] == [
        ("delivery-note.txt", b"Delivery note 4711: item 3 damaged on arrival.\r\n")
    ]

    broken = await rep_view(hub, "bug18.param@customer.test")
    assert "check the attached quote" in broken["text"]
    assert [(a["name"], a["bytes"]) for a in broken["attachments"]] == [
        ("quote-2026.pdf", b"%PDF-1.4 fake quote")
    ]

    japanese = await rep_view(hub, "bug01.iso2022jp.nocharset@customer-jp.test")
    assert "請求書の送付先を変更したいのですが" in japanese["text"]
    assert "\x1b" not in japanese["text"]


async def test_file_names_arrive_in_hubspot_exactly_as_sent(hub: Gateway):
    names = ["Grüße  Angebot 2026.pdf", "請求書 (最終版).pdf", 'a "quoted" name.txt']
    parts = b"".join(
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        + b"Content-Disposition: attachment; filename*=UTF-8''"
        + "".join(f"%{c:02X}" for c in name.encode()).encode()
        + b"\r\n\r\n"
        + base64.b64encode(bytes([i]) * 10)
        + b"\r\n"
        for i, name in enumerate(names)
    )
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@customer.test>\r\nTo: support@example.com\r\n"
        b"Subject: Angebot\r\nMessage-ID: <names1@customer.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
        b"\r\nDie Dateien.\r\n" + parts + b"--b--\r\n"
    )
    await send_raw(hub, raw, 1)

    shown = await rep_view(hub, "names1@customer.test")
    assert sorted(a["name"] for a in shown["attachments"]) == sorted(names)
    # the Files API names each file the same (HubSpot splits off the extension)
    for att in shown["attachments"]:
        signed = await api(hub, "GET", hs.path("file_signed_url", file_id=att["fileId"]))
        assert f"{signed['name']}.{signed['extension']}" == att["name"]
    # and what the gateway sent HubSpot's Files API: the exact name, not percent-encoded
    uploads = [
        c
        for c in (await admin(hub, "GET", "/requests", params={"method": "POST"}))["results"]
        if "/files/" in c["path"]
    ]
    assert len(uploads) == len(names)
