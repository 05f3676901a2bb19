"""The assistant inside the running gateway: real SMTP in, the worker runs the `assist` jobs,
and the jobs table shows what follows (send_reply, handoff)."""

from __future__ import annotations

import asyncio
import json
import smtplib
from pathlib import Path

import pytest

from gateway.jobs.assist import escalation_facts
from gateway.pipeline.assistant import handoff_comment

from conftest import make_mail, wait_for, wait_processed, write_config
from helpers.waiting import wait_idle

KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"
ASSISTANT = f"""
[assistant]
backend = "knowledge"
knowledge_dir = "{KNOWLEDGE}"
debounce = 0.6
rate_limit = 2
rate_window = 3600
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, ASSISTANT)


async def send(gw, raw: bytes, envelope_from: str = "alice@customer.test") -> None:
    def go() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail(envelope_from, ["support@example.com"], raw)

    await asyncio.to_thread(go)


async def jobs(gw, kind: str) -> list[dict]:
    rows = await gw.store.read(
        lambda db: db.execute(
            "SELECT payload, dedupe_key, state FROM jobs WHERE kind = ? ORDER BY id", [kind]
        ).fetchall()
    )
    return [{"payload": json.loads(p), "key": k, "state": s} for p, k, s in rows]


async def assists_done(gw, count: int) -> None:
    async def done() -> bool:
        rows = await jobs(gw, "assist")
        return len(rows) >= count and all(r["state"] in ("done", "dead") for r in rows)

    await wait_for(done, 20, f"{count} assist jobs done")


def reply(body: str, mid: str, parent: str | None, subject: str = "Password") -> bytes:
    subject = f"Re: {subject}" if parent else subject
    return make_mail(subject=subject, body=body, message_id=mid, in_reply_to=parent)


async def test_three_mails_within_the_debounce_window_get_one_answer(gateway):
    await send(gateway, reply("How do I reset my password?", "m1@customer.test", None))
    await send(
        gateway, reply("I need to reset the password.", "m2@customer.test", "m1@customer.test")
    )
    await send(gateway, reply("Password reset, please!", "m3@customer.test", "m2@customer.test"))
    await wait_processed(gateway, 3)
    await assists_done(gateway, 3)
    replies = await jobs(gateway, "send_reply")
    assert len(replies) == 1, replies
    payload = replies[0]["payload"]
    assert payload["author"] == "Assistant" and payload["source"] == "assistant"
    assert payload["auto"] is True
    assert "Forgot password?" in payload["markdown"]
    conv_id = payload["conversation_id"]
    last = await gateway.store.read(
        lambda db: db.execute(
            "SELECT MAX(id) FROM messages WHERE conversation_id = ? AND direction = 'in'",
            [conv_id],
        ).fetchone()[0]
    )
    assert replies[0]["key"] == f"assistant-reply:{conv_id}:{last}"
    assert await jobs(gateway, "handoff") == []
    # every customer mail carries its sentiment and language
    signals = await gateway.store.read(
        lambda db: db.execute(
            "SELECT sentiment_label, language FROM messages WHERE conversation_id = ?", [conv_id]
        ).fetchall()
    )
    assert len(signals) == 3 and all(lbl and lang == "en" for lbl, lang in signals), signals


async def test_escalation_stores_the_facts_and_enqueues_the_handoff(gateway):
    text = "I want a refund, this is the third time it broke!"
    await send(gateway, make_mail(subject="Broken again", body=text))
    await wait_processed(gateway, 1)
    await assists_done(gateway, 1)
    [handoff] = await jobs(gateway, "handoff")
    conv_id = handoff["payload"]["conversation_id"]
    assert handoff["key"] == f"handoff:{conv_id}"
    assert handoff["payload"]["trigger"] == "assistant"
    assert 'keyword "refund"' in handoff["payload"]["reason"]
    assert "negative sentiment" in handoff["payload"]["reason"]
    assert await jobs(gateway, "send_reply") == []
    facts = await gateway.store.read(lambda db: escalation_facts(db, conv_id))
    assert facts.sentiment_label == "negative" and facts.sentiment < -0.4
    assert facts.language == "en" and facts.summary.startswith("Subject: Broken again")
    comment = handoff_comment(facts)
    assert "refund" in comment and "negative (-0.42)" in comment and "Language: en" in comment
    assert f"mail-gateway sessions show {conv_id}" in comment


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "Kann ich mit einem Menschen sprechen?",
        "Puis-je parler à un humain ?",
    ],
)
async def test_asking_for_a_person_hands_off(gateway, text):
    await send(gateway, make_mail(subject="Question", body=text))
    await wait_processed(gateway, 1)
    await assists_done(gateway, 1)
    [handoff] = await jobs(gateway, "handoff")
    assert handoff["payload"]["reason"].startswith("the customer asks for a person")
    assert await jobs(gateway, "send_reply") == []


async def test_out_of_office_and_bounce_get_no_answer_and_no_handoff(gateway):
    await send(
        gateway,
        make_mail(
            subject="Out of Office: How do I reset my password?",
            body="I am out of the office until Monday. How do I reset my password?",
            extra_headers="Auto-Submitted: auto-replied",
        ),
    )
    await send(
        gateway,
        make_mail(
            sender="Mail Delivery System <MAILER-DAEMON@mx.customer.test>",
            subject="Undelivered Mail Returned to Sender",
            body="This is the mail system. I'm sorry to have to inform you that your message "
            "could not be delivered. Can I talk to a human?",
        ),
        envelope_from="",
    )
    await wait_processed(gateway, 2)
    await wait_idle(gateway)  # processing done: an answer would be scheduled by now
    assert await jobs(gateway, "assist") == []
    assert await jobs(gateway, "send_reply") == []
    assert await jobs(gateway, "handoff") == []


async def test_replies_per_sender_are_rate_limited(gateway):
    for i in range(3):  # three separate conversations from one sender
        await send(gateway, make_mail(subject=f"Password {i}", body="How do I reset my password?"))
        await wait_processed(gateway, i + 1)
        await assists_done(gateway, i + 1)
    assert len(await jobs(gateway, "send_reply")) == 2
    [handoff] = await jobs(gateway, "handoff")
    assert handoff["payload"]["reason"].startswith("rate limit: 2 automatic replies to alice@")


async def test_no_answer_after_escalation(gateway):
    await send(gateway, reply("Can I talk to a human?", "h1@customer.test", None, "Help"))
    await wait_processed(gateway, 1)
    await assists_done(gateway, 1)
    await send(
        gateway,
        reply("How do I reset my password?", "h2@customer.test", "h1@customer.test", "Help"),
    )
    await wait_processed(gateway, 2)
    await assists_done(gateway, 2)
    assert await jobs(gateway, "send_reply") == []
    assert len(await jobs(gateway, "handoff")) == 1
