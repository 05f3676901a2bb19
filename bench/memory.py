"""Memory benchmark: the daemon's resident memory idle, and its peak with 20 concurrent 10 MB
mails (read from /proc/PID/status: VmRSS now, VmHWM the high-water mark).

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
        ],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mails", type=int, default=20)
    ap.add_argument("--size", type=int, default=10 * 1024 * 1024)
    args = ap.parse_args()
    r = asyncio.run(run(args.mails, args.size))
    print(table(r))
    save("memory", r)


if __name__ == "__main__":
    main()
