"""Ingest benchmark: the real daemon against two baselines measured in the same run.

Servers (each a separate process on loopback, started fresh for every row):
- mail-gateway: `python -m gateway.cli serve`, every 250 after an fsynced group commit;
- bare aiosmtpd (discard): the SMTP library the gateway builds on, answering 250 and keeping
  nothing (the ceiling for Python SMTP);
- postfix smtpd (queue): a private Postfix instance, smtpd → cleanup → its own queue files
  (fsynced), then the `discard:` transport.

Load, two tools per row:
- throughput: Postfix's `smtp-source` (C, `-s CLIENTS` concurrent sessions, `-m` mails of
  `-l` bytes each); msg/s = mails / wall time of the smtp-source process;
- latency: an aiosmtplib client per session (CLIENTS concurrent), timing each DATA phase:
  from the DATA command to the 250 after the final dot, i.e. "end of DATA → 250" plus the
  sending of the body; p50 and p99. smtp-source cannot time single mails.

A second table: the gateway alone, 5 KB mails, 10 clients, against an empty store and against a
store pre-filled (SQL inserts, not SMTP) with 1,000,000 stored and processed mails, their
messages, conversations, Message-ID index rows and finished jobs; plus the time the worker then
needs to process the new mails (threading against the big index).

    .venv/bin/python bench/ingest.py [--clients 1,10,50] [--sizes 5120,102400] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Daemon, gateway_config, make_mail, markdown, median, pct, save

from helpers.mailsystem import (  # tests/ is on sys.path (common)
    POSTFIX,
    postfix_main_cf,
    postfix_start,
    postfix_stop,
    private_folder,
    server_port,
    start_with_retry,
)

SMTP_SOURCE = "/usr/sbin/smtp-source"
HAVE_SMTP_SOURCE = os.path.exists(SMTP_SOURCE)

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 OK discarded"

    async def main(port):
        loop = asyncio.get_running_loop()
        factory = lambda: SMTP(Discard(), data_size_limit=26214400, enable_SMTPUTF8=True,
                               hostname="bare", loop=loop)
        server = await loop.create_server(factory, "127.0.0.1", port, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)  # port 0: say which
        await server.serve_forever()

    asyncio.run(main(0))
    """
)

# Postfix as a queueing SMTP server: everything for example.com is queued (fsynced) and then
# discarded; no per-client limits, so it is measured, not throttled.
POSTFIX_EXTRA = {
    "smtpd_client_connection_count_limit": "0",
    "smtpd_client_message_rate_limit": "0",
    "default_process_limit": "200",
    "message_size_limit": "26214400",
}

EXTRA = """
[assistant]
backend = "off"
debounce = 86400
"""


def postfix_missing() -> str | None:
    if not os.path.exists(POSTFIX):
        return "postfix is not installed"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return None


class Server:
    """One server under test, started fresh (its port is known after start())."""

    def __init__(self, kind: str, tmp: Path, prefill: int = 0):
        self.kind, self.tmp, self.prefill = kind, tmp, prefill
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.daemon: Daemon | None = None
        self.root: Path | None = None
        self.db: Path | None = None

    def start(self) -> None:
        if self.kind == "postfix":
            root = self.root = private_folder("gw-bench-postfix-")

            def start_postfix() -> None:  # the port is picked in advance: retried on a clash
                self.port = server_port()
                main_cf = postfix_main_cf(
                    root,
                    hostname="bench.test",
                    transports={"example.com": "discard:"},
                    relay_domains="example.com",
                    extra=POSTFIX_EXTRA,
                )
                postfix_start(root, self.port, main_cf)

            start_with_retry(start_postfix)
        elif self.kind == "bare":
            self.proc = subprocess.Popen(
                [sys.executable, "-c", BARE_SERVER],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=self.tmp,
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()  # the port it bound, once it listens
            if not line.strip():
                raise RuntimeError(f"bare server exited with {self.proc.wait()}")
            self.port = int(line)
        else:
            state = Path(tempfile.mkdtemp(prefix="state-", dir=self.tmp))
            self.db = state / "gateway.db"
            if self.prefill:
                prefill_store(self.db, self.prefill)

            def write(smtp: int, http: int) -> Path:
                cfg = state / "config.toml"
                cfg.write_text(gateway_config(state, smtp, http, EXTRA))
                return cfg

            self.daemon = Daemon(write, state / "daemon.log")
            self.daemon.start(within=60)
            self.port = self.daemon.smtp_port

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.root is not None:
            postfix_stop(self.root)
            shutil.rmtree(self.root, ignore_errors=True)

    def pending(self) -> int:
        assert self.db is not None
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(
                "SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'"
            ).fetchone()[0]
        finally:
            conn.close()


def smtp_source(port: int, clients: int, messages: int, size: int) -> dict:
    """Throughput with Postfix's smtp-source: wall time of the whole run."""
    cmd = [
        SMTP_SOURCE,
        "-s",
        str(clients),
        "-l",
        str(size),
        "-m",
        str(messages),
        "-f",
        "c@customer.test",
        "-t",
        "support@example.com",
        f"127.0.0.1:{port}",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    errors = out.stderr.count("smtp-source:") if out.returncode == 0 else messages
    return {
        "tput_messages": messages,
        "tput_seconds": round(elapsed, 3),
        "msg_per_s": round(messages / elapsed, 1),
        "tput_errors": errors,
    }


async def latency(port: int, clients: int, messages: int, size: int) -> dict:
    """Per-mail DATA → 250 timing with aiosmtplib, CLIENTS sessions at once."""
    per_client = max(1, messages // clients)
    times: list[float] = []
    errors = 0

    async def client(n: int) -> None:
        nonlocal errors
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        await smtp.ehlo()
        for i in range(per_client):
            msg = make_mail(n * per_client + i, size)
            await smtp.mail("c@customer.test")
            await smtp.rcpt("support@example.com")
            t0 = time.perf_counter()
            try:
                await smtp.data(msg)
            except aiosmtplib.SMTPException:
                errors += 1
                continue
            times.append(time.perf_counter() - t0)
        await smtp.quit()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - t0
    return {
        "lat_messages": len(times),
        "lat_msg_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(median(times) * 1000, 2),
        "p99_ms": round(pct(times, 99) * 1000, 2),
        "lat_errors": errors,
    }


async def measure(server: Server, clients: int, size: int, tput_n: int, lat_n: int) -> dict:
    server.start()
    try:
        row: dict = {"clients": clients, "size": size}
        if HAVE_SMTP_SOURCE:
            row |= await asyncio.to_thread(smtp_source, server.port, clients, tput_n, size)
        row |= await latency(server.port, clients, lat_n, size)
        if "msg_per_s" not in row:
            row["msg_per_s"] = row["lat_msg_per_s"]
        if server.db is not None:
            t0 = time.perf_counter()
            for _ in range(1200):  # a count over raw_mails scans it: poll gently
                if not server.pending():
                    break
                await asyncio.sleep(0.25)
            row["process_drain_s"] = round(time.perf_counter() - t0, 2)
        return row
    finally:
        server.stop()


def prefill_store(db: Path, n: int) -> float:
    """Create the gateway's schema and insert n processed mails (plus their rows) by SQL."""
    from gateway.store.db import Store

    t0 = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)

    async def migrate() -> None:
        Store(db).close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from a running loop
        pool.submit(asyncio.run, migrate()).result()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    ts = "2026-01-01T00:00:00.000Z"
    per_conv = 5
    raw = b"From: a@customer.test\r\nSubject: old\r\n\r\n" + b"x" * 200
    with conn:
        conn.executemany(
            "INSERT INTO conversations (id, token, mailbox, subject, customer_email, "
            "customer_name, status, created_at, updated_at, last_message_at, message_count) "
            "VALUES (?, ?, 'support@example.com', ?, ?, 'Old', 'closed', ?, ?, ?, ?)",
            (
                (c, f"t{c:08x}", f"Old question {c}", f"old{c}@customer.test", ts, ts, ts, per_conv)
                for c in range(1, n // per_conv + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO raw_mails (id, received_at, source, mailbox, envelope_from, rcpt_tos, "
            "peer, helo, message_id, sha256, size, raw, state) VALUES (?, ?, 'smtp', "
            "'support@example.com', 'a@customer.test', '[]', '127.0.0.1', 'x', ?, ?, ?, ?, "
            "'processed')",
            (
                (i, ts, f"old-{i}@customer.test", hashlib.sha256(b"%d" % i).hexdigest(), 240, raw)
                for i in range(1, n + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, raw_id, direction, message_id, subject, "
            "sender_email, created_at, text, new_text) VALUES (?, ?, ?, 'in', ?, 'old', "
            "'a@customer.test', ?, 'old text', 'old text')",
            (
                (i, (i - 1) // per_conv + 1, i, f"old-{i}@customer.test", ts)
                for i in range(1, n + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO message_ids (mailbox, message_id, conversation_id, direction) "
            "VALUES ('support@example.com', ?, ?, 'in')",
            ((f"old-{i}@customer.test", (i - 1) // per_conv + 1) for i in range(1, n + 1)),
        )
        conn.executemany(
            "INSERT INTO jobs (kind, payload, dedupe_key, state, attempts, created_at, "
            "updated_at) VALUES ('process_mail', '{}', ?, 'done', 1, ?, ?)",
            ((f"process:{i}", ts, ts) for i in range(1, n + 1)),
        )
    conn.close()
    return time.perf_counter() - t0


KINDS = {
    "bare": "bare aiosmtpd (discard)",
    "postfix": "postfix smtpd (queue)",
    "gateway": "mail-gateway",
}


def table(rows: list[dict]) -> str:
    base = {(r["clients"], r["size"]): r for r in rows if r["server"] == KINDS["bare"]}
    pf = {(r["clients"], r["size"]): r for r in rows if r["server"] == KINDS["postfix"]}
    out = []
    for r in rows:
        b, p = base.get((r["clients"], r["size"])), pf.get((r["clients"], r["size"]))
        vs_bare = f"{r['msg_per_s'] / b['msg_per_s']:.2f}" if b else "-"
        vs_pf = f"{r['msg_per_s'] / p['msg_per_s']:.2f}" if p else "-"
        out.append(
            [
                r["server"],
                f"{r['size'] // 1024} KB",
                r["clients"],
                r["msg_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r.get("tput_errors", 0) + r["lat_errors"],
                vs_bare,
                vs_pf,
            ]
        )
    return markdown(
        [
            "server",
            "size",
            "clients",
            "msg/s (smtp-source)",
            "p50 DATA→250 ms",
            "p99 DATA→250 ms",
            "errors",
            "× bare aiosmtpd",
            "× postfix",
        ],
        out,
    )


def big_table(rows: list[dict]) -> str:
    return markdown(
        [
            "store before the run",
            "msg/s (smtp-source)",
            "p50 DATA→250 ms",
            "p99 DATA→250 ms",
            "processing drain s",
            "errors",
        ],
        [
            [
                r["store"],
                r["msg_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r["process_drain_s"],
                r.get("tput_errors", 0) + r["lat_errors"],
            ]
            for r in rows
        ],
    )


async def run(
    clients: list[int], sizes: list[int], prefill: int, quick: bool = False
) -> dict[str, list[dict]]:
    kinds = ["bare", "gateway"] + ([] if postfix_missing() else ["postfix"])
    if postfix_missing():
        print(f"skipping Postfix: {postfix_missing()}", file=sys.stderr)
    rows, big = [], []
    with tempfile.TemporaryDirectory(prefix="gw-bench-ingest-") as tmp:
        for size in sizes:
            tput_n = (300 if quick else 2000) if size <= 10240 else (100 if quick else 500)
            lat_n = (200 if quick else 1000) if size <= 10240 else (100 if quick else 300)
            for c in clients:
                for kind in kinds:
                    print(f"ingest: {KINDS[kind]}, {size} B, {c} clients", file=sys.stderr)
                    row = await measure(Server(kind, Path(tmp)), c, size, tput_n, lat_n)
                    rows.append({"server": KINDS[kind], **row})
        if prefill:
            for label, n in (("empty", 0), (f"{prefill:,} mails", prefill)):
                print(f"ingest: gateway with {label}", file=sys.stderr)
                t0 = time.perf_counter()
                server = Server("gateway", Path(tmp), prefill=n)
                row = await measure(server, 10, 5120, 300 if quick else 2000, 1000)
                row["store"] = label
                if n:
                    row["prefill_s"] = round(time.perf_counter() - t0, 1)
                big.append(row)
    return {"ingest": rows, "ingest_big_store": big}


def print_tables(result: dict[str, list[dict]]) -> None:
    print("### Ingest (same run, same machine)\n")
    print(table(result["ingest"]))
    if result["ingest_big_store"]:
        print("\n### Ingest against a big store (mail-gateway, 5 KB, 10 clients)\n")
        print(big_table(result["ingest_big_store"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,10,50")
    ap.add_argument("--sizes", default="5120,102400")
    ap.add_argument("--prefill", type=int, default=1_000_000, help="0 skips the big-store run")
    ap.add_argument("--quick", action="store_true", help="fewer mails per row")
    args = ap.parse_args()
    result = asyncio.run(
        run(
            [int(c) for c in args.clients.split(",")],
            [int(s) for s in args.sizes.split(",")],
            args.prefill,
            args.quick,
        )
    )
    print_tables(result)
    save("ingest", result)


if __name__ == "__main__":
    main()
