"""Handoff benchmark against the HubSpot sandbox (in this process; the daemon is a separate
process in [hubspot] mode = "live" pointed at it).

1. Latency: one mail at a time, [assistant] backend = "off" with debounce 0 (every mail goes to
   a person at once). From the 250 of the mail to (a) the ticket existing in HubSpot (the
   sandbox's state, polled every 5 ms) and (b) the handoff finished (ticket, thread, note,
   comment recorded in the store). Once with no added latency, once with 50 ms added to every
   sandbox call (a `latency` fault on every path). The rate limit is raised for this part so
   it never binds. HubSpot calls per handoff from the sandbox's request log.
2. Burst: 1,000 conversations stored first, then 1,000 handoffs requested at once, against a
   100 requests / 10 s limit SCALED TEN TIMES to 100 requests / 1 s (same shape, a tenth of
   the wall time). Share of the budget used, 429s received, time to drain.

    .venv/bin/python bench/handoff.py [--latency-mails 15] [--burst 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import db_rows, live_daemon, make_mail, markdown, median, pct, save


async def _admin(sandbox, method: str, path: str, **kw) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, sandbox.url + "/_sandbox" + path, **kw) as r:
            assert r.status < 400, await r.text()


async def _send(port: int, i: int) -> None:
    await aiosmtplib.send(
        make_mail(i, 2048),
        sender=f"c{i}@customer.test",
        recipients=["support@example.com"],
        hostname="127.0.0.1",
        port=port,
        timeout=60,
    )


def _ticket_with_subject(sandbox, subject: str) -> bool:
    return any(
        (t.get("properties") or {}).get("subject") == subject
        for t in sandbox.state.data["objects"]["tickets"].values()
    )


async def latency(added_ms: int, mails: int) -> dict:
    from gateway.sandbox import start_sandbox

    sandbox = await start_sandbox("127.0.0.1", 0, burst_limit=10_000)
    with tempfile.TemporaryDirectory(prefix="gw-bench-handoff-") as tmp:
        extra = '[assistant]\nbackend = "off"\ndebounce = 0.0\n'
        daemon = await live_daemon(Path(tmp), sandbox, extra, burst_limit=10_000)
        db = Path(tmp) / "state" / "gateway.db"
        try:
            if added_ms:
                spec = {"path": "*", "action": "latency", "latency_ms": added_ms, "rate": 1.0}
                await _admin(sandbox, "POST", "/faults", json=spec)
            sandbox.state.requests.clear()
            visible, done = [], []
            for i in range(mails):
                await _send(daemon.smtp_port, i)
                t0 = time.perf_counter()
                subject = f"Benchmark mail {i}"
                seen = None
                while time.perf_counter() - t0 < 60:
                    if seen is None and _ticket_with_subject(sandbox, subject):
                        seen = time.perf_counter() - t0
                    finished = db_rows(db, "SELECT COUNT(*) FROM handoffs WHERE state = 'done'")
                    if finished[0][0] > i:
                        break
                    await asyncio.sleep(0.005)
                done.append(time.perf_counter() - t0)
                visible.append(seen if seen is not None else float("nan"))
            calls = list(sandbox.state.requests)
        finally:
            daemon.stop()
            await sandbox.close()
    per = collections.Counter(f"{c['method']} {c['path'].split('?')[0]}" for c in calls)
    return {
        "added_ms": added_ms,
        "handoffs": mails,
        "ticket_visible_p50_ms": round(median(visible) * 1000, 1),
        "ticket_visible_p99_ms": round(pct(visible, 99) * 1000, 1),
        "handoff_done_p50_ms": round(median(done) * 1000, 1),
        "handoff_done_p99_ms": round(pct(done, 99) * 1000, 1),
        "calls_per_handoff": round(len(calls) / mails, 2),
        "calls": dict(per.most_common(20)),
    }


async def burst(count: int) -> dict:
    from gateway.sandbox import start_sandbox
    from gateway.store.db import Store
    from gateway.store.hubspot import request_handoff

    limit, interval_ms = 100, 1000  # HubSpot's 100 / 10 s, scaled ten times
    sandbox = await start_sandbox("127.0.0.1", 0, burst_limit=10_000)
    entries: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gw-bench-burst-") as tmp:
        extra = '[assistant]\nbackend = "off"\ndebounce = 86400.0\n[worker]\nconcurrency = 8\n'
        daemon = await live_daemon(Path(tmp), sandbox, extra, burst_limit=limit)
        db = Path(tmp) / "state" / "gateway.db"
        try:
            sem = asyncio.Semaphore(10)

            async def one(i: int) -> None:
                async with sem:
                    await _send(daemon.smtp_port, i)

            await asyncio.gather(*(one(i) for i in range(count)))
            for _ in range(1500):
                if not db_rows(db, "SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'")[0][0]:
                    break
                await asyncio.sleep(0.2)
            daemon.stop()
            convs = [r[0] for r in db_rows(db, "SELECT id FROM conversations")]
            store = Store(db)

            def ask(d) -> None:
                for c in convs:
                    request_handoff(d, c, reason="burst", trigger="person")

            await store.write(ask)
            store.close()
            state = sandbox.state
            await _admin(
                sandbox, "PATCH", "/limits", json={"burst": limit, "interval_ms": interval_ms}
            )
            state.requests.clear()
            t0 = time.perf_counter()
            await daemon.astart()
            while True:
                entries.extend(state.requests)
                state.requests.clear()
                left = db_rows(db, "SELECT COUNT(*) FROM handoffs WHERE state != 'done'")[0][0]
                if not left or time.perf_counter() - t0 > 900:
                    break
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - t0
            entries.extend(state.requests)
            handed = db_rows(db, "SELECT COUNT(*) FROM handoffs WHERE state = 'done'")[0][0]
        finally:
            daemon.stop()
            await sandbox.close()
    statuses = collections.Counter(e["status"] for e in entries)
    budget = limit * elapsed / (interval_ms / 1000)
    return {
        "handoffs": count,
        "handed_off": handed,
        "limit": f"{limit} / {interval_ms} ms (HubSpot's {limit} / 10 s scaled ×10)",
        "drain_s": round(elapsed, 1),
        "drain_s_unscaled_estimate": round(elapsed * 10, 0),
        "calls": len(entries),
        "calls_per_handoff": round(len(entries) / max(1, handed), 2),
        "budget_used_pct": round(100 * len(entries) / budget, 1),
        "http_429": statuses.get(429, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def run(latency_mails: int = 15, burst_count: int = 1000) -> dict:
    rows = [await latency(0, latency_mails), await latency(50, latency_mails)]
    return {"latency": rows, "burst": await burst(burst_count) if burst_count else None}


def print_tables(r: dict) -> None:
    print("### Handoff: mail accepted → ticket in HubSpot (sequential, sandbox)\n")
    print(
        markdown(
            [
                "added latency per HubSpot call",
                "ticket visible p50 ms",
                "p99 ms",
                "handoff complete p50 ms",
                "p99 ms",
                "HubSpot calls per handoff",
            ],
            [
                [
                    f"{x['added_ms']} ms",
                    x["ticket_visible_p50_ms"],
                    x["ticket_visible_p99_ms"],
                    x["handoff_done_p50_ms"],
                    x["handoff_done_p99_ms"],
                    x["calls_per_handoff"],
                ]
                for x in r["latency"]
            ],
        )
    )
    b = r["burst"]
    if b:
        print(f"\n### Burst of {b['handoffs']} handoffs, limit {b['limit']}\n")
        print(
            markdown(
                [
                    "handed off",
                    "time to drain (scaled)",
                    "≈ at the real 100 / 10 s",
                    "HubSpot calls",
                    "calls per handoff",
                    "share of the budget used",
                    "429s received",
                ],
                [
                    [
                        b["handed_off"],
                        f"{b['drain_s']} s",
                        f"{b['drain_s_unscaled_estimate']:.0f} s",
                        b["calls"],
                        b["calls_per_handoff"],
                        f"{b['budget_used_pct']} %",
                        b["http_429"],
                    ]
                ],
            )
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-mails", type=int, default=15)
    ap.add_argument("--burst", type=int, default=1000)
    args = ap.parse_args()
    r = asyncio.run(run(args.latency_mails, args.burst))
    print_tables(r)
    save("handoff", r)


if __name__ == "__main__":
    main()
