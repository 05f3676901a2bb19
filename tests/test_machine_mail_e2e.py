"""Machine mail over real SMTP (issue 14 item 7): the field cases' bounces and ARF report are
stored with their class, never answered and never handed off: the HubSpot sandbox gets no
ticket for them, while a person's mail sent alongside, asking for a person, gets one."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
from pathlib import Path

import pytest

from conftest import make_mail, wait_processed, write_config
from helpers.waiting import wait_idle
from hubspot_helpers import all_objects, conversation_of, wait_handed_off

CASES = Path(__file__).resolve().parent / "data" / "cases"
KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"
ASSISTANT = f"""
[assistant]
backend = "knowledge"
knowledge_dir = "{KNOWLEDGE}"
debounce = 0.2
"""
MACHINE_CASES = {
    "machine-ndr-plain-text.eml": "bounce",
    "machine-dsn-without-report-type.eml": "bounce",
    "machine-arf-abuse-report.eml": "abuse_report",
}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, ASSISTANT)


def envelope_of(raw: bytes) -> str:
    """As the cases README says: Return-Path if present, else From."""
    match = re.search(rb"^Return-Path:\s*<([^>]*)>", raw, re.MULTILINE | re.IGNORECASE)
    return match.group(1).decode() if match else ""


async def send(gw, raw: bytes, envelope_from: str) -> None:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail(envelope_from, ["support@example.com"], raw)

    await asyncio.to_thread(go)


async def kinds(gw) -> list[str]:
    rows = await gw.store.read(lambda db: db.execute("SELECT kind FROM jobs").fetchall())
    return [r[0] for r in rows]


async def test_machine_cases_are_classified_never_answered_never_a_ticket(hub):
    for name in MACHINE_CASES:
        raw = re.sub(rb"\r?\n", b"\r\n", (CASES / name).read_bytes())
        await send(hub, raw, envelope_of(raw))
    person = make_mail(
        subject="Re: Your refund request",
        body="Hello,\r\nI want to talk to a person about my refund.\r\n\r\nAlice",
        message_id="person-1@customer.test",
    )
    await send(hub, person, "alice@customer.test")
    await wait_processed(hub, len(MACHINE_CASES) + 1)
    await wait_handed_off(hub, await conversation_of(hub, "person-1@customer.test"))
    await wait_idle(hub)  # every job done: a machine mail's answer or handoff would be by now
    rows = await hub.store.read(
        lambda db: db.execute(
            "SELECT subject, annotations FROM messages WHERE direction = 'in'"
        ).fetchall()
    )
    classes = {subject: set(json.loads(ann or "[]")) for subject, ann in rows}
    assert len(classes) == len(MACHINE_CASES) + 1
    for subject, found in classes.items():
        if subject == "Re: Your refund request":
            continue  # the person's mail
        expected = "abuse_report" if subject.startswith("Complaint") else "bounce"
        assert expected in found, (subject, found)
    done = await kinds(hub)
    assert done.count("handoff") == 1 and "send_reply" not in done, done
    tickets = await all_objects(hub, "tickets")
    assert len(tickets) == 1 and "refund" in (tickets[0]["properties"]["subject"] or "").lower()
