"""No head-of-line blocking: handoffs waiting for HubSpot's budget never delay an answer.

The whole gateway with its sandbox over HTTP; the sandbox's burst limit made small (3 calls a
minute) so a few handoffs spend it. The worker has one slot per kind ([worker] concurrency =
1): if a handoff held its slot while it waited for the budget, or kinds shared slots, the
assistant's answer to a new mail would wait a minute behind them. Conditions only, no timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import smtplib
import time
from pathlib import Path

import pytest

from gateway.config import Settings

from conftest import make_mail, running, wait_for, write_config
from hubspot_helpers import admin

KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        f'\n[assistant]\nbackend = "knowledge"\nknowledge_dir = "{KNOWLEDGE}"\ndebounce = 0\n'
        '\n[relay]\nmode = "capture"\n',
    )


async def _send(gw, sender: str, subject: str, body: str) -> None:
    raw = make_mail(sender=sender, subject=subject, body=body)

    def go() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as s:
            s.sendmail(sender.split("<")[-1].rstrip(">"), ["support@example.com"], raw)

    await asyncio.to_thread(go)


async def _jobs(gw, kind: str) -> list[dict]:
    rows = await gw.store.read(
        lambda db: db.execute(
            "SELECT id, state, attempts, run_after, last_error, payload FROM jobs "
            "WHERE kind = ? ORDER BY id",
            [kind],
        ).fetchall()
    )
    keys = ("id", "state", "attempts", "run_after", "last_error", "payload")
    return [dict(zip(keys, r, strict=True)) for r in rows]


async def test_handoffs_waiting_for_the_budget_do_not_delay_the_assistants_answer(
    hub_settings: Settings,
):
    one_slot = dataclasses.replace(hub_settings.worker, concurrency=1)
    async with running(dataclasses.replace(hub_settings, worker=one_slot)) as gw:
        # after the set-up's calls: 3 calls a minute (the client keeps 90% of it: 2)
        await admin(gw, "POST", "/limits", json={"burst": 3, "interval_ms": 60_000})
        for i in range(4):
            await _send(
                gw, f"Customer {i} <c{i}@customer.test>", f"Contract {i}", "Let me talk to a human."
            )

        async def budget_spent() -> bool:
            handoffs = await _jobs(gw, "handoff")
            now = time.time()
            return len(handoffs) == 4 and any(
                h["state"] == "queued" and h["run_after"] > now + 5 for h in handoffs
            )

        await wait_for(budget_spent, 30, "4 handoffs, one deferred for HubSpot's budget")

        await _send(
            gw, "Bob <bob@customer.test>", "Password", "How do I reset my password, please?"
        )

        async def answered() -> bool:
            replies = await _jobs(gw, "send_reply")
            return any(r["state"] == "done" for r in replies)

        await wait_for(answered, 30, "the assistant's answer sent")
        [reply] = await _jobs(gw, "send_reply")
        assert json.loads(reply["payload"])["author"] == "Assistant"
        sent = await gw.store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'").fetchone()
        )
        assert sent == (1,)

        handoffs = await _jobs(gw, "handoff")
        waiting = [h for h in handoffs if h["state"] != "done"]
        # the answer went out while handoffs still wait for the budget...
        assert waiting, handoffs
        assert any("rate limit" in (h["last_error"] or "") for h in waiting), waiting
        # ...and waiting used none of their tries
        assert all((h["state"], h["attempts"]) == ("queued", 0) for h in waiting), waiting
