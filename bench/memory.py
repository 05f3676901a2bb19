"""Memory benchmark: the daemon's resident memory idle, and its peak with 20 concurrent 10 MB
mails (read from /proc/PID/status: VmRSS now, VmHWM the high-water mark).

Second part, unfinished DATA (issue 16 item 4's attack): 20 sessions each send 20 MB of DATA
and never the final dot, against a daemon whose `[smtp] data_memory_budget` is 128 MB; its
peak RSS while they hang, how many of them were dropped or refused (452 4.3.1), and its RSS
once they have disconnected.

    .venv/bin/python bench/memory.py [--mails 20] [--size 10485760]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Daemon, gateway_config, make_mail, markdown, save

from helpers.daemon import memory_status  # tests/ is on sys.path (common)

EXTRA = """
[assistant]
backend = "off"
debounce = 86400
"""

UNFINISHED_SESSIONS = 20
UNFINISHED_MB = 20
BUDGET_MB = 128


async def run(mails: int = 20, size: int = 10 * 1024 * 1024) -> dict:
    with tempfile.TemporaryDirectory(prefix="gw-bench-mem-") as tmp:
        state = Path(tmp) / "state"
        cfg = Path(tmp) / "config.toml"

        def write(smtp: int, http: int) -> Path:
            cfg.write_text(gateway_config(state, smtp, http, EXTRA))
            return cfg

        daemon = Daemon(write, Path(tmp) / "daemon.log")
        await daemon.astart()
        smtp = daemon.smtp_port
        try:
            await asyncio.sleep(3)  # settle: imports done, writer and worker idle
            idle = daemon.status()
            idle_tree = tree_status(daemon.proc.pid)

            async def send(i: int) -> None:
                await aiosmtplib.send(
                    make_mail(i, size),
                    sender="c@customer.test",
                    recipients=["support@example.com"],
                    hostname="127.0.0.1",
                    port=smtp,
                    timeout=120,
                )

            t0 = time.perf_counter()
            await asyncio.gather(*(send(i) for i in range(mails)))
            accepted_s = time.perf_counter() - t0
            db = state / "gateway.db"
            for _ in range(1200):  # until the worker has parsed and stored every one
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
                pending = conn.execute(
                    "SELECT COUNT(*) FROM raw_mails WHERE state = 'pending'"
                ).fetchone()[0]
                conn.close()
                if not pending:
                    break
                await asyncio.sleep(0.25)
            processed_s = time.perf_counter() - t0
            after = daemon.status()
            after_tree = tree_status(daemon.proc.pid)
        finally:
            daemon.stop()
    return {
        "idle_rss_mb": round(idle["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(after["VmHWM"] / 1024, 1),
        "rss_after_mb": round(after["VmRSS"] / 1024, 1),
        # the daemon with its parser processes (forkserver + pool): peak is the sum of each
        # process's own high-water mark, an upper bound of what they held at once
        "idle_rss_with_parsers_mb": round(idle_tree["VmRSS"] / 1024, 1),
        "peak_rss_with_parsers_mb": round(after_tree["VmHWM"] / 1024, 1),
        "mails": mails,
        "mail_mb": round(size / 1024 / 1024, 1),
        "accept_all_s": round(accepted_s, 2),
        "process_all_s": round(processed_s, 2),
        **await unfinished_data(),
    }


async def unfinished_data(
    sessions: int = UNFINISHED_SESSIONS, mb: int = UNFINISHED_MB, budget_mb: int = BUDGET_MB
) -> dict:
    """`sessions` clients each send `mb` MB of DATA without the final dot, then disconnect."""
    with tempfile.TemporaryDirectory(prefix="gw-bench-mem-") as tmp:
        state = Path(tmp) / "state"
        cfg = Path(tmp) / "config.toml"
        budget = f"max_sessions = 500\ndata_memory_budget = {budget_mb << 20}\n"

        def write(smtp: int, http: int) -> Path:
            text = gateway_config(state, smtp, http, EXTRA)
            cfg.write_text(text.replace("max_sessions = 500\n", budget))
            return cfg

        daemon = Daemon(write, Path(tmp) / "daemon.log")
        await daemon.astart()
        writers: list[asyncio.StreamWriter] = []
        chunk = (b"u" * 998 + b"\r\n") * 1024  # ~1 MB

        async def hang() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", daemon.smtp_port)
            writers.append(writer)
            await reader.readline()
            for cmd in (
                b"HELO b",
                b"MAIL FROM:<c@customer.test>",
                b"RCPT TO:<support@example.com>",
            ):
                writer.write(cmd + b"\r\n")
                await reader.readline()
            writer.write(b"DATA\r\n")
            reply = await reader.readline()
            if reply.startswith(b"354"):
                for _ in range(mb):
                    writer.write(chunk)
                    await writer.drain()
            return reply

        try:
            await asyncio.sleep(3)  # settle, as above
            idle = daemon.status()
            replies = await asyncio.gather(*(hang() for _ in range(sessions)))
            await asyncio.sleep(3)  # the daemon reads what the kernel still buffers
            during = daemon.status()
            for writer in writers:  # the clients go away without the final dot
                writer.transport.abort()
            await asyncio.sleep(5)  # the daemon notices the closed sessions and frees
            after = daemon.status()
        finally:
            daemon.stop()
    return {
        "unfinished_sessions": sessions,
        "unfinished_mb": mb,
        "unfinished_budget_mb": budget_mb,
        "unfinished_refused_at_data": sum(r.startswith(b"452") for r in replies),
        "unfinished_idle_rss_mb": round(idle["VmRSS"] / 1024, 1),
        "unfinished_peak_rss_mb": round(during["VmHWM"] / 1024, 1),
        "unfinished_rss_after_mb": round(after["VmRSS"] / 1024, 1),
    }


def tree_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) summed over a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total = {"VmRSS": 0, "VmHWM": 0}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            st = memory_status(p)
        except OSError:
            continue
        for k in total:
            total[k] += st.get(k, 0)
        todo.extend(children.get(p, []))
    return total


def table(r: dict) -> str:
    return markdown(
        ["measure", "value"],
        [
            ["idle RSS (VmRSS after start)", f"{r['idle_rss_mb']} MB"],
            [
                f"peak RSS (VmHWM), {r['mails']} concurrent {r['mail_mb']:g} MB mails",
                f"{r['peak_rss_mb']} MB",
            ],
            ["RSS after they are processed", f"{r['rss_after_mb']} MB"],
            ["idle RSS, daemon + parser processes", f"{r['idle_rss_with_parsers_mb']} MB"],
            [
                "peak RSS, daemon + parser processes (sum of peaks)",
                f"{r['peak_rss_with_parsers_mb']} MB",
            ],
            ["time to accept all (250 for each)", f"{r['accept_all_s']} s"],
            ["time until all are parsed and stored", f"{r['process_all_s']} s"],
            [
                f"unfinished DATA: {r['unfinished_sessions']} sessions × {r['unfinished_mb']} MB "
                f"without the final dot, budget {r['unfinished_budget_mb']} MB: idle → peak RSS",
                f"{r['unfinished_idle_rss_mb']} → {r['unfinished_peak_rss_mb']} MB",
            ],
            [
                "unfinished DATA: sessions refused at DATA (452 4.3.1)",
                r["unfinished_refused_at_data"],
            ],
            ["unfinished DATA: RSS after the sessions ended", f"{r['unfinished_rss_after_mb']} MB"],
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mails", type=int, default=20)
    ap.add_argument("--size", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--unfinished-only", action="store_true", help="only the unfinished-DATA part")
    args = ap.parse_args()
    if args.unfinished_only:
        print(asyncio.run(unfinished_data()))
        return
    r = asyncio.run(run(args.mails, args.size))
    print(table(r))
    save("memory", r)


if __name__ == "__main__":
    main()
