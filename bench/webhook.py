"""Webhook benchmark: a rep's public reply in HubSpot → the customer's mail accepted by the relay.

The sandbox (in this process) sends its channel webhook to the daemon ([hubspot] mode = "live",
replies = "webhook", [relay] mode = "smtp" to an aiosmtpd sink in this process that notes the
time it answers 250). One conversation is handed off, then a rep posts N replies one after
another. Two spans per reply:
- webhook received → relay 250: from the time the daemon stored the webhook event
  (hubspot_events.received_at, wall clock, ms) to the sink's 250 (same machine clock);
- rep posts → relay 250: from the rep's API call returning, which adds the sandbox's webhook
  batching delay (set to 50 ms here; HubSpot's own is not documented).

    .venv/bin/python bench/webhook.py [--replies 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiosmtplib
from aiosmtpd.smtp import SMTP

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import db_rows, live_daemon, make_mail, markdown, median, pct, save

from helpers.inbox import HISTORY_QUERY, rep_message


class Sink:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope) -> str:
        for tag in re.findall(rb"WH-\d+", envelope.original_content or envelope.content):
            self.at[tag.decode()] = time.time()
        return "250 2.0.0 OK"


def _iso_to_ts(s: str) -> float:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


async def run(replies: int = 50) -> dict:
    from gateway.sandbox import start_sandbox

    sandbox = await start_sandbox("127.0.0.1", 0, burst_limit=10_000, webhook_batch_delay=0.05)
    sink = Sink()
    loop = asyncio.get_running_loop()
    relay = await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    token = sandbox.info()["staticToken"]
    extra = f"""
[assistant]
backend = "off"
debounce = 0.0
[relay]
mode = "smtp"
host = "127.0.0.1"
port = {relay_port}
tls = "none"
"""
    posted: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gw-bench-webhook-") as tmp:
        daemon = await live_daemon(
            Path(tmp), sandbox, extra, burst_limit=10_000, replies="webhook", log_level="info"
        )
        db = Path(tmp) / "state" / "gateway.db"
        try:
            await aiosmtplib.send(
                make_mail(1, 2048),
                sender="c1@customer.test",
                recipients=["support@example.com"],
                hostname="127.0.0.1",
                port=daemon.smtp_port,
            )
            thread_id = None
            for _ in range(600):
                rows = db_rows(db, "SELECT thread_id FROM handoffs WHERE state = 'done'")
                if rows:
                    thread_id = rows[0][0]
                    break
                await asyncio.sleep(0.05)
            assert thread_id, "the handoff did not finish: " + daemon.tail()
            url = f"{sandbox.url}/conversations/v3/conversations/threads/{thread_id}"
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                async with http.get(url) as r:
                    thread = await r.json()
                async with http.get(url + "/messages", params=HISTORY_QUERY) as r:
                    history = (await r.json())["results"]
                for i in range(replies):
                    tag = f"WH-{i}"
                    text = f"{tag} your parcel ships today"
                    body = rep_message(thread, history, text, "A-301")
                    async with http.post(url + "/messages", json=body) as r:
                        assert r.status < 300, await r.text()
                    posted[tag] = time.time()
                    for _ in range(400):
                        if tag in sink.at:
                            break
                        await asyncio.sleep(0.005)
            received = {}
            for text, at in db_rows(
                db,
                "SELECT payload, received_at FROM hubspot_events WHERE source = 'channel-webhook'",
            ):
                found = re.search(r"WH-\d+", text or "")
                if found:
                    received[found.group(0)] = _iso_to_ts(at)
        finally:
            daemon.stop()
            relay.close()
            await sandbox.close()
    from_webhook = [sink.at[t] - received[t] for t in sink.at if t in received]
    from_post = [sink.at[t] - posted[t] for t in sink.at if t in posted]
    return {
        "replies": replies,
        "delivered": len(sink.at),
        "webhook_to_250_p50_ms": round(median(from_webhook) * 1000, 1),
        "webhook_to_250_p99_ms": round(pct(from_webhook, 99) * 1000, 1),
        "post_to_250_p50_ms": round(median(from_post) * 1000, 1),
        "post_to_250_p99_ms": round(pct(from_post, 99) * 1000, 1),
    }


def table(r: dict) -> str:
    return markdown(
        ["span", "p50 ms", "p99 ms", "replies delivered"],
        [
            [
                "webhook received → relay 250",
                r["webhook_to_250_p50_ms"],
                r["webhook_to_250_p99_ms"],
                f"{r['delivered']} / {r['replies']}",
            ],
            [
                "rep posts (API returns) → relay 250",
                r["post_to_250_p50_ms"],
                r["post_to_250_p99_ms"],
                f"{r['delivered']} / {r['replies']}",
            ],
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replies", type=int, default=50)
    args = ap.parse_args()
    r = asyncio.run(run(args.replies))
    print(table(r))
    save("webhook", r)


if __name__ == "__main__":
    main()
