"""The reliability campaign: mixed load while the daemon is SIGKILLed, HubSpot fails and the
relay misbehaves; then the invariants.

What runs (all on loopback, all seeded so a failing run can be replayed with --seed):
- the HubSpot sandbox, in this process (it survives every daemon kill), with ~20% faults on
  every API path once set-up is done: 429, 500, 503, connection resets and lost responses
  (the call happens, the answer never arrives);
- a relay (aiosmtpd, in this process) that answers 451 to ~15% of the mails and drops ~10% of
  the connections at DATA without answering;
- the daemon (`python -m gateway.cli serve`, [hubspot] mode = "live" pointed at the sandbox,
  [assistant] backend = "off" so every conversation is handed off after 0.2 s) as a
  subprocess, SIGKILLed at random moments and restarted;
- load: SMTP clients sending new conversations and follow-ups, and reps posting public
  replies and internal comments into the handed-off threads.

Then a heal phase: faults off, relay healthy, the daemon restarted with the retry timers of
queued work brought forward (relay retries wait 60 s and more; the campaign compresses time
rather than waiting them out), and the daemon drains. The invariants read the daemon's store
and the sandbox's state directly:

1. every mail that got 250 is stored exactly once;
2. one ticket per handed-off conversation (and every conversation handed off);
3. every customer message exactly once in its HubSpot thread, and every message of every
   thread counted: one INCOMING per customer mail, one OUTGOING of ours per assistant reply,
   each rep reply once (never published back by the gateway);
4. every public rep reply delivered exactly once (a second copy with the same Message-ID,
   from a kill between the relay's 250 and the record of it, is counted separately);
5. no internal comment ever delivered;
6. no job and no delivery left dead or failed (every fault injected here is temporary).

    .venv/bin/python bench/soak.py [--duration 300] [--kills 12] [--seed 1]

Exits 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import email
import email.policy
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
from aiosmtpd.smtp import SMTP

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Daemon,
    gateway_config,
    markdown,
    sandbox_hubspot,
    save,
    start_live,
)

from helpers.inbox import HISTORY_QUERY, rep_message

AGENT = "A-301"
FAULTS = [  # (action, status, rate): ~20% of all HubSpot calls fail
    ("status", 429, 0.05),
    ("status", 500, 0.03),
    ("status", 503, 0.03),
    ("reset", 503, 0.045),
    ("lose_response", 503, 0.045),
]


@dataclass
class Relay:
    """An SMTP relay that fails on purpose; remembers every mail it answered 250 to."""

    rng: random.Random
    fail_rate: float = 0.15
    drop_rate: float = 0.10
    accepted: list[bytes] = field(default_factory=list)
    refused: int = 0
    dropped: int = 0
    server: asyncio.base_events.Server | None = None
    port: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        roll = self.rng.random()
        if roll < self.drop_rate:
            self.dropped += 1
            server.transport.abort()
            return "421 4.3.0 dropped"
        if roll < self.drop_rate + self.fail_rate:
            self.refused += 1
            return "451 4.3.0 try again later"
        self.accepted.append(envelope.original_content or envelope.content)
        return "250 2.0.0 OK"

    def heal(self) -> None:
        self.fail_rate = self.drop_rate = 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="relay.test", enable_SMTPUTF8=True, loop=loop),
            "127.0.0.1",
            0,
        )
        self.port = self.server.sockets[0].getsockname()[1]


@dataclass
class Campaign:
    duration: float
    kills: int
    seed: int
    workdir: Path
    clients: int = 3
    reps_every: float = 0.4
    drain_seconds: float = 0  # 0 = 90 s plus half the load time: the backlog grows with it
    verbose: bool = True
    rng: random.Random = field(init=False)
    sent_250: list[str] = field(default_factory=list)  # Message-IDs that got 250
    smtp_errors: int = 0
    rep_posts: int = 0
    rep_post_errors: int = 0
    comments: int = 0
    kill_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def say(self, text: str) -> None:
        if self.verbose:
            print(f"[soak {time.monotonic() - self.t0:6.1f}s] {text}", file=sys.stderr)

    async def run(self) -> dict[str, Any]:
        from gateway.sandbox import start_sandbox

        self.t0 = time.monotonic()
        self.sandbox = await start_sandbox(
            "127.0.0.1",
            0,
            burst_limit=1000,
            webhook_retry_scale=0.02,
            webhook_batch_delay=0.05,
            webhook_timeout=2.0,
        )
        info = self.sandbox.info()
        self.token = info["staticToken"]
        self.relay = Relay(random.Random(self.seed + 1))
        await self.relay.start()
        state = self.workdir / "state"
        self.db = state / "gateway.db"
        extra = f"""
[assistant]
backend = "off"
debounce = 0.2
[worker]
concurrency = 4
lease_seconds = 5
max_attempts = 50
retry_base_seconds = 0.05
[relay]
mode = "smtp"
host = "127.0.0.1"
port = {self.relay.port}
tls = "none"
timeout = 5
"""
        config = self.workdir / "config.toml"

        def write(smtp_port: int, http_port: int) -> Path:
            config.write_text(
                gateway_config(
                    state,
                    smtp_port,
                    http_port,
                    extra,
                    log_level="info",
                    **sandbox_hubspot(info),
                    burst_limit=1000,
                    timeout=2,
                    replies="both",
                    poll_interval=1.0,
                )
            )
            return config

        self.daemon = Daemon(write, self.workdir / "daemon.log")
        await start_live(self.daemon)
        self.http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        )
        try:
            await self._faults_on()
            self.say(f"load for {self.duration:.0f}s with {self.kills} kills")
            stop = asyncio.Event()
            tasks = [asyncio.create_task(self._smtp_client(n, stop)) for n in range(self.clients)]
            tasks.append(asyncio.create_task(self._reps(stop)))
            await self._killer()
            stop.set()
            await asyncio.gather(*tasks)
            self.say(f"load done: {len(self.sent_250)} mails got 250; healing")
            await self._heal()
            drained = await self._drain()
            self.daemon.stop()
            report = self._check(drained)
        finally:
            self.daemon.kill9()
            await self.http.close()
            self.relay.server.close()
            await self.sandbox.close()
        return report

    # ------------------------------------------------------------------ faults and kills
    async def _admin(self, method: str, path: str, **kw: Any) -> Any:
        async with self.http.request(method, self.sandbox.url + "/_sandbox" + path, **kw) as r:
            return await r.json(content_type=None)

    async def _faults_on(self) -> None:
        for n, (action, status, rate) in enumerate(FAULTS):
            spec = {"path": "*", "action": action, "status": status, "rate": rate}
            await self._admin("POST", "/faults", json=spec | {"seed": self.seed * 100 + n})

    async def _killer(self) -> None:
        times = sorted(self.rng.uniform(2, self.duration - 2) for _ in range(self.kills))
        for at in times:
            await asyncio.sleep(max(0.0, self.t0 + at - time.monotonic()))
            self.daemon.kill9()
            self.kill_times.append(round(time.monotonic() - self.t0, 1))
            self.say(f"SIGKILL #{len(self.kill_times)}")
            await asyncio.sleep(self.rng.uniform(0.1, 1.0))
            await self.daemon.astart()
        await asyncio.sleep(max(0.0, self.t0 + self.duration - time.monotonic()))

    async def _heal(self) -> None:
        await self._admin("DELETE", "/faults")
        self.relay.heal()
        self.daemon.kill9()
        # compress time: whatever waits for a retry (relay: 60 s and more) runs now
        conn = sqlite3.connect(self.db, timeout=30)
        with conn:
            conn.execute("UPDATE jobs SET run_after = 0 WHERE state = 'queued'")
        conn.close()
        await self.daemon.astart()

    # ------------------------------------------------------------------ load
    async def _smtp_client(self, n: int, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed * 1000 + n)
        mine: list[tuple[str, str]] = []  # (message-id, subject) of accepted mails
        i = 0
        while not stop.is_set():
            i += 1
            mid = f"soak-{self.seed}-{n}-{i}@customer.test"
            if mine and rng.random() < 0.6:
                parent, subject = rng.choice(mine)
                head = f"In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"
                subject = subject if subject.startswith("Re: ") else "Re: " + subject
            else:
                head, subject = "", f"Question {n}-{i}"
            raw = (
                f"From: Customer {n} <c{n}-{i}@customer.test>\r\nTo: support@example.com\r\n"
                f"Subject: {subject}\r\nMessage-ID: <{mid}>\r\n{head}"
                "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                f"Hello, where is my order? MSG-{mid}\r\n"
            ).encode()
            try:
                await aiosmtplib.send(
                    raw,
                    sender=f"c{n}@customer.test",
                    recipients=["support@example.com"],
                    hostname="127.0.0.1",
                    port=self.daemon.smtp_port,
                    timeout=10,
                )
            except (aiosmtplib.SMTPException, OSError):
                self.smtp_errors += 1  # no 250: the mail claims nothing
                await asyncio.sleep(0.2)
                continue
            self.sent_250.append(mid)
            if not head:
                mine.append((mid, subject))
            await asyncio.sleep(rng.uniform(0.1, 0.5))

    async def _reps(self, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed + 7)
        k = 0
        while not stop.is_set():
            await asyncio.sleep(self.reps_every)
            threads = [
                t
                for t in self.sandbox.state.data["threads"].values()
                if t.get("status", "OPEN") == "OPEN"
            ]
            if not threads:
                continue
            thread = rng.choice(threads)
            k += 1
            kind = "COMMENT" if rng.random() < 0.3 else "MESSAGE"
            for attempt in range(5):  # a failed post is a new message (new text): no dupes
                tag = f"{'COMMENT' if kind == 'COMMENT' else 'REP'}-{k}.{attempt}"
                url = f"{self.sandbox.url}/conversations/v3/conversations/threads/{thread['id']}"
                try:
                    body = await self._rep_body(url, kind, f"{tag} from the rep")
                    async with self.http.post(url + "/messages", json=body) as r:
                        if r.status < 300:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                self.rep_post_errors += 1
                await asyncio.sleep(0.1)
            if kind == "COMMENT":
                self.comments += 1
            else:
                self.rep_posts += 1

    async def _rep_body(self, url: str, kind: str, text: str) -> dict:
        """A COMMENT, or a MESSAGE read from the thread as HubSpot's callers must build it
        (helpers.inbox.rep_message); ``url``: the thread's API URL. A failed read raises
        ``aiohttp.ClientResponseError``."""
        if kind == "COMMENT":
            return {"type": kind, "text": text, "senderActorId": AGENT}
        async with self.http.get(url, raise_for_status=True) as r:
            thread = await r.json()
        async with self.http.get(
            url + "/messages", params=HISTORY_QUERY, raise_for_status=True
        ) as r:
            history = (await r.json())["results"]
        return rep_message(thread, history, text, AGENT)

    # ------------------------------------------------------------------ drain and check
    def _rows(self, sql: str, args: list | None = None) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args or []).fetchall()
        finally:
            conn.close()

    def _expected_replies(self) -> dict[str, str]:
        """tag -> thread id of every public rep reply the sandbox holds."""
        out = {}
        for tid, msgs in self.sandbox.state.data["messages"].items():
            for m in msgs:
                if m.get("type") == "MESSAGE" and m.get("direction") == "OUTGOING":
                    found = re.search(r"REP-\d+\.\d+", m.get("text") or "")
                    if found:
                        out[found.group(0)] = tid
        return out

    def _delivered_tags(self) -> collections.Counter:
        tags: collections.Counter = collections.Counter()
        for raw in self.relay.accepted:
            for tag in set(re.findall(rb"REP-\d+\.\d+", raw)):
                tags[tag.decode()] += 1
        return tags

    async def _drain(self) -> bool:
        if not self.drain_seconds:
            # each handoff is 7 HubSpot calls under the sandbox's 1,000 / 10 s: a 300 s run
            # leaves about 1,000 handoffs, which alone need 70 s of budget after the heal
            self.drain_seconds = 90 + self.duration / 2
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline:
            busy = self._rows(
                "SELECT (SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'),"
                " (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')),"
                " (SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'sending')),"
                " (SELECT COUNT(*) FROM handoffs WHERE state != 'done'),"
                " (SELECT COUNT(*) FROM conversations WHERE id NOT IN"
                "   (SELECT conversation_id FROM handoffs))"
            )[0]
            expected = self._expected_replies()
            delivered = self._delivered_tags()
            missing = [t for t in expected if not delivered.get(t)]
            if not any(busy) and not missing:
                self.say("drained")
                return True
            await asyncio.sleep(0.5)
        self.say(f"not drained after {self.drain_seconds}s: busy={busy} missing={missing[:5]}")
        return False

    def _check(self, drained: bool) -> dict[str, Any]:
        inv: dict[str, dict[str, Any]] = {}

        stored = collections.Counter(
            r[0]
            for r in self._rows(
                "SELECT message_id FROM raw_mails WHERE message_id LIKE ?", ["%soak-%"]
            )
        )
        norm = {k.strip("<>"): v for k, v in stored.items()}
        lost = [m for m in self.sent_250 if norm.get(m, 0) == 0]
        twice = [m for m in self.sent_250 if norm.get(m, 0) > 1]
        inv["every 250 stored once"] = {
            "ok": not lost and not twice,
            "detail": f"{len(self.sent_250)} accepted, {len(lost)} lost, {len(twice)} twice",
        }

        convs = {r[0] for r in self._rows("SELECT id FROM conversations")}
        handoffs = {
            r[0]: r
            for r in self._rows("SELECT conversation_id, state, ticket_id, thread_id FROM handoffs")
        }
        records = self.sandbox.state.data["objects"]["tickets"]
        keys = collections.Counter(
            (rec.get("properties") or {}).get("mail_gateway_conversation_id")
            for rec in records.values()
        )
        keys.pop(None, None)
        doubled = [k for k, n in keys.items() if n > 1]
        not_handed = sorted(c for c in convs if c not in handoffs or handoffs[c][1] != "done")
        no_ticket = sorted(c for c in convs if c in handoffs and str(handoffs[c][2]) not in records)
        bad_tickets = doubled + no_ticket + ([] if len(records) == len(convs) else ["count"])
        inv["one ticket per conversation"] = {
            "ok": not not_handed and not bad_tickets,
            "detail": f"{len(convs)} conversations, {len(records)} tickets, "
            f"{len(not_handed)} not handed off, {len(no_ticket)} without their ticket, "
            f"{len(doubled)} tickets doubled",
        }

        msgs = self._rows(
            "SELECT m.message_id, m.conversation_id FROM messages m WHERE m.direction = 'in'"
        )
        in_thread_bad = []
        for mid, cid in msgs:
            h = handoffs.get(cid)
            thread = self.sandbox.state.data["messages"].get(h[3], []) if h and h[3] else []
            n = sum(
                1
                for m in thread
                if m.get("type") == "MESSAGE" and f"MSG-{mid.strip('<>')}" in (m.get("text") or "")
            )
            if n != 1:
                in_thread_bad.append((mid, n))
        inv["every message once in its thread"] = {
            "ok": not in_thread_bad,
            "detail": f"{len(msgs)} customer messages, {len(in_thread_bad)} not exactly once"
            + (f": {in_thread_bad[:5]}" if in_thread_bad else ""),
        }

        inv["every thread message counted"] = self._thread_counts(handoffs)

        expected = self._expected_replies()
        by_tag: dict[str, list[str]] = collections.defaultdict(list)
        for raw in self.relay.accepted:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            for tag in set(re.findall(rb"REP-\d+\.\d+", raw)):
                by_tag[tag.decode()].append(str(msg["Message-ID"]))
        missing = [t for t in expected if not by_tag.get(t)]
        same_id = [t for t in expected if len(by_tag.get(t, [])) > 1 and len(set(by_tag[t])) == 1]
        different = [t for t in expected if len(set(by_tag.get(t, []))) > 1]
        unknown = [t for t in by_tag if t not in expected]
        inv["every public reply delivered once"] = {
            "ok": not missing and not different and not unknown,
            "detail": f"{len(expected)} public replies, {len(missing)} undelivered, "
            f"{len(different)} delivered twice with different Message-IDs, "
            f"{len(same_id)} resent with the same Message-ID (kill between send and record)",
            "resent_same_message_id": len(same_id),
        }

        leaked = [
            raw[:200]
            for raw in self.relay.accepted
            if b"COMMENT-" in raw or b"mail-gateway sessions show" in raw
        ]
        inv["no comment delivered"] = {
            "ok": not leaked,
            "detail": f"{self.comments} comments posted, {len(leaked)} delivered",
        }

        dead = self._rows("SELECT id, kind, attempts, last_error FROM jobs WHERE state = 'dead'")
        failed = self._rows("SELECT id, last_error FROM deliveries WHERE state = 'failed'")
        inv["no unexplained dead job"] = {
            "ok": not dead and not failed,
            "detail": f"{len(dead)} dead jobs, {len(failed)} failed deliveries"
            + (f": {dead[:3]} {failed[:3]}" if dead or failed else ""),
        }
        inv["drained"] = {"ok": drained, "detail": "queue empty after the heal phase"}

        return {
            "duration_s": self.duration,
            "seed": self.seed,
            "kills": self.kill_times,
            "daemon_starts": self.daemon.starts,
            "mails_250": len(self.sent_250),
            "smtp_errors": self.smtp_errors,
            "rep_replies_posted": self.rep_posts,
            "comments_posted": self.comments,
            "rep_post_errors": self.rep_post_errors,
            "relay_accepted": len(self.relay.accepted),
            "relay_4xx": self.relay.refused,
            "relay_dropped": self.relay.dropped,
            "invariants": inv,
            "ok": all(v["ok"] for v in inv.values()),
        }

    def _thread_counts(self, handoffs: dict[int, tuple]) -> dict[str, Any]:
        """Every MESSAGE of every handed-off HubSpot thread, counted by who wrote it: one
        INCOMING per customer mail of the conversation, one OUTGOING of ours per assistant
        reply (the gateway's own mail that is not a rep's reply), and each rep reply once;
        anything else (a rep reply published back, a mail published twice) is a fault."""
        ours_out = collections.Counter(
            r[0]
            for r in self._rows(
                "SELECT conversation_id FROM messages WHERE direction = 'out' AND id NOT IN "
                "(SELECT message_row_id FROM deliveries WHERE source_key LIKE 'hubspot:%' "
                "AND message_row_id IS NOT NULL)"
            )
        )
        customer_in = collections.Counter(
            r[0] for r in self._rows("SELECT conversation_id FROM messages WHERE direction = 'in'")
        )
        bad = []
        total = 0
        for cid, h in handoffs.items():
            thread = self.sandbox.state.data["messages"].get(h[3], []) if h[3] else []
            msgs = [m for m in thread if m.get("type") == "MESSAGE"]
            total += len(msgs)
            incoming = sum(m.get("direction") == "INCOMING" for m in msgs)
            outgoing = [m for m in msgs if m.get("direction") == "OUTGOING"]
            by_us = sum(str(m.get("createdBy") or "").startswith("I-") for m in outgoing)
            rep_tags = collections.Counter(
                t
                for m in outgoing
                if not str(m.get("createdBy") or "").startswith("I-")
                for t in re.findall(r"REP-\d+\.\d+", m.get("text") or "")
            )
            twice = [t for t, n in rep_tags.items() if n > 1]
            if incoming != customer_in[cid] or by_us != ours_out[cid] or twice:
                bad.append((cid, incoming, customer_in[cid], by_us, ours_out[cid], twice))
        return {
            "ok": not bad,
            "detail": f"{total} messages in {len(handoffs)} threads, {len(bad)} threads off "
            "(conversation, incoming, customer mails, ours outgoing, assistant replies, "
            "rep replies twice)" + (f": {bad[:5]}" if bad else ""),
        }


def table(report: dict[str, Any]) -> str:
    head = (
        f"{report['duration_s']:.0f} s, seed {report['seed']}, {len(report['kills'])} SIGKILLs, "
        f"{report['mails_250']} mails accepted, {report['rep_replies_posted']} public replies and "
        f"{report['comments_posted']} comments posted, relay: {report['relay_4xx']} × 4xx, "
        f"{report['relay_dropped']} dropped connections"
    )
    rows = [
        [name, "PASS" if v["ok"] else "FAIL", v["detail"]]
        for name, v in report["invariants"].items()
    ]
    return head + "\n\n" + markdown(["invariant", "result", "detail"], rows)


async def run_campaign(
    duration: float, kills: int, seed: int = 1, workdir: Path | None = None, **kw: Any
) -> dict[str, Any]:
    if workdir is not None:
        return await Campaign(duration, kills, seed, workdir, **kw).run()
    with tempfile.TemporaryDirectory(prefix="gw-soak-") as tmp:
        return await Campaign(duration, kills, seed, Path(tmp), **kw).run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=300)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="work folder to keep (store, logs)")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run_campaign(args.duration, args.kills, args.seed, args.keep))
    print(table(report))
    save("soak", report)
    print(json.dumps({"ok": report["ok"]}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
